"""The validation report of two taxonomies labelling the same documents (pure).

Agreement is the share of documents whose top labels are equal (both unlabelled counts as
agreement). The confusion table counts (baseline label, candidate label) pairs. With ground
truth, each side gets accuracy and macro-F1 over the ground-truth labels (scikit-learn's
``f1_score(average="macro", labels=...)``, so a label neither side predicts scores 0), per-label
F1, and the candidate-minus-baseline deltas.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

NONE = "(none)"


def _name(label: str | None) -> str:
    return NONE if label is None else label


def report(
    document_ids: Sequence[str],
    baseline: Sequence[str | None],
    candidate: Sequence[str | None],
    truth: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    pairs = list(zip(baseline, candidate, strict=True))
    agree = sum(1 for b, c in pairs if b == c)
    confusion = Counter((_name(b), _name(c)) for b, c in pairs)
    labels = sorted({_name(x) for pair in pairs for x in pair})
    per_label = []
    for label in labels:
        in_base = sum(1 for b, _ in pairs if _name(b) == label)
        in_cand = sum(1 for _, c in pairs if _name(c) == label)
        both = sum(1 for b, c in pairs if _name(b) == label and _name(c) == label)
        per_label.append(
            {"label": label, "baseline": in_base, "candidate": in_cand, "agreed": both,
             "delta": in_cand - in_base}
        )  # fmt: skip
    result: dict[str, Any] = {
        "documents": len(pairs),
        "agreement": round(agree / len(pairs), 6) if pairs else None,
        "confusion": [
            {"baseline": b, "candidate": c, "count": n}
            for (b, c), n in sorted(confusion.items(), key=lambda item: (-item[1], item[0]))
        ],
        "labels": per_label,
        "ground_truth": None,
    }
    if truth is not None:
        result["ground_truth"] = _graded(document_ids, baseline, candidate, truth)
    return result


def _graded(
    document_ids: Sequence[str],
    baseline: Sequence[str | None],
    candidate: Sequence[str | None],
    truth: Mapping[str, str],
) -> dict[str, Any]:
    from sklearn.metrics import accuracy_score, f1_score

    rows = [i for i, d in enumerate(document_ids) if d in truth]
    gold = [truth[document_ids[i]] for i in rows]
    labels = sorted(set(gold))
    sides: dict[str, Any] = {}
    for side, predicted in (("baseline", baseline), ("candidate", candidate)):
        guesses = [_name(predicted[i]) for i in rows]
        if not rows:
            sides[side] = {"accuracy": None, "macro_f1": None, "per_label_f1": {}}
            continue
        per_label = f1_score(gold, guesses, labels=labels, average=None, zero_division=0)
        sides[side] = {
            "accuracy": round(float(accuracy_score(gold, guesses)), 6),
            "macro_f1": round(
                float(f1_score(gold, guesses, labels=labels, average="macro", zero_division=0)), 6
            ),
            "per_label_f1": {
                label: round(float(v), 6) for label, v in zip(labels, per_label, strict=True)
            },
        }
    base, cand = sides["baseline"], sides["candidate"]
    delta = {
        key: None if base[key] is None else round(cand[key] - base[key], 6)
        for key in ("accuracy", "macro_f1")
    }
    delta["per_label_f1"] = {
        label: round(cand["per_label_f1"][label] - base["per_label_f1"][label], 6)
        for label in base["per_label_f1"]
    }
    return {"documents": len(rows), "baseline": base, "candidate": cand, "delta": delta}
