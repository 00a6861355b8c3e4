"""Helpers on the event record (an awkward record array, one entry per event)."""

from __future__ import annotations

from typing import Any

import awkward as ak
import numpy as np


def has_field(events: ak.Array, dotted: str) -> bool:
    """True if the dotted field path (``"mc.weight"``) exists in the record."""
    current: Any = events
    for part in dotted.split("."):
        if part not in ak.fields(current):
            return False
        current = current[part]
    return True


def add_collection(events: ak.Array, dotted: str, value: Any) -> ak.Array:
    """Return ``events`` with ``value`` stored at the dotted path, creating parent records
    (``"sel.elastic"`` adds ``sel`` if it is missing) and keeping existing siblings."""
    head, _, rest = dotted.partition(".")
    if not rest:
        return ak.with_field(events, value, head)
    if head in ak.fields(events):
        inner = add_collection(events[head], rest, value)
    else:
        inner = _nest(rest.split("."), value)
    return ak.with_field(events, inner, head)


def _nest(parts: list[str], value: Any) -> ak.Array:
    for part in reversed(parts):
        value = ak.zip({part: value}, depth_limit=1)
    return value


def event_weights(events: ak.Array) -> np.ndarray:
    """Per-event weights as float64: ``mc.weight`` when present, else ones."""
    if has_field(events, "mc.weight"):
        return np.asarray(ak.to_numpy(events.mc.weight), dtype=np.float64)
    return np.ones(len(events), dtype=np.float64)
