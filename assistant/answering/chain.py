"""The answering chain as LCEL runnables: condense, retrieve, weigh the evidence, answer, verify.

Without a chat model the extractive answerer writes the answer; with one, the model writes it and
the guards keep only verified sentences, falling back to the extractive answer when nothing is left.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from langchain_core.runnables import Runnable, RunnableLambda, RunnablePassthrough

from assistant import grounding
from assistant.answering import answertype, extractive, followup, header, overview, prompts
from assistant.answering.guards import AnswerGuard, GuardResult
from assistant.answering.refusal import RefusalRule, closest, load_rule, refusal_text
from assistant.errors import check_question
from assistant.settings import Settings
from assistant.types import Answer, Citation, Grounding, Passage

if TYPE_CHECKING:
    from assistant.core import Filters

log = logging.getLogger(__name__)

Retrieve = Callable[[str, int, "Filters | None"], list[Passage]]
# A section heading this short is a label ("ロシア", "米国の立場"), not a title that states a topic.
SHORT_LABEL_CHARS = 12
# How far down the ranking a list under a label the question names is looked for (at least): such a list
# names its party only in its label and ranks low, the lower the fewer passages are asked for.
LABEL_POOL = 10
MAX_PROMOTED = 2
# A document's passages in order, by document id (for questions about a whole document).
DocumentPassages = Callable[[str], list[Passage]]


@dataclass
class Draft:
    """An answer before it becomes an `Answer`: text, citations and how it was checked."""

    answer: str
    citations: list[Citation] = field(default_factory=list)
    grounding: Grounding = field(default_factory=Grounding)
    answerer: str = "extractive"
    refused: bool = False
    refusal_reason: str = ""
    closest: list[Citation] = field(default_factory=list)


def clean_question(question: str, max_chars: int) -> str:
    """The shared question check (`check_question`), with line breaks folded into spaces."""
    return check_question(question or "", max_chars).replace("\r", " ").replace("\n", " ").replace("\t", " ")


class AnswerPipeline:
    """Answers one question (with its chat history) from the passages `retrieve` returns."""

    def __init__(self, settings: Settings, embedder: Any, retrieve: Retrieve, chat_model: Any = None,
                 rule: RefusalRule | None = None, document: DocumentPassages | None = None) -> None:
        self.settings = settings
        self.retrieve = retrieve
        self.document = document
        self.chat_model = chat_model
        self.answerer = settings.llm if chat_model is not None else "extractive"
        from assistant.text.lexicon import load_lexicon

        self.scorer = extractive.SentenceScorer(embedder, lexicon=load_lexicon(str(settings.model_dir)))
        self.rule = rule or load_rule()
        self.prepare: Runnable[dict[str, Any], dict[str, Any]] = (
            RunnablePassthrough.assign(standalone=RunnableLambda(self._condense))
            | RunnablePassthrough.assign(overview=RunnableLambda(self._asks_overview))
            | RunnablePassthrough.assign(header=RunnableLambda(self._asks_header))
            | RunnablePassthrough.assign(passages=RunnableLambda(self._retrieve))
            | RunnablePassthrough.assign(evidence=RunnableLambda(self._weigh))
        )
        self.chain: Runnable[dict[str, Any], Answer] = (
            self.prepare
            | RunnablePassthrough.assign(draft=RunnableLambda(self._answer))
            | RunnableLambda(self._finish)
        )

    # Public ------------------------------------------------------------------------------------
    def ask(self, question: str, history: Sequence[Mapping[str, str]] = (), top_k: int | None = None,
            filters: Filters | None = None) -> Answer:
        return self.chain.invoke(self._inputs(question, history, top_k, filters))

    def ask_stream(self, question: str, history: Sequence[Mapping[str, str]] = (), top_k: int | None = None,
                   filters: Filters | None = None) -> Iterator[str | Answer]:
        """Yields text deltas (only verified sentences), then the final `Answer`."""
        state = self.prepare.invoke(self._inputs(question, history, top_k, filters))
        if self.chat_model is None or state["evidence"]["refuse"]:
            draft = self._answer(state)
            yield from _pieces(draft.answer)
        else:
            draft = yield from self._stream_model(state)
        yield self._finish({**state, "draft": draft})

    # Steps -------------------------------------------------------------------------------------
    def _inputs(self, question: str, history: Sequence[Mapping[str, str]], top_k: int | None,
                filters: Filters | None) -> dict[str, Any]:
        from assistant.text.lang import detect_language

        text = clean_question(question, self.settings.max_question_chars)
        return {"question": text, "history": list(history), "top_k": top_k or self.settings.top_k,
                "filters": filters, "language": detect_language(text),
                "timings": {}, "t0": time.perf_counter()}

    def _condense(self, state: dict[str, Any]) -> str:
        question, history = state["question"], state["history"]
        if not history:
            return str(question)
        if self.chat_model is not None:
            t = time.perf_counter()
            try:
                msgs = prompts.condense_messages(question, history, state["language"])
                text = str(self.chat_model.invoke(msgs).content).strip()
                if 0 < len(text) <= self.settings.max_question_chars:
                    return text
            except Exception as exc:  # noqa: BLE001 - a failing model server must not fail the question
                log.warning("condensing the follow-up failed: %s", exc)
            finally:
                state["timings"]["condense"] = _ms(t)
        return followup.carry_terms(question, history)

    def _asks_overview(self, state: dict[str, Any]) -> bool:
        return self.document is not None and overview.asks_overview(state["standalone"])

    def _asks_header(self, state: dict[str, Any]) -> str | None:
        if self.document is None or state["overview"]:
            return None
        return header.asks(state["standalone"])

    def _retrieve(self, state: dict[str, Any]) -> list[Passage]:
        t = time.perf_counter()
        question, top_k, filters = state["standalone"], state["top_k"], state["filters"]
        if state["overview"] and self.document is not None:
            # A question about a whole document: the first passage tells which document; its own
            # passages, in order, are what the answer is drawn from.
            first = self.retrieve(question, 1, filters)
            passages = self.document(first[0].doc_id)[: overview.MAX_CHUNKS] if first else []
        else:
            passages = self._labelled(question, top_k, self.retrieve(question, max(2 * top_k, LABEL_POOL), filters))
            if state["header"] and passages and self.document is not None:
                # The document's own date or maker: its header passage, when it has one, comes first.
                head = self.document(passages[0].doc_id)[:1]
                if head and header.answer_lines(state["header"], head[0]):
                    passages = [head[0], *(p for p in passages if p.chunk_id != head[0].chunk_id)][:top_k]
        state["timings"]["retrieve"] = _ms(t)
        return passages

    def _labelled(self, question: str, top_k: int, found: list[Passage]) -> list[Passage]:
        """The first `top_k` passages, where a passage further down whose section is a short label the
        question names ("ロシア" over its list of demands, for "ロシアの要求は何ですか") takes the place of
        the lowest-ranked one, unless a passage of that section is already there (at most `MAX_PROMOTED`).
        Such a list names its party only in its label, so it ranks low for a question about the party."""
        top, rest = list(found[:top_k]), found[top_k:]
        short = [p.section.strip() if 0 < len(p.section.strip()) <= SHORT_LABEL_CHARS else "" for p in rest]
        if not any(short):
            return top
        named = self.scorer.labels_named(question, short)
        have = {p.section.strip() for p in top}
        promoted: list[Passage] = []
        for p, label, hit in zip(rest, short, named, strict=True):
            if hit and label not in have and len(promoted) < MAX_PROMOTED:
                promoted.append(p)
                have.add(label)
        if not promoted:
            return top
        return [dataclasses.replace(p, rank=r) for r, p in
                enumerate([*top[: max(0, top_k - len(promoted))], *promoted], start=1)]

    def _weigh(self, state: dict[str, Any]) -> dict[str, Any]:
        t = time.perf_counter()
        if state["overview"]:
            lead = overview.lead_evidence(self.scorer, state["passages"])
            chosen = overview.select(lead)
            state["timings"]["answer"] = _ms(t)
            return {"evidence": lead.evidence, "chosen": chosen, "refuse": not chosen, "p_answerable": 1.0,
                    "reason": "" if chosen else "no_evidence"}
        evidence = self.scorer.score(state["standalone"], state["passages"])
        chosen = extractive.select(evidence)
        lines = header.chosen(state["header"], state["passages"]) if state["header"] else []
        if lines:
            # The lines under the document's title that give its date or its maker: where they stand
            # says what they are, whatever their similarity to the question.
            chosen, refuse, p, reason = lines, False, 1.0, ""
        elif not chosen:
            refuse, p, reason = True, 0.0, "no_evidence"
        elif evidence.table and all(s.label_asked for s in chosen):
            # The question asks what a table or a list says under a label it names ("主張の表にあるロシアの
            # 要求", "the positions table … Ukraine"), and the quotes are that label's items: the document
            # answers it by its structure, whatever the wording's similarity (the vetoes still apply).
            refuse, p, reason = False, 1.0, ""
        elif evidence.focus and all(s.focus for s in chosen):
            # "再発防止策は何ですか" and the quotes stand under the heading "再発防止策" of a document the
            # question's other words point to: its structure answers it, as a label does (the vetoes apply).
            refuse, p, reason = False, 1.0, ""
        else:
            refuse, p = self.rule.refuse(evidence.features)
            reason = f"weak_evidence (p={p:.2f})" if refuse else ""
        if not refuse:
            # A chat model reads every given passage; the extractive answer only its quotes.
            read = [state["passages"][s.passage] for s in chosen] if self.chat_model is None else state["passages"]
            given = [s.text for s in chosen] if self.chat_model is None else [x.text for x in read]
            absent = answertype.veto(state["standalone"], given, [h for x in read for h in (x.title, x.section) if h],
                                     [x.text for x in read])
            if absent:
                # The question asks for a date or a number and nothing the answer rests on gives one, or
                # names a year they do not speak of: quoting them would look like an answer without being one.
                refuse, reason = True, f"asked_detail_absent ({absent})"
        state["timings"]["answer"] = _ms(t)
        return {"evidence": evidence, "chosen": chosen, "refuse": refuse, "p_answerable": p, "reason": reason}

    def _answer(self, state: dict[str, Any]) -> Draft:
        ev = state["evidence"]
        if ev["refuse"]:
            return self._refusal(state)
        if self.chat_model is None:
            return self._extractive(state)
        t = time.perf_counter()
        try:
            msgs = prompts.answer_messages(state["standalone"], _given(state), state["language"])
            raw = str(self.chat_model.invoke(msgs).content)
        except Exception as exc:  # noqa: BLE001 - time-outs, refused connections, server errors: fall back
            log.warning("chat model failed (%s); answering extractively", exc)
            state["timings"]["answer"] = state["timings"].get("answer", 0.0) + _ms(t)
            return self._fallback(state, None, f"model_error: {type(exc).__name__}")
        state["timings"]["answer"] = state["timings"].get("answer", 0.0) + _ms(t)
        t = time.perf_counter()
        guard = AnswerGuard(_given(state), state["language"], self.scorer)
        guard.feed(raw)
        guard.close()
        result = guard.result()
        state["timings"]["verify"] = _ms(t)
        if result.fallback_reason:
            return self._fallback(state, result, result.fallback_reason)
        return Draft(result.answer, result.citations, result.grounding, self.answerer)

    def _stream_model(self, state: dict[str, Any]) -> Generator[str, None, Draft]:
        guard = AnswerGuard(_given(state), state["language"], self.scorer)
        sep = "" if state["language"] == "ja" else " "
        shown = 0
        t = time.perf_counter()
        error = ""
        try:
            msgs = prompts.answer_messages(state["standalone"], _given(state), state["language"])
            for chunk in self.chat_model.stream(msgs):
                for sentence in guard.feed(str(chunk.content)):
                    yield (sep if shown else "") + sentence
                    shown += 1
            for sentence in guard.close():
                yield (sep if shown else "") + sentence
                shown += 1
        except Exception as exc:  # noqa: BLE001 - same fallback as `_answer`
            log.warning("chat model failed while streaming (%s)", exc)
            error = f"model_error: {type(exc).__name__}"
        state["timings"]["answer"] = state["timings"].get("answer", 0.0) + _ms(t)
        result = guard.result()
        if shown:
            return Draft(result.answer, result.citations, result.grounding, self.answerer)
        draft = self._fallback(state, result, error or result.fallback_reason)
        yield draft.answer
        return draft

    def _extractive(self, state: dict[str, Any]) -> Draft:
        t = time.perf_counter()
        passages = state["passages"]
        text, citations = extractive.compose(
            state["standalone"], state["language"], state["evidence"]["chosen"], passages,
            source=passages[0].title if state["overview"] and passages else "")
        state["timings"]["answer"] = state["timings"].get("answer", 0.0) + _ms(t)
        t = time.perf_counter()
        checked = grounding.check_answer(text, {c.n: c.text for c in citations})
        state["timings"]["verify"] = _ms(t)
        return Draft(text, citations, checked, "extractive")

    def _refusal(self, state: dict[str, Any]) -> Draft:
        text = refusal_text(state["language"], state["evidence"]["reason"])
        checked = grounding.check_answer(text, {})
        ranked = state["evidence"]["evidence"].ranked()
        near = closest(state["passages"], [(s.passage, s.start, s.end) for s in ranked])
        return Draft(text, [], checked, self.answerer, refused=True,
                     refusal_reason=state["evidence"]["reason"], closest=near)

    def _fallback(self, state: dict[str, Any], result: GuardResult | None, reason: str) -> Draft:
        draft = self._extractive(state)
        g = draft.grounding
        g.fallback = True
        g.fallback_reason = reason
        if result is not None:
            g.dropped = result.grounding.dropped
            g.sentences = [{**r, "answerer": self.answerer} for r in result.grounding.sentences] + g.sentences
        return draft

    def _finish(self, state: dict[str, Any]) -> Answer:
        draft: Draft = state["draft"]
        if state["language"] == "en":
            t = time.perf_counter()
            for c in [*draft.citations, *draft.closest]:
                c.glosses = extractive.glosses(self.scorer.lexicon, c.quote, state["standalone"])
            state["timings"]["glosses"] = _ms(t)
        timings = state["timings"]
        timings.setdefault("verify", 0.0)
        timings["total"] = _ms(state["t0"])
        return Answer(
            question=state["question"], language=state["language"], answer=draft.answer,
            refused=draft.refused, citations=draft.citations, passages=list(state["passages"]),
            grounding=draft.grounding, answerer=draft.answerer,
            timings_ms={k: round(v, 2) for k, v in timings.items()}, id=uuid.uuid4().hex,
            standalone_question=state["standalone"], refusal_reason=draft.refusal_reason, closest=draft.closest,
        )


def _given(state: dict[str, Any]) -> list[Passage]:
    return list(state["passages"][: extractive.MAX_PASSAGES])


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000.0


def _pieces(text: str) -> Iterator[str]:
    """The text in sentence-sized deltas that concatenate back to it exactly."""
    at = 0
    for sentence in grounding.split_answer(text):
        end = text.find(sentence, at)
        if end < 0:
            break
        end += len(sentence)
        yield text[at:end]
        at = end
    if at < len(text):
        yield text[at:]


def make_pipeline(settings: Settings, embedder: Any, retrieve: Retrieve, chat_model: Any = None,
                  document: DocumentPassages | None = None) -> AnswerPipeline:
    """The pipeline for `settings.llm`; `chat_model` overrides the configured one (tests pass fakes).
    `document`: a document's passages in order, for questions about a whole document."""
    from assistant.answering.llm import make_chat_model

    model = chat_model if chat_model is not None else make_chat_model(settings)
    return AnswerPipeline(settings, embedder, retrieve, chat_model=model, document=document)
