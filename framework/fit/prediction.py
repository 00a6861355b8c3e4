"""The expected counts of the template fit as a function of its parameters.

    nu_b = norm * scale * mu_b(Delta_alpha_had(POI)) * (1 + sum_j f_j(theta_j))

* mu_b: the template reweighted exactly to the hadronic model with the parameters of interest
  (LeptonLike K, M or Pol2 c1, c2; :class:`muone.fit.Template`), cached by POI values (the
  minimiser varies nuisances far more often than POIs);
* scale = L_data / L_template (nb^-1; the template job's report gives L_template = N / sigma);
* norm: free ("free"), 1 ("fixed"), or in "region" mode the ratio (sum of data)/(sum of the
  prediction) over the normalisation region, recomputed at every evaluation (the fitted bins are
  then those of the signal region only);
* f_j: the vertical interpolation of the variation templates (:mod:`muone.fit.morphing`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from muone.fit.morphing import Variation
from muone.fit.template import Template
from muone.physics.hadronic import LeptonLike, Pol2

__all__ = ["NORMALISATION_MODES", "POI_MODELS", "Prediction"]

#: Models the fit can determine: name -> (class, names of the parameters of interest).
POI_MODELS: dict[str, tuple[type, tuple[str, str]]] = {"LeptonLike": (LeptonLike, ("K", "M")), "Pol2": (Pol2, ("c1", "c2"))}
NORMALISATION_MODES = ("free", "fixed", "region")


class Prediction:
    """Expected counts nu(parameters) over all bins (:meth:`full`) or the fitted bins (``__call__``).

    Args:
        template: the reweightable template.
        model: "LeptonLike" or "Pol2".
        scale: L_data / L_template.
        variations: nuisance parameters (:class:`Variation`, per bin of the template).
        normalisation: "free" | "fixed" | "region".
        fit_mask: bins entering the likelihood (for "region": the signal region).
        norm_mask: the normalisation region (needed for "region").
        data: the observed counts per bin (needed for "region").
    """

    def __init__(self, template: Template, model: str, scale: float, variations: Sequence[Variation] = (), normalisation: str = "free",
                 fit_mask: np.ndarray | None = None, norm_mask: np.ndarray | None = None, data: np.ndarray | None = None) -> None:
        if model not in POI_MODELS:
            raise ValueError(f"unknown model {model!r}; the fit knows {', '.join(POI_MODELS)}")
        if normalisation not in NORMALISATION_MODES:
            raise ValueError(f"normalisation must be one of {', '.join(NORMALISATION_MODES)}, got {normalisation!r}")
        self.template = template
        self.evaluator = template.evaluator
        self.model_name = model
        self.model_cls, self.poi = POI_MODELS[model]
        self.scale = float(scale)
        self.variations = list(variations)
        self.normalisation = normalisation
        n = template.n_bins
        self.fit_mask = np.ones(n, bool) if fit_mask is None else np.asarray(fit_mask, bool)
        if normalisation == "region":
            if norm_mask is None or data is None or not np.any(norm_mask):
                raise ValueError("normalisation = 'region' needs a non-empty normalisation region and data")
            self.norm_mask = np.asarray(norm_mask, bool)
            self.norm_data = float(np.sum(np.asarray(data)[self.norm_mask]))
        else:
            self.norm_mask = None if norm_mask is None else np.asarray(norm_mask, bool)
            self.norm_data = 0.0
        names = list(self.poi) + (["norm"] if normalisation == "free" else []) + [v.name for v in self.variations]
        if len(set(names)) != len(names):
            raise ValueError(f"parameter names must be unique: {names}")
        self.parameters = tuple(names)
        self._key: tuple[float, ...] | None = None
        self._mu: np.ndarray | None = None

    def hadronic(self, poi_values: Sequence[float]):
        """The hadronic model for the POI values (None if they are invalid, e.g. M <= 0)."""
        try:
            return self.model_cls(*map(float, poi_values))
        except ValueError:
            return None

    def mu(self, poi_values: Sequence[float]) -> np.ndarray:
        """Template contents mu_b for the POI values (cached for the last values)."""
        key = tuple(float(v) for v in poi_values)
        if key != self._key:
            model = self.hadronic(key)
            self._mu = self.evaluator.expected(model) if model is not None else np.full(self.template.n_bins, np.nan)
            self._key = key
        return self._mu

    def full(self, args: Sequence[float]) -> np.ndarray:
        """nu for every bin of the template, parameters in the order of ``parameters``."""
        args = np.asarray(args, dtype=np.float64)
        npoi = len(self.poi)
        nu = self.mu(args[:npoi]) * self.scale
        pos = npoi
        if self.normalisation == "free":
            nu = nu * args[pos]
            pos += 1
        if self.variations:
            factor = np.ones_like(nu)
            for v, theta in zip(self.variations, args[pos:]):
                factor += v.shift(theta)
            nu = nu * np.maximum(factor, 1e-12)
        if self.normalisation == "region":
            denominator = float(np.sum(nu[self.norm_mask]))
            nu = nu * (self.norm_data / denominator if denominator > 0 else np.nan)
        return nu

    def norm_value(self, args: Sequence[float]) -> float:
        """The normalisation factor at these parameters (free, fixed = 1, or the region ratio)."""
        if self.normalisation == "free":
            return float(args[len(self.poi)])
        if self.normalisation == "fixed":
            return 1.0
        return float(np.sum(self.full(args)[self.norm_mask]) / np.sum(self._without_region(args)[self.norm_mask]))

    def _without_region(self, args: Sequence[float]) -> np.ndarray:
        saved, self.normalisation = self.normalisation, "fixed"
        try:
            return self.full(args)
        finally:
            self.normalisation = saved

    def __call__(self, args: Sequence[float]) -> np.ndarray:
        return self.full(args)[self.fit_mask]
