"""The converter's output as progress: messages without logging prefixes, tqdm percentages."""

from __future__ import annotations

import pytest

from lorag.build.convert import _message, _percent


@pytest.mark.parametrize(("line", "shown"), [
    ("INFO:hf-to-gguf:Loading model: merged", "Loading model: merged"),
    ("INFO:lora-to-gguf:Exporting model...", "Exporting model..."),
    ("DEBUG:gguf.gguf_writer:tensor blk.0 q", "tensor blk.0 q"),
    ("WARNING:hf-to-gguf:unknown key", "WARNING:hf-to-gguf:unknown key"),  # warnings stay as they are
    ("INFO:", "INFO:"),
    ("Writing:  96%|█████▌| 77.6M/80.8M", "Writing:  96%|█████▌| 77.6M/80.8M"),
    ("INFO: a sentence: not a logger", "INFO: a sentence: not a logger"),
])
def test_message_drops_the_logging_prefix(line: str, shown: str) -> None:
    assert _message(line) == shown


def test_percent_reads_tqdm_and_keeps_the_last_otherwise() -> None:
    assert _percent("Writing:  96%|█████▌| 77.6M/80.8M", 10.0) == 96.0
    assert _percent("INFO:hf-to-gguf:Loading model", 42.0) == 42.0
