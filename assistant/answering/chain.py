"""The answering chain as LCEL runnables: understand, retrieve, weigh the evidence, then respond.

One path for every caller: each step takes and returns one typed `AskState` and records its own time;
the last step is a generator that yields the answer's text as it is written, then the `Answer`.
`ask` is that stream's last item. Without a chat model the extractive answerer writes the answer; with
one, the model writes it and the guards keep only verified sentences, falling back to the extractive
answer when nothing is left.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from langchain_core.runnables import Runnable, RunnableGenerator, RunnableLambda

from assistant import grounding
from assistant.answering import answertype, extractive, followup, header, overview, prompts
from assistant.answering.extractive import Evidence, Scored
from assistant.answering.guards import AnswerGuard, GuardResult
from assistant.answering.refusal import RefusalReason, RefusalRule, closest, load_rule, refusal_text
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
class Decision:
    """What the evidence decides: the sentences to quote, or the reason to refuse."""

    evidence: Evidence
    chosen: list[Scored]
    p_answerable: float = 1.0
    reason: RefusalReason | None = None
    detail: str = ""  # for ASKED_DETAIL_ABSENT: "number", "date", "year 2030", "measure interest rate"

    @property
    def refuse(self) -> bool:
        return self.reason is not None

    def reason_text(self) -> str:
        """The answer JSON's `refusal_reason`: "weak_evidence (p=0.23)", "asked_detail_absent (number)"."""
        if self.reason is RefusalReason.WEAK_EVIDENCE:
            return f"{self.reason.value} (p={self.p_answerable:.2f})"
        if self.reason is RefusalReason.ASKED_DETAIL_ABSENT:
            return f"{self.reason.value} ({self.detail})"
        return self.reason.value if self.reason is not None else ""


@dataclass
class AskState:
    """One question on its way through the chain; each step fills in its part."""

    question: str
    history: list[Mapping[str, str]]
    top_k: int
    filters: Filters | None
    language: str
    t0: float = field(default_factory=time.perf_counter)
    timings: dict[str, float] = field(default_factory=dict)
    standalone: str = ""
    overview: bool = False  # a question about a whole document
    header: str | None = None  # a question about the document itself: its date or its maker
    passages: list[Passage] = field(default_factory=list)
    decision: Decision | None = None

    def timed(self, name: str, t0: float) -> None:
        self.timings[name] = self.timings.get(name, 0.0) + _ms(t0)

    @property
    def decided(self) -> Decision:
        assert self.decision is not None, "the weigh step runs before the answer"
        return self.decision


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

        judge = None
        if settings.answer_judge:
            from assistant.answering.judge import load_judge

            judge = load_judge(settings)
        self.scorer = extractive.SentenceScorer(embedder, lexicon=load_lexicon(str(settings.model_dir)), judge=judge)
        self.rule = rule or load_rule(judge is not None)
        self.chain: Runnable[AskState, str | Answer] = (
            RunnableLambda(_step("condense", self._understand), name="understand")
            | RunnableLambda(_step("retrieve", self._retrieve), name="retrieve")
            | RunnableLambda(_step("weigh", self._weigh), name="weigh")
            | RunnableGenerator(self._respond, name="respond")
        )

    # Public ------------------------------------------------------------------------------------
    def ask(self, question: str, history: Sequence[Mapping[str, str]] = (), top_k: int | None = None,
            filters: Filters | None = None) -> Answer:
        """The last item of `ask_stream`: the same steps, the text deltas left unread."""
        answer: Answer | None = None
        for item in self.ask_stream(question, history, top_k, filters):
            if isinstance(item, Answer):
                answer = item
        assert answer is not None, "the respond step always ends with the Answer"
        return answer

    def ask_stream(self, question: str, history: Sequence[Mapping[str, str]] = (), top_k: int | None = None,
                   filters: Filters | None = None) -> Iterator[str | Answer]:
        """Yields text deltas (only verified sentences), then the final `Answer`."""
        yield from self.chain.stream(self._inputs(question, history, top_k, filters))

    # Steps -------------------------------------------------------------------------------------
    def _inputs(self, question: str, history: Sequence[Mapping[str, str]], top_k: int | None,
                filters: Filters | None) -> AskState:
        from assistant.text.lang import detect_language

        text = clean_question(question, self.settings.max_question_chars)
        return AskState(question=text, history=list(history), top_k=top_k or self.settings.top_k,
                        filters=filters, language=detect_language(text))

    def _understand(self, state: AskState) -> None:
        """The question on its own (a follow-up rewritten with its history), and what kind it is."""
        state.standalone = self._condense(state)
        state.overview = self.document is not None and overview.asks_overview(state.standalone)
        if self.document is not None and not state.overview:
            state.header = header.asks(state.standalone)

    def _condense(self, state: AskState) -> str:
        question, history = state.question, state.history
        if not history:
            return question
        if self.chat_model is not None:
            try:
                msgs = prompts.condense_messages(question, history, state.language)
                text = str(self.chat_model.invoke(msgs).content).strip()
                if 0 < len(text) <= self.settings.max_question_chars:
                    return text
            except Exception as exc:  # noqa: BLE001 - a failing model server must not fail the question
                log.warning("condensing the follow-up failed: %s", exc)
        return followup.carry_terms(question, history)

    def _retrieve(self, state: AskState) -> None:
        question, top_k, filters = state.standalone, state.top_k, state.filters
        if state.overview and self.document is not None:
            # A question about a whole document: the first passage tells which document; its own
            # passages, in order, are what the answer is drawn from.
            first = self.retrieve(question, 1, filters)
            state.passages = self.document(first[0].doc_id)[: overview.MAX_CHUNKS] if first else []
            return
        passages = self._labelled(question, top_k, self.retrieve(question, max(2 * top_k, LABEL_POOL), filters))
        if state.header and passages and self.document is not None:
            # The document's own date or maker: its header passage, when it has one, comes first.
            head = self.document(passages[0].doc_id)[:1]
            if head and header.answer_lines(state.header, head[0]):
                passages = [head[0], *(p for p in passages if p.chunk_id != head[0].chunk_id)][:top_k]
        state.passages = passages

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

    def _weigh(self, state: AskState) -> None:
        state.decision = self._decide(state)

    def _decide(self, state: AskState) -> Decision:
        if state.overview:
            lead = overview.lead_evidence(self.scorer, state.passages)
            chosen = overview.select(lead)
            return Decision(lead.evidence, chosen, reason=None if chosen else RefusalReason.NO_EVIDENCE)
        evidence = self.scorer.score(state.standalone, state.passages)
        chosen = extractive.select(evidence)
        lines = header.chosen(state.header, state.passages) if state.header else []
        if lines:
            # The lines under the document's title that give its date or its maker: where they stand
            # says what they are, whatever their similarity to the question.
            decision = Decision(evidence, lines)
        elif not chosen:
            return Decision(evidence, chosen, 0.0, RefusalReason.NO_EVIDENCE)
        elif evidence.table and all(s.label_asked for s in chosen):
            # The question asks what a table or a list says under a label it names ("主張の表にあるロシアの
            # 要求", "the positions table … Ukraine"), and the quotes are that label's items: the document
            # answers it by its structure, whatever the wording's similarity (the vetoes still apply).
            decision = Decision(evidence, chosen)
        elif evidence.focus and all(s.focus for s in chosen):
            # "再発防止策は何ですか" and the quotes stand under the heading "再発防止策" of a document the
            # question's other words point to: its structure answers it, as a label does (the vetoes apply).
            decision = Decision(evidence, chosen)
        else:
            refuse, p = self.rule.refuse(evidence.features)
            decision = Decision(evidence, chosen, p, RefusalReason.WEAK_EVIDENCE if refuse else None)
        if decision.refuse:
            return decision
        # A chat model reads every given passage; the extractive answer only its quotes.
        read = [state.passages[s.passage] for s in decision.chosen] if self.chat_model is None else state.passages
        given = [s.text for s in decision.chosen] if self.chat_model is None else [x.text for x in read]
        absent = answertype.veto(state.standalone, given, [h for x in read for h in (x.title, x.section) if h],
                                 [x.text for x in read])
        if absent:
            # The question asks for a date or a number and nothing the answer rests on gives one, or
            # names a year they do not speak of: quoting them would look like an answer without being one.
            decision.reason, decision.detail = RefusalReason.ASKED_DETAIL_ABSENT, absent
        return decision

    def _respond(self, states: Iterator[AskState]) -> Iterator[str | Answer]:
        """The answer's text as it is written (a model's sentences once verified), then the `Answer`."""
        for state in states:
            if self.chat_model is None or state.decided.refuse:
                draft = self._refusal(state) if state.decided.refuse else self._extractive(state)
                yield from _pieces(draft.answer)
            else:
                draft = yield from self._stream_model(state)
            yield self._finish(state, draft)

    def _stream_model(self, state: AskState) -> Generator[str, None, Draft]:
        guard = AnswerGuard(_given(state), state.language, self.scorer)
        sep = "" if state.language == "ja" else " "
        shown = 0
        t = time.perf_counter()
        error = ""
        try:
            msgs = prompts.answer_messages(state.standalone, _given(state), state.language)
            for chunk in self.chat_model.stream(msgs):
                for sentence in guard.feed(str(chunk.content)):
                    yield (sep if shown else "") + sentence
                    shown += 1
            for sentence in guard.close():
                yield (sep if shown else "") + sentence
                shown += 1
        except Exception as exc:  # noqa: BLE001 - time-outs, refused connections, server errors: fall back
            log.warning("chat model failed (%s); answering extractively", exc)
            error = f"model_error: {type(exc).__name__}"
        state.timed("answer", t)
        result = guard.result()
        if shown:
            return Draft(result.answer, result.citations, result.grounding, self.answerer)
        draft = self._fallback(state, result, error or result.fallback_reason)
        yield draft.answer
        return draft

    def _extractive(self, state: AskState) -> Draft:
        t = time.perf_counter()
        passages = state.passages
        text, citations = extractive.compose(
            state.standalone, state.language, state.decided.chosen, passages,
            source=passages[0].title if state.overview and passages else "")
        state.timed("answer", t)
        t = time.perf_counter()
        checked = grounding.check_answer(text, {c.n: c.text for c in citations})
        state.timed("verify", t)
        return Draft(text, citations, checked, "extractive")

    def _refusal(self, state: AskState) -> Draft:
        t = time.perf_counter()
        decision = state.decided
        text = refusal_text(state.language, decision.reason, decision.detail)
        checked = grounding.check_answer(text, {})
        ranked = decision.evidence.ranked()
        near = closest(state.passages, [(s.passage, s.start, s.end) for s in ranked])
        state.timed("answer", t)
        return Draft(text, [], checked, self.answerer, refused=True, refusal_reason=decision.reason_text(),
                     closest=near)

    def _fallback(self, state: AskState, result: GuardResult | None, reason: str) -> Draft:
        draft = self._extractive(state)
        g = draft.grounding
        g.fallback = True
        g.fallback_reason = reason
        if result is not None:
            g.dropped = result.grounding.dropped
            g.sentences = [{**r, "answerer": self.answerer} for r in result.grounding.sentences] + g.sentences
        return draft

    def _finish(self, state: AskState, draft: Draft) -> Answer:
        if state.language == "en":
            t = time.perf_counter()
            for c in [*draft.citations, *draft.closest]:
                c.glosses = extractive.glosses(self.scorer.lexicon, c.quote, state.standalone)
            state.timed("glosses", t)
        timings = state.timings
        timings.setdefault("verify", 0.0)
        timings["total"] = _ms(state.t0)
        return Answer(
            question=state.question, language=state.language, answer=draft.answer,
            refused=draft.refused, citations=draft.citations, passages=list(state.passages),
            grounding=draft.grounding, answerer=draft.answerer,
            timings_ms={k: round(v, 2) for k, v in timings.items()}, id=uuid.uuid4().hex,
            standalone_question=state.standalone, refusal_reason=draft.refusal_reason, closest=draft.closest,
        )


def _step(name: str, fn: Callable[[AskState], None]) -> Callable[[AskState], AskState]:
    """A chain step: runs `fn` on the state, records its time under `name`, passes the state on."""
    def run(state: AskState) -> AskState:
        t = time.perf_counter()
        fn(state)
        state.timed(name, t)
        return state

    return run


def _given(state: AskState) -> list[Passage]:
    return list(state.passages[: extractive.MAX_PASSAGES])


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
