"""`make demo`, shortened: the whole migration story on 150 SciFact abstracts with the static
model as the candidate too (the transformer is the same code path, only slower)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from offshoot import Client, demo


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The data directory and output folder of one demo run, and what it printed."""
    root = tmp_path_factory.mktemp("demo")
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(demo.console, "file", printed)
        demo.run_demo(root / "data", documents=150, model="minilm-static@v1", out=root / "out")
    return root, printed.getvalue()


def _evaluations(root: Path) -> list[dict[str, object]]:
    with Client.embedded(root / "data") as client:
        return [dict(e) for e in client.with_namespace("staging").retrievers.evaluations.list()]


def test_the_delta_table_prints_what_the_evaluations_recorded(story: tuple[Path, str]) -> None:
    root, printed = story
    evaluations = _evaluations(root)

    assert len(evaluations) == 4  # baseline, transformer, hybrid, weighted
    for evaluation in evaluations:
        metrics = evaluation["metrics_by_k"]["10"]  # type: ignore[index]
        assert f"{metrics['ndcg']:.4f}" in printed
        assert f"{metrics['precision']:.4f}" in printed


def test_the_html_report_shows_the_same_figures(story: tuple[Path, str]) -> None:
    root, _ = story
    report = (root / "out" / "migration-report.html").read_text()

    for evaluation in _evaluations(root):
        metrics = evaluation["metrics_by_k"]["10"]  # type: ignore[index]
        assert f"{metrics['ndcg']:.4f}" in report


def test_the_story_promotes_then_rolls_back_the_alias(story: tuple[Path, str]) -> None:
    _, printed = story

    assert "after promotion" in printed
    assert "after rollback" in printed
    assert "clone COMPLETED" in printed
