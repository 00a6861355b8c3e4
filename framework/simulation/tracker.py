"""Numba kernels of the tracker simulation (processor ``sim_tracker``; model: docs/simulation.md).

Everything runs over flat arrays: the particles of a chunk (with per-event offsets), the module
and target tables of :class:`DetectorTables`, and preallocated hit arrays. Random numbers come
from the chunk's ``numpy.random.Generator``, passed into the kernels (numba draws from the same
bit generator, so a job is reproducible from its seed).

Tracing one charged particle (:func:`trace_track`), from a start point and slopes
``tx = dx/dz``, ``ty = dy/dz``, through the layers in z order (``direction = +1``: downstream, for
the particles of ``mc.particles``; ``-1``: upstream, for the incoming beam muon traced back from
the vertex):

* target (a slab between ``z_start`` and ``z_end``): the part still ahead of the particle
  (all of it, or from the production vertex on) is one thick scatterer: with the path length
  ``L`` and ``a`` = the (scaled, core or tail) Highland width, per projected plane
  ``theta = a g1`` and a lateral displacement ``sign(dz) L a (g2/sqrt(12) + g1/2)`` at the exit
  face (the correlated angle and offset of the PDG review "Passage of particles through matter",
  multiple scattering through small angles), applied perpendicular to the direction of flight;
* module: the crossing of sensor 0 (upstream sensor when tracing downstream), a thin scatter at the
  module mid-plane with the module's whole ``x_over_x0`` (times the path-length factor
  ``1/|cos|``), then the crossing of the other sensor with the deflected line.

A sensor crossing inside the strip area (``0 <= u/pitch + n_strips/2 < n_strips`` and a valid
row, at the sensor mid-plane) makes a *sim hit* (truth). With probability ``efficiency`` it then
fires the strips: the ionisation spreads along u over ``thickness * |du/dw|`` (the track crossing
the sensor thickness; ``du, dw`` its local direction), and every strip holding more than
``threshold`` of that path fires (binary readout). The fired strips are contiguous (the inner
strips of a long path hold the most), so a hit stores them as (first strip, size).

Random draws, in order, per track and layer (the reference implementation in the tests follows
the same order): a scatter draws ``rng.random()`` for the tail decision (only when
``tail_fraction > 0``), then ``g1, g2`` (thin scatter: the two projected angles) or ``g1..g4``
(thick: angle and displacement of plane 1, then of plane 2); no draws at all when
``mcs_scale == 0``. A sim hit draws ``rng.random()`` for the efficiency (only when
``efficiency < 1``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from muone.rawformat import pack_strip_word, pack_strip_words
from muone.simulation.highland import HIGHLAND_E0, HIGHLAND_LOG
from numba import njit

__all__ = [
    "HIT_FLOAT_FIELDS",
    "HIT_INT_FIELDS",
    "DetectorTables",
    "fired_strips",
    "hit_arrays",
    "merge_words",
    "noise_words",
    "scatter_slopes",
    "simulate_hits",
    "trace_track",
]

# columns of the module table (float64)
(CX, CY, CZ, UX, UY, UZ, VX, VY, VZ, WX, WY, WZ, HALF_SPACING, THICKNESS, PITCH, STRIP_LENGTH, XX0, LOG_XX0, SQRT_XX0,
 INV_PITCH, INV_STRIP_LENGTH) = range(21)
N_MOD_F = 21
# columns of the module table (int64)
N_STRIPS, N_ROWS = 0, 1
# columns of the target table (float64)
Z_START, Z_END, X0_MM = 0, 1, 2
# layer kinds
LAYER_TARGET, LAYER_MODULE = 0, 1

#: The hit arrays (``mc.sim_hits`` fields): ``hf`` (6 x capacity float32: u, v, x, y, tx, ty; 3 nm
#: at 50 mm, 1e-10 rad in slope), ``hz`` (capacity float64: z, for 47 m long detectors) and ``hi``
#: (6 x capacity int32).
HIT_FLOAT_FIELDS = ("u", "v", "x", "y", "tx", "ty")
HIT_INT_FIELDS = ("particle", "module", "sensor", "row", "strip", "size")
HU, HV, HX, HY, HTX, HTY = range(6)
HPART, HMOD, HSENS, HROW, HSTRIP, HSIZE = range(6)


def hit_arrays(capacity: int, truth: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Empty hit arrays ``(hf, hz, hi)`` for ``capacity`` hits (``hf``, ``hz`` empty unless
    ``truth``)."""
    c = capacity if truth else 0
    return np.empty((len(HIT_FLOAT_FIELDS), c), np.float32), np.empty(c, np.float64), np.empty((len(HIT_INT_FIELDS), capacity), np.int32)


SQRT12 = math.sqrt(12.0)


@dataclass(frozen=True)
class DetectorTables:
    """Flat tables of a :class:`~muone.geometry.Detector` for the kernels.

    Attributes:
        mod_f: (n_modules, 21) float64: centre, columns of R (u, v, w directions), half sensor
            spacing, sensor thickness, pitch, strip length, x/X0, ln(x/X0), sqrt(x/X0), 1/pitch,
            1/strip length (aligned geometry).
        mod_i: (n_modules, 2) int64: strips per row, rows.
        tgt_f: (n_targets, 3) float64: z_start, z_end, radiation length [mm].
        layer_kind, layer_index: the material layers (targets and modules) sorted by z (target
            upstream face, module centre).
        module_z_sorted: the modules' centre z, sorted (for hit-count bounds).
        z_margin: the largest distance in z between a module centre and a point of its sensors'
            strip areas (a track starting at z0 cannot hit a module whose centre is below
            ``z0 - z_margin``).
        strips_per_module: 2 sensors x rows x strips.
    """

    mod_f: np.ndarray
    mod_i: np.ndarray
    tgt_f: np.ndarray
    layer_kind: np.ndarray
    layer_index: np.ndarray
    module_z_sorted: np.ndarray
    z_margin: float
    strips_per_module: np.ndarray

    @property
    def n_modules(self) -> int:
        return len(self.mod_f)

    @classmethod
    def from_detector(cls, detector: Any) -> DetectorTables:
        """Tables of a detector (with whatever alignment it carries)."""
        a = detector.module_arrays()
        n = len(a["z"])
        mod_f = np.zeros((n, N_MOD_F))
        for col, key in ((CX, "x"), (CY, "y"), (CZ, "z"), (UX, "ux"), (UY, "uy"), (UZ, "uz"), (VX, "vx"), (VY, "vy"),
                         (VZ, "vz"), (WX, "wx"), (WY, "wy"), (WZ, "wz"), (THICKNESS, "sensor_thickness"),
                         (PITCH, "pitch"), (STRIP_LENGTH, "strip_length"), (XX0, "x_over_x0")):
            mod_f[:, col] = a[key]
        mod_f[:, HALF_SPACING] = 0.5 * a["sensor_spacing"]
        with np.errstate(divide="ignore"):
            mod_f[:, LOG_XX0] = np.log(a["x_over_x0"])
        mod_f[:, SQRT_XX0] = np.sqrt(a["x_over_x0"])
        mod_f[:, INV_PITCH] = 1.0 / a["pitch"]
        mod_f[:, INV_STRIP_LENGTH] = 1.0 / a["strip_length"]
        mod_i = np.zeros((n, 2), np.int64)
        mod_i[:, N_STRIPS] = a["n_strips"]
        mod_i[:, N_ROWS] = a["n_rows"]
        targets = detector.targets
        tgt_f = np.array([[t.z_start, t.z_end, t.medium.x0] for t in targets], np.float64).reshape(len(targets), 3)
        keys = np.concatenate([tgt_f[:, Z_START], mod_f[:, CZ]])
        kinds = np.concatenate([np.full(len(targets), LAYER_TARGET), np.full(n, LAYER_MODULE)]).astype(np.int64)
        index = np.concatenate([np.arange(len(targets)), np.arange(n)]).astype(np.int64)
        order = np.argsort(keys, kind="stable")
        half_u = 0.5 * a["n_strips"] * a["pitch"]
        half_v = 0.5 * a["n_rows"] * a["strip_length"]
        extent = np.abs(a["uz"]) * half_u + np.abs(a["vz"]) * half_v + np.abs(a["wz"]) * 0.5 * a["sensor_spacing"]
        return cls(
            mod_f=np.ascontiguousarray(mod_f), mod_i=np.ascontiguousarray(mod_i), tgt_f=np.ascontiguousarray(tgt_f),
            layer_kind=np.ascontiguousarray(kinds[order]), layer_index=np.ascontiguousarray(index[order]),
            module_z_sorted=np.sort(mod_f[:, CZ]), z_margin=float(extent.max() + 1e-6) if n else 0.0,
            strips_per_module=(2 * a["n_rows"] * a["n_strips"]).astype(np.int64),
        )

    def max_hits(self, z_start: np.ndarray, direction: int) -> np.ndarray:
        """Upper bound of the sim hits of tracks starting at ``z_start`` (2 per module they can
        reach), vectorised."""
        if direction > 0:
            reach = len(self.module_z_sorted) - np.searchsorted(self.module_z_sorted, z_start - self.z_margin, side="left")
        else:
            reach = np.searchsorted(self.module_z_sorted, z_start + self.z_margin, side="right")
        return 2 * reach.astype(np.int64)


# ---------------------------------------------------------------------------------------------
# small kernels
# ---------------------------------------------------------------------------------------------


@njit(cache=True, error_model="numpy")
def fired_strips(q_lo: float, q_hi: float, n_strips: int, threshold: float) -> tuple[int, int]:  # pragma: no cover - numba
    """(first strip, number of strips) fired by ionisation spread uniformly over
    ``[q_lo, q_hi]`` in strip units (strip ``k`` covers ``[k, k + 1)``): every strip holding more
    than ``threshold`` of the path fires; (-1, 0) if none. A point-like deposit (width < 1e-9
    strips) gives the whole charge to the strip containing it."""
    width = q_hi - q_lo
    if width < 1e-9:
        k = int(math.floor(0.5 * (q_lo + q_hi)))
        if 0 <= k < n_strips and threshold < 1.0:
            return k, 1
        return -1, 0
    k0 = int(math.floor(q_lo))
    k1 = int(math.floor(q_hi))
    if k0 < 0:
        k0 = 0
    if k1 > n_strips - 1:
        k1 = n_strips - 1
    first = -1
    size = 0
    cut = threshold * width
    for k in range(k0, k1 + 1):
        if min(q_hi, k + 1.0) - max(q_lo, float(k)) > cut:  # the strip's share of the path > threshold
            if first < 0:
                first = k
            size += 1
    return first, size


@njit(cache=True, error_model="numpy")
def scatter_slopes(tx: float, ty: float, theta1: float, theta2: float) -> tuple[float, float, bool]:  # pragma: no cover - numba
    """Slopes after rotating the direction of (tx, ty) by the projected angles ``theta1`` and
    ``theta2`` about two axes perpendicular to it: the new direction is
    ``cos(theta) d + sin(theta) (theta1 e1 + theta2 e2) / theta`` with
    ``theta = sqrt(theta1^2 + theta2^2)``, ``d`` the unit direction, ``e1`` the unit vector
    perpendicular to ``d`` in the plane of ``d`` and x, ``e2 = d x e1`` (for a track along z:
    e1 = x, e2 = y). Exact (no small-angle approximation). The flag is False when the particle
    no longer moves downstream (the slopes are then returned unchanged)."""
    th2 = theta1 * theta1 + theta2 * theta2
    if th2 == 0.0:
        return tx, ty, True
    if th2 < 1e-4:  # tan(theta)/theta, series to theta^4 (relative error < 1e-13)
        kappa = 1.0 + th2 * (1.0 / 3.0 + th2 * (2.0 / 15.0))
    else:
        theta = math.sqrt(th2)
        if theta >= 0.5 * math.pi:
            return tx, ty, False
        kappa = math.tan(theta) / theta
    norm = math.sqrt(1.0 + tx * tx + ty * ty)
    a = math.sqrt(1.0 + tx * tx)
    # direction (tx, ty, 1) + norm * tan(theta) * (theta1 e1 + theta2 e2) / theta
    c = kappa / a
    nx = tx + c * (norm * theta1 - theta2 * tx * ty)
    ny = ty + kappa * a * theta2
    nz = 1.0 - c * (norm * theta1 * tx + theta2 * ty)
    if nz <= 0.0:
        return tx, ty, False
    return nx / nz, ny / nz, True


@njit(cache=True, error_model="numpy", inline="always")
def _width(rng: Any, k: float, x_over_x0: float, tail_fraction: float, tail_scale: float) -> float:  # pragma: no cover - numba
    """Core (or, with probability tail_fraction, tail) width of one scatter: ``k`` is
    ``mcs_scale * 0.0136 / (beta p)``."""
    a = 0.0
    if x_over_x0 > 0.0:
        factor = 1.0 + HIGHLAND_LOG * math.log(x_over_x0)
        if factor > 0.0:
            a = k * math.sqrt(x_over_x0) * factor
    if tail_fraction > 0.0 and rng.random() < tail_fraction:
        a *= tail_scale
    return a


@njit(cache=True, error_model="numpy", inline="always")
def _module_width(rng: Any, k: float, xx0: float, log_xx0: float, sqrt_xx0: float, f: float, tail_fraction: float,
                  tail_scale: float) -> float:  # pragma: no cover - numba
    """:func:`_width` for a module crossed with the path-length factor ``f = 1/|cos|``, using its
    precomputed ln and sqrt of x/X0 (ln f by its series to g^5 near f = 1 + g, |g| < 0.1: the width
    changes by < 1e-8 relative)."""
    a = 0.0
    if xx0 > 0.0:
        g = f - 1.0
        if abs(g) < 0.1:
            log_f = g * (1.0 - g * (0.5 - g * (1.0 / 3.0 - g * (0.25 - g * 0.2))))
        else:
            log_f = math.log(f)
        factor = 1.0 + HIGHLAND_LOG * (log_xx0 + log_f)
        if factor > 0.0:
            a = k * sqrt_xx0 * math.sqrt(f) * factor
    if tail_fraction > 0.0 and rng.random() < tail_fraction:
        a *= tail_scale
    return a


# ---------------------------------------------------------------------------------------------
# one track
# ---------------------------------------------------------------------------------------------


@njit(cache=True, error_model="numpy", inline="always")
def _sensor_hit(rng: Any, m: int, sensor: int, pu: float, pv: float, pw: float, du: float, dv: float, inv_dw: float,
                x: float, y: float, z: float, tx: float, ty: float, direction: int, particle: int, mod_f: np.ndarray,
                mod_i: np.ndarray, threshold: float, efficiency: float, truth: bool, hf: np.ndarray, hz: np.ndarray,
                hi: np.ndarray, n: int) -> int:  # pragma: no cover - numba
    """The crossing of sensor ``sensor`` of module ``m`` by the line through local (pu, pv, pw)
    with local direction (du, dv, 1/inv_dw) per unit z (global point (x, y, z), slopes tx, ty): a
    sim hit at column ``n`` when it lies ahead of the point (in ``direction``) and on the strip
    area. Returns the next free column (-1: capacity exceeded)."""
    t = ((2.0 * sensor - 1.0) * mod_f[m, HALF_SPACING] - pw) * inv_dw
    if direction * t < 0.0:
        return n
    u = pu + t * du
    v = pv + t * dv
    n_strips = mod_i[m, N_STRIPS]
    n_rows = mod_i[m, N_ROWS]
    q = u * mod_f[m, INV_PITCH] + 0.5 * n_strips
    if not (q >= 0.0 and q < n_strips):
        return n
    rowf = math.floor(v * mod_f[m, INV_STRIP_LENGTH] + 0.5 * n_rows)
    if not (rowf >= 0.0 and rowf < n_rows):
        return n
    if n >= hi.shape[1]:
        return -1
    if truth:
        hf[HU, n] = u
        hf[HV, n] = v
        hf[HX, n] = x + tx * t
        hf[HY, n] = y + ty * t
        hz[n] = z + t
        hf[HTX, n] = tx
        hf[HTY, n] = ty
    hi[HPART, n] = particle
    hi[HMOD, n] = m
    hi[HSENS, n] = sensor
    hi[HROW, n] = int(rowf)
    first = -1
    size = 0
    if efficiency >= 1.0 or rng.random() < efficiency:
        half = 0.5 * mod_f[m, THICKNESS] * mod_f[m, INV_PITCH] * abs(du * inv_dw)
        first, size = fired_strips(q - half, q + half, n_strips, threshold)
    hi[HSTRIP, n] = first
    hi[HSIZE, n] = size
    return n + 1


@njit(cache=True, error_model="numpy", inline="always")
def trace_track(rng: Any, x: float, y: float, z: float, tx: float, ty: float, p: float, beta: float, direction: int,
                particle: int, layer_kind: np.ndarray, layer_index: np.ndarray, mod_f: np.ndarray, mod_i: np.ndarray,
                tgt_f: np.ndarray, mcs_scale: float, tail_fraction: float, tail_scale: float, threshold: float,
                efficiency: float, truth: bool, hf: np.ndarray, hz: np.ndarray, hi: np.ndarray, n: int) -> int:  # pragma: no cover - numba
    """Trace one track from (x, y, z) with slopes (tx, ty) (``direction`` +1 downstream, -1
    upstream), writing its sim hits at column ``n, n+1, ...`` of ``hi`` (:data:`HIT_INT_FIELDS`)
    and, when ``truth``, of ``hf`` (:data:`HIT_FLOAT_FIELDS`) and ``hz`` (z) in tracing order; returns the next free row, or -1 when the
    capacity is exceeded. Momentum ``p`` [GeV] and ``beta`` set the Highland width."""
    n_layers = len(layer_kind)
    k = mcs_scale * HIGHLAND_E0 / (p * beta)
    scatter = mcs_scale > 0.0
    first_sensor = 0 if direction > 0 else 1
    for step in range(n_layers):
        li = step if direction > 0 else n_layers - 1 - step
        idx = layer_index[li]
        if layer_kind[li] == LAYER_TARGET:
            zs = tgt_f[idx, Z_START]
            ze = tgt_f[idx, Z_END]
            if direction > 0:
                if ze <= z:
                    continue
                z_in = max(zs, z)
                z_out = ze
            else:
                if zs >= z:
                    continue
                z_in = min(ze, z)
                z_out = zs
            dz = z_out - z_in
            x += tx * (z_out - z)
            y += ty * (z_out - z)
            z = z_out
            if scatter:
                norm = math.sqrt(1.0 + tx * tx + ty * ty)
                path = abs(dz) * norm
                a = _width(rng, k, path / tgt_f[idx, X0_MM], tail_fraction, tail_scale)
                g1 = rng.standard_normal()
                g2 = rng.standard_normal()
                g3 = rng.standard_normal()
                g4 = rng.standard_normal()
                d1 = path * a * (g2 / SQRT12 + 0.5 * g1)
                d2 = path * a * (g4 / SQRT12 + 0.5 * g3)
                if dz < 0.0:
                    d1 = -d1
                    d2 = -d2
                # displacement along e1 = (1, 0, -tx)/sqrt(1 + tx^2) and
                # e2 = (-tx ty, 1 + tx^2, -ty)/(norm sqrt(1 + tx^2)), projected on the exit face
                ax = math.sqrt(1.0 + tx * tx)
                x += d1 / ax - d2 * tx * ty / (norm * ax)
                y += d2 * ax / norm
                tx, ty, ok = scatter_slopes(tx, ty, a * g1, a * g3)
                if not ok:
                    return n
            continue
        # ---- a module: first sensor, thin scatter at the mid-plane, second sensor
        m = idx
        ux, uy, uz = mod_f[m, UX], mod_f[m, UY], mod_f[m, UZ]
        vx, vy, vz = mod_f[m, VX], mod_f[m, VY], mod_f[m, VZ]
        wx, wy, wz = mod_f[m, WX], mod_f[m, WY], mod_f[m, WZ]
        rx, ry, rz = x - mod_f[m, CX], y - mod_f[m, CY], z - mod_f[m, CZ]
        pu = ux * rx + uy * ry + uz * rz
        pv = vx * rx + vy * ry + vz * rz
        pw = wx * rx + wy * ry + wz * rz
        du = ux * tx + uy * ty + uz
        dv = vx * tx + vy * ty + vz
        dw = wx * tx + wy * ty + wz
        if dw == 0.0:
            continue
        inv_dw = 1.0 / dw
        n = _sensor_hit(rng, m, first_sensor, pu, pv, pw, du, dv, inv_dw, x, y, z, tx, ty, direction, particle,
                        mod_f, mod_i, threshold, efficiency, truth, hf, hz, hi, n)
        if n < 0:
            return -1
        t = -pw * inv_dw
        if direction * t >= 0.0:  # the track reaches the mid-plane from its start: scatter there
            x += tx * t
            y += ty * t
            z += t
            pu += du * t
            pv += dv * t
            pw = 0.0
            if scatter:
                a = _module_width(rng, k, mod_f[m, XX0], mod_f[m, LOG_XX0], mod_f[m, SQRT_XX0],
                                  math.sqrt(1.0 + tx * tx + ty * ty) * abs(inv_dw), tail_fraction, tail_scale)
                g1 = rng.standard_normal()
                g2 = rng.standard_normal()
                tx, ty, ok = scatter_slopes(tx, ty, a * g1, a * g2)
                if not ok:
                    return n
                du = ux * tx + uy * ty + uz
                dv = vx * tx + vy * ty + vz
                dw = wx * tx + wy * ty + wz
                if dw == 0.0:
                    continue
                inv_dw = 1.0 / dw
        n = _sensor_hit(rng, m, 1 - first_sensor, pu, pv, pw, du, dv, inv_dw, x, y, z, tx, ty, direction, particle,
                        mod_f, mod_i, threshold, efficiency, truth, hf, hz, hi, n)
        if n < 0:
            return -1
    return n


@njit(cache=True)
def _reverse(truth: bool, hf: np.ndarray, hz: np.ndarray, hi: np.ndarray, a: int, b: int) -> None:  # pragma: no cover - numba
    """Reverse the hit rows [a, b)."""
    b -= 1
    while a < b:
        if truth:
            for k in range(hf.shape[0]):
                hf[k, a], hf[k, b] = hf[k, b], hf[k, a]
            hz[a], hz[b] = hz[b], hz[a]
        for k in range(hi.shape[0]):
            hi[k, a], hi[k, b] = hi[k, b], hi[k, a]
        a += 1
        b -= 1


@njit(cache=True, error_model="numpy")
def simulate_hits(rng: Any, offsets: np.ndarray, px: np.ndarray, py: np.ndarray, pz: np.ndarray, energy: np.ndarray,
                  vx: np.ndarray, vy: np.ndarray, vz: np.ndarray, traced: np.ndarray, beam_px: np.ndarray,
                  beam_py: np.ndarray, beam_pz: np.ndarray, beam_e: np.ndarray, vertex_x: np.ndarray,
                  vertex_y: np.ndarray, vertex_z: np.ndarray, beam_traced: np.ndarray, layer_kind: np.ndarray,
                  layer_index: np.ndarray, mod_f: np.ndarray, mod_i: np.ndarray, tgt_f: np.ndarray, mcs_scale: float,
                  tail_fraction: float, tail_scale: float, threshold: float, efficiency: float, truth: bool, hf: np.ndarray,
                  hz: np.ndarray, hi: np.ndarray, counts: np.ndarray) -> int:  # pragma: no cover - numba
    """Sim hits of a chunk. Per event: the beam muon (if ``beam_traced``) traced upstream from
    the vertex (its hits then reversed into increasing z), then every particle with ``traced``
    (charged, moving downstream) downstream from its production vertex. ``offsets`` (n_events + 1)
    index the flat particle arrays; ``counts`` receives the hits per event. ``hi`` holds the
    integer hit fields (:data:`HIT_INT_FIELDS`, see :func:`hit_arrays`), ``hf`` and ``hz`` the
    truth coordinates (:data:`HIT_FLOAT_FIELDS` and z), written only when ``truth``. Returns the
    number of hits, -1 if the arrays are too small."""
    n = 0
    for e in range(len(offsets) - 1):
        start = n
        # the beam muon (index -1, traced upstream) first, then the particles
        for i in range(offsets[e] - 1, offsets[e + 1]):
            if i < offsets[e]:
                if not beam_traced[e]:
                    continue
                bx, by, bz, be = beam_px[e], beam_py[e], beam_pz[e], beam_e[e]
                x0, y0, z0 = vertex_x[e], vertex_y[e], vertex_z[e]
                direction = -1
            else:
                if not traced[i]:
                    continue
                bx, by, bz, be = px[i], py[i], pz[i], energy[i]
                x0, y0, z0 = vx[i], vy[i], vz[i]
                direction = 1
            p = math.sqrt(bx * bx + by * by + bz * bz)
            n = trace_track(rng, x0, y0, z0, bx / bz, by / bz, p, p / be, direction, i - offsets[e], layer_kind,
                            layer_index, mod_f, mod_i, tgt_f, mcs_scale, tail_fraction, tail_scale, threshold,
                            efficiency, truth, hf, hz, hi, n)
            if n < 0:
                return -1
            if direction < 0:
                _reverse(truth, hf, hz, hi, start, n)
        counts[e] = n - start
    return n


# ---------------------------------------------------------------------------------------------
# raw words
# ---------------------------------------------------------------------------------------------


def noise_words(rng: np.random.Generator, n_events: int, occupancy: float, tables: DetectorTables) -> tuple[np.ndarray, np.ndarray]:
    """Noise: per event a Poisson number of fired strips with mean ``occupancy`` x (all strips of
    the detector), each uniform over all strips (equivalent to independent Poisson(occupancy x
    strips) counts per sensor with uniform positions). Returns (counts per event, words)."""
    total_strips = int(tables.strips_per_module.sum())
    if occupancy <= 0.0 or total_strips == 0 or n_events == 0:
        return np.zeros(n_events, np.int64), np.zeros(0, np.uint32)
    counts = rng.poisson(occupancy * total_strips, n_events).astype(np.int64)
    g = rng.integers(0, total_strips, int(counts.sum()), dtype=np.int64)
    ends = np.cumsum(tables.strips_per_module)
    module = np.searchsorted(ends, g, side="right")
    rem = g - (ends[module] - tables.strips_per_module[module])
    n_strips = tables.mod_i[module, N_STRIPS]
    per_sensor = tables.mod_i[module, N_ROWS] * n_strips
    sensor, rem = np.divmod(rem, per_sensor)
    row, strip = np.divmod(rem, n_strips)
    return counts, pack_strip_words(module, sensor, row, strip)


@njit(cache=True)
def _insertion_sort(a: np.ndarray, lo: int, hi: int) -> None:  # pragma: no cover - numba
    """Sort a[lo:hi] in place."""
    for i in range(lo + 1, hi):
        v = a[i]
        j = i - 1
        while j >= lo and a[j] > v:
            a[j + 1] = a[j]
            j -= 1
        a[j + 1] = v


@njit(cache=True)
def merge_words(hit_counts: np.ndarray, hit_module: np.ndarray, hit_sensor: np.ndarray, hit_row: np.ndarray,
                hit_strip: np.ndarray, hit_size: np.ndarray, noise_counts: np.ndarray, noise: np.ndarray,
                n_modules: int, out: np.ndarray, counts: np.ndarray) -> int:  # pragma: no cover - numba
    """The raw words of each event: the fired strips of its hits and its noise words, sorted and
    without duplicates (two particles, or a particle and noise, on one strip give one word).

    Per event a counting sort on the sensor key (word >> 11: module and sensor) over the range of
    keys present, then an insertion sort inside each sensor (a few clusters), then duplicates are
    dropped. ``out`` must hold sum(hit_size) + len(noise) words; ``counts`` receives the words per
    event. Returns the total number of words."""
    # scratch for one event's words
    longest = 0
    h = 0
    for e in range(len(hit_counts)):
        nw = noise_counts[e]
        for _ in range(hit_counts[e]):
            nw += hit_size[h]
            h += 1
        longest = max(longest, nw)
    scratch = np.empty(longest, np.uint32)
    bucket = np.zeros(2 * n_modules + 2, np.int64)
    h = 0
    k = 0
    m = 0
    for e in range(len(hit_counts)):
        start = 0
        pos = 0
        for _ in range(hit_counts[e]):
            for s in range(hit_size[h]):
                scratch[pos] = pack_strip_word(hit_module[h], hit_sensor[h], hit_row[h], hit_strip[h] + s)
                pos += 1
            h += 1
        for _ in range(noise_counts[e]):
            scratch[pos] = noise[k]
            pos += 1
            k += 1
        nw = pos - start
        first_out = m
        if nw == 1:
            out[m] = scratch[start]
            m += 1
        elif nw > 1:
            kmin = np.int64(scratch[start] >> 11)
            kmax = kmin
            for i in range(start, pos):
                key = np.int64(scratch[i] >> 11)
                if key < kmin:
                    kmin = key
                if key > kmax:
                    kmax = key
            nk = kmax - kmin + 1
            for i in range(start, pos):
                bucket[np.int64(scratch[i] >> 11) - kmin + 1] += 1
            for b in range(1, nk + 1):
                bucket[b] += bucket[b - 1]
            for i in range(start, pos):
                b = np.int64(scratch[i] >> 11) - kmin
                out[first_out + bucket[b]] = scratch[i]
                bucket[b] += 1
            # bucket[b] is now the end of sensor key b: sort inside each sensor
            lo = first_out
            for b in range(nk):
                hi = first_out + bucket[b]
                if hi - lo > 1:
                    _insertion_sort(out, lo, hi)
                lo = hi
            for b in range(nk + 1):
                bucket[b] = 0
            m = first_out + 1
            for i in range(first_out + 1, first_out + nw):
                if out[i] != out[m - 1]:
                    out[m] = out[i]
                    m += 1
        counts[e] = m - first_out
    return m
