"""`lorag serve` logging: access lines at INFO on their own handler, -v turns on lorag's debug logs."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from lorag.cli.serve import _logging


@pytest.fixture
def restored() -> Iterator[None]:
    access, lorag_log, root = logging.getLogger("lorag.access"), logging.getLogger("lorag"), logging.getLogger()
    saved = (access.handlers[:], access.propagate, access.level, lorag_log.level, root.level)
    yield
    access.handlers[:], access.propagate = saved[0], saved[1]
    access.setLevel(saved[2])
    lorag_log.setLevel(saved[3])
    root.setLevel(saved[4])


def test_access_lines_are_on_by_default_and_debug_only_with_verbose(restored: None) -> None:
    _logging(verbose=False, access_log=True)
    access = logging.getLogger("lorag.access")
    assert access.isEnabledFor(logging.INFO) and not access.propagate and len(access.handlers) == 1
    assert not logging.getLogger("lorag.rag.answer").isEnabledFor(logging.DEBUG)
    _logging(verbose=True, access_log=False)
    assert not access.isEnabledFor(logging.INFO)
    assert logging.getLogger("lorag.rag.answer").isEnabledFor(logging.DEBUG)
