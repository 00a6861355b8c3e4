"""Compare the MESMER LO sample with muone's own elastic generator (cross sections and theta shapes).

    .venv/bin/python examples/compare_mesmer_lo.py [--events 2000000] [--data ../shared/data/mesmer]

Prints the numbers of docs/generators.md ("Agreement with muone's own generator").
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import awkward as ak
import muone
import numpy as np
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]


def theta_hists(ev: ak.Array, weight: ak.Array) -> list[tuple[np.ndarray, np.ndarray]]:
    """Weighted theta_e (0-32 mrad, 32 bins) and theta_mu (0-5 mrad, 25 bins) histograms of the
    hard electron and muon (beam along z), with the sums of squared weights."""
    hard = ev.mc.particles[ev.mc.particles.origin == 0]
    e, mu = ak.firsts(hard[hard.pdg == 11]), ak.firsts(hard[hard.pdg == -13])
    ok = ~ak.is_none(e)
    th_e = ak.to_numpy(np.arctan2(np.hypot(e.px, e.py), e.pz)[ok]) * 1e3
    th_mu = ak.to_numpy(np.arctan2(np.hypot(mu.px, mu.py), mu.pz)[ok]) * 1e3
    w = ak.to_numpy(weight[ok])
    edges = (np.linspace(0, 32, 33), np.linspace(0, 5, 26))
    return [(np.histogram(x, b, weights=w)[0], np.histogram(x, b, weights=w * w)[0]) for x, b in zip((th_e, th_mu), edges)]


def chi2(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> tuple[float, int]:
    """chi2 and number of bins of two weighted histograms."""
    ok = (a[1] + b[1]) > 0
    return float(np.sum((a[0] - b[0])[ok] ** 2 / (a[1] + b[1])[ok])), int(ok.sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "mesmer"))
    args = parser.parse_args()
    lo = Path(args.data) / "mesmer_lo_weighted_160GeV.dat.xz"
    with tempfile.TemporaryDirectory() as tmp:
        mes = muone.run({"job": {"output_dir": f"{tmp}/mes", "chunk_size": 60_000, "save": ["mc"]},
                         "source": {"plugin": "mesmer", "files": [str(lo)], "pileup_mean": 0.0, "beam_divergence": 0.0}})
        own = muone.run({"job": {"events": args.events, "chunk_size": 500_000, "output_dir": f"{tmp}/own", "save": ["mc"]},
                         "source": {"plugin": "elastic", "running": "leptonic", "beam_energy_spread": 0.0, "beam_divergence": 0.0, "pileup_mean": 0.0}})
        mev, oev = mes.events(), own.events()
    n = len(mev)
    w = ak.to_numpy(mev.mc.weight_lep)
    print(f"MESMER LO footer (full running): {mes.cross_section:.4f} +- {mes.report['source']['cross_section_error_ub']:.4f} ub")
    print(f"MESMER LO, leptonic running (w_lep): {mes.cross_section * w.mean():.4f} +- {mes.cross_section * w.std() / np.sqrt(n):.4f} ub")
    print(f"muone elastic, leptonic running: {own.cross_section:.5f} ub")
    hm = theta_hists(mev, mev.mc.weight_lep * mes.cross_section / n)
    ho = theta_hists(oev, oev.mc.weight * own.cross_section / len(oev))
    for a, b, name in zip(hm, ho, ("theta_e", "theta_mu")):
        c, ndf = chi2(a, b)
        print(f"{name}: chi2/ndf = {c:.1f}/{ndf}, p = {stats.chi2.sf(c, ndf):.2f}")


if __name__ == "__main__":
    main()
