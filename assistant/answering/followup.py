"""Follow-ups without a chat model: carry the previous question's key terms into retrieval."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from assistant.text.lang import has_japanese

_REFERS_BACK = re.compile(
    r"それ|その|これ|この|あの|あれ|彼ら?|彼女|同氏|同国|同様|前述|上記|そこ|そちら"
    r"|\b(?:this|that|these|those|they|them|their|it|its|he|him|his|she|her|there|the same)\b",
    re.IGNORECASE,
)
# Openings and words that continue the previous question rather than start a new one ("And what
# about…", "What happens instead?", "では、…", "ほかに…", and the contrastive topic "Xについては…",
# "as for X", which keeps the previous question's speaker and time and changes only its topic).
_CONTINUES = re.compile(
    r"^\s*(?:and|so|then|also|what about|how about|as for)\b|\b(?:instead|else|otherwise)\b"
    r"|^\s*(?:では|じゃあ|それで|で、|ほかに|他に|ちなみに|あと、|さらに)|(?:について|に関して)は",
    re.IGNORECASE,
)
SHORT_JA_CHARS = 14
SHORT_EN_WORDS = 5
MAX_TERMS = 6


def previous_question(history: Sequence[Mapping[str, str]]) -> str | None:
    for turn in reversed(history):
        if turn.get("role") == "user" and turn.get("content", "").strip():
            return turn["content"].strip()
    return None


def needs_context(question: str) -> bool:
    """A question that is short, refers back or continues the previous one cannot be retrieved on its own."""
    if _REFERS_BACK.search(question) or _CONTINUES.search(question):
        return True
    if has_japanese(question):
        return len(re.sub(r"\s", "", question)) <= SHORT_JA_CHARS
    return len(question.split()) <= SHORT_EN_WORDS


def key_terms(question: str) -> list[str]:
    """Content tokens of a question, in order of appearance."""
    from assistant.answering.extractive import content_tokens
    from assistant.keyword.tokenize import Analysis, tokenize
    from assistant.text.normalize import search_form

    wanted = content_tokens(question)
    seen: list[str] = []
    for tok in tokenize(search_form(question).text, Analysis(bigrams=False)):
        t = tok.strip().lower()
        if t in wanted and t not in seen and not _REFERS_BACK.fullmatch(t):
            seen.append(t)
    return seen[:MAX_TERMS]


def carry_terms(question: str, history: Sequence[Mapping[str, str]]) -> str:
    """The question itself, or with the previous question's key terms appended when it needs them."""
    prev = previous_question(history)
    if not prev or not needs_context(question):
        return question
    terms = [t for t in key_terms(prev) if t not in question.lower()]
    if not terms:
        return question
    return f"{question} ({' '.join(terms)})"
