"""a_mu^HLO from a space-like Delta_alpha_had (PHYSICS.md section 5) and its parameter gradient.

Master integral (Carloni Calame, Passera, Trentadue, Venanzoni, PLB 746 (2015) 325):

    a_mu^HLO = (alpha/pi) int_0^1 dx (1 - x) Delta_alpha_had[t(x)],   t(x) = x^2 m_mu^2 / (x - 1).

Numerics. With y = -ln(1 - x) the integral becomes (alpha/pi) int_0^inf dy e^(-2y) Delta_alpha_had(t),
whose integrand is smooth (the ln|t| growth of Delta_alpha_had as x -> 1 is tamed; near x = 0 it
goes as x^2). It is integrated with 16-point Gauss-Legendre panels of width 0.25 in y, up to
y = -ln(1 - x_max) or, for the full integral, y = 40 (the rest is below 1e-30 relative).
Convergence is tested by halving the panels and against scipy's adaptive quadrature in x.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from muone.physics.constants import ALPHA_OVER_PI, M_MU
from muone.physics.errors import PhysicsInputError
from muone.physics.hadronic import HadronicModel
from muone.physics.model_table import hadronic_model
from muone.physics.quadrature import composite_nodes

__all__ = ["amu_hlo", "amu_hlo_from_params", "amu_hlo_gradient", "amu_hlo_uncertainty"]

_Y_END = 40.0
_PANEL_WIDTH = 0.25


def amu_hlo(model, x_max=None, *, panel_width: float = _PANEL_WIDTH) -> float:
    """Leading-order hadronic a_mu from the space-like master integral (dimensionless).

    a_mu^HLO = (alpha/pi) int_0^{x_max} dx (1 - x) Delta_alpha_had[t(x)], x_max = 1 if None
    (PHYSICS.md section 5). ``model``: a hadronic model (or its steering table, or any callable
    Delta_alpha_had(t)). Models that diverge as x -> 1 (``requires_x_max``, e.g. Pol2) need
    ``x_max`` < 1. Check value: LeptonLike(0.13724, 0.0525) gives 689.0e-10; at 160 GeV
    x_max = x(t_min) = 0.936 holds ~88 % of it.
    """
    if isinstance(model, Mapping):
        model = hadronic_model(model)
    if model is None or not callable(model):
        raise PhysicsInputError(f"amu_hlo needs a hadronic model (not {model!r})")
    if x_max is not None:
        x_max = float(x_max)
        if not 0.0 <= x_max <= 1.0 or math.isnan(x_max):
            raise PhysicsInputError(f"x_max must be in [0, 1], got {x_max}")
        if x_max == 1.0:
            x_max = None
    if x_max is None and getattr(model, "requires_x_max", False):
        name = getattr(model, "name", type(model).__name__)
        raise PhysicsInputError(
            f"the a_mu master integral of model {name} diverges as x -> 1: give x_max < 1 "
            "(e.g. x_max(E) = x(t_min(E)), 0.936 at 160 GeV)"
        )
    if x_max == 0.0:
        return 0.0
    y_end = _Y_END if x_max is None else -math.log1p(-x_max)
    n = max(1, math.ceil(y_end / panel_width))
    y, w = composite_nodes(np.linspace(0.0, y_end, n + 1), 16)
    x = -np.expm1(-y)
    t = -(x * x) * M_MU**2 * np.exp(y)  # t(x) = x^2 m^2/(x - 1) with 1 - x = e^-y, finite at x -> 1
    integrand = np.exp(-2.0 * y) * np.asarray(model(t))
    return ALPHA_OVER_PI * float(np.dot(w, integrand))


def _model_from(model_cls, params) -> HadronicModel:
    if isinstance(params, Mapping):
        return model_cls(**params)
    return model_cls(*params)


def _param_items(model_cls, params) -> tuple[list[str], np.ndarray]:
    if isinstance(params, Mapping):
        names = list(params)
        values = np.array([float(v) for v in params.values()])
    else:
        values = np.array([float(v) for v in params])
        fields = list(getattr(model_cls, "__dataclass_fields__", {}))
        names = fields[: len(values)] if fields else [str(i) for i in range(len(values))]
    return names, values


def amu_hlo_from_params(model_cls, params, x_max=None) -> float:
    """a_mu^HLO of ``model_cls(**params)`` (``params`` a dict, or a sequence of positional values)."""
    return amu_hlo(_model_from(model_cls, params), x_max)


def amu_hlo_gradient(model_cls, params, x_max=None, rel_step: float = 1e-4) -> np.ndarray:
    """Gradient d a_mu^HLO / d params, for error propagation (e.g. of a fitted (K, M)).

    ``params``: a dict name -> value (order kept) or a sequence of positional values of
    ``model_cls``. Returns an array in the same order. Five-point central differences with step
    h = rel_step * max(|p|, 1e-3) (relative accuracy ~1e-10 for smooth models; the a_mu integral
    is deterministic quadrature, so there is no noise to amplify). Units: 1/[param].
    """
    names, values = _param_items(model_cls, params)
    grad = np.empty(len(values))
    for i, name in enumerate(names):
        h = rel_step * max(abs(values[i]), 1e-3)

        def at(delta: float) -> float:
            v = values.copy()
            v[i] += delta
            p = dict(zip(names, v)) if isinstance(params, Mapping) else list(v)
            return amu_hlo_from_params(model_cls, p, x_max)

        grad[i] = (-at(2 * h) + 8 * at(h) - 8 * at(-h) + at(-2 * h)) / (12 * h)
    return grad


def amu_hlo_uncertainty(model_cls, params, covariance, x_max=None) -> float:
    """Standard deviation of a_mu^HLO propagated linearly: sqrt(g^T C g), g = amu_hlo_gradient.

    ``covariance``: the parameters' covariance matrix, in the order of ``params``.
    """
    g = amu_hlo_gradient(model_cls, params, x_max)
    cov = np.asarray(covariance, dtype=np.float64)
    if cov.shape != (len(g), len(g)):
        raise PhysicsInputError(f"covariance must be {len(g)}x{len(g)} for parameters {list(params)}, got shape {cov.shape}")
    return float(math.sqrt(max(float(g @ cov @ g), 0.0)))
