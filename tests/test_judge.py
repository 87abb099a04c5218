"""The answer judge: the shipped file is the one its description pins, it assembles over the e5 base, and it
ranks the sentence that answers above ones that only share words with the question."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from assistant import judgebuild
from assistant.settings import Settings


def test_shipped_weights_match_their_digest() -> None:
    spec, path = judgebuild.verified_weights()
    assert judgebuild.sha256(path) == spec["weights"]["sha256"]
    assert path.stat().st_size == spec["weights"]["bytes"]
    assert path.stat().st_size <= 30 * 1024 * 1024
    # Where it comes from and under which terms, beside it.
    assert spec["base"]["model"] == "multilingual-e5-small"
    assert "MIT" in spec["licences"]["base_model"]
    assert any("JaQuAD" in d and "CC BY-SA 3.0" in d for d in spec["licences"]["data"])


def test_an_altered_weights_file_is_refused(tmp_path: Path) -> None:
    copy = tmp_path / "weights"
    shutil.copytree(judgebuild.shipped_dir(), copy)
    spec = judgebuild.read_spec(copy)
    target = copy / spec["weights"]["file"]
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(judgebuild.JudgeBuildError, match="SHA-256"):
        judgebuild.verified_weights(copy)


def test_row_quantisation_keeps_each_row_within_half_a_step() -> None:
    rng = np.random.default_rng(0)
    w = rng.normal(size=(64, 32)).astype(np.float32)
    w[3] = 0.0
    q, scale = judgebuild.quantise_rows(w)
    back = judgebuild.dequantise_rows(q, scale)
    step = np.abs(w).max(axis=1, keepdims=True) / 127
    assert q.dtype == np.int8 and scale.dtype == np.float16
    assert np.all(np.abs(back - w) <= step * 0.51 + 1e-3)
    assert np.all(back[3] == 0.0)


@pytest.fixture(scope="module")
def judge(models_dir: Path):  # type: ignore[no-untyped-def]
    from assistant.answering.judge import load_judge

    return load_judge(Settings(data_dir=models_dir.parent, models_dir=models_dir, _env_file=None))


def test_build_is_idempotent(judge, models_dir: Path) -> None:  # type: ignore[no-untyped-def]
    folder = judgebuild.judge_folder(models_dir)
    before = (folder / judgebuild.ONNX_INT8).stat().st_mtime_ns
    assert judgebuild.build_judge(models_dir) == folder
    assert (folder / judgebuild.ONNX_INT8).stat().st_mtime_ns == before


# (question, the sentence that answers it, sentences about the same subject that do not). General
# knowledge, none of it from the project's documents or evaluation sets.
PAIRS = [
    ("富士山の標高は何メートルですか？", "富士山は標高3776メートルで、日本で最も高い山である。",
     ["富士山は山梨県と静岡県にまたがる活火山である。", "富士山は2013年に世界文化遺産に登録された。"]),
    ("東京タワーはいつ完成しましたか？", "東京タワーは1958年12月に完成した。",
     ["東京タワーの高さは333メートルである。", "東京タワーは港区芝公園にある電波塔である。"]),
    ("Who founded the company?", "同社は1937年に豊田喜一郎によって設立された。",
     ["同社の本社は愛知県豊田市にある。", "同社は世界最大級の自動車メーカーである。"]),
    ("How many people live in the city?", "市の人口は約150万人である。",
     ["市は県の北部に位置し、港湾都市として発展した。", "市の面積は約430平方キロメートルである。"]),
]


@pytest.mark.parametrize(("question", "answer", "others"), PAIRS)
def test_the_judge_ranks_the_answer_first(judge, embedder, question: str, answer: str,  # type: ignore[no-untyped-def]
                                          others: list[str]) -> None:
    texts = [answer, *others]
    cos = embedder.embed_passages(texts) @ embedder.embed_queries([question])[0]
    logits = judge.logits(question, texts, cos)
    assert int(np.argmax(logits)) == 0, dict(zip(texts, logits.round(2), strict=True))
    p = judge.probability(logits)
    assert np.all((p > 0) & (p < 1))


@pytest.fixture(scope="module")
def judged_assistant(tmp_path_factory: pytest.TempPathFactory, models_dir: Path):  # type: ignore[no-untyped-def]
    from assistant.core import make_assistant
    from tests.helpers import CORPUS

    a = make_assistant(Settings(data_dir=tmp_path_factory.mktemp("judged"), models_dir=models_dir,
                                answer_judge=True, _env_file=None))
    a.ingest([CORPUS])
    return a


def test_with_the_judge_the_chain_quotes_what_it_ranked_first(judged_assistant) -> None:  # type: ignore[no-untyped-def]
    answer = judged_assistant.ask("米ロ首脳会談はどこで行われましたか？")
    assert judged_assistant.pipeline.scorer.judge is not None
    assert not answer.refused
    assert any("アラスカ" in c.quote for c in answer.citations)


def test_with_the_judge_a_refusal_names_its_reason(judged_assistant) -> None:  # type: ignore[no-untyped-def]
    from assistant.answering.refusal import RefusalReason, refusal_text

    answer = judged_assistant.ask("ブラジルの2024年のGDPはいくらですか？")
    assert answer.refused
    reason = RefusalReason(answer.refusal_reason.split(" ")[0])
    assert reason in (RefusalReason.WEAK_EVIDENCE, RefusalReason.ASKED_DETAIL_ABSENT)
    assert answer.answer.startswith(refusal_text("ja", reason, answer.refusal_reason.partition("(")[2].rstrip(")"))[:8])
