"""Real documents of every supported format, written by the tests (Japanese PDF through fpdf2 + IPAex)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

JA_TEXT = "有給休暇は入社6か月後に10日付与されます。申請は2週間前までに上長へ提出してください。"
JA_TEXT_2 = "社員食堂は11時30分から14時まで営業しています。メニューは毎週月曜日に更新されます。"


def ipaex_font() -> Path:
    """The IPAex Gothic font file (found with fc-list); skip when it is not installed."""
    try:
        out = subprocess.run(["fc-list", ":lang=ja", "file"], capture_output=True, text=True, check=False).stdout
    except FileNotFoundError:
        out = ""
    files = [line.split(":")[0].strip() for line in out.splitlines() if "ipaex" in line.lower()]
    default = Path("/usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf")
    candidates = [Path(f) for f in files] + [default]
    for path in candidates:
        if path.is_file():
            return path
    pytest.skip("IPAex Gothic font not installed (apt-get install fonts-ipaexfont-gothic)")


def make_pdf(path: Path, pages: list[str]) -> Path:
    """A real PDF with one Japanese text per page."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_font("ipaexg", fname=str(ipaex_font()))
    pdf.set_font("ipaexg", size=12)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    pdf.output(str(path))
    return path


def make_encrypted_pdf(path: Path) -> Path:
    """A PDF protected by a user password."""
    from pypdf import PdfReader, PdfWriter

    plain = make_pdf(path.with_name("plain-" + path.name), [JA_TEXT])
    writer = PdfWriter()
    for page in PdfReader(str(plain)).pages:
        writer.add_page(page)
    writer.encrypt(user_password="secret", owner_password="owner")
    with path.open("wb") as fh:
        writer.write(fh)
    plain.unlink()
    return path


def make_docx(path: Path, paragraphs: list[str], table: list[list[str]] | None = None) -> Path:
    """A real Word document."""
    import docx

    document = docx.Document()
    for text in paragraphs:
        document.add_paragraph(text)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, cell in enumerate(row):
                grid.cell(r, c).text = cell
    document.save(str(path))
    return path


def make_html(path: Path, body: str) -> Path:
    path.write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>案内</title>"
        "<style>p { color: red; }</style><script>var secret = '見えない';</script></head>"
        f"<body><h1>福利厚生</h1><p>{body}</p><ul><li>項目A</li><li>項目B</li></ul></body></html>",
        encoding="utf-8")
    return path


def make_corpus(folder: Path) -> Path:
    """A small mixed-format Japanese corpus (txt, md, html, pdf, docx, Shift_JIS txt)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "休暇.txt").write_text(JA_TEXT + "\n", encoding="utf-8")
    (folder / "食堂.md").write_text("# 社員食堂\n\n" + JA_TEXT_2 + "\n", encoding="utf-8")
    make_html(folder / "福利厚生.html", "社員は年に一度、人間ドックを会社負担で受診できます。")
    make_pdf(folder / "出張.pdf", ["出張の申請は出発の5営業日前までに行ってください。",
                                   "日当は国内出張で1日2,000円です。"])
    make_docx(folder / "経費.docx", ["経費は支出した月の翌月10日までに申請してください。"])
    (folder / "駐車場.txt").write_bytes("駐車場の利用には総務部の許可が必要です。\n".encode("shift_jis"))
    return folder
