"""Which language a question or text is in (Japanese or English), from the scripts it uses."""

from __future__ import annotations

import re
from typing import Literal

_LATIN_WORD = re.compile(r"[A-Za-z\uFF21-\uFF3A\uFF41-\uFF5A\u00C0-\u024F]+")
_JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


def has_japanese(text: str) -> bool:
    """Whether `text` holds any kana or kanji."""
    return _JAPANESE.search(text) is not None


def _counts(text: str) -> dict[str, int]:
    counts = {"hiragana": 0, "katakana": 0, "kanji": 0, "latin": 0, "digits": 0, "chars": 0}
    for ch in text:
        if ch.isspace():
            continue
        code = ord(ch)
        counts["chars"] += 1
        if 0x3041 <= code <= 0x309F:
            counts["hiragana"] += 1
        elif 0x30A1 <= code <= 0x30FA or 0x30FC <= code <= 0x30FF or 0x31F0 <= code <= 0x31FF or (
            0xFF66 <= code <= 0xFF9F
        ):
            counts["katakana"] += 1
        elif 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0xF900 <= code <= 0xFAFF or (
            0x20000 <= code <= 0x3FFFF
        ) or ch in "々〆ヶ":
            counts["kanji"] += 1
        elif ch.isdigit():
            counts["digits"] += 1
        elif _LATIN_WORD.fullmatch(ch):
            counts["latin"] += 1
    return counts


def script_profile(text: str) -> dict[str, float]:
    """Shares of kana, kanji, Latin letters and digits among the text's non-space characters."""
    c = _counts(text)
    total = c["chars"] or 1
    return {
        "kana": (c["hiragana"] + c["katakana"]) / total,
        "kanji": c["kanji"] / total,
        "latin": c["latin"] / total,
        "digits": c["digits"] / total,
    }


def detect_language(text: str) -> Literal["ja", "en"]:
    """"ja" when Japanese script carries the text, else "en" (also for empty text)."""
    c = _counts(text)
    japanese = c["hiragana"] + c["katakana"] + c["kanji"]
    if not japanese:
        return "en"
    words = len(_LATIN_WORD.findall(text))
    # Hiragana (particles, endings) marks Japanese grammar; kanji or katakana alone are often
    # names quoted in an English sentence, so they must outweigh the English words clearly.
    if c["hiragana"]:
        return "ja" if 2 * japanese >= words else "en"
    return "ja" if japanese > 4 * words else "en"
