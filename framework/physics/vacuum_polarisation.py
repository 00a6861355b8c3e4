"""Leptonic vacuum polarisation Delta_alpha_lep(t) at one loop, t < 0 (PHYSICS.md section 4).

For one lepton of mass m and beta = sqrt(1 - 4 m^2/t),

    Delta_alpha_l(t) = (alpha/pi) [ -5/9 - 4 m^2/(3t) + (beta/3)(1 + 2 m^2/t) ln((beta+1)/(beta-1)) ]

(the standard one-loop result, e.g. F. Jegerlehner, "The Anomalous Magnetic Moment of the Muon", Springer 2017;
Abbiendi et al., Phys. Scr. 97 (2022) 054007). The bracket is a function of z = -t/m^2 only,
:func:`one_loop_bracket`, which the lepton-like hadronic model reuses.

Numerics. For small z the closed form loses about eps/z^2 of relative precision (the bracket is
O(z) but its terms are O(1/z)). Below ``SERIES_Z_MAX = 1`` the Taylor series of the equivalent
Feynman-parameter integral

    bracket(z) = 2 int_0^1 dx x(1-x) ln(1 + x(1-x) z)
               = 2 sum_{n>=1} (-1)^(n+1) [(n+1)!]^2 / (n (2n+3)!) z^n = z/15 - z^2/140 + ...

is used with ``SERIES_TERMS = 30`` terms (radius of convergence 4, so the truncation error at z = 1
is ~4^-30 ~ 1e-18); above, the closed form with beta - 1 = (4/z)/(beta + 1) and
ln((beta+1)/(beta-1)) = log1p(2/(beta-1)), which is accurate to a few 1e-16 up to z ~ 1e20.
Both agree at the threshold to ~1e-15 relative (tested, together with an mpmath comparison at 50
digits for |t| from 1e-12 to 1e3 GeV^2).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from muone.physics.constants import ALPHA_OVER_PI, M_E, M_MU, M_TAU
from muone.physics.errors import PhysicsInputError, as_float_array, scalar_or_array

__all__ = [
    "SERIES_TERMS",
    "SERIES_Z_MAX",
    "delta_alpha_lep",
    "delta_alpha_lepton",
    "one_loop_bracket",
]

#: Below this z = |t|/m^2 the Taylor series is used instead of the closed form.
SERIES_Z_MAX = 1.0
#: Number of Taylor terms (truncation error ~ (z/4)^SERIES_TERMS).
SERIES_TERMS = 30

_SERIES_COEFFS = np.array(
    [2.0 * (-1) ** (n + 1) * math.factorial(n + 1) ** 2 / (n * math.factorial(2 * n + 3)) for n in range(1, SERIES_TERMS + 1)]
)


@numba.njit(cache=True)
def _bracket_kernel(z: np.ndarray, coeffs: np.ndarray, series_max: float) -> np.ndarray:  # pragma: no cover - numba
    """One-loop bracket b(z) element by element: the same two branches as the numpy reference
    :func:`_one_loop_bracket_numpy` (series below ``series_max``, closed form above)."""
    out = np.empty(z.size)
    for i in range(z.size):
        zi = z[i]
        if not (zi >= 0.0):  # negative (time-like) or NaN
            out[i] = np.nan
        elif zi < series_max:
            acc = 0.0
            for k in range(coeffs.size - 1, -1, -1):
                acc = acc * zi + coeffs[k]
            out[i] = acc * zi
        elif math.isinf(zi):
            out[i] = np.inf
        else:
            beta = math.sqrt(1.0 + 4.0 / zi)
            beta_minus_1 = (4.0 / zi) / (beta + 1.0)
            log_ratio = math.log1p(2.0 / beta_minus_1)
            out[i] = -5.0 / 9.0 + 4.0 / (3.0 * zi) + beta / 3.0 * (1.0 - 2.0 / zi) * log_ratio
    return out


def one_loop_bracket(z):
    """Dimensionless one-loop bracket b(z), z = -t/m^2 >= 0 (space-like): Delta_alpha_l = (alpha/pi) b.

    b(z) = -5/9 + 4/(3z) + (beta/3)(1 - 2/z) ln((beta+1)/(beta-1)), beta = sqrt(1 + 4/z);
    b(z) ~ z/15 for z -> 0 and ~ ln(z)/3 - 5/9 for z -> infinity. Series below SERIES_Z_MAX
    (module docstring). b(0) = 0; z < 0 (time-like) gives NaN; z = inf gives inf. Evaluated by a
    numba kernel (the generators call it for every candidate event); :func:`_one_loop_bracket_numpy`
    is its numpy reference.
    """
    z = as_float_array(z, "z")
    flat = np.ascontiguousarray(z, dtype=np.float64).ravel()
    return scalar_or_array(_bracket_kernel(flat, _SERIES_COEFFS, SERIES_Z_MAX).reshape(z.shape))


def _one_loop_bracket_numpy(z):
    """Numpy reference of :func:`one_loop_bracket` (same branches, array operations)."""
    z = as_float_array(z, "z")
    small = z < SERIES_Z_MAX
    out = np.full(z.shape, np.nan)
    zs = z[small & (z >= 0)]
    acc = np.zeros_like(zs)
    for c in _SERIES_COEFFS[::-1]:
        acc = acc * zs + c
    out[small & (z >= 0)] = acc * zs
    large = ~small & ~np.isnan(z)
    zl = z[large]
    with np.errstate(divide="ignore", invalid="ignore"):
        beta = np.sqrt(1.0 + 4.0 / zl)
        beta_minus_1 = (4.0 / zl) / (beta + 1.0)
        log_ratio = np.log1p(2.0 / beta_minus_1)
        out[large] = -5.0 / 9.0 + 4.0 / (3.0 * zl) + beta / 3.0 * (1.0 - 2.0 / zl) * log_ratio
    out[np.isposinf(z)] = np.inf
    return scalar_or_array(out)


def delta_alpha_lepton(t, m):
    """One-loop vacuum polarisation of one lepton of mass ``m`` [GeV] at space-like t <= 0 [GeV^2].

    Delta_alpha_l(t) = (alpha/pi) b(-t/m^2) with :func:`one_loop_bracket` (PHYSICS.md section 4);
    small |t|: -(alpha/pi) t/(15 m^2). Dimensionless; t > 0 gives NaN.
    """
    t = as_float_array(t, "t")
    m = as_float_array(m, "m")
    if np.any(m <= 0) or not np.all(np.isfinite(m)):
        raise PhysicsInputError(f"lepton mass m must be positive and finite, got {m!r}")
    return scalar_or_array(ALPHA_OVER_PI * np.asarray(one_loop_bracket(-t / (m * m))))


def delta_alpha_lep(t):
    """Leptonic Delta_alpha_lep(t) = sum over e, mu, tau of :func:`delta_alpha_lepton` (one loop).

    ``t`` <= 0 [GeV^2]; dimensionless. At t = t_min(160 GeV) = -0.153 GeV^2 it is 0.0100.
    """
    t = as_float_array(t, "t")
    total = np.zeros(t.shape)
    for m in (M_E, M_MU, M_TAU):
        total = total + ALPHA_OVER_PI * np.asarray(one_loop_bracket(-t / (m * m)))
    return scalar_or_array(total)
