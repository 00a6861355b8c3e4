"""Kernel of the ``calo_clustering`` processor: crystal ADC counts -> clusters.

Per event (:func:`cluster_crystals`), with the crystals of an ``n x n`` matrix numbered
``iy * n + ix`` (:class:`muone.geometry.Calorimeter`):

1. **Energies**: ``E = (adc - pedestal) / adc_per_gev`` [GeV] (saturated counts are not
   corrected).
2. **Seeds**: crystals with ``E > seed_threshold`` that are local maxima of their (up to 8)
   neighbours: ``E`` strictly above every neighbour with a lower index and at least equal to every
   neighbour with a higher index (so of two equal neighbouring maxima only the lower index seeds;
   two seeds are never adjacent).
3. **Clusters**: seeds are taken in decreasing energy (ties: lower index first); each takes the
   crystals of the ``size x size`` window centred on it (clipped at the matrix edges) that have
   ``E > cell_threshold`` and belong to no earlier cluster and are not seeds themselves, plus its
   own crystal. A crystal in the window of two seeds therefore goes **whole to the more energetic
   seed** (no energy splitting).
4. **Energy** = ``energy_scale`` x the sum over the cluster's crystals (``energy_scale`` corrects
   the mean lateral leakage out of the window); **position** on the front face: weights
   ``w_i = max(0, log_w0 + ln(E_i / E))`` (logarithmic weighting, ``log_w0 > 0``) or
   ``w_i = E_i`` (linear, ``log_w0 <= 0``), ``x = sum w_i x_i / sum w_i`` with the crystal centres
   ``x_i`` (when no weight is positive: linear weights).

Clusters are written in the order of step 3 (decreasing seed energy).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = ["cluster_crystals", "max_seeds", "window_containment"]


def max_seeds(n: int) -> int:
    """Most seeds an ``n x n`` matrix can hold (seeds are never adjacent)."""
    return ((n + 1) // 2) ** 2


def window_containment(size: int, crystal_size: float, core_fraction: float, core_radius: float, tail_radius: float,
                       n_grid: int = 20) -> float:
    """Mean fraction of a shower's energy inside the ``size x size`` crystal window centred on the
    crystal it hits, for impact points uniform over that crystal, with the two-component lateral
    profile of :mod:`muone.simulation.calorimeter` (lengths in mm). 0.97164 for 3 x 3 crystals of
    28.5 mm with the default profile (R_M = 20 mm)."""
    from muone.simulation.calorimeter import quadrant_integral

    half = 0.5 * size * crystal_size
    grid = ((np.arange(n_grid) + 0.5) / n_grid - 0.5) * crystal_size
    total = 0.0
    for x in grid:
        for y in grid:
            for frac, radius in ((core_fraction, core_radius), (1.0 - core_fraction, tail_radius)):
                a0, a1, b0, b1 = -half - x, half - x, -half - y, half - y
                total += frac * (quadrant_integral(a1, b1, radius) - quadrant_integral(a0, b1, radius)
                                 - quadrant_integral(a1, b0, radius) + quadrant_integral(a0, b0, radius))
    return total / n_grid**2


@njit(cache=True)
def cluster_crystals(adc: np.ndarray, n: int, pedestal: float, adc_per_gev: float, seed_threshold: float,
                     cell_threshold: float, size: int, log_w0: float, energy_scale: float, cell_x: np.ndarray, cell_y: np.ndarray,
                     out_energy: np.ndarray, out_x: np.ndarray, out_y: np.ndarray, out_n_cells: np.ndarray,
                     out_seed: np.ndarray, counts: np.ndarray) -> int:  # pragma: no cover - numba
    """Clusters of every event of ``adc`` ((n_events, n*n) integer counts).

    Outputs (capacity ``n_events * max_seeds(n)``) are filled event after event: ``out_energy``,
    ``out_x``, ``out_y`` (float64, GeV and mm), ``out_n_cells``, ``out_seed`` (int32); ``counts``
    receives the clusters per event. ``cell_x``/``cell_y``: front-face centres of the crystals [mm].
    ``size``: odd window side in crystals; ``energy_scale`` multiplies the summed energy; ``log_w0``
    <= 0 selects linear position weights. Returns the total number of clusters."""
    n_cells = n * n
    half = size // 2
    energy = np.empty(n_cells, np.float64)
    owner = np.empty(n_cells, np.int64)
    seeds = np.empty(n_cells, np.int64)
    n_out = 0
    inv = 1.0 / adc_per_gev
    min_fraction = math.exp(-log_w0) if log_w0 > 0.0 else 0.0
    for e in range(adc.shape[0]):
        for c in range(n_cells):
            energy[c] = (adc[e, c] - pedestal) * inv
            owner[c] = -1
        # ---- seeds: local maxima above threshold
        ns = 0
        for c in range(n_cells):
            ec = energy[c]
            if not (ec > seed_threshold):
                continue
            ix = c % n
            iy = c // n
            is_max = True
            for dy in range(-1, 2):
                for dx in range(-1, 2):
                    if dx == 0 and dy == 0:
                        continue
                    jx = ix + dx
                    jy = iy + dy
                    if jx < 0 or jx >= n or jy < 0 or jy >= n:
                        continue
                    j = jy * n + jx
                    if (j < c and energy[j] >= ec) or (j > c and energy[j] > ec):
                        is_max = False
            if is_max:
                # insertion by decreasing energy (ties: lower index first, as c increases)
                k = ns
                while k > 0 and energy[seeds[k - 1]] < ec:
                    seeds[k] = seeds[k - 1]
                    k -= 1
                seeds[k] = c
                ns += 1
        # ---- clusters in decreasing seed energy (a seed always stays in its own cluster)
        for k in range(ns):
            owner[seeds[k]] = k
        for k in range(ns):
            s = seeds[k]
            sx = s % n
            sy = s // n
            total = 0.0
            nc = 0
            for jy in range(max(0, sy - half), min(n, sy + half + 1)):
                for jx in range(max(0, sx - half), min(n, sx + half + 1)):
                    j = jy * n + jx
                    if j == s or (owner[j] < 0 and energy[j] > cell_threshold):
                        owner[j] = k
                        total += energy[j]
                        nc += 1
            sw = 0.0
            wx = 0.0
            wy = 0.0
            if log_w0 > 0.0 and total > 0.0:
                e_min = total * min_fraction  # crystals below get a zero weight: no log needed
                for jy in range(max(0, sy - half), min(n, sy + half + 1)):
                    for jx in range(max(0, sx - half), min(n, sx + half + 1)):
                        j = jy * n + jx
                        if owner[j] == k and energy[j] > e_min:
                            w = log_w0 + math.log(energy[j] / total)
                            if w > 0.0:
                                sw += w
                                wx += w * cell_x[j]
                                wy += w * cell_y[j]
            if not (sw > 0.0):
                sw = 0.0
                wx = 0.0
                wy = 0.0
                for jy in range(max(0, sy - half), min(n, sy + half + 1)):
                    for jx in range(max(0, sx - half), min(n, sx + half + 1)):
                        j = jy * n + jx
                        if owner[j] == k:
                            sw += energy[j]
                            wx += energy[j] * cell_x[j]
                            wy += energy[j] * cell_y[j]
            if sw > 0.0:
                out_x[n_out] = wx / sw
                out_y[n_out] = wy / sw
            else:  # cannot happen for a seed above a positive threshold
                out_x[n_out] = cell_x[s]
                out_y[n_out] = cell_y[s]
            out_energy[n_out] = total * energy_scale
            out_n_cells[n_out] = nc
            out_seed[n_out] = s
            n_out += 1
        counts[e] = ns
    return n_out
