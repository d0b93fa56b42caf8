"""Regenerate the sample corpus in examples/corpus/ from the text sources in examples/corpus_src/.

The sources are light Markdown (``# `` / ``## `` headings, ``- `` list items, paragraphs).
Each document is written in one format so that ingestion sees every loader: Markdown, UTF-8
text, Shift_JIS text, HTML, PDF (fpdf2 + IPAex Gothic) and DOCX (python-docx).

Run: ``python examples/make_corpus.py``.
"""

from __future__ import annotations

import html
import subprocess
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE_DIR = HERE / "corpus_src"
CORPUS_DIR = HERE / "corpus"

# Document title -> output format. One Shift_JIS file exercises encoding detection.
FORMATS: dict[str, str] = {
    "就業規則": "md",
    "経費精算規程": "pdf",
    "ITヘルプデスクFAQ": "html",
    "オフィスガイド": "txt",
    "休暇制度": "docx",
    "セキュリティポリシー": "sjis",
    "出張規程": "pdf",
    "新入社員オンボーディング": "docx",
    "福利厚生": "html",
    "会議室予約": "md",
}
FONT_CANDIDATES = (
    Path("/usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf"),
    Path("/usr/share/fonts/truetype/fonts-japanese-gothic.ttf"),
)


@dataclass(frozen=True)
class Block:
    """One line-level element of a source document."""

    kind: str  # "h1", "h2", "li" or "p"
    text: str


def parse_source(text: str) -> list[Block]:
    """Split light Markdown into heading, list-item and paragraph blocks."""
    blocks: list[Block] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("## "):
            blocks.append(Block("h2", line[3:]))
        elif line.startswith("# "):
            blocks.append(Block("h1", line[2:]))
        elif line.startswith("- "):
            blocks.append(Block("li", line[2:]))
        else:
            blocks.append(Block("p", line))
    return blocks


def plain_text(blocks: list[Block]) -> str:
    """Render blocks as plain text, the way an office text file would look."""
    lines: list[str] = []
    for block in blocks:
        if block.kind == "h1":
            lines += [block.text, ""]
        elif block.kind == "h2":
            lines += ["", f"■{block.text}"]
        elif block.kind == "li":
            lines.append(f"・{block.text}")
        else:
            lines.append(block.text)
    return "\n".join(lines).strip() + "\n"


def to_html(title: str, blocks: list[Block]) -> str:
    """Render blocks as a small standalone HTML page."""
    body: list[str] = []
    in_list = False
    for block in blocks:
        if block.kind == "li" and not in_list:
            body.append("<ul>")
            in_list = True
        if block.kind != "li" and in_list:
            body.append("</ul>")
            in_list = False
        tag = {"h1": "h1", "h2": "h2", "li": "li", "p": "p"}[block.kind]
        body.append(f"<{tag}>{html.escape(block.text)}</{tag}>")
    if in_list:
        body.append("</ul>")
    return (
        '<!DOCTYPE html>\n<html lang="ja">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n"
        "<style>body{font-family:sans-serif;max-width:40em;margin:2em auto}</style>\n"
        "</head>\n<body>\n" + "\n".join(body) + "\n</body>\n</html>\n"
    )


def find_japanese_font() -> Path:
    """Return the IPAex Gothic font file (package fonts-ipaexfont-gothic)."""
    for candidate in FONT_CANDIDATES:
        if candidate.exists():
            return candidate
    listing = subprocess.run(["fc-list"], capture_output=True, text=True, check=False).stdout
    for line in listing.splitlines():
        if "ipaex" in line.lower():
            return Path(line.split(":", 1)[0])
    raise SystemExit("IPAex Gothic not found: apt-get install fonts-ipaexfont-gothic")


def write_pdf(title: str, blocks: list[Block], target: Path) -> None:
    """Write blocks as an A4 PDF with embedded IPAex Gothic."""
    import datetime

    from fpdf import FPDF

    pdf = FPDF(format="A4")
    # A fixed date keeps regenerated files byte-identical, so git sees no change.
    pdf.set_creation_date(datetime.datetime(2026, 4, 1, tzinfo=datetime.UTC))
    pdf.set_title(title)
    pdf.set_author("株式会社さくらテック")
    pdf.add_font("ipaexg", fname=str(find_japanese_font()))
    pdf.add_page()
    sizes = {"h1": 16, "h2": 13, "li": 10.5, "p": 10.5}
    for block in blocks:
        pdf.set_font("ipaexg", size=sizes[block.kind])
        text = f"・{block.text}" if block.kind == "li" else block.text
        if block.kind == "h2":
            pdf.ln(2)
        pdf.multi_cell(0, sizes[block.kind] * 0.6, text, new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(target))


def write_docx(title: str, blocks: list[Block], target: Path) -> None:
    """Write blocks as a Word document with real heading and list styles."""
    import datetime

    from docx import Document

    document = Document()
    document.core_properties.title = title
    document.core_properties.author = "株式会社さくらテック"
    fixed = datetime.datetime(2026, 4, 1, tzinfo=datetime.UTC)
    document.core_properties.created = fixed
    document.core_properties.modified = fixed
    for block in blocks:
        if block.kind == "h1":
            document.add_heading(block.text, level=1)
        elif block.kind == "h2":
            document.add_heading(block.text, level=2)
        elif block.kind == "li":
            document.add_paragraph(block.text, style="List Bullet")
        else:
            document.add_paragraph(block.text)
    document.save(str(target))
    _freeze_zip_times(target)


def _freeze_zip_times(path: Path) -> None:
    """Rewrite a zip with fixed member timestamps so a regenerated DOCX is byte-identical."""
    import io
    import zipfile

    with zipfile.ZipFile(path) as source:
        members = [(info, source.read(info)) for info in source.infolist()]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as target:
        for info, data in members:
            fixed = zipfile.ZipInfo(info.filename, date_time=(2026, 4, 1, 0, 0, 0))
            fixed.compress_type = zipfile.ZIP_DEFLATED
            target.writestr(fixed, data)
    path.write_bytes(buffer.getvalue())


def build_document(title: str, fmt: str) -> Path:
    """Write one corpus document from its source and return the output path."""
    source = (SOURCE_DIR / f"{title}.md").read_text(encoding="utf-8")
    blocks = parse_source(source)
    ext = {"sjis": "txt"}.get(fmt, fmt)
    target = CORPUS_DIR / f"{title}.{ext}"
    if fmt == "md":
        target.write_text(source, encoding="utf-8")
    elif fmt == "txt":
        target.write_text(plain_text(blocks), encoding="utf-8")
    elif fmt == "sjis":
        target.write_bytes(plain_text(blocks).encode("shift_jis"))
    elif fmt == "html":
        target.write_text(to_html(title, blocks), encoding="utf-8")
    elif fmt == "pdf":
        write_pdf(title, blocks, target)
    elif fmt == "docx":
        write_docx(title, blocks, target)
    else:
        raise ValueError(f"unknown format {fmt!r}")
    return target


def main() -> None:
    """Regenerate every corpus document."""
    CORPUS_DIR.mkdir(exist_ok=True)
    for title, fmt in FORMATS.items():
        path = build_document(title, fmt)
        print(f"{path.relative_to(HERE.parent)}  {path.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
