"""Decoding text files: UTF-8/UTF-16 by BOM or strict decode, else Japanese legacy encodings.

Shift_JIS is read as CP932 (its Windows superset: ①, 髙, ～); EUC-JP as EUC-JP, EUC-JIS-2004 or
eucJP-ms (through the system `iconv`, for IBM extension kanji). Characters are never dropped silently.
"""

from __future__ import annotations

import codecs
import shutil
import subprocess
import unicodedata

from assistant.types import LoadError

# Replacement characters are tolerated below this share, with a warning; above it the file is refused.
MAX_REPLACED_SHARE = 0.001

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)

# Detector names mapped to the codec that reads the same files without losing Windows characters.
_PREFERRED = {"shift_jis": "cp932", "shift-jis": "cp932", "sjis": "cp932", "cp932": "cp932"}
# Tried in this order, which also breaks ties; eucJP-ms (Linux, PHP, MySQL "ujis") comes before
# EUC-JIS-2004, which "decodes" eucJP-ms IBM extension kanji into different characters.
_JAPANESE = ("cp932", "euc_jp", "eucjp-ms", "euc_jis_2004")
_EUCJP_MS = "eucjp-ms"  # decoded by iconv; Python has no codec for it


def decode_text(data: bytes) -> tuple[str, str, list[str]]:
    """Return (text, encoding, warnings); raise LoadError when the bytes are no known text encoding."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding), encoding, []
            except UnicodeDecodeError as exc:
                raise _undecodable(encoding) from exc
    try:
        return data.decode("utf-8"), "utf-8", []
    except UnicodeDecodeError:
        pass
    candidates = _candidates(data)
    decoded: list[tuple[float, int, str, str]] = []
    for order, encoding in enumerate(candidates):
        text = _strict(data, encoding)
        if text is not None:
            decoded.append((_plausibility(text), -order, encoding, text))
    if decoded:
        _, _, encoding, text = max(decoded)
        return text, encoding, []
    return _with_replacement(data, candidates)


def _candidates(data: bytes) -> list[str]:
    names: list[str] = ["iso2022_jp"] if b"\x1b$" in data or b"\x1b(" in data else []
    names.extend(_JAPANESE)
    guess = _detect(data)
    if guess:
        names.append(_PREFERRED.get(guess.lower(), guess.lower()))
    unique: list[str] = []
    for name in names:
        key = name if name == _EUCJP_MS else codecs.lookup(name).name if _known(name) else ""
        # UTF-16/32 without a BOM would "decode" any even-length bytes into plausible-looking CJK.
        if key and key not in unique and not key.startswith(("utf_16", "utf_32")):
            unique.append(key)
    return unique


def _known(name: str) -> bool:
    try:
        codecs.lookup(name)
    except LookupError:
        return False
    return True


def _detect(data: bytes) -> str | None:
    from charset_normalizer import from_bytes

    best = from_bytes(data[:200_000]).best()
    return best.encoding if best is not None else None


def _strict(data: bytes, encoding: str) -> str | None:
    if encoding == _EUCJP_MS:
        return _iconv(data, "EUC-JP-MS")
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        return None


def _iconv(data: bytes, encoding: str) -> str | None:
    binary = shutil.which("iconv")
    if binary is None:
        return None
    try:
        done = subprocess.run(
            [binary, "-f", encoding, "-t", "UTF-8"], input=data, capture_output=True, timeout=60, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    try:
        return done.stdout.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _plausibility(text: str) -> float:
    """Share of characters typical of Japanese or English text, minus odd ones (mojibake signs)."""
    if not text:
        return 0.0
    score = 0.0
    for ch in text:
        code = ord(ch)
        if ch.isascii():
            score += 1.0 if (ch.isprintable() or ch in "\t\r\n\f") else -5.0
        elif 0xFF61 <= code <= 0xFF9F:  # half-width katakana: rare today, common in mis-decoded EUC
            score -= 2.0
        elif 0x3000 <= code <= 0x30FF or 0x4E00 <= code <= 0x9FFF or 0xFF01 <= code <= 0xFF5E:
            score += 1.0
        else:
            category = unicodedata.category(ch)
            if category in ("Cc", "Co", "Cn", "Cs"):
                score -= 5.0
            elif category.startswith("L"):
                score += 0.3
    return score / len(text)


def _with_replacement(data: bytes, candidates: list[str]) -> tuple[str, str, list[str]]:
    best: tuple[int, str, str] | None = None
    for encoding in ["utf-8", *candidates]:
        if encoding == _EUCJP_MS:
            continue
        text = data.decode(encoding, errors="replace")
        replaced = text.count("\ufffd")
        if best is None or replaced < best[0]:
            best = (replaced, encoding, text)
    assert best is not None
    replaced, encoding, text = best
    if replaced <= MAX_REPLACED_SHARE * max(len(text), 1):
        warning = f"{replaced} undecodable byte sequence(s) replaced with U+FFFD (read as {encoding})"
        return text, encoding, [warning]
    raise _undecodable(encoding)


def _undecodable(encoding: str) -> LoadError:
    return LoadError(
        f"cannot decode the text: not valid UTF-8, UTF-16, Shift_JIS/CP932 or EUC-JP (closest: {encoding})",
        f"文字コードを判別できません（UTF-8、UTF-16、Shift_JIS/CP932、EUC-JPのいずれでもありません。最も近いもの: {encoding}）",
    )
