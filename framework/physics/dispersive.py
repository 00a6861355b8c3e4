"""A dispersive hadronic model: Delta_alpha_had(t) and a_mu^HLO from a simple R(s) (PHYSICS.md sec. 5).

R(s) = sigma(e+e- -> hadrons)/sigma(e+e- -> mu+mu-), sigma_mumu = 4 pi alpha^2/(3s), is modelled as

* rho(770), omega(782), phi(1020) Breit-Wigners,
  sigma_V(s) = 12 pi Gamma_ee Gamma B_had / ((s - M^2)^2 + M^2 Gamma^2), so
  R_V(s) = 9 s Gamma_ee Gamma B_had / (alpha^2 ((s - M^2)^2 + M^2 Gamma^2)), for s >= s_th = 4 m_pi^2;
* a perturbative continuum R = 3 sum_q Q_q^2 (1 + alpha_s/pi): u, d, s (sum Q^2 = 2/3) above
  sqrt(s) = ``sqrt_s_continuum``, plus charm (4/3) above ``sqrt_s_charm`` and bottom (1/3) above
  ``sqrt_s_bottom``, with a constant ``alpha_s``;
* everything multiplied by ``scale`` (1 by default).

From it (PHYSICS.md section 5; e.g. Jegerlehner, Springer 2017, ch. 3 and 4):

    Delta_alpha_had(t) = -(alpha t / (3 pi)) int_{s_th}^inf ds R(s) / (s (s - t))        (t <= 0)
    a_mu^HLO           = (alpha^2 / (3 pi^2)) int_{s_th}^inf ds K(s) R(s) / s,
    K(s)               = int_0^1 dx x^2 (1 - x) / (x^2 + (1 - x) s / m_mu^2).

Numerics. Both integrals use one set of quadrature nodes for the measure R(s) ds: composite
16-point Gauss-Legendre panels in ln s from s_th to S_MAX = 1e12 GeV^2, with breakpoints at the
thresholds and at M^2 + k M Gamma (k = 0, +-1, +-3, +-10, +-30, +-100) of each resonance, refined by
bisection until each panel's integral of R(s) ds/s agrees with its two halves to 1e-13 relative
(panel width at most 0.25 in ln s). Above S_MAX, R is the constant continuum value R_inf and the
tail is added analytically. Delta_alpha_had(t) is then exact quadrature (``delta_alpha_direct``);
``__call__`` uses, for speed,
  - the moment expansion -(alpha t/3 pi) sum_k t^k int R/s^(k+2) for |t| < 1e-3 GeV^2
    (converges for |t| < s_th; 12 terms),
  - a quintic spline of ln(Delta_alpha_had(t)/|t|) in ln|t| on 1600 points for
    1e-3 <= |t| <= 1e16 GeV^2 (analytic in a strip of half-width pi; measured spline error ~1e-14),
  - direct quadrature above 1e16 GeV^2.
The kernel K(s) uses the closed form of Brodsky and de Rafael (Phys. Rev. 168 (1968) 1620),
with x = (1 - beta)/(1 + beta), beta = sqrt(1 - 4 m_mu^2/s):
K = x^2 (2 - x^2)/2 + (1 + x)^2 (1 + 1/x^2) [ln(1 + x) - x + x^2/2] + x^2 (1 + x)/(1 - x) ln x,
with the bracket from its series for x < 0.1 (where it cancels).
"""

from __future__ import annotations

import dataclasses
import math
from functools import cached_property
from typing import ClassVar

import numpy as np

from muone.physics.constants import (
    ALPHA,
    B_HAD_OMEGA,
    B_HAD_PHI,
    B_HAD_RHO,
    GAMMA_EE_OMEGA,
    GAMMA_EE_PHI,
    GAMMA_EE_RHO,
    GAMMA_OMEGA,
    GAMMA_PHI,
    GAMMA_RHO,
    M_MU,
    M_OMEGA,
    M_PHI,
    M_PI,
    M_RHO,
)
from muone.physics.errors import PhysicsInputError, as_float_array, scalar_or_array
from muone.physics.hadronic import HadronicModel, _check_finite
from muone.physics.quadrature import gauss_legendre

__all__ = ["Dispersive", "amu_kernel", "S_THRESHOLD"]

#: Hadronic threshold s_th = 4 m_pi^2 [GeV^2].
S_THRESHOLD = 4.0 * M_PI**2
#: Upper end of the tabulated R(s) quadrature [GeV^2]; above it R is constant and integrated analytically.
S_MAX = 1.0e12

_GL_ORDER = 16
_MAX_PANEL_WIDTH = 0.25  # in ln s
_PANEL_RTOL = 1e-13
_SERIES_T_MAX = 1e-3  # GeV^2: moment expansion below
_SERIES_TERMS = 12
_TABLE_T_MAX = 1e16  # GeV^2: spline up to here, direct quadrature above
_TABLE_POINTS = 1600


def _bracket_log1p(x: np.ndarray) -> np.ndarray:
    """ln(1 + x) - x + x^2/2, from its series for x < 0.1 (the direct form cancels as x^3/3)."""
    out = np.log1p(x) - x + 0.5 * x * x
    small = x < 0.1
    xs = x[small]
    acc = np.zeros_like(xs)
    for k in range(24, 2, -1):  # sum_{k>=3} (-1)^(k+1) x^k / k, truncation < 0.1^25
        acc = acc * xs + (-1.0) ** (k + 1) / k
    out[small] = acc * xs**3
    return out


def amu_kernel(s):
    """One-loop time-like kernel K(s) for s >= 4 m_mu^2 [GeV^2] (dimensionless).

    K(s) = int_0^1 dx x^2 (1 - x) / (x^2 + (1 - x) s/m_mu^2) (PHYSICS.md section 5), evaluated by
    the closed form of Brodsky and de Rafael, Phys. Rev. 168 (1968) 1620 (module docstring);
    K(s) -> m_mu^2/(3 s) for s -> infinity. s below 4 m_mu^2 gives NaN.
    """
    s = as_float_array(s, "s")
    flat = np.atleast_1d(s).astype(np.float64).ravel()
    out = np.full(flat.shape, np.nan)
    ok = flat >= 4.0 * M_MU**2
    sv = flat[ok]
    a = 4.0 * M_MU**2 / sv
    beta = np.sqrt(1.0 - a)
    x = a / (1.0 + beta) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        k = (
            0.5 * x * x * (2.0 - x * x)
            + (1.0 + x) ** 2 * (1.0 + 1.0 / (x * x)) * _bracket_log1p(x)
            + x * x * (1.0 + x) / (1.0 - x) * np.log(x)
        )
    k = np.where(x == 1.0, 0.5 + 8.0 * (math.log(2.0) - 0.5) - 2.0, k)  # s = 4 m_mu^2 limit
    out[ok] = k
    return scalar_or_array(out.reshape(np.shape(s)))


@dataclasses.dataclass(frozen=True, repr=False)
class Dispersive(HadronicModel):
    """Delta_alpha_had(t) from a dispersion integral over a simple R(s) (PHYSICS.md section 5).

    Parameters (all floats; resonance masses and widths are the constants of PHYSICS.md sec. 1):
      ``alpha_s``            constant strong coupling of the continuum (default 0.2),
      ``sqrt_s_continuum``   start of the u, d, s continuum [GeV] (default 1.5),
      ``sqrt_s_charm``       charm threshold [GeV] (default 3.7),
      ``sqrt_s_bottom``      bottom threshold [GeV] (default 10.5),
      ``b_rho``, ``b_omega``, ``b_phi``  hadronic branching fractions (defaults 1, 0.9, 0.98),
      ``scale``              overall factor on R(s) (default 1).
    ``__call__(t)`` is fast (tabulated, see module docstring) and agrees with the direct
    quadrature ``delta_alpha_direct(t)`` to ~1e-11 relative; ``amu_hlo_timelike()`` gives a_mu^HLO
    by the time-like kernel integral, which the space-like :func:`muone.physics.amu_hlo` reproduces.
    """

    alpha_s: float = 0.2
    sqrt_s_continuum: float = 1.5
    sqrt_s_charm: float = 3.7
    sqrt_s_bottom: float = 10.5
    b_rho: float = B_HAD_RHO
    b_omega: float = B_HAD_OMEGA
    b_phi: float = B_HAD_PHI
    scale: float = 1.0

    name: ClassVar[str] = "Dispersive"

    def __post_init__(self) -> None:
        _check_finite(self.name, **{f.name: getattr(self, f.name) for f in dataclasses.fields(self)})
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, float(getattr(self, f.name)))
        for key in ("alpha_s", "b_rho", "b_omega", "b_phi", "scale"):
            if getattr(self, key) < 0:
                raise PhysicsInputError(f"hadronic model Dispersive: parameter {key!r} must be >= 0, got {getattr(self, key)!r}")
        if not (math.sqrt(S_THRESHOLD) < self.sqrt_s_continuum <= self.sqrt_s_charm <= self.sqrt_s_bottom < math.sqrt(S_MAX)):
            raise PhysicsInputError(
                "hadronic model Dispersive: thresholds must satisfy 2 m_pi < 'sqrt_s_continuum' <= "
                f"'sqrt_s_charm' <= 'sqrt_s_bottom' < 1e6 GeV, got {self.sqrt_s_continuum}, "
                f"{self.sqrt_s_charm}, {self.sqrt_s_bottom}"
            )

    # ------------------------------------------------------------------ R(s)
    @property
    def resonances(self) -> dict[str, tuple[float, float, float, float]]:
        """name -> (M [GeV], Gamma [GeV], Gamma_ee [GeV], B_had) of the Breit-Wigner terms."""
        return {
            "rho": (M_RHO, GAMMA_RHO, GAMMA_EE_RHO, self.b_rho),
            "omega": (M_OMEGA, GAMMA_OMEGA, GAMMA_EE_OMEGA, self.b_omega),
            "phi": (M_PHI, GAMMA_PHI, GAMMA_EE_PHI, self.b_phi),
        }

    @property
    def r_infinity(self) -> float:
        """R(s) above the bottom threshold: (11/3) (1 + alpha_s/pi) * scale."""
        return self.scale * (11.0 / 3.0) * (1.0 + self.alpha_s / math.pi)

    def r_ratio(self, s, part: str | None = None):
        """R(s) of the model for s [GeV^2] (0 below s_th = 4 m_pi^2).

        ``part`` selects one contribution: "rho", "omega", "phi" or "continuum" (default: the sum).
        """
        s = as_float_array(s, "s")
        parts = (*self.resonances, "continuum")
        if part is not None and part not in parts:
            raise PhysicsInputError(f"unknown R(s) part {part!r}; known: {', '.join(parts)}")
        total = np.zeros(s.shape)
        above = s >= S_THRESHOLD
        for name, (m, g, gee, b) in self.resonances.items():
            if part in (None, name):
                bw = 9.0 * s * gee * g * b / (ALPHA**2 * ((s - m * m) ** 2 + (m * g) ** 2))
                total = total + np.where(above, bw, 0.0)
        if part in (None, "continuum"):
            k = 1.0 + self.alpha_s / math.pi
            total = total + np.where(s >= self.sqrt_s_continuum**2, 2.0 * k, 0.0)
            total = total + np.where(s >= self.sqrt_s_charm**2, (4.0 / 3.0) * k, 0.0)
            total = total + np.where(s >= self.sqrt_s_bottom**2, (1.0 / 3.0) * k, 0.0)
        return scalar_or_array(self.scale * total)

    # ------------------------------------------------------------------ quadrature of R(s) ds
    @cached_property
    def _nodes(self) -> tuple[np.ndarray, np.ndarray]:
        """Nodes s_i [GeV^2] and weights W_i with sum W_i f(s_i) = int_{s_th}^{S_MAX} R(s) f(s) ds."""
        breaks = {S_THRESHOLD, S_MAX, self.sqrt_s_continuum**2, self.sqrt_s_charm**2, self.sqrt_s_bottom**2}
        for m, g, _, _ in self.resonances.values():
            for k in (0, 1, 3, 10, 30, 100):
                breaks.update({m * m + k * m * g, m * m - k * m * g})
        y_breaks = np.log(sorted(b for b in breaks if S_THRESHOLD <= b <= S_MAX))
        edges: list[float] = []
        for a, b in zip(y_breaks[:-1], y_breaks[1:]):
            n = max(1, math.ceil((b - a) / _MAX_PANEL_WIDTH))
            edges.extend(np.linspace(a, b, n + 1)[:-1])
        edges.append(float(y_breaks[-1]))

        x0, w0 = gauss_legendre(_GL_ORDER)

        def panel(a: float, b: float) -> float:
            y = 0.5 * (a + b) + 0.5 * (b - a) * x0
            return 0.5 * (b - a) * float(np.dot(w0, self.r_ratio(np.exp(y))))

        accepted: list[tuple[float, float]] = []
        stack = [(a, b, panel(a, b), 0) for a, b in zip(edges[:-1], edges[1:])]
        while stack:
            a, b, whole, depth = stack.pop()
            mid = 0.5 * (a + b)
            left, right = panel(a, mid), panel(mid, b)
            if abs(left + right - whole) <= _PANEL_RTOL * abs(left + right) or depth >= 40:
                accepted.extend([(a, mid), (mid, b)])
            else:
                stack.extend([(a, mid, left, depth + 1), (mid, b, right, depth + 1)])
        accepted.sort()
        lo = np.array([p[0] for p in accepted])
        hi = np.array([p[1] for p in accepted])
        y = (0.5 * (lo + hi))[:, None] + (0.5 * (hi - lo))[:, None] * x0[None, :]
        s = np.exp(y).ravel()
        weights = ((0.5 * (hi - lo))[:, None] * w0[None, :]).ravel() * s * np.asarray(self.r_ratio(s))
        s.setflags(write=False)
        weights.setflags(write=False)
        return s, weights

    @property
    def n_nodes(self) -> int:
        """Number of quadrature nodes used for the R(s) integrals."""
        return len(self._nodes[0])

    def delta_alpha_direct(self, t):
        """Delta_alpha_had(t) for t <= 0 [GeV^2] by direct quadrature of the dispersion integral.

        -(alpha t/(3 pi)) [sum_i W_i/(s_i (s_i - t)) + R_inf ln(1 + |t|/S_MAX)/|t|]; slower than
        ``__call__`` (a dot product over all nodes per t), used to build and test the table.
        """
        t = as_float_array(t, "t")
        flat = np.atleast_1d(t).ravel()
        out = np.full(flat.shape, np.nan)
        ok = flat <= 0
        a = -flat[ok]
        s, w = self._nodes
        res = np.empty(a.shape)
        for start in range(0, len(a), 2048):
            chunk = a[start : start + 2048]
            integral = (w[None, :] / (s[None, :] * (s[None, :] + chunk[:, None]))).sum(axis=1)
            with np.errstate(divide="ignore", invalid="ignore"):
                tail = np.where(chunk > 0, np.log1p(chunk / S_MAX) / chunk, 1.0 / S_MAX)
            res[start : start + 2048] = (ALPHA / (3.0 * math.pi)) * chunk * (integral + self.r_infinity * tail)
        out[ok] = res
        return scalar_or_array(out.reshape(np.shape(t)))

    @cached_property
    def _moments(self) -> np.ndarray:
        """I_k = int R(s)/s^(k+2) ds, k = 0.._SERIES_TERMS-1 (with the analytic tail above S_MAX)."""
        s, w = self._nodes
        k = np.arange(_SERIES_TERMS)
        body = (w[None, :] / s[None, :] ** (k[:, None] + 2)).sum(axis=1)
        tail = self.r_infinity / ((k + 1) * S_MAX ** (k + 1.0))
        return body + tail

    @cached_property
    def _table(self):
        from scipy.interpolate import make_interp_spline  # imported here: scipy.interpolate is slow to import

        u = np.linspace(math.log(_SERIES_T_MAX), math.log(_TABLE_T_MAX), _TABLE_POINTS)
        a = np.exp(u)
        q = np.log(np.asarray(self.delta_alpha_direct(-a)) / a)
        return make_interp_spline(u, q, k=5)

    def __call__(self, t):
        """Delta_alpha_had(t) for t <= 0 [GeV^2] (dimensionless; t > 0 gives NaN). Fast, tabulated."""
        t = as_float_array(t, "t")
        flat = np.atleast_1d(t).ravel()
        out = np.full(flat.shape, np.nan)
        a = -flat
        series = (a >= 0) & (a < _SERIES_T_MAX)
        if np.any(series):
            acc = np.zeros(np.count_nonzero(series))
            ts = flat[series]
            for moment in self._moments[::-1]:
                acc = acc * ts + moment
            out[series] = -(ALPHA / (3.0 * math.pi)) * ts * acc
        table = (a >= _SERIES_T_MAX) & (a <= _TABLE_T_MAX)
        if np.any(table):
            at = a[table]
            out[table] = at * np.exp(self._table(np.log(at)))
        beyond = a > _TABLE_T_MAX
        if np.any(beyond):
            out[beyond] = self.delta_alpha_direct(flat[beyond])
        return scalar_or_array(out.reshape(np.shape(t)))

    # ------------------------------------------------------------------ a_mu, time-like
    def amu_hlo_timelike(self, part: str | None = None) -> float:
        """a_mu^HLO = (alpha^2/(3 pi^2)) int_{s_th}^inf ds K(s) R(s)/s (PHYSICS.md section 5).

        ``part`` restricts R(s) to one contribution ("rho", "omega", "phi", "continuum").
        Dimensionless (the Dispersive default gives ~ 6e-8; see docs/physics.md).
        """
        s, w = self._nodes
        r_all = np.asarray(self.r_ratio(s))
        if part is None:
            weights = w
            r_inf = self.r_infinity
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                weights = np.where(r_all > 0, w * np.asarray(self.r_ratio(s, part)) / r_all, 0.0)
            r_inf = self.r_infinity if part == "continuum" else 0.0
        body = float(np.dot(weights, np.asarray(amu_kernel(s)) / s))
        # tail above S_MAX: K(s) = m^2/(3s) (1 + O(m^2/s ln s)), so int R_inf K/s ds = R_inf m^2/(3 S_MAX)
        tail = r_inf * M_MU**2 / (3.0 * S_MAX)
        return ALPHA**2 / (3.0 * math.pi**2) * (body + tail)
