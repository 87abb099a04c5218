"""Uploads are safe by default: zip bombs and over-long PDFs are refused before they are parsed, a failed
upload leaves the documents folder as it was, and invisible characters leave upload names.
Real server on loopback, real assistant, real files."""

from __future__ import annotations

import re
import struct
import unicodedata
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from assistant.ingest import sanitize_filename
from assistant.loaders import load_document
from assistant.types import LoadError
from tests.docmakers import make_docx, make_pptx
from tests.helpers import make_settings
from tests.test_api import LiveServer

MB = 1024 * 1024
GIB = 1024 * MB
FAILED_STATUSES = {200, 400, 413, 415, 422}
PDF_PAGE_LIMIT = 3
DOCX_FACT = "トランプ米大統領は和平を優先する方針に転換した。"


# Files ------------------------------------------------------------------------------------------------
def make_bomb(source: Path, member: str, out: Path, inflated_bytes: int = GIB) -> Path:
    """`source` (a real .docx/.pptx) with `member` padded by an XML comment to inflate to `inflated_bytes`."""
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as bomb:
        for info in original.infolist():
            data = original.read(info)
            if info.filename != member:
                bomb.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED)
                continue
            head, rest = data.split(b"?>", 1)  # after the XML declaration
            padding = inflated_bytes - len(data) - 7
            spaces = b" " * MB
            with bomb.open(member, "w", force_zip64=True) as stream:
                stream.write(head + b"?><!--")
                for _ in range(padding // MB):
                    stream.write(spaces)
                stream.write(b" " * (padding % MB) + b"-->" + rest)
    return out


def make_liar(bomb: Path, member: str, out: Path) -> Path:
    """`bomb` with its central directory declaring `member` 4 KiB long (CRC of its first 4 KiB)."""
    with zipfile.ZipFile(bomb) as archive, archive.open(member) as stream:
        head = stream.read(4096)
    data = bytearray(bomb.read_bytes())
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        name_len = struct.unpack_from("<H", data, at + 28)[0]
        if data[at + 46 : at + 46 + name_len] == member.encode():
            struct.pack_into("<L", data, at + 16, zlib.crc32(head))
            struct.pack_into("<L", data, at + 24, len(head))
        at = data.find(b"PK\x01\x02", at + 4)
    out.write_bytes(bytes(data))
    return out


def make_pdf(out: Path, pages: int) -> Path:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument.new()
    for _ in range(pages):
        pdf.new_page(595, 842)
    pdf.save(str(out))
    pdf.close()
    return out


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("hostile-files")
    docx = make_docx(folder / "plain.docx")
    pptx = make_pptx(folder / "plain.pptx")
    bomb_docx = make_bomb(docx, "word/document.xml", folder / "bomb.docx")
    bomb_pptx = make_bomb(pptx, "ppt/slides/slide1.xml", folder / "bomb.pptx")
    return {
        "docx": docx,
        "pptx": pptx,
        "bomb.docx": bomb_docx,
        "bomb.pptx": bomb_pptx,
        "liar.docx": make_liar(bomb_docx, "word/document.xml", folder / "liar.docx"),
    }


# Memory ---------------------------------------------------------------------------------------------
def _status_kb(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {key} in /proc/self/status")


def peak_rise_mb(action: Any) -> float:
    """How far the process's peak RSS rose above its RSS while running `action` (MB)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        key = "VmHWM"
    except OSError:
        key = "VmRSS"
    before = _status_kb("VmRSS")
    action()
    return (_status_kb(key) - before) / 1024


def refusal(path: Path, max_bytes: int = 20 * MB) -> LoadError:
    with pytest.raises(LoadError) as info:
        load_document(path, max_bytes=max_bytes)
    return info.value


# Loaders, directly ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["bomb.docx", "bomb.pptx"])
def test_zip_bomb_is_refused_from_its_central_directory(files: dict[str, Path], name: str) -> None:
    errors: list[LoadError] = []
    rise = peak_rise_mb(lambda: errors.append(refusal(files[name])))
    assert files[name].stat().st_size < 2 * MB
    assert re.search(r"inflate to 1,02\d MB", errors[0].reason) and "zip bomb" in errors[0].reason
    assert "ZIP爆弾" in errors[0].reason_ja
    assert rise < 100, f"peak RSS rose {rise:.0f} MB while refusing a zip bomb"


def test_member_inflating_past_its_declared_size_is_refused(files: dict[str, Path]) -> None:
    # zipfile's read() inflates up to 1 GiB before cutting to the declared size: the check must not.
    with zipfile.ZipFile(files["liar.docx"]) as archive:
        assert archive.getinfo("word/document.xml").file_size == 4096
    errors: list[LoadError] = []
    rise = peak_rise_mb(lambda: errors.append(refusal(files["liar.docx"])))
    assert "declares" in errors[0].reason and "宣言" in errors[0].reason_ja
    assert rise < 100, f"peak RSS rose {rise:.0f} MB while refusing a lying member"


def test_archive_with_too_many_members_is_refused(tmp_path: Path, files: dict[str, Path]) -> None:
    crowded = tmp_path / "crowded.docx"
    with zipfile.ZipFile(files["docx"]) as original, zipfile.ZipFile(crowded, "w") as out:
        for info in original.infolist():
            out.writestr(info, original.read(info))
        for i in range(5001):
            out.writestr(f"word/extra/part{i}.xml", b"")
    error = refusal(crowded)
    assert "parts" in error.reason and "5,000" in error.reason and "5,000" in error.reason_ja


def test_member_compressed_absurdly_is_refused(tmp_path: Path, files: dict[str, Path]) -> None:
    # 3 MB of spaces stays under the declared total (10 x 1 MB) but is compressed about 1000 to 1.
    dense = make_bomb(files["docx"], "word/document.xml", tmp_path / "dense.docx", inflated_bytes=3 * MB)
    error = refusal(dense, max_bytes=MB)
    assert "compressed" in error.reason and "200 to 1" in error.reason and "圧縮率" in error.reason_ja


def test_ordinary_office_files_still_load(files: dict[str, Path]) -> None:
    assert DOCX_FACT in "".join(b.text for b in load_document(files["docx"], max_bytes=MB).blocks)
    assert "和平交渉の展望" in "".join(b.text for b in load_document(files["pptx"], max_bytes=MB).blocks)


def test_pdf_over_the_default_page_limit_is_refused(tmp_path: Path) -> None:
    assert make_settings(tmp_path).max_pdf_pages == 2000
    error = refusal(make_pdf(tmp_path / "long.pdf", 2001))
    assert "2,001 pages" in error.reason and "ASSISTANT_MAX_PDF_PAGES" in error.reason
    assert "2,000ページ" in error.reason_ja


def test_pdf_page_limit_is_read_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSISTANT_MAX_PDF_PAGES", "7")
    assert make_settings(tmp_path).max_pdf_pages == 7


@pytest.mark.parametrize("invisible", ["\u202e", "\u202d", "\u2066", "\u200b", "\u200d", "\ufeff", "\u00ad",
                                       "\u2028", "\x85", "\U000e0041"])
def test_invisible_characters_leave_file_names(invisible: str) -> None:
    assert sanitize_filename(f"{invisible}報告{invisible}書{invisible}.pdf") == "報告書.pdf"


# Through the server ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    from assistant.core import make_assistant

    settings = make_settings(tmp_path_factory.mktemp("uploads-data"), rate_limit_per_min=0,
                             max_pdf_pages=PDF_PAGE_LIMIT)
    with LiveServer(settings, make_assistant(settings)) as live:
        yield live


@pytest.fixture()
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=120) as c:
        yield c


def upload(client: httpx.Client, name: str, data: bytes) -> httpx.Response:
    return client.post("/api/documents", files=[("files", (name, data, "application/octet-stream"))])


def failures(response: httpx.Response) -> list[dict[str, str]]:
    """The failed entries of an upload's report, whether it came back as 200 or as an error (4xx)."""
    assert response.status_code in FAILED_STATUSES, response.text
    assert "Traceback" not in response.text
    body = response.json()
    report = body.get("error", body)  # a 4xx carries the report in its error
    report = report.get("report", report)
    failed: list[dict[str, str]] = report.get("failed") or []
    return failed


def stored_names(server: LiveServer) -> set[str]:
    folder = server.assistant.settings.documents_dir
    return {p.name for p in folder.iterdir()} if folder.exists() else set()


@pytest.mark.parametrize("name", ["bomb.docx", "bomb.pptx"])
def test_zip_bomb_upload_is_refused_and_leaves_no_file(server: LiveServer, client: httpx.Client,
                                                       files: dict[str, Path], name: str) -> None:
    response = upload(client, f"report-{name}", files[name].read_bytes())
    [failure] = failures(response)
    assert "zip bomb" in failure["reason"] and "ZIP爆弾" in failure["reason_ja"]
    assert not any(n.startswith(f"report-{name}") or f"report-{name}" in n for n in stored_names(server))
    assert all(d["doc_id"] != f"uploads/report-{name}" for d in client.get("/api/documents").json())


def test_pdf_over_the_page_limit_is_refused_and_leaves_no_file(server: LiveServer, client: httpx.Client,
                                                               tmp_path: Path) -> None:
    pdf = make_pdf(tmp_path / "long.pdf", PDF_PAGE_LIMIT + 1)
    [failure] = failures(upload(client, "long.pdf", pdf.read_bytes()))
    assert f"{PDF_PAGE_LIMIT + 1:,} pages" in failure["reason"] and "ASSISTANT_MAX_PDF_PAGES" in failure["reason_ja"]
    assert not any("long.pdf" in n for n in stored_names(server))


def test_replaced_upload_that_fails_keeps_the_old_file_and_answers(server: LiveServer, client: httpx.Client,
                                                                    files: dict[str, Path]) -> None:
    original = files["docx"].read_bytes()
    added = upload(client, "brief.docx", original)
    assert added.status_code == 200 and added.json()["added"] == ["uploads/brief.docx"], added.text
    question = {"question": "トランプ米大統領はどのような方針に転換しましたか？", "doc_ids": ["uploads/brief.docx"]}
    before = client.post("/api/ask", json=question).json()
    assert not before["refused"] and before["citations"][0]["doc_id"] == "uploads/brief.docx"

    [failure] = failures(upload(client, "brief.docx", files["bomb.docx"].read_bytes()))
    assert "zip bomb" in failure["reason"]
    stored = server.assistant.settings.documents_dir / "brief.docx"
    assert stored.read_bytes() == original
    assert stored_names(server) & {".brief.docx.part"} == set()
    after = client.post("/api/ask", json=question).json()
    assert not after["refused"] and after["citations"][0]["doc_id"] == "uploads/brief.docx"
    assert after["answer"] == before["answer"]


def test_bidi_override_is_stripped_from_the_stored_name_and_id(server: LiveServer, client: httpx.Client) -> None:
    name = "invoice\u202etxt.md"  # shown as "invoicedm.txt"
    response = upload(client, name, "# 請求書\n\n請求金額は十二万円である。\n".encode())
    assert response.status_code == 200, response.text
    [doc_id] = response.json()["added"]
    assert doc_id == "uploads/invoicetxt.md"
    assert not any(unicodedata.category(ch) == "Cf" for n in stored_names(server) for ch in n)
    assert "invoicetxt.md" in stored_names(server)
