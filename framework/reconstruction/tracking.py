"""Kernels of the ``tracking`` processor: straight-line track finding and fitting per station.

Inputs are the flat stub columns of a chunk (``module``, ``row``, ``u``, ``error``) with per-event
offsets, and the tables of :class:`~muone.reconstruction.tracking_geometry.TrackingGeometry`.
Algorithm (docs/reconstruction.md, section ``tracking``), per event and station:

1. **2D candidates.** Every pair of stubs of the two x modules with |slope| <= ``max_slope`` is an
   x-view candidate (a line in the x-z plane through the points where the stubs' strips cross the
   measurement plane); likewise in y.
2. **Pass A (x/y combinations, u/v confirmation).** Each (x, y) combination is a 3D seed line. It
   must cross the strip row (sensor half) of each of its four stubs, and it predicts u at every
   stereo module: the stub closest to the prediction within ``stereo_window`` standard deviations
   of the predicted residual (stub and seed errors, multiple scattering at the seed's momentum
   hypothesis, ``window_floor``), in a compatible row, confirms it. Combinations with at least
   ``min_stubs`` stubs are fitted. Pass A runs twice: first for combinations whose momentum
   hypothesis is at least ``first_pass_momentum`` (narrow windows: beam and pile-up muons,
   energetic electrons), then for the others with the stubs left (at most ``max_shared`` used
   ones): low-momentum hypotheses have wide windows, and combinations of stubs of different
   parallel muons look like low-momentum tracks.
3. **Pass B (one x or y stub missing).** From unused stubs: a pair in one view, one u and one v
   stub give the other view's coordinate at the stereo modules; with one stub of the other view
   this makes a 5-stub seed, which is fitted.
4. **Fit** (:func:`fit_track`): least squares of (x, y, tx, ty) at ``z_ref`` with the exact
   measurement model (the stub's ``u`` is the local coordinate where the line crosses the plane
   ``w = WMEAS`` of its module; linearised, Gauss-Newton until the linearisation error of every
   predicted u is below ``tolerance``) and the full covariance ``V = V_intrinsic + V_mcs``,
   ``V_mcs[i, j] = sum_k theta0_k^2 (z_i - z_k)(z_j - z_k) (a_i a_j + b_i b_j)`` over the
   scatterers k upstream of both measurements, with ``a, b = du/dx, du/dy`` of each measurement
   and theta0 from Highland with the scatterer's x/X0 along the track at the momentum hypothesis
   ``p_hyp`` (:func:`momentum_hypothesis`). The fitted line is the track entering the station's
   first module (scattering upstream of it is not part of the fit).
5. **Outliers**: while chi2/ndf > ``max_chi2_ndf`` and more than ``min_stubs`` stubs remain, the
   stub whose removal lowers chi2 most (computed in closed form, :func:`_worst_hit`) is dropped;
   a candidate still above the cut is rejected.
6. **Selection** (per pass): candidates sorted by number of stubs (descending) then chi2; a
   candidate with more than ``max_shared`` stubs already on accepted tracks of the station is
   dropped.

Units: mm, rad, GeV.
"""

from __future__ import annotations

import math

import numpy as np
from muone.physics.constants import M_E, M_MU
from muone.reconstruction.tracking_geometry import (
    CX,
    CY,
    CZ,
    G0,
    KIND,
    MAX_HITS,
    MAX_STEREO,
    N_ROWS_F,
    N_STEREO,
    NX,
    NY,
    NZ,
    PX,
    PY,
    PZ,
    ROLE,
    S0,
    SC_HI,
    SC_LO,
    SENS,
    SF0,
    STRIP_LENGTH,
    SXX0,
    UX,
    UY,
    UZ,
    VALID,
    VX,
    VY,
    VZ,
    WMEAS,
    WX,
    WY,
    WZ,
    XA,
    XB,
    YA,
    YB,
    ZREF,
)
from muone.simulation.highland import HIGHLAND_E0, HIGHLAND_LOG
from numba import njit

__all__ = [
    "MAX_HITS",
    "OUT_F",
    "OUT_I",
    "PF",
    "PI",
    "STATS",
    "find_tracks",
    "fit_stubs",
    "fit_track",
    "momentum_hypothesis",
    "parameter_arrays",
    "track_chunk",
]

# ---- float parameters (pf) and int parameters (pi) of find_tracks
BEAM_ENERGY, MCS_SCALE, WINDOW, FLOOR, MAX_CHI2_NDF, MAX_SLOPE, ROW_MARGIN, P_MIN, TOL, P_FIRST, P_TOL = range(11)
PF = ("beam_energy", "mcs_scale", "stereo_window", "window_floor", "max_chi2_ndf", "max_slope", "row_margin",
      "min_momentum", "tolerance", "first_pass_momentum", "momentum_tolerance")
MIN_STUBS, MAX_SHARED, ELASTIC_INCOMING, MAX_CAND, SEARCH = range(5)
PI = ("min_stubs", "max_shared", "elastic_incoming", "max_candidates", "combination_search")

#: Counters of :func:`find_tracks` (``stats``).
STATS = ("candidates_lost", "stubs_unknown_module", "combinations", "fits", "fit_iterations")

# ---- output columns (float64): z_ref, x, y, tx, ty, cov (16), chi2, p_hyp
O_ZREF, O_X, O_Y, O_TX, O_TY, O_COV = 0, 1, 2, 3, 4, 5
O_CHI2, O_PHYP = O_COV + 16, O_COV + 17
OUT_F = O_PHYP + 1
# ---- output columns (int32): station, role, ndf, n_stubs
O_STATION, O_ROLE, O_NDF, O_NSTUBS = range(4)
OUT_I = 4
# ---- candidate columns (float64): x, y, tx, ty, cov (16), chi2, p_hyp, ranking score
C_PAR, C_COV, C_CHI2, C_PHYP, C_SCORE = 0, 4, 20, 21, 22
N_CAND_F = 23
MAX_ITER = 8
# ---- rows of the fit's scratch array (MAX_HITS columns)
W_H = 0                      # H: MAX_HITS x 4 (design matrix), later whitened in place
W_V = MAX_HITS               # V: MAX_HITS x MAX_HITS (covariance), then its Cholesky factor
W_R = 2 * MAX_HITS           # residuals, then whitened residuals
W_Z = W_R + 1                # z distance of each crossing from z_ref
W_RL = W_R + 2               # residuals predicted by the linear model
W_N = W_R + 3                # normal matrix 4 x 4 (rows W_N .. W_N + 3), then its Cholesky factor
W_G = W_N + 4                # H^T V^-1 r (4), scratch (4 ...)
W_C = W_G + 1                # scratch column (2 rows)
W_SC = W_C + 2               # scatterers: crossing z (from z_ref) and theta0^2 (2 rows)
W_A = W_SC + 2               # per measurement: sums of th2, th2 z, th2 z^2 over the scatterers upstream (3 rows)
WORK_ROWS = W_A + 3
#: Columns of the fit's scratch array (at least MAX_HITS and the scatterers of a station).
WORK_COLS = 2 * MAX_HITS


# ---------------------------------------------------------------------------------------------
# small pieces
# ---------------------------------------------------------------------------------------------


@njit(cache=True, error_model="numpy")
def momentum_hypothesis(tx: float, ty: float, beam_energy: float, p_min: float) -> float:  # pragma: no cover - numba
    """Momentum hypothesis [GeV] of a track with slopes (tx, ty): the elastic electron energy at the
    track's polar angle theta (tan theta = sqrt(tx^2 + ty^2)), PHYSICS.md section 2, written like
    :func:`muone.physics.electron_energy_from_theta` as ``E_e = m_e + 2 m_e p^2 cos^2 / (s + p^2
    sin^2)`` (p^2 = E^2 - m_mu^2, s = m_mu^2 + m_e^2 + 2 m_e E, E = ``beam_energy``), clipped to
    ``[p_min, beam_energy]``. beta = 1: energy and momentum are not told apart."""
    t2 = tx * tx + ty * ty
    p2 = (beam_energy - M_MU) * (beam_energy + M_MU)
    s = M_MU * M_MU + M_E * M_E + 2.0 * M_E * beam_energy
    # cos^2 = 1/(1 + t2), sin^2 = t2/(1 + t2): E_e = m_e + 2 m_e p^2 / (s (1 + t2) + p^2 t2)
    e = M_E + 2.0 * M_E * p2 / (s * (1.0 + t2) + p2 * t2)
    e = min(e, beam_energy)
    e = max(e, p_min)
    return e


@njit(cache=True, error_model="numpy")
def _slope2_threshold(p_first: float, beam_energy: float, p_min: float) -> float:  # pragma: no cover - numba
    """The largest tx^2 + ty^2 whose :func:`momentum_hypothesis` is at least ``p_first`` (the
    hypothesis decreases with the angle): inverting E_e = m_e + 2 m_e p^2 / (s (1 + t2) + p^2 t2).
    -1 when no slope reaches ``p_first``, inf when every slope does."""
    if p_first <= p_min:
        return np.inf
    if p_first > beam_energy:
        return -1.0
    p2 = (beam_energy - M_MU) * (beam_energy + M_MU)
    s = M_MU * M_MU + M_E * M_E + 2.0 * M_E * beam_energy
    if p_first <= M_E:
        return np.inf
    return (2.0 * M_E * p2 / (p_first - M_E) - s) / (s + p2)


@njit(cache=True, error_model="numpy")
def _intersect(mod_f: np.ndarray, m: int, x: float, y: float, zr: float, tx: float, ty: float) -> tuple[float, float, float]:  # pragma: no cover - numba
    """Where the line (x, y) at z = zr with slopes (tx, ty) crosses the measurement plane of module
    ``m``: local (u, v) and the z distance of the crossing from zr."""
    rx = x - mod_f[m, CX]
    ry = y - mod_f[m, CY]
    rz = zr - mod_f[m, CZ]
    inv = 1.0 / (mod_f[m, WX] * tx + mod_f[m, WY] * ty + mod_f[m, WZ])
    t = (mod_f[m, WMEAS] - (mod_f[m, WX] * rx + mod_f[m, WY] * ry + mod_f[m, WZ] * rz)) * inv
    u = mod_f[m, UX] * (rx + t * tx) + mod_f[m, UY] * (ry + t * ty) + mod_f[m, UZ] * (rz + t)
    v = mod_f[m, VX] * (rx + t * tx) + mod_f[m, VY] * (ry + t * ty) + mod_f[m, VZ] * (rz + t)
    return u, v, t


@njit(cache=True, error_model="numpy")
def _row_ok(mod_f: np.ndarray, m: int, row: int, v: float, margin: float) -> bool:  # pragma: no cover - numba
    """True when local ``v`` lies in strip row ``row`` of module ``m`` within ``margin``."""
    length = mod_f[m, STRIP_LENGTH]
    lo = (row - 0.5 * mod_f[m, N_ROWS_F]) * length
    return lo - margin <= v <= lo + length + margin


@njit(cache=True, error_model="numpy")
def _seed_point(mod_f: np.ndarray, m: int, row: int, u: float, view: int) -> tuple[float, float, float]:  # pragma: no cover - numba
    """(c, z, other) of the point (u, middle of ``row``, WMEAS) of module ``m``: c is its global x
    (view 0) or y (view 1), ``other`` the other coordinate. For x (y) modules, whose strips run
    along y (x), a track crossing the plane at u passes through (c, z) in that view wherever it is
    along the strips."""
    length = mod_f[m, STRIP_LENGTH]
    v = (row + 0.5 - 0.5 * mod_f[m, N_ROWS_F]) * length
    w = mod_f[m, WMEAS]
    x = mod_f[m, CX] + u * mod_f[m, UX] + v * mod_f[m, VX] + w * mod_f[m, WX]
    y = mod_f[m, CY] + u * mod_f[m, UY] + v * mod_f[m, VY] + w * mod_f[m, WY]
    z = mod_f[m, CZ] + u * mod_f[m, UZ] + v * mod_f[m, VZ] + w * mod_f[m, WZ]
    if view == 0:
        return x, z, y
    return y, z, x


@njit(cache=True, error_model="numpy")
def _cholesky(a: np.ndarray, r0: int, n: int) -> bool:  # pragma: no cover - numba
    """In-place Cholesky factor (lower triangle) of the symmetric n x n block of ``a`` starting at
    row ``r0``, column 0 (lower triangle read); False when not (numerically) positive definite."""
    for j in range(n):
        s = a[r0 + j, j]
        for k in range(j):
            s -= a[r0 + j, k] * a[r0 + j, k]
        if not s > 1e-12 * abs(a[r0 + j, j]) or not s > 0.0:
            return False
        d = math.sqrt(s)
        a[r0 + j, j] = d
        inv = 1.0 / d
        for i in range(j + 1, n):
            s = a[r0 + i, j]
            for k in range(j):
                s -= a[r0 + i, k] * a[r0 + j, k]
            a[r0 + i, j] = s * inv
    return True


# ---------------------------------------------------------------------------------------------
# the fit
# ---------------------------------------------------------------------------------------------


@njit(cache=True, error_model="numpy")
def fit_track(hits: np.ndarray, n: int, s_module: np.ndarray, s_u: np.ndarray, s_err: np.ndarray, mod_f: np.ndarray,
              sc_f: np.ndarray, sc_lo: int, sc_hi: int, z_ref: float, par: np.ndarray, cov: np.ndarray,
              fixed_p: float, pf: np.ndarray, work: np.ndarray) -> tuple[float, float, int]:  # pragma: no cover - numba
    """Least-squares straight line through the stubs ``hits[:n]`` (flat stub indices).

    ``par`` (x, y, tx, ty at ``z_ref``) holds the starting values and receives the result; ``cov``
    (16) receives the covariance (row-major 4 x 4). The measurement covariance is the intrinsic
    ``s_err^2`` plus multiple scattering at the scatterers ``sc_f[sc_lo:sc_hi]`` for the momentum
    ``fixed_p`` when > 0, else :func:`momentum_hypothesis` of the current slopes (recomputed each
    iteration). Each Gauss-Newton iteration linearises u(x, y, tx, ty) of every stub at the
    current parameters; it stops when the linearisation error of every predicted u is below
    ``pf[TOL]`` [mm] (either by a bound on the second-order terms, without re-evaluation, or by
    evaluating the model at the new parameters) and the new slopes change the momentum
    hypothesis by less than the relative ``pf[P_TOL]``. On return ``work`` holds the Cholesky factor L of
    V (rows W_V...), the whitened design matrix (rows W_H...) and the whitened residuals at the
    solution (row W_R), used by :func:`_worst_hit`.
    Returns (chi2, p_hyp, iterations); chi2 < 0 when the stubs do not determine the four
    parameters."""
    tol = pf[TOL]
    mcs = pf[MCS_SCALE] * HIGHLAND_E0
    p_hyp = fixed_p
    chi2 = -1.0
    it = 0
    while it < MAX_ITER:
        it += 1
        x, y, tx, ty = par[0], par[1], par[2], par[3]
        if fixed_p <= 0.0:
            p_hyp = momentum_hypothesis(tx, ty, pf[BEAM_ENERGY], pf[P_MIN])
        t_max = 0.0
        q_max = 0.0
        d_min = 1.0
        for i in range(n):
            h = hits[i]
            m = s_module[h]
            rx = x - mod_f[m, CX]
            ry = y - mod_f[m, CY]
            rz = z_ref - mod_f[m, CZ]
            wx = mod_f[m, WX]
            wy = mod_f[m, WY]
            dw = wx * tx + wy * ty + mod_f[m, WZ]
            inv = 1.0 / dw
            t = (mod_f[m, WMEAS] - (wx * rx + wy * ry + mod_f[m, WZ] * rz)) * inv
            ux = mod_f[m, UX]
            uy = mod_f[m, UY]
            q = (ux * tx + uy * ty + mod_f[m, UZ]) * inv
            a = ux - wx * q
            b = uy - wy * q
            work[W_R, i] = s_u[h] - (ux * (rx + t * tx) + uy * (ry + t * ty) + mod_f[m, UZ] * (rz + t))
            work[W_H + i, 0] = a
            work[W_H + i, 1] = b
            work[W_H + i, 2] = a * t
            work[W_H + i, 3] = b * t
            work[W_Z, i] = t
            for j in range(i):
                work[W_V + i, j] = 0.0
            work[W_V + i, i] = s_err[h] * s_err[h]
            t_max = max(t_max, abs(t))
            q_max = max(q_max, abs(q))
            d_min = min(d_min, abs(dw))
        if mcs > 0.0 and sc_hi > sc_lo:
            # V_mcs[i, j] = (a_i a_j + b_i b_j) sum_k th2_k (z_i - z_k)(z_j - z_k) over z_k < min(z_i, z_j),
            # the sum written with the running sums A0, A1, A2 of th2, th2 z_k, th2 z_k^2
            k2 = (mcs / p_hyp) ** 2
            norm = math.sqrt(1.0 + tx * tx + ty * ty)
            nsc = 0
            for k in range(sc_lo, sc_hi):
                dn = sc_f[k, NX] * tx + sc_f[k, NY] * ty + sc_f[k, NZ]
                path = norm / abs(dn)  # path length factor through the layer
                e = path - 1.0
                if abs(e) < 0.05:
                    lg = e * (1.0 - e * (0.5 - e * (1.0 / 3.0 - 0.25 * e)))  # ln(1 + e), error < e^5/5
                else:
                    lg = math.log(path)
                f = sc_f[k, SF0] + HIGHLAND_LOG * lg
                if f <= 0.0 or sc_f[k, SXX0] <= 0.0:
                    continue
                work[W_SC, nsc] = (sc_f[k, NX] * (sc_f[k, PX] - x) + sc_f[k, NY] * (sc_f[k, PY] - y) + sc_f[k, NZ] * (sc_f[k, PZ] - z_ref)) / dn
                work[W_SC + 1, nsc] = k2 * sc_f[k, SXX0] * path * f * f
                nsc += 1
            for i in range(n):
                zi = work[W_Z, i]
                a0 = 0.0
                a1 = 0.0
                a2 = 0.0
                for k in range(nsc):
                    tk = work[W_SC, k]
                    if tk < zi:
                        th2 = work[W_SC + 1, k]
                        a0 += th2
                        a1 += th2 * tk
                        a2 += th2 * tk * tk
                work[W_A, i] = a0
                work[W_A + 1, i] = a1
                work[W_A + 2, i] = a2
            for i in range(n):
                zi = work[W_Z, i]
                ai = work[W_H + i, 0]
                bi = work[W_H + i, 1]
                for j in range(i + 1):
                    zj = work[W_Z, j]
                    lo_ = j if zj <= zi else i
                    sij = zi * zj * work[W_A, lo_] - (zi + zj) * work[W_A + 1, lo_] + work[W_A + 2, lo_]
                    if sij > 0.0:
                        work[W_V + i, j] += (ai * work[W_H + j, 0] + bi * work[W_H + j, 1]) * sij
        if not _cholesky(work, W_V, n):
            return -1.0, p_hyp, it
        # whiten H and r in place (forward substitution with L), keep the raw residuals in W_RL
        srr = 0.0
        for i in range(n):
            work[W_RL, i] = work[W_R, i]
            s0 = work[W_H + i, 0]
            s1 = work[W_H + i, 1]
            s2 = work[W_H + i, 2]
            s3 = work[W_H + i, 3]
            sr = work[W_R, i]
            for k in range(i):
                lik = work[W_V + i, k]
                s0 -= lik * work[W_H + k, 0]
                s1 -= lik * work[W_H + k, 1]
                s2 -= lik * work[W_H + k, 2]
                s3 -= lik * work[W_H + k, 3]
                sr -= lik * work[W_R, k]
            inv = 1.0 / work[W_V + i, i]
            work[W_H + i, 0] = s0 * inv
            work[W_H + i, 1] = s1 * inv
            work[W_H + i, 2] = s2 * inv
            work[W_H + i, 3] = s3 * inv
            work[W_R, i] = sr * inv
            srr += work[W_R, i] * work[W_R, i]
        n00 = n10 = n11 = n20 = n21 = n22 = n30 = n31 = n32 = n33 = 0.0
        g0 = g1 = g2 = g3 = 0.0
        for i in range(n):
            h0 = work[W_H + i, 0]
            h1 = work[W_H + i, 1]
            h2 = work[W_H + i, 2]
            h3 = work[W_H + i, 3]
            ri = work[W_R, i]
            n00 += h0 * h0
            n10 += h1 * h0
            n11 += h1 * h1
            n20 += h2 * h0
            n21 += h2 * h1
            n22 += h2 * h2
            n30 += h3 * h0
            n31 += h3 * h1
            n32 += h3 * h2
            n33 += h3 * h3
            g0 += h0 * ri
            g1 += h1 * ri
            g2 += h2 * ri
            g3 += h3 * ri
        work[W_N, 0] = n00
        work[W_N + 1, 0] = n10
        work[W_N + 1, 1] = n11
        work[W_N + 2, 0] = n20
        work[W_N + 2, 1] = n21
        work[W_N + 2, 2] = n22
        work[W_N + 3, 0] = n30
        work[W_N + 3, 1] = n31
        work[W_N + 3, 2] = n32
        work[W_N + 3, 3] = n33
        work[W_G, 0] = g0
        work[W_G, 1] = g1
        work[W_G, 2] = g2
        work[W_G, 3] = g3
        if not _cholesky(work, W_N, 4):
            return -1.0, p_hyp, it
        # covariance N^-1 = L^-T L^-1, one column at a time
        for c in range(4):
            for i in range(4):
                s = 1.0 if i == c else 0.0
                for k in range(i):
                    s -= work[W_N + i, k] * work[W_C, k]
                work[W_C, i] = s / work[W_N + i, i]
            for i in range(3, -1, -1):
                s = work[W_C, i]
                for k in range(i + 1, 4):
                    s -= work[W_N + k, i] * work[W_C, k]
                work[W_C, i] = s / work[W_N + i, i]
            for i in range(4):
                cov[4 * i + c] = work[W_C, i]
        d0 = 0.0
        d1 = 0.0
        d2 = 0.0
        d3 = 0.0
        for i in range(4):
            gi = work[W_G, i]
            d0 += cov[i] * gi
            d1 += cov[4 + i] * gi
            d2 += cov[8 + i] * gi
            d3 += cov[12 + i] * gi
        par[0] = x + d0
        par[1] = y + d1
        par[2] = tx + d2
        par[3] = ty + d3
        chi2_lin = srr - (work[W_G, 0] * d0 + work[W_G, 1] * d1 + work[W_G, 2] * d2 + work[W_G, 3] * d3)
        # Bound of the second-order terms of u = pu + (w - pw) du/dw in the step (d_pos, d_slope):
        # |R| <= [d_pos d_sl (1 + q) + t d_sl^2 (1 + q/D)] / D (1 + 2 rho), rho = d_sl/D <= 0.1.
        d_pos = abs(d0) + abs(d1)
        d_sl = abs(d2) + abs(d3)
        rho = d_sl / d_min
        bound = (d_pos * d_sl * (1.0 + q_max) + t_max * d_sl * d_sl * (1.0 + q_max / d_min)) / d_min * (1.0 + 2.0 * rho)
        # the covariance was computed at the momentum hypothesis of the old slopes: iterate again when
        # the new slopes change it by more than the momentum tolerance
        p_ok = True
        if fixed_p <= 0.0 and mcs > 0.0:
            p_new = momentum_hypothesis(par[2], par[3], pf[BEAM_ENERGY], pf[P_MIN])
            p_ok = abs(p_new - p_hyp) <= pf[P_TOL] * p_hyp
        if rho < 0.1 and bound < tol:
            if not p_ok:
                continue
            # whitened residuals at the solution: r_w - H_w delta
            for i in range(n):
                work[W_R, i] -= work[W_H + i, 0] * d0 + work[W_H + i, 1] * d1 + work[W_H + i, 2] * d2 + work[W_H + i, 3] * d3
            chi2 = max(chi2_lin, 0.0)
            break
        # evaluate the model at the new parameters
        worst = 0.0
        for i in range(n):
            h = hits[i]
            u, _v, _t = _intersect(mod_f, s_module[h], par[0], par[1], z_ref, par[2], par[3])
            rnew = s_u[h] - u
            hz = work[W_Z, i]
            # compare with the linear prediction r - H delta (H recovered from L and the whitened H)
            work[W_C + 1, i] = rnew
            worst = max(worst, abs(rnew - work[W_RL, i] + _h_dot(work, i, hz, d0, d1, d2, d3)))
        # whitened residuals at the new parameters and chi2
        chi2 = 0.0
        for i in range(n):
            s = work[W_C + 1, i]
            for k in range(i):
                s -= work[W_V + i, k] * work[W_R, k]
            work[W_R, i] = s / work[W_V + i, i]
            chi2 += work[W_R, i] * work[W_R, i]
        if worst < tol and p_ok:
            break
    return chi2, p_hyp, it


@njit(cache=True, error_model="numpy")
def _h_dot(work: np.ndarray, i: int, t: float, d0: float, d1: float, d2: float, d3: float) -> float:  # pragma: no cover - numba
    """H_i . delta with the unwhitened row H_i = (a, b, a t, b t), recovered from the whitened
    rows: row i of H = L row i times the whitened H (L lower triangular)."""
    s0 = 0.0
    s1 = 0.0
    for k in range(i + 1):
        lik = work[W_V + i, k]
        s0 += lik * work[W_H + k, 0]
        s1 += lik * work[W_H + k, 1]
    return s0 * (d0 + t * d2) + s1 * (d1 + t * d3)


@njit(cache=True, error_model="numpy")
def _worst_hit(n: int, cov: np.ndarray, work: np.ndarray) -> int:  # pragma: no cover - numba
    """The stub whose removal lowers chi2 most, from the state :func:`fit_track` leaves in ``work``.

    Removing measurement i of a generalised least-squares fit lowers chi2 by
    ``(P r)_i^2 / P_ii`` with ``P = V^-1 - V^-1 H C H^T V^-1`` (the same as giving measurement i a
    free offset). With L the Cholesky factor of V, the whitened H_w and residuals e_w:
    ``P r = L^-T e_w`` and ``P_ii = |c_i|^2 - (H_w^T c_i)^T C (H_w^T c_i)``, c_i = L^-1 e_i.
    Stubs the parameters cannot do without (P_ii ~ 0) are never chosen. Returns -1 if none."""
    a = work[W_C + 1]
    c = work[W_C]
    # a = L^-T e_w (back substitution)
    for i in range(n - 1, -1, -1):
        s = work[W_R, i]
        for k in range(i + 1, n):
            s -= work[W_V + k, i] * a[k]
        a[i] = s / work[W_V + i, i]
    best = -1
    best_gain = -1.0
    for i in range(n):
        # c = L^-1 e_i (zero above i)
        cc = 0.0
        h0 = 0.0
        h1 = 0.0
        h2 = 0.0
        h3 = 0.0
        for j in range(i, n):
            s = 1.0 if j == i else 0.0
            for k in range(i, j):
                s -= work[W_V + j, k] * c[k]
            c[j] = s / work[W_V + j, j]
            cc += c[j] * c[j]
            h0 += work[W_H + j, 0] * c[j]
            h1 += work[W_H + j, 1] * c[j]
            h2 += work[W_H + j, 2] * c[j]
            h3 += work[W_H + j, 3] * c[j]
        q = (cov[0] * h0 * h0 + cov[5] * h1 * h1 + cov[10] * h2 * h2 + cov[15] * h3 * h3
             + 2.0 * (cov[1] * h0 * h1 + cov[2] * h0 * h2 + cov[3] * h0 * h3 + cov[6] * h1 * h2 + cov[7] * h1 * h3 + cov[11] * h2 * h3))
        pii = cc - q
        if not pii > 1e-9 * cc:
            continue
        gain = a[i] * a[i] / pii
        if gain > best_gain:
            best_gain = gain
            best = i
    return best


@njit(cache=True, error_model="numpy")
def _evaluate(hits: np.ndarray, n: int, s_module: np.ndarray, s_u: np.ndarray, s_err: np.ndarray, mod_f: np.ndarray,
              sc_f: np.ndarray, sc_lo: int, sc_hi: int, z_ref: float, par0: np.ndarray, fixed_p: float, pf: np.ndarray,
              min_stubs: int, out: np.ndarray, work: np.ndarray, stats: np.ndarray) -> int:  # pragma: no cover - numba
    """Fit the candidate ``hits[:n]`` starting from ``par0``, dropping outliers (the stub whose
    removal lowers chi2 most) while chi2/ndf > max_chi2_ndf and more than ``min_stubs`` stubs
    remain. On success ``hits`` holds the kept stubs, ``out`` (N_CAND_F) the parameters,
    covariance, chi2 and p_hyp, and the number of kept stubs is returned; 0 when rejected."""
    for c in range(4):
        out[C_PAR + c] = par0[c]
    limit = pf[MAX_CHI2_NDF]
    while True:
        stats[3] += 1
        chi2, p_hyp, it = fit_track(hits, n, s_module, s_u, s_err, mod_f, sc_f, sc_lo, sc_hi, z_ref, out[C_PAR:C_PAR + 4],
                                    out[C_COV:C_COV + 16], fixed_p, pf, work)
        stats[4] += it
        if chi2 < 0.0:
            return 0
        if n <= 4 or chi2 <= limit * (n - 4):
            break
        if n - 1 < min_stubs or n - 1 < 4:
            return 0
        drop = _worst_hit(n, out[C_COV:C_COV + 16], work)
        if drop < 0:
            return 0
        for i in range(drop, n - 1):
            hits[i] = hits[i + 1]
        n -= 1
    out[C_CHI2] = chi2
    out[C_PHYP] = p_hyp
    # -2 ln L = chi2 + ln det V (+ const): ranks candidates fitted with different covariances
    det = 1.0
    for i in range(n):
        det *= work[W_V + i, i]
    out[C_SCORE] = chi2 + 2.0 * math.log(det)
    return n


@njit(cache=True, error_model="numpy")
def _sort_by_module(hits: np.ndarray, n: int, s_module: np.ndarray) -> None:  # pragma: no cover - numba
    """Insertion sort of ``hits[:n]`` by module (z order)."""
    for i in range(1, n):
        h = hits[i]
        m = s_module[h]
        j = i - 1
        while j >= 0 and s_module[hits[j]] > m:
            hits[j + 1] = hits[j]
            j -= 1
        hits[j + 1] = h


# ---------------------------------------------------------------------------------------------
# candidate selection
# ---------------------------------------------------------------------------------------------


@njit(cache=True, error_model="numpy")
def _select(nc: int, cand_hits: np.ndarray, cand_n: np.ndarray, cand_f: np.ndarray, rank: np.ndarray, n_tracks: int,
            lo: int, station: int, role: int, z_ref: float, max_shared: int, out_f: np.ndarray, out_i: np.ndarray,
            out_hits: np.ndarray, used: np.ndarray) -> int:  # pragma: no cover - numba
    """Accept candidates in the order (more stubs, then fewer stubs already on tracks accepted
    before this selection, then lower -2 ln L = chi2 + ln det V) unless more than ``max_shared`` of their stubs are on
    accepted tracks (``used``, event-local). Accepted candidates are written at ``n_tracks, ...``
    and their stubs marked used. Returns the new number of tracks, -1 when the outputs are full.

    Preferring fewer shared stubs matters for low-momentum tracks, whose wide multiple-scattering
    errors can give a candidate that borrows a stub of an accepted track a lower chi2 than the one
    with the track's own stub. Ranking by the likelihood rather than chi2 penalises candidates
    whose (wrong) slopes give them a low momentum hypothesis and hence lenient errors."""
    for i in range(nc):
        rank[i] = i
        shared = 0
        for a in range(cand_n[i]):
            if used[cand_hits[i, a] - lo]:
                shared += 1
        rank[nc + i] = cand_n[i] * (MAX_HITS + 1) - shared  # larger first
    for i in range(1, nc):
        c = rank[i]
        j = i - 1
        while j >= 0:
            d = rank[j]
            if rank[nc + d] > rank[nc + c] or (rank[nc + d] == rank[nc + c] and cand_f[d, C_SCORE] <= cand_f[c, C_SCORE]):
                break
            rank[j + 1] = d
            j -= 1
        rank[j + 1] = c
    for i in range(nc):
        c = rank[i]
        shared = 0
        for a in range(cand_n[c]):
            if used[cand_hits[c, a] - lo]:
                shared += 1
        if shared > max_shared:
            continue
        if n_tracks >= len(out_f):
            return -1
        out_f[n_tracks, O_ZREF] = z_ref
        for k in range(4):
            out_f[n_tracks, O_X + k] = cand_f[c, C_PAR + k]
        for k in range(16):
            out_f[n_tracks, O_COV + k] = cand_f[c, C_COV + k]
        out_f[n_tracks, O_CHI2] = cand_f[c, C_CHI2]
        out_f[n_tracks, O_PHYP] = cand_f[c, C_PHYP]
        out_i[n_tracks, O_STATION] = station
        out_i[n_tracks, O_ROLE] = role
        out_i[n_tracks, O_NDF] = cand_n[c] - 4
        out_i[n_tracks, O_NSTUBS] = cand_n[c]
        for a in range(cand_n[c]):
            out_hits[n_tracks, a] = cand_hits[c, a] - lo
            used[cand_hits[c, a] - lo] = True
        n_tracks += 1
    return n_tracks


@njit(cache=True, error_model="numpy")
def _fit_and_select(nc: int, cand_hits: np.ndarray, cand_n: np.ndarray, cand_f: np.ndarray, rank: np.ndarray,
                    n_tracks: int, lo: int, station: int, role: int, z_ref: float, max_shared: int, out_f: np.ndarray,
                    out_i: np.ndarray, out_hits: np.ndarray, used: np.ndarray, s_module: np.ndarray, s_u: np.ndarray,
                    s_err: np.ndarray, mod_f: np.ndarray, sc_f: np.ndarray, sc_lo: int, sc_hi: int, fixed_p: float,
                    pf: np.ndarray, min_stubs: int, work: np.ndarray, stats: np.ndarray) -> int:  # pragma: no cover - numba
    """Pass-A selection with lazy fits: the unfitted candidates (seed parameters in C_PAR, the
    gate score ``sum (d^2/sigma^2 + ln sigma^2)`` of their stereo stubs in C_SCORE) are ranked
    by (more stubs, fewer stubs already used, lower score); in that order each one not sharing
    more than ``max_shared`` stubs with accepted tracks is fitted (with outlier removal) and
    accepted if it passes, so candidates that lose to a better one are never fitted. Returns the
    new number of tracks, -1 when the outputs are full."""
    for i in range(nc):
        rank[i] = i
        shared = 0
        for a in range(cand_n[i]):
            if used[cand_hits[i, a] - lo]:
                shared += 1
        rank[nc + i] = cand_n[i] * (MAX_HITS + 1) - shared  # larger first
    for i in range(1, nc):
        c = rank[i]
        j = i - 1
        while j >= 0:
            d = rank[j]
            if rank[nc + d] > rank[nc + c] or (rank[nc + d] == rank[nc + c] and cand_f[d, C_SCORE] <= cand_f[c, C_SCORE]):
                break
            rank[j + 1] = d
            j -= 1
        rank[j + 1] = c
    for i in range(nc):
        c = rank[i]
        shared = 0
        for a in range(cand_n[c]):
            if used[cand_hits[c, a] - lo]:
                shared += 1
        if shared > max_shared:
            continue
        for k in range(4):
            work[W_C + 1, k] = cand_f[c, C_PAR + k]
        n = _evaluate(cand_hits[c], cand_n[c], s_module, s_u, s_err, mod_f, sc_f, sc_lo, sc_hi, z_ref, work[W_C + 1, 0:4],
                      fixed_p, pf, min_stubs, cand_f[c], work, stats)
        if n == 0:
            continue
        cand_n[c] = n
        if n_tracks >= len(out_f):
            return -1
        out_f[n_tracks, O_ZREF] = z_ref
        for k in range(4):
            out_f[n_tracks, O_X + k] = cand_f[c, C_PAR + k]
        for k in range(16):
            out_f[n_tracks, O_COV + k] = cand_f[c, C_COV + k]
        out_f[n_tracks, O_CHI2] = cand_f[c, C_CHI2]
        out_f[n_tracks, O_PHYP] = cand_f[c, C_PHYP]
        out_i[n_tracks, O_STATION] = station
        out_i[n_tracks, O_ROLE] = role
        out_i[n_tracks, O_NDF] = n - 4
        out_i[n_tracks, O_NSTUBS] = n
        for a in range(n):
            out_hits[n_tracks, a] = cand_hits[c, a] - lo
            used[cand_hits[c, a] - lo] = True
        n_tracks += 1
    return n_tracks


# ---------------------------------------------------------------------------------------------
# the chunk kernel
# ---------------------------------------------------------------------------------------------


@njit(cache=True, error_model="numpy")
def find_tracks(offsets: np.ndarray, s_module: np.ndarray, s_row: np.ndarray, s_u: np.ndarray, s_err: np.ndarray,
                mod_f: np.ndarray, mod_i: np.ndarray, st_i: np.ndarray, st_f: np.ndarray, sc_f: np.ndarray,
                pf: np.ndarray, pi: np.ndarray, out_f: np.ndarray, out_i: np.ndarray, out_hits: np.ndarray,
                counts: np.ndarray, stats: np.ndarray) -> int:  # pragma: no cover - numba
    """Tracks of every event of a chunk (``offsets``: n_events + 1 into the flat stub columns).

    Outputs, filled event after event: ``out_f`` (capacity x OUT_F: z_ref, x, y, tx, ty, cov,
    chi2, p_hyp), ``out_i`` (capacity x OUT_I int32: station, role, ndf, n_stubs), ``out_hits``
    (capacity x MAX_HITS int32: event-local stub indices, in module order), ``counts`` (tracks per
    event). ``stats`` (int64, len(STATS)) is incremented: candidates lost because a station had
    more than max_candidates, stubs of unknown modules (ignored), x/y combinations tried, fits.
    Returns the number of tracks, or -1 when the outputs are too small (call again with more
    room)."""
    n_events = len(offsets) - 1
    n_mod = len(mod_f)
    n_st = len(st_i)
    window2 = pf[WINDOW] * pf[WINDOW]
    floor2 = pf[FLOOR] * pf[FLOOR]
    max_slope = pf[MAX_SLOPE]
    margin = pf[ROW_MARGIN]
    p_first = pf[P_FIRST]
    min_stubs = pi[MIN_STUBS]
    max_shared = pi[MAX_SHARED]
    cap = pi[MAX_CAND]
    need_stereo = min_stubs - 4 if min_stubs > 4 else 0
    t2_first = _slope2_threshold(pf[P_FIRST], pf[BEAM_ENERGY], pf[P_MIN])
    max_n = 0
    for e in range(n_events):
        max_n = max(max_n, offsets[e + 1] - offsets[e])
    order = np.empty(max_n, np.int64)
    seed_c = np.empty(max_n)
    seed_z = np.empty(max_n)
    seed_s = np.empty(max_n)
    seed_v0 = np.empty(max_n)   # v of the seed point without the other view's coordinate
    seed_vs = np.empty(max_n)   # dv / d(other coordinate)
    row_lo = np.empty(max_n)    # the stub's strip row in v, widened by row_margin
    row_hi = np.empty(max_n)
    used = np.zeros(max_n, np.bool_)
    mlo = np.zeros(n_mod, np.int64)
    mhi = np.zeros(n_mod, np.int64)
    # 2D candidates: stub a, stub b, coordinate at z_ref, slope
    pair_i = np.empty((2, cap, 2), np.int64)
    pair_f = np.empty((2, cap, 2 + 4 * MAX_STEREO))
    n_pairs = np.zeros(2, np.int64)
    cand_hits = np.empty((cap, MAX_HITS), np.int64)
    cand_n = np.empty(cap, np.int64)
    cand_f = np.empty((cap, N_CAND_F))
    rank = np.empty(2 * cap, np.int64)
    hits = np.empty(MAX_HITS, np.int64)
    par0 = np.empty(4)
    work = np.empty((WORK_ROWS, WORK_COLS))
    y_sorted = np.empty((MAX_STEREO, cap), np.int64)
    y_var_max = np.empty(2 * MAX_STEREO)
    y_ok = np.empty(cap, np.int64)
    tried = np.zeros(cap, np.int64)
    iy_list = np.empty(cap, np.int64)
    stamp = 0
    search = pi[SEARCH]
    n_tracks = 0
    for e in range(n_events):
        lo = offsets[e]
        hi = offsets[e + 1]
        ne = hi - lo
        start_tracks = n_tracks
        # ---- stubs by module
        ordered = True
        for i in range(lo + 1, hi):
            if s_module[i] < s_module[i - 1]:
                ordered = False
                break
        if ordered:
            for k in range(ne):
                order[k] = lo + k
        else:
            srt = np.argsort(s_module[lo:hi], kind="mergesort")
            for k in range(ne):
                order[k] = lo + srt[k]
        for k in range(ne):
            i = order[k]
            used[i - lo] = False
            m = s_module[i]
            if m < 0 or m >= n_mod:
                stats[1] += 1
                continue
            if mhi[m] == 0:
                mlo[m] = k
            mhi[m] = k + 1
            kind = mod_i[m, KIND]
            length = mod_f[m, STRIP_LENGTH]
            row_lo[i - lo] = (s_row[i] - 0.5 * mod_f[m, N_ROWS_F]) * length - margin
            row_hi[i - lo] = row_lo[i - lo] + length + 2.0 * margin
            if kind <= 1:
                c, z, _o = _seed_point(mod_f, m, s_row[i], s_u[i], kind)
                seed_c[i - lo] = c
                seed_z[i - lo] = z
                seed_s[i - lo] = s_err[i] * mod_f[m, SENS]
                # v of the point (c, other, z) of the plane: seed_v0 + seed_vs * other
                if kind == 0:
                    seed_v0[i - lo] = mod_f[m, VX] * (c - mod_f[m, CX]) - mod_f[m, VY] * mod_f[m, CY] + mod_f[m, VZ] * (z - mod_f[m, CZ])
                    seed_vs[i - lo] = mod_f[m, VY]
                else:
                    seed_v0[i - lo] = mod_f[m, VY] * (c - mod_f[m, CY]) - mod_f[m, VX] * mod_f[m, CX] + mod_f[m, VZ] * (z - mod_f[m, CZ])
                    seed_vs[i - lo] = mod_f[m, VX]
        for s in range(n_st):
            if st_i[s, VALID] == 0:
                continue
            n_stereo = st_i[s, N_STEREO]
            role = st_i[s, ROLE]
            z_ref = st_f[s, ZREF]
            sc_lo = st_i[s, SC_LO]
            sc_hi = st_i[s, SC_HI]
            fixed_p = pf[BEAM_ENERGY] if (role == 0 and pi[ELASTIC_INCOMING] == 0) else 0.0
            # ---- 2D candidates in x (view 0) and y (view 1), with their predictions at the
            # stereo modules (coordinate and seed variance at the module's nominal z)
            for view in range(2):
                ma = st_i[s, XA] if view == 0 else st_i[s, YA]
                mb = st_i[s, XB] if view == 0 else st_i[s, YB]
                npv = 0
                for ka in range(mlo[ma], mhi[ma]):
                    la = order[ka] - lo
                    for kb in range(mlo[mb], mhi[mb]):
                        lb = order[kb] - lo
                        dz = seed_z[lb] - seed_z[la]
                        slope = (seed_c[lb] - seed_c[la]) / dz
                        if abs(slope) > max_slope:
                            continue
                        if npv >= cap:
                            stats[0] += 1
                            continue
                        pair_i[view, npv, 0] = la
                        pair_i[view, npv, 1] = lb
                        pair_f[view, npv, 0] = seed_c[la] + slope * (z_ref - seed_z[la])
                        pair_f[view, npv, 1] = slope
                        for k in range(n_stereo):
                            m = st_i[s, S0 + k]
                            zk = mod_f[m, CZ] + mod_f[m, WMEAS] * mod_f[m, WZ]
                            f = (zk - seed_z[la]) / dz
                            sens = mod_f[m, UX] if view == 0 else mod_f[m, UY]
                            ck = seed_c[la] + slope * (zk - seed_z[la])
                            pair_f[view, npv, 2 + k] = ck
                            pair_f[view, npv, 2 + MAX_STEREO + k] = sens * sens * ((1.0 - f) ** 2 * seed_s[la] ** 2 + f * f * seed_s[lb] ** 2)
                            # this view's part of the predicted u and v at the module's nominal z
                            if view == 0:
                                pair_f[view, npv, 2 + 2 * MAX_STEREO + k] = mod_f[m, UX] * (ck - mod_f[m, CX]) + mod_f[m, UZ] * (zk - mod_f[m, CZ])
                                pair_f[view, npv, 2 + 3 * MAX_STEREO + k] = mod_f[m, VX] * (ck - mod_f[m, CX]) + mod_f[m, VZ] * (zk - mod_f[m, CZ])
                            else:
                                pair_f[view, npv, 2 + 2 * MAX_STEREO + k] = mod_f[m, UY] * (ck - mod_f[m, CY])
                                pair_f[view, npv, 2 + 3 * MAX_STEREO + k] = mod_f[m, VY] * (ck - mod_f[m, CY])
                        npv += 1
                n_pairs[view] = npv
            # ================= pass A, twice: high, then low momentum hypotheses
            direct = search == 0 or need_stereo == 0
            for k in range(n_stereo):
                m = st_i[s, S0 + k]
                if mod_f[m, WZ] < 0.9999 or abs(mod_f[m, UY]) < 1e-3:
                    direct = True  # the stereo-driven search assumes modules perpendicular to z
            for sweep in range(2):
                nc = 0
                if sweep == 1 and fixed_p > 0.0:
                    break
                # the y pairs still usable (at most max_shared used stubs)
                n_yl = 0
                for iy in range(n_pairs[1]):
                    if int(used[pair_i[1, iy, 0]]) + int(used[pair_i[1, iy, 1]]) <= max_shared:
                        y_ok[n_yl] = iy
                        n_yl += 1
                if direct:
                    # sorted by ty^2, so that the sweep's slope limit ends the loop early
                    for i in range(1, n_yl):
                        c = y_ok[i]
                        key = pair_f[1, c, 1] ** 2
                        j = i - 1
                        while j >= 0 and pair_f[1, y_ok[j], 1] ** 2 > key:
                            y_ok[j + 1] = y_ok[j]
                            j -= 1
                        y_ok[j + 1] = c
                else:
                    # per stereo module: the y pairs sorted by their coordinate there, and the widest
                    # window (in y) any combination of this sweep can have
                    p_lo = fixed_p if fixed_p > 0.0 else (max(p_first, pf[P_MIN]) if sweep == 0 else pf[P_MIN])
                    for k in range(n_stereo):
                        m = st_i[s, S0 + k]
                        vmax = 0.0
                        for q in range(n_yl):
                            iy = y_ok[q]
                            y_sorted[k, q] = iy
                            vmax = max(vmax, pair_f[1, iy, 2 + MAX_STEREO + k])
                        for q in range(n_pairs[0]):
                            vmax_x = pair_f[0, q, 2 + MAX_STEREO + k]
                            if q == 0 or vmax_x > y_var_max[MAX_STEREO + k]:
                                y_var_max[MAX_STEREO + k] = vmax_x
                        emax = 0.0
                        for km in range(mlo[m], mhi[m]):
                            emax = max(emax, s_err[order[km]])
                        var_max = vmax + y_var_max[MAX_STEREO + k] + st_f[s, G0 + k] * (pf[MCS_SCALE] / p_lo) ** 2 + floor2 + emax * emax
                        y_var_max[k] = math.sqrt(window2 * var_max) / abs(mod_f[m, UY]) * (1.0 + 1e-9)  # half-width in y
                        for i in range(1, n_yl):  # insertion sort by the coordinate at module k
                            c = y_sorted[k, i]
                            key = pair_f[1, c, 2 + k]
                            j = i - 1
                            while j >= 0 and pair_f[1, y_sorted[k, j], 2 + k] > key:
                                y_sorted[k, j + 1] = y_sorted[k, j]
                                j -= 1
                            y_sorted[k, j + 1] = c
                for ix in range(n_pairs[0]):
                    used_x = int(used[pair_i[0, ix, 0]]) + int(used[pair_i[0, ix, 1]])
                    if used_x > max_shared:
                        continue
                    # the y pairs to try with this x pair
                    n_list = 0
                    if direct:
                        tx2 = pair_f[0, ix, 1] ** 2
                        for q in range(n_yl):
                            iy = y_ok[q]
                            if fixed_p <= 0.0:
                                t2 = tx2 + pair_f[1, iy, 1] ** 2
                                if sweep == 0 and t2 > t2_first:
                                    break
                                if sweep == 1 and t2 <= t2_first:
                                    continue
                            iy_list[n_list] = iy
                            n_list += 1
                    else:
                        # stereo-driven: a stub of a stereo module and the x pair give the y the track
                        # must have there; only y pairs within the widest window are tried
                        stamp += 1
                        for k in range(n_stereo):
                            m = st_i[s, S0 + k]
                            zk = mod_f[m, CZ] + mod_f[m, WMEAS] * mod_f[m, WZ]
                            inv_uy = 1.0 / mod_f[m, UY]
                            base = mod_f[m, UX] * (pair_f[0, ix, 2 + k] - mod_f[m, CX]) - mod_f[m, UY] * mod_f[m, CY] + mod_f[m, UZ] * (zk - mod_f[m, CZ])
                            half = y_var_max[k]
                            for km in range(mlo[m], mhi[m]):
                                target = (s_u[order[km]] - base) * inv_uy
                                j = 0
                                while j < n_yl and pair_f[1, y_sorted[k, j], 2 + k] < target - half:
                                    j += 1
                                while j < n_yl and pair_f[1, y_sorted[k, j], 2 + k] <= target + half:
                                    iy = y_sorted[k, j]
                                    j += 1
                                    if tried[iy] != stamp:
                                        tried[iy] = stamp
                                        iy_list[n_list] = iy
                                        n_list += 1
                    for q in range(n_list):  # the combination (ix, iy)
                        iy = iy_list[q]
                        la = pair_i[0, ix, 0]
                        lb = pair_i[0, ix, 1]
                        lya = pair_i[1, iy, 0]
                        lyb = pair_i[1, iy, 1]
                        n_used = int(used[la]) + int(used[lb]) + int(used[lya]) + int(used[lyb])
                        if n_used > max_shared:
                            continue
                        tx = pair_f[0, ix, 1]
                        ty = pair_f[1, iy, 1]
                        if fixed_p <= 0.0 and (tx * tx + ty * ty <= t2_first) != (sweep == 0):
                            continue
                        stats[2] += 1
                        x_ref = pair_f[0, ix, 0]
                        y_ref = pair_f[1, iy, 0]
                        ia = lo + la
                        ib = lo + lb
                        iya = lo + lya
                        iyb = lo + lyb
                        # the rows of the four seed stubs (at their own crossing points)
                        v = seed_v0[la] + seed_vs[la] * (y_ref + ty * (seed_z[la] - z_ref))
                        if v < row_lo[la] or v > row_hi[la]:
                            continue
                        v = seed_v0[lb] + seed_vs[lb] * (y_ref + ty * (seed_z[lb] - z_ref))
                        if v < row_lo[lb] or v > row_hi[lb]:
                            continue
                        v = seed_v0[lya] + seed_vs[lya] * (x_ref + tx * (seed_z[lya] - z_ref))
                        if v < row_lo[lya] or v > row_hi[lya]:
                            continue
                        v = seed_v0[lyb] + seed_vs[lyb] * (x_ref + tx * (seed_z[lyb] - z_ref))
                        if v < row_lo[lyb] or v > row_hi[lyb]:
                            continue
                        p = fixed_p if fixed_p > 0.0 else momentum_hypothesis(tx, ty, pf[BEAM_ENERGY], pf[P_MIN])
                        inv_p2 = (pf[MCS_SCALE] / p) ** 2
                        hits[0] = ia
                        hits[1] = ib
                        hits[2] = iya
                        hits[3] = iyb
                        nh = 4
                        score = 0.0
                        for k in range(st_i[s, N_STEREO]):
                            m = st_i[s, S0 + k]
                            if mhi[m] == 0:
                                continue
                            # u, v at the module's nominal z (exact for modules perpendicular to z;
                            # a gate only: the fit uses the exact crossing)
                            if mod_f[m, WZ] < 0.9999:
                                u, v, _t = _intersect(mod_f, m, x_ref, y_ref, z_ref, tx, ty)
                            else:
                                u = pair_f[0, ix, 2 + 2 * MAX_STEREO + k] + pair_f[1, iy, 2 + 2 * MAX_STEREO + k]
                                v = pair_f[0, ix, 2 + 3 * MAX_STEREO + k] + pair_f[1, iy, 2 + 3 * MAX_STEREO + k]
                            var = pair_f[0, ix, 2 + MAX_STEREO + k] + pair_f[1, iy, 2 + MAX_STEREO + k] + st_f[s, G0 + k] * inv_p2 + floor2
                            best = -1
                            best_d = 0.0
                            for km in range(mlo[m], mhi[m]):
                                i = order[km]
                                if used[i - lo] and n_used >= max_shared:
                                    continue
                                d = s_u[i] - u
                                lim = window2 * (var + s_err[i] * s_err[i])
                                if d * d > lim:
                                    continue
                                if v < row_lo[i - lo] or v > row_hi[i - lo]:
                                    continue
                                if best < 0 or d * d / lim < best_d:
                                    best = i
                                    best_d = d * d / lim
                            if best >= 0:
                                hits[nh] = best
                                nh += 1
                                sig2 = var + s_err[best] * s_err[best]
                                score += best_d * window2 + math.log(sig2)
                                if used[best - lo]:
                                    n_used += 1
                        if nh < min_stubs:
                            continue
                        if nc >= len(cand_n):
                            stats[0] += 1
                            continue
                        _sort_by_module(hits, nh, s_module)
                        for k in range(nh):
                            cand_hits[nc, k] = hits[k]
                        cand_n[nc] = nh
                        cand_f[nc, C_PAR] = x_ref
                        cand_f[nc, C_PAR + 1] = y_ref
                        cand_f[nc, C_PAR + 2] = tx
                        cand_f[nc, C_PAR + 3] = ty
                        cand_f[nc, C_SCORE] = score
                        nc += 1
                if nc > 0:
                    n_tracks = _fit_and_select(nc, cand_hits, cand_n, cand_f, rank, n_tracks, lo, s, role, z_ref, max_shared,
                                               out_f, out_i, out_hits, used, s_module, s_u, s_err, mod_f, sc_f, sc_lo, sc_hi,
                                               fixed_p, pf, min_stubs, work, stats)
                    if n_tracks < 0:
                        return -1
            # ================= pass B: one x or one y stub missing (unused stubs only)
            if min_stubs > 5 or n_stereo < 2:
                continue
            nc = 0
            for single in range(2):  # 0: one x stub and a y pair; 1: one y stub and an x pair
                pview = 1 - single
                sa = st_i[s, XA] if single == 0 else st_i[s, YA]
                sb = st_i[s, XB] if single == 0 else st_i[s, YB]
                n_single = 0
                for k in range(mlo[sa], mhi[sa]):
                    n_single += 1 - int(used[order[k] - lo])
                for k in range(mlo[sb], mhi[sb]):
                    n_single += 1 - int(used[order[k] - lo])
                if n_single == 0:
                    continue
                for ip in range(n_pairs[pview]):
                    la = pair_i[pview, ip, 0]
                    lb = pair_i[pview, ip, 1]
                    if used[la] or used[lb]:
                        continue
                    c_ref = pair_f[pview, ip, 0]
                    slope_p = pair_f[pview, ip, 1]
                    for k1 in range(n_stereo):
                        m1 = st_i[s, S0 + k1]
                        for k2 in range(k1 + 1, n_stereo):
                            m2 = st_i[s, S0 + k2]
                            if mod_i[m1, KIND] == mod_i[m2, KIND]:
                                continue
                            # u at the stereo modules of a line with the single view's coordinate
                            # and slope 0, and the sensitivity of u to that coordinate
                            if pview == 1:
                                u1, _v1, t1 = _intersect(mod_f, m1, 0.0, c_ref, z_ref, 0.0, slope_p)
                                u2, _v2, t2 = _intersect(mod_f, m2, 0.0, c_ref, z_ref, 0.0, slope_p)
                                sens1 = mod_f[m1, UX]
                                sens2 = mod_f[m2, UX]
                            else:
                                u1, _v1, t1 = _intersect(mod_f, m1, c_ref, 0.0, z_ref, slope_p, 0.0)
                                u2, _v2, t2 = _intersect(mod_f, m2, c_ref, 0.0, z_ref, slope_p, 0.0)
                                sens1 = mod_f[m1, UY]
                                sens2 = mod_f[m2, UY]
                            if abs(sens1) < 1e-3 or abs(sens2) < 1e-3:
                                continue
                            for j1 in range(mlo[m1], mhi[m1]):
                                i1 = order[j1]
                                if used[i1 - lo]:
                                    continue
                                c1 = (s_u[i1] - u1) / sens1
                                for j2 in range(mlo[m2], mhi[m2]):
                                    i2 = order[j2]
                                    if used[i2 - lo]:
                                        continue
                                    c2 = (s_u[i2] - u2) / sens2
                                    cm = 0.5 * (c1 + c2)
                                    zm = z_ref + 0.5 * (t1 + t2)
                                    for side in range(2):
                                        mm = sa if side == 0 else sb
                                        for j3 in range(mlo[mm], mhi[mm]):
                                            i3 = order[j3]
                                            l3 = i3 - lo
                                            if used[l3]:
                                                continue
                                            slope_s = (cm - seed_c[l3]) / (zm - seed_z[l3])
                                            if abs(slope_s) > max_slope:
                                                continue
                                            s_ref = seed_c[l3] + slope_s * (z_ref - seed_z[l3])
                                            if single == 0:
                                                par0[0] = s_ref
                                                par0[1] = c_ref
                                                par0[2] = slope_s
                                                par0[3] = slope_p
                                            else:
                                                par0[0] = c_ref
                                                par0[1] = s_ref
                                                par0[2] = slope_p
                                                par0[3] = slope_s
                                            hits[0] = i3
                                            hits[1] = lo + la
                                            hits[2] = lo + lb
                                            hits[3] = i1
                                            hits[4] = i2
                                            rows_ok = True
                                            for k in range(5):
                                                h = hits[k]
                                                _u, v, _t = _intersect(mod_f, s_module[h], par0[0], par0[1], z_ref, par0[2], par0[3])
                                                if not _row_ok(mod_f, s_module[h], s_row[h], v, margin):
                                                    rows_ok = False
                                                    break
                                            if not rows_ok:
                                                continue
                                            if nc >= cap:
                                                stats[0] += 1
                                                continue
                                            stats[2] += 1
                                            _sort_by_module(hits, 5, s_module)
                                            n_ok = _evaluate(hits, 5, s_module, s_u, s_err, mod_f, sc_f, sc_lo, sc_hi, z_ref,
                                                             par0, fixed_p, pf, min_stubs, cand_f[nc], work, stats)
                                            if n_ok > 0:
                                                for k in range(n_ok):
                                                    cand_hits[nc, k] = hits[k]
                                                cand_n[nc] = n_ok
                                                nc += 1
            if nc > 0:
                n_tracks = _select(nc, cand_hits, cand_n, cand_f, rank, n_tracks, lo, s, role, z_ref, max_shared,
                                   out_f, out_i, out_hits, used)
                if n_tracks < 0:
                    return -1
        # ---- reset the module ranges
        for k in range(ne):
            m = s_module[order[k]]
            if 0 <= m < n_mod:
                mlo[m] = 0
                mhi[m] = 0
        counts[e] = n_tracks - start_tracks
    return n_tracks


# ---------------------------------------------------------------------------------------------
# Python drivers
# ---------------------------------------------------------------------------------------------


def parameter_arrays(**values: float) -> tuple[np.ndarray, np.ndarray]:
    """The ``pf`` / ``pi`` arrays of :func:`find_tracks` from keyword values named as in
    :data:`PF` and :data:`PI` (all required except ``combination_search``: 0 (default) tries every
    x/y combination, 1 only those that a stereo stub points to (the same tracks; faster only with
    many tracks per station))."""
    values.setdefault("combination_search", 0)
    pf = np.array([float(values[k]) for k in PF], np.float64)
    pi = np.array([int(values[k]) for k in PI], np.int64)
    return pf, pi


def track_chunk(geometry, pf: np.ndarray, pi: np.ndarray, offsets: np.ndarray, module: np.ndarray, row: np.ndarray,
                u: np.ndarray, error: np.ndarray) -> dict[str, np.ndarray]:
    """Run :func:`find_tracks` on flat stub columns, growing the outputs until they fit.

    Returns ``f`` (n_tracks x OUT_F), ``i`` (n_tracks x OUT_I), ``hits`` (n_tracks x MAX_HITS,
    event-local stub indices, -1 padded), ``counts`` (tracks per event) and ``stats`` (the
    counters named in :data:`STATS`)."""
    offsets = np.ascontiguousarray(offsets, np.int64)
    n_events = len(offsets) - 1
    module = np.ascontiguousarray(module, np.int64)
    row = np.ascontiguousarray(row, np.int64)
    u = np.ascontiguousarray(u, np.float64)
    error = np.ascontiguousarray(error, np.float64)
    capacity = max(64, len(module) // 4 + 16)  # tracks have >= 4 stubs; grown below if ever too small
    while True:
        out_f = np.empty((capacity, OUT_F))
        out_i = np.empty((capacity, OUT_I), np.int32)
        out_hits = np.full((capacity, MAX_HITS), -1, np.int32)
        counts = np.zeros(n_events, np.int64)
        stats = np.zeros(len(STATS), np.int64)
        n = find_tracks(offsets, module, row, u, error, geometry.mod_f, geometry.mod_i, geometry.st_i, geometry.st_f,
                        geometry.sc_f, pf, pi, out_f, out_i, out_hits, counts, stats)
        if n >= 0:
            return {"f": out_f[:n], "i": out_i[:n], "hits": out_hits[:n], "counts": counts, "stats": stats}
        capacity *= 2


def fit_stubs(geometry, station: int, module: np.ndarray, u: np.ndarray, error: np.ndarray, par0: np.ndarray,
              pf: np.ndarray, fixed_p: float = 0.0) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Fit one track through the given stubs (all of them) of ``station`` with :func:`fit_track`,
    starting from ``par0`` (x, y, tx, ty at the station's z_ref). Returns (parameters, 4 x 4
    covariance, chi2, p_hyp); chi2 < 0 when the stubs do not determine the line."""
    module = np.ascontiguousarray(module, np.int64)
    u = np.ascontiguousarray(u, np.float64)
    error = np.ascontiguousarray(error, np.float64)
    n = len(module)
    if n > MAX_HITS:
        raise ValueError(f"at most {MAX_HITS} stubs per track")
    hits = np.arange(MAX_HITS, dtype=np.int64)
    par = np.array(par0, np.float64).copy()
    cov = np.zeros(16)
    work = np.empty((WORK_ROWS, WORK_COLS))
    st = geometry.st_i[station]
    chi2, p_hyp, _ = fit_track(hits, n, module, u, error, geometry.mod_f, geometry.sc_f, int(st[SC_LO]), int(st[SC_HI]),
                            float(geometry.st_f[station, ZREF]), par, cov, float(fixed_p), pf, work)
    return par, cov.reshape(4, 4), float(chi2), float(p_hyp)
