"""The raw strip word: one ``uint32`` per fired strip (``raw.strips``, DESIGN.md "Event record").

Bit layout (bit 0 is the least significant bit):

| bits  | field    | range    | meaning                                              |
|-------|----------|----------|------------------------------------------------------|
| 0-9   | strip    | 0-1023   | strip number in its row (the 2S sensor has 0-1015)   |
| 10    | row      | 0-1      | strip row (sensor half): 0 is v < 0, 1 is v >= 0     |
| 11    | sensor   | 0-1      | sensor of the module: 0 upstream (w < 0), 1 (w > 0)  |
| 12-23 | module   | 0-4095   | global module index (z order over the whole detector)|
| 24-31 | reserved | 0        | must be 0                                            |

So ``word = strip | row << 10 | sensor << 11 | module << 12``. Words of one event are written
sorted (increasing module, sensor, row, strip) and without duplicates by ``sim_tracker``.

Functions:

* :func:`pack_strip_words` / :func:`unpack_strip_words`: vectorised numpy (packing checks the
  ranges and raises ValueError; unpacking returns int32 arrays and never fails);
* :func:`pack_strip_word` / :func:`unpack_strip_word`: ``@njit`` scalar versions for numba kernels
  (no range checks: fields are masked to their bit widths);
* :func:`reserved_bits` and :func:`valid_strip_words`: for readers flagging impossible words
  (reserved bits set, a module the detector does not have, a strip or row beyond the module's).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

__all__ = [
    "MAX_MODULES",
    "MODULE_BITS",
    "MODULE_MASK",
    "MODULE_SHIFT",
    "RESERVED_MASK",
    "RESERVED_SHIFT",
    "ROW_MASK",
    "ROW_SHIFT",
    "SENSOR_MASK",
    "SENSOR_SHIFT",
    "STRIP_BITS",
    "STRIP_MASK",
    "STRIP_SHIFT",
    "pack_strip_word",
    "pack_strip_words",
    "reserved_bits",
    "unpack_strip_word",
    "unpack_strip_words",
    "valid_strip_words",
]

STRIP_SHIFT, STRIP_BITS = 0, 10
ROW_SHIFT, SENSOR_SHIFT = 10, 11
MODULE_SHIFT, MODULE_BITS = 12, 12
RESERVED_SHIFT = 24
STRIP_MASK = (1 << STRIP_BITS) - 1        # 0x3FF
ROW_MASK = 1
SENSOR_MASK = 1
MODULE_MASK = (1 << MODULE_BITS) - 1      # 0xFFF
RESERVED_MASK = 0xFF000000
#: Largest number of modules a word can address.
MAX_MODULES = MODULE_MASK + 1


def _check(name: str, values: np.ndarray, limit: int) -> None:
    if values.size and (values.min() < 0 or values.max() > limit):
        bad = values[(values < 0) | (values > limit)]
        raise ValueError(f"{name} out of range 0..{limit} for a raw strip word (e.g. {bad[0]})")


def pack_strip_words(module: Any, sensor: Any, row: Any, strip: Any) -> np.ndarray:
    """uint32 words of (module, sensor, row, strip); numpy broadcasting.

    Raises ValueError for a value outside its field (module 0-4095, sensor and row 0-1, strip
    0-1023) or a non-integer input."""
    fields = [np.asarray(a) for a in (module, sensor, row, strip)]
    for name, a in zip(("module", "sensor", "row", "strip"), fields):
        if a.dtype.kind not in "iub":
            raise ValueError(f"{name} must be integers, got dtype {a.dtype}")
    m, s, r, st = (a.astype(np.int64) for a in fields)
    _check("module", m, MODULE_MASK)
    _check("sensor", s, SENSOR_MASK)
    _check("row", r, ROW_MASK)
    _check("strip", st, STRIP_MASK)
    words = (st << STRIP_SHIFT) | (r << ROW_SHIFT) | (s << SENSOR_SHIFT) | (m << MODULE_SHIFT)
    return words.astype(np.uint32)


def unpack_strip_words(words: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(module, sensor, row, strip) int32 arrays of uint32 words (reserved bits are ignored:
    see :func:`reserved_bits`)."""
    w = np.asarray(words).astype(np.uint32, copy=False)
    module = ((w >> MODULE_SHIFT) & MODULE_MASK).astype(np.int32)
    sensor = ((w >> SENSOR_SHIFT) & SENSOR_MASK).astype(np.int32)
    row = ((w >> ROW_SHIFT) & ROW_MASK).astype(np.int32)
    strip = ((w >> STRIP_SHIFT) & STRIP_MASK).astype(np.int32)
    return module, sensor, row, strip


def reserved_bits(words: Any) -> np.ndarray:
    """The reserved bits 24-31 of each word, shifted down (uint32; 0 in a valid word)."""
    return (np.asarray(words).astype(np.uint32, copy=False) >> RESERVED_SHIFT).astype(np.uint32)


def valid_strip_words(words: Any, n_strips: Any, n_rows: Any) -> np.ndarray:
    """True where a word is possible for a detector whose modules have ``n_strips[m]`` strips per
    row and ``n_rows[m]`` rows (arrays indexed by global module index, e.g. from
    ``Detector.module_arrays()``): reserved bits 0, module < len(n_strips), row < n_rows[module],
    strip < n_strips[module]."""
    n_strips = np.asarray(n_strips, np.int64)
    n_rows = np.asarray(n_rows, np.int64)
    module, _, row, strip = unpack_strip_words(words)
    if len(n_strips) == 0:
        return np.zeros(module.shape, bool)
    ok = (reserved_bits(words) == 0) & (module < len(n_strips))
    m = np.where(ok, module, 0)
    return ok & (row < n_rows[m]) & (strip < n_strips[m])


@njit(cache=True)
def pack_strip_word(module: int, sensor: int, row: int, strip: int) -> np.uint32:  # pragma: no cover - numba
    """One uint32 word (numba scalar; fields masked to their widths, no range check)."""
    return np.uint32(((module & MODULE_MASK) << MODULE_SHIFT) | ((sensor & SENSOR_MASK) << SENSOR_SHIFT)
                     | ((row & ROW_MASK) << ROW_SHIFT) | ((strip & STRIP_MASK) << STRIP_SHIFT))


@njit(cache=True)
def unpack_strip_word(word: np.uint32) -> tuple[int, int, int, int]:  # pragma: no cover - numba
    """(module, sensor, row, strip) of one word (numba scalar; reserved bits ignored)."""
    w = np.int64(word)
    return ((w >> MODULE_SHIFT) & MODULE_MASK, (w >> SENSOR_SHIFT) & SENSOR_MASK,
            (w >> ROW_SHIFT) & ROW_MASK, (w >> STRIP_SHIFT) & STRIP_MASK)
