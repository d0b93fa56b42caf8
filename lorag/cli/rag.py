"""Commands: rag."""

from __future__ import annotations
