"""Every test folder is collected: pytest's norecursedirs patterns match none of them."""

from __future__ import annotations

import fnmatch
from pathlib import Path

import pytest


def test_no_test_folder_is_skipped_by_norecursedirs(pytestconfig: pytest.Config) -> None:
    patterns = pytestconfig.getini("norecursedirs")
    root = Path(__file__).resolve().parent
    folders = [p for p in root.rglob("*") if p.is_dir() and p.name != "__pycache__" and any(p.glob("test_*.py"))]
    assert folders, "no test folders found"
    skipped = [str(f.relative_to(root)) for f in folders if any(fnmatch.fnmatch(f.name, pat) for pat in patterns)]
    assert skipped == []
