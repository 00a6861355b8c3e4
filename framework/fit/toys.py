"""Pseudo-experiments: the bias check of the fit.

Each pseudo-experiment draws Poisson counts from the expected counts of the truth model at the
target luminosity (:mod:`muone.fit.pseudodata`), fits them, and records the pull
(fitted - true) / (HESSE error) of every parameter of interest and of a_mu^HLO (x < x_max). For
an unbiased fit with correct errors the pulls have mean 0 and width 1.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from muone.fit.fitter import TemplateFit
from muone.fit.pseudodata import poisson
from muone.physics.amu import amu_hlo

__all__ = ["pseudo_experiments"]


def pseudo_experiments(make_fit: Callable[[np.ndarray], TemplateFit], expected: np.ndarray, truth: dict[str, float], n: int,
                       rng: np.random.Generator, x_max: float | None = None) -> dict[str, Any]:
    """Fit ``n`` Poisson fluctuations of ``expected`` and summarise the pulls.

    Args:
        make_fit: builds the fit for a data set (counts per template bin).
        expected: the expected counts the pseudo-data fluctuate around.
        truth: the true values of the parameters of interest.
        n: number of pseudo-experiments.
        rng: random generator.
        x_max: when given, pulls of a_mu^HLO over x < x_max are included.

    Returns:
        {"n", "n_valid", "pulls": {name: list}, "summary": {name: {"mean", "mean_error", "width",
        "width_error"}}}.
    """
    pulls: dict[str, list[float]] = {name: [] for name in truth}
    if x_max is not None:
        pulls["amu_measured_region"] = []
    valid = 0
    true_amu = None
    for _ in range(n):
        fit = make_fit(poisson(expected, rng))
        m = fit.fit()
        if not m.valid:
            continue
        valid += 1
        for name, value in truth.items():
            pulls[name].append((m.values[name] - value) / m.errors[name])
        if x_max is not None:
            if true_amu is None:
                true_amu = amu_hlo(fit.prediction.model_cls(*(truth[p] for p in fit.poi)), x_max)
            a = fit.amu(fit.covariance(), x_max)["measured_region"]
            pulls["amu_measured_region"].append((a["value"] - true_amu) / a["error"])
    summary = {}
    for name, values in pulls.items():
        v = np.asarray(values)
        k = len(v)
        if k < 2:
            continue
        width = float(np.std(v, ddof=1))
        summary[name] = {"mean": float(v.mean()), "mean_error": width / math.sqrt(k), "width": width, "width_error": width / math.sqrt(2 * (k - 1))}
    return {"n": n, "n_valid": valid, "pulls": pulls, "summary": summary}
