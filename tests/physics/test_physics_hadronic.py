"""LeptonLike and Pol2 models, the steering-table factory and its errors."""

import math
import pickle

import mpmath as mp
import numpy as np
import pytest

from muone.physics import (
    Dispersive,
    HadronicModel,
    LeptonLike,
    Pol2,
    PhysicsInputError,
    hadronic_model,
)


def _mp_ll(t, K, M):
    """PHYSICS.md section 4 verbatim, 50 digits."""
    mp.mp.dps = 50
    t, K, M = mp.mpf(t), mp.mpf(K), mp.mpf(M)
    b = mp.sqrt(1 - 4 * M / t)
    bracket = (
        -mp.mpf(5) / 9
        - 4 * M / (3 * t)
        + (4 * M**2 / (3 * t**2) + M / (3 * t) - mp.mpf(1) / 6) * (2 / b) * mp.log(abs((1 - b) / (1 + b)))
    )
    return K * M * bracket


@pytest.mark.parametrize("t", [-1e-12, -1e-8, -1e-4, -0.001, -0.0525, -0.06, -0.153, -1.0, -100.0, -1e6])
def test_leptonlike_against_mpmath(t):
    model = LeptonLike(0.13724, 0.0525)
    assert model(t) == pytest.approx(float(_mp_ll(t, 0.13724, 0.0525)), rel=3e-15)


def test_leptonlike_small_t_limit_and_threshold_continuity():
    model = LeptonLike(0.13724, 0.0525)
    t = -1e-10
    assert model(t) == pytest.approx(-0.13724 * t / 15, rel=1e-10)
    t_th = -model.M  # series/closed-form switch at |t| = M
    assert model(t_th * (1 - 1e-15)) == pytest.approx(model(t_th), rel=1e-12)
    assert model(0.0) == 0.0


def test_leptonlike_vectorised_and_linear_in_k():
    t = -np.geomspace(1e-6, 0.2, 1000)
    a = LeptonLike(0.13724, 0.0525)(t)
    b = LeptonLike(2 * 0.13724, 0.0525)(t)
    assert a.shape == t.shape and a.dtype == np.float64
    np.testing.assert_allclose(b, 2 * a, rtol=1e-15)
    assert np.all(np.diff(a) > 0)  # grows with |t| (t runs towards more negative values)
    assert LeptonLike()(-0.153069) == pytest.approx(1.0905e-3, rel=1e-4)  # at t_min(160 GeV)


def test_pol2():
    model = Pol2(-0.009057, -0.01364)
    t = np.array([-0.01, -0.15])
    np.testing.assert_allclose(model(t), -0.009057 * t - 0.01364 * t * t, rtol=1e-15)
    assert model.requires_x_max and not LeptonLike.requires_x_max
    # the reference Pol2 approximates the reference LL in the measured range to a few percent
    t = -np.linspace(0.01, 0.14, 14)
    np.testing.assert_allclose(model(t), LeptonLike()(t), rtol=0.05)


def test_repr_params_and_table_round_trip():
    ll = LeptonLike(0.13724, 0.0525)
    assert repr(ll) == "LeptonLike(K=0.13724, M=0.0525)"
    assert ll.params == {"K": 0.13724, "M": 0.0525}
    assert ll.to_table() == {"model": "LeptonLike", "K": 0.13724, "M": 0.0525}
    assert hadronic_model(ll.to_table()) == ll
    assert repr(Pol2(1.0, 2.0)) == "Pol2(c1=1.0, c2=2.0)"
    assert HadronicModel.from_table({"model": "Pol2", "c1": 1.0, "c2": 2.0}) == Pol2(1.0, 2.0)
    assert ll.with_params(M=0.06) == LeptonLike(0.13724, 0.06)
    assert pickle.loads(pickle.dumps(ll)) == ll
    assert "alpha_s=0.2" in repr(Dispersive())
    disp = Dispersive(alpha_s=0.25)
    value = disp(-0.1)  # fills the cached quadrature table, which travels with the pickle
    clone = pickle.loads(pickle.dumps(disp))
    assert clone == disp and hash(clone) == hash(disp)
    assert clone(-0.1) == value
    assert disp.with_params(scale=2.0)(-0.1) == pytest.approx(2 * value, rel=1e-12)


def test_factory_table_forms():
    assert hadronic_model({"model": "LeptonLike", "K": 0.13724, "M": 0.0525}) == LeptonLike(0.13724, 0.0525)
    assert hadronic_model({"model": "Pol2", "c1": -0.009057, "c2": -0.01364}) == Pol2(-0.009057, -0.01364)
    assert hadronic_model({"model": "leptonlike"}) == LeptonLike()  # defaults: the reference values
    assert isinstance(hadronic_model({"model": "Dispersive", "alpha_s": 0.3}), Dispersive)
    assert hadronic_model({"model": "none"}) is None
    assert hadronic_model(None) is None
    ll = LeptonLike()
    assert hadronic_model(ll) is ll


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ({"model": "Foo"}, "'model'"),
        ({"K": 1.0}, "'model'"),
        ({"model": "LeptonLike", "Q": 1.0}, "'Q'"),
        ({"model": "LeptonLike", "k": 1.0}, "did you mean 'K'"),
        ({"model": "Pol2", "K": 1.0}, "'K'"),
        ({"model": "LeptonLike", "K": "big"}, "'K'"),
        ({"model": "LeptonLike", "M": -0.05}, "'M'"),
        ({"model": "LeptonLike", "M": math.nan}, "'M'"),
        ({"model": "Dispersive", "alpha_s": -1.0}, "'alpha_s'"),
        ({"model": "Dispersive", "sqrt_s_charm": 1.0}, "'sqrt_s_charm'"),
        ({"model": "none", "K": 1.0}, "'K'"),
    ],
)
def test_factory_errors_name_the_key(table, key):
    with pytest.raises(ValueError, match=key) as info:
        hadronic_model(table)
    assert isinstance(info.value, PhysicsInputError)


def test_factory_rejects_non_table():
    with pytest.raises(ValueError, match="table"):
        hadronic_model("LeptonLike")
