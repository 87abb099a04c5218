"""Keyword analysis of Japanese and English search text into index terms.

Input is the search form (NFKC-normalised, Latin lower-cased). Terms are Sudachi morphemes in
their normalised form (compounds and their parts), Latin words and numbers, plus the character
bigrams of CJK runs that hold a kanji or katakana, marked with `BIGRAM_PREFIX`, as a fallback for words the dictionary splits
differently in the passage and in the question (names, katakana loanwords, unknown words).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Literal

from assistant.text.normalize import question_core

if TYPE_CHECKING:
    from sudachipy import Dictionary, Morpheme, Tokenizer  # type: ignore[import-untyped]

# Bump whenever the terms produced for a text change: indexes built with another version must be rebuilt.
TOKENIZER_VERSION = "sudachi-core-CA-bigram-2"
BIGRAM_PREFIX = "#"

# Particles, auxiliaries, punctuation and spaces carry no topic; dropping them also keeps postings short.
_DROP_POS = frozenset({"助詞", "助動詞", "補助記号", "空白"})
# Question words and light verbs that fill questions ("何というか", "誰ですか") but say nothing about the topic.
_QUERY_STOP = frozenset({
    "何", "どこ", "何処", "いつ", "何時", "誰", "どれ", "何れ", "どの", "どう", "如何", "どんな", "なぜ", "何故",
    "いくつ", "幾つ", "言う", "為る", "居る", "有る", "こと", "事", "物", "其の", "此の",
    "the", "a", "an", "of", "in", "on", "at", "to", "for", "by", "with", "from", "and", "or", "is", "are",
    "was", "were", "be", "been", "did", "do", "does", "what", "which", "who", "whom", "when", "where",
    "why", "how", "that", "this", "it", "its", "as",
})
_CJK_RUN = re.compile(r"[\u3041-\u3096\u30a1-\u30fa\u30fc\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff々〆ヵヶ]+")
# Pure-hiragana bigrams ("した", "ある") are grammar, the most frequent and the least telling; skipped.
_KANJI_KATAKANA = re.compile(r"[\u30a1-\u30fa\u30fc\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff々〆ヵヶ]")
_ASCII_TOKEN = re.compile(r"[a-z0-9][a-z0-9.,'\-]*")
_NUMBER = re.compile(r"[0-9][0-9.,]*")
# Sudachi reads "nato's" as nato / ' / s; the possessive is removed before analysis instead.
_POSSESSIVE = re.compile(r"(?<=[a-z])'s\b")
# Longer "words" are base64, hashes or runs of symbols: noise that would only bloat the index.
_MAX_TERM_CHARS = 40
# Sudachi refuses inputs above about 49,000 bytes; 4,000 characters stay well below in any script.
_MAX_SEGMENT_CHARS = 4_000


@dataclass(frozen=True)
class Analysis:
    """Which terms to produce: Sudachi split mode ("C+A" = compounds and their short parts) and bigrams."""

    mode: Literal["A", "C", "C+A"] = "C+A"
    bigrams: bool = True


DEFAULT_ANALYSIS = Analysis()


def tokenize(text: str, analysis: Analysis = DEFAULT_ANALYSIS) -> list[str]:
    """Index terms of a passage in search form: words, then bigrams; repeats kept (they are frequencies)."""
    return _analyse(text, analysis, query=False)


def tokenize_query(text: str, analysis: Analysis = DEFAULT_ANALYSIS) -> list[str]:
    """Terms of a question in search form: the same analysis, without question words, light verbs and a
    wrapping request ("…を教えてください")."""
    return _analyse(question_core(text), analysis, query=True)


def latin_term(word: str) -> str:
    """Crude English stemming shared by passages and queries: possessive and plural endings removed."""
    word = word.strip(".,'-")
    word = word.removesuffix("'s")
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def _analyse(text: str, analysis: Analysis, query: bool) -> list[str]:
    from sudachipy import SplitMode

    tokenizer = _thread_tokenizer()
    mode = SplitMode.A if analysis.mode == "A" else SplitMode.C
    terms: list[str] = []
    for segment in _segments(_POSSESSIVE.sub("", text)):
        for morpheme in tokenizer.tokenize(segment, mode):
            if _dropped_pos(morpheme.part_of_speech_id()):
                continue
            for term in _morpheme_terms(morpheme, analysis.mode == "C+A"):
                if term and len(term) <= _MAX_TERM_CHARS and not (query and term in _QUERY_STOP):
                    terms.append(term)
    if analysis.bigrams:
        for run in _CJK_RUN.findall(text):
            terms.extend(BIGRAM_PREFIX + run[i:i + 2] for i in range(len(run) - 1)
                         if _KANJI_KATAKANA.search(run, i, i + 2))
    return terms


def _morpheme_terms(morpheme: Morpheme, with_parts: bool) -> list[str]:
    surface = morpheme.surface()
    if _ASCII_TOKEN.fullmatch(surface):
        # Sudachi's normalised form turns English words into katakana ("meeting" -> ミーティング),
        # which would never match an English query; numbers lose their thousands separators.
        if _NUMBER.fullmatch(surface):
            return [morpheme.normalized_form().lower()]
        return [latin_term(surface)]
    terms = [morpheme.normalized_form().lower()]
    if with_parts and len(surface) > 1:
        from sudachipy import SplitMode

        parts = morpheme.split(SplitMode.A)
        if len(parts) > 1:
            terms.extend(p.normalized_form().lower() for p in parts if p.part_of_speech()[0] not in _DROP_POS)
    return terms


def _segments(text: str) -> list[str]:
    if len(text) <= _MAX_SEGMENT_CHARS:
        return [text] if text.strip() else []
    segments: list[str] = []
    start = 0
    while start < len(text):
        end = min(start + _MAX_SEGMENT_CHARS, len(text))
        if end < len(text):
            # Cut after a sentence end or line break so no word is split in two.
            cut = max(text.rfind(mark, start, end) for mark in ("。", "\n", ". ", " "))
            if cut > start:
                end = cut + 1
        segments.append(text[start:end])
        start = end
    return [s for s in segments if s.strip()]


@cache
def _dropped_pos(pos_id: int) -> bool:
    return _dictionary().pos_of(pos_id)[0] in _DROP_POS


@cache
def _dictionary() -> Dictionary:
    from sudachipy import Dictionary

    # The dictionary is loaded once per process; it is immutable and shared by all threads.
    return Dictionary(dict="core")


_local = threading.local()


def _thread_tokenizer() -> Tokenizer:
    # A Sudachi tokenizer must not be used by two threads at once; each thread gets its own.
    tokenizer: Tokenizer | None = getattr(_local, "tokenizer", None)
    if tokenizer is None:
        tokenizer = _dictionary().tokenizer()
        _local.tokenizer = tokenizer
    return tokenizer
