"""Text chunking: a pure function from a text to chunks with character offsets.

Each chunk becomes one document, so offsets point back into the source text
(``text[chunk.start:chunk.end] == chunk.text``). The options are part of an extractor's
parameters and therefore of its config hash, but not of its encoding hash: the vector of a
chunk does not depend on how the text around it was cut.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from libs.errors import InvalidInputError

_WORD = re.compile(r"\S+")
# Candidate sentence ends: terminal punctuation, optional closing quotes/brackets, whitespace.
_SENTENCE_END = re.compile(r"[.!?]+[\"'\)\]]*\s+")
# A sentence starts with an upper-case letter, a digit, or an opening quote/bracket.
_SENTENCE_START = re.compile(r"[\"'\(\[]?[A-Z0-9]")
# Words that end with a full stop without ending the sentence (scientific prose).
_ABBREVIATIONS = frozenset(
    {"e.g", "i.e", "al", "fig", "figs", "vs", "cf", "ca", "approx", "dr", "mr", "mrs", "ms"}
    | {"prof", "no", "nos", "vol", "ref", "refs", "eq", "eqs", "resp", "st", "sp", "spp"}
)


@dataclass(frozen=True, slots=True)
class Chunk:
    """A piece of the source text; ``index`` is its position among the text's chunks."""

    index: int
    text: str
    start: int
    end: int


class NoChunking(BaseModel):
    """The whole text is one document (models over their limit truncate and flag it)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: Literal["none"] = "none"


class _WindowedChunking(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    size: int = Field(ge=1)
    overlap: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _overlap_below_size(self) -> _WindowedChunking:
        if self.overlap >= self.size:
            raise ValueError(f"overlap ({self.overlap}) must be smaller than size ({self.size})")
        return self


class SentenceChunking(_WindowedChunking):
    """Windows of ``size`` sentences, consecutive windows sharing ``overlap`` sentences."""

    mode: Literal["sentences"] = "sentences"
    size: int = Field(default=3, ge=1)


class WordChunking(_WindowedChunking):
    """Windows of ``size`` whitespace-separated words sharing ``overlap`` words.

    MiniLM reads at most 256 word pieces, about 180 English words: ``size=150`` keeps a chunk
    within the limit for most prose.
    """

    mode: Literal["words"] = "words"
    size: int = Field(default=150, ge=1)


ChunkingOptions = Annotated[
    NoChunking | SentenceChunking | WordChunking, Field(discriminator="mode")
]


def chunk_text(text: str, options: NoChunking | SentenceChunking | WordChunking) -> list[Chunk]:
    """Cut ``text`` as ``options`` say. ``none`` returns the text itself (even when empty);
    the windowed modes return no chunk for a text without words."""
    if not isinstance(text, str):
        raise InvalidInputError(f"chunking needs a string, not {type(text).__name__}")
    match options:
        case NoChunking():
            return [Chunk(index=0, text=text, start=0, end=len(text))]
        case SentenceChunking(size=size, overlap=overlap):
            return _windows(text, sentence_spans(text), size=size, overlap=overlap)
        case WordChunking(size=size, overlap=overlap):
            spans = [(m.start(), m.end()) for m in _WORD.finditer(text)]
            return _windows(text, spans, size=size, overlap=overlap)
    raise InvalidInputError(f"unknown chunking options {options!r}")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence, whitespace excluded; a rule-based splitter that knows
    common abbreviations ("e.g.", "et al.", "Fig.") and initials ("J. Smith")."""
    spans: list[tuple[int, int]] = []
    start = _skip_space(text, 0)
    for end_match in _SENTENCE_END.finditer(text):
        end = end_match.end()
        if end >= len(text) or not _SENTENCE_START.match(text, end):
            continue
        if _ends_with_abbreviation(text, start, end_match.start()):
            continue
        sentence_end = end_match.start() + len(end_match.group().rstrip())
        if sentence_end > start:
            spans.append((start, sentence_end))
        start = end
    tail_end = len(text.rstrip())
    if tail_end > start:
        spans.append((start, tail_end))
    return spans


def _ends_with_abbreviation(text: str, sentence_start: int, stop: int) -> bool:
    """Whether the word before the full stop at ``stop`` is an abbreviation or an initial."""
    if text[stop] != ".":
        return False
    word_start = max(
        sentence_start, *(text.rfind(space, sentence_start, stop) + 1 for space in " \t\n\r")
    )
    last = text[word_start:stop].lower().lstrip("(\"'[")
    return last in _ABBREVIATIONS or (len(last) == 1 and last.isalpha())


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position].isspace():
        position += 1
    return position


def _windows(
    text: str, spans: Sequence[tuple[int, int]], *, size: int, overlap: int
) -> list[Chunk]:
    """Group consecutive spans into windows; the last window ends at the last span, and no
    window lies wholly inside the one before it."""
    chunks: list[Chunk] = []
    step = size - overlap
    first = 0
    while first < len(spans):
        last = min(first + size, len(spans)) - 1
        start, end = spans[first][0], spans[last][1]
        chunks.append(Chunk(index=len(chunks), text=text[start:end], start=start, end=end))
        if last == len(spans) - 1:
            break
        first += step
    return chunks
