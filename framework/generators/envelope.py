"""Piecewise-constant envelopes for exact, vectorised accept-reject sampling.

A density h(a, b) >= 0 on a rectangle is bounded from above by a constant on each cell of a grid
(the largest value of h found on a sub-lattice of the cell, including its edges and extra
parameter values such as beam energies or target materials, times a safety factor). Proposals
are drawn cell by cell (probability proportional to bound x cell area, then uniformly inside the
cell) and accepted with h / bound. The accepted points are distributed exactly as h provided the
bound holds everywhere; the samplers that use this check ``h / bound <= 1`` on every proposal and
raise if it is ever violated (it never is for the smooth densities of the generators, with the
sub-lattices and safety factors they use).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


class PiecewiseEnvelope:
    """A constant bound per cell of the grid ``a_edges`` x ``b_edges``.

    Args:
        a_edges, b_edges: increasing cell edges (a 1D problem uses ``b_edges = [0, 1]``).
        bound: (len(a_edges) - 1, len(b_edges) - 1) array of cell bounds (>= 0).
    """

    def __init__(self, a_edges: np.ndarray, b_edges: np.ndarray, bound: np.ndarray) -> None:
        self.a_edges = np.asarray(a_edges, np.float64)
        self.b_edges = np.asarray(b_edges, np.float64)
        self.bound = np.asarray(bound, np.float64)
        da, db = np.diff(self.a_edges), np.diff(self.b_edges)
        mass = (self.bound * da[:, None] * db[None, :]).ravel()
        if not np.all(np.isfinite(mass)) or mass.sum() <= 0:
            raise ValueError("the envelope has no positive, finite mass: the density vanishes on the whole domain")
        #: integral of the envelope over the rectangle
        self.integral = float(mass.sum())
        self._cdf = np.cumsum(mass) / self.integral
        self._cdf[-1] = 1.0
        self._nb = len(db)

    @classmethod
    def build(cls, density: Callable[[np.ndarray, np.ndarray], np.ndarray], a_edges: np.ndarray, b_edges: np.ndarray,
              sub: int = 4, safety: float = 1.15) -> PiecewiseEnvelope:
        """Bound ``density(a, b)`` (vectorised; it may itself take the maximum over extra
        parameters) by its largest value on ``sub + 1`` points per cell and dimension, times
        ``safety``."""
        a_edges, b_edges = np.asarray(a_edges, np.float64), np.asarray(b_edges, np.float64)
        na, nb = len(a_edges) - 1, len(b_edges) - 1
        fa = np.linspace(0.0, 1.0, sub + 1)
        a = a_edges[:-1, None] + np.diff(a_edges)[:, None] * fa[None, :]  # (na, sub+1)
        b = b_edges[:-1, None] + np.diff(b_edges)[:, None] * fa[None, :]  # (nb, sub+1)
        A = np.broadcast_to(a[:, None, :, None], (na, nb, sub + 1, sub + 1))
        B = np.broadcast_to(b[None, :, None, :], (na, nb, sub + 1, sub + 1))
        values = np.asarray(density(A.ravel(), B.ravel()), np.float64).reshape(na, nb, (sub + 1) ** 2)
        values = np.where(np.isfinite(values), values, 0.0)
        return cls(a_edges, b_edges, safety * values.max(axis=2))

    def sample(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``n`` proposals: a, b and the bound of their cell."""
        cell = np.searchsorted(self._cdf, rng.random(n), side="right")
        np.minimum(cell, len(self._cdf) - 1, out=cell)
        ia, ib = np.divmod(cell, self._nb)
        a0, b0 = self.a_edges[ia], self.b_edges[ib]
        a = a0 + (self.a_edges[ia + 1] - a0) * rng.random(n)
        b = b0 + (self.b_edges[ib + 1] - b0) * rng.random(n)
        return a, b, self.bound[ia, ib]


def check_ratio(ratio: np.ndarray, what: str) -> None:
    """Raise if an accept-reject ratio exceeds 1 (the envelope would not be a bound)."""
    if ratio.size and np.nanmax(ratio) > 1.0:
        raise RuntimeError(f"{what} sampler envelope violated (max ratio {np.nanmax(ratio):.6f}): report this")


def accept_loop(n: int, propose: Callable[[int], tuple[np.ndarray, dict[str, np.ndarray]]], efficiency: float = 0.5) -> dict[str, np.ndarray]:
    """Repeat ``propose(m) -> (keep mask, columns)`` until ``n`` proposals are kept; returns the
    first ``n`` kept rows of every column (the order of proposals is kept, so results depend only
    on the random stream)."""
    parts: dict[str, list[np.ndarray]] = {}
    have = 0
    while have < n:
        m = int((n - have) / max(efficiency, 0.01) * 1.05) + 64
        keep, cols = propose(m)
        efficiency = max(float(keep.mean()), 0.01)
        for k, v in cols.items():
            parts.setdefault(k, []).append(v[keep])
        have += int(keep.sum())
    return {k: np.concatenate(v)[:n] for k, v in parts.items()}
