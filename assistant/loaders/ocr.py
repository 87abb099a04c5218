"""Optical character recognition of page images with the Tesseract command-line program."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL.Image import Image

OCR_DPI = 300
OCR_TIMEOUT_S = 300.0

# Tesseract separates every Japanese character with a space; no space belongs between them.
_CJK = "\u2e80-\u2fdf\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef"
# Full-width punctuation carries its own spacing, so no space belongs beside it either; digits
# sit against Japanese text ("15日"). Spaces between Latin words and Japanese ("NATO 軍") are kept.
_PUNCT = "\u3000-\u303f\uff01-\uff0f\uff1a-\uff20\uff3b-\uff40\uff5b-\uff65"
_CJK_SPACE = re.compile(
    f"(?<=[{_CJK}])[ \t\u3000]+(?=[{_CJK}0-9])|(?<=[0-9])[ \t\u3000]+(?=[{_CJK}])"
    f"|(?<=[{_PUNCT}])[ \t\u3000]+|[ \t\u3000]+(?=[{_PUNCT}])"
)


def ocr_unavailable(languages: str) -> str | None:
    """Why OCR in `languages` (e.g. 'jpn+eng') cannot run here, or None when it can."""
    binary = shutil.which("tesseract")
    if binary is None:
        return "the tesseract program is not installed"
    installed = _installed_languages(binary)
    missing = [lang for lang in languages.split("+") if lang and lang not in installed]
    if missing:
        return f"tesseract has no language data for {', '.join(missing)}"
    return None


@cache
def _installed_languages(binary: str) -> frozenset[str]:
    try:
        done = subprocess.run(
            [binary, "--list-langs"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return frozenset()
    # The first line is a header ("List of available languages in ...").
    return frozenset(line.strip() for line in done.stdout.splitlines()[1:] if line.strip())


def ocr_image(image: Image, languages: str = "jpn+eng") -> str:
    """The text Tesseract reads in `image`, with the spaces it puts between Japanese characters removed."""
    binary = shutil.which("tesseract")
    if binary is None:
        raise RuntimeError("tesseract is not installed")
    png = io.BytesIO()
    image.convert("L").save(png, format="PNG")
    done = subprocess.run(
        [binary, "stdin", "stdout", "-l", languages, "--dpi", str(OCR_DPI), "--psm", "3"],
        input=png.getvalue(),
        capture_output=True,
        timeout=OCR_TIMEOUT_S,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"tesseract failed: {done.stderr.decode('utf-8', 'replace').strip()[:300]}")
    return join_cjk(done.stdout.decode("utf-8", "replace"))


def join_cjk(text: str) -> str:
    """Remove the spaces OCR puts between Japanese characters and beside digits or full-width punctuation."""
    return _CJK_SPACE.sub("", text)
