"""Gauss-Legendre building blocks shared by the physics integrals.

All integrals of :mod:`muone.physics` are composite Gauss-Legendre rules in a variable in which
the integrand is smooth (ln|t|, -ln(1 - x), ln s); nodes and weights are built once and reused, so
an integral is a dot product, vectorised and deterministic.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["gauss_legendre", "composite_nodes"]


@lru_cache(maxsize=16)
def gauss_legendre(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of the n-point Gauss-Legendre rule on [-1, 1] (read-only arrays)."""
    x, w = np.polynomial.legendre.leggauss(n)
    x.setflags(write=False)
    w.setflags(write=False)
    return x, w


def composite_nodes(edges, n: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of an n-point Gauss-Legendre rule on each panel [edges[i], edges[i+1]].

    Returns flat arrays (len(edges) - 1) * n long; sum(w * f(x)) integrates f over
    [edges[0], edges[-1]].
    """
    edges = np.asarray(edges, dtype=np.float64)
    x0, w0 = gauss_legendre(n)
    half = 0.5 * np.diff(edges)
    mid = 0.5 * (edges[1:] + edges[:-1])
    nodes = (mid[:, None] + half[:, None] * x0[None, :]).ravel()
    weights = (half[:, None] * w0[None, :]).ravel()
    return nodes, weights
