"""Sentence splitting and chunking of display text."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from assistant.text.chunking import ChunkSpan, chunk_display, split_long, split_sentences
from assistant.text.normalize import DisplayText, Span, blocks_from_plain_text, build_display
from assistant.types import Block

SEED = Path(__file__).resolve().parents[2] / "shared" / "seed" / "briefing-russia-ukraine-2025-08.txt"


def sentences(text: str) -> list[str]:
    return [text[s:e] for s, e in split_sentences(text)]


def test_split_japanese_with_brackets() -> None:
    text = "報道官は「拒否する。断じて。」と述べた。大きい（参加国の1つとした。）。本当？ええ！次"
    assert sentences(text) == [
        "報道官は「拒否する。断じて。」と述べた。",
        "大きい（参加国の1つとした。）。",
        "本当？",
        "ええ！",
        "次",
    ]


def test_split_unmatched_bracket_does_not_swallow_the_line() -> None:
    assert sentences("（注：一つ目。二つ目。") == ["（注：一つ目。", "二つ目。"]
    assert sentences("1) 一つ目。2) 二つ目。") == ["1) 一つ目。", "2) 二つ目。"]


def test_split_english_abbreviations_decimals_initials() -> None:
    text = (
        "Mr. Trump met Dr. Putin on Aug. 15 in the U.S. state of Alaska. Growth was 3.5 percent, "
        "e.g. in energy. J. R. Smith agreed! Was it enough? Yes. The end"
    )
    assert sentences(text) == [
        "Mr. Trump met Dr. Putin on Aug. 15 in the U.S. state of Alaska.",
        "Growth was 3.5 percent, e.g. in energy.",
        "J. R. Smith agreed!",
        "Was it enough?",
        "Yes.",
        "The end",
    ]


def test_split_line_breaks_are_boundaries_and_spans_are_trimmed() -> None:
    text = "  主張\n• 現在の戦線が起点\n\n1. The first item\n地域 | 主張  "
    spans = split_sentences(text)
    assert [text[s:e] for s, e in spans] == ["主張", "• 現在の戦線が起点", "1. The first item", "地域 | 主張"]
    assert all(text[s:e] == text[s:e].strip() for s, e in spans)
    assert split_sentences("") == [] and split_sentences(" \n ") == []


def _paragraph_display(sentence_count: int, seed: int = 0) -> DisplayText:
    rng = random.Random(seed)
    letters = "和平交渉停戦安全保障枠組みロシアウクライナ米国"
    parts = [
        "".join(rng.choice(letters) for _ in range(rng.randint(20, 90))) + "。" for _ in range(sentence_count)
    ]
    text = "".join(parts)
    return DisplayText(text, [Span(0, len(text), "paragraph", 1, None)])


@pytest.mark.parametrize("seed", range(5))
def test_chunk_sizes_and_one_sentence_overlap(seed: int) -> None:
    display = _paragraph_display(40, seed)
    chunks = chunk_display(display, target_chars=300, max_chars=450, overlap_sentences=1)
    sents = split_sentences(display.text)
    starts, ends = [s for s, _ in sents], [e for _, e in sents]
    assert len(chunks) > 3
    assert chunks[0].start == 0 and chunks[-1].end == len(display.text)
    for chunk in chunks:
        assert 0 < chunk.end - chunk.start <= 450
        assert chunk.start in starts and chunk.end in ends
    for prev, nxt in zip(chunks, chunks[1:], strict=False):
        # The next chunk starts with the last sentence of the previous one.
        last = max(i for i, e in enumerate(ends) if e <= prev.end)
        assert nxt.start == starts[last]
    covered = set().union(*(range(c.start, c.end) for c in chunks))
    assert covered == set(range(len(display.text)))


def test_chunk_without_overlap_tiles_the_text() -> None:
    display = _paragraph_display(30)
    chunks = chunk_display(display, target_chars=200, max_chars=400, overlap_sentences=0)
    assert all(a.end <= b.start for a, b in zip(chunks, chunks[1:], strict=False))


def test_headings_are_boundaries_and_name_sections() -> None:
    blocks = [
        Block("現状", "heading", page=1),
        Block("和平が優先された。" * 5, "paragraph", page=1),
        Block("展望", "heading", page=1),
        Block("交渉は難航する。" * 5, "paragraph", page=2),
        Block("ロシアの主張", "bullet", page=2, section="主張"),
    ]
    display = build_display(blocks)
    chunks = chunk_display(display, target_chars=400, max_chars=600)
    assert [(display.text[c.start : c.end].split("\n")[0], c.section, c.page) for c in chunks] == [
        ("現状", "現状", 1),
        ("展望", "展望", 1),
        ("ロシアの主張", "主張", 2),
    ]


def test_chunk_spanning_a_page_break_takes_its_first_page() -> None:
    blocks = [
        Block("一ページ目の文です。", "paragraph", page=3),
        Block("二ページ目の文です。", "paragraph", page=4),
    ]
    chunks = chunk_display(build_display(blocks))
    assert chunks == [ChunkSpan(0, 22, 3, None)]


def test_long_sentence_split_at_clauses_then_hard_cut() -> None:
    clause = "ロシアは交渉の条件として領土の割譲を求め"
    text = "、".join([clause] * 30) + "。"
    pieces = split_long(text, 0, len(text), 100, 150)
    assert len(pieces) > 3
    for s, e in pieces[:-1]:
        assert e - s <= 150 and text[e - 1] == "、"
    words = " ".join(["negotiations"] * 60)
    cuts = split_long(words, 0, len(words), 100, 150)
    for s, e in cuts:
        assert e - s <= 150
        assert words[s:e].split() == ["negotiations"] * len(words[s:e].split())
    astral = "𠮷野家" * 100  # astral characters must stay whole (one code point each here)
    for s, e in split_long(astral, 0, len(astral), 100, 150):
        assert e - s <= 150 and astral[s:e].encode("utf-8").decode("utf-8") == astral[s:e]
    assert split_long("短い。", 0, 3, 100, 150) == [(0, 3)]


def test_over_long_sentence_chunks_stay_under_max() -> None:
    text = "、".join(["停戦と和平に向けた一連の会談を時間稼ぎとみる専門家は多く"] * 40) + "。"
    display = DisplayText(text, [Span(0, len(text), "paragraph", None, None)])
    chunks = chunk_display(display, target_chars=200, max_chars=300)
    assert len(chunks) > 3 and all(c.end - c.start <= 300 for c in chunks)
    assert chunks[-1].end == len(text)


def test_small_trailing_fragment_merges() -> None:
    text = "あ" * 395 + "。" + "短い文。"
    display = DisplayText(text, [Span(0, len(text), "paragraph", None, None)])
    assert chunk_display(display) == [ChunkSpan(0, len(text), None, None)]


def test_empty_and_blank_displays() -> None:
    assert chunk_display(DisplayText("", [])) == []
    assert chunk_display(build_display([Block("  \n ", "paragraph")])) == []
    only = DisplayText("本文。", [])
    assert chunk_display(only) == [ChunkSpan(0, 3, None, None)]


def _seed_blocks_with_main_headings() -> list[Block]:
    """The seed's blocks as a loader marking only its main headings would give them."""
    blocks = blocks_from_plain_text(SEED.read_text(encoding="utf-8"))
    main = ("現状", "展望", "主張", "研究分野")
    for block in blocks:
        if block.kind == "heading" and not block.text.startswith(main):
            block.kind = "paragraph"
    return blocks


def test_seed_chunks_hold_whole_sentences_and_sections() -> None:
    display = build_display(_seed_blocks_with_main_headings())
    chunks = chunk_display(display)
    sents = split_sentences(display.text)
    starts, ends = {s for s, _ in sents}, {e for _, e in sents}
    assert len(chunks) >= 4
    for chunk in chunks:
        text = display.text[chunk.start : chunk.end]
        assert text and text == text.strip()
        assert chunk.start in starts and chunk.end in ends  # no chunk ends mid-sentence
        assert chunk.end - chunk.start <= 600
    sections = [c.section or "" for c in chunks]
    assert [s.split("：")[0] for s in dict.fromkeys(sections)] == ["現状", "展望", "主張", "研究分野"]
    claims = [display.text[c.start : c.end] for c in chunks if c.section == "主張"]
    assert any("ロシア\n\n• クリミアとドネツィク・ルハンシク州の割譲" in t for t in claims)
    assert any("停戦よりも和平を優先する方針に転換" in display.text[c.start : c.end] for c in chunks)


def test_seed_chunks_from_plain_text_blocks() -> None:
    display = build_display(blocks_from_plain_text(SEED.read_text(encoding="utf-8")))
    chunks = chunk_display(display)
    sections = list(dict.fromkeys(c.section for c in chunks))
    assert sections[2:5] == ["ウクライナ", "米国", "ロシア"]  # the party names stand alone as headings
    assert display.text[chunks[4].start : chunks[4].end].startswith("主張\nウクライナ\n")
