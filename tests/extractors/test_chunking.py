"""Chunking: a pure function from text to chunks whose offsets point into the text."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from libs.errors import InvalidInputError
from libs.extractors import (
    Chunk,
    NoChunking,
    SentenceChunking,
    WordChunking,
    chunk_text,
    get_extractor,
)

ABSTRACT = (
    "Alterations of white matter (e.g. in preterm infants) affect development. "
    "We imaged 17 newborns, cf. Fig. 2 and J. Smith et al. 2004. "
    "Anisotropy rose with age!  Was it linear? "
    '"Yes," the authors say. 3 infants were excluded'
)


def _offsets_hold(text: str, chunks: list[Chunk]) -> None:
    for index, chunk in enumerate(chunks):
        assert chunk.index == index
        assert text[chunk.start : chunk.end] == chunk.text


def test_none_returns_the_text_itself() -> None:
    assert chunk_text(ABSTRACT, NoChunking()) == [Chunk(0, ABSTRACT, 0, len(ABSTRACT))]
    assert chunk_text("", NoChunking()) == [Chunk(0, "", 0, 0)]


def test_sentences_know_abbreviations_and_initials() -> None:
    chunks = chunk_text(ABSTRACT, SentenceChunking(size=1))
    _offsets_hold(ABSTRACT, chunks)
    assert [chunk.text for chunk in chunks] == [
        "Alterations of white matter (e.g. in preterm infants) affect development.",
        "We imaged 17 newborns, cf. Fig. 2 and J. Smith et al. 2004.",
        "Anisotropy rose with age!",
        "Was it linear?",
        '"Yes," the authors say.',
        "3 infants were excluded",
    ]


def test_sentence_windows_overlap() -> None:
    chunks = chunk_text(ABSTRACT, SentenceChunking(size=3, overlap=1))
    _offsets_hold(ABSTRACT, chunks)
    assert [chunk.text.split()[0] for chunk in chunks] == ["Alterations", "Anisotropy", '"Yes,"']
    assert chunks[-1].text.endswith("were excluded")


def test_word_windows_have_size_and_overlap() -> None:
    text = " ".join(f"w{n}" for n in range(10))
    chunks = chunk_text(text, WordChunking(size=4, overlap=1))
    _offsets_hold(text, chunks)
    assert [chunk.text for chunk in chunks] == ["w0 w1 w2 w3", "w3 w4 w5 w6", "w6 w7 w8 w9"]


def test_the_last_window_is_not_a_repeat_of_the_one_before() -> None:
    text = " ".join(f"w{n}" for n in range(5))
    chunks = chunk_text(text, WordChunking(size=4, overlap=2))
    assert [chunk.text for chunk in chunks] == ["w0 w1 w2 w3", "w2 w3 w4"]
    assert chunk_text("one two", WordChunking(size=5)) == [Chunk(0, "one two", 0, 7)]


def test_offsets_survive_irregular_whitespace() -> None:
    text = "  First one.\n\nSecond\tone.   "
    chunks = chunk_text(text, SentenceChunking(size=1))
    _offsets_hold(text, chunks)
    assert [chunk.text for chunk in chunks] == ["First one.", "Second\tone."]
    assert [(c.start, c.end) for c in chunk_text(text, WordChunking(size=2))] == [(2, 12), (14, 25)]


@pytest.mark.parametrize("options", [SentenceChunking(), WordChunking()])
def test_a_text_without_words_has_no_chunks(options: SentenceChunking | WordChunking) -> None:
    assert chunk_text("", options) == []
    assert chunk_text(" \n\t ", options) == []


def test_invalid_options_are_rejected() -> None:
    with pytest.raises(ValidationError):
        WordChunking(size=0)
    with pytest.raises(ValidationError):
        SentenceChunking(size=2, overlap=2)
    with pytest.raises(InvalidInputError):
        chunk_text(b"bytes", NoChunking())  # type: ignore[arg-type]


def test_an_extractor_chunks_with_its_parameters() -> None:
    extractor = get_extractor("bm25", "v1", {"chunking": {"mode": "sentences", "size": 2}})
    chunks = extractor.chunk(ABSTRACT)
    assert len(chunks) == 3
    assert chunks == chunk_text(ABSTRACT, SentenceChunking(size=2))
