"""Loaders over real files made at test time: encodings, HTML, Markdown, Word, PowerPoint, limits."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from assistant.loaders import load_document, read_sidecar, supported_suffixes
from assistant.loaders.encoding import decode_text
from assistant.types import LoadError
from tests.docmakers import LEGACY_TEXT, make_docx, make_oversize, make_pptx, write_encoded

MB = 1024 * 1024


def load(path: Path, **kwargs: object) -> object:
    return load_document(path, max_bytes=MB, **kwargs)  # type: ignore[arg-type]


def all_text(path: Path) -> str:
    return "\n".join(b.text for b in load_document(path, max_bytes=MB).blocks)


def test_supported_suffixes_exclude_sidecars() -> None:
    assert supported_suffixes() == {".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx", ".pptx"}


@pytest.mark.parametrize(
    ("encoding", "source"),
    [
        ("cp932", LEGACY_TEXT),
        ("utf-16", LEGACY_TEXT),
        ("utf-8-sig", LEGACY_TEXT),
        # 髙 is an IBM extension that EUC-JIS-2004 cannot hold; plain EUC-JP holds none of ①髙～.
        ("euc_jis_2004", LEGACY_TEXT.replace("髙", "高")),
        ("euc_jp", LEGACY_TEXT.replace("髙", "高").replace("①", "").replace("～", "から")),
    ],
    ids=["cp932", "utf-16", "utf-8-sig", "euc_jis_2004", "euc_jp"],
)
def test_legacy_encodings_keep_every_character(tmp_path: Path, encoding: str, source: str) -> None:
    path = write_encoded(tmp_path / "briefing.txt", source, encoding)
    text = all_text(path).replace("\n", "")
    for line in source.split("\n"):
        assert line in text, (encoding, line, text)


@pytest.mark.skipif(shutil.which("iconv") is None, reason="needs the system iconv (glibc) for EUC-JP-MS")
def test_eucjp_ms_from_iconv_keeps_ibm_kanji(tmp_path: Path) -> None:
    path = write_encoded(tmp_path / "briefing.txt", LEGACY_TEXT, "EUC-JP-MS")
    assert "髙橋氏" in all_text(path).replace("\n", "")


def test_shift_jis_wave_dash_reads_as_windows_does() -> None:
    text, encoding, warnings = decode_text(LEGACY_TEXT.encode("cp932"))
    assert encoding == "cp932" and text == LEGACY_TEXT and warnings == []


def test_undecodable_bytes_are_refused_not_dropped() -> None:
    with pytest.raises(LoadError) as info:
        decode_text(bytes(range(128, 256)) * 50)
    assert "decode" in info.value.reason and info.value.reason_ja


def test_a_few_bad_bytes_are_replaced_with_a_warning() -> None:
    data = ("和平交渉の現状と展望。" * 400).encode("utf-8") + b"\xff" + "以上。".encode()
    text, _, warnings = decode_text(data)
    assert text.count("\ufffd") == 1 and "1 undecodable" in warnings[0]


def test_html_drops_script_style_and_nav(tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    page.write_text(
        """<html lang="ja"><head><title>会談の報告</title><meta name="date" content="2025-08-20">
        <style>.x{color:red}</style><script>var secret = "alert(1)";</script></head>
        <body><nav>ホーム | 一覧</nav><h1>現状</h1><p>トランプ米大統領は
        和平を優先した。<b>注目</b>の会談。</p><ul><li>停戦</li><li>制裁<ul><li>延期</li></ul></li></ul>
        <table><tr><th>国</th><th>立場</th></tr><tr><td>ロシア</td><td>時間稼ぎ</td></tr></table>
        <p>&lt;script&gt;not markup&lt;/script&gt;</p>
        <script>document.write("injected")</script></body></html>""",
        encoding="utf-8",
    )
    document = load(page)
    text = "\n".join(b.text for b in document.blocks)  # type: ignore[attr-defined]
    assert "secret" not in text and "injected" not in text and "color" not in text and "ホーム" not in text
    assert "トランプ米大統領は和平を優先した。注目の会談。" in text  # no space from the source line break
    kinds = [(b.kind, b.text) for b in document.blocks]  # type: ignore[attr-defined]
    assert ("heading", "現状") in kinds and ("bullet", "制裁") in kinds and ("bullet", "延期") in kinds
    assert ("table_row", "ロシア | 時間稼ぎ") in kinds
    assert ("paragraph", "<script>not markup</script>") in kinds  # text stays text
    meta = document.meta  # type: ignore[attr-defined]
    assert (meta.title, meta.date, meta.language) == ("会談の報告", "2025-08-20", "ja")
    assert all(b.section == "現状" for b in document.blocks)  # type: ignore[attr-defined]


def test_html_in_shift_jis_with_declared_charset(tmp_path: Path) -> None:
    page = tmp_path / "page.htm"
    html = '<html><head><meta charset="Shift_JIS"><title>報告</title></head><body><p>①髙橋氏～</p></body></html>'
    page.write_bytes(html.encode("cp932"))
    assert all_text(page) == "①髙橋氏～"


def test_markdown_front_matter_headings_lists_tables_and_code(tmp_path: Path) -> None:
    path = tmp_path / "note.md"
    path.write_text(
        "---\ntitle: \"前線の報告\"\ndate: 2025-08-21\npublisher: 研究所\nsections: [現状, 展望]\n"
        "author: 山田\n---\n\n# 見出し一\n\n本文の段落です。**強調**と[リンク](http://example.com)。\n\n"
        "## 展望\n\n- 項目一\n- 項目二\n  続きの行\n\n| 国 | 立場 |\n|---|---|\n| 米国 | 和平 |\n\n"
        "```\ncode # not a heading\n```\n",
        encoding="utf-8",
    )
    document = load(path)
    blocks = [(b.kind, b.text, b.section) for b in document.blocks]  # type: ignore[attr-defined]
    assert ("heading", "見出し一", "見出し一") in blocks
    assert any(k == "paragraph" and "強調とリンク。" in t for k, t, _ in blocks)
    assert ("bullet", "項目二\n続きの行", "展望") in blocks
    assert ("table_row", "米国 | 和平", "展望") in blocks
    assert ("table_row", "国 | 立場", "展望") in blocks and not any("---" in t for _, t, _ in blocks)
    assert any("code # not a heading" in t and k == "paragraph" for k, t, _ in blocks)
    meta = document.meta  # type: ignore[attr-defined]
    assert (meta.title, meta.date, meta.publisher) == ("前線の報告", "2025-08-21", "研究所")
    assert meta.sections == ["現状", "展望"] and meta.extra["author"] == "山田"


def test_markdown_title_falls_back_to_first_heading(tmp_path: Path) -> None:
    path = tmp_path / "note.markdown"
    path.write_text("前書き\n\n# 本当の題名\n\n本文。\n", encoding="utf-8")
    assert load(path).meta.title == "本当の題名"  # type: ignore[attr-defined]


def test_docx_headings_lists_tables_and_properties(tmp_path: Path) -> None:
    document = load(make_docx(tmp_path / "report.docx"))
    blocks = [(b.kind, b.text, b.section) for b in document.blocks]  # type: ignore[attr-defined]
    assert blocks == [
        ("heading", "現状", "現状"),
        ("paragraph", "トランプ米大統領は和平を優先する方針に転換した。", "現状"),
        ("bullet", "停戦交渉", "現状"),
        ("bullet", "安全保障の枠組み", "現状"),
        ("heading", "展望", "展望"),
        ("table_row", "国 | 立場", "展望"),
        ("table_row", "ロシア | 時間稼ぎ", "展望"),
        ("paragraph", "交渉は難航が予想される。", "展望"),
    ]
    meta = document.meta  # type: ignore[attr-defined]
    assert meta.title == "ウクライナ情勢の報告" and len(meta.date) == 10 and meta.language == "ja"


def test_pptx_slides_are_pages(tmp_path: Path) -> None:
    document = load(make_pptx(tmp_path / "deck.pptx"))
    blocks = [(b.kind, b.text, b.page, b.section) for b in document.blocks]  # type: ignore[attr-defined]
    assert ("heading", "和平交渉の展望", 1, "和平交渉の展望") in blocks
    assert ("heading", "現状", 2, "現状") in blocks
    assert ("bullet", "ロシアは時間稼ぎに成功", 2, "現状") in blocks
    assert ("bullet", "欧州は安全保障の枠組みを検討", 2, "現状") in blocks
    assert ("table_row", "米国 | トランプ大統領", 2, "現状") in blocks
    assert document.meta.title == "和平交渉の展望"  # type: ignore[attr-defined]


def test_file_over_the_limit_is_refused_unread(tmp_path: Path) -> None:
    path = make_oversize(tmp_path / "huge.txt", MB)
    with pytest.raises(LoadError) as info:
        load_document(path, max_bytes=MB)
    assert "over the limit of 1 MB" in info.value.reason and "ASSISTANT_MAX_FILE_MB" in info.value.reason
    assert "上限" in info.value.reason_ja


@pytest.mark.parametrize("content", [b"", b"  \n\n \r\n"])
def test_empty_file_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "empty.txt"
    path.write_bytes(content)
    with pytest.raises(LoadError) as info:
        load(path)
    assert (info.value.reason, info.value.reason_ja) == ("empty document", "文書が空です")


@pytest.mark.parametrize("name", ["data.xlsx", "briefing.txt.meta.json", "README"])
def test_unknown_extension_lists_the_supported_ones(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text("x", encoding="utf-8")
    with pytest.raises(LoadError) as info:
        load(path)
    assert "unsupported" in info.value.reason and ".pdf" in info.value.reason
    assert ".docx" in info.value.reason_ja


def test_corrupt_docx_is_a_load_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.docx"
    path.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(LoadError) as info:
        load(path)
    assert "corrupt or unreadable" in info.value.reason


def test_sidecar_wins_over_intrinsic_metadata(tmp_path: Path) -> None:
    path = tmp_path / "note.md"
    path.write_text("---\ntitle: 本文の題名\ndate: 2024-01-01\n---\n# 見出し\n\n本文。\n", encoding="utf-8")
    sidecar = {"title": "正式な題名", "date": "2025-08", "publisher": "丸紅経済研究所", "title_en": "Title"}
    (tmp_path / "note.md.meta.json").write_text(json.dumps(sidecar, ensure_ascii=False), encoding="utf-8")
    meta = load(path).meta  # type: ignore[attr-defined]
    assert (meta.title, meta.date, meta.publisher) == ("正式な題名", "2025-08", "丸紅経済研究所")
    assert meta.extra["title_en"] == "Title" and meta.sections == ["見出し"]
    assert read_sidecar(path) is not None and read_sidecar(tmp_path / "other.md") is None


def test_broken_sidecar_is_a_load_error(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text("本文。", encoding="utf-8")
    (tmp_path / "a.txt.meta.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(LoadError):
        load(path)


def test_corpus_briefing_with_its_sidecar() -> None:
    path = Path(__file__).resolve().parents[1] / "corpus" / "briefing-russia-ukraine-2025-08.txt"
    if not path.is_file():
        pytest.skip("corpus briefing not present")
    document = load_document(path, max_bytes=MB)
    assert document.meta.title.startswith("ロシア・ウクライナ和平交渉") and document.meta.date == "2025-08"
    assert "トランプ米大統領" in "".join(b.text for b in document.blocks).replace("\n", "")
