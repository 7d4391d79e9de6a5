"""Reports people look at: a self-contained HTML page (tables, and plots drawn as inline SVG —
no script, no external asset, so it opens anywhere and can be attached to a ticket) and a rich
terminal table with deltas against a baseline.

Inputs are the API's own records (``GET /v1/evaluations/{id}``, ``GET /v1/benchmarks/{id}``),
so the report shows exactly what the API answered. The first evaluation is the baseline unless
``baseline_id`` says otherwise.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from rich.table import Table

from services.evaluation.metrics import METRICS

COLORS = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1")
LABELS = {"precision": "P", "recall": "Recall", "f1": "F1", "map": "MAP", "ndcg": "NDCG",
          "mrr": "MRR"}  # fmt: skip
TABLE_K = 10


def _name(evaluation: Mapping[str, Any]) -> str:
    alias = evaluation.get("alias_name")
    return f"{evaluation['retriever_id']}" + (f" (alias {alias})" if alias else "")


def _by_k(evaluation: Mapping[str, Any]) -> dict[int, dict[str, float]]:
    return {int(k): v for k, v in (evaluation.get("metrics_by_k") or {}).items()}


def _cell(evaluation: Mapping[str, Any], metric: str, k: int) -> float | None:
    return _by_k(evaluation).get(k, {}).get(metric)


def _table_k(evaluations: Sequence[Mapping[str, Any]]) -> int:
    common = set.intersection(*(set(_by_k(e)) for e in evaluations)) if evaluations else set()
    return TABLE_K if TABLE_K in common or not common else min(common)


def _baseline(
    evaluations: Sequence[Mapping[str, Any]], baseline_id: str | None
) -> Mapping[str, Any]:
    """The evaluation ``baseline_id`` names (an evaluation id, or the retriever it measured),
    else the first."""
    for evaluation in evaluations:
        if baseline_id in (evaluation["evaluation_id"], evaluation["retriever_id"]):
            return evaluation
    return evaluations[0]


def _rows(evaluations: Sequence[Mapping[str, Any]], baseline_id: str | None
          ) -> tuple[int, list[tuple[str, list[tuple[float | None, float | None]]]], list[str]]:  # fmt: skip
    """(k, per evaluation: its name and (value, delta vs baseline) per column, column names)."""
    k = _table_k(evaluations)
    base = _baseline(evaluations, baseline_id)
    columns = [f"P@{k}", f"Recall@{k}", f"NDCG@{k}", f"MAP@{k}", f"MRR@{k}", "latency p50 ms"]
    keys = ["precision", "recall", "ndcg", "map", "mrr"]

    def values(e: Mapping[str, Any]) -> list[float | None]:
        return [_cell(e, m, k) for m in keys] + [(e.get("latency_ms") or {}).get("p50")]

    reference = values(base)
    rows = []
    for evaluation in evaluations:
        own = values(evaluation)
        pairs = [
            (v, None if v is None or r is None or evaluation is base else v - r)
            for v, r in zip(own, reference, strict=True)
        ]
        rows.append((_name(evaluation), pairs))
    return k, rows, columns


def comparison_table(
    evaluations: Sequence[Mapping[str, Any]], baseline_id: str | None = None
) -> Table:
    """P@10, Recall@10, NDCG@10, MAP@10, MRR@10 and latency p50 per evaluation, with the
    delta against the baseline (green better, red worse; lower latency is better)."""
    _, rows, columns = _rows(evaluations, baseline_id)
    table = Table(title="Evaluation (deltas vs baseline)")
    table.add_column("retriever")
    for column in columns:
        table.add_column(column, justify="right")
    for name, pairs in rows:
        cells = []
        for index, (value, delta) in enumerate(pairs):
            latency = index == len(pairs) - 1
            text = "—" if value is None else (f"{value:.1f}" if latency else f"{value:.4f}")
            if delta is not None and abs(delta) > 1e-12:
                better = delta < 0 if latency else delta > 0
                sign = f"{delta:+.1f}" if latency else f"{delta:+.4f}"
                text += f" [{'green' if better else 'red'}]({sign})[/]"
            cells.append(text)
        table.add_row(name, *cells)
    return table


def benchmark_table(benchmark: Mapping[str, Any]) -> Table:
    """A benchmark's results per retriever, deltas vs the baseline, sessions improved /
    degraded / neutral and the paired test of the NDCG delta."""
    results = benchmark.get("results") or {}
    table = Table(title=f"Benchmark {benchmark.get('benchmark_name', '')}: "
                        f"{results.get('sessions_replayed', 0)} sessions replayed")  # fmt: skip
    k = results.get("k", TABLE_K)
    for column in ("retriever", f"NDCG@{k}", "MRR", f"Recall@{k}", "mean clicked rank",
                   "p50 ms", "p95 ms", "better/worse/same", "p-value", "95% CI ΔNDCG"):  # fmt: skip
        table.add_column(column, justify="left" if column == "retriever" else "right")

    def mark(value: float | None, lower_is_better: bool = False, digits: int = 4) -> str:
        if value is None or abs(value) < 1e-12:
            return ""
        better = value < 0 if lower_is_better else value > 0
        return f" [{'green' if better else 'red'}]({value:+.{digits}f})[/]"

    for retriever_id, scores in (results.get("retrievers") or {}).items():
        comparison = results["comparisons"].get(retriever_id)
        deltas = comparison["deltas"] if comparison else {}
        test = comparison["significance"] if comparison else None
        rank = scores["mean_clicked_rank"]
        table.add_row(
            retriever_id + (" (baseline)" if retriever_id == results["baseline_retriever_id"] else ""),
            f"{scores['ndcg_at_k']:.4f}" + mark(deltas.get("ndcg_at_k")),
            f"{scores['mrr']:.4f}" + mark(deltas.get("mrr")),
            f"{scores['recall_at_k']:.4f}" + mark(deltas.get("recall_at_k")),
            ("—" if rank is None else f"{rank:.2f}") + mark(deltas.get("mean_clicked_rank"), True, 2),
            f"{scores['latency_ms']['p50']:.1f}" + mark(deltas.get("latency_p50_ms"), True, 1),
            f"{scores['latency_ms']['p95']:.1f}",
            "" if comparison is None else f"{comparison['sessions_improved']}/"
            f"{comparison['sessions_degraded']}/{comparison['sessions_neutral']}",
            "" if test is None else f"p = {test['p_value']:.4f}",
            "" if test is None else f"[{test['ci_low']:+.4f}, {test['ci_high']:+.4f}]",
        )  # fmt: skip
    return table


# ---- SVG ---------------------------------------------------------------------------------------


def _svg(width: int, height: int, body: str, title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">'
        f"<title>{html.escape(title)}</title>{body}</svg>"
    )


def _legend(names: Sequence[str], x: float, y: float) -> str:
    return "".join(
        f'<rect x="{x}" y="{y + 14 * i}" width="10" height="10" fill="{COLORS[i % len(COLORS)]}"/>'
        f'<text x="{x + 14}" y="{y + 9 + 14 * i}">{html.escape(n)}</text>'
        for i, n in enumerate(names)
    )


def bars_svg(evaluations: Sequence[Mapping[str, Any]], metric: str) -> str:
    """One metric per k, a bar per evaluation."""
    ks = sorted(set().union(*(set(_by_k(e)) for e in evaluations)))
    width, height, left, bottom, top = 520, 220, 40, 30, 10
    plot_w, plot_h = width - left - 10, height - bottom - top - 14 * len(evaluations)
    group = plot_w / max(1, len(ks))
    bar = group * 0.8 / max(1, len(evaluations))
    parts = [
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 10}" y2="{top + plot_h}" stroke="#333"/>'
    ]
    for tick in (0, 0.25, 0.5, 0.75, 1.0):
        y = top + plot_h * (1 - tick)
        parts.append(f'<text x="{left - 4}" y="{y + 4}" text-anchor="end">{tick:.2f}</text>'
                     f'<line x1="{left}" y1="{y}" x2="{width - 10}" y2="{y}" stroke="#eee"/>')  # fmt: skip
    for gi, k in enumerate(ks):
        x0 = left + gi * group + group * 0.1
        for ei, evaluation in enumerate(evaluations):
            value = _cell(evaluation, metric, k) or 0.0
            h = plot_h * max(0.0, min(1.0, value))
            parts.append(
                f'<rect x="{x0 + ei * bar:.1f}" y="{top + plot_h - h:.1f}" width="{bar:.1f}" '
                f'height="{h:.1f}" fill="{COLORS[ei % len(COLORS)]}"><title>{metric}@{k} = '
                f"{value:.4f}</title></rect>"
            )
        parts.append(f'<text x="{x0 + group * 0.4:.1f}" y="{top + plot_h + 14}" '
                     f'text-anchor="middle">@{k}</text>')  # fmt: skip
    parts.append(_legend([_name(e) for e in evaluations], left, top + plot_h + 20))
    return _svg(width, height, "".join(parts), f"{LABELS[metric]} per k")


def _per_query(evaluation: Mapping[str, Any], k: int) -> dict[str, float]:
    return {
        row["query_id"]: row["metrics_by_k"].get(str(k), {}).get("ndcg", 0.0)
        for row in evaluation.get("per_query") or []
    }


def scatter_svg(old: Mapping[str, Any], new: Mapping[str, Any], k: int) -> str:
    """Per-query NDCG@k, baseline (x) against candidate (y): points above the diagonal improved."""
    a, b = _per_query(old, k), _per_query(new, k)
    size, pad = 300, 36
    span = size - 2 * pad
    parts = [
        f'<rect x="{pad}" y="{pad}" width="{span}" height="{span}" fill="none" stroke="#333"/>',
        f'<line x1="{pad}" y1="{pad + span}" x2="{pad + span}" y2="{pad}" stroke="#aaa" stroke-dasharray="4"/>',
        f'<text x="{size / 2}" y="{size - 6}" text-anchor="middle">{html.escape(_name(old))}</text>',
        f'<text x="12" y="{size / 2}" transform="rotate(-90 12 {size / 2})" text-anchor="middle">'
        f"{html.escape(_name(new))}</text>",
    ]  # fmt: skip
    for query_id in sorted(set(a) & set(b)):
        x, y = pad + span * a[query_id], pad + span * (1 - b[query_id])
        color = (
            "#59a14f"
            if b[query_id] > a[query_id]
            else "#e15759"
            if b[query_id] < a[query_id]
            else "#888"
        )
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}" fill-opacity="0.6">'
                     f"<title>{html.escape(query_id)}: {a[query_id]:.3f} → {b[query_id]:.3f}</title></circle>")  # fmt: skip
    return _svg(size, size, "".join(parts), f"per-query NDCG@{k}")


def latency_svg(series: Mapping[str, Sequence[float]]) -> str:
    """Each series' latencies as a strip of ticks with its p50 and p95 marked."""
    values = [v for s in series.values() for v in s]
    top_value = max(values) if values else 1.0
    width, row, left = 520, 34, 170
    parts = []
    for index, (name, latencies) in enumerate(series.items()):
        y = 10 + index * row
        color = COLORS[index % len(COLORS)]
        parts.append(
            f'<text x="{left - 6}" y="{y + 14}" text-anchor="end">{html.escape(name[:28])}</text>'
        )
        for value in latencies:
            x = left + (width - left - 20) * value / top_value
            parts.append(
                f'<line x1="{x:.1f}" y1="{y + 4}" x2="{x:.1f}" y2="{y + 18}" stroke="{color}" stroke-opacity="0.35"/>'
            )
        ordered = sorted(latencies)
        for q, dash in ((0.5, ""), (0.95, ' stroke-dasharray="2"')):
            if ordered:
                v = ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))]
                x = left + (width - left - 20) * v / top_value
                parts.append(f'<line x1="{x:.1f}" y1="{y}" x2="{x:.1f}" y2="{y + 22}" stroke="#000"{dash}>'
                             f"<title>p{int(q * 100)} ≈ {v:.1f} ms</title></line>")  # fmt: skip
    height = 30 + row * len(series)
    parts.append(f'<text x="{width - 20}" y="{height - 6}" text-anchor="end">0 … {top_value:.1f} ms '
                 f"(solid p50, dashed p95)</text>")  # fmt: skip
    return _svg(width, height, "".join(parts), "latency")


# ---- HTML --------------------------------------------------------------------------------------


def _html_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "—"
    return f"{value:.{digits}f}" if isinstance(value, float) else html.escape(str(value))


def _delta(value: float | None, lower_is_better: bool = False, digits: int = 4) -> str:
    if value is None or abs(value) < 1e-12:
        return ""
    better = value < 0 if lower_is_better else value > 0
    return f' <span class="{"up" if better else "down"}">({value:+.{digits}f})</span>'


def _benchmark_html(benchmark: Mapping[str, Any]) -> str:
    results = benchmark.get("results") or {}
    if not results:
        return f"<h2>Benchmark {html.escape(benchmark['benchmark_name'])}</h2><p>not run yet</p>"
    k = results["k"]
    baseline = results["baseline_retriever_id"]
    rows = []
    for retriever_id, scores in results["retrievers"].items():
        comparison = results["comparisons"].get(retriever_id)
        deltas = comparison["deltas"] if comparison else {}
        significance = comparison["significance"] if comparison else None
        rows.append([
            html.escape(retriever_id) + (" (baseline)" if retriever_id == baseline else ""),
            _fmt(scores["ndcg_at_k"]) + _delta(deltas.get("ndcg_at_k")),
            _fmt(scores["mrr"]) + _delta(deltas.get("mrr")),
            _fmt(scores["recall_at_k"]) + _delta(deltas.get("recall_at_k")),
            _fmt(scores["mean_clicked_rank"], 2) + _delta(deltas.get("mean_clicked_rank"), True, 2),
            _fmt(scores["latency_ms"]["p50"], 1) + _delta(deltas.get("latency_p50_ms"), True, 1),
            _fmt(scores["latency_ms"]["p95"], 1),
            "" if comparison is None else
            f"{comparison['sessions_improved']} / {comparison['sessions_degraded']} / {comparison['sessions_neutral']}",
            "" if significance is None else
            f"p = {significance['p_value']:.4f}; 95% CI [{significance['ci_low']:+.4f}, "
            f"{significance['ci_high']:+.4f}] — {comparison['verdict'] if comparison else ''}",
        ])  # fmt: skip
    header = ["retriever", f"NDCG@{k}", "MRR", f"Recall@{k}", "mean clicked rank",
              "p50 ms", "p95 ms", "improved / degraded / neutral", "NDCG delta significance"]  # fmt: skip
    latencies = {r: s.get("latencies_ms", []) for r, s in results["retrievers"].items()}
    return (
        f"<h2>Benchmark {html.escape(benchmark['benchmark_name'])}</h2>"
        f"<p>{results['sessions_replayed']} sessions replayed ({results['sessions_skipped']} "
        f"skipped); baseline {html.escape(baseline)}.</p>"
        + _html_table(header, rows)
        + "<h3>Latency per replayed session</h3>" + latency_svg(latencies)
    )  # fmt: skip


STYLE = """body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;
margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child,
th:first-child{text-align:left}.up{color:#2a7d2a}.down{color:#c0392b}svg{margin:4px}"""


def evaluation_report_html(
    evaluations: Sequence[Mapping[str, Any]],
    benchmark: Mapping[str, Any] | None = None,
    *,
    baseline_id: str | None = None,
    title: str = "Offshoot evaluation report",
) -> str:
    """One page: the delta table, metric bars per k, per-query NDCG scatter of each candidate
    against the baseline, latency distributions, and the benchmark if given."""
    done = [e for e in evaluations if e.get("status") == "COMPLETED"]
    sections = [f"<h1>{html.escape(title)}</h1>"]
    if done:
        k, rows, columns = _rows(done, baseline_id)
        base = _baseline(done, baseline_id)
        cells = [
            [html.escape(name)] + [
                _fmt(v, 1 if i == len(pairs) - 1 else 4) + _delta(d, i == len(pairs) - 1, 1 if i == len(pairs) - 1 else 4)
                for i, (v, d) in enumerate(pairs)
            ]
            for name, pairs in rows
        ]  # fmt: skip
        details = [
            [html.escape(e["evaluation_id"]), html.escape(_name(e)), html.escape(e["dataset_id"]),
             str(e.get("query_count")), str(len(e.get("missing_documents") or []))]
            for e in done
        ]  # fmt: skip
        sections += [
            f"<p>Baseline: {html.escape(_name(base))}. Deltas in parentheses.</p>",
            _html_table(["retriever", *columns], cells),
            _html_table(["evaluation", "retriever", "dataset", "queries", "missing documents"], details),
            "<h2>Metrics per k</h2>",
            "".join(bars_svg(done, m) for m in ("ndcg", "recall", "precision", "mrr", "map")),
            f"<h2>Per-query NDCG@{k}: baseline vs each</h2>",
            "".join(scatter_svg(base, e, k) for e in done if e is not base) or "<p>one evaluation only</p>",
            "<h2>Latency per query</h2>",
            latency_svg({_name(e): [r["latency_ms"] for r in e.get("per_query") or []] for e in done}),
        ]  # fmt: skip
    failed = [e for e in evaluations if e.get("status") != "COMPLETED"]
    if failed:
        sections.append(_html_table(
            ["evaluation", "status", "error"],
            [[html.escape(e["evaluation_id"]), html.escape(str(e.get("status"))),
              html.escape(str(e.get("error") or ""))] for e in failed],
        ))  # fmt: skip
    if benchmark is not None:
        sections.append(_benchmark_html(benchmark))
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style></head><body>{''.join(sections)}</body></html>"
    )


__all__ = ["METRICS", "bars_svg", "benchmark_table", "comparison_table", "evaluation_report_html", "latency_svg",
           "scatter_svg"]  # fmt: skip
