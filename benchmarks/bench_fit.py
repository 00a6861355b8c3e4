"""Speed of the template fit: 2 parameters of interest (LeptonLike K, M) + the normalisation + 4
nuisance parameters, on templates from 1e7 simulated events (goal: < 30 s on one core).

Step 1 (not timed as the fit) makes the templates with steering/templates.toml: elastic events,
generator-level angles with a realistic resolution, the MUonE 2D binning, and the +-1 sigma
variations of the four systematic sources (beam energy, multiple scattering, resolution,
alignment) in the same job. The output directory is reused when it already holds that job.
Step 2 times, in this process with one thread:
  * the fit alone (MIGRAD + HESSE): 7 parameters, Asimov data at 1.5e7 nb^-1;
  * the uncertainty breakdown (stat, each systematic) and a_mu^HLO;
  * the whole finalizer (``template_fit`` with profile scans, MINOS contours and plots).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_fit.py [--events N] [--workers N] [--output DIR]
"""

from __future__ import annotations

import argparse
import os
import time
import tomllib
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import muone
from muone.fit.analysis import variations_from_inputs
from muone.fit.fitter import TemplateFit
from muone.fit.pseudodata import expected_counts
from muone.fit.regions import region_mask
from muone.physics import LeptonLike, x_max
from muone.plugins.template_fit import TemplateFitParams

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--workers", type=int, default=2, help="workers for making the templates (the fit runs in this process)")
    parser.add_argument("--output", default=str(ROOT / "out" / "bench_fit"))
    args = parser.parse_args()
    out = Path(args.output)

    t0 = time.perf_counter()
    mc = muone.run(ROOT / "steering" / "templates.toml", {"job.events": args.events, "job.workers": args.workers, "job.chunk_size": 500_000},
                   output=out / "templates")
    print(f"templates: {args.events:,} events, {mc.report['chunks']['run_now']} chunks made now, {time.perf_counter() - t0:.1f} s "
          f"(equivalent luminosity {mc.report['source']['equivalent_luminosity_nb']:.4g} nb^-1)")

    table = tomllib.loads((ROOT / "steering" / "fit.toml").read_text())["finalizers"][0]
    table.pop("plugin")
    params = TemplateFitParams.model_validate(table)
    inputs = {"mc": mc}
    tp = mc.merged["templates"]["template"]
    lumi = mc.report["source"]["equivalent_luminosity_nb"]
    print(f"template: {tp.n_bins} bins, {sum(len(t) for t in tp.terms.values())} (bin, ln|t| cell) entries")

    t0 = time.perf_counter()
    variations = variations_from_inputs(params, tp, lumi, inputs)
    nr = region_mask(tp, params.normalisation_region)
    scale = params.luminosity / lumi
    data = expected_counts(tp, LeptonLike(**{k: v for k, v in params.truth.items() if k != "model"}), scale, variations)
    t_prep = time.perf_counter() - t0
    t0 = time.perf_counter()
    fit = TemplateFit(tp, data, scale, start={"K": 0.13, "M": 0.05}, variations=variations, normalisation="free", norm_mask=nr, mc_stat=False)
    m = fit.fit()
    t_fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    b = fit.breakdown(float(x_max(160.0)))
    t_breakdown = time.perf_counter() - t0
    print(f"fit: {len(fit.cost.parameters)} parameters ({', '.join(fit.cost.parameters)}), valid {m.valid}, {m.nfcn} calls")
    print(f"  K = {m.values['K']:.6f} +- {m.errors['K']:.6f}, M = {m.values['M']:.6f} +- {m.errors['M']:.6f}; "
          f"sigma(a_mu^HLO) = {b['total']['amu_full']:.3e} (stat {b['stat']['amu_full']:.3e})")
    print(f"time: inputs {t_prep:.2f} s, fit (MIGRAD + HESSE) {t_fit:.2f} s, breakdown + a_mu {t_breakdown:.2f} s")

    t0 = time.perf_counter()
    res = muone.run(ROOT / "steering" / "fit.toml", {"job.inputs": {"mc": str(out / "templates")}}, output=out / "fit", force=True)
    print(f"whole template_fit finalizer (fit, breakdown, scans, contours, plots): {time.perf_counter() - t0:.1f} s; "
          f"fit.json: sigma(a_mu^HLO) = {res.fit['amu_hlo']['full']['error']:.3e}")


if __name__ == "__main__":
    main()
