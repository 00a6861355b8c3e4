"""The Dispersive model: R(s), the kernel K(s), quadrature vs scipy, table vs direct, a_mu both ways."""

import math
import time

import mpmath as mp
import numpy as np
import pytest
from scipy import integrate

from muone.physics import ALPHA, M_MU, Dispersive, amu_hlo, amu_kernel
from muone.physics.constants import GAMMA_EE_RHO, GAMMA_RHO, M_OMEGA, M_PHI, M_PI, M_RHO


@pytest.fixture(scope="module")
def model():
    return Dispersive()


def _scipy_integral(model, f):
    """int_{s_th}^inf R(s) f(s) ds by scipy's adaptive quadrature, split at every feature of R."""
    points = [4 * M_PI**2]
    for m, g, _, _ in model.resonances.values():
        points += [m * m - 3 * m * g, m * m - m * g, m * m, m * m + m * g, m * m + 3 * m * g]
    points += [model.sqrt_s_continuum**2, model.sqrt_s_charm**2, model.sqrt_s_bottom**2, 1e3]
    points = sorted(p for p in points if p >= 4 * M_PI**2)
    total = 0.0
    for a, b in zip(points[:-1], points[1:]):
        total += integrate.quad(lambda s: model.r_ratio(s) * f(s), a, b, epsabs=0, epsrel=1e-13, limit=400)[0]
    # above 1e3 GeV^2: integrate in ln s
    total += integrate.quad(lambda y: model.r_ratio(math.exp(y)) * f(math.exp(y)) * math.exp(y), math.log(1e3), 80.0,
                            epsabs=0, epsrel=1e-13, limit=400)[0]
    return total


def test_r_ratio_values(model):
    assert model.r_ratio(0.01) == 0.0  # below 4 m_pi^2
    # at the rho peak R = 9 Gamma_ee / (alpha^2 Gamma) (B_had = 1)
    r_peak = model.r_ratio(M_RHO**2, part="rho")
    assert r_peak == pytest.approx(9 * GAMMA_EE_RHO / (ALPHA**2 * GAMMA_RHO), rel=1e-14)
    assert model.r_ratio(M_RHO**2) > 0.99 * r_peak
    k = 1 + 0.2 / math.pi
    assert model.r_ratio(2.0**2, part="continuum") == pytest.approx(2 * k, rel=1e-14)
    assert model.r_ratio(5.0**2, part="continuum") == pytest.approx(10 / 3 * k, rel=1e-14)
    assert model.r_ratio(20.0**2, part="continuum") == pytest.approx(11 / 3 * k, rel=1e-14)
    assert model.r_infinity == pytest.approx(11 / 3 * k)
    s = np.linspace(0.1, 200.0, 50)
    parts = sum(model.r_ratio(s, p) for p in ("rho", "omega", "phi", "continuum"))
    np.testing.assert_allclose(parts, model.r_ratio(s), rtol=1e-14)
    with pytest.raises(ValueError, match="'kaon'"):
        model.r_ratio(1.0, part="kaon")


@pytest.mark.parametrize("s", [4 * M_PI**2, 0.3, M_RHO**2, 1.0, 10.0, 1e3, 1e6])
def test_kernel_against_mpmath(s):
    mp.mp.dps = 40
    a = mp.mpf(s) / mp.mpf(M_MU) ** 2
    exact = mp.quad(lambda x: x**2 * (1 - x) / (x**2 + (1 - x) * a), [0, 1 - 1 / a, 1])
    assert amu_kernel(s) == pytest.approx(float(exact), rel=1e-13)
    assert amu_kernel(4 * M_MU**2) == pytest.approx(0.045177444, rel=1e-7)


def test_kernel_asymptotics():
    s = 1e8
    assert amu_kernel(s) == pytest.approx(M_MU**2 / (3 * s), rel=1e-6)
    assert math.isnan(amu_kernel(0.01))


@pytest.mark.parametrize("t", [-1e-6, -1e-3, -0.01, -0.153, -1.0, -100.0, -1e5])
def test_delta_alpha_against_scipy_quad(model, t):
    exact = -(ALPHA * t / (3 * math.pi)) * _scipy_integral(model, lambda s: 1.0 / (s * (s - t)))
    assert model.delta_alpha_direct(t) == pytest.approx(exact, rel=1e-10)
    assert model(t) == pytest.approx(exact, rel=1e-10)


def test_timelike_amu_against_scipy_quad(model):
    exact = ALPHA**2 / (3 * math.pi**2) * _scipy_integral(model, lambda s: amu_kernel(s) / s)
    assert model.amu_hlo_timelike() == pytest.approx(exact, rel=1e-10)


def test_table_against_direct_quadrature(model):
    rng = np.random.default_rng(1)
    t = -np.exp(rng.uniform(math.log(1e-9), math.log(1e17), 3000))
    t = np.concatenate([t, [-1e-3, -1e-3 * (1 - 1e-12), -1e16, -1e16 * (1 + 1e-12), 0.0]])
    fast, direct = model(t), model.delta_alpha_direct(t)
    nz = direct != 0
    assert np.max(np.abs(fast[nz] / direct[nz] - 1)) < 1e-10
    assert model(0.0) == 0.0
    assert math.isnan(model(1.0))


def test_small_t_limit_is_first_moment(model):
    # Delta_alpha_had ~ -(alpha t / 3 pi) int R/s^2 ds for t -> 0
    first = _scipy_integral(model, lambda s: 1.0 / s**2)
    assert model(-1e-9) == pytest.approx(ALPHA * 1e-9 / (3 * math.pi) * first, rel=1e-8)


def test_call_is_fast_on_1e5_values(model):
    model(-0.1)  # build the table once
    t = -np.random.default_rng(2).uniform(0.0, 0.2, 100_000)
    start = time.perf_counter()
    out = model(t)
    elapsed = time.perf_counter() - start
    assert out.shape == t.shape and np.all(np.isfinite(out))
    assert elapsed < 0.5


def test_spacelike_equals_timelike_amu(model):
    space = amu_hlo(model)
    time_like = model.amu_hlo_timelike()
    assert space == pytest.approx(time_like, rel=1e-4)  # the requirement
    assert space == pytest.approx(time_like, rel=1e-9)  # what the method achieves
    other = Dispersive(alpha_s=0.3, sqrt_s_continuum=1.8, b_omega=1.0)
    assert amu_hlo(other) == pytest.approx(other.amu_hlo_timelike(), rel=1e-9)


def test_amu_value_and_parts(model):
    total = model.amu_hlo_timelike()
    assert total == pytest.approx(605.79e-10, rel=1e-4)  # docs/physics.md
    assert abs(total / 693e-10 - 1) < 0.2  # within 20 % of the data-driven value
    parts = {p: model.amu_hlo_timelike(p) for p in ("rho", "omega", "phi", "continuum")}
    assert sum(parts.values()) == pytest.approx(total, rel=1e-12)
    assert parts["rho"] > parts["continuum"] > 0
    assert Dispersive(scale=2.0).amu_hlo_timelike() == pytest.approx(2 * total, rel=1e-12)


def test_resonance_features_and_monotonic(model):
    t = -np.geomspace(1e-8, 1e8, 200)
    v = model(t)
    assert np.all(v > 0) and np.all(np.diff(v) > 0)
    assert model.n_nodes > 1000
    # Omega and phi are resolved: removing them changes Delta_alpha_had(t_min) by their share
    no_narrow = Dispersive(b_omega=0.0, b_phi=0.0)
    assert 0.0 < 1 - no_narrow(-0.153) / model(-0.153) < 0.2
    assert M_OMEGA < M_PHI
