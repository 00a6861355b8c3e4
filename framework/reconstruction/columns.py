"""Awkward <-> flat numpy helpers shared by the reconstruction processors."""

from __future__ import annotations

from typing import Any

import awkward as ak
import numpy as np
from muone.errors import InputError


def flat_and_offsets(array: Any, dtype: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """The flat content (contiguous numpy, cast to ``dtype`` when given) and the int64 offsets
    (``n_events + 1``, starting at 0) of a ``var * number`` awkward array."""
    counts = np.asarray(ak.to_numpy(ak.num(array, axis=1)), np.int64)
    offsets = np.zeros(len(counts) + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    flat = np.asarray(ak.to_numpy(ak.flatten(array, axis=1)))
    if dtype is not None:
        flat = flat.astype(dtype, copy=False)
    return np.ascontiguousarray(flat), offsets


def flat_fields(records: Any, fields: dict[str, Any]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Flat numpy columns ``{name: array of dtype}`` and the offsets of a ``var * {record}`` array."""
    counts = np.asarray(ak.to_numpy(ak.num(records, axis=1)), np.int64)
    offsets = np.zeros(len(counts) + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    flat = ak.flatten(records, axis=1)
    out = {}
    for name, dtype in fields.items():
        out[name] = np.ascontiguousarray(np.asarray(ak.to_numpy(flat[name])).astype(dtype, copy=False))
    return out, offsets


def jagged_records(columns: dict[str, np.ndarray], offsets: np.ndarray) -> ak.Array:
    """A ``var * {columns}`` awkward array from flat columns and int64 offsets (no copies)."""
    content = ak.contents.RecordArray([ak.contents.NumpyArray(c) for c in columns.values()], list(columns))
    return ak.Array(ak.contents.ListOffsetArray(ak.index.Index64(np.asarray(offsets, np.int64)), content))


def regular_matrix(array: Any, width: int, what: str) -> np.ndarray:
    """A per-event array of ``width`` numbers as a contiguous (n_events, width) numpy array; the
    input may be regular (``width * int32``) or jagged with exactly ``width`` entries per event.

    Raises InputError naming ``what`` when an event has another number of entries."""
    layout = ak.to_layout(array)
    if isinstance(layout, ak.contents.RegularArray) or (isinstance(layout, ak.contents.NumpyArray) and layout.data.ndim == 2):
        m = np.asarray(ak.to_numpy(array))
    else:
        counts = np.asarray(ak.to_numpy(ak.num(array, axis=1)))
        if len(counts) and (counts.min() != width or counts.max() != width):
            bad = int(np.flatnonzero(counts != width)[0])
            raise InputError(f"{what}: event {bad} of the chunk has {int(counts[bad])} entries, expected {width}")
        m = np.asarray(ak.to_numpy(ak.flatten(array, axis=1))).reshape(len(counts), width)
    if m.ndim != 2 or (len(m) and m.shape[1] != width):
        raise InputError(f"{what}: expected {width} entries per event, got shape {m.shape}")
    return np.ascontiguousarray(m)
