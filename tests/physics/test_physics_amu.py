"""a_mu^HLO: the LL check value 689.0e-10, the 88 % below x_max, convergence, Pol2, gradients."""

import math

import mpmath as mp
import numpy as np
import pytest
from scipy import integrate

from muone.physics import (
    ALPHA,
    M_MU,
    LeptonLike,
    Pol2,
    PhysicsInputError,
    amu_hlo,
    amu_hlo_from_params,
    amu_hlo_gradient,
    amu_hlo_uncertainty,
    t_from_x,
    x_max,
)

LL = LeptonLike(0.13724, 0.0525)


def test_leptonlike_check_value():
    assert amu_hlo(LL) == pytest.approx(689.0e-10, abs=0.05e-10)


def test_fraction_below_x_max_at_160_gev():
    xm = x_max(160.0)
    assert xm == pytest.approx(0.936, abs=5e-4)
    fraction = amu_hlo(LL, xm) / amu_hlo(LL)
    assert fraction == pytest.approx(0.88, abs=0.005)


def test_convergence_and_scipy_cross_check():
    a = amu_hlo(LL)
    assert amu_hlo(LL, panel_width=0.125) == pytest.approx(a, rel=1e-14)
    assert amu_hlo(LL, panel_width=1.0) == pytest.approx(a, rel=1e-12)
    value = integrate.quad(lambda x: (1 - x) * LL(t_from_x(x)), 0.0, 1.0, epsabs=0, epsrel=1e-13, limit=500)[0]
    assert a == pytest.approx(ALPHA / math.pi * value, rel=1e-12)
    # the tail x > 1 - 1e-6 is tiny but finite (log growth of Delta_alpha_had)
    tail = a - amu_hlo(LL, 1 - 1e-6)
    assert 0 < tail < 1e-8 * a


def test_against_mpmath_with_x_max():
    mp.mp.dps = 60  # the closed form cancels as 1/t^2 for x -> 0: start at x = 1e-12, ample digits
    K, M, m = mp.mpf(LL.K), mp.mpf(LL.M), mp.mpf(M_MU)

    def da(t):
        b = mp.sqrt(1 - 4 * M / t)
        return K * M * (-mp.mpf(5) / 9 - 4 * M / (3 * t) + (4 * M**2 / (3 * t**2) + M / (3 * t) - mp.mpf(1) / 6)
                        * (2 / b) * mp.log(abs((1 - b) / (1 + b))))

    xm = 0.936
    exact = mp.mpf(ALPHA) / mp.pi * mp.quad(lambda x: (1 - x) * da(x * x * m * m / (x - 1)), [mp.mpf('1e-12'), mp.mpf('1e-4'), 0.5, xm])
    assert amu_hlo(LL, xm) == pytest.approx(float(exact), rel=1e-13)


def test_pol2_needs_x_max_and_matches_analytic_integral():
    model = Pol2(-0.009057, -0.01364)
    with pytest.raises(ValueError, match="x_max"):
        amu_hlo(model)
    with pytest.raises(PhysicsInputError, match="x_max"):
        amu_hlo(model, 1.0)
    xm = 0.936
    exact = ALPHA / math.pi * integrate.quad(lambda x: (1 - x) * model(t_from_x(x)), 0, xm, epsabs=0, epsrel=1e-13)[0]
    assert amu_hlo(model, xm) == pytest.approx(exact, rel=1e-13)
    # in the measured range the reference Pol2 and LL agree to ~0.2 %
    assert amu_hlo(model, xm) == pytest.approx(amu_hlo(LL, xm), rel=3e-3)


def test_table_and_callable_models():
    assert amu_hlo({"model": "LeptonLike", "K": 0.13724, "M": 0.0525}) == amu_hlo(LL)
    assert amu_hlo(lambda t: LL(t)) == pytest.approx(amu_hlo(LL), rel=1e-15)
    assert amu_hlo(LL, 0.0) == 0.0
    with pytest.raises(ValueError, match="x_max"):
        amu_hlo(LL, 1.5)
    with pytest.raises(ValueError, match="hadronic model"):
        amu_hlo(None)


def test_gradient_and_uncertainty():
    params = {"K": 0.13724, "M": 0.0525}
    a = amu_hlo_from_params(LeptonLike, params)
    assert a == amu_hlo(LL)
    g = amu_hlo_gradient(LeptonLike, params)
    assert g.shape == (2,)
    assert g[0] == pytest.approx(a / 0.13724, rel=1e-9)  # a_mu is linear in K
    h = 1e-6
    dm = (amu_hlo(LeptonLike(0.13724, 0.0525 + h)) - amu_hlo(LeptonLike(0.13724, 0.0525 - h))) / (2 * h)
    assert g[1] == pytest.approx(dm, rel=1e-6)
    assert np.all(amu_hlo_gradient(LeptonLike, [0.13724, 0.0525]) == g)
    cov = np.diag([0.0008**2, 0.003**2])
    sigma_a = amu_hlo_uncertainty(LeptonLike, params, cov)
    assert sigma_a == pytest.approx(math.hypot(g[0] * 0.0008, g[1] * 0.003), rel=1e-12)
    assert 0.002 < sigma_a / a < 0.02
    gp = amu_hlo_gradient(Pol2, {"c1": -0.009057, "c2": -0.01364}, x_max=0.936)
    assert gp[0] == pytest.approx(amu_hlo(Pol2(1.0, 0.0), 0.936), rel=1e-9)
    assert gp[1] == pytest.approx(amu_hlo(Pol2(0.0, 1.0), 0.936), rel=1e-9)
    with pytest.raises(ValueError, match="covariance"):
        amu_hlo_uncertainty(LeptonLike, params, np.eye(3))
