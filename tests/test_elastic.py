"""The elastic generator against the analytic cross section (PHYSICS.md sections 2-3)."""

from __future__ import annotations

import math

import awkward as ak
import numpy as np
import pytest
from scipy import stats

import muone
from muone import physics as P
from muone.generators.elastic import ElasticCuts, ElasticSampler

LL = P.LeptonLike(P.LL_K_REF, P.LL_M_REF)


def fixed_energy(E):
    return lambda rng, n: np.full(n, E)


def chi2_pvalue(t: np.ndarray, edges: np.ndarray, pdf_integral) -> float:
    counts, _ = np.histogram(t, edges)
    expected = np.array([pdf_integral(a, b) for a, b in zip(edges[:-1], edges[1:])])
    expected *= len(t) / expected.sum()
    chi2 = np.sum((counts - expected) ** 2 / expected)
    return float(stats.chi2.sf(chi2, len(counts) - 1))


@pytest.mark.parametrize("running", [True, False])
def test_t_distribution_matches_dsigma_dt(running):
    sampler = ElasticSampler((160.0, 160.0), ElasticCuts(1.0), LL if running else None, leptonic=running, running=running)
    rng = np.random.default_rng(2024)
    _, t, _, _ = sampler.sample(rng, fixed_energy(160.0), 400_000)
    assert t.min() >= P.t_min(160.0) and t.max() <= P.t_from_electron_energy(1.0)
    # bins equally populated in 1/|t| (the steep part), 40 bins
    inv = np.linspace(1 / -P.t_min(160.0), 1 / -P.t_from_electron_energy(1.0), 41)
    edges = np.sort(-1.0 / inv)
    had = LL if running else None

    def integral(a, b):
        return P.sigma_t(a, b, 160.0, had=had, running=running)

    p = chi2_pvalue(t, edges, integral)
    assert p > 1e-3, p


def test_running_changes_the_shape_as_predicted():
    """The generated ratio running/no-running at large |t| matches 1/(1-Delta_alpha)^2 through the
    stored weights: reweighting the running sample by weight_norun gives the tree-level shape."""
    sampler = ElasticSampler((160.0, 160.0), ElasticCuts(1.0), LL)
    rng = np.random.default_rng(7)
    _, t, lep, had = sampler.sample(rng, fixed_energy(160.0), 300_000)
    w_norun = (1 - lep - had) ** 2
    edges = np.array([P.t_min(160.0), -0.1, -0.05, -0.02, -0.01, -0.005, P.t_from_electron_energy(1.0)])
    h, _ = np.histogram(t, edges, weights=w_norun)
    expected = np.array([P.sigma_t(a, b, 160.0, running=False) for a, b in zip(edges[:-1], edges[1:])])
    expected *= w_norun.sum() / expected.sum()
    hh, _ = np.histogram(t, edges, weights=w_norun**2)
    pulls = (h - expected) / np.sqrt(hh)
    assert np.all(np.abs(pulls) < 4), pulls


def test_cross_section_check_values():
    # PHYSICS.md: sigma0(E_e > 1 GeV, 160 GeV) = 245.60 microbarn
    tree = ElasticSampler((160.0, 160.0), ElasticCuts(1.0), None, leptonic=False, running=False)
    assert tree.cross_section(np.array([160.0]), np.array([1.0])) == pytest.approx(245.60, abs=0.01)
    # MESMER high statistics, leptonic running only: 248.51193 +- 0.00012 (slightly different constants)
    lep = ElasticSampler((160.0, 160.0), ElasticCuts(1.0), None, leptonic=True, running=True)
    assert lep.cross_section(np.array([160.0]), np.array([1.0])) == pytest.approx(248.51193, rel=2e-5)


def test_acceptance_rate_gives_the_cross_section():
    """Independent check of the sampler normalisation: envelope integral x acceptance = sigma."""
    sampler = ElasticSampler((160.0, 160.0), ElasticCuts(1.0), LL)
    rng = np.random.default_rng(11)
    m = 400_000
    inv_lo, inv_hi = 1 / -sampler.t_lo, 1 / -sampler.t_hi
    t = -1.0 / (inv_lo + rng.random(m) * (inv_hi - inv_lo))
    ratio = sampler.density(t, np.full(m, 160.0)) * t * t / sampler.bound
    sigma_mc = sampler.bound * (inv_hi - inv_lo) * ratio.mean()
    err = sampler.bound * (inv_hi - inv_lo) * ratio.std() / math.sqrt(m)
    assert sigma_mc == pytest.approx(P.sigma(160.0, 1.0, had=LL), abs=4 * err)


def elastic_job(tmp_path, **source):
    return {
        "job": {"events": 40_000, "chunk_size": 20_000, "output_dir": str(tmp_path / "el"), "save": ["mc"]},
        "source": {"plugin": "elastic", **source},
    }


def read_mc(res: muone.Results) -> ak.Array:
    return res.events()


def test_elastic_source_events(tmp_path):
    res = muone.run(elastic_job(tmp_path, pileup_mean=1.25))
    assert res.cross_section == pytest.approx(P.sigma(160.0, 1.0, had=LL), rel=2e-3)  # beam spread averages
    assert res.report["source"]["equivalent_luminosity_nb"] == pytest.approx(40_000 / res.cross_section / 1e3)
    ev = read_mc(res)
    mc = ev.mc
    assert ak.all(mc.process == 1) and ak.all(mc.weight == 1.0)
    hard = mc.particles[mc.particles.origin == 0]
    assert ak.all(ak.num(hard) == 2)
    # four-momentum conservation: beam + electron at rest = outgoing muon + electron
    assert np.allclose(ak.sum(hard.E, axis=1), mc.beam.E + P.M_E, rtol=1e-13)
    for c in ("px", "py", "pz"):
        assert np.allclose(ak.sum(hard[c], axis=1), mc.beam[c], rtol=0, atol=1e-9)
    # t from the electron energy
    electron = hard[hard.pdg == 11][:, 0]
    assert np.allclose(mc.t, 2 * P.M_E**2 - 2 * P.M_E * electron.E, rtol=1e-10)
    assert ak.all(electron.E >= 1.0)
    # electron and muon angles relative to the beam lie on the elastic curve of the event's energy
    beam = mc.beam
    mu = hard[hard.pdg == -13][:, 0]
    theta_e = electron.deltaangle(beam)
    theta_mu = mu.deltaangle(beam)
    assert np.allclose(theta_e, P.theta_e_from_electron_energy(electron.E, beam.E), rtol=1e-6)
    assert np.allclose(theta_mu, P.theta_mu_from_theta_e(theta_e, beam.E), rtol=1e-5, atol=1e-9)
    # pile-up: Poisson(1.25) extra beam muons starting upstream
    n_pile = ak.to_numpy(ak.num(mc.particles[mc.particles.origin == 1]))
    assert n_pile.mean() == pytest.approx(1.25, abs=0.03) and n_pile.var() == pytest.approx(1.25, rel=0.05)
    # vertices inside the default 1.5 cm Be target
    assert ak.all((mc.vertex.z >= 0) & (mc.vertex.z <= 15.0)) and ak.all(mc.target == 0)
    # exact reweighting: vp c1 (= weight_norun) x running factor of the generation model = 1
    w = mc.vp[:, 1] * P.running_factor(mc.t, LL)
    assert np.allclose(w, 1.0, rtol=1e-12)
    assert np.allclose(mc.weight_lep, mc.weight_norun * P.running_factor(mc.t, None), rtol=1e-12)


def test_no_pileup_and_energy_spread_off(tmp_path):
    res = muone.run(elastic_job(tmp_path, pileup_mean=0.0, beam_energy_spread=0.0, running="none"))
    assert res.cross_section == pytest.approx(245.60, abs=0.01)
    ev = read_mc(res)
    assert ak.all(ak.num(ev.mc.particles) == 2)
    assert np.allclose(ev.mc.beam.E, 160.0)
    assert ak.all(ev.mc.weight_norun == 1.0)


def test_bad_elastic_parameters(tmp_path):
    with pytest.raises(muone.SteeringError) as info:
        muone.run(elastic_job(tmp_path, hadronic={"model": "LeptonLyke"}, ee_max=0.5))
    text = str(info.value)
    assert "source.hadronic" in text and "LeptonLike" in text and "source.ee_max" in text
