"""The complete template-fit analysis behind the ``template_fit`` finalizer: inputs -> fit ->
uncertainty breakdown -> a_mu^HLO -> scans, contours, optional grid and pseudo-experiments ->
plots, returned as the content of fit.json (docs/fit.md).

:func:`run_analysis` takes the finalizer's parameters (any object with the attributes of
``muone.plugins.template_fit.TemplateFitParams``) and the merged results of the input jobs, so it
can also be called from a notebook with ``muone.Results.load`` objects.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from muone.errors import InputError
from muone.fit import plots
from muone.fit.fitter import TemplateFit
from muone.fit.inputs import equivalent_luminosity, find_counts, find_template
from muone.fit.morphing import Variation
from muone.fit.prediction import POI_MODELS
from muone.fit.pseudodata import expected_counts, poisson
from muone.fit.regions import region_mask
from muone.fit.template import Template
from muone.fit.toys import pseudo_experiments
from muone.physics.amu import amu_hlo
from muone.physics.constants import LL_K_REF, LL_M_REF
from muone.physics.kinematics import x_max as x_max_of
from muone.physics.model_table import hadronic_model

__all__ = ["CONTOUR_LEVELS", "run_analysis"]

#: Confidence levels of the POI contours: the probability contents of 1 and 2 standard deviations
#: (two parameters: Delta deviance 2.30 and 6.18).
CONTOUR_LEVELS = {"1 sigma (68.3 %)": 0.6827, "2 sigma (95.4 %)": 0.9545}


def variations_from_inputs(params: Any, template: Template, lumi: float, inputs: dict[str, Any]) -> list[Variation]:
    """The nuisance parameters of ``params.nuisances`` from the input jobs' templates (each
    normalised by its job's equivalent luminosity, the nominal by ``lumi``)."""
    nominal = template.sumw / lumi
    out = []
    for name, spec in params.nuisances.items():
        contents = []
        for ref in (spec.up, spec.down):
            if not ref:
                contents.append(None)
                continue
            t = find_template(ref, inputs)
            why = template.compatible(t)
            if why is not None and why.startswith("different axes"):
                raise InputError(f"nuisance {name!r}: template {ref!r} has {why} than the nominal template")
            contents.append(t.sumw / (equivalent_luminosity(ref, inputs) or lumi))
        out.append(Variation.from_contents(name, nominal, contents[0], contents[1]))
    return out


def _truth_table(params: Any) -> dict[str, Any]:
    return dict(params.truth) if params.truth else {"model": "LeptonLike", "K": LL_K_REF, "M": LL_M_REF}


def run_analysis(params: Any, inputs: dict[str, Any], output_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run the fit described by ``params`` on the input jobs; write plots into output_dir/plots.

    Returns (content of fit.json, results to store: hist objects of data and best fit)."""
    t_start = time.perf_counter()
    template = find_template(params.template, inputs)
    if not template.has_truth:
        raise InputError(f"template {params.template!r} was filled without truth (t = \"\"): it cannot be reweighted")
    lumi_template = equivalent_luminosity(params.template, inputs)
    if not lumi_template:
        raise InputError(f"template {params.template!r}: its job reports no equivalent luminosity (the source needs a cross section)")
    norm_mask = region_mask(template, params.normalisation_region) if params.normalisation_region else np.zeros(template.n_bins, bool)
    signal_mask = region_mask(template, params.signal_region) if params.signal_region else ~norm_mask
    fit_mask = norm_mask | signal_mask
    variations = variations_from_inputs(params, template, lumi_template, inputs)
    priors = {name: spec.prior for name, spec in params.nuisances.items()}
    x_max = float(x_max_of(params.beam_energy))
    info: dict[str, Any] = {"model": params.model, "inputs": {"template": params.template, "data": params.data,
                            "nuisances": {k: {"up": v.up, "down": v.down, "prior": v.prior} for k, v in params.nuisances.items()}}}
    truth_model = None
    if params.data:
        mode = "data"
        data = find_counts(params.data, inputs, template)
        lumi = params.luminosity or equivalent_luminosity(params.data, inputs)
        if not lumi:
            if params.normalisation == "fixed":
                raise InputError("normalisation = \"fixed\" needs the data luminosity: set luminosity (nb^-1)")
            lumi = lumi_template * data[fit_mask].sum() / max(template.sumw[fit_mask].sum(), 1e-300)
        mc_stat = params.mc_stat
    else:
        mode = "sensitivity"
        if not params.luminosity > 0:
            raise InputError("sensitivity mode (no data input) needs luminosity > 0 (nb^-1)")
        lumi = params.luminosity
        truth_model = hadronic_model(_truth_table(params))
        expected = expected_counts(template, truth_model, lumi / lumi_template, variations, params.pseudo_nuisances)
        data = expected if params.pseudo_data == "asimov" else poisson(expected, np.random.default_rng(params.seed))
        mc_stat = False
        info["pseudo_data"] = {"kind": params.pseudo_data, "seed": params.seed if params.pseudo_data == "poisson" else None,
                               "truth": _truth_table(params), "nuisances": dict(params.pseudo_nuisances)}
    scale = lumi / lumi_template

    def make_fit(counts: np.ndarray) -> TemplateFit:
        return TemplateFit(template, counts, scale, model=params.model, start=params.start or None, variations=variations, priors=priors,
                           normalisation=params.normalisation, fit_mask=fit_mask, norm_mask=norm_mask, mc_stat=mc_stat)

    fit = make_fit(data)
    m = fit.fit()
    breakdown = fit.breakdown(x_max)
    cov = fit.covariance()
    names = list(fit.cost.parameters)
    err = np.sqrt(np.maximum(np.diag(cov), 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = np.where(np.outer(err, err) > 0, cov / np.outer(err, err), 0.0)
    amu = fit.amu(cov, x_max)
    for region, key in (("measured_region", "amu_measured_region"), ("full", "amu_full")):
        if region in amu:
            amu[region]["stat"] = breakdown["stat"][key]
            amu[region]["systematic"] = {k: v[key] for k, v in breakdown["systematic"].items()}
            amu[region]["mc_stat"] = breakdown["mc_stat"][key] if breakdown["mc_stat"] else 0.0
            amu[region]["relative_error"] = amu[region]["error"] / abs(amu[region]["value"]) if amu[region]["value"] else None
    expected_best = fit.expected()
    result: dict[str, Any] = {
        "mode": mode, **info,
        "luminosity_nb": lumi, "template_luminosity_nb": lumi_template, "scale": scale,
        "normalisation": {"mode": params.normalisation, "value": fit.prediction.norm_value(fit.args), "region": params.normalisation_region,
                          "bins": int(norm_mask.sum()), "data": float(data[norm_mask].sum()), "expected": float(expected_best[norm_mask].sum())},
        "signal_region": {"expression": params.signal_region or "not normalisation region", "bins": int((signal_mask & fit.fit_mask).sum()),
                          "data": float(data[signal_mask].sum()), "expected": float(expected_best[signal_mask].sum())},
        "mc_stat": mc_stat,
        "valid": bool(m.valid), "nfcn": int(m.nfcn), "edm": float(m.fmin.edm),
        "parameters": {n: {"value": float(m.values[n]), "error": float(err[i]), "start": float(fit.start[n])} for i, n in enumerate(names)},
        "covariance": {"parameters": names, "matrix": cov.tolist()},
        "correlation": {"parameters": names, "matrix": corr.tolist()},
        "deviance": fit.deviance, "ndf": fit.ndf, "chi2_ndf": fit.deviance / fit.ndf if fit.ndf > 0 else None,
        "n_bins": int(fit.fit_mask.sum()), "data_outside_template": fit.excluded_data,
        "amu_hlo": amu,
        "uncertainties": breakdown,
    }
    if truth_model is not None:
        truth_info: dict[str, Any] = {"model": truth_model.to_table(), "amu_measured_region": amu_hlo(truth_model, x_max)}
        if not getattr(truth_model, "requires_x_max", False):
            truth_info["amu_full"] = amu_hlo(truth_model)
        result["truth"] = truth_info
    poi = fit.poi
    if params.scans:
        result["scans"] = {p: fit.profile(p, size=params.scan_points, bound=3.0) for p in poi}
    if params.contours:
        result["contours"] = {label: fit.contour(cl).tolist() for label, cl in CONTOUR_LEVELS.items()}
    if params.grid:
        result["grid"] = fit.grid(params.grid_points, params.grid_range, params.grid_profile)
    if params.toys > 0:
        truth_poi = {p: m.values[p] for p in poi}
        if truth_model is not None and isinstance(truth_model, POI_MODELS[params.model][0]):
            truth_poi = {p: truth_model.params[p] for p in poi}
        expected_toys = expected_counts(template, fit.prediction.model_cls(*(truth_poi[p] for p in poi)), scale, variations)
        toys = pseudo_experiments(make_fit, expected_toys, truth_poi, params.toys, np.random.default_rng(params.seed + 1), x_max)
        result["pseudo_experiments"] = {"n": toys["n"], "n_valid": toys["n_valid"], "truth": truth_poi, "pulls": toys["summary"]}
    if params.plots:
        result["plots"] = _plots(params, fit, template, data, expected_best, norm_mask, result, truth_model, output_dir)
    result["seconds"] = time.perf_counter() - t_start
    return result, _hists(template, data, expected_best)


def _plots(params: Any, fit: TemplateFit, template: Template, data: np.ndarray, expected: np.ndarray, norm_mask: np.ndarray,
           result: dict[str, Any], truth_model: Any, output_dir: Path) -> list[str]:
    out = Path(output_dir) / "plots"
    lumi = result["luminosity_nb"]
    title = f"{result['mode']}: {params.model}, L = {lumi:.3g} nb$^{{-1}}$"
    if result["mode"] == "sensitivity":
        title += f" ({params.pseudo_data})"
    poi = fit.poi
    written = []
    if "contours" in result:
        truth = None
        if truth_model is not None and isinstance(truth_model, fit.prediction.model_cls):
            truth = [truth_model.params[p] for p in poi]
        best = [fit.values[p] for p in poi]
        written += plots.contour_plot(out / f"contour_{poi[0]}_{poi[1]}", poi, best, {k: np.asarray(v) for k, v in result["contours"].items()}, truth, title)
    if "scans" in result:
        written += plots.scan_plots(out / "scan", result["scans"], title)
    axis = params.projection_axis if params.projection_axis in [a.name for a in template.axes] else template.axes[0].name
    shown = fit.fit_mask | (norm_mask & (expected > 0))  # "region" mode fits the signal region only
    written += plots.projection_plot(out / f"projection_{axis}", template.axes, axis, np.where(shown, data, 0.0),
                                     np.where(shown, expected, 0.0), norm_mask, title)
    if "grid" in result:
        written += plots.grid_plot(out / f"grid_{poi[0]}_{poi[1]}", result["grid"], title)
    return [str(Path(p).relative_to(output_dir)) for p in written]


def _hists(template: Template, data: np.ndarray, expected: np.ndarray) -> dict[str, Any]:
    import hist

    out = {}
    for name, values in (("data", data), ("best_fit", expected)):
        h = hist.Hist(*[hist.axis.Variable(a.edges, name=a.name, label=a.label) for a in template.axes], storage=hist.storage.Double())
        h.view(flow=False)[...] = np.asarray(values).reshape(template.shape)
        out[name] = h
    return out
