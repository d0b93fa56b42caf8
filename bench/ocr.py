"""OCR of an image-only Japanese PDF: pages one at a time (Tesseract's own threads) vs several at once.

    python bench/ocr.py [--pages 10] [--workers 1,2]

The PDF is made here: A4 pages at 200 dpi of Japanese text in IPAex Gothic (fonts-ipaexfont-gothic), no
text layer. Each row reads it with DocumentReader and ``ingest.ocr_workers`` set to that many workers; the
characters row checks the rows read the same text.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lorag.config import IngestSettings
from lorag.rag.reader import DocumentReader

FONT = Path("/usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf")
LINES = ["有給休暇は入社六か月後に十日付与されます。", "申請は二週間前までに上長へ提出してください。",
         "社員食堂は十一時三十分から十四時まで営業しています。", "経費は翌月十日までに領収書を添えて申請します。"]


def page_image(n: int) -> Any:
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("L", (1654, 2339), 255)
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(str(FONT), 40)
    for i in range(24):
        draw.text((120, 160 + i * 84), f"{n}-{i + 1} " + LINES[(n + i) % len(LINES)], fill=0, font=font)
    return image.convert("RGB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=10)
    parser.add_argument("--workers", default="1,2")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lorag-bench-ocr-") as tmp:
        pdf = Path(tmp) / "scan.pdf"
        images = [page_image(n) for n in range(1, args.pages + 1)]
        images[0].save(pdf, save_all=True, append_images=images[1:], resolution=200.0)
        print(f"{args.pages}-page image-only PDF; load average {os.getloadavg()} on {os.cpu_count()} cores\n")
        print(f"{'ocr_workers':>11} {'seconds':>8} {'pages/s':>7} {'OCR pages':>9} {'characters':>10}  load")
        for workers in (int(w) for w in args.workers.split(",")):
            t0 = time.perf_counter()
            with DocumentReader(IngestSettings(ocr_workers=workers)) as reader:
                doc = reader.read(pdf)
            seconds = time.perf_counter() - t0
            chars = sum(len(p.text) for p in doc.pages)
            print(f"{workers:11} {seconds:8.1f} {args.pages / seconds:7.2f} {len(doc.ocr_pages):9} {chars:10}  "
                  f"{os.getloadavg()[0]:.1f}", flush=True)


if __name__ == "__main__":
    main()
