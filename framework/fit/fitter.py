"""The template fit: minimisation (iminuit), uncertainties, their breakdown, scans and a_mu^HLO.

:class:`TemplateFit` builds the cost by adding terms (data term + one Gaussian constraint per
nuisance; :mod:`muone.fit.cost`), minimises it with MIGRAD and computes the covariance with HESSE.

Uncertainty breakdown (``breakdown``): the covariance of the parameters of interest is recomputed
with HESSE at the best-fit point in configurations that free only some sources (the others fixed
at their best-fit values, which is what refits with those parameters fixed would give, since the
minimum does not move):

* stat: all nuisance parameters fixed, MC statistics off (only POIs and the normalisation free);
* each systematic j: stat + nuisance j free; its share is sqrt(sigma_j^2 - sigma_stat^2);
* MC statistics: stat + the Barlow-Beeston-lite factors; share sqrt(sigma^2 - sigma_stat^2);
* total: everything free.
The shares are quadrature differences; with correlated sources they need not add up exactly to the
total (both are reported).

a_mu^HLO and its uncertainties: :func:`muone.physics.amu_hlo` of the fitted model and
:func:`muone.physics.amu_hlo_uncertainty` (linear propagation of the POI covariance), over the
measured region x < x_max and, for LeptonLike, also the full integral (Pol2 diverges as x -> 1).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from iminuit import Minuit
from muone.fit.cost import Cost, GaussianConstraint, PoissonDeviance
from muone.fit.morphing import Variation
from muone.fit.prediction import POI_MODELS, Prediction
from muone.fit.template import Template
from muone.physics.amu import amu_hlo, amu_hlo_uncertainty
from muone.physics.constants import LL_K_REF, LL_M_REF, POL2_C1_REF, POL2_C2_REF

__all__ = ["DEFAULT_START", "TemplateFit", "paraboloid"]

#: Start values of the parameters of interest (PHYSICS.md section 4 reference values).
DEFAULT_START = {"LeptonLike": {"K": LL_K_REF, "M": LL_M_REF}, "Pol2": {"c1": POL2_C1_REF, "c2": POL2_C2_REF}}


class TemplateFit:
    """A binned template fit of Delta_alpha_had (module docstring).

    Args:
        template: the reweightable template (:class:`muone.fit.Template`).
        data: observed counts per template bin.
        scale: L_data / L_template.
        model: "LeptonLike" (K, M) or "Pol2" (c1, c2).
        start: start values of the POIs (default: the reference values).
        variations: nuisance parameters (:class:`muone.fit.morphing.Variation`).
        priors: Gaussian constraint width per nuisance (default 1: the variations are +-1 sigma).
        normalisation: "free" | "fixed" | "region" (:mod:`muone.fit.prediction`).
        fit_mask: bins to use (default: every bin with a positive template).
        norm_mask: the normalisation region.
        mc_stat: Barlow-Beeston-lite treatment of the template's MC statistics.
        strategy: MINUIT strategy.
    """

    def __init__(self, template: Template, data: np.ndarray, scale: float, *, model: str = "LeptonLike", start: dict[str, float] | None = None,
                 variations: Sequence[Variation] = (), priors: dict[str, float] | None = None, normalisation: str = "free",
                 fit_mask: np.ndarray | None = None, norm_mask: np.ndarray | None = None, mc_stat: bool = True, strategy: int = 1) -> None:
        if model not in POI_MODELS:
            raise ValueError(f"unknown model {model!r}; the fit knows {', '.join(POI_MODELS)}")
        self.template = template
        self.data = np.asarray(data, dtype=np.float64)
        if self.data.shape != (template.n_bins,):
            raise ValueError(f"data have {self.data.size} bins, the template {template.n_bins}")
        if np.any(self.data < 0) or not np.all(np.isfinite(self.data)):
            raise ValueError("data must be finite, non-negative counts")
        self.model = model
        cls, poi = POI_MODELS[model]
        start = {**DEFAULT_START[model], **(start or {})}
        unknown = set(start) - set(poi)
        if unknown:
            raise ValueError(f"start values for unknown parameters {sorted(unknown)}; {model} has {', '.join(poi)}")
        self.poi = poi
        mu0 = template.expected(cls(*(start[p] for p in poi)))
        usable = mu0 > 0
        mask = usable if fit_mask is None else usable & np.asarray(fit_mask, bool)
        if normalisation == "region":
            if norm_mask is None:
                raise ValueError("normalisation = 'region' needs a normalisation region")
            mask &= ~np.asarray(norm_mask, bool)
        if not mask.any():
            raise ValueError("no bins to fit (the template is empty in the fit region)")
        self.fit_mask = mask
        self.norm_mask = None if norm_mask is None else np.asarray(norm_mask, bool)
        self.excluded_data = float(self.data[~usable & (self.data > 0)].sum())
        self.prediction = Prediction(template, model, scale, variations, normalisation, mask, self.norm_mask, self.data)
        self.variations = list(variations)
        self.priors = {v.name: float((priors or {}).get(v.name, 1.0)) for v in self.variations}
        rel_var = template.mc_relative_variance()[mask] if mc_stat else None
        self.data_term = PoissonDeviance(self.data[mask], self.prediction, self.prediction.parameters, rel_var)
        self.mc_stat = mc_stat
        cost: Cost = self.data_term
        for v in self.variations:
            cost = cost + GaussianConstraint(v.name, 0.0, self.priors[v.name])
        self.cost = cost
        values = {p: float(start[p]) for p in poi}
        if normalisation == "free":
            nu = self.prediction.mu([values[p] for p in poi])[mask] * scale
            values["norm"] = float(self.data[mask].sum() / nu.sum()) if nu.sum() > 0 else 1.0
        for v in self.variations:
            values[v.name] = 0.0
        self.start = values
        self.minuit = self._minuit(values)
        self.fitted = False

    # -- minimisation ----------------------------------------------------------------------

    def _minuit(self, values: dict[str, float]) -> Minuit:
        m = Minuit(self.cost, **{n: values[n] for n in self.cost.parameters})
        m.print_level = 0
        for name in self.cost.parameters:
            if name in self.poi:
                m.errors[name] = max(0.01 * abs(values[name]), 1e-5)
            elif name == "norm":
                m.errors[name] = 1e-3
                m.limits[name] = (0.0, None)
            else:
                m.errors[name] = 0.5
                m.limits[name] = (-10.0 * self.priors[name], 10.0 * self.priors[name])
        if self.model == "LeptonLike":
            m.limits["M"] = (1e-6, None)
        return m

    def fit(self, strategy: int = 1) -> Minuit:
        """MIGRAD then HESSE; returns the Minuit object."""
        m = self.minuit
        m.strategy = strategy
        m.migrad()
        if not m.valid:
            m.migrad()
        m.hesse()
        self.fitted = True
        return m

    @property
    def values(self) -> dict[str, float]:
        return {n: float(self.minuit.values[n]) for n in self.cost.parameters}

    @property
    def args(self) -> np.ndarray:
        """Best-fit values in the order of the prediction's parameters."""
        v = self.values
        return np.array([v[n] for n in self.prediction.parameters])

    def hadronic_model(self, values: dict[str, float] | None = None):
        v = values or self.values
        return self.prediction.model_cls(*(v[p] for p in self.poi))

    def expected(self, values: dict[str, float] | None = None) -> np.ndarray:
        """nu for every bin at the given (default best-fit) values."""
        v = values or self.values
        return self.prediction.full([v[n] for n in self.prediction.parameters])

    @property
    def deviance(self) -> float:
        return float(self.minuit.fval)

    @property
    def ndf(self) -> int:
        """Fitted bins minus the unconstrained free parameters (each constrained nuisance brings
        one constraint term and one parameter)."""
        free = [n for n in self.cost.parameters if not self.minuit.fixed[n] and n not in self.priors]
        return int(self.fit_mask.sum() - len(free))

    # -- uncertainties -----------------------------------------------------------------------

    def covariance(self, free: Iterable[str] | None = None, mc_stat: bool | None = None) -> np.ndarray:
        """HESSE covariance (parameter order ``cost.parameters``) at the best fit with only
        ``free`` parameters free (default: all) and the MC-statistics treatment on/off."""
        names = self.cost.parameters
        m = self._minuit(self.values)
        m.errors = [self.minuit.errors[n] for n in names]
        keep = set(names if free is None else free)
        for n in names:
            m.fixed[n] = n not in keep
        saved = self.data_term.mc_stat
        self.data_term.mc_stat = self.mc_stat if mc_stat is None else (mc_stat and self.data_term.relative_mc_variance is not None)
        try:
            m.hesse()
        finally:
            self.data_term.mc_stat = saved
        cov = np.zeros((len(names), len(names)))
        for i, a in enumerate(names):
            for j, b in enumerate(names):
                if not m.fixed[a] and not m.fixed[b]:
                    cov[i, j] = m.covariance[a, b]
        return cov

    def poi_covariance(self, cov: np.ndarray) -> np.ndarray:
        idx = [self.cost.parameters.index(p) for p in self.poi]
        return cov[np.ix_(idx, idx)]

    def amu(self, cov: np.ndarray, x_max: float) -> dict[str, Any]:
        """a_mu^HLO of the fitted model with its uncertainty from the POI block of ``cov``:
        over x < x_max, and (LeptonLike) the full integral."""
        v = self.values
        params = {p: v[p] for p in self.poi}
        model = self.hadronic_model()
        c = self.poi_covariance(cov)
        out = {"measured_region": {"x_max": x_max, "value": amu_hlo(model, x_max), "error": amu_hlo_uncertainty(self.prediction.model_cls, params, c, x_max)}}
        if not getattr(model, "requires_x_max", False):
            out["full"] = {"value": amu_hlo(model), "error": amu_hlo_uncertainty(self.prediction.model_cls, params, c)}
        return out

    def breakdown(self, x_max: float) -> dict[str, Any]:
        """Uncertainties of the POIs and of a_mu^HLO: total, stat, each systematic, MC statistics
        (module docstring)."""
        nuis = [v.name for v in self.variations]
        base = [n for n in self.cost.parameters if n not in nuis]
        configs: dict[str, tuple[list[str], bool]] = {"total": (list(self.cost.parameters), self.mc_stat), "stat": (base, False)}
        for n in nuis:
            configs[n] = (base + [n], False)
        if self.mc_stat:
            configs["mc_stat"] = (base, True)
        sigmas: dict[str, dict[str, float]] = {}
        for label, (free, mc) in configs.items():
            cov = self.covariance(free, mc)
            a = self.amu(cov, x_max)
            entry = {p: math.sqrt(max(cov[i, i], 0.0)) for i, p in enumerate(self.cost.parameters) if p in self.poi}
            entry["amu_measured_region"] = a["measured_region"]["error"]
            if "full" in a:
                entry["amu_full"] = a["full"]["error"]
            sigmas[label] = entry
        shares: dict[str, dict[str, float]] = {}
        stat = sigmas["stat"]
        for label, entry in sigmas.items():
            if label in ("total", "stat"):
                continue
            shares[label] = {k: math.sqrt(max(entry[k] ** 2 - stat[k] ** 2, 0.0)) for k in entry}
        quad = {k: math.sqrt(stat[k] ** 2 + sum(s[k] ** 2 for s in shares.values())) for k in stat}
        return {"total": sigmas["total"], "stat": stat, "systematic": {k: v for k, v in shares.items() if k != "mc_stat"},
                "mc_stat": shares.get("mc_stat"), "quadrature_sum": quad}

    # -- scans -------------------------------------------------------------------------------

    def profile(self, name: str, size: int = 21, bound: float = 3.0) -> dict[str, list[float]]:
        """Profile-likelihood scan of one parameter (others minimised): values and
        Delta deviance relative to the best fit, +-bound standard deviations."""
        x, y, ok = self.minuit.mnprofile(name, size=size, bound=bound)
        return {"values": [float(a) for a in x], "delta_deviance": [float(b - self.minuit.fval) for b in y], "valid": [bool(s) for s in ok]}

    def contour(self, cl: float, size: int = 32) -> np.ndarray:
        """(size, 2) points of the profile-likelihood confidence region of the two POIs at
        confidence level cl (a probability, two degrees of freedom); falls back to the HESSE
        ellipse when MINOS fails."""
        x, y = self.poi
        try:
            pts = np.asarray(self.minuit.mncontour(x, y, cl=cl, size=size, interpolated=8 * size))
            if pts.ndim == 2 and len(pts) >= 4 and np.all(np.isfinite(pts)):
                return pts
        except (RuntimeError, ValueError):
            pass
        return self.ellipse(cl, size)

    def ellipse(self, cl: float, size: int = 64) -> np.ndarray:
        """The HESSE ellipse of the two POIs at confidence level cl (two degrees of freedom)."""
        from scipy.stats import chi2

        c = self.poi_covariance(self.covariance())
        r = math.sqrt(chi2.ppf(cl, 2))
        w, v = np.linalg.eigh(c)
        phi = np.linspace(0, 2 * math.pi, size)
        circle = np.stack([np.cos(phi), np.sin(phi)])
        pts = (v @ (np.sqrt(np.maximum(w, 0))[:, None] * circle)) * r
        centre = np.array([self.values[p] for p in self.poi])
        return (pts + centre[:, None]).T

    def grid(self, points: int = 21, nsigma: float = 5.0, profile: bool = True) -> dict[str, Any]:
        """Delta deviance on a points x points grid of the two POIs over +-nsigma (HESSE errors),
        the other parameters minimised at each point (``profile``) or kept at the best fit; with
        the paraboloid fitted to it (MUonE's procedure) and its minimum and covariance."""
        x, y = self.poi
        best = self.values
        sx, sy = self.minuit.errors[x], self.minuit.errors[y]
        xs = best[x] + np.linspace(-nsigma, nsigma, points) * sx
        ys = best[y] + np.linspace(-nsigma, nsigma, points) * sy
        dev = np.full((points, points), np.nan)
        others = [n for n in self.cost.parameters if n not in self.poi]
        m = self._minuit(best)
        m.errors = [self.minuit.errors[n] for n in self.cost.parameters]
        m.fixed[x] = m.fixed[y] = True
        for i, xv in enumerate(xs):
            for j, yv in enumerate(ys):
                values = dict(best, **{x: float(xv), y: float(yv)})
                if profile and others:
                    for n in self.cost.parameters:
                        m.values[n] = values[n]
                    m.migrad()
                    dev[i, j] = m.fval
                else:
                    dev[i, j] = self.cost(*[values[n] for n in self.cost.parameters])
        dev = np.where(dev >= 1e299, np.nan, dev) - self.minuit.fval
        return {"parameters": [x, y], "x": xs.tolist(), "y": ys.tolist(), "delta_deviance": dev.tolist(), "profiled": bool(profile and others),
                "paraboloid": paraboloid(xs, ys, dev)}


def paraboloid(xs: np.ndarray, ys: np.ndarray, dev: np.ndarray, max_delta: float = 11.8) -> dict[str, Any]:
    """Least-squares paraboloid D = a + b x + c y + d x^2 + e x y + f y^2 through the grid points
    with Delta deviance below ``max_delta`` (default 11.8: the 3 sigma region of two parameters;
    farther points feel the non-quadratic shape), coordinates normalised to the grid; returns its
    minimum and covariance 2 H^-1."""
    X, Y = np.meshgrid(xs, ys, indexing="ij")
    ok = np.isfinite(dev) & (dev <= max_delta)
    if ok.sum() < 6:
        return {}
    cx, cy = xs.mean(), ys.mean()
    hx, hy = (xs.max() - xs.min()) / 2 or 1.0, (ys.max() - ys.min()) / 2 or 1.0
    u, v = (X[ok] - cx) / hx, (Y[ok] - cy) / hy
    A = np.stack([np.ones_like(u), u, v, u * u, u * v, v * v], axis=1)
    coef, *_ = np.linalg.lstsq(A, dev[ok], rcond=None)
    _, b, c, d, e, f = coef
    H = np.array([[2 * d, e], [e, 2 * f]])
    try:
        centre = np.linalg.solve(H, -np.array([b, c]))
        cov_n = 2.0 * np.linalg.inv(H)
    except np.linalg.LinAlgError:
        return {}
    scale = np.diag([hx, hy])
    cov = scale @ cov_n @ scale
    return {"minimum": [float(cx + centre[0] * hx), float(cy + centre[1] * hy)], "covariance": cov.tolist(), "points": int(ok.sum()), "max_delta": max_delta,
            "errors": [float(math.sqrt(max(cov[0, 0], 0))), float(math.sqrt(max(cov[1, 1], 0)))]}
