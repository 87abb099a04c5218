"""PDF loading over real files: a Chromium-printed Japanese page, a scan, a corrupt and an encrypted PDF."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from assistant.loaders import load_document
from assistant.loaders.ocr import join_cjk, ocr_unavailable
from assistant.types import LoadedDocument, LoadError
from tests.docmakers import (
    BRIEFING_HTML,
    LONG_SENTENCE,
    SECOND_PARAGRAPH,
    chromium_binary,
    cjk_font_file,
    make_chromium_pdf,
    make_corrupt_pdf,
    make_encrypted_pdf,
    make_scanned_pdf,
)

MB = 1024 * 1024
SCANNED_LINES = ["和平交渉の現状と展望", "ロシアは時間稼ぎに成功した。"]


@pytest.fixture(scope="module")
def chromium_pdf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if chromium_binary() is None:
        pytest.skip("needs Debian's chromium (apt-get install chromium fonts-noto-cjk)")
    if cjk_font_file() is None:
        pytest.skip("needs fonts-noto-cjk for a Japanese PDF")
    return make_chromium_pdf(BRIEFING_HTML, tmp_path_factory.mktemp("pdf") / "briefing.pdf")


@pytest.fixture(scope="module")
def chromium_doc(chromium_pdf: Path) -> LoadedDocument:
    return load_document(chromium_pdf, max_bytes=20 * MB)


def test_chromium_pdf_reads_true_kanji_not_radicals(chromium_doc: LoadedDocument) -> None:
    text = "\n".join(b.text for b in chromium_doc.blocks)
    assert "米大統領" in text and "⽶" not in text and "⼤" not in text
    assert not any(0x2F00 <= ord(ch) <= 0x2FDF for ch in text)


def test_chromium_pdf_rejoins_wrapped_lines(chromium_doc: LoadedDocument) -> None:
    texts = [b.text for b in chromium_doc.blocks]
    assert LONG_SENTENCE in texts, texts  # one block, unbroken, though it wraps over several lines
    assert SECOND_PARAGRAPH in texts
    assert "Western officials said the talks would continue next week in Geneva." in texts


def test_chromium_pdf_structure_and_metadata(chromium_doc: LoadedDocument) -> None:
    blocks = [(b.kind, b.text, b.section, b.page) for b in chromium_doc.blocks]
    assert ("heading", "米ロ首脳会談後の現状と展望", "米ロ首脳会談後の現状と展望", 1) in blocks
    assert ("heading", "展望", "展望", 1) in blocks
    assert ("table_row", "米国 | トランプ大統領 | 和平優先", "展望", 1) in blocks
    assert ("paragraph", LONG_SENTENCE, "現状", 1) in blocks
    assert chromium_doc.meta.title == "米ロ首脳会談後の現状と展望"
    assert len(chromium_doc.meta.date) == 10 and chromium_doc.meta.language == "ja"


def test_corrupt_pdf_is_a_clear_load_error(tmp_path: Path) -> None:
    with pytest.raises(LoadError) as info:
        load_document(make_corrupt_pdf(tmp_path / "cut.pdf"), max_bytes=MB)
    assert info.value.reason.startswith("corrupt or unreadable PDF")
    assert info.value.reason_ja.startswith("PDFファイルが壊れているか読み取れません")


def test_encrypted_pdf_asks_for_a_password(tmp_path: Path, chromium_pdf: Path) -> None:
    if shutil.which("qpdf") is None:
        pytest.skip("needs qpdf (apt-get install qpdf) to make an encrypted PDF")
    locked = make_encrypted_pdf(chromium_pdf, tmp_path / "locked.pdf")
    with pytest.raises(LoadError) as info:
        load_document(locked, max_bytes=20 * MB)
    assert "encrypted" in info.value.reason and "暗号化" in info.value.reason_ja


@pytest.fixture
def scanned_pdf(tmp_path: Path) -> Path:
    if cjk_font_file() is None:
        pytest.skip("needs fonts-noto-cjk to draw Japanese text for a scan")
    return make_scanned_pdf(SCANNED_LINES, tmp_path / "scan.pdf")


def test_scanned_pdf_is_read_by_ocr(scanned_pdf: Path) -> None:
    reason = ocr_unavailable("jpn+eng")
    if reason is not None:
        pytest.skip(f"OCR unavailable: {reason} (apt-get install tesseract-ocr tesseract-ocr-jpn)")
    document = load_document(scanned_pdf, max_bytes=MB)
    text = "".join(b.text for b in document.blocks).replace("\n", "")
    assert "時間稼ぎ" in text and "和平交渉" in text, text
    assert " " not in text.strip()  # Tesseract's spaces between Japanese characters are gone
    assert all(b.page == 1 for b in document.blocks)
    assert any("OCR used" in w for w in document.warnings)


def test_scanned_pdf_without_ocr_is_refused(scanned_pdf: Path) -> None:
    with pytest.raises(LoadError) as info:
        load_document(scanned_pdf, max_bytes=MB, ocr=False)
    assert info.value.reason.startswith("no text layer (scanned PDF)") and "OCR" in info.value.reason_ja


def test_scanned_pdf_without_tesseract_is_refused(scanned_pdf: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(LoadError) as info:
        load_document(scanned_pdf, max_bytes=MB)
    assert "no text layer (scanned PDF) and OCR is not installed" in info.value.reason
    assert "インストールされていません" in info.value.reason_ja


def test_ocr_spaces_between_japanese_characters_are_removed() -> None:
    assert join_cjk("ロ シ ア は 時 間 稼 ぎ 。 NATO 軍 の 2 0 2 5 年") == "ロシアは時間稼ぎ。NATO 軍の2 0 2 5年"
