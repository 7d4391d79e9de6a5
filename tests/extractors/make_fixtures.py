"""Write ``fixtures/reference_embeddings.json``: vectors computed once by sentence-transformers.

    .venv/bin/python tests/extractors/make_fixtures.py

The tests hold our torch + transformers pipeline to these within 1e-5. The texts are stored in
the fixture, so the tests need neither the dataset nor sentence-transformers. MPNet is included
when its part packages are installed (the script assembles the model like the extractor does).
"""

from __future__ import annotations

import gzip
import json
import os
from importlib import metadata
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from sentence_transformers import SentenceTransformer

from libs.extractors.mpnet_assembly import mpnet_model_dir
from libs.extractors.registry import minilm_model_dir

FIXTURE = Path(__file__).parent / "fixtures" / "reference_embeddings.json"
SCIFACT = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "scifact"


def scifact_abstracts(count: int) -> list[str]:
    with gzip.open(SCIFACT / "corpus.jsonl.gz", "rt") as lines:
        documents = [json.loads(line) for _, line in zip(range(count), lines, strict=False)]
    return [f"{document['title']} {document['text']}" for document in documents]


def embed(model_dir: Path, texts: list[str]) -> list[list[float]]:
    model = SentenceTransformer(str(model_dir), device="cpu")
    vectors = model.encode(texts, batch_size=32, convert_to_numpy=True)
    return [[float(f"{value:.9g}") for value in vector] for vector in vectors]


def main() -> None:
    abstracts = scifact_abstracts(3)
    minilm_texts = [
        *abstracts,
        "Vitamin D deficiency increases the risk of fractures.",
        "Café au lait spots, naïve T cells and IL-6 — 東京 😀",
        "  odd\twhitespace\n\n and   UPPER case  ",
        "",
    ]
    models: dict[str, dict[str, object]] = {
        "minilm@v1": {"texts": minilm_texts, "vectors": embed(minilm_model_dir(), minilm_texts)}
    }
    try:
        mpnet_dir = mpnet_model_dir()
    except Exception as error:  # the part packages are optional on a developer machine
        print(f"skipping mpnet@v1: {error}")
    else:
        mpnet_texts = ["Mutations in p53 are common in human cancers.", abstracts[0]]
        models["mpnet@v1"] = {"texts": mpnet_texts, "vectors": embed(mpnet_dir, mpnet_texts)}
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "generated_by": "tests/extractors/make_fixtures.py",
        "sentence_transformers": metadata.version("sentence-transformers"),
        "transformers": metadata.version("transformers"),
        "torch": metadata.version("torch"),
        "models": models,
    }
    FIXTURE.write_text(json.dumps(document, ensure_ascii=False, indent=1) + "\n")
    print(f"wrote {FIXTURE} ({', '.join(models)})")


if __name__ == "__main__":
    main()
