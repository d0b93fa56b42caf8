"""PDFs written by hand, byte by byte: exact content streams and page boxes that no PDF library would emit."""

from __future__ import annotations

import zlib
from pathlib import Path


def pages_pdf(path: Path, pages: list[tuple[bytes, bytes]]) -> Path:
    """A PDF written by hand: one (content stream, MediaBox) per page, Helvetica as /F1."""
    n = len(pages)
    font = 3 + 2 * n
    kids = b" ".join(b"%d 0 R" % (3 + 2 * i) for i in range(n))
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % n]
    for i, (content, mediabox) in enumerate(pages):
        stream = zlib.compress(content)
        objects.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [" + mediabox + b"] /Contents %d 0 R " % (4 + 2 * i)
                       + b"/Resources << /Font << /F1 %d 0 R >> >> >>" % font)
        objects.append(b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    path.write_bytes(bytes(out))
    return path
