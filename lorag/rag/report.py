"""What an ingest did: files added/updated/unchanged/failed, pages, OCR pages, chunks and where the time went.

Usage::

    report = ingest_paths(config, ["docs/"])
    print(report.summary_rows(), report.chunks_per_s)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

STAGES = ("parse", "tokenize", "embed", "store")


@dataclass
class IngestReport:
    """What an ingest did, file by file, plus where the time went (seconds per stage, and wall time)."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    chunks: int = 0
    chars: int = 0
    pages: int = 0
    embedded: int = 0
    ocr_pages: dict[str, list[int]] = field(default_factory=dict)
    front_matter: dict[str, list[int]] = field(default_factory=dict)  # path -> front matter pages left out
    warnings: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)  # run-wide, e.g. Tesseract missing
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys((*STAGES, "wall"), 0.0))

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def chunks_per_s(self) -> float:
        wall = self.seconds.get("wall", 0.0)
        return self.chunks / wall if wall > 0 else 0.0

    def record(self, item: Any, n_chunks: int) -> None:
        """Count a stored file (a pipeline ``FileDone`` with its document)."""
        doc, path = item.document, str(item.path)
        (self.updated if item.existed else self.added).append(path)
        self.chunks += n_chunks
        self.chars += sum(len(p.text) for p in doc.pages)
        self.pages += doc.page_count
        if doc.ocr_pages:
            self.ocr_pages[path] = list(doc.ocr_pages)
        if doc.front_matter_skipped:
            self.front_matter[path] = sorted(n for pages in doc.front_matter.values() for n in pages)
        self.warnings.extend(doc.warnings)

    def summary_rows(self) -> list[tuple[str, str]]:
        """(label, value) rows of the final summary the CLI prints."""
        wall = self.seconds.get("wall", 0.0)
        return [("added", str(len(self.added))), ("updated", str(len(self.updated))),
                ("unchanged", str(len(self.unchanged))), ("removed", str(len(self.removed))),
                ("failed", str(len(self.failed))), ("pages", str(self.pages)),
                ("OCR pages", str(sum(len(v) for v in self.ocr_pages.values()))),
                ("front matter pages skipped", str(sum(len(v) for v in self.front_matter.values()))),
                ("chunks", str(self.chunks)), ("seconds", f"{wall:.1f}"), ("chunks/s", f"{self.chunks_per_s:.1f}")]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["failed"] = [{"path": p, "reason": r} for p, r in self.failed]
        data["chunks_per_s"] = round(self.chunks_per_s, 2)
        return data
