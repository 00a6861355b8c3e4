"""Elastic kinematics: PHYSICS.md section 2 check values, inversions, tiny angles, mpmath."""

import math

import mpmath as mp
import numpy as np
import pytest

from muone.physics import (
    M_E,
    M_MU,
    PhysicsInputError,
    electron_energy_from_t,
    electron_energy_from_theta,
    electron_energy_max,
    equal_angle_point,
    kallen_lambda,
    s_mandelstam,
    t_from_electron_energy,
    t_from_x,
    t_min,
    theta_e_from_electron_energy,
    theta_mu_from_electron_energy,
    theta_mu_from_theta_e,
    theta_mu_max,
    x_from_t,
    x_max,
)


def test_check_values_at_160_gev():
    assert math.sqrt(s_mandelstam(160.0)) == pytest.approx(0.41795, abs=5e-6)
    assert t_min(160.0) == pytest.approx(-0.15307, abs=5e-6)
    assert 1e3 * theta_e_from_electron_energy(1.0, 160.0) == pytest.approx(31.86, abs=5e-3)
    assert 1e3 * theta_mu_from_electron_energy(1.0, 160.0) == pytest.approx(0.2003, abs=5e-5)
    assert 1e3 * theta_mu_max() == pytest.approx(4.836, abs=5e-4)
    assert x_max(160.0) == pytest.approx(0.936, abs=5e-4)
    ee, theta = equal_angle_point(160.0)
    assert ee == pytest.approx(80.0, abs=0.01)
    assert 1e3 * theta == pytest.approx(2.44, abs=5e-3)
    assert theta_mu_from_electron_energy(ee, 160.0) == pytest.approx(theta, rel=1e-13)


def test_defaults_are_160_gev():
    assert t_min() == t_min(160.0)
    assert theta_e_from_electron_energy(1.0) == theta_e_from_electron_energy(1.0, 160.0)


def test_theta_mu_max_is_the_maximum_of_the_elastic_curve():
    for E in (1.0, 20.0, 160.0, 1000.0):
        ee = np.linspace(M_E, electron_energy_max(E), 400001)
        peak = np.nanmax(theta_mu_from_electron_energy(ee, E))
        assert peak == pytest.approx(theta_mu_max(E), rel=1e-9)
        assert peak <= theta_mu_max(E) * (1 + 1e-14)


def test_kallen_lambda():
    E = 160.0
    s = s_mandelstam(E)
    exact = 4 * M_E**2 * (E**2 - M_MU**2)
    assert kallen_lambda(s, M_MU**2, M_E**2) == pytest.approx(exact, rel=1e-9)
    assert t_min(E) == pytest.approx(-exact / s, rel=1e-14)
    assert kallen_lambda(1.0, 2.0, 3.0) == pytest.approx(1 + 4 + 9 - 2 * (2 + 3 + 6))
    assert kallen_lambda(9.0, 4.0, 1.0) == pytest.approx(0.0, abs=1e-14)


def test_t_and_electron_energy():
    assert t_from_electron_energy(1.0) == pytest.approx(2 * M_E**2 - 2 * M_E * 1.0, rel=1e-15)
    assert electron_energy_from_t(t_min(160.0)) == pytest.approx(electron_energy_max(160.0), rel=1e-15)
    ee = np.geomspace(M_E * (1 + 1e-12), 149.0, 1001)
    np.testing.assert_allclose(electron_energy_from_t(t_from_electron_energy(ee)), ee, rtol=1e-15)
    assert t_from_electron_energy(M_E) == 0.0
    assert math.isnan(t_from_electron_energy(0.5 * M_E))
    assert math.isnan(electron_energy_from_t(1.0))


def test_x_t_round_trip_and_stability():
    x = np.concatenate([np.geomspace(1e-8, 0.5, 300), 1 - np.geomspace(1e-10, 0.5, 300)])
    np.testing.assert_allclose(x_from_t(t_from_x(x)), x, rtol=1e-13)
    # t -> x -> t is limited by the conditioning of x near 1: d ln t / d ln(1 - x) ~ 1, so the
    # relative error grows like eps * |t| / m_mu^2 for |t| >> m_mu^2
    t = -np.geomspace(1e-14, 1e8, 500)
    tol = 4e-16 * (4.0 + np.abs(t) / M_MU**2)
    assert np.all(np.abs(t_from_x(x_from_t(t)) / t - 1) <= tol)
    mp.mp.dps = 50
    for tv in (-1e-12, -1e-4, -0.15, -10.0, -1e6):
        tt = mp.mpf(tv)
        exact = (tt + mp.sqrt(tt * tt - 4 * mp.mpf(M_MU) ** 2 * tt)) / (2 * mp.mpf(M_MU) ** 2)
        assert x_from_t(tv) == pytest.approx(float(exact), rel=1e-15)
    assert x_from_t(0.0) == 0.0 and t_from_x(0.0) == 0.0
    assert t_from_x(1.0) == -math.inf
    assert math.isnan(x_from_t(1.0)) and math.isnan(t_from_x(1.5))


def test_energy_angle_round_trips():
    for E in (20.0, 160.0, 500.0):
        ee = np.concatenate([M_E + np.geomspace(1e-9, 1.0, 200), np.linspace(1.0, electron_energy_max(E) * (1 - 1e-9), 400)])
        theta = theta_e_from_electron_energy(ee, E)
        np.testing.assert_allclose(electron_energy_from_theta(theta, E) - M_E, ee - M_E, rtol=1e-12)
        # theta -> E_e -> theta is ill-conditioned at the ends (E_e -> E_e,max for theta -> 0, E_e -> m_e
        # for theta -> pi/2: E_e cannot hold the information); the tiny-angle accuracy of each direction
        # is tested against mpmath below
        th = np.geomspace(1e-3, 1.5, 300)
        np.testing.assert_allclose(theta_e_from_electron_energy(electron_energy_from_theta(th, E), E), th, rtol=1e-11)


def _mp_curve(theta_e, E):
    """PHYSICS.md formulas verbatim (r = p/(E+m_e); cos theta_mu form) at 60 digits."""
    mp.mp.dps = 60
    me, mm, E, th = mp.mpf(M_E), mp.mpf(M_MU), mp.mpf(E), mp.mpf(theta_e)
    p = mp.sqrt(E**2 - mm**2)
    r = p / (E + me)
    c2 = mp.cos(th) ** 2
    ee = me * (1 + r**2 * c2) / (1 - r**2 * c2)
    emu = E + me - ee
    pmu = mp.sqrt(emu**2 - mm**2)
    cos_mu = (emu * (E + me) - E * me - mm**2) / (p * pmu)
    return ee, mp.acos(cos_mu)


@pytest.mark.parametrize("theta_e", [1e-9, 1e-6, 1e-5, 1e-4, 1e-3, 2.44e-3, 0.01, 0.0318, 0.1, 0.5, 1.5])
def test_elastic_curve_against_mpmath(theta_e):
    ee, th_mu = _mp_curve(theta_e, 160.0)
    assert electron_energy_from_theta(theta_e, 160.0) == pytest.approx(float(ee), rel=1e-14)
    assert theta_mu_from_theta_e(theta_e, 160.0) == pytest.approx(float(th_mu), rel=1e-13)
    if theta_e >= 1e-4:  # below, E_e (a float near E_e,max) no longer determines the angles
        assert theta_mu_from_electron_energy(float(ee), 160.0) == pytest.approx(float(th_mu), rel=1e-9)
        assert theta_e_from_electron_energy(float(ee), 160.0) == pytest.approx(theta_e, rel=1e-9)


def test_near_electron_mass_and_tiny_angles():
    # E_e -> m_e: theta_e -> pi/2, theta_mu -> 0, both continuous and finite
    ee = M_E * (1 + np.geomspace(1e-14, 1e-3, 12))
    th_e = theta_e_from_electron_energy(ee, 160.0)
    th_mu = theta_mu_from_electron_energy(ee, 160.0)
    assert np.all(np.isfinite(th_e)) and np.all(np.isfinite(th_mu))
    assert np.all(np.diff(th_e) < 0) and np.all(np.diff(th_mu) > 0)
    assert theta_e_from_electron_energy(M_E, 160.0) == pytest.approx(np.pi / 2, rel=1e-15)
    assert theta_mu_from_electron_energy(M_E, 160.0) == 0.0
    # tiny electron angles: theta_mu / theta_e tends to p_z,e/p_z,mu at E_e,max (~14.65 at 160 GeV)
    th = np.geomspace(1e-12, 1e-9, 4)
    ratio = theta_mu_from_theta_e(th, 160.0) / th
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-10)  # varies as theta^2
    T_max = electron_energy_max(160.0) - M_E
    p = math.sqrt(160.0**2 - M_MU**2)
    pz_e = T_max * (160.0 + M_E) / p
    assert ratio[0] == pytest.approx(pz_e / (p - pz_e), rel=1e-12)
    assert theta_e_from_electron_energy(electron_energy_max(160.0), 160.0) == 0.0


def test_vectorised_and_broadcast():
    ee = np.array([[1.0, 2.0], [10.0, 50.0]])
    E = np.array([150.0, 160.0])
    out = theta_e_from_electron_energy(ee, E)
    assert out.shape == (2, 2) and out.dtype == np.float64
    assert out[1, 0] == theta_e_from_electron_energy(10.0, 150.0)
    assert isinstance(theta_e_from_electron_energy(1.0), float)


def test_outside_physical_region_is_nan():
    assert math.isnan(theta_e_from_electron_energy(200.0, 160.0))
    assert math.isnan(theta_mu_from_electron_energy(0.1 * M_E, 160.0))
    assert math.isnan(electron_energy_from_theta(-0.1, 160.0))
    assert math.isnan(electron_energy_from_theta(2.0, 160.0))
    # within rounding of the maximum it is clipped, not NaN
    assert theta_e_from_electron_energy(electron_energy_max(160.0) * (1 + 1e-15), 160.0) == 0.0


@pytest.mark.parametrize("E", [-160.0, 0.0, 0.1, float("nan"), float("inf")])
def test_bad_beam_energy_raises(E):
    with pytest.raises(ValueError, match="beam energy"):
        t_min(E)
    with pytest.raises(PhysicsInputError):
        theta_e_from_electron_energy(1.0, E)


def test_non_numeric_input_raises_naming_it():
    with pytest.raises(ValueError, match="E_e"):
        theta_e_from_electron_energy("one", 160.0)
