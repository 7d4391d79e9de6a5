"""NDCG@10 of ``mpnet@v1`` (all-mpnet-base-v2) on SciFact test through Offshoot, against the
published MTEB figure 0.6557 (target: within ±0.01).

A benchmark, not a test: embedding the 5,183 abstracts takes about 40 minutes on 2 cores.
Run: ``HF_HUB_OFFLINE=1 .venv/bin/python bench/mpnet_scifact.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scifact_eval import main

if __name__ == "__main__":
    main(default_models="mpnet")
