"""The count of hypothesis examples run per RPC family (reported by this folder's conftest)."""

from __future__ import annotations

from collections import Counter

EXAMPLES: Counter[str] = Counter()


def ran(family: str) -> None:
    """Count one example of ``family`` (called at the start of each example's body)."""
    EXAMPLES[family] += 1
