"""muone.fit: reweightable templates and the template fit of Delta_alpha_had (docs/fit.md).

Modules, one concept each:

* :mod:`~muone.fit.template`    the reweightable template (exact VP reweighting from cell moments)
* :mod:`~muone.fit.truth`       generator-level angles with resolution / systematic emulation
* :mod:`~muone.fit.regions`     normalisation and signal regions as expressions on bin centres
* :mod:`~muone.fit.cost`        deviance terms that add: Poisson (+ Barlow-Beeston-lite), constraints
* :mod:`~muone.fit.morphing`    nuisance parameters from variation templates
* :mod:`~muone.fit.prediction`  expected counts as a function of the fit parameters
* :mod:`~muone.fit.fitter`      the fit (iminuit), uncertainty breakdown, scans, a_mu^HLO
* :mod:`~muone.fit.pseudodata`  Asimov / Poisson pseudo-data at a luminosity
* :mod:`~muone.fit.toys`        pseudo-experiments (bias check)
* :mod:`~muone.fit.inputs`      templates and data from earlier jobs
* :mod:`~muone.fit.analysis`    the whole analysis of the ``template_fit`` finalizer
* :mod:`~muone.fit.plots`       contour, scan, projection and grid plots

The fitting names are imported lazily (iminuit is not needed to fill templates).
"""

from importlib import import_module
from typing import Any

from muone.fit.template import (
    CELL_WIDTH,
    TERMS,
    Axis,
    CrossTerm,
    SquareTerm,
    Template,
    TemplateEvaluator,
)

_LAZY = {
    "TemplateFit": "muone.fit.fitter",
    "Variation": "muone.fit.morphing",
    "Prediction": "muone.fit.prediction",
    "PoissonDeviance": "muone.fit.cost",
    "GaussianConstraint": "muone.fit.cost",
    "CostSum": "muone.fit.cost",
    "region_mask": "muone.fit.regions",
    "expected_counts": "muone.fit.pseudodata",
    "asimov": "muone.fit.pseudodata",
    "poisson": "muone.fit.pseudodata",
    "pseudo_experiments": "muone.fit.toys",
    "run_analysis": "muone.fit.analysis",
}

__all__ = [
    "CELL_WIDTH", "TERMS", "Axis", "CostSum", "CrossTerm", "GaussianConstraint", "PoissonDeviance", "Prediction", "SquareTerm",
    "Template", "TemplateEvaluator", "TemplateFit", "Variation", "asimov", "expected_counts", "poisson", "pseudo_experiments",
    "region_mask", "run_analysis",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'muone.fit' has no attribute {name!r}")
