"""What `lorag ingest` and `lorag reindex` show: a progress bar over chunks (rate, ETA) and the final summary."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any


def shown(path: str) -> str:
    """A path relative to the current directory when it is inside it, else absolute."""
    p = Path(path)
    try:
        return str(p.relative_to(Path.cwd()))
    except ValueError:
        return str(p)


class IngestBar:
    """A rich progress bar over chunks embedded, with chunks/s and the time left (on stderr, then removed)."""

    def __init__(self, label: str = "embedding") -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._label = label
        self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                  TaskProgressColumn(), TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
                                  TextColumn("ETA"), TimeRemainingColumn(), console=Console(stderr=True),
                                  transient=True)
        self._task = self._progress.add_task("reading", total=None, rate="")
        self._started = time.perf_counter()

    def __enter__(self) -> IngestBar:
        self._started = time.perf_counter()
        self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.__exit__(None, None, None)

    def update(self, event: dict[str, Any]) -> None:
        """Take one progress event of ingest_paths / reindex_store."""
        name = Path(event["path"]).name if event.get("path") else ""
        if event["stage"] == "parse" and event["total"]:
            self._progress.update(self._task, description=f"reading {name} ({event['done'] + 1}/{event['total']})")
        elif event["stage"] == "embed":
            rate = event["done"] / max(time.perf_counter() - self._started, 1e-6)
            files = f" [{event['files_done']}/{event['files_total']} files read]" if "files_total" in event else ""
            self._progress.update(self._task, description=f"{self._label} {name}{files}", completed=event["done"],
                                  total=max(event["total"], event["done"]), rate=f"{rate:.1f} chunks/s")


def print_report(report: Any) -> None:
    """The final summary table, the OCRed and skipped pages, warnings and failures."""
    from rich.console import Console
    from rich.table import Table

    table = Table("result", "", box=None)
    for label, value in report.summary_rows():
        table.add_row(label, value)
    out = Console()
    out.print(table)
    for path, pages in report.ocr_pages.items():
        out.print(f"OCR: {shown(path)} pages {page_list(pages)}", highlight=False, soft_wrap=True)
    for path, pages in report.front_matter.items():
        out.print(f"front matter left out (ingest.skip_toc): {shown(path)} pages {page_list(pages)}",
                  highlight=False, soft_wrap=True)
    err = Console(stderr=True)
    for line in [*report.notices, *report.warnings]:
        err.print(f"[yellow]warning:[/] {line}", highlight=False, soft_wrap=True)
    for path, reason in report.failed:
        err.print(f"[bold red]failed:[/] {shown(path)}: {reason}", highlight=False, soft_wrap=True)


def page_list(pages: list[int]) -> str:
    """Pages as ranges: [1, 2, 3, 7] -> "1-3, 7"."""
    runs: list[list[int]] = []
    for n in sorted(pages):
        if runs and runs[-1][1] == n - 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    return ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in runs)
