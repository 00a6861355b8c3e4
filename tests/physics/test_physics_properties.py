"""Property-based checks (hypothesis) of the kinematic inversions and model invariants, and dense
validations over many points (about a second each)."""

import math

import mpmath as mp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from muone.physics import (
    ALPHA,
    M_E,
    M_MU,
    Dispersive,
    LeptonLike,
    amu_hlo,
    delta_alpha_lepton,
    electron_energy_from_t,
    electron_energy_from_theta,
    electron_energy_max,
    t_from_electron_energy,
    theta_e_from_electron_energy,
    theta_mu_from_electron_energy,
    theta_mu_from_theta_e,
    theta_mu_max,
    x_from_t,
)

beam = st.floats(min_value=1.0, max_value=1000.0)
fraction = st.floats(min_value=1e-6, max_value=1.0 - 1e-6)


@settings(max_examples=200, deadline=None)
@given(E=beam, f=fraction)
def test_electron_energy_round_trip(E, f):
    ee = M_E + f * (electron_energy_max(E) - M_E)
    theta = theta_e_from_electron_energy(ee, E)
    assert 0.0 < theta < math.pi / 2
    # condition number of E_e -> theta -> E_e is ~1: a few ulps of T = E_e - m_e
    assert electron_energy_from_theta(theta, E) - M_E == pytest.approx(ee - M_E, rel=1e-11)
    assert electron_energy_from_t(t_from_electron_energy(ee)) == pytest.approx(ee, rel=1e-15)


@settings(max_examples=200, deadline=None)
@given(E=beam, f=fraction)
def test_muon_angle_consistent_and_bounded(E, f):
    ee = M_E + f * (electron_energy_max(E) - M_E)
    th_e = theta_e_from_electron_energy(ee, E)
    th_mu = theta_mu_from_electron_energy(ee, E)
    assert 0.0 <= th_mu <= theta_mu_max() * (1 + 1e-12)
    assert theta_mu_from_theta_e(th_e, E) == pytest.approx(th_mu, rel=1e-8)


@settings(max_examples=100, deadline=None)
@given(t=st.floats(min_value=-1e6, max_value=-1e-14))
def test_x_in_unit_interval_and_monotonic(t):
    x = x_from_t(t)
    assert 0.0 < x < 1.0
    assert x_from_t(2 * t) > x


@settings(max_examples=100, deadline=None)
@given(K=st.floats(min_value=0.01, max_value=1.0), M=st.floats(min_value=0.001, max_value=1.0))
def test_leptonlike_amu_scales_with_k_and_is_positive(K, M):
    a = amu_hlo(LeptonLike(K, M), 0.9)
    assert a > 0
    assert amu_hlo(LeptonLike(2 * K, M), 0.9) == pytest.approx(2 * a, rel=1e-14)


def test_dense_vacuum_polarisation_against_mpmath():
    mp.mp.dps = 50
    for m in (M_E, M_MU):
        for t in -np.geomspace(1e-14, 1e4, 400):
            tt, mm = mp.mpf(t), mp.mpf(m)
            beta = mp.sqrt(1 - 4 * mm**2 / tt)
            exact = (-mp.mpf(5) / 9 - 4 * mm**2 / (3 * tt)
                     + beta / 3 * (1 + 2 * mm**2 / tt) * mp.log((beta + 1) / (beta - 1))) * mp.mpf(ALPHA) / mp.pi
            assert delta_alpha_lepton(t, m) == pytest.approx(float(exact), rel=5e-15)


def test_dispersive_variants_spacelike_equals_timelike():
    for alpha_s in (0.0, 0.12, 0.3):
        for cont in (1.2, 1.5, 2.0):
            model = Dispersive(alpha_s=alpha_s, sqrt_s_continuum=cont)
            assert amu_hlo(model) == pytest.approx(model.amu_hlo_timelike(), rel=1e-9)
            t = -np.geomspace(1e-9, 1e12, 500)
            np.testing.assert_allclose(model(t), model.delta_alpha_direct(t), rtol=1e-10)
