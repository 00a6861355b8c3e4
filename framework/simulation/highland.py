"""Multiple Coulomb scattering: the Highland width and the core-plus-tail model of ``sim_tracker``.

Highland (PHYSICS.md section 8, charge 1)::

    theta0 = 0.0136 GeV / (beta p) * sqrt(x/X0) * (1 + 0.038 ln(x/X0))

with ``x`` the path length of the particle through the layer (the layer thickness divided by the
cosine of the angle to the layer normal). ``theta0`` is the RMS of the *projected* angle in each of
two orthogonal planes containing the direction of flight.

Core plus tail: every scatter (one crossing of one layer) is, with probability
``tail_fraction``, drawn with the width ``tail_scale * theta0`` in both planes (a rare hard,
single-scattering-like deflection), otherwise with ``theta0`` (the Gaussian core that the Highland
formula describes, its central 98 %). ``mcs_scale`` multiplies both widths (the multiple-scattering
systematic). The RMS of the projected angle is then
``mcs_scale * theta0 * sqrt(1 - tail_fraction + tail_fraction * tail_scale**2)``
(:func:`effective_rms_factor`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import njit

__all__ = ["HIGHLAND_E0", "HIGHLAND_LOG", "effective_rms_factor", "highland_theta0", "highland_theta0_scalar"]

#: The constants of the Highland formula: 13.6 MeV and 0.038.
HIGHLAND_E0 = 0.0136
HIGHLAND_LOG = 0.038


def highland_theta0(p: Any, beta: Any, x_over_x0: Any) -> Any:
    """Highland projected-angle RMS [rad] for momentum ``p`` [GeV], velocity ``beta`` and path
    length ``x_over_x0`` in radiation lengths (vectorised; 0 where x_over_x0 <= 0; the log factor is
    clipped at 0 for absurdly thin layers, x/X0 < 4e-12)."""
    p, beta, x = (np.asarray(a, np.float64) for a in (p, beta, x_over_x0))
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.maximum(1.0 + HIGHLAND_LOG * np.log(np.where(x > 0, x, 1.0)), 0.0)
        theta = np.where(x > 0, HIGHLAND_E0 / (p * beta) * np.sqrt(np.maximum(x, 0.0)) * factor, 0.0)
    return theta[()] if theta.ndim == 0 else theta


@njit(cache=True)
def highland_theta0_scalar(p: float, beta: float, x_over_x0: float) -> float:  # pragma: no cover - numba
    """:func:`highland_theta0` for one crossing (numba)."""
    if x_over_x0 <= 0.0:
        return 0.0
    factor = 1.0 + HIGHLAND_LOG * math.log(x_over_x0)
    if factor < 0.0:
        factor = 0.0
    return HIGHLAND_E0 / (p * beta) * math.sqrt(x_over_x0) * factor


def effective_rms_factor(tail_fraction: float, tail_scale: float) -> float:
    """RMS of the core-plus-tail projected angle in units of the core width."""
    return math.sqrt(1.0 - tail_fraction + tail_fraction * tail_scale**2)
