"""Guards on whatever a chat model returns: valid, renumbered, supported citations in the right language.

Sentences are checked one at a time, so a streamed answer shows only sentences that passed. A
sentence is kept when it cites a given passage that supports it (`assistant.grounding`) and is in the
question's language; instruction-like passage sentences never count as support.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from assistant import grounding
from assistant.answering.extractive import INSTRUCTION_RE, SentenceScorer, _trim
from assistant.types import Citation, Grounding, Passage

_FENCE_LEFTOVER = re.compile(r"</?\s*passages?[^>]*>", re.IGNORECASE)
_ALT_MARKERS = re.compile(r"【(\d+)】|\[\^(\d+)\]|\(\s*(?:passage|資料)\s*(\d+)\s*\)", re.IGNORECASE)


@dataclass
class GuardResult:
    answer: str
    citations: list[Citation]
    grounding: Grounding
    fallback_reason: str = ""


@dataclass
class _Source:
    passage: Passage
    sentences: list[str]
    spans: list[tuple[int, int]]
    usable: list[int]  # indices of sentences that are not instructions to the reader


@dataclass
class AnswerGuard:
    """Feeds model text in, gets verified sentences out; `result()` gives the checked answer."""

    passages: Sequence[Passage]
    language: str
    scorer: SentenceScorer | None = None
    buffer: str = ""
    kept: list[str] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    renumber: dict[int, int] = field(default_factory=dict)
    quote_of: dict[int, int] = field(default_factory=dict)  # old n -> best sentence index
    _sources: dict[int, _Source] = field(default_factory=dict)

    def feed(self, delta: str) -> list[str]:
        """Adds model text; returns the sentences completed and kept so far (renumbered)."""
        self.buffer += delta
        parts = grounding.split_answer(self.buffer)
        if not parts:
            return []
        # The last part may still grow (more words, or its [n] marker) unless text follows it.
        done, rest = parts[:-1], parts[-1]
        tail_at = self.buffer.rfind(rest)
        self.buffer = self.buffer[tail_at:] if tail_at >= 0 else rest
        return [s for s in (self._check(p) for p in done) if s]

    def close(self) -> list[str]:
        parts = grounding.split_answer(self.buffer)
        self.buffer = ""
        return [s for s in (self._check(p) for p in parts) if s]

    def _source(self, n: int) -> _Source:
        src = self._sources.get(n)
        if src is None:
            from assistant.text.chunking import split_sentences

            p = self.passages[n - 1]
            spans = [_trim(p.text, s, e) for s, e in split_sentences(p.text)]
            spans = [(s, e) for s, e in spans if e > s] or [(0, len(p.text))]
            sentences = [p.text[s:e] for s, e in spans]
            usable = [i for i, t in enumerate(sentences) if not INSTRUCTION_RE.search(t)]
            src = _Source(p, sentences, spans, usable)
            self._sources[n] = src
        return src

    def _support(self, claim: str, n: int) -> tuple[float, int]:
        src = self._source(n)
        if not src.usable:
            return 0.0, 0
        sentences = [src.sentences[i] for i in src.usable]
        claim_vec = sent_vecs = None
        if self.scorer is not None:
            from assistant.grounding import _QUOTE_RE

            claim_vec = self.scorer.query_vector(_QUOTE_RE.sub("", claim) or claim)
            sent_vecs = self.scorer.sentence_vectors(sentences)
        score, i = grounding.best_support(claim, sentences, claim_vec, sent_vecs)
        return score, src.usable[i]

    def _check(self, raw: str) -> str | None:
        from assistant.text.lang import detect_language

        text = _FENCE_LEFTOVER.sub("", raw)
        text = _ALT_MARKERS.sub(lambda m: f"[{next(g for g in m.groups() if g)}]", text).strip()
        claim = grounding.parse_claim(text)
        given = [n for n in claim.citations if 1 <= n <= len(self.passages)]
        invented = [n for n in claim.citations if n not in given]
        record: dict[str, Any] = {"text": raw.strip(), "citations": claim.citations, "score": 0.0,
                                  "supported": False, "kind": "claim"}
        self.records.append(record)
        if invented:
            record["removed_citations"] = invented
        if not text or grounding.is_framing(claim):
            record.update(kind="framing", dropped=True, reason="no_claim")
            return None
        if not given:
            record.update(dropped=True, reason="no_valid_citation" if invented else "no_citation")
            return None
        prose = grounding._QUOTE_RE.sub("", claim.claim)
        if re.search(r"[^\W\d_]", prose) and detect_language(prose) != self.language:
            record.update(dropped=True, reason="wrong_language")
            return None
        best, best_n, best_i = 0.0, given[0], 0
        for n in given:
            score, i = self._support(claim.claim, n)
            if score > best:
                best, best_n, best_i = score, n, i
        record["score"] = round(best, 4)
        if best < grounding.SUPPORT_THRESHOLD:
            record.update(dropped=True, reason="unsupported")
            return None
        # Keep only the citations that support the sentence, renumbered in order of appearance.
        keep = [n for n in given if n == best_n or self._support(claim.claim, n)[0] >= grounding.SUPPORT_THRESHOLD]
        for n in keep:
            if n not in self.renumber:
                self.renumber[n] = len(self.renumber) + 1
                self.quote_of[n] = best_i if n == best_n else self._support(claim.claim, n)[1]
        body = grounding.MARKER_RE.sub("", text).rstrip()
        tail = ""
        if body and body[-1] in "。.!?！？":
            body, tail = body[:-1].rstrip(), body[-1]
        marks = "".join(f"[{self.renumber[n]}]" for n in keep)
        sep = "" if self.language == "ja" else " "
        out = f"{body}{sep}{marks}{tail}"
        record.update(supported=True, citations=[self.renumber[n] for n in keep], text=out)
        self.kept.append(out)
        return out

    def citations(self) -> list[Citation]:
        out = []
        for old, new in sorted(self.renumber.items(), key=lambda kv: kv[1]):
            src = self._source(old)
            s, e = src.spans[self.quote_of[old]]
            p = src.passage
            out.append(Citation(
                n=new, chunk_id=p.chunk_id, doc_id=p.doc_id, title=p.title, section=p.section, page=p.page,
                source=p.source, text=p.text, quote=p.text[s:e], start=s, end=e, date=p.date,
            ))
        return out

    def result(self) -> GuardResult:
        """The kept sentences as the answer, or an empty answer with the reason to fall back."""
        g = Grounding(
            checked=len(self.records),
            supported=sum(1 for r in self.records if r["supported"]),
            dropped=sum(1 for r in self.records if r.get("dropped")),
            sentences=list(self.records),
        )
        sep = "" if self.language == "ja" else " "
        if self.kept:
            return GuardResult(sep.join(self.kept), self.citations(), g)
        reasons = [r.get("reason", "") for r in self.records]
        if not reasons:
            reason = "empty_answer"
        elif all(r == "no_claim" for r in reasons):
            reason = "model_refused"
        elif "wrong_language" in reasons and reasons.count("wrong_language") >= len(reasons) / 2:
            reason = "wrong_language"
        elif "unsupported" in reasons:
            reason = "unsupported"
        else:
            reason = "no_valid_citation"
        return GuardResult("", [], g, reason)


def guard_answer(text: str, passages: Sequence[Passage], language: str,
                 scorer: SentenceScorer | None = None) -> GuardResult:
    """Checks a complete model answer at once."""
    guard = AnswerGuard(passages, language, scorer)
    guard.feed(text)
    guard.close()
    return guard.result()
