"""Runs a question set against an answering backend and scores every answer.

A backend is anything with `ask(question, history, top_k) -> Answer` and `retrieve(question, top_k)`
(returning None when it cannot retrieve on its own): the in-process `Assistant`, a running server, or
a fixed list of answers in tests.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from assistant.evaluation import metrics as m
from assistant.evaluation.datasets import Question
from assistant.types import Answer, Citation, Grounding, Passage

log = logging.getLogger(__name__)
History = list[dict[str, str]]


class Backend(Protocol):
    name: str

    def ask(self, question: str, history: History, top_k: int | None) -> Answer: ...

    def retrieve(self, question: str, top_k: int) -> list[Passage] | None: ...


def _known(cls: type, data: Mapping[str, Any]) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in data.items() if k in names}


def answer_from_json(data: Mapping[str, Any]) -> Answer:
    """An `Answer` from its JSON form (`Answer.to_json`); unknown keys are ignored."""
    fields = _known(Answer, data)
    fields["citations"] = [Citation(**_known(Citation, c)) for c in data.get("citations") or []]
    fields["closest"] = [Citation(**_known(Citation, c)) for c in data.get("closest") or []]
    fields["passages"] = [Passage(**_known(Passage, p)) for p in data.get("passages") or []]
    fields["grounding"] = Grounding(**_known(Grounding, data.get("grounding") or {}))
    fields.setdefault("question", "")
    fields.setdefault("language", "")
    fields.setdefault("answer", "")
    fields.setdefault("refused", False)
    return Answer(**fields)


class InProcessBackend:
    """The `Assistant` object of this process."""

    def __init__(self, assistant: Any, name: str = "in-process") -> None:
        self.assistant = assistant
        self.name = name

    def ask(self, question: str, history: History, top_k: int | None) -> Answer:
        answer: Answer = self.assistant.ask(question, history=history, top_k=top_k)
        return answer

    def retrieve(self, question: str, top_k: int) -> list[Passage] | None:
        passages: list[Passage] = self.assistant.retrieve(question, top_k=top_k)
        return passages


class HttpBackend:
    """A running server: POST /api/ask and /api/retrieve."""

    def __init__(self, url: str, token: str | None = None, timeout_s: float = 120.0, transport: Any = None) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.url = url.rstrip("/")
        self.name = self.url
        self.client = httpx.Client(timeout=timeout_s, headers=headers, transport=transport)

    def ask(self, question: str, history: History, top_k: int | None) -> Answer:
        r = self.client.post(f"{self.url}/api/ask", json={"question": question, "history": history, "top_k": top_k})
        r.raise_for_status()
        return answer_from_json(r.json())

    def retrieve(self, question: str, top_k: int) -> list[Passage] | None:
        r = self.client.post(f"{self.url}/api/retrieve", json={"question": question, "top_k": top_k})
        if r.status_code == 404:
            return None
        r.raise_for_status()
        return [Passage(**_known(Passage, p)) for p in r.json().get("passages", [])]


class ListBackend:
    """Answers given in advance, by question text (tests and replaying saved answers)."""

    def __init__(self, answers: Mapping[str, Answer], passages: Mapping[str, list[Passage]] | None = None) -> None:
        self.answers = answers
        self.passages = passages or {}
        self.name = "list"

    def ask(self, question: str, history: History, top_k: int | None) -> Answer:
        return self.answers[question]

    def retrieve(self, question: str, top_k: int) -> list[Passage] | None:
        found = self.passages.get(question)
        return found[:top_k] if found is not None else None


class Checker:
    """The project's grounding checker (`assistant.grounding`) with an optional embedder."""

    def __init__(self, embedder: Any = None) -> None:
        from assistant import grounding

        self.g = grounding
        self.embedder = embedder
        self.threshold = float(getattr(grounding, "SUPPORT_THRESHOLD", 0.5))

    def check(self, answer: str, cited: Mapping[int, str]) -> Grounding:
        result: Grounding = self.g.check_answer(answer, cited, embedder=self.embedder)
        return result

    def score(self, sentence: str, passage: str) -> float:
        """Support of `sentence` by `passage`, 0..1."""
        if hasattr(self.g, "support_score"):
            return float(self.g.support_score(sentence, passage, self.embedder))
        rec = self.g.check_answer(f"{sentence}[1]", {1: passage}, embedder=self.embedder).sentences
        return float(rec[0].get("score", 0.0)) if rec else 0.0


def _doc_key(p: Passage, doc_map: Mapping[str, str] | None) -> str:
    """The document a passage belongs to, as the question set names it (shared set: the gold pid)."""
    from pathlib import PurePath

    name = PurePath(p.source or p.doc_id).name
    if doc_map is not None:
        return doc_map.get(name, doc_map.get(p.doc_id, name))
    return name.removesuffix(".txt")


def retrieval_scores(q: Question, passages: Sequence[Passage], ks: Sequence[int],
                     doc_map: Mapping[str, str] | None = None) -> dict[str, float]:
    """R@k / MRR@10 / nDCG@10 of one ranked list: by gold document when the question has one, else evidence."""
    if q.gold_doc:
        hits = m.doc_hits([_doc_key(p, doc_map) for p in passages], q.gold_doc)
        return m.ranking_metrics(hits, 1, ks)
    return m.ranking_metrics(m.evidence_hits([p.text for p in passages], q.evidence), len(q.evidence), ks)


def _cited_relevant(q: Question, c: Citation, text: str, doc_map: Mapping[str, str] | None) -> bool:
    if q.gold_doc:
        return _doc_key(Passage(0, 0.0, c.chunk_id, c.doc_id, "", "", None, c.source, text), doc_map) == q.gold_doc
    return m.contains_any(text, q.evidence)


def score_answer(q: Question, a: Answer, retrieved: Sequence[Passage] | None, ks: Sequence[int],
                 checker: Checker | None, doc_map: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Every per-question figure and the list of what failed."""
    texts = {p.chunk_id: p.text for p in a.passages}
    cited_text = {c.n: (c.text or texts.get(c.chunk_id, "")) for c in a.citations}
    rec: dict[str, Any] = {
        "id": q.id, "lang": q.lang, "type": q.type, "answerable": q.answerable, "question": q.question,
        "answer": a.answer, "refused": a.refused, "refusal_reason": a.refusal_reason, "answerer": a.answerer,
        "standalone_question": a.standalone_question,
        "citations": [{"n": c.n, "chunk_id": c.chunk_id, "doc_id": c.doc_id, "quote": c.quote,
                       "text": cited_text[c.n]} for c in a.citations],
        "failures": [],
    }
    ranked = list(retrieved) if retrieved is not None else list(a.passages)
    rec["retrieved"] = [p.chunk_id for p in ranked[:10]]
    rec["top_score"] = ranked[0].score if ranked else 0.0
    rec["top_scores"] = {k: max(p.scores[k] for p in ranked if k in p.scores) for k in
                         sorted({k for p in ranked for k in p.scores})}
    fails: list[str] = rec["failures"]
    if q.answerable:
        rec["retrieval"] = retrieval_scores(q, ranked, ks, doc_map)
        if rec["retrieval"].get(f"r@{max(ks)}", 0.0) < 1.0:
            fails.append(f"retrieval: evidence not in top {max(ks)}")
    if not a.refused:
        valid = m.citation_validity(a.answer, {c.n: c.chunk_id for c in a.citations},
                                    [p.chunk_id for p in a.passages])
        rec["citation_valid"] = valid
        if not valid:
            fails.append("citation: a marker names no given citation or passage")
    if q.answerable:
        if a.refused:
            rec["evidence_recall"] = 0.0
            # What a wrongly refused reader is pointed at: does a pointed-at sentence hold the evidence?
            rec["pointer_recall"] = float(any(_cited_relevant(q, c, c.quote, doc_map) for c in a.closest))
        elif q.gold_doc:
            rec["evidence_recall"] = float(any(_cited_relevant(q, c, cited_text[c.n], doc_map) for c in a.citations))
        else:
            rec["evidence_recall"] = m.evidence_recall(list(cited_text.values()), q.evidence)
        # Where the reader is led: to the evidence by the answer's citations or by a refusal's pointers.
        rec["evidence_reach"] = rec["pointer_recall"] if a.refused else rec["evidence_recall"]
        if rec["evidence_recall"] < 1.0 and not a.refused:
            fails.append("evidence: gold evidence not in a cited passage")
    if not a.refused and checker is not None:
        _grounding_figures(q, a, cited_text, checker, rec, doc_map)
        if rec.get("sentences_checked") and rec["sentences_supported"] < rec["sentences_checked"]:
            fails.append("grounding: unsupported sentence")
    elif not a.refused and a.citations:
        rel = [_cited_relevant(q, c, cited_text[c.n], doc_map) for c in a.citations]
        rec["citation_precision"] = m.citation_precision(rel, [False] * len(rel))
    if q.answerable and a.refused:
        fails.append("refusal: refused an answerable question")
    if not q.answerable and not a.refused:
        fails.append("refusal: answered an unanswerable question")
    rec["detected_language"] = m.detect_language(a.answer)
    rec["language_match"] = rec["detected_language"] == q.lang
    if not rec["language_match"]:
        fails.append(f"language: answer is '{rec['detected_language']}', question is '{q.lang}'")
    if q.answerable and q.answers:
        rec["answer_contains"] = (not a.refused) and m.containment(a.answer, q.answers)
        rec["answer_char_f1"] = 0.0 if a.refused else m.char_f1(a.answer, q.answers)
        if not rec["answer_contains"]:
            fails.append("answer: no gold answer string in the answer")
    return rec


def _grounding_figures(q: Question, a: Answer, cited_text: Mapping[int, str], checker: Checker,
                       rec: dict[str, Any], doc_map: Mapping[str, str] | None) -> None:
    g = checker.check(a.answer, cited_text)
    claims = [s for s in g.sentences if s.get("kind", "claim") != "framing"]
    rec["sentences_checked"] = g.checked
    rec["sentences_supported"] = g.supported
    rec["unsupported_sentences"] = [s.get("text", "") for s in g.sentences if not s.get("supported")]
    supporting: dict[int, bool] = {}
    for s in claims:
        for n in s.get("citations") or []:
            if n in cited_text and not supporting.get(n):
                supporting[n] = checker.score(str(s.get("text", "")), cited_text[n]) >= checker.threshold
    if a.citations:
        rel = [_cited_relevant(q, c, cited_text[c.n], doc_map) for c in a.citations]
        rec["citation_precision"] = m.citation_precision(rel, [supporting.get(c.n, False) for c in a.citations])


def build_history(q: Question, done: Mapping[str, tuple[Question, Answer]]) -> History:
    """The previous turn of a follow-up as chat history; empty for a standalone question."""
    if not q.followup_of or q.followup_of not in done:
        return []
    prev_q, prev_a = done[q.followup_of]
    return [*build_history(prev_q, done), {"role": "user", "content": prev_q.question},
            {"role": "assistant", "content": prev_a.answer}]


def run_questions(questions: Sequence[Question], backend: Backend, ks: Sequence[int] = (1, 5, 10),
                  top_k: int | None = None, checker: Checker | None = None,
                  doc_map: Mapping[str, str] | None = None, clock: Callable[[], float] = time.perf_counter,
                  progress: Callable[[int, int], None] | None = None) -> list[dict[str, Any]]:
    """Asks every question in order (follow-ups get their earlier turn as history) and scores each answer."""
    done: dict[str, tuple[Question, Answer]] = {}
    records = []
    for i, q in enumerate(questions):
        history = build_history(q, done)
        t0 = clock()
        try:
            a = backend.ask(q.question, history, top_k)
        except Exception as exc:  # one failing question must not stop the run
            log.exception("question %s failed", q.id)
            records.append({"id": q.id, "lang": q.lang, "type": q.type, "answerable": q.answerable,
                            "question": q.question, "error": repr(exc), "failures": [f"error: {exc!r}"]})
            continue
        latency_ms = (clock() - t0) * 1000
        done[q.id] = (q, a)
        retrieved = backend.retrieve(a.standalone_question or q.question, max(max(ks), 10))
        rec = score_answer(q, a, retrieved, ks, checker, doc_map)
        rec["history_turns"] = len(history) // 2
        rec["latency_ms"] = round(latency_ms, 1)
        rec["timings_ms"] = dict(a.timings_ms)
        records.append(rec)
        if progress:
            progress(i + 1, len(questions))
    return records


def aggregate(records: Sequence[dict[str, Any]], ks: Sequence[int] = (1, 5, 10)) -> dict[str, Any]:
    """Set-level figures of a list of per-question records (see the README for each definition)."""
    ok = [r for r in records if "error" not in r]
    ans = [r for r in ok if r["answerable"]]
    said = [r for r in ok if not r["refused"]]
    out: dict[str, Any] = {"questions": len(records), "errors": len(records) - len(ok)}
    for key in [*(f"r@{k}" for k in ks), "mrr@10", "ndcg@10"]:
        out[f"retrieval_{key}"] = m.mean(r["retrieval"].get(key) for r in ans if "retrieval" in r)
    out["citation_validity"] = m.mean(float(r["citation_valid"]) for r in said if "citation_valid" in r)
    out["evidence_recall"] = m.mean(r.get("evidence_recall") for r in ans)
    out["pointer_recall"] = m.mean(r.get("pointer_recall") for r in ans)
    out["evidence_reach"] = m.mean(r.get("evidence_reach") for r in ans)
    out["citation_precision"] = m.mean(r.get("citation_precision") for r in said)
    checked = sum(r.get("sentences_checked", 0) for r in said)
    out["grounded_share"] = (sum(r.get("sentences_supported", 0) for r in said) / checked) if checked else None
    out.update(m.refusal_rates([r["refused"] for r in ok], [r["answerable"] for r in ok]))
    out["language_match"] = m.mean(float(r["language_match"]) for r in ok)
    out["answer_containment"] = m.mean(float(r["answer_contains"]) for r in ans if "answer_contains" in r)
    out["answer_char_f1"] = m.mean(r.get("answer_char_f1") for r in ans)
    out.update(m.latency_summary([r["latency_ms"] for r in ok]))
    return out


def grouped(records: Sequence[dict[str, Any]], ks: Sequence[int] = (1, 5, 10)) -> dict[str, dict[str, Any]]:
    """`aggregate` over all questions, per language (`ja`, `en`) and per type (`type:fact`, ...)."""
    groups: dict[str, list[dict[str, Any]]] = {"all": list(records)}
    for r in records:
        groups.setdefault(r["lang"], []).append(r)
    for r in records:
        groups.setdefault(f"type:{r['type']}", []).append(r)
    return {name: aggregate(rs, ks) for name, rs in groups.items()}


def refusal_curves(records: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, float]]]:
    """Refusal accuracy vs false refusals when refusing below a threshold on the top passage score (and sub-scores)."""
    ok = [r for r in records if "error" not in r]
    if not ok or not any(r.get("top_score") for r in ok):
        return {}
    curves = {"score": m.threshold_curve([float(r["top_score"]) for r in ok], [r["answerable"] for r in ok])}
    keys = sorted({k for r in ok for k in r.get("top_scores", {})})
    for k in keys:
        vals = [r.get("top_scores", {}).get(k) for r in ok]
        if all(v is not None for v in vals):
            curves[k] = m.threshold_curve([float(v) for v in vals if v is not None], [r["answerable"] for r in ok])
    return curves
