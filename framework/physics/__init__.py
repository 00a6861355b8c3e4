"""muone.physics: the formulas of PHYSICS.md as vectorised float64 functions.

Units: GeV, GeV^2, rad; cross sections in microbarn (dsigma/dt in microbarn/GeV^2).
Modules, one concept each:

* :mod:`~muone.physics.constants`           constants of PHYSICS.md section 1
* :mod:`~muone.physics.kinematics`          elastic mu e kinematics (section 2)
* :mod:`~muone.physics.cross_section`       dsigma/dt and sigma, tree level and running (section 3)
* :mod:`~muone.physics.vacuum_polarisation` leptonic Delta_alpha (section 4)
* :mod:`~muone.physics.hadronic`            LeptonLike and Pol2 hadronic models (section 4)
* :mod:`~muone.physics.dispersive`          the Dispersive model from R(s) (section 5)
* :mod:`~muone.physics.model_table`         models from the steering-table form
* :mod:`~muone.physics.amu`                 a_mu^HLO master integral and its gradient (section 5)
* :mod:`~muone.physics.command`             the ``muone physics`` command line

See docs/physics.md for the formulas, references, numerical methods and check values.
"""

from muone.physics import constants
from muone.physics.amu import amu_hlo, amu_hlo_from_params, amu_hlo_gradient, amu_hlo_uncertainty
from muone.physics.constants import *  # noqa: F403  (every constant, listed in constants.__all__)
from muone.physics.cross_section import dsigma0_dt, dsigma_dt, running_factor, sigma, sigma_t
from muone.physics.dispersive import Dispersive, amu_kernel
from muone.physics.errors import PhysicsInputError
from muone.physics.hadronic import HadronicModel, LeptonLike, Pol2
from muone.physics.kinematics import (
    beam_momentum,
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
from muone.physics.model_table import MODELS, hadronic_model
from muone.physics.vacuum_polarisation import delta_alpha_lep, delta_alpha_lepton, one_loop_bracket

__all__ = [
    "MODELS",
    "Dispersive",
    "HadronicModel",
    "LeptonLike",
    "PhysicsInputError",
    "Pol2",
    "amu_hlo",
    "amu_hlo_from_params",
    "amu_hlo_gradient",
    "amu_hlo_uncertainty",
    "amu_kernel",
    "beam_momentum",
    "constants",
    "delta_alpha_lep",
    "delta_alpha_lepton",
    "dsigma0_dt",
    "dsigma_dt",
    "electron_energy_from_t",
    "electron_energy_from_theta",
    "electron_energy_max",
    "equal_angle_point",
    "hadronic_model",
    "kallen_lambda",
    "one_loop_bracket",
    "running_factor",
    "s_mandelstam",
    "sigma",
    "sigma_t",
    "t_from_electron_energy",
    "t_from_x",
    "t_min",
    "theta_e_from_electron_energy",
    "theta_mu_from_electron_energy",
    "theta_mu_from_theta_e",
    "theta_mu_max",
    "x_from_t",
    "x_max",
    *constants.__all__,
]
