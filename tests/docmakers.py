"""Builders of real test documents, made at test time: Chromium PDFs, scans, Word, PowerPoint, legacy text."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

# A sentence long enough to wrap over three lines at the page width below; it must come back whole.
LONG_SENTENCE = (
    "トランプ米大統領は15日の米・アラスカでのロシアのプーチン大統領との会談で、停戦よりも和平を優先する"
    "方針に転換し、18日には米ロ首脳会談で言及されたとされる和平条件をウクライナのゼレンスキー大統領や"
    "欧州首脳に説明したが、領土について氏は現在の前線を交渉の開始地点とみなすとしており依然として"
    "意見の相違は大きい。"
)
SECOND_PARAGRAPH = "一方、トランプ氏は対ロ経済制裁発動の2～3週間の延期を表明した。①髙橋氏の見解も示された。"
LEGACY_TEXT = "現状：和平優先\n\n①トランプ米大統領は2～3週間の延期を表明。髙橋氏は慎重な見方を示した。\n"

BRIEFING_HTML = f"""<!doctype html>
<html lang="ja"><head><meta charset="utf-8"><title>米ロ首脳会談後の現状と展望</title>
<style>
body {{ font-family: "Noto Sans CJK JP", sans-serif; font-size: 11pt; width: 150mm; }}
h1 {{ font-size: 18pt; }} h2 {{ font-size: 14pt; }}
td, th {{ border: 1px solid #000; padding: 2px 8px; }} table {{ border-collapse: collapse; }}
</style></head>
<body>
<h1>米ロ首脳会談後の現状と展望</h1>
<h2>現状</h2>
<p>{LONG_SENTENCE}</p>
<p>{SECOND_PARAGRAPH}</p>
<h2>展望</h2>
<table>
<tr><th>国</th><th>首脳</th><th>立場</th></tr>
<tr><td>米国</td><td>トランプ大統領</td><td>和平優先</td></tr>
<tr><td>ロシア</td><td>プーチン大統領</td><td>時間稼ぎ</td></tr>
</table>
<p>Western officials said the talks would continue next week in Geneva.</p>
</body></html>
"""


def chromium_binary() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def cjk_font_file() -> str | None:
    for candidate in (
        "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
        "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
    ):
        if Path(candidate).is_file():
            return candidate
    return None


def make_chromium_pdf(html: str, out: Path) -> Path:
    """Print `html` to `out` with headless Chromium, as a user's browser would."""
    binary = chromium_binary()
    if binary is None:
        raise RuntimeError("chromium is not installed")
    page = out.with_suffix(".html")
    page.write_text(html, encoding="utf-8")
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                f"--user-data-dir={profile}", "--no-pdf-header-footer", f"--print-to-pdf={out}",
                page.as_uri(),
            ],
            capture_output=True, timeout=120, check=True,
        )
    page.unlink()
    return out


def make_scanned_pdf(lines: list[str], out: Path) -> Path:
    """An image-only PDF (no text layer) of `lines` set in Noto Sans CJK, like a scanner's output."""
    from PIL import Image, ImageDraw, ImageFont

    font_file = cjk_font_file()
    if font_file is None:
        raise RuntimeError("fonts-noto-cjk is not installed")
    dpi = 200
    font = ImageFont.truetype(font_file, size=44, index=0)  # index 0: the JP face of the collection
    image = Image.new("L", (1654, 160 + 90 * len(lines)), 255)
    draw = ImageDraw.Draw(image)
    for row, line in enumerate(lines):
        draw.text((120, 100 + 90 * row), line, font=font, fill=0)
    image.save(out, "PDF", resolution=dpi)
    return out


def make_corrupt_pdf(out: Path) -> Path:
    """A PDF cut off after its first bytes, as an interrupted download leaves it."""
    from PIL import Image

    whole = out.with_name("whole-" + out.name)
    Image.new("L", (200, 200), 255).save(whole, "PDF", resolution=72)
    out.write_bytes(whole.read_bytes()[:60])
    whole.unlink()
    return out


def make_encrypted_pdf(source: Path, out: Path, password: str = "secret") -> Path:
    """`source` encrypted with a user password by qpdf."""
    binary = shutil.which("qpdf")
    if binary is None:
        raise RuntimeError("qpdf is not installed")
    subprocess.run(
        [binary, "--encrypt", password, password, "256", "--", str(source), str(out)],
        capture_output=True, timeout=60, check=True,
    )
    return out


def make_docx(out: Path) -> Path:
    """A Word file with a title, headings, a list, a table and Japanese text."""
    import docx

    document = docx.Document()
    document.core_properties.title = "ウクライナ情勢の報告"
    document.add_heading("現状", level=1)
    document.add_paragraph("トランプ米大統領は和平を優先する方針に転換した。")
    document.add_paragraph("停戦交渉", style="List Bullet")
    document.add_paragraph("安全保障の枠組み", style="List Number")
    document.add_heading("展望", level=2)
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "国", "立場"
    table.cell(1, 0).text, table.cell(1, 1).text = "ロシア", "時間稼ぎ"
    document.add_paragraph("交渉は難航が予想される。")
    document.save(str(out))
    return out


def make_pptx(out: Path) -> Path:
    """A two-slide deck: a title slide, then a bulleted slide with a table."""
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    first = deck.slides.add_slide(deck.slide_layouts[0])
    first.shapes.title.text = "和平交渉の展望"
    first.placeholders[1].text = "丸紅経済研究所"
    second = deck.slides.add_slide(deck.slide_layouts[1])
    second.shapes.title.text = "現状"
    body = second.placeholders[1].text_frame
    body.text = "ロシアは時間稼ぎに成功"
    body.add_paragraph().text = "欧州は安全保障の枠組みを検討"
    rows = second.shapes.add_table(2, 2, Inches(1), Inches(5), Inches(6), Inches(1)).table
    rows.cell(0, 0).text, rows.cell(0, 1).text = "国", "首脳"
    rows.cell(1, 0).text, rows.cell(1, 1).text = "米国", "トランプ大統領"
    deck.save(str(out))
    return out


def write_encoded(out: Path, text: str, encoding: str) -> Path:
    """`text` written in a legacy encoding; 'EUC-JP-MS' goes through the system iconv, as on Linux."""
    if encoding.upper() == "EUC-JP-MS":
        done = subprocess.run(
            ["iconv", "-f", "UTF-8", "-t", "EUC-JP-MS"], input=text.encode("utf-8"),
            capture_output=True, timeout=30, check=True,
        )
        out.write_bytes(done.stdout)
    else:
        out.write_bytes(text.encode(encoding))
    return out


def make_oversize(out: Path, max_bytes: int) -> Path:
    """A sparse file one byte over `max_bytes` (nothing written, so it is instant)."""
    with out.open("wb") as handle:
        handle.truncate(max_bytes + 1)
    return out
