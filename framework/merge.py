"""Deterministic merging of per-chunk results.

Results merge in chunk-index order along a fixed binary tree over the ordered chunks, so the
floating-point sums never depend on which worker finished first or how many workers ran. The tree
is built bottom-up with a stack (like a binary counter), so merging n chunks read in order holds
only O(log n) partial results in memory.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def merge_in_order(items: Iterable[Any]) -> Any:
    """Merge objects with ``+`` along a fixed binary tree over their order; None if empty."""
    stack: list[tuple[int, Any]] = []  # (level, partial sum)
    for item in items:
        level, value = 0, item
        while stack and stack[-1][0] == level:
            _, left = stack.pop()
            value = left + value
            level += 1
        stack.append((level, value))
    if not stack:
        return None
    _, total = stack.pop()
    while stack:
        _, left = stack.pop()
        total = left + total
    return total


def merge_nested(items: Iterable[dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Merge ``{instance: {name: result}}`` dicts (already in chunk order) key by key."""
    merged = merge_in_order(_Nested(d) for d in items)
    return merged.data if merged is not None else {}


class _Nested:
    """Adds two instance -> name -> result dicts key by key (a key missing on one side is kept)."""

    def __init__(self, data: dict[str, dict[str, Any]]) -> None:
        self.data = data

    def __add__(self, other: _Nested) -> _Nested:
        out: dict[str, dict[str, Any]] = {}
        for inst in list(self.data) + [k for k in other.data if k not in self.data]:
            a, b = self.data.get(inst, {}), other.data.get(inst, {})
            merged = {}
            for name in list(a) + [k for k in b if k not in a]:
                if name in a and name in b:
                    merged[name] = a[name] + b[name]
                else:
                    merged[name] = a[name] if name in a else b[name]
            out[inst] = merged
        return _Nested(out)
