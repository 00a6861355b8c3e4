"""Kernel of the ``unpack`` processor: raw strip words -> digis with quality flags.

Word layout: :mod:`muone.rawformat` (bits 0-9 strip, 10 row, 11 sensor, 12-23 module, 24-31
reserved). Every word becomes one digi, in the order of the words; impossible words are kept and
flagged (never dropped, never fatal):

| bit | value | meaning |
|---|---|---|
| 0 | 1 | reserved bits 24-31 not all zero |
| 1 | 2 | module index beyond the detector's modules |
| 2 | 4 | strip >= the module's ``n_strips`` or row >= its ``n_rows`` (checked only for known modules) |
| 3 | 8 | duplicate: the same 32-bit word appeared earlier in the same event |

The fields of a flagged word are still decoded (masked to their bit widths), so a digi always
shows what the word said. The first occurrence of a repeated word is not flagged as a duplicate
(it may carry other flags of its own).
"""

from __future__ import annotations

import numpy as np
from muone.rawformat import (
    MODULE_MASK,
    MODULE_SHIFT,
    RESERVED_SHIFT,
    ROW_SHIFT,
    SENSOR_SHIFT,
    STRIP_MASK,
)
from numba import njit

__all__ = ["FLAG_DUPLICATE", "FLAG_OUT_OF_RANGE", "FLAG_RESERVED", "FLAG_UNKNOWN_MODULE", "unpack_words"]

FLAG_RESERVED = 1
FLAG_UNKNOWN_MODULE = 2
FLAG_OUT_OF_RANGE = 4
FLAG_DUPLICATE = 8


@njit(cache=True)
def unpack_words(offsets: np.ndarray, words: np.ndarray, n_strips: np.ndarray, n_rows: np.ndarray,
                 module: np.ndarray, sensor: np.ndarray, row: np.ndarray, strip: np.ndarray,
                 flags: np.ndarray, n_bad: np.ndarray) -> None:  # pragma: no cover - numba
    """Decode the uint32 ``words`` of every event (``offsets``: n_events + 1, int64) into the
    preallocated digi columns (``module`` int32, ``sensor``/``row`` int8, ``strip`` int16,
    ``flags`` uint8, one entry per word) and ``n_bad`` (int32 per event: words with flags != 0).
    ``n_strips``/``n_rows`` (int32 per global module index) describe the detector.

    Two passes, both branch-free in their inner loops so that they vectorise: the fields and the
    per-word flags over all words, then per event the comparison of neighbouring words (repeats
    and order; an event whose words are not sorted falls back to a stable sort)."""
    n_modules = len(n_strips)
    uniform = n_modules > 0
    for m in range(1, n_modules):
        if n_strips[m] != n_strips[0] or n_rows[m] != n_rows[0]:
            uniform = False
    # ---- fields and per-word flags
    if uniform:  # every module alike (all presets): no per-module lookup
        ns = np.uint32(n_strips[0])
        nr = np.uint32(n_rows[0])
        nm = np.uint32(n_modules)
        for i in range(len(words)):
            w = np.uint32(words[i])
            m = (w >> np.uint32(MODULE_SHIFT)) & np.uint32(MODULE_MASK)
            r = (w >> np.uint32(ROW_SHIFT)) & np.uint32(1)
            st = w & np.uint32(STRIP_MASK)
            known = m < nm
            module[i] = m
            sensor[i] = (w >> np.uint32(SENSOR_SHIFT)) & np.uint32(1)
            row[i] = r
            strip[i] = st
            flags[i] = (np.uint8((w >> np.uint32(RESERVED_SHIFT)) != 0) * np.uint8(FLAG_RESERVED)
                        + np.uint8(not known) * np.uint8(FLAG_UNKNOWN_MODULE)
                        + np.uint8(known and (st >= ns or r >= nr)) * np.uint8(FLAG_OUT_OF_RANGE))
    else:
        for i in range(len(words)):
            w = np.int64(words[i])
            m = (w >> MODULE_SHIFT) & MODULE_MASK
            r = (w >> ROW_SHIFT) & 1
            st = w & STRIP_MASK
            f = 0
            if (w >> RESERVED_SHIFT) != 0:
                f |= FLAG_RESERVED
            if m >= n_modules:
                f |= FLAG_UNKNOWN_MODULE
            elif st >= n_strips[m] or r >= n_rows[m]:
                f |= FLAG_OUT_OF_RANGE
            module[i] = m
            sensor[i] = (w >> SENSOR_SHIFT) & 1
            row[i] = r
            strip[i] = st
            flags[i] = f
    # ---- per event: repeated words (the earliest occurrence stays unflagged) and the count
    for e in range(len(offsets) - 1):
        lo = offsets[e]
        hi = offsets[e + 1]
        unordered = 0
        bad = 0
        if hi > lo:
            bad = np.int64(flags[lo] != 0)
        for i in range(lo + 1, hi):
            a = words[i]
            b = words[i - 1]
            f = flags[i] | np.uint8(a == b) * np.uint8(FLAG_DUPLICATE)
            flags[i] = f
            bad += f != 0
            unordered += a < b
        if unordered:
            # words out of order (not as sim_tracker writes them): find repeats by a stable sort
            order = np.argsort(words[lo:hi], kind="mergesort")
            for k in range(1, hi - lo):
                a = lo + order[k]
                if words[a] == words[lo + order[k - 1]]:
                    flags[a] |= FLAG_DUPLICATE
            bad = 0
            for i in range(lo, hi):
                bad += flags[i] != 0
        n_bad[e] = bad
