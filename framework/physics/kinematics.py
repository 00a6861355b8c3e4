"""Elastic mu e -> mu e kinematics with the electron at rest (PHYSICS.md section 2).

Conventions: the muon beam has energy ``E`` [GeV] (default 160 GeV, the CERN M2 beam) and
momentum p = sqrt(E^2 - m_mu^2); the electron is at rest. ``E_e`` is the scattered electron's
total energy [GeV], ``t`` the electron-line momentum transfer (p_e,in - p_e,out)^2 [GeV^2, t <= 0],
angles are polar angles to the beam [rad].

Numerics. Everything is written in terms of the electron kinetic energy T = E_e - m_e and of
combinations that do not cancel, using the exact identities

    s = m_mu^2 + m_e^2 + 2 m_e E,        lambda(s, m_mu^2, m_e^2) = 4 m_e^2 p^2,
    p^2 + s = (E + m_e)^2,               T_max = 2 m_e p^2 / s,
    electron:  p_z,e = T (E + m_e) / p,  p_T^2 = T (2 m_e p^2 - T s) / p^2,
    muon:      p_z,mu = p - p_z,e,       p_T,mu = p_T,

so angles come from ``arctan2(p_T, p_z)`` and stay accurate for theta ~ 1e-6 rad and for E_e -> m_e
(theta_e -> pi/2). Inputs outside the physical region (E_e < m_e or above its maximum, theta_e
outside [0, pi/2], t > 0, x outside [0, 1]) give NaN, like numpy's ``arcsin(2)``; a beam energy
E <= m_mu raises :class:`~muone.physics.errors.PhysicsInputError` (a ``ValueError``).
"""

from __future__ import annotations

import numpy as np

from muone.physics.constants import E_BEAM_DEFAULT, M_E, M_MU
from muone.physics.errors import as_float_array, check_beam_energy, scalar_or_array

__all__ = [
    "beam_momentum",
    "electron_energy_from_t",
    "electron_energy_from_theta",
    "electron_energy_max",
    "equal_angle_point",
    "kallen_lambda",
    "s_mandelstam",
    "t_from_electron_energy",
    "t_from_x",
    "t_min",
    "theta_e_from_electron_energy",
    "theta_mu_from_electron_energy",
    "theta_mu_from_theta_e",
    "theta_mu_max",
    "x_from_t",
    "x_max",
]

# Relative tolerance within which an electron energy above the kinematic maximum (or a kinetic
# energy below zero) is taken as rounding and clipped to the boundary instead of giving NaN.
_ROUNDING_RTOL = 1e-12


def beam_momentum(E=E_BEAM_DEFAULT):
    """Muon beam momentum p = sqrt(E^2 - m_mu^2) [GeV], written as sqrt((E - m)(E + m))."""
    E = check_beam_energy(E)
    return scalar_or_array(np.sqrt((E - M_MU) * (E + M_MU)))


def s_mandelstam(E=E_BEAM_DEFAULT):
    """Squared centre-of-mass energy s = m_mu^2 + m_e^2 + 2 m_e E [GeV^2] (PHYSICS.md section 2).

    ``E`` is the muon beam energy [GeV] on an electron at rest. At 160 GeV sqrt(s) = 0.41795 GeV.
    """
    E = check_beam_energy(E)
    return scalar_or_array(M_MU**2 + M_E**2 + 2.0 * M_E * E)


def kallen_lambda(x, y, z):
    """Kallen function lambda(x, y, z) = x^2 + y^2 + z^2 - 2xy - 2xz - 2yz (all in GeV^2).

    For y, z >= 0 (squared masses) it is evaluated in the factorised form
    (x - (sqrt y + sqrt z)^2) (x - (sqrt y - sqrt z)^2), which does not cancel near threshold;
    for mu e scattering lambda(s, m_mu^2, m_e^2) = 4 m_e^2 (E^2 - m_mu^2) exactly (PHYSICS.md sec. 2).
    """
    x = as_float_array(x, "x")
    y = as_float_array(y, "y")
    z = as_float_array(z, "z")
    with np.errstate(invalid="ignore"):
        factorised = (x - (np.sqrt(y) + np.sqrt(z)) ** 2) * (x - (np.sqrt(y) - np.sqrt(z)) ** 2)
    expanded = x * x + y * y + z * z - 2.0 * (x * y + x * z + y * z)
    return scalar_or_array(np.where((y >= 0) & (z >= 0), factorised, expanded))


def _lambda_mue(E: np.ndarray) -> np.ndarray:
    return 4.0 * M_E**2 * (E - M_MU) * (E + M_MU)


def t_min(E=E_BEAM_DEFAULT):
    """Most negative momentum transfer t_min = -lambda(s, m_mu^2, m_e^2)/s [GeV^2].

    PHYSICS.md section 2; at 160 GeV t_min = -0.15307 GeV^2 (the physical range is t_min <= t <= 0).
    """
    E = check_beam_energy(E)
    return scalar_or_array(-_lambda_mue(E) / (M_MU**2 + M_E**2 + 2.0 * M_E * E))


def electron_energy_max(E=E_BEAM_DEFAULT):
    """Largest scattered-electron energy E_e,max = m_e - t_min/(2 m_e) = m_e + 2 m_e p^2/s [GeV]."""
    E = check_beam_energy(E)
    return scalar_or_array(M_E + _t_kin_max(E))


def _t_kin_max(E: np.ndarray) -> np.ndarray:
    """Largest electron kinetic energy T_max = 2 m_e p^2 / s [GeV]."""
    return 2.0 * M_E * (E - M_MU) * (E + M_MU) / (M_MU**2 + M_E**2 + 2.0 * M_E * E)


def _kinetic_energy(E_e: np.ndarray, E: np.ndarray) -> np.ndarray:
    """T = E_e - m_e, clipped to [0, T_max] within rounding; NaN outside the physical range."""
    T = E_e - M_E
    T_max = _t_kin_max(E)
    inside = (T >= -_ROUNDING_RTOL * M_E) & (T <= T_max * (1.0 + _ROUNDING_RTOL))
    return np.where(inside, np.clip(T, 0.0, T_max), np.nan)


def t_from_electron_energy(E_e):
    """Momentum transfer t = 2 m_e^2 - 2 m_e E_e = -2 m_e (E_e - m_e) [GeV^2] (PHYSICS.md sec. 2).

    ``E_e`` is the scattered electron's total energy [GeV]; E_e < m_e gives NaN.
    """
    E_e = as_float_array(E_e, "E_e")
    T = E_e - M_E
    return scalar_or_array(np.where(T >= 0, -2.0 * M_E * T, np.nan))


def electron_energy_from_t(t):
    """Scattered electron energy E_e = m_e - t/(2 m_e) [GeV] for t <= 0 [GeV^2] (PHYSICS.md sec. 2)."""
    t = as_float_array(t, "t")
    return scalar_or_array(np.where(t <= 0, M_E - t / (2.0 * M_E), np.nan))


def electron_energy_from_theta(theta_e, E=E_BEAM_DEFAULT):
    """Electron energy on the elastic curve for the electron angle ``theta_e`` [rad] -> E_e [GeV].

    PHYSICS.md section 2: with r = p/(E + m_e), E_e = m_e (1 + r^2 cos^2)/(1 - r^2 cos^2), evaluated
    as E_e = m_e + T with T = 2 m_e p^2 cos^2(theta_e) / (s + p^2 sin^2(theta_e)) (the same formula,
    using 1 - r^2 = s/(E + m_e)^2), which has no cancellation for small angles.
    theta_e outside [0, pi/2] gives NaN. ``E`` is the beam energy [GeV].
    """
    theta_e = as_float_array(theta_e, "theta_e")
    E = check_beam_energy(E)
    return scalar_or_array(M_E + _kinetic_from_theta(theta_e, E))


def _kinetic_from_theta(theta_e: np.ndarray, E: np.ndarray) -> np.ndarray:
    p2 = (E - M_MU) * (E + M_MU)
    s = M_MU**2 + M_E**2 + 2.0 * M_E * E
    c = np.cos(theta_e)
    sn = np.sin(theta_e)
    T = 2.0 * M_E * p2 * c * c / (s + p2 * sn * sn)
    inside = (theta_e >= 0) & (theta_e <= np.pi / 2)
    return np.where(inside, T, np.nan)


def theta_e_from_electron_energy(E_e, E=E_BEAM_DEFAULT):
    """Electron angle [rad] on the elastic curve for the electron energy ``E_e`` [GeV].

    Inverse of :func:`electron_energy_from_theta`: tan(theta_e) = sqrt((2 m_e p^2 - T s)/T)/(E + m_e)
    with T = E_e - m_e, evaluated as arctan2 (accurate both for E_e -> m_e, theta_e -> pi/2, and for
    E_e -> E_e,max, theta_e -> 0). At 160 GeV theta_e(E_e = 1 GeV) = 31.86 mrad.
    """
    E_e = as_float_array(E_e, "E_e")
    E = check_beam_energy(E)
    T = _kinetic_energy(E_e, E)
    s = M_MU**2 + M_E**2 + 2.0 * M_E * E
    p2 = (E - M_MU) * (E + M_MU)
    return scalar_or_array(np.arctan2(np.sqrt(np.maximum(2.0 * M_E * p2 - T * s, 0.0)), np.sqrt(T) * (E + M_E)))


def theta_mu_from_electron_energy(E_e, E=E_BEAM_DEFAULT):
    """Muon angle [rad] on the elastic curve for the electron energy ``E_e`` [GeV].

    Transverse momenta balance, so tan(theta_mu) = p_T / (p - p_z,e) with
    p_T^2 = T (2 m_e p^2 - T s) / p^2 and p_z,e = T (E + m_e)/p, i.e.
    tan(theta_mu) = sqrt(T (2 m_e p^2 - T s)) / (p^2 - T (E + m_e)); equivalent to PHYSICS.md's
    cos(theta_mu) = [E_mu'(E + m_e) - E m_e - m_mu^2]/(p p_mu') without its cancellation at small
    angles. At 160 GeV theta_mu(E_e = 1 GeV) = 0.2003 mrad.
    """
    E_e = as_float_array(E_e, "E_e")
    E = check_beam_energy(E)
    T = _kinetic_energy(E_e, E)
    s = M_MU**2 + M_E**2 + 2.0 * M_E * E
    p2 = (E - M_MU) * (E + M_MU)
    pt_p = np.sqrt(T * np.maximum(2.0 * M_E * p2 - T * s, 0.0))
    return scalar_or_array(np.arctan2(pt_p, p2 - T * (E + M_E)))


def theta_mu_from_theta_e(theta_e, E=E_BEAM_DEFAULT):
    """Muon angle [rad] as a function of the electron angle ``theta_e`` [rad]: the elastic curve.

    The electron momentum p_e = sqrt(T (T + 2 m_e)) follows from theta_e
    (:func:`electron_energy_from_theta`); then theta_mu = arctan2(p_e sin theta_e, p - p_e cos theta_e)
    (PHYSICS.md section 2, transverse-momentum balance). At 160 GeV the two angles are equal,
    2.44 mrad, at E_e ~ 80 GeV (see :func:`equal_angle_point`).
    """
    theta_e = as_float_array(theta_e, "theta_e")
    E = check_beam_energy(E)
    T = _kinetic_from_theta(theta_e, E)
    p_e = np.sqrt(T * (T + 2.0 * M_E))
    p = np.sqrt((E - M_MU) * (E + M_MU))
    return scalar_or_array(np.arctan2(p_e * np.sin(theta_e), p - p_e * np.cos(theta_e)))


def theta_mu_max(E=None):
    """Largest muon scattering angle [rad]: arcsin(m_e/m_mu) = 4.836 mrad (PHYSICS.md section 2).

    For elastic scattering of a heavier projectile on a lighter target at rest the maximum angle is
    arcsin(m_target/m_projectile) at every beam energy (the velocity of the c.m. frame exceeds the
    muon's velocity in that frame whenever m_mu > m_e; verified numerically in the tests), so ``E``
    [GeV] is only checked, not used.
    """
    if E is not None:
        E = check_beam_energy(E)
        return scalar_or_array(np.full(np.shape(E), np.arcsin(M_E / M_MU)))
    return np.float64(np.arcsin(M_E / M_MU))


def equal_angle_point(E=E_BEAM_DEFAULT):
    """Point of the elastic curve where theta_e = theta_mu: returns (E_e [GeV], theta [rad]).

    The transverse momenta are always equal, so the angles are equal where the longitudinal
    momenta are: T (E + m_e)/p = p - T (E + m_e)/p, i.e. T = p^2 / (2 (E + m_e)).
    At 160 GeV: E_e ~ 80 GeV and theta = 2.44 mrad.
    """
    E = check_beam_energy(E)
    p2 = (E - M_MU) * (E + M_MU)
    T = p2 / (2.0 * (E + M_E))
    E_e = M_E + T
    return scalar_or_array(E_e), theta_e_from_electron_energy(E_e, E)


def x_from_t(t):
    """Master-integral variable x(t) for t <= 0 [GeV^2] (PHYSICS.md section 2).

    x = [t + sqrt(t^2 - 4 m_mu^2 t)]/(2 m_mu^2), evaluated in the rationalised form
    x = 2|t| / (|t| + sqrt(t^2 + 4 m_mu^2 |t|)) that does not cancel for |t| >> m_mu^2.
    Inverse of :func:`t_from_x`; x in [0, 1). t > 0 gives NaN.
    """
    t = as_float_array(t, "t")
    a = -t
    with np.errstate(invalid="ignore"):
        x = 2.0 * a / (a + np.sqrt(a * a + 4.0 * M_MU**2 * a))
    x = np.where(a == 0, 0.0, x)
    x = np.where(np.isposinf(a), 1.0, x)
    return scalar_or_array(np.where(a >= 0, x, np.nan))


def t_from_x(x):
    """Space-like momentum transfer t(x) = x^2 m_mu^2 / (x - 1) [GeV^2] for 0 <= x < 1.

    PHYSICS.md section 2 (Carloni Calame et al., PLB 746 (2015) 325); x = 1 gives -inf, x outside
    [0, 1] gives NaN.
    """
    x = as_float_array(x, "x")
    with np.errstate(divide="ignore", invalid="ignore"):
        t = x * x * M_MU**2 / (x - 1.0)
    t = np.where(x == 1.0, -np.inf, t)
    return scalar_or_array(np.where((x >= 0) & (x <= 1), t, np.nan))


def x_max(E=E_BEAM_DEFAULT):
    """x(t_min(E)): the largest x reached at beam energy ``E`` [GeV] (0.936 at 160 GeV)."""
    return x_from_t(t_min(E))
