"""Cross sections: the 245.60 microbarn check value, MESMER numbers, independent mpmath quadrature."""

import math

import mpmath as mp
import numpy as np
import pytest

from muone.physics import (
    ALPHA,
    GEV2_TO_UB,
    M_E,
    M_MU,
    M_TAU,
    Dispersive,
    LeptonLike,
    delta_alpha_lep,
    dsigma0_dt,
    dsigma_dt,
    electron_energy_from_theta,
    electron_energy_max,
    running_factor,
    sigma,
    sigma_t,
    t_from_electron_energy,
    t_min,
    theta_mu_from_electron_energy,
)
from muone.physics.cross_section import _muon_angle_window

MESMER = {"alpha": 1 / mp.mpf("137.03599907430637"), "m_mu": mp.mpf("0.1056583715"), "m_e": mp.mpf("0.510998928e-3")}
PDG = {"alpha": mp.mpf(ALPHA), "m_mu": mp.mpf(M_MU), "m_e": mp.mpf(M_E)}


def _mp_sigma(consts, E, ee_min, running=False, had=None, dps=20):
    """Independent mpmath integral of PHYSICS.md section 3 (tanh-sinh quadrature in ln|t|)."""
    mp.mp.dps = dps
    alpha, mm, me, E = consts["alpha"], consts["m_mu"], consts["m_e"], mp.mpf(E)
    p2 = E**2 - mm**2
    s = mm**2 + me**2 + 2 * me * E
    lam = (s - (mm + me) ** 2) * (s - (mm - me) ** 2)
    tmin = -lam / s
    thi = 2 * me * (me - mp.mpf(ee_min))

    def lep(t):
        total = 0
        for m in (me, mm, mp.mpf(M_TAU)):
            b = mp.sqrt(1 - 4 * m**2 / t)
            total += alpha / mp.pi * (-mp.mpf(5) / 9 - 4 * m**2 / (3 * t) + b / 3 * (1 + 2 * m**2 / t) * mp.log((b + 1) / (b - 1)))
        return total

    def integrand(u):
        t = -mp.exp(u)
        d = 4 * mp.pi * alpha**2 / lam * ((s - mm**2 - me**2) ** 2 / t**2 + s / t + mp.mpf(1) / 2)
        if running:
            d /= (1 - lep(t) - (had(float(t)) if had else 0)) ** 2
        return -t * d

    return float(mp.quad(integrand, mp.linspace(mp.log(-thi), mp.log(-tmin), 6)) * mp.mpf(GEV2_TO_UB))


def test_check_value_sigma0():
    assert sigma(160.0, 1.0, running=False) == pytest.approx(245.60, abs=0.005)


def test_tree_level_against_analytic_integral():
    E = 160.0
    s = M_MU**2 + M_E**2 + 2 * M_E * E
    p2 = E**2 - M_MU**2
    A = (2 * M_E * E) ** 2
    t1, t2 = t_min(E), t_from_electron_energy(1.0)

    def primitive(t):
        return -A / t + s * math.log(-t) + t / 2

    analytic = GEV2_TO_UB * math.pi * ALPHA**2 / (M_E**2 * p2) * (primitive(t2) - primitive(t1))
    assert sigma(E, 1.0, running=False) == pytest.approx(analytic, rel=1e-13)


@pytest.mark.parametrize(("E", "ee_min"), [(160.0, 1.0), (160.0, 10.0), (150.0, 0.2), (20.0, 1.0)])
def test_sigma_against_mpmath(E, ee_min):
    assert sigma(E, ee_min, running=False) == pytest.approx(_mp_sigma(PDG, E, ee_min), rel=1e-13)
    assert sigma(E, ee_min) == pytest.approx(_mp_sigma(PDG, E, ee_min, running=True), rel=1e-12)


def test_sigma_with_hadronic_running_against_mpmath():
    ll = LeptonLike()
    assert sigma(160.0, 1.0, had=ll) == pytest.approx(_mp_sigma(PDG, 160.0, 1.0, True, ll, dps=18), rel=1e-12)


def test_mesmer_numbers_with_mesmer_constants():
    # the formulas reproduce MESMER's high-statistics LO numbers (their constants), README of shared/data/mesmer
    assert _mp_sigma(MESMER, 160.0, 1.0) == pytest.approx(245.59627, rel=1e-7)
    assert _mp_sigma(MESMER, 160.0, 1.0, running=True) == pytest.approx(248.51193, abs=3 * 0.00012)


def test_mesmer_numbers_with_muone_constants():
    assert sigma(160.0, 1.0, running=False) == pytest.approx(245.59627, rel=1e-5)
    assert sigma(160.0, 1.0) == pytest.approx(248.51193, rel=1e-5)
    # full running: MESMER uses Jegerlehner's hadr5x19; the reference LeptonLike is close to it
    assert sigma(160.0, 1.0, had=LeptonLike()) == pytest.approx(248.53193, rel=1e-5)


def test_dsigma_dt_is_tree_times_running():
    t = -np.geomspace(1e-3, 0.15, 50)
    ll = LeptonLike()
    expected = dsigma0_dt(t, 160.0) / (1 - delta_alpha_lep(t) - ll(t)) ** 2
    np.testing.assert_allclose(dsigma_dt(t, 160.0, had=ll), expected, rtol=1e-15)
    np.testing.assert_allclose(dsigma_dt(t, 160.0), dsigma0_dt(t) * running_factor(t), rtol=1e-15)
    np.testing.assert_allclose(dsigma_dt(t, 160.0, leptonic=False), dsigma0_dt(t), rtol=1e-15)
    table = {"model": "LeptonLike", "K": 0.13724, "M": 0.0525}
    np.testing.assert_allclose(dsigma_dt(t, 160.0, had=table), dsigma_dt(t, 160.0, had=ll), rtol=0)
    assert running_factor(-0.153, leptonic=False) == 1.0


def test_dsigma0_dt_value_and_range():
    E, t = 160.0, -0.01
    s = M_MU**2 + M_E**2 + 2 * M_E * E
    lam = (s - (M_MU + M_E) ** 2) * (s - (M_MU - M_E) ** 2)
    direct = 4 * math.pi * ALPHA**2 / lam * ((s - M_MU**2 - M_E**2) ** 2 / t**2 + s / t + 0.5) * GEV2_TO_UB
    assert dsigma0_dt(t, E) == pytest.approx(direct, rel=1e-9)  # lam loses digits in this form
    assert dsigma0_dt(-0.2, E) == 0.0 and dsigma0_dt(0.01, E) == 0.0
    assert dsigma0_dt(t_min(E), E) > 0


def test_sigma_t_matches_sigma():
    t1, t2 = t_min(160.0), t_from_electron_energy(1.0)
    assert sigma_t(t1, t2, 160.0) == pytest.approx(sigma(160.0, 1.0), rel=1e-14)
    assert sigma_t(-10.0, t2, 160.0) == pytest.approx(sigma(160.0, 1.0), rel=1e-14)  # clipped at t_min


def test_sigma_splits_additively_and_vectorises():
    whole = sigma(160.0, 1.0, had=LeptonLike())
    parts = sigma(160.0, 1.0, 10.0, had=LeptonLike()) + sigma(160.0, 10.0, 200.0, had=LeptonLike())
    assert parts == pytest.approx(whole, rel=1e-13)
    out = sigma(np.array([150.0, 160.0]), np.array([1.0, 2.0]))
    assert out.shape == (2,)
    assert out[1] == pytest.approx(sigma(160.0, 2.0), rel=1e-15)


def test_sigma_with_dispersive_is_close_to_leptonlike():
    a = sigma(160.0, 1.0, had=Dispersive())
    b = sigma(160.0, 1.0, had=LeptonLike())
    assert a != b and abs(a / b - 1) < 1e-4


def test_angle_cuts():
    E = 160.0
    th = 0.02
    assert sigma(E, 1.0, theta_e_max=th) == pytest.approx(sigma(E, electron_energy_from_theta(th, E)), rel=1e-13)
    assert sigma(E, 1.0, theta_e_max=1.0) == sigma(E, 1.0)
    # theta_mu > 0.3 mrad: the E_e window between the two roots of theta_mu(E_e) = 0.3 mrad
    cut = sigma(E, 1.0, theta_mu_min=0.3e-3)
    ee = np.linspace(1.0, electron_energy_max(E), 2_000_001)
    inside = ee[theta_mu_from_electron_energy(ee, E) >= 0.3e-3]
    assert cut == pytest.approx(sigma(E, inside[0], inside[-1]), rel=1e-4)  # grid step 7.5e-5 GeV
    T1, T2 = _muon_angle_window(0.3e-3, E)
    assert theta_mu_from_electron_energy(M_E + T1, E) == pytest.approx(0.3e-3, rel=1e-12)
    assert theta_mu_from_electron_energy(M_E + T2, E) == pytest.approx(0.3e-3, rel=1e-10)
    assert cut == pytest.approx(sigma(E, M_E + T1, M_E + T2), rel=1e-14)
    assert sigma(E, 1.0, theta_mu_min=5e-3) == 0.0  # above theta_mu,max


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"E": -160.0, "ee_min": 1.0}, "beam energy"),
        ({"E": 160.0, "ee_min": 0.0}, "ee_min"),
        ({"E": 160.0, "ee_min": 2.0, "ee_max": 1.0}, "ee_max"),
        ({"E": 160.0, "ee_min": 1.0, "had": LeptonLike(), "running": False}, "running=False"),
        ({"E": 160.0, "ee_min": 1.0, "had": {"model": "Foo"}}, "'model'"),
        ({"E": 160.0, "ee_min": 1.0, "theta_e_max": -1.0}, "theta_e_max"),
    ],
)
def test_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        sigma(**kwargs)
