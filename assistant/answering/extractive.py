"""The embedded answerer: picks the passage sentences that best answer the question and quotes them.

Its framing ("文書によると", "The documents say:") asserts nothing; every fact is a verbatim quote of a
passage sentence with its `[n]`, and `Citation.text[start:end] == quote`.
"""

from __future__ import annotations

import re
import unicodedata
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from assistant.answering import answertype
from assistant.answering.context import sentence_context
from assistant.text.lang import has_japanese
from assistant.text.normalize import question_core, single_spaced
from assistant.text.structure import BULLETS, MAX_LABEL_CHARS, SENTENCE_ENDS
from assistant.types import Citation, Passage, Role

MAX_PASSAGES = 5
MAX_QUOTES = 3
MIN_SENTENCE_CHARS = 8
# A one-character rendering (案, 前, 軍) is found inside too many unrelated words to count as a match.
MIN_RENDERING_CHARS = 2
# English glosses of a Japanese question's words: shorter ones ("go", "be") match too much.
MIN_GLOSS_CHARS = 3
KEYWORD_WEIGHT = 0.15
ENTITY_BONUS = 0.03
# A place marked by the particle a "どこで/どこに…" question asks with (`answertype.case_marked_place`)
# counts as much as every word of the question found: "アラスカでの会談" answers "米ロ首脳会談はどこで行われたか"
# although "18日には米ロ首脳会談で言及された和平条件（クリミア…）" repeats the question's words. On the shared
# data's 95 such questions the quotes are the same for any amount from ENTITY_BONUS to this.
CASE_BONUS = KEYWORD_WEIGHT
# A second or third quote must score almost as well as the best one, or it only adds noise.
EXTRA_MARGIN = 0.012
# ... unless the question asks for several points ("根拠をまとめて", "what are the reasons", "…, and
# why?"): then a quote nearly as close to it as the best one answers a part of it.
MANY_MARGIN = 0.04
# "表によると…", "主張の表で…", "according to the table": the question asks what a table or a list says
# (not 発表, 代表, 表明: 表 stands alone there).
ASKS_TABLE = re.compile(
    r"(?:^|[のとはでにを、「])(?:表|一覧|一覧表|リスト|図表)(?=[にでのかをはか、」]|によると)"
    r"|\b(?:the|this|that|a)(?: [\w-]+)? (?:table|list|chart)\b",
    re.IGNORECASE,
)
# A why-question, and the marks of a sentence that gives a cause or follows from the one before it.
ASKS_WHY = re.compile(r"なぜ|何故|どうして|理由|原因|わけ(?:は|を)|\bwhy\b|what (?:caused|led to|made)|\breasons?\b|"
                      r"\bcaus(?:e|es|ed)\b", re.IGNORECASE)
GIVES_REASON = re.compile(r"ため[、。だでにの]|ためである|背景|原因|理由|による|によって|ことから|ので[、。]|から[だで]|"
                          r"\bbecause\b|\bdue to\b|\bowing to\b|\bcaused by\b|\breasons?\b|\bsince\b|\bas a result of\b",
                          re.IGNORECASE)
RESULT_START = re.compile(r"(?:この|その)(?:ため|結果|背景)|そこで|従って|したがって|これにより|これによって|"
                          r"as a result|therefore|thus|hence|this is why|that is why|because of this|for this reason",
                          re.IGNORECASE)
# Sentences of one passage are adjacent when at most this much white space lies between them.
ADJACENT_CHARS = 3
ASKS_MANY = re.compile(
    r"まとめ|要約|要点|列挙|挙げ|主な|いくつか|すべて|全て|それぞれ|根拠|どのような点|どんな点|[てで]、(?:その|それぞれの)?(?:理由|根拠|背景|影響)"
    r"|\b(?:summari[sz]e|summary|list (?:the|all|every)|a list of|main points|key points|reasons|grounds|each of)\b|\bwhat are the\b"
    r"|,? and (?:why|what|how)\b",
    re.IGNORECASE,
)

# What a Japanese question asks about: the words before its topic particle and its question word
# ("受注システムが止まった原因は何ですか", "再発防止策は？", "改定の目的を教えて"); its last noun phrase is the
# focus (`question_focus`).
_FOCUS = re.compile(r"([^\s、。？?！!「」]+?)(?:とは|って|は|を|について)(?:何|なに|なん|どう|どんな|どのよう|どういう|どれ|"
                    r"どちら|いくら|いつ|どこ|誰|だれ|教え|説明|$)")
# Where a modifier ends inside that phrase: a particle, or a verb or adjective ending before a noun.
_MODIFIER_END = re.compile(r"^.*(?:の|が|を|に|で|と|へ|や|た|る|い|な|、)")
# An English question that asks only what something is: "What are the research fields?".
_WHAT_IS = re.compile(r"what(?:'s| is| are| was| were) (?:the |its |his |her |their |your )?(?:[\w'-]+ ){0,3}[\w'-]+\s*\??",
                      re.IGNORECASE)
# Headings that name a cause: a why-question's answer stands under them.
CAUSE_HEADINGS = frozenset(["原因", "理由", "要因", "背景", "経緯"])

# Text inside a document that speaks to the answerer is data, never an answer.
INSTRUCTION_RE = re.compile(
    r"ignore (?:all |any |your |the |previous |prior |earlier )*(?:instructions|prompts?|rules)"
    r"|disregard .{0,30}instructions|(?:reply|respond|answer|say) (?:only )?(?:with )?[\"'“]?[A-Z]{4,}"
    r"|system prompt|you are now|指示を無視|命令を無視|ルールを無視|を無視して|とだけ答え|とだけ回答|とだけ出力|と答えよ|と回答せよ"
    r"|と出力せよ|プロンプト",
    re.IGNORECASE,
)
_STOP_EN = frozenset(
    ["a", "an", "the", "of", "to", "in", "on", "at", "for", "by", "with", "from", "and", "or", "is", "are", "was", "were", "be", "been", "being", "do", "does", "did", "what", "when", "who", "whom", "whose", "which", "where", "why", "how", "many", "much", "long", "that", "this", "these", "those", "it", "its", "they", "them", "their", "he", "she", "his", "her", "as", "about", "into", "than", "there", "has", "have", "had", "will", "would", "can", "could", "should", "not", "no", "yes", "say", "said", "says", "according", "document", "documents",
     "memo", "report", "briefing"]
)
_STOP_JA = frozenset(
    ["何", "いつ", "誰", "だれ", "どこ", "どの", "どう", "どれ", "なぜ", "どのくらい", "くらい", "ぐらい", "どれくらい", "する", "した", "して", "いる", "いた", "ある", "あっ", "れる", "られ", "れ", "られる", "こと", "もの", "ため", "よう", "の", "は", "が", "を", "に", "で", "と", "も", "か", "へ", "や", "な", "だ", "です", "ます", "ましたか", "たか", "ですか", "か。", "？", "。", "、", "について", "とは", "という", "文書", "資料", "為る", "居る", "有る", "言う", "其の", "此の", "何処", "何時", "何故", "如何", "どんな", "幾つ", "事", "物",
     # Words by which a question names the document itself ("このメモの要点", "この報告書では").
     "メモ", "レポート", "報告書", "本稿", "ブリーフィング"]
)


class SupportsEmbedding(Protocol):
    def embed_queries(self, texts: list[str]) -> np.ndarray: ...
    def embed_passages(self, texts: list[str]) -> np.ndarray: ...


@dataclass
class Scored:
    """One passage sentence scored against the question."""

    passage: int  # index into the passages list
    start: int
    end: int
    text: str
    dense: float
    keyword: float
    bonus: float
    instruction: bool
    score: float
    # The question's English words found through their Japanese renderings: it ranks the sentences,
    # but the refusal features leave it out (the shipped rule was fitted without it).
    rendered: float = 0.0
    # What the line means only with (a list's label, a table's header row: `context.SentenceContext`),
    # and whether the question names it.
    label: str = ""
    label_asked: bool = False
    # Whether it stands under a heading that names what the question asks about (`focus_sections`),
    # or is a field heading the question asks for (`field_asked`).
    focus: bool = False
    # Whether it names a quantity other than the one the question asks for (`answertype.names_other_measure`).
    other_measure: bool = False
    # The role of its line (`types.Role.kind`): a table row is quoted without naming its header row.
    kind: str = "sentence"
    # The answer judge's probability that it answers the question (None: scored without the judge), and the
    # score the rules alone gave it.
    judged: float | None = None
    prior: float = 0.0

    @property
    def base_score(self) -> float:
        if self.judged is not None:
            return self.score
        return self.score - KEYWORD_WEIGHT * max(0.0, self.rendered - self.keyword)


@dataclass
class Evidence:
    """The scored sentences of the retrieved passages and the features the refusal rule reads."""

    sentences: list[Scored] = field(default_factory=list)
    features: dict[str, float] = field(default_factory=dict)
    many: bool = False  # the question asks for several points (`ASKS_MANY`)
    why: bool = False  # the question asks for a reason or a cause (`ASKS_WHY`)
    table: bool = False  # the question asks what a table or a list says (`ASKS_TABLE`)
    detail: bool = False  # the question asks for a date or a number (`answertype.VETO_TYPES`)
    focus: bool = False  # some sentence stands under a heading the question asks about, or is a field it asks for

    def ranked(self) -> list[Scored]:
        return sorted((s for s in self.sentences if not s.instruction), key=lambda s: -s.score)


def content_tokens(text: str) -> set[str]:
    """Keyword tokens of a question or sentence without particles, question words and punctuation;
    words for an author bring `text.roles.AUTHOR_TOKEN` instead."""
    from assistant.keyword.tokenize import Analysis, tokenize
    from assistant.text.normalize import search_form
    from assistant.text.roles import AUTHOR_TOKEN, AUTHOR_WORDS

    out = set()
    if AUTHOR_WORDS.search(text):
        # "書いた人" stands for the author: its verb would ask for a sentence that says "書く".
        out.add(AUTHOR_TOKEN)
        text = AUTHOR_WORDS.sub(" ", text)
    for tok in tokenize(search_form(text).text, Analysis(bigrams=False)):
        t = tok.strip().lower()
        if not t or t in _STOP_EN or t in _STOP_JA or re.fullmatch(r"[\W_]+", t):
            continue
        if re.fullmatch(r"[\u3040-\u309f]{1,2}", t):  # short hiragana: particles and endings
            continue
        out.add(t)
    return out


# Words that name which aspect of a thing is asked about ("米国の立場", "交渉の見通し", "the reason"),
# not what it is: a text states a position, an outlook or a reason in its own words. Found in a
# sentence they count; missing, they do not count against it.
ASPECT_WORDS = frozenset([
    "立場", "見通し", "見込み", "展望", "要求", "主張", "理由", "背景", "目的", "狙い", "意図", "見解", "考え", "方針",
    "姿勢", "評価", "見方", "特徴", "内容", "概要", "現状", "状況", "課題", "問題点", "結果", "効果", "影響", "役割",
    "意味", "経緯", "要因", "原因", "根拠", "意義", "反応", "対応", "見立て",
    "position", "stance", "view", "outlook", "prospect", "reason", "background", "purpose", "aim", "goal",
    "intention", "opinion", "policy", "attitude", "assessment", "feature", "content", "summary", "situation",
    "status", "issue", "problem", "result", "effect", "impact", "role", "meaning", "cause", "response", "reaction",
])


def question_focus(question: str) -> str:
    """The noun phrase a Japanese question asks about ("受注システムが止まった原因は何ですか" -> "原因",
    "再発防止策は？" -> "再発防止策"); "" when it has none ("…を挙げたのはどこ") or is not Japanese."""
    core = question.strip().rstrip("。.？?！! ")
    found = list(_FOCUS.finditer(core))
    if not found or not has_japanese(core):
        return ""
    # "…を挙げたのはどこ": a clause made a noun by の has no noun to name.
    return _MODIFIER_END.sub("", found[-1].group(1))


def overlap(q_tokens: set[str], tokens: set[str]) -> float:
    """The share of the question's words found in `tokens`; aspect words count only when found."""
    found = q_tokens & tokens
    asked = len(q_tokens - ASPECT_WORDS) + len(found & ASPECT_WORDS)
    return len(found) / asked if asked else 0.0


class SentenceScorer:
    """Splits passages into sentences and scores them; sentence vectors are cached by text."""

    def __init__(self, embedder: SupportsEmbedding, cache_size: int = 50_000, lexicon: Any = None,
                 judge: Any = None) -> None:
        """`lexicon`: English-to-Japanese renderings (`text.lexicon`), so that an English question's
        words are found in Japanese sentences too. `judge`: the fitted answer judge (`answering.judge`),
        which then gives the best candidates their scores."""
        self.embedder = embedder
        self.lexicon = lexicon
        self.judge = judge
        self.cache_size = cache_size
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._queries: OrderedDict[str, np.ndarray] = OrderedDict()
        self._tokens: OrderedDict[str, set[str]] = OrderedDict()

    def sentence_vectors(self, texts: Sequence[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self._vectors))
        if missing:
            for text, vec in zip(missing, self.embedder.embed_passages(missing), strict=True):
                self._vectors[text] = np.asarray(vec, dtype=np.float32)
            while len(self._vectors) > self.cache_size:
                self._vectors.popitem(last=False)
        if not texts:
            return np.zeros((0, 1), dtype=np.float32)
        return np.stack([self._vectors[t] for t in texts])

    def query_vector(self, question: str) -> np.ndarray:
        vec = self._queries.get(question)
        if vec is None:
            vec = np.asarray(self.embedder.embed_queries([question])[0], dtype=np.float32)
            self._queries[question] = vec
            if len(self._queries) > 1000:
                self._queries.popitem(last=False)
        return vec

    def tokens(self, text: str) -> set[str]:
        """`content_tokens`, a katakana word standing for its kanji synonym (`Lexicon.kanji_synonym`):
        "ヨーロッパ" in a question meets "欧州" in a sentence."""
        toks = self._tokens.get(text)
        if toks is None:
            toks = content_tokens(text)
            if self.lexicon is not None:
                toks = {self.lexicon.kanji_synonym(t) or t for t in toks}
            self._tokens[text] = toks
            if len(self._tokens) > self.cache_size:
                self._tokens.popitem(last=False)
        return toks

    def renderings(self, question: str, q_tokens: set[str], lang: str) -> list[tuple[str, ...]]:
        """The question's content words in the other language (`Lexicon.render`), one tuple of
        renderings a word, for finding them in sentences written in the other language; [] without
        a lexicon. `lang`: the question's language."""
        if self.lexicon is None or not q_tokens or lang not in ("en", "ja"):
            return []
        if lang == "en" and not re.search(r"[a-z]", " ".join(q_tokens)):
            return []
        found = self.lexicon.render(question, lang)
        words = sum(len(r.word.split()) for r in found) if lang == "en" else len(found)
        shortest = MIN_GLOSS_CHARS if lang == "ja" else MIN_RENDERING_CHARS
        out = [tuple(f for f in (unicodedata.normalize("NFKC", x).lower() for x in r.renderings) if len(f) >= shortest)
               for r in found]
        # A figure is written the same in both languages ("on the 19th": "19日", "in 2025": "2025年").
        figures = [m.group(1) for t in q_tokens if (m := _FIGURE_TOKEN.fullmatch(t))] if lang == "en" else []
        out.extend((f,) for f in figures)
        # Content words the lexicon does not render (names in Latin script, say) still count as words.
        out.extend(() for _ in range(max(0, len(q_tokens) - words - len(figures))))
        return out

    def names_label(self, label: str, q_tokens: set[str], renderings: list[tuple[str, ...]], glosses: bool) -> bool:
        """Whether the question names a label (a list's, a table's, a field's) in its words or glosses."""
        return bool(q_tokens & self.tokens(label)) or rendered_overlap(renderings, label, glosses) > 0

    def focus_sections(self, question: str, q_tokens: set[str], passages: Sequence[Passage]) -> list[bool]:
        """For each passage, whether its section heading is what the question asks about: the heading
        holds the question's focus ("原因" for "受注システムが止まった原因は何ですか", "再発防止策" for
        "再発防止策は？") and little else, and the question's other words are mostly in the passage or its
        document's title ("受注システム" in "障害報告書：受注システムの停止"; not "円安の原因は？")."""
        focus = self.tokens(question_focus(question))
        # A Japanese why-question with no such noun ("なぜ受注システムは止まったのですか") asks what a cause
        # heading ("原因", "発生の背景") names. (English ones too in principle, but the word list's renderings
        # seldom reach the document's words: "What caused the order system outage?" finds 注文 for "order"
        # and 体制 for "system", not 受注 and システム.)
        cause = not focus and has_japanese(question) and bool(ASKS_WHY.search(question))
        out = []
        for p in passages:
            heading = p.section.strip()
            named = False
            if (focus or cause) and 0 < len(heading) <= MAX_LABEL_CHARS \
                    and single_spaced(heading) != single_spaced(p.title):
                h = self.tokens(heading)
                if focus:
                    heads = focus <= h and len(h - q_tokens) <= len(h & q_tokens)
                else:
                    heads = bool(h & CAUSE_HEADINGS) and len(h - CAUSE_HEADINGS) <= 1
                others = q_tokens - h - CAUSE_HEADINGS
                found = others & self.tokens(f"{p.title}\n{p.text}")
                named = heads and 2 * len(found) >= len(others)
            out.append(named)
        return out

    def field_asked(self, question: str, p: Passage, label: str, q_tokens: set[str],
                    renderings: list[tuple[str, ...]], glosses: bool) -> bool:
        """Whether a heading of the passage that is a field with key `label` ("研究分野：…") is what the
        question asks for ("研究分野は何ですか" or "What are the research fields?"), the question's other words
        mostly in the passage or its title (not "What are Tanaka's research fields?" over Sato's profile)."""
        if not self.names_label(label, q_tokens, renderings, glosses):
            return False
        where = f"{p.title}\n{p.text}"
        if renderings and not glosses:
            # An English question over a Japanese text that asks only "what is the …?", word by word through
            # its renderings, which often miss ("fields" renders 田畑, not 分野): the words found in the label
            # or the passage must be at least half ("research fields": 研究 in the label; not "Tanaka's
            # research fields").
            if not _WHAT_IS.fullmatch(question.strip()):
                return False
            others = [r for r in renderings if not rendered_overlap([r], label)]
            hits = len(renderings) - len(others)
            found = sum(1 for r in others if rendered_overlap([r], where))
            return 2 * (hits + found) >= len(renderings)
        # The whole label, not a part of it ("研究" of 研究分野 in "…研究所に在籍していますか").
        if not self.tokens(label) <= q_tokens:
            return False
        rest = q_tokens - self.tokens(label)
        return 2 * len(rest & self.tokens(where)) >= len(rest)

    def question_terms(self, question: str) -> tuple[set[str], list[tuple[str, ...]], bool]:
        """The question's content words, their renderings in the other language, and whether those
        are English glosses of a Japanese question (`rendered_overlap`'s `english`)."""
        from assistant.text.lang import detect_language

        q_tokens = self.tokens(question_core(question))
        lang = detect_language(question)
        renderings = self.renderings(question, q_tokens, lang)
        return q_tokens, renderings, bool(renderings) and lang == "ja"

    def labels_named(self, question: str, labels: Sequence[str]) -> list[bool]:
        """For each label, whether the question names it (`names_label`)."""
        q_tokens, renderings, glosses = self.question_terms(question)
        return [bool(label) and self.names_label(label, q_tokens, renderings, glosses) for label in labels]

    def score(self, question: str, passages: Sequence[Passage]) -> Evidence:
        """Scores every sentence of the top passages and computes the refusal features."""
        from assistant.text.chunking import split_sentences
        from assistant.text.lang import detect_language

        top = list(passages[:MAX_PASSAGES])
        q_tokens, renderings, glosses = self.question_terms(question)
        spans: list[tuple[int, int, int, str]] = []
        roles: list[Role] = []
        field_heads: dict[tuple[int, str], bool] = {}  # (passage, field key) -> the question asks for it
        for i, p in enumerate(top):
            for s, e in split_sentences(p.text):
                s, e = _trim(p.text, s, e)
                role = sentence_context(p, s, e).role
                if e - s < MIN_SENTENCE_CHARS or role.kind == "header":
                    continue  # a table's header row names columns and asserts nothing: never quoted
                if role.kind == "heading":
                    # A heading names a topic: never quoted, unless it is a field ("研究分野：マクロ経済全般…")
                    # whose key the question names ("研究分野は何ですか"): it states a value.
                    if not (role.key and self.names_label(role.key, q_tokens, renderings, glosses)):
                        continue
                    if (i, role.key) not in field_heads:
                        field_heads[i, role.key] = self.field_asked(question, p, role.key, q_tokens, renderings,
                                                                    glosses)
                spans.append((i, s, e, p.text[s:e]))
                roles.append(role)
        contexts = [r.label for r in roles]
        wanted = answertype.asked_types(question)
        measures = answertype.asked_measures(question)
        focus = self.focus_sections(question, q_tokens, top)
        scored: list[Scored] = []
        if spans:
            q_vec = self.query_vector(question)
            # A list item or table row is read with its label or header row ("米国: • 限定的"), quoted without.
            read = [f"{c}: {t}" if c else t for (*_, t), c in zip(spans, contexts, strict=True)]
            # Whether the question names each label, once a label (many items share one).
            named = {c: self.names_label(c, q_tokens, renderings, glosses) for c in set(contexts) if c}
            dense = self.sentence_vectors(read) @ q_vec
            for (i, s, e, text), full, role, d in zip(spans, read, roles, dense, strict=True):
                c = role.label
                kw = overlap(q_tokens, self.tokens(full))
                rendered = rendered_overlap(renderings, full, glosses)
                bonus = ENTITY_BONUS if any(answertype.supplies(t, text, question) for t in wanted) else 0.0
                if "place" in wanted and answertype.case_marked_place(text, question):
                    bonus = CASE_BONUS
                if not named.get(c) and not (kw or rendered or bonus) and len(text) <= SHORT_FRAGMENT_CHARS \
                        and not text.endswith(SENTENCE_ENDS) and (s, e) == (role.start, role.end):
                    # A short line that is no sentence ("経営企画部 IR担当", "2025年11月5日", an item of a list
                    # the question does not name) and shares nothing with the question: e5 rates such
                    # short texts close to almost any question, so it would only pass for evidence.
                    continue
                instruction = bool(INSTRUCTION_RE.search(text))
                score = float(d) + KEYWORD_WEIGHT * max(kw, rendered) + bonus - 0.002 * i
                asked_field = role.kind == "heading" and field_heads.get((i, role.key), False)
                scored.append(Scored(i, s, e, text, float(d), kw, bonus, instruction, score, rendered, c,
                                     named.get(c, False), focus[i] or asked_field,
                                     answertype.names_other_measure(measures, full), role.kind))
        if self.judge is not None and scored:
            self._judge(question, top, scored)
        evidence = Evidence(scored, many=bool(ASKS_MANY.search(question)), table=bool(ASKS_TABLE.search(question)),
                            why=bool(ASKS_WHY.search(question)), detail=any(t in answertype.VETO_TYPES for t in wanted),
                            focus=any(s.focus for s in scored))
        evidence.features = self._features(question, q_tokens, top, evidence, detect_language)
        return evidence

    def _judge(self, question: str, top: Sequence[Passage], scored: list[Scored]) -> None:
        """The judge's scores in place of the rules' for the best candidates; it reads each sentence after its
        document's title and its list label or table header."""
        from assistant.answering.judge import passage_text, rescore

        texts = [passage_text(top[x.passage].title, f"{x.label}: {x.text}" if x.label else x.text) for x in scored]
        scores, probability = rescore(self.judge, question, texts, [x.dense for x in scored],
                                      [x.score for x in scored])
        # What the rules add to similarity (shared words, an answer of the asked type), weighted as fitted
        # with the judge (`eval/fit_crossjudge.py --report`).
        lexical = float(self.judge.spec.get("combine", {}).get("lexical", 0.0))
        for x, value, p in zip(scored, scores, probability, strict=True):
            x.prior = x.score
            x.score = float(value) + lexical * (x.prior - x.dense)
            x.judged = float(p)

    def _features(self, question: str, q_tokens: set[str], top: Sequence[Passage], evidence: Evidence,
                  detect_language: object) -> dict[str, float]:
        ranked = evidence.ranked()
        p_tokens: set[str] = set()
        for p in top[:3]:
            p_tokens |= self.tokens(p.text)
        q_lang = detect_language(question)  # type: ignore[operator]
        p_lang = (top[0].language or detect_language(top[0].text)) if top else q_lang  # type: ignore[operator]
        s_dense = max((s.dense for s in ranked), default=0.0)
        mean_dense = sum(s.dense for s in ranked) / len(ranked) if ranked else 0.0
        top_dense = top[0].scores.get("dense", s_dense) if top else 0.0
        return {
            "s_dense": s_dense,
            "s_kw": max((s.keyword for s in ranked), default=0.0),
            "s_gap": s_dense - mean_dense,
            "s_best": max((s.base_score for s in ranked), default=0.0),
            "p_kw": overlap(q_tokens, p_tokens),
            "p_dense": float(top_dense),
            "xling": float(q_lang != p_lang),
            # The judge's best probability that a sentence answers (0 when scored without the judge).
            "s_judge": max((s.judged or 0.0 for s in ranked), default=0.0),
            "q_terms": float(len(q_tokens)),
        }


# An English question's figure: "19th", "2025", "3" (the digits, not "g7" or "covid-19").
_FIGURE_TOKEN = re.compile(r"([0-9]+)(?:st|nd|rd|th|s)?")


def _holds_form(body: str, form: str) -> bool:
    """A rendering in a Japanese text: a figure as a whole number ("19" in "19日", not in "2019年")."""
    if form.isdigit():
        return re.search(r"(?<![0-9.,])" + form + r"(?![0-9])", body) is not None
    return form in body


def rendered_overlap(renderings: Sequence[tuple[str, ...]], text: str, english: bool = False) -> float:
    """Share of the question's words (one tuple of renderings each) that the text holds; `english`:
    the renderings are English glosses, found as words (`_holds`), not as any substring."""
    if not renderings:
        return 0.0
    body = unicodedata.normalize("NFKC", text).lower()
    if english:
        return sum(1 for forms in renderings if any(_holds(body, f) for f in forms)) / len(renderings)
    return sum(1 for forms in renderings if any(_holds_form(body, f) for f in forms)) / len(renderings)


def _holds(body: str, form: str) -> bool:
    """Whether `body` holds the English gloss `form` at a word start, with its inflected forms
    ("library" finds "libraries", "approve" finds "approved"), and a short one as a whole word."""
    if not form.isascii():
        return form in body
    if form not in body and not (len(form) >= 5 and form[-1] in "ye" and form[:-1] in body):
        return False
    # Word edges by Latin letters and digits only: "natoの" holds "nato".
    if len(form) < 4:
        return re.search(r"(?<![a-z0-9])" + re.escape(form) + r"(?![a-z0-9])", body) is not None
    stem = form[:-1] if len(form) >= 5 and form[-1] in "ye" else form
    return re.search(r"(?<![a-z0-9])" + re.escape(stem), body) is not None


# A question asking for a date or a number whose best sentence gives none also quotes the best one that
# does, if it scores within this of the best. Fitted on the shared data's fit half, the refusal
# accuracy rose from 0.928 (no such quote) to 0.931 at 0.06 and 0.933 from 0.2 up; the larger margins
# also let any date in the passages answer a when-question about an event the document does not date
# (a near miss within one document, which the shared data does not hold), so 0.06.
DETAIL_MARGIN = 0.06
# ...or the sentence right after the best one, when it gives one and scores within this ("…自動化投資を
# 前倒しする。2027年度までに300億円を投じ…"): on the fit half 0.931 -> 0.932 at 0.15 (0.10: 0.931; 0.25:
# 0.931, one more false answer).
NEXT_DETAIL_MARGIN = 0.15
# Lines no longer than this that end no sentence are read only when they share something with the question.
SHORT_FRAGMENT_CHARS = 24


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    """Drops surrounding spaces and bullet marks, so the quote starts at the sentence's first word."""
    while start < end and (text[start].isspace() or text[start] in BULLETS):
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def select(evidence: Evidence) -> list[Scored]:
    """The best sentence and up to two near-equal others, in passage-rank then text order."""
    ranked = evidence.ranked()
    if any(s.label_asked for s in ranked):
        # A question that names a list's label ("ロシアは何を要求しているか") is not answered by the
        # items of lists it does not name: they state another party's view. About a table or a list
        # ("表によると、ウクライナは何を求めているか"), only the named label's items answer it, not
        # running text on the same topic.
        ranked = [s for s in ranked if s.label_asked or (not s.label and not evidence.table)]
    if evidence.focus and any(s.focus for s in ranked):
        # "再発防止策は何ですか" over a report with a section "再発防止策": that section answers it, whatever
        # running text elsewhere shares more of its words ("受注システムが停止し…" for "…止まった原因は").
        ranked = [s for s in ranked if s.focus]
    if any(s.other_measure for s in ranked) and not all(s.other_measure for s in ranked):
        # "第1四半期の営業利益はいくらですか": a sentence about sales ("第1四半期の売上高は842億円") shares more
        # words than the one about profit, but states another quantity.
        ranked = [s for s in ranked if not s.other_measure]
    if not ranked:
        return []
    best = ranked[0]
    chosen = [best]

    def repeats(s: Scored) -> bool:  # overlapping chunks repeat sentences: quote each text once
        return any(s.text == c.text or (s.passage == c.passage and s.start < c.end and c.start < s.end)
                   for c in chosen)

    # A question that names two or more labelled lists ("米国とウクライナの立場はどう違うか") is answered
    # by each one's best item, whatever the margin: one side alone answers half of it. A list names its
    # party only in its label, so running text that mentions the party often scores higher: a question
    # that names one list ("韓国の立場は？") gets its best item too when it is within `MANY_MARGIN`
    # (not for a party named in passing: "How long did Trump postpone sanctions on Russia?").
    asked = list(dict.fromkeys(s.label for s in ranked if s.label_asked))
    for label in asked:
        if len(chosen) >= MAX_QUOTES or any(c.label == label for c in chosen):
            continue
        top = next((s for s in ranked if s.label == label and not repeats(s)), None)
        if top is not None and (len(asked) >= 2 or top.score >= best.score - MANY_MARGIN):
            chosen.append(top)
    if evidence.table and len(asked) == 1:
        # What a table or a list holds under the one label named ("主張の表にあるロシアの要求"): its items,
        # each one a part of the answer, up to the quote limit; those that share fewer of the question's
        # words than its best item are about another aspect ("米国は領土について…": not its security item).
        items = [s for s in ranked if s.label == asked[0]]
        for s in items:
            if len(chosen) >= MAX_QUOTES:
                break
            if max(s.keyword, s.rendered) >= max(items[0].keyword, items[0].rendered) and not repeats(s):
                chosen.append(s)
    if evidence.detail and not best.bonus:
        # The question asks for a date or a number the best sentence does not give: a sentence nearly as
        # close that gives one answers it (the answer is refused when no quote gives one).
        given = next((s for s in ranked[1:] if s.bonus and (s.score >= best.score - DETAIL_MARGIN or (
            s.score >= best.score - NEXT_DETAIL_MARGIN and follows(best, s)))), None)
        if given is not None and not repeats(given):
            chosen.append(given)
    if evidence.why:
        beside = reason_beside(best, evidence.sentences)
        if beside is not None and not repeats(beside):
            chosen.append(beside)
    for s in ranked[1:]:
        if len(chosen) >= MAX_QUOTES or s.score < best.score - (MANY_MARGIN if evidence.many or best.focus
                                                                    else EXTRA_MARGIN):
            break
        if repeats(s):
            continue
        chosen.append(s)
    return sorted(chosen, key=lambda s: (s.passage, s.start))


def reason_beside(best: Scored, sentences: Sequence[Scored]) -> Scored | None:
    """For a why-question, the sentence next to the best one that gives its reason, when the best one
    does not: the one right after it when that one names a cause ("…が背景にある", "This is because…"),
    or the one right before it when the best one starts from it ("このため…", "As a result, …"). Both
    in the same passage and under the same label, with nothing but white space between."""
    usable = [s for s in sentences if not s.instruction]
    if RESULT_START.match(best.text):
        return next((s for s in usable if follows(s, best)), None)
    if GIVES_REASON.search(best.text):
        return None
    after = next((s for s in usable if follows(best, s)), None)
    return after if after is not None and GIVES_REASON.search(after.text) else None


def follows(first: Scored, second: Scored) -> bool:
    """Whether `second` comes right after `first`: same passage, same label, only white space between."""
    return (second.passage == first.passage and second.label == first.label
            and 0 <= second.start - first.end <= ADJACENT_CHARS)


_TIME_RE = re.compile(r"今|現在|最新|いつ|現状|目下|最近|current|now\b|latest|status|today|recent|as of|still", re.IGNORECASE)


def is_time_sensitive(question: str) -> bool:
    return bool(_TIME_RE.search(question))


def _inline(quote: str) -> str:
    """The quote as shown inside 「」: one line, without its closing full stop (still a verbatim part)."""
    return quote.rstrip("。．. \n")


def compose(question: str, language: str, chosen: Sequence[Scored],
            passages: Sequence[Passage], source: str = "") -> tuple[str, list[Citation]]:
    """Writes the answer: framing that asserts nothing, then each quote verbatim with its `[n]`.
    `source`: the title of the one document the quotes are drawn from, when the question asks about it
    as a whole; the framing names it."""
    citations: list[Citation] = []
    parts: list[str] = []
    date = ""
    if chosen and is_time_sensitive(question):
        from assistant.loaders.meta import header_line_date

        date = passages[chosen[0].passage].date
        if date and header_line_date(chosen[0].text) == date:
            date = ""  # the quote is the document's date line: "as of" it would say it twice
    for n, s in enumerate(chosen, start=1):
        p = passages[s.passage]
        citations.append(Citation(
            n=n, chunk_id=p.chunk_id, doc_id=p.doc_id, title=p.title, section=p.section, page=p.page,
            source=p.source, text=p.text, quote=p.text[s.start:s.end], start=s.start, end=s.end, date=p.date,
        ))
        quoted = _mark(_inline(s.text))
        # A list item is quoted without its label ("• 限定的" under "米国"): the answer names the label the
        # document gives it, or the item would read as said of whatever came before.
        label = s.label if s.label and s.kind != "row" and s.label not in s.text else ""
        if language == "ja":
            lead = (f"{date}時点の文書によると、" if date else "文書によると、") if n == 1 else "また、"
            if source and n == 1:
                lead = f"{_mark(source)}の主な記述として、"
            under = f"{_mark(label)}の項には" if label else ""
            parts.append(f"{lead}{under}{quoted}[{n}]。")
        else:
            if n == 1:
                lead = f"According to the documents as of {date}" if date else "The documents say"
                if source:
                    lead = f"Among the main statements of {_mark(source)}"
            else:
                lead = "They also say"
            under = f", under {_mark(label)}" if label else ""
            parts.append(f"{lead}{under}: {quoted} [{n}].")
    return ("" if language == "ja" else " ").join(parts), citations


MAX_GLOSSES = 12
_KATAKANA = re.compile(r"[ァ-ヴー・]+")


def glosses(lexicon: Any, quote: str, question: str) -> list[dict[str, str]]:
    """Dictionary glosses of a Japanese quote's content words, for a reader of English; at most
    `MAX_GLOSSES`, the words the question asks about first, listed in the quote's order. A word is
    glossed by the question's own word when one of its glosses is that word, or the word list renders
    the question's word by it ("territory" for 領土, not "dominion"); else by its first gloss. A
    katakana word the question does not name is left out: it is mostly a name, and a name's dictionary
    sense misleads (トランプ "playing cards"); so is a one-character word ("対" is not "opposite" in
    "対ロ制裁")."""
    if lexicon is None or not has_japanese(quote):
        return []
    from assistant.text.lexicon import variants

    q_words = {v for w in re.findall(r"[a-z][a-z'-]*", question.lower()) for v in variants(w)}
    rendered: dict[str, str] = {}
    for r in lexicon.render(question, "en"):
        for ja in r.renderings:
            rendered.setdefault(unicodedata.normalize("NFKC", ja), r.word)
    found: list[tuple[bool, int, str, str]] = []  # (asked, position, ja, en)
    seen: set[str] = set()
    for k, r in enumerate(lexicon.translate_ja(quote)):
        word = r.word
        if word in seen or not r.renderings:
            continue
        seen.add(word)
        en = next((g for g in r.renderings if g in q_words), None) or rendered.get(word)
        if en is None and (len(word) < 2 or _KATAKANA.fullmatch(word)):
            continue  # one character ("日", "対") glosses badly out of its compound
        found.append((en is not None, k, word, en or r.renderings[0]))
    kept = sorted(found, key=lambda f: (not f[0], f[1]))[:MAX_GLOSSES]
    return [{"ja": ja, "en": en} for _, _, ja, en in sorted(kept, key=lambda f: f[1])]


GLOSS_LABEL = "語釈（辞書） / Dictionary glosses"


def gloss_text(items: Sequence[dict[str, str]]) -> str:
    """"停戦 ceasefire · 和平 peace": the glosses on one line, for the CLI, Slack and the web page."""
    return " · ".join(f"{g['ja']} {g['en']}" for g in items)


def _mark(quote: str) -> str:
    """Quote marks that cannot clash with the quote itself."""
    one_line = quote.replace("\n", "")
    if has_japanese(quote) or '"' in quote:
        return f"「{one_line}」" if "「" not in quote and "」" not in quote else f"『{one_line}』"
    return f"\"{one_line}\""
