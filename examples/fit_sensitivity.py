"""The numbers of docs/fit.md: MUonE's statistical sensitivity to a_mu^HLO, the LS3 scenario and
the model dependence of the fit, from generator-level templates.

1. Templates (one job, ``--events`` elastic events at 160 GeV, E_e > 1 GeV, reference LeptonLike
   running, M2 beam with 3.75 % energy spread): MUonE 2D binning (theta_e x theta_mu) with
   (a) true angles and (b) a realistic resolution (20 urad intrinsic + Highland multiple scattering
   in x/X0 = 0.028), and (c) the 1D theta_e binning with the realistic resolution.
2. Sensitivity: Asimov pseudo-data at 1.5e7 nb^-1 (MUonE's full luminosity: 40 stations x 3 years,
   60 cm Be), LeptonLike (K, M) fit with the three normalisation modes; Pol2 (c1, c2).
   Published: sigma_stat(a_mu^HLO) = 2.4e-10 for a_mu^HLO = 688.6e-10 (0.35 %).
3. LS3 scenario: 10 stations (1.5 cm Be each), 4 months; the luminosity from the numbers below.
4. Model dependence: Asimov data from the Dispersive model (templates reweighted to it), fitted
   with LeptonLike and with Pol2; bias of the x < x_max integral (both) and of the full a_mu^HLO
   (LeptonLike).
5. ``--toys N``: bias check with N Poisson pseudo-experiments at 1.5e7 nb^-1.

    .venv/bin/python examples/fit_sensitivity.py [--events 4000000] [--workers 2] [--toys 200]

Writes out/fit_sensitivity/results.json and prints markdown tables.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import muone
import numpy as np
from muone import physics as P
from muone.fit.fitter import TemplateFit
from muone.fit.pseudodata import expected_counts
from muone.fit.regions import region_mask
from muone.fit.toys import pseudo_experiments

ROOT = Path(__file__).resolve().parents[1]
L_FULL = 1.5e7  # nb^-1
PUBLISHED_SIGMA = 2.4e-10
LL_REF = P.LeptonLike(P.LL_K_REF, P.LL_M_REF)
X_MAX = float(P.x_max(160.0))

# -- the LS3 luminosity -------------------------------------------------------------------------
AVOGADRO = 6.02214076e23
BE = {"density_g_cm3": 1.848, "Z": 4, "A": 9.0122}
LS3 = {
    "stations": 10,
    "target_cm": 1.5,  # Be per station
    "muon_rate_per_s": 5e7,  # M2 in-spill rate (PHYSICS.md section 7)
    "days": 120,  # 4 months
    "spill_duty_cycle": 4.8 / 14.4,  # 4.8 s spill per 14.4 s SPS supercycle
    "efficiency": 0.5,  # SPS/North-Area availability x data-taking efficiency
}


def luminosity_nb(stations: int, target_cm: float, muon_rate_per_s: float, days: float, spill_duty_cycle: float, efficiency: float) -> dict[str, float]:
    """Integrated mu-e luminosity [nb^-1] = electrons/cm^2 of all targets x muon rate x live time."""
    electrons_cm3 = BE["density_g_cm3"] * AVOGADRO * BE["Z"] / BE["A"]
    electrons_cm2 = electrons_cm3 * target_cm * stations
    live_s = days * 86400.0 * spill_duty_cycle * efficiency
    instantaneous = electrons_cm2 * muon_rate_per_s  # cm^-2 s^-1
    return {"electrons_per_cm3": electrons_cm3, "electrons_per_cm2": electrons_cm2, "live_seconds": live_s,
            "instantaneous_cm2_s": instantaneous, "luminosity_nb": instantaneous * live_s / 1e33}


# -- templates ------------------------------------------------------------------------------------
def make_templates(out: Path, events: int, workers: int) -> muone.Results:
    realistic = {"resolution": 2e-5, "ms_radiation_lengths": 0.028}
    steering = {
        "job": {"events": events, "chunk_size": 500_000, "seed": 777, "executor": "processes", "workers": workers, "output_dir": str(out)},
        "source": {"plugin": "elastic", "ee_min": 1.0},
        "processors": [
            {"plugin": "truth_angles", "name": "true_angles", "output": "true_angles"},
            {"plugin": "truth_angles", "name": "smeared_angles", "output": "truth", **realistic},
            {"plugin": "templates", "name": "truth2d", "preset": "muone2d", "observables": ["true_angles.theta_e", "true_angles.theta_mu"]},
            {"plugin": "templates", "name": "realistic2d", "preset": "muone2d"},
            {"plugin": "templates", "name": "realistic1d", "preset": "theta_e"},
        ],
    }
    return muone.run(steering)


def fit_asimov(tp, lumi_template, truth, lumi, model="LeptonLike", normalisation="free"):
    scale = lumi / lumi_template
    nr = region_mask(tp, "theta_e > 0.010")
    fit = TemplateFit(tp, expected_counts(tp, truth, scale), scale, model=model, normalisation=normalisation, norm_mask=nr, mc_stat=False)
    m = fit.fit()
    cov = fit.covariance()
    return fit, m, fit.amu(cov, X_MAX)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=4_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--toys", type=int, default=0)
    parser.add_argument("--output", default=str(ROOT / "out" / "fit_sensitivity"))
    args = parser.parse_args()
    out = Path(args.output)
    t0 = time.perf_counter()
    mc = make_templates(out / "templates", args.events, args.workers)
    lumi_t = mc.report["source"]["equivalent_luminosity_nb"]
    print(f"templates: {args.events:,} events, sigma = {mc.cross_section:.4f} ub, L_template = {lumi_t:.4g} nb^-1 ({time.perf_counter() - t0:.0f} s)\n")
    results: dict[str, object] = {"events": args.events, "template_luminosity_nb": lumi_t}

    amu_ref = P.amu_hlo(LL_REF)
    print(f"## Sensitivity at {L_FULL:.3g} nb^-1 (Asimov, reference LeptonLike truth: a_mu^HLO = {amu_ref * 1e10:.1f}e-10)\n")
    print("| template | model | normalisation | sigma(K) | sigma(M) | sigma(a_mu) full [1e-10] | rel. | sigma(a_mu, x<x_max) [1e-10] | vs published 2.4e-10 |")
    print("|---|---|---|---|---|---|---|---|---|")
    sens = []
    for name in ("truth2d", "realistic2d", "realistic1d"):
        tp = mc.merged[name]["template"]
        for normalisation in ("free", "fixed", "region"):
            fit, m, a = fit_asimov(tp, lumi_t, LL_REF, L_FULL, normalisation=normalisation)
            full, meas = a["full"]["error"], a["measured_region"]["error"]
            sens.append({"template": name, "model": "LeptonLike", "normalisation": normalisation, "sigma_K": m.errors["K"], "sigma_M": m.errors["M"],
                         "sigma_amu_full": full, "sigma_amu_measured": meas, "valid": m.valid})
            print(f"| {name} | LeptonLike | {normalisation} | {m.errors['K']:.5f} | {m.errors['M']:.5f} | {full * 1e10:.2f} | {full / amu_ref * 100:.2f} % | "
                  f"{meas * 1e10:.2f} | {(full / PUBLISHED_SIGMA - 1) * 100:+.0f} % |")
        fit, m, a = fit_asimov(tp, lumi_t, P.Pol2(P.POL2_C1_REF, P.POL2_C2_REF), L_FULL, model="Pol2")
        sens.append({"template": name, "model": "Pol2", "normalisation": "free", "sigma_c1": m.errors["c1"], "sigma_c2": m.errors["c2"],
                     "sigma_amu_measured": a["measured_region"]["error"], "valid": m.valid})
        print(f"| {name} | Pol2 | free | c1: {m.errors['c1']:.2e} | c2: {m.errors['c2']:.2e} | - | - | {a['measured_region']['error'] * 1e10:.2f} | - |")
    results["sensitivity"] = sens

    lumi = luminosity_nb(**LS3)
    full40 = luminosity_nb(**dict(LS3, stations=40, days=3 * 200))
    tp = mc.merged["realistic2d"]["template"]
    fit, m, a = fit_asimov(tp, lumi_t, LL_REF, lumi["luminosity_nb"])
    rel = a["full"]["error"] / amu_ref
    print("\n## LS3 scenario\n")
    print(f"electrons: {lumi['electrons_per_cm3']:.4g} /cm^3 in Be -> {lumi['electrons_per_cm2']:.4g} /cm^2 for {LS3['stations']} x {LS3['target_cm']} cm; "
          f"instantaneous {lumi['instantaneous_cm2_s']:.3g} cm^-2 s^-1 at {LS3['muon_rate_per_s']:.2g} mu/s")
    print(f"live time {LS3['days']} d x {LS3['spill_duty_cycle']:.3f} (spill duty) x {LS3['efficiency']} (efficiency) = {lumi['live_seconds']:.3g} s "
          f"-> L = {lumi['luminosity_nb']:.3g} nb^-1")
    print(f"sigma_stat(a_mu^HLO) = {a['full']['error'] * 1e10:.2f}e-10 = {rel * 100:.2f} % (realistic 2D, free normalisation); "
          f"the same assumptions for 40 stations x 3 years of 200 days give {full40['luminosity_nb']:.3g} nb^-1 (published: 1.5e7)")
    results["ls3"] = {"assumptions": LS3, **lumi, "sigma_amu_full": a["full"]["error"], "relative": rel, "full_40_stations_3_years_nb": full40["luminosity_nb"]}

    print(f"\n## Model dependence: Dispersive truth, Asimov at {L_FULL:.3g} nb^-1, realistic 2D template, free normalisation\n")
    truth = P.Dispersive()
    true_meas, true_full = P.amu_hlo(truth, X_MAX), P.amu_hlo(truth)
    print(f"truth: a_mu^HLO(x < {X_MAX:.3f}) = {true_meas * 1e10:.2f}e-10, full {true_full * 1e10:.2f}e-10 (time-like {truth.amu_hlo_timelike() * 1e10:.2f}e-10)\n")
    print("| truth | fitted model | deviance | bias x<x_max [1e-10] | / sigma | bias full [1e-10] | / sigma |")
    print("|---|---|---|---|---|---|---|")
    dep = []
    for truth_name, truth_model in (("Dispersive", truth), ("LeptonLike ref", LL_REF)):
        t_meas, t_full = P.amu_hlo(truth_model, X_MAX), P.amu_hlo(truth_model)
        for model in ("LeptonLike", "Pol2"):
            fit, m, a = fit_asimov(tp, lumi_t, truth_model, L_FULL, model=model)
            bm = a["measured_region"]["value"] - t_meas
            row = {"truth": truth_name, "model": model, "deviance": fit.deviance, "bias_measured": bm, "sigma_measured": a["measured_region"]["error"],
                   "fitted": {p: m.values[p] for p in fit.poi}}
            line = f"| {truth_name} | {model} | {fit.deviance:.3g} | {bm * 1e10:+.2f} | {bm / a['measured_region']['error']:+.2f} |"
            if "full" in a:
                bf = a["full"]["value"] - t_full
                row.update(bias_full=bf, sigma_full=a["full"]["error"])
                line += f" {bf * 1e10:+.2f} | {bf / a['full']['error']:+.2f} |"
            else:
                line += " - | - |"
            dep.append(row)
            print(line)
    results["model_dependence"] = dep

    if args.toys:
        nr = region_mask(tp, "theta_e > 0.010")
        scale = L_FULL / lumi_t
        toys = pseudo_experiments(lambda n: TemplateFit(tp, n, scale, norm_mask=nr, mc_stat=False), expected_counts(tp, LL_REF, scale),
                                  {"K": LL_REF.K, "M": LL_REF.M}, args.toys, np.random.default_rng(2025), X_MAX)
        print(f"\n## Bias check: {args.toys} Poisson pseudo-experiments at {L_FULL:.3g} nb^-1 ({toys['n_valid']} valid)\n")
        print("| quantity | pull mean | pull width |\n|---|---|---|")
        for name, s in toys["summary"].items():
            print(f"| {name} | {s['mean']:+.3f} +- {s['mean_error']:.3f} | {s['width']:.3f} +- {s['width_error']:.3f} |")
        results["pseudo_experiments"] = toys["summary"]

    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2, default=float) + "\n")
    print(f"\n({time.perf_counter() - t0:.0f} s; results in {out / 'results.json'})")
    assert all(math.isfinite(r["sigma_amu_measured"]) for r in sens)


if __name__ == "__main__":
    main()
