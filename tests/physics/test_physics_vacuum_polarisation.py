"""Leptonic vacuum polarisation: mpmath at 50 digits, the series/closed-form switch, limits."""

import math

import mpmath as mp
import numpy as np
import pytest

from muone.physics import ALPHA, M_E, M_MU, M_TAU, delta_alpha_lep, delta_alpha_lepton, one_loop_bracket
from muone.physics.vacuum_polarisation import SERIES_Z_MAX


def _mp_lepton(t, m):
    """PHYSICS.md section 4 closed form, evaluated with 50 significant digits."""
    mp.mp.dps = 50
    t, m = mp.mpf(t), mp.mpf(m)
    beta = mp.sqrt(1 - 4 * m**2 / t)
    return mp.mpf(ALPHA) / mp.pi * (
        -mp.mpf(5) / 9 - 4 * m**2 / (3 * t) + beta / 3 * (1 + 2 * m**2 / t) * mp.log((beta + 1) / (beta - 1))
    )


T_VALUES = -np.geomspace(1e-12, 1e3, 31)


@pytest.mark.parametrize("m", [M_E, M_MU, M_TAU])
def test_one_lepton_against_mpmath(m):
    got = delta_alpha_lepton(T_VALUES, m)
    for t, g in zip(T_VALUES, got):
        assert g == pytest.approx(float(_mp_lepton(t, m)), rel=3e-15, abs=0), (t, m)


def test_sum_against_mpmath():
    got = delta_alpha_lep(T_VALUES)
    for t, g in zip(T_VALUES, got):
        exact = sum(_mp_lepton(t, m) for m in (M_E, M_MU, M_TAU))
        assert g == pytest.approx(float(exact), rel=3e-15), t


def test_continuity_at_series_threshold():
    for m in (M_E, M_MU, M_TAU):
        t_th = -SERIES_Z_MAX * m * m
        below = delta_alpha_lepton(t_th * (1 - 1e-15), m)  # just inside the series
        at = delta_alpha_lepton(t_th, m)  # closed form
        exact = float(_mp_lepton(t_th, m))
        assert below == pytest.approx(at, rel=1e-12)
        assert below == pytest.approx(exact, rel=1e-14)
        assert at == pytest.approx(exact, rel=1e-14)
    z = np.array([SERIES_Z_MAX * (1 - 1e-12), SERIES_Z_MAX, SERIES_Z_MAX * (1 + 1e-12)])
    b = one_loop_bracket(z)
    assert np.all(np.diff(b) > 0)
    assert abs(b[2] / b[0] - 1) < 1e-11


def test_small_t_limit():
    for m in (M_E, M_MU):
        t = -1e-9 * m * m
        leading = -(ALPHA / math.pi) * t / (15 * m * m)
        assert delta_alpha_lepton(t, m) == pytest.approx(leading, rel=1e-9)
    assert one_loop_bracket(1e-3) == pytest.approx(1e-3 / 15 - 1e-6 / 140 + 1e-9 * 2 * 576 / (3 * 362880), rel=1e-11)
    assert delta_alpha_lep(0.0) == 0.0


def test_large_t_logarithm():
    z = 1e12
    assert one_loop_bracket(z) == pytest.approx(math.log(z) / 3 - 5 / 9, rel=1e-10)


def test_value_at_t_min_and_vectorised():
    da = delta_alpha_lep(np.array([-0.153069, -0.001]))
    assert da.shape == (2,) and da.dtype == np.float64
    assert da[0] == pytest.approx(0.0100031, rel=1e-5)
    assert np.all(da > 0)


def test_time_like_is_nan_and_bad_mass_raises():
    assert math.isnan(delta_alpha_lep(1.0))
    with pytest.raises(ValueError, match="mass"):
        delta_alpha_lepton(-1.0, -M_E)


def test_bracket_kernel_matches_numpy_reference():
    """The numba kernel of the one-loop bracket equals its numpy twin (both branches, edges)."""
    from muone.physics.vacuum_polarisation import _one_loop_bracket_numpy, one_loop_bracket

    rng = np.random.default_rng(3)
    z = np.concatenate([10 ** rng.uniform(-12, 20, 5000), [0.0, 1.0, 1.0 - 1e-15, np.inf, -1.0, np.nan]])
    fast, ref = one_loop_bracket(z), _one_loop_bracket_numpy(z)
    assert np.array_equal(np.isnan(fast), np.isnan(ref))
    ok = ~np.isnan(ref)
    assert np.allclose(fast[ok], ref[ok], rtol=2e-15, atol=0)
    assert one_loop_bracket(0.5) == pytest.approx(float(_one_loop_bracket_numpy(0.5)), rel=1e-15)
