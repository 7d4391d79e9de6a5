"""The registry: what is listed, Feature URIs, config hashes, and the errors for bad names."""

from __future__ import annotations

import pytest

from libs.errors import InvalidInputError, NotFoundError
from libs.extractors import (
    Bm25Parameters,
    FeatureExtractor,
    FeatureUri,
    WordChunking,
    extractor_for_uri,
    get_extractor,
    list_extractors,
)


def test_lists_the_four_extractors_with_their_spaces() -> None:
    listed = {(info.name, info.version): info for info in list_extractors()}
    expected = {
        ("minilm", "v1"): ("offshoot://minilm@v1/text_embedding", "dense", 384, "cosine", "none"),
        ("minilm-static", "v1"): (
            "offshoot://minilm-static@v1/text_embedding",
            "dense",
            256,
            "cosine",
            "none",
        ),
        ("mpnet", "v1"): ("offshoot://mpnet@v1/text_embedding", "dense", 768, "cosine", "none"),
        ("bm25", "v1"): ("offshoot://bm25@v1/sparse_embedding", "sparse", None, "dot", "idf"),
    }
    assert set(listed) == set(expected)
    for key, (uri, kind, dimensions, distance, modifier) in expected.items():
        (output,) = listed[key].outputs
        assert (output.feature_uri, output.kind, output.dimensions) == (uri, kind, dimensions)
        assert (output.distance, output.modifier) == (distance, modifier)
        assert listed[key].feature_uri == uri
        assert listed[key].modality == "text"
        assert listed[key].parameters_schema["type"] == "object"
        assert "chunking" in listed[key].parameters_schema["properties"]
        assert len(listed[key].config_hash) == 64


def test_info_serialises_for_the_http_listing() -> None:
    for info in list_extractors():
        document = info.model_dump(mode="json")
        assert document["outputs"][0]["feature_uri"].startswith("offshoot://")
        assert type(info).model_validate(document) == info


def test_the_same_configuration_gives_the_same_instance_and_hash() -> None:
    first = get_extractor("bm25", "v1", {"k1": 1.2})
    again = get_extractor("bm25", "v1", Bm25Parameters(k1=1.2))
    assert first is again
    assert first.info.config_hash == again.info.config_hash
    assert get_extractor("minilm", "v1").info == get_extractor("minilm", "v1", {}).info


def test_config_hash_changes_with_every_parameter() -> None:
    default = get_extractor("bm25", "v1").info
    hashes = {
        default.config_hash,
        get_extractor("bm25", "v1", {"k1": 1.2}).info.config_hash,
        get_extractor("bm25", "v1", {"b": 0.75}).info.config_hash,
        get_extractor("bm25", "v1", {"avg_doc_length": 256}).info.config_hash,
        get_extractor("bm25", "v1", {"chunking": {"mode": "words"}}).info.config_hash,
    }
    assert len(hashes) == 5


def test_chunking_changes_the_config_hash_but_not_the_encoding_hash() -> None:
    plain = get_extractor("minilm", "v1").info
    chunked = get_extractor("minilm", "v1", {"chunking": WordChunking(size=100, overlap=20)}).info
    assert plain.config_hash != chunked.config_hash
    assert plain.encoding_hash == chunked.encoding_hash
    assert chunked.parameters["chunking"] == {"mode": "words", "size": 100, "overlap": 20}


def test_a_scoring_parameter_changes_the_encoding_hash() -> None:
    assert (
        get_extractor("bm25", "v1").info.encoding_hash
        != get_extractor("bm25", "v1", {"k1": 1.2}).info.encoding_hash
    )


def test_static_model_hash_covers_the_distiller_and_its_settings() -> None:
    (static,) = [info for info in list_extractors() if info.name == "minilm-static"]
    assert str(static.model["distiller"]).startswith("model2vec==")
    assert static.model["distillation"] == {
        "pca_dims": 256,
        "sif_coefficient": 1e-4,
        "quantize_to": "float16",
        "pooling": "mean",
        "token_remove_pattern": r"\[unused\d+\]",
    }


def test_configurations_of_one_model_share_the_loaded_model() -> None:
    plain = get_extractor("minilm", "v1")
    chunked = get_extractor("minilm", "v1", {"chunking": {"mode": "sentences", "size": 2}})
    assert plain is not chunked
    assert plain.encoder is chunked.encoder
    assert isinstance(plain, FeatureExtractor)


def test_unknown_extractor_names_what_exists() -> None:
    with pytest.raises(NotFoundError) as error:
        get_extractor("clip", "v1")
    for known in ("bm25@v1", "minilm@v1", "minilm-static@v1", "mpnet@v1"):
        assert known in str(error.value)


def test_unknown_version_names_the_versions_that_exist() -> None:
    with pytest.raises(NotFoundError, match=r"'minilm' has no version 'v2'; has: v1"):
        get_extractor("minilm", "v2")


@pytest.mark.parametrize(
    "parameters",
    [
        {"k1": -1},
        {"b": 1.5},
        {"avg_doc_length": 0},
        {"unknown": 1},
        {"chunking": {"mode": "paragraphs"}},
        {"chunking": {"mode": "words", "size": 10, "overlap": 10}},
    ],
)
def test_invalid_parameters_are_rejected(parameters: dict[str, object]) -> None:
    with pytest.raises(InvalidInputError, match=r"invalid parameters for bm25@v1"):
        get_extractor("bm25", "v1", parameters)


def test_a_model_takes_only_its_own_parameters() -> None:
    with pytest.raises(InvalidInputError, match="k1"):
        get_extractor("minilm", "v1", {"k1": 1.2})


def test_extractor_for_uri_resolves_and_checks_the_output() -> None:
    assert extractor_for_uri("offshoot://minilm@v1/text_embedding") is get_extractor("minilm", "v1")
    with pytest.raises(NotFoundError, match="no output 'image_embedding'"):
        extractor_for_uri("offshoot://minilm@v1/image_embedding")
    with pytest.raises(NotFoundError):
        extractor_for_uri("offshoot://minilm@v7/text_embedding")


def test_feature_uri_round_trips() -> None:
    uri = FeatureUri.parse("offshoot://minilm-static@v1/text_embedding")
    assert (uri.name, uri.version, uri.output) == ("minilm-static", "v1", "text_embedding")
    assert str(uri) == "offshoot://minilm-static@v1/text_embedding"


@pytest.mark.parametrize(
    "malformed",
    [
        "",
        "minilm@v1/text_embedding",
        "mixpeek://minilm@v1/text_embedding",
        "offshoot://minilm/text_embedding",
        "offshoot://minilm@1/text_embedding",
        "offshoot://minilm@v1",
        "offshoot://minilm@v1/",
        "offshoot://MiniLM@v1/text_embedding",
        "offshoot://minilm@v1/text_embedding/extra",
        "offshoot://mini lm@v1/text_embedding",
        " offshoot://minilm@v1/text_embedding",
    ],
)
def test_malformed_feature_uris_are_rejected(malformed: str) -> None:
    with pytest.raises(InvalidInputError, match="malformed feature URI"):
        FeatureUri.parse(malformed)
    with pytest.raises(InvalidInputError):
        extractor_for_uri(malformed)
