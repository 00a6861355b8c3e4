"""mu e -> mu e elastic cross section at tree level and with the running coupling (PHYSICS.md sec. 3).

Units: t in GeV^2 (t_min(E) <= t < 0), E the muon beam energy in GeV, dsigma/dt in microbarn/GeV^2,
sigma in microbarn (GeV^-2 -> microbarn with GEV2_TO_UB = 389.3793721).

Integration (:func:`sigma`, :func:`sigma_t`): composite 16-point Gauss-Legendre in u = ln|t|, with
panels at most 0.25 wide, of |t| dsigma/dt. In u the integrand is smooth (the 1/t^2 peak becomes
e^-u; the running coupling's nearest singularities sit at Im u = pi), so the rule converges to
float64 precision (tested against the analytic tree-level integral and an mpmath quadrature).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from muone.physics.constants import ALPHA, E_BEAM_DEFAULT, GEV2_TO_UB, M_E, M_MU
from muone.physics.errors import PhysicsInputError, as_float_array, check_beam_energy, scalar_or_array
from muone.physics.kinematics import (
    _kinetic_from_theta,
    _t_kin_max,
    theta_mu_from_electron_energy,
)
from muone.physics.model_table import hadronic_model
from muone.physics.quadrature import composite_nodes
from muone.physics.vacuum_polarisation import delta_alpha_lep

__all__ = ["dsigma0_dt", "dsigma_dt", "running_factor", "sigma", "sigma_t"]

_PANEL_WIDTH = 0.25  # in ln|t|
_GL_ORDER = 16


def _as_model(had):
    """A hadronic model from a model object, a steering table, a callable or None."""
    if had is None or isinstance(had, Mapping):
        return hadronic_model(had)
    if callable(had):
        return had
    raise PhysicsInputError(f"had must be a hadronic model, a table like {{model = ...}} or None, got {had!r}")


def dsigma0_dt(t, E=E_BEAM_DEFAULT):
    """Tree-level dsigma/dt of mu e -> mu e with full masses [microbarn/GeV^2] (PHYSICS.md sec. 3).

    dsigma0/dt = 4 pi alpha^2 / lambda * [ (s - m_mu^2 - m_e^2)^2 / t^2 + s/t + 1/2 ],
    lambda = lambda(s, m_mu^2, m_e^2) = 4 m_e^2 p^2 and s - m_mu^2 - m_e^2 = 2 m_e E exactly
    (standard one-photon exchange, e.g. Abbiendi et al., Eur. Phys. J. C 77 (2017) 139).
    ``t`` [GeV^2] outside the physical range [t_min(E), 0) gives 0. ``E`` is the beam energy [GeV].
    """
    t = as_float_array(t, "t")
    E = check_beam_energy(E)
    p2 = (E - M_MU) * (E + M_MU)
    s = M_MU**2 + M_E**2 + 2.0 * M_E * E
    tmin = -4.0 * M_E**2 * p2 / s
    with np.errstate(divide="ignore", invalid="ignore"):
        value = (math.pi * ALPHA**2 / (M_E**2 * p2)) * ((2.0 * M_E * E) ** 2 / (t * t) + s / t + 0.5)
    inside = (t < 0) & (t >= tmin * (1.0 + 1e-12))
    return scalar_or_array(np.where(inside, GEV2_TO_UB * value, 0.0))


def running_factor(t, had=None, leptonic=True):
    """Running-coupling factor 1/(1 - Delta_alpha(t))^2 for t <= 0 [GeV^2] (PHYSICS.md sec. 3).

    Delta_alpha = Delta_alpha_lep(t) (if ``leptonic``) + had(t) (if a hadronic model is given: a
    model object, a steering table ``{"model": ...}``, or any callable of t). Dimensionless.
    """
    t = as_float_array(t, "t")
    model = _as_model(had)
    delta = np.zeros(t.shape)
    if leptonic:
        delta = delta + np.asarray(delta_alpha_lep(t))
    if model is not None:
        delta = delta + np.asarray(model(t))
    return scalar_or_array(1.0 / (1.0 - delta) ** 2)


def dsigma_dt(t, E=E_BEAM_DEFAULT, had=None, leptonic=True):
    """dsigma/dt with the running coupling [microbarn/GeV^2]: dsigma0_dt(t, E) * running_factor(t, had, leptonic).

    PHYSICS.md section 3: dsigma/dt = dsigma0/dt / (1 - Delta_alpha_lep(t) - Delta_alpha_had(t))^2.
    ``had`` is a hadronic model (or table, or None for leptonic running only).
    """
    return scalar_or_array(np.asarray(dsigma0_dt(t, E)) * np.asarray(running_factor(t, had, leptonic)))


def _integrate_t(t_hi_abs: float, t_lo_abs: float, E: float, model, running: bool) -> float:
    """int dsigma/dt dt over -t_lo_abs <= t <= -t_hi_abs (0 < t_hi_abs <= t_lo_abs), in microbarn."""
    if not t_lo_abs > t_hi_abs:
        return 0.0
    u0, u1 = math.log(t_hi_abs), math.log(t_lo_abs)
    n = max(1, math.ceil((u1 - u0) / _PANEL_WIDTH))
    u, w = composite_nodes(np.linspace(u0, u1, n + 1), _GL_ORDER)
    a = np.exp(u)
    p2 = (E - M_MU) * (E + M_MU)
    s = M_MU**2 + M_E**2 + 2.0 * M_E * E
    # |t| dsigma0/dt with t = -a, no range check needed inside the physical interval
    integrand = (math.pi * ALPHA**2 / (M_E**2 * p2)) * ((2.0 * M_E * E) ** 2 / a - s + 0.5 * a)
    if running:
        integrand = integrand * np.asarray(running_factor(-a, model, leptonic=True))
    return GEV2_TO_UB * float(np.dot(w, integrand))


def sigma_t(t_lo, t_hi, E=E_BEAM_DEFAULT, had=None, running=True):
    """Cross section [microbarn] for t_lo <= t <= t_hi < 0 [GeV^2], clipped to t >= t_min(E).

    Integral of :func:`dsigma_dt` (``running`` True: leptonic running plus ``had``; False: tree
    level, and then ``had`` must be None). Gauss-Legendre in ln|t| (module docstring).
    """
    E = float(check_beam_energy(E))
    t_lo, t_hi = float(as_float_array(t_lo, "t_lo")), float(as_float_array(t_hi, "t_hi"))
    if not (math.isfinite(t_lo) and math.isfinite(t_hi)) or t_hi >= 0 or t_lo > t_hi:
        raise PhysicsInputError(f"need t_lo <= t_hi < 0 [GeV^2], got t_lo={t_lo}, t_hi={t_hi}")
    model = _check_running(had, running)
    tmin = -4.0 * M_E**2 * (E - M_MU) * (E + M_MU) / (M_MU**2 + M_E**2 + 2.0 * M_E * E)
    return _integrate_t(-t_hi, -max(t_lo, tmin), E, model, running)


def _check_running(had, running):
    model = _as_model(had)
    if not running and model is not None:
        raise PhysicsInputError("a hadronic model was given with running=False: tree level has no Delta_alpha_had")
    return model


def _muon_angle_window(theta_mu_min: float, E: float) -> tuple[float, float] | None:
    """Kinetic-energy interval [T1, T2] where theta_mu >= theta_mu_min (None if empty)."""
    from scipy.optimize import brentq, minimize_scalar  # imported here: only this cut needs it

    T_max = float(_t_kin_max(np.float64(E)))
    if theta_mu_min <= 0:
        return 0.0, T_max

    def theta(T: float) -> float:
        return float(theta_mu_from_electron_energy(M_E + T, E))

    peak = minimize_scalar(lambda T: -theta(T), bounds=(0.0, T_max), method="bounded", options={"xatol": 1e-12 * T_max})
    T_peak = float(peak.x)
    if theta(T_peak) <= theta_mu_min:
        return None
    T1 = brentq(lambda T: theta(T) - theta_mu_min, 0.0, T_peak, xtol=1e-15, rtol=1e-15)
    T2 = brentq(lambda T: theta(T) - theta_mu_min, T_peak, T_max, xtol=1e-15, rtol=1e-15)
    return T1, T2


def sigma(E, ee_min, ee_max=None, had=None, running=True, *, theta_e_max=None, theta_mu_min=None):
    """Elastic mu e cross section [microbarn] for ee_min <= E_e <= ee_max (PHYSICS.md sec. 3).

    ``E``: beam energy [GeV]; ``ee_min``, ``ee_max``: scattered-electron energy cuts [GeV]
    (``ee_max`` None or above the kinematic maximum: up to E_e,max, i.e. t_min). The E_e range is
    translated to t = 2 m_e (m_e - E_e) and dsigma/dt integrated (module docstring).
    ``running``: True for dsigma_dt with leptonic running plus ``had`` (a hadronic model, a table
    or None), False for tree level (``had`` must then be None).
    Optional cuts (keyword-only): ``theta_e_max`` [rad] (electron angle below it, i.e.
    E_e >= E_e(theta_e_max)); ``theta_mu_min`` [rad] (muon angle above it: an E_e window around
    the maximum of theta_mu, found by root finding).
    Check value: sigma(160, 1.0, running=False) = 245.60 microbarn. ``E``, ``ee_min`` and
    ``ee_max`` broadcast; an array in gives an array out.
    """
    model = _check_running(had, running)
    E_arr = check_beam_energy(E)
    lo_arr = as_float_array(ee_min, "ee_min")
    hi_arr = as_float_array(np.inf if ee_max is None else ee_max, "ee_max")
    out = np.empty(np.broadcast(E_arr, lo_arr, hi_arr).shape)
    for idx, (e, lo, hi) in zip(np.ndindex(out.shape), np.broadcast(E_arr, lo_arr, hi_arr)):
        out[idx] = _sigma_one(float(e), float(lo), float(hi), model, running, theta_e_max, theta_mu_min)
    return scalar_or_array(out)


def _sigma_one(E, ee_min, ee_max, model, running, theta_e_max, theta_mu_min) -> float:
    T_max = float(_t_kin_max(np.float64(E)))
    if not math.isfinite(ee_min) or ee_min <= M_E:
        raise PhysicsInputError(
            f"ee_min must be larger than m_e = {M_E} GeV (the cross section diverges as E_e -> m_e), got {ee_min}"
        )
    if math.isnan(ee_max) or ee_max <= ee_min:
        raise PhysicsInputError(f"ee_max must be larger than ee_min, got ee_min={ee_min}, ee_max={ee_max}")
    T_lo, T_hi = ee_min - M_E, min(ee_max - M_E, T_max)
    if theta_e_max is not None:
        if not 0 < theta_e_max <= math.pi / 2:
            raise PhysicsInputError(f"theta_e_max must be in (0, pi/2] rad, got {theta_e_max}")
        T_lo = max(T_lo, float(_kinetic_from_theta(np.float64(theta_e_max), np.float64(E))))
    if theta_mu_min is not None:
        if not 0 <= theta_mu_min < math.pi / 2:
            raise PhysicsInputError(f"theta_mu_min must be in [0, pi/2) rad, got {theta_mu_min}")
        window = _muon_angle_window(float(theta_mu_min), E)
        if window is None:
            return 0.0
        T_lo, T_hi = max(T_lo, window[0]), min(T_hi, window[1])
    if T_hi <= T_lo:
        return 0.0
    return _integrate_t(2.0 * M_E * T_lo, 2.0 * M_E * T_hi, E, model, running)
