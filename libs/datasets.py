"""Where the shared data sets live: ``../shared/datasets`` beside the repository (as on every
developer machine and in CI), or ``OFFSHOOT_DATASETS``."""

from __future__ import annotations

import os
from pathlib import Path

from libs.errors import NotFoundError

DATASETS = Path(
    os.environ.get("OFFSHOOT_DATASETS", Path(__file__).resolve().parents[2] / "shared" / "datasets")
)


def scifact_dir() -> Path:
    """The BEIR SciFact folder (corpus.jsonl.gz, queries.jsonl.gz, qrels/)."""
    folder = DATASETS / "scifact"
    if not (folder / "corpus.jsonl.gz").exists():
        raise NotFoundError(
            f"SciFact not found in {folder} (set OFFSHOOT_DATASETS to the datasets folder)"
        )
    return folder
