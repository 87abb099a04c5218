"""The web page's example questions, asked through the real model, are answered with the sentence that
answers them (the default answerer: extractive, with the answer judge)."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.interfaces.web import EXAMPLES
from tests.helpers import CORPUS

# For each example, words that only the sentence answering it holds (the place, the length of the delay, what
# the spokesperson rejected, the conditions listed).
ANSWERED_BY = {
    "米ロ首脳会談はどこで行われましたか？": ["アラスカ"],
    "ロシア外務省報道官は安全保障について何と述べましたか？": ["報道官", "拒否"],
    "How long did Trump postpone sanctions on Russia?": ["週間", "延期"],
    "What peace conditions were reportedly discussed at the summit?": ["クリミア"],
}


@pytest.fixture(scope="module")
def assistant(tmp_path_factory: pytest.TempPathFactory, models_dir: Path):  # type: ignore[no-untyped-def]
    from assistant.core import make_assistant
    from assistant.settings import Settings

    data = tmp_path_factory.mktemp("examples")
    a = make_assistant(Settings(data_dir=data, models_dir=models_dir, _env_file=None))
    a.ingest([CORPUS])
    return a


def test_every_example_has_its_answer_listed() -> None:
    assert set(ANSWERED_BY) == set(EXAMPLES)


# Neither the rules nor the answer judge quote the sentence that lists the conditions ("和平条件（クリミアと…）")
# for this one yet: it is what the answer judge's issue is about. Strict, so that fixing it turns this red.
KNOWN_MISSES = {"What peace conditions were reportedly discussed at the summit?"}


@pytest.mark.parametrize("question", [pytest.param(q, marks=pytest.mark.xfail(strict=True, reason="quotes another "
                                                   "sentence; the answer judge does not fix it yet"))
                                      if q in KNOWN_MISSES else q for q in EXAMPLES])
def test_the_page_examples_quote_the_answering_sentence(assistant, question: str) -> None:  # type: ignore[no-untyped-def]
    answer = assistant.ask(question)
    assert not answer.refused, answer.refusal_reason
    quotes = [c.quote for c in answer.citations]
    assert any(all(w in q for w in ANSWERED_BY[question]) for q in quotes), quotes
    assert answer.language == ("ja" if any("\u3040" <= ch <= "\u30ff" for ch in question) else "en")
