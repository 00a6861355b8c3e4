"""Kernels of the ``stubs`` processor: strip clustering and stub building in CMS 2S modules.

Inputs are the flat digi columns of a chunk with per-event offsets (only digis with ``flags == 0``
are used; their order does not matter), turned into one int32 key per digi by :func:`digi_keys`,
and the per-module table :class:`StubGeometry`.

Per event (:func:`build_stubs`):

1. **Clusters.** The good digis are taken in the order of ``key = module << 12 | sensor << 11 |
   row << 10 | strip`` (the raw-word order, as unpack writes them; an event that is not sorted is
   sorted first; repeated strips count once) and adjacent strips of one
   (module, sensor, row) form a cluster ``(first strip, width)``. Clusters wider than
   ``max_width`` strips are **dropped** (in both sensors: such a cluster is neither a seed nor a
   partner), as the CBC front-end discards wide clusters.
2. **Correlation.** Each cluster of the seed sensor (sensor 0) looks for clusters of sensor 1 of
   the same module and row. With cluster centres in half-strips ``h = first + last`` (strip ``s``
   has its centre at ``h = 2 s``), a candidate's bend is ``h1 - h0``; it is accepted when
   ``|bend - bend_offset[module]| <= window``, where ``bend_offset`` is the bend of a straight line
   parallel to the beam axis (``2 spacing uz / (wz pitch)`` half-strips: 0 for untilted modules,
   -9.49 for the tilted x/y modules). The accepted candidate closest to ``h0 + bend_offset`` is the
   partner (ties: the lower strip); one stub per seed cluster at most. A sensor-1 cluster may be the
   partner of several seeds.
3. **Stub.** ``position = h0`` (half-strips), ``bend = h1 - h0``, ``width`` = seed-cluster width.
   The measured ``u`` is at the module mid-plane (``w = 0``), the middle of the two cluster
   centres: ``u = u_of_strip((h0 + bend/2) / 2)`` (``midplane = True``), or the seed-cluster centre
   ``u_of_strip(h0 / 2)`` (``midplane = False``). ``v`` is the middle of the row, ``(x, y, z)`` the
   global position of ``(u, v, 0)`` with the (aligned) module centre and rotation. ``error`` comes
   from the table ``errors[class, min(width, 3) - 1]`` (class 0 untilted, 1 tilted module).

:func:`place_stubs` does step 3 for stubs given as (module, row, position, bend), e.g. the
``raw.stubs`` of the DAQ; the width is then inferred from the parity of the position (even: 1
strip, odd: 2 strips).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit

__all__ = ["StubGeometry", "bend_offsets", "build_stubs", "digi_keys", "place_stubs"]

# columns of the module float table
CX, CY, CZ, UX, UY, UZ, VX, VY, VZ, PITCH, STRIP_LENGTH, BEND_OFFSET = range(12)
N_MOD_F = 12
# columns of the module int table
N_STRIPS, N_ROWS, STATION, ERROR_CLASS = range(4)

#: Tilts below this (rad) count as untilted for the error table.
TILTED_ABOVE = 1e-3


@dataclass(frozen=True)
class StubGeometry:
    """Per-module tables for the stub kernels (aligned geometry).

    Attributes:
        mod_f: (n_modules, 12) float64: centre x, y, z; measured direction ux, uy, uz; strip
            direction vx, vy, vz; pitch; strip length; bend offset [half-strips] (the bend of a
            straight line parallel to z).
        mod_i: (n_modules, 4) int64: strips per row, rows, station, error class (0 untilted,
            1 tilted).
    """

    mod_f: np.ndarray
    mod_i: np.ndarray

    @classmethod
    def from_detector(cls, detector: Any) -> StubGeometry:
        a = detector.module_arrays()
        n = len(a["z"])
        mod_f = np.zeros((n, N_MOD_F))
        for col, key in ((CX, "x"), (CY, "y"), (CZ, "z"), (UX, "ux"), (UY, "uy"), (UZ, "uz"), (VX, "vx"), (VY, "vy"),
                         (VZ, "vz"), (PITCH, "pitch"), (STRIP_LENGTH, "strip_length")):
            mod_f[:, col] = a[key]
        mod_f[:, BEND_OFFSET] = bend_offsets(a)
        mod_i = np.zeros((n, 4), np.int64)
        mod_i[:, N_STRIPS] = a["n_strips"]
        mod_i[:, N_ROWS] = a["n_rows"]
        mod_i[:, STATION] = a["station"]
        mod_i[:, ERROR_CLASS] = (np.abs(a["tilt"]) > TILTED_ABOVE).astype(np.int64)
        return cls(np.ascontiguousarray(mod_f), np.ascontiguousarray(mod_i))

    @property
    def n_modules(self) -> int:
        return len(self.mod_f)


def bend_offsets(arrays: dict[str, np.ndarray]) -> np.ndarray:
    """Bend [half-strips] of a straight line parallel to the beam axis, per module (from
    :meth:`Detector.module_arrays`): the line's local direction is ``(uz, vz, wz)``, so between the
    sensors (``sensor_spacing`` apart in w) u changes by ``spacing uz / wz``."""
    return 2.0 * arrays["sensor_spacing"] * arrays["uz"] / (arrays["wz"] * arrays["pitch"])


@njit(cache=True, inline="always")
def _place(m: int, row: int, h0: float, bend: float, width: int, midplane: bool, mod_f: np.ndarray, mod_i: np.ndarray,
           errors: np.ndarray, out_u: np.ndarray, out_v: np.ndarray, out_x: np.ndarray, out_y: np.ndarray,
           out_z: np.ndarray, out_error: np.ndarray, k: int) -> None:  # pragma: no cover - numba
    """Write u, v, x, y, z, error of a stub at index ``k``."""
    h = h0 + 0.5 * bend if midplane else h0
    u = (0.5 * h + 0.5 - 0.5 * mod_i[m, N_STRIPS]) * mod_f[m, PITCH]
    v = (row + 0.5 - 0.5 * mod_i[m, N_ROWS]) * mod_f[m, STRIP_LENGTH]
    out_u[k] = u
    out_v[k] = v
    out_x[k] = mod_f[m, CX] + u * mod_f[m, UX] + v * mod_f[m, VX]
    out_y[k] = mod_f[m, CY] + u * mod_f[m, UY] + v * mod_f[m, VY]
    out_z[k] = mod_f[m, CZ] + u * mod_f[m, UZ] + v * mod_f[m, VZ]
    wi = min(max(width, 1), 3)
    out_error[k] = errors[mod_i[m, ERROR_CLASS], wi - 1]


@njit(cache=True)
def digi_keys(module: np.ndarray, sensor: np.ndarray, row: np.ndarray, strip: np.ndarray, flags: np.ndarray,
              mod_i: np.ndarray, keys: np.ndarray) -> None:  # pragma: no cover - numba
    """``keys[i] = module << 12 | sensor << 11 | row << 10 | strip`` (int32) of every usable digi,
    -1 for a flagged one or one outside the module tables. One flat pass, branch-free when all
    modules have the same strips and rows (so that it vectorises)."""
    n_modules = len(mod_i)
    uniform = n_modules > 0
    for m in range(1, n_modules):
        if mod_i[m, N_STRIPS] != mod_i[0, N_STRIPS] or mod_i[m, N_ROWS] != mod_i[0, N_ROWS]:
            uniform = False
    if uniform:
        ns = np.int32(min(mod_i[0, N_STRIPS], 1024))
        nr = np.int32(min(mod_i[0, N_ROWS], 2))
        nm = np.int32(min(n_modules, 4096))
        for i in range(len(keys)):
            m = np.int32(module[i])
            s = np.int32(sensor[i])
            r = np.int32(row[i])
            st = np.int32(strip[i])
            ok = (flags[i] == 0) & (m >= 0) & (m < nm) & (s >= 0) & (s <= 1) & (r >= 0) & (r < nr) & (st >= 0) & (st < ns)
            keys[i] = np.int32((m << 12) | (s << 11) | (r << 10) | st) if ok else np.int32(-1)
    else:
        for i in range(len(keys)):
            m = np.int64(module[i])
            s = np.int64(sensor[i])
            r = np.int64(row[i])
            st = np.int64(strip[i])
            if flags[i] != 0 or m < 0 or m >= n_modules or m > 4095 or s < 0 or s > 1 or r < 0 or r > 1 \
                    or r >= mod_i[m, N_ROWS] or st < 0 or st > 1023 or st >= mod_i[m, N_STRIPS]:
                keys[i] = -1
            else:
                keys[i] = (m << 12) | (s << 11) | (r << 10) | st


@njit(cache=True, inline="always")
def _add_cluster(first: int, last: int, max_width: int, c_block: np.ndarray, c_first: np.ndarray, c_width: np.ndarray,
                 nc: int) -> int:  # pragma: no cover - numba
    width = last - first + 1
    if width > max_width:
        return nc
    c_block[nc] = first >> 10
    c_first[nc] = 2 * (first & 1023) + width - 1  # the centre in half-strips
    c_width[nc] = width
    return nc + 1


@njit(cache=True)
def _clusters(keys: np.ndarray, lo: int, hi: int, max_width: int, c_block: np.ndarray, c_first: np.ndarray,
              c_width: np.ndarray) -> int:  # pragma: no cover - numba
    """Clusters of the keys[lo:hi] (-1 skipped, repeats counted once) when they are sorted; returns
    how many, or -1 when they are not sorted."""
    nc = 0
    first = -2
    last = -2
    for i in range(lo, hi):
        key = np.int64(keys[i])
        if key < 0 or key == last:
            continue
        if key == last + 1 and (key & 1023) != 0:
            last = key
        elif key > last:
            if first >= 0:
                nc = _add_cluster(first, last, max_width, c_block, c_first, c_width, nc)
            first = key
            last = key
        else:
            return -1
    if first >= 0:
        nc = _add_cluster(first, last, max_width, c_block, c_first, c_width, nc)
    return nc


@njit(cache=True)
def build_stubs(offsets: np.ndarray, keys: np.ndarray, max_width: int, window: float, midplane: bool,
                mod_f: np.ndarray, mod_i: np.ndarray, errors: np.ndarray, out_module: np.ndarray,
                out_station: np.ndarray, out_row: np.ndarray, out_position: np.ndarray, out_bend: np.ndarray,
                out_width: np.ndarray, out_u: np.ndarray, out_v: np.ndarray, out_x: np.ndarray, out_y: np.ndarray,
                out_z: np.ndarray, out_error: np.ndarray, counts: np.ndarray) -> int:  # pragma: no cover - numba
    """Stubs of every event from the digi keys of :func:`digi_keys` (``offsets``: n_events + 1).

    Outputs are filled event after event: ``out_module``, ``out_station`` (int32), ``out_row``,
    ``out_width`` (int8), ``out_position``, ``out_bend`` (float32, half-strips), ``out_u`` ...
    ``out_error`` (float64, mm); ``counts`` receives the stubs per event. ``errors``: (2, 3)
    float64 [mm], by error class and width 1, 2, >= 3. Returns the number of stubs, or -1 when the
    outputs are too short (``len(keys)`` is always enough: at most one stub per seed-sensor
    cluster). Keys may come in any order inside an event (an unsorted event is sorted in a scratch
    copy) and -1 keys are ignored."""
    capacity = len(out_module)
    max_n = 0
    for e in range(len(offsets) - 1):
        max_n = max(max_n, offsets[e + 1] - offsets[e])
    scratch = np.empty(max_n, np.int32)
    c_block = np.empty(max_n, np.int32)  # module << 2 | sensor << 1 | row
    c_first = np.empty(max_n, np.int32)  # centre in half-strips
    c_width = np.empty(max_n, np.int32)
    n_out = 0
    for e in range(len(offsets) - 1):
        lo = offsets[e]
        hi = offsets[e + 1]
        nc = _clusters(keys, lo, hi, max_width, c_block, c_first, c_width)
        if nc < 0:  # not sorted: sort a copy of the event's keys
            scratch[: hi - lo] = np.sort(keys[lo:hi])
            nc = _clusters(scratch, 0, hi - lo, max_width, c_block, c_first, c_width)
        # ---- seed clusters (sensor 0) and their partner in sensor 1 (block + 2); the partner
        # block's first cluster is found by a pointer that only moves forward (blocks increase)
        start = n_out
        pb = 0
        for a in range(nc):
            block = c_block[a]
            if block & 2 != 0:
                continue
            target = block + 2
            while pb < nc and c_block[pb] < target:
                pb += 1
            m = block >> 2
            h0 = c_first[a]
            expected = h0 + mod_f[m, BEND_OFFSET]
            best = -1
            best_d = 0.0
            b = pb
            while b < nc and c_block[b] == target:
                d = abs(c_first[b] - expected)
                if d <= window and (best < 0 or d < best_d):
                    best = b
                    best_d = d
                b += 1
            if best < 0:
                continue
            best_bend = c_first[best] - h0
            if n_out >= capacity:
                return -1
            r = block & 1
            out_module[n_out] = m
            out_station[n_out] = mod_i[m, STATION]
            out_row[n_out] = r
            out_position[n_out] = h0
            out_bend[n_out] = best_bend
            out_width[n_out] = c_width[a]
            _place(m, r, float(h0), float(best_bend), c_width[a], midplane, mod_f, mod_i, errors, out_u, out_v, out_x,
                   out_y, out_z, out_error, n_out)
            n_out += 1
        counts[e] = n_out - start
    return n_out


@njit(cache=True)
def place_stubs(offsets: np.ndarray, module: np.ndarray, row: np.ndarray, position: np.ndarray, bend: np.ndarray,
                midplane: bool, mod_f: np.ndarray, mod_i: np.ndarray, errors: np.ndarray, out_module: np.ndarray,
                out_station: np.ndarray, out_row: np.ndarray, out_position: np.ndarray, out_bend: np.ndarray,
                out_width: np.ndarray, out_u: np.ndarray, out_v: np.ndarray, out_x: np.ndarray, out_y: np.ndarray,
                out_z: np.ndarray, out_error: np.ndarray, counts: np.ndarray) -> int:  # pragma: no cover - numba
    """Stubs given by (module, row, position, bend) (e.g. DAQ stubs; ``offsets``: n_events + 1)
    placed in the geometry like :func:`build_stubs` does. Stubs with a module outside the tables
    (e.g. -1 for an unmapped link), a row outside the module's rows, a position outside
    ``[0, 2 n_strips - 1]`` half-strips or a non-finite position or bend are dropped. The width is
    inferred from the parity of the position (even: 1 strip, odd: 2). Outputs as in
    :func:`build_stubs`, with the capacity of the input stubs. Returns the number kept."""
    n_modules = len(mod_f)
    n_out = 0
    for e in range(len(offsets) - 1):
        start = n_out
        for i in range(offsets[e], offsets[e + 1]):
            m = np.int64(module[i])
            r = np.int64(row[i])
            h0 = position[i]
            if m < 0 or m >= n_modules or r < 0 or r >= mod_i[m, N_ROWS]:
                continue
            if not (h0 >= 0.0 and h0 <= 2.0 * mod_i[m, N_STRIPS] - 1.0) or not np.isfinite(bend[i]):
                continue
            width = 2 if int(np.floor(h0 + 0.5)) % 2 == 1 else 1
            out_module[n_out] = m
            out_station[n_out] = mod_i[m, STATION]
            out_row[n_out] = r
            out_position[n_out] = h0
            out_bend[n_out] = bend[i]
            out_width[n_out] = width
            _place(m, r, h0, bend[i], width, midplane, mod_f, mod_i, errors, out_u, out_v, out_x, out_y, out_z, out_error,
                   n_out)
            n_out += 1
        counts[e] = n_out - start
    return n_out
