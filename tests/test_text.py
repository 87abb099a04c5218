"""Display text, search form, plain-text blocks and language detection."""

from __future__ import annotations

import random
import unicodedata
from pathlib import Path

import pytest

from assistant.text.lang import detect_language, script_profile
from assistant.text.normalize import (
    blocks_from_plain_text,
    build_display,
    find_in_display,
    join_lines,
    normalize_query,
    repair_lookalikes,
    search_form,
    unwrap,
)
from assistant.types import Block

SEED = Path(__file__).resolve().parents[2] / "shared" / "seed" / "briefing-russia-ukraine-2025-08.txt"


@pytest.mark.parametrize(
    ("lines", "joined"),
    [
        (["停戦よりも和平", "を優先する方針に転換。"], "停戦よりも和平を優先する方針に転換。"),
        (["the peace", "talks resumed"], "the peace talks resumed"),
        (["ウクライナへの", "NATO軍派遣"], "ウクライナへのNATO軍派遣"),
        (["NATO", "軍派遣"], "NATO軍派遣"),
        (["米国の", "（従来主張）"], "米国の（従来主張）"),
        (["an inter-", "national deal"], "an international deal"),
        (["the COVID-", "19 wave"], "the COVID-19 wave"),
        (["  padded  ", "", "\u3000全角空白\u3000"], "padded全角空白"),
        ([], ""),
    ],
)
def test_join_lines(lines: list[str], joined: str) -> None:
    assert join_lines(lines) == joined


def test_repair_lookalikes() -> None:
    assert repair_lookalikes("⽶⼤統領") == "米大統領"
    assert repair_lookalikes("\u2ed1期化") == "長期化"
    assert repair_lookalikes("\u2ec4欧") == "西欧"
    assert repair_lookalikes("米\u2027欧") == "米・欧"
    assert repair_lookalikes("ロシア\u46fe主張") == "ロシアの主張"
    assert repair_lookalikes("\uf900") == "豈"  # a compatibility ideograph
    kept = "（①）：～　ｶﾞ㍻ NATO 2025年"
    assert repair_lookalikes(kept) == kept
    mixed = "⽶⼤統領\u2ed1\u2ec4\u2027\u46fe\uf91c"
    assert len(repair_lookalikes(mixed)) == len(mixed)


def test_display_keeps_full_width_and_circled_numbers() -> None:
    blocks = [
        Block("⽶国の主張：", "heading", page=1),
        Block("① 領土交渉の起点（従来主張から一定の譲\n歩）、\n安保枠組み  を要求。", "paragraph", page=1),
    ]
    display = build_display(blocks)
    assert display.text == "米国の主張：\n\n① 領土交渉の起点（従来主張から一定の譲歩）、安保枠組み を要求。"
    assert [display.text[s.start : s.end] for s in display.spans] == display.text.split("\n\n")
    assert [s.kind for s in display.spans] == ["heading", "paragraph"]


def test_display_separators_and_spans() -> None:
    blocks = [
        Block("主張", "heading", page=2, section="主張"),
        Block("ウクライナ", "heading", page=2),
        Block("• 現在の戦線が起点", "bullet", page=2),
        Block("• 安全保証を要求", "bullet", page=2),
        Block("   ", "paragraph"),
        Block("地域 | 主張", "table_row", page=3),
        Block("米国\n| 限定的", "table_row", page=3),
        Block("米国", "heading", page=3),
        Block("本文です。", "paragraph", page=3),
    ]
    display = build_display(blocks)
    assert display.text == (
        "主張\nウクライナ\n• 現在の戦線が起点\n• 安全保証を要求\n"
        "地域 | 主張\n米国| 限定的\n\n米国\n\n本文です。"
    )
    assert len(display.spans) == 8
    assert display.spans[0].section == "主張" and display.spans[0].page == 2
    assert display.spans[4].page == 3
    for span, block in zip(display.spans, [b for b in blocks if b.text.strip()], strict=True):
        assert span.kind == block.kind
        assert display.text[span.start : span.end] == " ".join(display.text[span.start : span.end].split())


def test_unwrap_rebuilds_sentences_and_keeps_bullets() -> None:
    text = (
        "トランプ米大統領は15日の会談で、停戦よりも和平\n"
        "を優先する方針に転換。18日には和平条件を首脳に\n"
        "説明した。\n"
        "次の段落は短い。\n"
        "• 箇条書きの一行目が\n"
        "続く\n"
        "① 丸数字の項目"
    )
    assert unwrap(text).split("\n") == [
        "トランプ米大統領は15日の会談で、停戦よりも和平を優先する方針に転換。18日には和平条件を首脳に説明した。",
        "次の段落は短い。",
        "• 箇条書きの一行目が続く",
        "① 丸数字の項目",
    ]
    english = "The talks in Alaska were\nfollowed by a meeting."
    assert unwrap(english) == "The talks in Alaska were followed by a meeting."


def test_seed_display_rebuilds_wrapped_lines() -> None:
    display = build_display(blocks_from_plain_text(SEED.read_text(encoding="utf-8")))
    text = display.text
    assert "停戦よりも和平を優先する方針に転換" in text
    assert "ゼレンスキー大統領や欧州首脳に説明。しかし領土について" in text
    assert "• 現在の戦線が領土交渉の起点（従来主張から一定の譲歩）\n" in text
    assert "2～3週間の延期" in text  # full-width tilde kept
    for line in text.split("\n"):
        assert line == line.strip() and "  " not in line


def test_blocks_from_plain_text_seed() -> None:
    blocks = blocks_from_plain_text(SEED.read_text(encoding="utf-8"))
    headings = [b.text for b in blocks if b.kind == "heading"]
    assert headings[0].startswith("現状：") and headings[1].startswith("展望：")
    assert headings[2:6] == ["主張", "ウクライナ", "米国", "ロシア"]
    assert headings[6].startswith("研究分野：")
    bullets = [b for b in blocks if b.kind == "bullet"]
    assert len(bullets) == 6
    assert bullets[-1].text == "• ウクライナへのNATO軍派遣を含むいかなるシナリオ\nも明確に拒否"
    assert blocks[-1].kind == "paragraph" and blocks[-1].text.startswith("木材建材第二部")
    assert sum(b.kind == "paragraph" for b in blocks) == 5


def test_blocks_from_plain_text_lists_tables_and_titles() -> None:
    text = (
        "はじめに\n"
        "本文の一行目はここにあり、文章が長く続いていきます。そして二行目へと\n"
        "折り返されて続いています。\n"
        "\n"
        "- first item that wraps\n"
        "  onto a second line\n"
        "- second item\n"
        "1. numbered\n"
        "| 国 | 主張 |\n"
        "|----|------|\n"
        "| 米国 | 限定的 |\n"
        "\n"
        "最後の段落です。\n"
        "\n"
        "12"
    )
    blocks = blocks_from_plain_text(text)
    assert [(b.kind, b.text.split("\n")[0].strip()) for b in blocks] == [
        ("heading", "はじめに"),
        ("paragraph", "本文の一行目はここにあり、文章が長く続いていきます。そして二行目へと"),
        ("bullet", "- first item that wraps"),
        ("bullet", "- second item"),
        ("bullet", "1. numbered"),
        ("table_row", "| 国 | 主張 |"),
        ("table_row", "| 米国 | 限定的 |"),
        ("paragraph", "最後の段落です。"),
        ("paragraph", "12"),
    ]
    assert build_display(blocks[2:3]).text == "- first item that wraps onto a second line"


def test_a_heading_above_a_one_line_paragraph_and_lines_set_one_by_one() -> None:
    text = (
        "北海電機 決算の概要\n"
        "\n"
        "2025年11月5日\n"
        "経営企画部 IR担当\n"
        "\n"
        "業績の概要\n"
        "売上高は前年同期比8%増の1,250億円となった。データセンター向けの変圧器の受注が好調で、産業機器部門が全体をけん引した。\n"
        "\n"
        "本日の会議では、\n"
        "来年度の予算について\n"
        "議論しました。\n"
    )
    blocks = blocks_from_plain_text(text, set_lines=True)
    assert [(b.kind, b.text) for b in blocks][:5] == [
        ("heading", "北海電機 決算の概要"),
        ("paragraph", "2025年11月5日"),
        ("paragraph", "経営企画部 IR担当"),
        ("heading", "業績の概要"),
        ("paragraph", text.split("\n")[6]),
    ]
    # A sentence wrapped by hand ends one of its lines: it is still joined.
    assert build_display(blocks[5:]).text == "本日の会議では、来年度の予算について議論しました。"
    # Without `set_lines` (a PDF page's extraction), short lines are joined as before.
    assert [b.text for b in blocks_from_plain_text(text)][1] == "2025年11月5日\n経営企画部 IR担当"


def test_search_form_nfkc_with_offsets() -> None:
    display = "㍻ｶﾞＮＡＴＯ①（か\u3099）"
    form = search_form(display)
    assert form.text == "平成ガnato1(が)"
    assert form.text == unicodedata.normalize("NFKC", display).lower()
    assert form.to_display == [0, 0, 1, 3, 4, 5, 6, 7, 8, 9, 11, 12]
    assert form.display_span(1, 2) == (0, 1)  # half of 平成 maps to the whole ㍻
    assert form.display_span(2, 3) == (1, 3)  # ガ covers ｶﾞ
    assert form.display_span(3, 7) == (3, 7)
    assert form.display_span(9, 10) == (9, 11)


_ALPHABET = (
    "あいうえおかがきぎアイウエオカガ漢字米国長期日本語ｱｲｳｶﾞﾊﾟｶﾞ㍻㌔①②⑩（）：～！？「」、。・ "
    "ＡＢＣａｂｃ０１２ABCxyz019.,;-\u3000\u3099\u309a\uff9e"
)


def _random_text(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(_ALPHABET) for _ in range(n))


@pytest.mark.parametrize("seed", range(40))
def test_search_form_offset_map_properties(seed: int) -> None:
    rng = random.Random(seed)
    display = _random_text(rng, rng.randint(0, 60))
    form = search_form(display)
    assert form.text == unicodedata.normalize("NFKC", display).lower()
    assert len(form.to_display) == len(form.text) + 1
    assert form.to_display[-1] == len(display)
    assert form.to_display == sorted(form.to_display)
    for i, ch in enumerate(form.text):
        start, end = form.display_span(i, i + 1)
        assert start == form.to_display[i] and end > start
        assert ch in unicodedata.normalize("NFKC", display[start:end]).lower()
    # Whole display spans map back to text whose search form is the matched text.
    for _ in range(10):
        a = rng.randint(0, len(form.text))
        b = rng.randint(a, len(form.text))
        start, end = form.display_span(a, b)
        assert form.text[a:b] in search_form(display[start:end]).text


@pytest.mark.parametrize("seed", range(40))
def test_find_in_display_round_trips(seed: int) -> None:
    rng = random.Random(1000 + seed)
    display = _random_text(rng, rng.randint(5, 80))
    a = rng.randint(0, len(display) - 1)
    b = rng.randint(a + 1, len(display))
    needle = display[a:b]
    if not normalize_query(needle):
        assert find_in_display(needle, display) is None
        return
    found = find_in_display(needle, display)
    assert found is not None
    start, end = found
    found_form = "".join(normalize_query(display[start:end]).split())
    assert "".join(normalize_query(needle).split()) in found_form
    # The same needle written in another width still finds a span.
    assert find_in_display(unicodedata.normalize("NFKC", needle), display) is not None


def test_find_in_display_tolerates_width_spaces_and_line_breaks() -> None:
    display = "研究分野：マクロ経済全般\n\nＮＡＴＯ軍の派遣（２０２５年）を拒否。"
    assert find_in_display("NATO軍の派遣(2025年)", display) == (14, 29)
    assert display[14:29] == "ＮＡＴＯ軍の派遣（２０２５年）"
    start, end = find_in_display("マクロ経済全般 NATO軍", display) or (0, 0)
    assert display[start:end] == "マクロ経済全般\n\nＮＡＴＯ軍"
    assert find_in_display("nato", display) == (14, 18)
    assert find_in_display("和平", display) is None
    assert find_in_display("   ", display) is None


def test_normalize_query() -> None:
    raw = "  ⽶国の\u3000ＮＡＴＯ\n方針 ① "
    assert normalize_query(raw) == "米国の nato 方針 1"
    assert normalize_query(raw) == search_form(" ".join(repair_lookalikes(raw).split())).text


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("", "en"),
        ("ロシアの主張は？", "ja"),
        ("NATOについてロシアは何と言っている?", "ja"),
        ("OpenAIのGPT-4とClaudeの違いは？", "ja"),
        ("ロシア 制裁 2025", "ja"),
        ("2025年8月15日の会談", "ja"),
        ("What did the briefing say about 丸紅?", "en"),
        ("What is Russia's position on NATO in 2025?", "en"),
        ("Tell me about 丸紅経済研究所", "en"),
        ("12345", "en"),
    ],
)
def test_detect_language(text: str, lang: str) -> None:
    assert detect_language(text) == lang


def test_script_profile() -> None:
    profile = script_profile("ロシアの主張 NATO 15")
    assert set(profile) == {"kana", "kanji", "latin", "digits"}
    assert profile["kana"] == pytest.approx(4 / 12)
    assert profile["kanji"] == pytest.approx(2 / 12)
    assert profile["latin"] == pytest.approx(4 / 12)
    assert profile["digits"] == pytest.approx(2 / 12)
    assert script_profile("") == {"kana": 0.0, "kanji": 0.0, "latin": 0.0, "digits": 0.0}
