"""Finalizer ``template_fit``: the binned template fit of Delta_alpha_had and a_mu^HLO.

A finalizer-only job reads the template job, the data job and the systematic-variation jobs
through ``[job] inputs`` and writes fit.json and plots/ (docs/fit.md)::

    [job]
    output_dir = "out/fit"
    inputs = { mc = "out/templates", data = "out/data" }

    [[finalizers]]
    plugin = "template_fit"
    template = "mc/templates"
    data = "data"                    # empty: sensitivity mode (pseudo-data from the template)
    model = "LeptonLike"
    [finalizers.nuisances.beam_energy]
    up = "mc/templates_beam_up"
    down = "mc/templates_beam_down"

The work is done by :func:`muone.fit.analysis.run_analysis`.
"""

from __future__ import annotations

from typing import Any, Literal

from muone import hookimpl, outputs
from muone.errors import InputError
from muone.expressions import expression_problems
from muone.fit.inputs import split_reference
from muone.physics.model_table import hadronic_model
from muone.processor import Context, Finalizer, Params
from pydantic import BaseModel, ConfigDict, Field


class NuisanceSpec(BaseModel):
    """One nuisance parameter: the templates of its +1 sigma and -1 sigma variations."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    up: str = Field(..., min_length=1, description="Template of the +1 sigma variation (NAME or NAME/INSTANCE of [job] inputs).")
    down: str = Field("", description="Template of the -1 sigma variation (empty: one-sided, mirrored).")
    prior: float = Field(1.0, gt=0.0, description="Width of the Gaussian constraint in units of the variation.")


class TemplateFitParams(Params):
    template: str = Field("template", min_length=1, description="Template: NAME or NAME/INSTANCE of [job] inputs.")
    data: str = Field("data", description="Data: NAME, NAME/INSTANCE (a template's counts) or NAME/INSTANCE/HIST of [job] inputs; empty: sensitivity mode (pseudo-data from the template).")
    model: Literal["LeptonLike", "Pol2"] = Field("LeptonLike", description="Parametrisation fitted: LeptonLike (K, M) or Pol2 (c1, c2).")
    start: dict[str, float] = Field(default_factory=dict, description="Start values of the parameters of interest (default: reference values).")
    normalisation: Literal["free", "fixed", "region"] = Field("free", description="free: a fitted factor; fixed: the luminosity is known; region: fixed to data/prediction in the normalisation region, signal region fitted.")
    normalisation_region: str = Field("theta_e > 0.010", description="Normalisation region: expression on the axes' bin centres (small |t|: theta_e > 10 mrad, i.e. E_e < ~10 GeV).")
    signal_region: str = Field("", description="Signal region: expression on the bin centres (default: the bins outside the normalisation region).")
    mc_stat: bool = Field(True, description="Barlow-Beeston-lite treatment of the template's MC statistics (data mode; off in sensitivity mode).")
    luminosity: float = Field(0.0, ge=0.0, description="Data luminosity [nb^-1] (0: the data job's equivalent luminosity); the target luminosity in sensitivity mode.")
    pseudo_data: Literal["asimov", "poisson"] = Field("asimov", description="Sensitivity mode: Asimov (expected counts) or Poisson-fluctuated pseudo-data.")
    seed: int = Field(1, ge=0, description="Seed of the Poisson pseudo-data and pseudo-experiments.")
    truth: dict[str, Any] = Field(default_factory=dict, description="Hadronic model of the pseudo-data (table form; default the reference LeptonLike).")
    pseudo_nuisances: dict[str, float] = Field(default_factory=dict, description="Nuisance values (in sigma) of the pseudo-data (default 0).")
    nuisances: dict[str, NuisanceSpec] = Field(default_factory=dict, description="Nuisance parameters by name: [finalizers.nuisances.NAME] tables with up/down templates.")
    beam_energy: float = Field(160.0, gt=1.0, description="Beam energy [GeV] setting x_max = x(t_min) of the measured a_mu region.")
    scans: bool = Field(True, description="Profile-likelihood scans of the parameters of interest.")
    scan_points: int = Field(21, ge=3, le=201, description="Points per scan (+-3 sigma).")
    contours: bool = Field(True, description="1 and 2 sigma contours of the two parameters of interest (MINOS).")
    grid: bool = Field(False, description="Grid scan of the two parameters of interest (MUonE: 21 x 21, +-5 sigma) with a paraboloid fit.")
    grid_points: int = Field(21, ge=3, le=101, description="Grid points per parameter.")
    grid_range: float = Field(5.0, gt=0.0, le=20.0, description="Grid half-width in standard deviations.")
    grid_profile: bool = Field(True, description="Minimise the other parameters at each grid point (else keep them at the best fit).")
    toys: int = Field(0, ge=0, le=100_000, description="Poisson pseudo-experiments for a bias check (pull means and widths in fit.json).")
    plots: bool = Field(True, description="Write plots (PNG and PDF) into plots/.")
    projection_axis: str = Field("theta_e", description="Axis of the data vs best-fit projection plot.")


class TemplateFit(Finalizer):
    """Binned Poisson template fit of Delta_alpha_had (LeptonLike or Pol2) with nuisances; writes fit.json (a_mu^HLO) and plots."""

    name = "template_fit"
    Params = TemplateFitParams

    @classmethod
    def check(cls, params: TemplateFitParams, steering: Any) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        inputs = steering.job.inputs
        refs = [("template", params.template), ("data", params.data)]
        refs += [(f"nuisances.{n}.{side}", getattr(s, side)) for n, s in params.nuisances.items() for side in ("up", "down")]
        for key, ref in refs:
            if not ref:
                continue
            try:
                name = split_reference(ref)[0]
            except InputError as exc:
                problems.append((key, str(exc)))
                continue
            if name not in inputs:
                hint = "; set data = \"\" for a sensitivity fit (pseudo-data from the template)" if key == "data" else ""
                problems.append((key, f"{name!r} is not a [job] inputs name (inputs: {', '.join(inputs) or 'none'}){hint}"))
        if not params.data and params.luminosity <= 0:
            problems.append(("luminosity", "sensitivity mode (no data) needs the target luminosity in nb^-1"))
        if params.truth:
            try:
                hadronic_model(params.truth)
            except ValueError as exc:
                problems.append(("truth", str(exc)))
        from muone.fit.prediction import POI_MODELS

        unknown = set(params.start) - set(POI_MODELS[params.model][1])
        if unknown:
            problems.append(("start", f"unknown parameters {sorted(unknown)}; {params.model} has {', '.join(POI_MODELS[params.model][1])}"))
        unknown = set(params.pseudo_nuisances) - set(params.nuisances)
        if unknown:
            problems.append(("pseudo_nuisances", f"not nuisance parameters: {sorted(unknown)}"))
        reserved = {"norm", "K", "M", "c1", "c2"} & set(params.nuisances)
        if reserved:
            problems.append(("nuisances", f"names reserved for fit parameters: {sorted(reserved)}"))
        problems += expression_problems([("normalisation_region", params.normalisation_region), ("signal_region", params.signal_region)])
        if params.normalisation == "region" and not params.normalisation_region:
            problems.append(("normalisation_region", "normalisation = \"region\" needs a normalisation region"))
        return problems

    def finalize(self, results: dict[str, Any], context: Context) -> dict[str, Any]:
        from muone.fit.analysis import run_analysis

        fit, hists = run_analysis(self.params, context.inputs, context.output_dir)
        outputs.write_json(context.output_dir / "fit.json", fit)
        return {**hists, "summary": fit_summary(fit)}


def fit_summary(fit: dict[str, Any]) -> list[str]:
    """The lines printed after the job: parameters and a_mu^HLO with its uncertainties."""
    lines = [f"template fit ({fit['mode']}, {fit['model']}, luminosity {fit['luminosity_nb']:.3g} nb^-1): deviance/ndf = {fit['chi2_ndf']:.3f}"]
    for name, p in fit["parameters"].items():
        lines.append(f"  {name} = {p['value']:.6g} +- {p['error']:.3g}")
    for region, a in fit.get("amu_hlo", {}).items():
        syst = ", ".join(f"{k} {v * 1e10:.3f}" for k, v in a.get("systematic", {}).items())
        lines.append(
            f"  a_mu^HLO ({region.replace('_', ' ')}) = ({a['value'] * 1e10:.2f} +- {a['stat'] * 1e10:.2f} (stat)"
            f" +- {a['error'] * 1e10:.2f} (total)) x 1e-10, relative {a['relative_error']:.2%}" + (f"; syst: {syst}" if syst else "")
        )
    return lines


@hookimpl
def muone_plugins() -> list[type]:
    return [TemplateFit]
