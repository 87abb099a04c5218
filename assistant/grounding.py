"""Checks that each sentence of an answer is supported by the passages it cites.

Rule, per answer sentence:
- `[n]` markers name the cited passages; known framing phrases ("文書によると", "The documents say",
  "as of <date>") are stripped before scoring, since they assert nothing.
- A sentence that is only framing (or a refusal) counts as checked and supported, kind "framing".
- Any other sentence is supported when its best support over its cited passages reaches
  `SUPPORT_THRESHOLD`; a sentence without citations is unsupported. Quoted text (「…」 or "…")
  must occur verbatim in a cited passage, or the sentence is unsupported whatever its score.
Support mixes lexical overlap (character bigrams of search forms, quote containment) with embedding
similarity; an English claim over a Japanese passage has no lexical overlap and relies on the embedding.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from assistant.answering.refusal import DETAIL_TEXT, REFUSAL_TEXT, UNSURE_TEXT
from assistant.text.lang import has_japanese
from assistant.types import Grounding

SUPPORT_THRESHOLD = 0.5
# e5 cosines are compressed: unrelated text still scores about 0.75, a paraphrase about 0.9. Across
# languages everything is lower: measured on the briefing, English paraphrases of Japanese sentences
# scored 0.81-0.86 and unrelated or false English claims 0.69-0.80 (one contradiction 0.82).
_COS_FLOOR = 0.80
_COS_CEIL = 0.93
_XLING_COS_FLOOR = 0.78
_XLING_COS_CEIL = 0.835

MARKER_RE = re.compile(r"\[(\d+(?:\s*[,，、]\s*\d+)*)\]")
_QUOTE_RE = re.compile(r"「([^「」]+)」|『([^『』]+)』|\"([^\"]+)\"|“([^”]+)”")
_DATE = r"\d{4}(?:-\d{1,2}){0,2}"
_FRAMING_RE = re.compile(
    r"^\s*(?:"
    rf"{_DATE}時点の文書によると[、,]?|文書によると[、,]?|また[、,]?"
    rf"|according to the documents(?: as of {_DATE})?[,:]?|the documents(?: as of {_DATE})? say[:,]?"
    r"|they also say[:,]?"
    r")\s*",
    re.IGNORECASE,
)
_REFUSALS = (*REFUSAL_TEXT.values(), *UNSURE_TEXT.values(), *DETAIL_TEXT.values())
_CLOSERS = "」』）)\"”’"


class SupportsEmbedding(Protocol):
    def embed_queries(self, texts: list[str]) -> np.ndarray: ...
    def embed_passages(self, texts: list[str]) -> np.ndarray: ...


@dataclass
class Claim:
    """One answer sentence: its text, cited numbers, and the claim left after framing and markers."""

    text: str
    citations: list[int]
    claim: str


def split_answer(answer: str) -> list[str]:
    """Splits an answer into sentences; `[n]` markers after a full stop stay with their sentence."""
    out: list[str] = []
    depth = 0
    in_straight = False
    start = 0
    i = 0
    n = len(answer)
    while i < n:
        ch = answer[i]
        if ch in "「『“":
            depth += 1
        elif ch in "」』”" and depth:
            depth -= 1
        elif ch == '"':
            in_straight = not in_straight
        end_here = depth == 0 and not in_straight and (ch in "。！？!?" or (ch == "." and (i + 1 == n or answer[i + 1].isspace())))
        if end_here:
            j = i + 1
            while True:
                m = re.match(r"\s*\[\d+(?:\s*[,，、]\s*\d+)*\]", answer[j:])
                if not m:
                    break
                j += m.end()
            if j < n and answer[j] in _CLOSERS:
                j += 1
            out.append(answer[start:j].strip())
            start = i = j
            continue
        i += 1
    tail = answer[start:].strip()
    if tail:
        out.append(tail)
    return [s for s in out if s]


def parse_claim(sentence: str) -> Claim:
    """Citations named in a sentence and its claim text without markers or framing."""
    cited: list[int] = []
    for m in MARKER_RE.finditer(sentence):
        for part in re.split(r"[,，、]", m.group(1)):
            num = int(part.strip())
            if num not in cited:
                cited.append(num)
    # "Ukraine [1]." must read "Ukraine.": a stray space shifts embeddings measurably.
    claim = re.sub(r"\s+([.。,、!?！？])", r"\1", MARKER_RE.sub("", sentence)).strip()
    prev = None
    while prev != claim:
        prev = claim
        claim = _FRAMING_RE.sub("", claim, count=1).strip()
    return Claim(text=sentence, citations=cited, claim=claim)


def is_framing(claim: Claim) -> bool:
    """A sentence that asserts nothing: only framing phrases, punctuation, or a refusal."""
    if claim.text.strip() in _REFUSALS:
        return True
    return not re.sub(r"[\s\W_]+", "", claim.claim)


def quotes_in(text: str) -> list[str]:
    return [next(g for g in m.groups() if g) for m in _QUOTE_RE.finditer(text)]


def _compact(text: str) -> str:
    """Search form without spaces and punctuation, for bigram overlap across line breaks and widths."""
    from assistant.text.normalize import search_form

    return re.sub(r"[\s\W_]+", "", search_form(text).text.lower())


def _bigrams(text: str) -> set[str]:
    return {text[i : i + 2] for i in range(len(text) - 1)} if len(text) > 1 else {text} if text else set()


def quote_found(quote: str, passage: str) -> bool:
    """True when the quote occurs in the passage verbatim, up to line breaks and character widths."""
    if quote in passage:
        return True
    from assistant.text.normalize import find_in_display

    return find_in_display(quote, passage) is not None


def lexical_support(claim: str, passage: str) -> float:
    """Share of the claim's character bigrams found in the passage (1.0 for a contained quote)."""
    quoted = quotes_in(claim)
    if quoted and all(quote_found(q, passage) for q in quoted):
        rest = _QUOTE_RE.sub("", claim)
        if not re.sub(r"[\s\W_]+", "", rest):
            return 1.0
    a, b = _compact(claim), _compact(passage)
    grams = _bigrams(a)
    if not grams:
        return 0.0
    return len(grams & _bigrams(b)) / len(grams)


def passage_sentences(passage: str) -> list[str]:
    from assistant.text.chunking import split_sentences

    spans = split_sentences(passage)
    return [passage[s:e].strip() for s, e in spans if passage[s:e].strip()] or [passage]


def combine(lexical: float, embedded: float | None, cross_lingual: bool) -> float:
    """Lexical overlap and embedding similarity in one score; cross-lingual claims use the embedding."""
    if embedded is None:
        return lexical
    if cross_lingual:
        return max(embedded, lexical)
    return max(lexical, 0.6 * lexical + 0.4 * embedded)


def _numbers(text: str) -> set[str]:
    import unicodedata

    return set(re.findall(r"\d+(?:\.\d+)?", unicodedata.normalize("NFKC", text)))


def best_support(claim: str, sentences: Sequence[str], claim_vec: np.ndarray | None = None,
                 sentence_vecs: np.ndarray | None = None) -> tuple[float, int]:
    """Support of a claim by one passage given as sentences: (score 0..1, index of the best sentence).

    Lexical overlap is taken against the whole passage, so a claim joining two sentences still counts;
    a number in the claim that the passage lacks caps the score below the threshold.
    """
    if not claim.strip() or not sentences:
        return 0.0, 0
    whole = "".join(sentences)
    for q in quotes_in(claim):
        if not any(quote_found(q, s) for s in sentences) and not quote_found(q, whole):
            return 0.0, 0
    per_lex = [lexical_support(claim, s) for s in sentences]
    lexical = max(lexical_support(claim, whole), *per_lex)
    cross = has_japanese(_QUOTE_RE.sub("", claim)) != has_japanese(whole)
    cos: np.ndarray | None = None
    if claim_vec is not None and sentence_vecs is not None and len(sentence_vecs):
        lo, hi = (_XLING_COS_FLOOR, _XLING_COS_CEIL) if cross else (_COS_FLOOR, _COS_CEIL)
        cos = np.clip((sentence_vecs @ claim_vec - lo) / (hi - lo), 0.0, 1.0)
    embedded = float(cos.max()) if cos is not None else None
    score = combine(lexical, embedded, cross)
    if _numbers(_QUOTE_RE.sub("", claim)) - _numbers(whole):
        score = min(score, SUPPORT_THRESHOLD * 0.5)
    per = [combine(per_lex[i], float(cos[i]) if cos is not None else None, cross) for i in range(len(sentences))]
    return score, int(np.argmax(per))


def support_score(sentence: str, passage: str, embedder: SupportsEmbedding | None = None) -> float:
    """How well `passage` supports `sentence`, 0..1; quoted text must occur verbatim or the score is 0."""
    claim = parse_claim(sentence).claim
    if not claim:
        return 0.0
    sentences = passage_sentences(passage)
    claim_vec = sentence_vecs = None
    if embedder is not None:
        claim_vec = embedder.embed_queries([_QUOTE_RE.sub("", claim) or claim])[0]
        sentence_vecs = embedder.embed_passages(sentences)
    return best_support(claim, sentences, claim_vec, sentence_vecs)[0]


def check_sentence(sentence: str, cited: Mapping[int, str],
                   embedder: SupportsEmbedding | None = None) -> dict[str, Any]:
    """The per-sentence record of `check_answer`: text, citations, score, supported, kind."""
    claim = parse_claim(sentence)
    if is_framing(claim):
        return {"text": sentence, "citations": claim.citations, "score": 1.0, "supported": True,
                "kind": "framing"}
    valid = [n for n in claim.citations if n in cited]
    score = max((support_score(claim.claim, cited[n], embedder) for n in valid), default=0.0)
    return {"text": sentence, "citations": claim.citations, "score": round(score, 4),
            "supported": bool(valid) and score >= SUPPORT_THRESHOLD, "kind": "claim"}


def check_answer(answer: str, cited: Mapping[int, str], embedder: SupportsEmbedding | None = None) -> Grounding:
    """Checks every sentence of `answer` against the passages its `[n]` markers name (`cited[n]`)."""
    records = [check_sentence(s, cited, embedder) for s in split_answer(answer)]
    return Grounding(
        checked=len(records),
        supported=sum(1 for r in records if r["supported"]),
        sentences=records,
    )


def markers(text: str) -> Iterable[int]:
    """Every citation number in `text`, in order, repeats included."""
    for m in MARKER_RE.finditer(text):
        for part in re.split(r"[,，、]", m.group(1)):
            yield int(part.strip())
