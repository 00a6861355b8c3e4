"""Detector simulation: from the generated truth (``mc``) to raw data (``raw``).

* :mod:`muone.simulation.tracker`: numba kernels of the tracker simulation (processor
  ``sim_tracker``): straight-line tracing with multiple scattering through targets and 2S
  modules, strip charge sharing, efficiency, noise, raw strip words;
* :mod:`muone.simulation.highland`: the Highland multiple-scattering width and the core-plus-tail
  model;
* :mod:`muone.simulation.particles`: which particles are charged.

The raw word layout is :mod:`muone.rawformat`; the model and its validation: docs/simulation.md.
"""

from muone.simulation.highland import effective_rms_factor, highland_theta0
from muone.simulation.particles import is_charged

__all__ = ["highland_theta0", "effective_rms_factor", "is_charged"]
