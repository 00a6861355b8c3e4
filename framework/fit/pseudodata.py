"""Pseudo-data for sensitivity studies: the template itself at a target luminosity.

PHYSICS.md section 6: at MUonE's full luminosity (1.5e7 nb^-1, ~3.7e12 elastic events) pseudo-data
come from the expected counts (template x luminosity), Poisson-fluctuated or not (Asimov), never
from generating 1e12 events. The expected counts are the template reweighted to the ``truth``
hadronic model, times scale = L_target / L_template (the template job's report gives
L_template = N / sigma in nb^-1), times the nuisance variations at the given values.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from muone.fit.morphing import Variation
from muone.fit.template import Template

__all__ = ["asimov", "expected_counts", "poisson"]


def expected_counts(template: Template, truth: Callable[[np.ndarray], Any] | None, scale: float,
                    variations: Sequence[Variation] = (), thetas: dict[str, float] | None = None) -> np.ndarray:
    """scale * template(truth) * (1 + sum_j f_j(theta_j)) per bin."""
    nu = template.expected(truth) * float(scale)
    if variations:
        factor = np.ones_like(nu)
        for v in variations:
            factor += v.shift((thetas or {}).get(v.name, 0.0))
        nu = nu * np.maximum(factor, 0.0)
    return nu


def asimov(template: Template, truth: Callable[[np.ndarray], Any] | None, scale: float, variations: Sequence[Variation] = (),
           thetas: dict[str, float] | None = None) -> np.ndarray:
    """The Asimov data set: the expected counts themselves (not integers)."""
    return expected_counts(template, truth, scale, variations, thetas)


def poisson(expected: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Poisson-fluctuated counts (float64) for the expected counts (any size, up to ~1e18)."""
    return rng.poisson(np.asarray(expected, dtype=np.float64)).astype(np.float64)
