"""The constants are exactly those of PHYSICS.md section 1, in one module, re-exported."""

import muone.physics as phys
from muone.physics import constants as c


def test_values_are_exactly_physics_md_section_1():
    assert c.ALPHA == 1 / 137.035999084
    assert c.M_MU == 0.1056583755
    assert c.M_E == 0.51099895e-3
    assert c.M_TAU == 1.77686
    assert c.GEV2_TO_UB == 389.3793721
    assert c.INV_NB_TO_INV_UB == 1e3
    assert c.M_PI == 0.13957039
    assert (c.M_RHO, c.GAMMA_RHO, c.GAMMA_EE_RHO) == (0.77526, 0.1491, 7.04e-6)
    assert (c.M_OMEGA, c.GAMMA_OMEGA, c.GAMMA_EE_OMEGA) == (0.78266, 0.00868, 0.60e-6)
    assert (c.M_PHI, c.GAMMA_PHI, c.GAMMA_EE_PHI) == (1.019461, 0.004249, 1.27e-6)
    assert (c.B_HAD_RHO, c.B_HAD_OMEGA, c.B_HAD_PHI) == (1.0, 0.9, 0.98)
    assert (c.LL_K_REF, c.LL_M_REF) == (0.13724, 0.0525)
    assert (c.POL2_C1_REF, c.POL2_C2_REF) == (-0.009057, -0.01364)


def test_every_constant_is_reexported():
    for name in c.__all__:
        assert getattr(phys, name) == getattr(c, name)
        assert name in phys.__all__
    assert phys.ALPHA == 1 / 137.035999084


def test_public_names_resolve():
    for name in phys.__all__:
        assert getattr(phys, name) is not None, name
    for name in ["s_mandelstam", "t_min", "electron_energy_from_theta", "theta_e_from_electron_energy",
                 "theta_mu_from_theta_e", "t_from_electron_energy", "x_from_t", "t_from_x", "dsigma0_dt",
                 "dsigma_dt", "sigma", "delta_alpha_lep", "LeptonLike", "Pol2", "Dispersive", "amu_hlo"]:
        assert name in phys.__all__
