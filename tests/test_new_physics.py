"""The new-physics generators ``dark_photon`` and ``invisible_zprime`` against their model
(muone.generators.vector_emission; docs/backgrounds-and-signals.md)."""

from __future__ import annotations

import itertools
import math
from types import SimpleNamespace

import awkward as ak
import muone
import numpy as np
import pytest
from muone import physics as P
from muone.generators.vector_emission import (
    VectorEmissionSampler,
    dark_photon_ctau,
    dark_photon_width,
)
from muone.processor import Context
from scipy import stats

HBARC = 1.973269804e-13  # GeV mm


def fixed_energy(E):
    return lambda rng, n: np.full(n, E)


def chi2_pvalue(counts: np.ndarray, expected: np.ndarray) -> float:
    expected = expected * counts.sum() / expected.sum()
    chi2 = float(np.sum((counts - expected) ** 2 / expected))
    return float(stats.chi2.sf(chi2, len(counts) - 1))


def read_mc(res: muone.Results) -> ak.Array:
    from muone import rootio

    parts = []
    for entry in res.manifest["chunks"]:
        f = res.output_dir / next(k for k in entry["files"] if k.startswith("events/"))
        parts.append(rootio.read_events(f, res.manifest["events_schema"]))
    return ak.concatenate(parts)


def job(tmp_path, plugin, name=None, events=40_000, seed=12345, **source):
    return {
        "job": {"events": events, "chunk_size": 20_000, "seed": seed, "output_dir": str(tmp_path / (name or plugin)), "save": ["mc"]},
        "source": {"plugin": plugin, **source},
    }


def source_info(cls, **params):
    src = cls(cls.Params(**params))
    src.setup(Context(job=SimpleNamespace(chunk_size=1000, events=1000), geometry=None, output_dir=None))
    return src.info()


def test_dark_photon_width_and_decay_length():
    m, eps = 0.02, 1e-3
    r = (P.M_E / m) ** 2
    width = eps**2 * P.ALPHA * m * (1 + 2 * r) * math.sqrt(1 - 4 * r) / 3
    assert dark_photon_width(m, eps) == pytest.approx(width, rel=1e-14)
    assert dark_photon_ctau(m, eps) == pytest.approx(HBARC / width, rel=1e-14)
    assert dark_photon_ctau(m, eps) == pytest.approx(4.056e-3, rel=1e-3)  # mm
    assert dark_photon_width(0.001, eps) == 0.0  # below the e+e- threshold


@pytest.mark.parametrize("mass", [0.002, 0.02, 0.3])
def test_quadrature_matches_the_sampler(mass):
    sampler = VectorEmissionSampler((160.0, 160.0), mass, 1e-6 * P.ALPHA)
    quad = sampler.cross_section_at(160.0)
    rng = np.random.default_rng(1)
    m = 400_000
    ratio, _ = sampler.propose(rng, fixed_energy(160.0), m)
    mc = sampler.norm * sampler.envelope.integral * ratio.mean()
    err = sampler.norm * sampler.envelope.integral * ratio.std() / math.sqrt(m)
    assert mc == pytest.approx(quad, abs=4 * err)
    # quadrature converged: refine by splitting the recoil range
    tau_mid = math.sqrt(sampler.tau_a * sampler.tau_b)
    split = sampler.cross_section_at(160.0, (0, tau_mid)) + sampler.cross_section_at(160.0, (tau_mid, 1.0))
    assert split == pytest.approx(quad, rel=1e-4)


def test_cross_section_scales_with_the_coupling_squared():
    from muone.plugins.new_physics import DarkPhotonSource, ZprimeSource

    a = source_info(DarkPhotonSource, epsilon=1e-3).cross_section
    b = source_info(DarkPhotonSource, epsilon=3e-3).cross_section
    assert b / a == pytest.approx(9.0, rel=1e-12)
    # the Z' uses the same emission: g'^2/(4 pi) = eps^2 alpha gives the same cross section
    g = math.sqrt(4 * math.pi * P.ALPHA) * 1e-3
    z = source_info(ZprimeSource, coupling=g).cross_section
    assert z == pytest.approx(a, rel=1e-12)
    assert source_info(ZprimeSource, coupling=2 * g).cross_section == pytest.approx(4 * a, rel=1e-12)
    # heavier bosons are rarer
    assert source_info(DarkPhotonSource, mass=0.2).cross_section < a


@pytest.fixture(scope="module")
def emission_sample():
    sampler = VectorEmissionSampler((160.0, 160.0), 0.02, 1e-6 * P.ALPHA)
    return sampler, sampler.sample(np.random.default_rng(11), fixed_energy(160.0), 200_000)


def test_boson_energy_share_distribution(emission_sample):
    sampler, s = emission_sample
    edges = np.array([1 / 160, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    counts, _ = np.histogram(s["x"], edges)
    expected = np.array([sampler.cross_section_at(160.0, x_range=(a, b)) for a, b in itertools.pairwise(edges)])
    assert chi2_pvalue(counts, expected) > 1e-3


def test_electron_recoil_distribution(emission_sample):
    sampler, s = emission_sample
    edges = np.geomspace(sampler.tau_a, sampler.tau_b, 16)
    counts, _ = np.histogram(s["tau"], edges)
    expected = np.array([sampler.cross_section_at(160.0, tau_range=(a, b)) for a, b in itertools.pairwise(edges)])
    assert chi2_pvalue(counts, expected) > 1e-3
    # the electron-energy cut holds
    assert np.all(P.M_E + s["tau"] / (2 * P.M_E) >= 1.0)


def test_virtuality_distribution(emission_sample):
    """U given (x, |t|): [A/U^2 - B (U - U0)/U^4] U/(U + |t|) on [U0, 2 Delta (1 - x)], through its
    cumulative distribution (numerical) evaluated at the sampled U: uniform."""
    sampler, s = emission_sample
    x, U, tau = s["x"][:20_000], s["U"][:20_000], s["tau"][:20_000]
    u0 = sampler.u0(x)
    u1 = 2 * sampler.delta(tau / (2 * P.M_E), 160.0) * (1 - x)
    assert np.all(U >= u0 * (1 - 1e-12)) and np.all(U <= u1 * (1 + 1e-12))
    g, w = np.polynomial.legendre.leggauss(48)

    def integral(lo, hi):
        l0, l1 = np.log(lo), np.log(hi)
        v = l0[:, None] + (l1 - l0)[:, None] * 0.5 * (g + 1)[None, :]
        uu = np.exp(v)
        f = sampler.density(x[:, None], uu, tau[:, None]) * uu
        return 0.5 * (l1 - l0) * np.sum(w * f, axis=1)

    cdf = integral(u0, U) / integral(u0, u1)
    assert stats.kstest(cdf, "uniform").pvalue > 1e-3


def test_dark_photon_source_events(tmp_path):
    m, eps = 0.05, 2e-4
    res = muone.run(job(tmp_path, "dark_photon", mass=m, epsilon=eps, pileup_mean=1.25))
    mc = read_mc(res).mc
    assert ak.all(mc.process == 4) and ak.all(mc.weight == 1.0)
    assert ak.all(mc.ap_mass == m)
    hard = mc.particles[mc.particles.origin == 0]
    decay = mc.particles[mc.particles.origin == 2]
    assert ak.all(ak.num(hard) == 2) and ak.all(ak.num(decay) == 2)
    assert ak.all(ak.sort(decay.pdg, axis=1) == [[-11, 11]])
    # four-momentum conservation: beam + electron at rest = mu' + e' + (e+ e-)
    everything = mc.particles[mc.particles.origin != 1]
    assert np.allclose(ak.sum(everything.E, axis=1), mc.beam.E + P.M_E, rtol=1e-13)
    for c in ("px", "py", "pz"):
        assert np.allclose(ak.sum(everything[c], axis=1), mc.beam[c], rtol=0, atol=1e-9)
    # e+ e- invariant mass = A' mass
    ap = decay[:, 0].add(decay[:, 1])
    assert np.allclose(ap.mass, m, rtol=1e-6)
    assert ak.all(ap.E >= 1.0)
    # electron cut, t24 and t13 from the four-vectors
    electron = hard[hard.pdg == 11][:, 0]
    mu = hard[hard.pdg == -13][:, 0]
    assert ak.all(electron.E >= 1.0)
    assert np.allclose(mc.t, 2 * P.M_E**2 - 2 * P.M_E * electron.E, rtol=1e-9)
    assert np.allclose(mc.beam.subtract(mu).tau2, mc.t_mu, rtol=1e-6)
    # decay products start at the decay vertex, which lies on the A' line of flight
    assert ak.all(decay.vx == mc.decay_vertex.x) and ak.all(decay.vz == mc.decay_vertex.z)
    flight = mc.decay_vertex.subtract(mc.vertex)
    length = ak.to_numpy(np.sqrt(flight.x**2 + flight.y**2 + flight.z**2))
    direction = ap.to_Vector3D()
    cross = flight.cross(direction)
    assert np.all(ak.to_numpy(np.sqrt(cross.x**2 + cross.y**2 + cross.z**2)) <= 1e-9 * length * ak.to_numpy(direction.mag) + 1e-12)
    assert ak.all(flight.z > 0)
    # decay length: exponential with mean gamma beta c tau from the width formula
    r = (P.M_E / m) ** 2
    ctau = HBARC / (eps**2 * P.ALPHA * m * (1 + 2 * r) * math.sqrt(1 - 4 * r) / 3)
    assert np.allclose(mc.ap_ctau, ctau, rtol=1e-12)
    scaled = length / (ak.to_numpy(ap.p) / m * ctau)
    assert stats.kstest(scaled, "expon").pvalue > 1e-3
    # isotropic decay in the A' rest frame
    star = decay[:, 0].boostCM_of_p4(ap)
    cos_star = ak.to_numpy(star.to_Vector3D().dot(direction) / (star.p * direction.mag))
    assert stats.kstest(cos_star, stats.uniform(-1, 2).cdf).pvalue > 1e-3
    # fixed-alpha generation: w = vp(t24)^2 (c1 = 1); pile-up muons present
    assert ak.all(mc.vp[:, 1] == 1.0) and ak.all(ak.sum(mc.vp, axis=1) == 1.0)
    assert np.allclose(mc.weight_lep, P.running_factor(mc.t, None), rtol=1e-12)
    n_pile = ak.to_numpy(ak.num(mc.particles[mc.particles.origin == 1]))
    assert n_pile.mean() == pytest.approx(1.25, abs=0.03)
    assert ak.all((mc.vertex.z >= 0) & (mc.vertex.z <= 15.0))


def test_invisible_zprime_source_events(tmp_path):
    res = muone.run(job(tmp_path, "invisible_zprime", events=20_000, mass=0.1, coupling=1e-3))
    mc = read_mc(res).mc
    assert ak.all(mc.process == 5)
    hard = mc.particles[mc.particles.origin == 0]
    assert ak.all(ak.num(hard) == 2) and ak.all(ak.sum(mc.particles.origin == 2, axis=1) == 0)
    # the Z' is invisible: only in mc.invisible, which closes the four-momentum balance
    z = mc.invisible
    assert np.allclose(z.mass, 0.1, rtol=1e-5)
    assert np.allclose(ak.sum(hard.E, axis=1) + z.E, mc.beam.E + P.M_E, rtol=1e-13)
    for c in ("px", "py", "pz"):
        assert np.allclose(ak.sum(hard[c], axis=1) + z[c], mc.beam[c], rtol=0, atol=1e-9)
    assert ak.all(z.E >= 1.0)
    # missing energy: the muon and electron are off the elastic curve
    electron = hard[hard.pdg == 11][:, 0]
    mu = hard[hard.pdg == -13][:, 0]
    assert ak.all(mc.beam.E + P.M_E - mu.E - electron.E >= 1.0)
    from muone.generators.beam import BeamModel, GeneratorParams

    beam = BeamModel(GeneratorParams())
    sampler = VectorEmissionSampler(beam.energy_range, 0.1, 1e-6 / (4 * math.pi))
    assert res.cross_section == pytest.approx(sampler.cross_section(*beam.energy_nodes(16)), rel=1e-12)
    assert ak.num(mc.particles[mc.particles.origin == 1], axis=1).to_numpy().mean() == pytest.approx(1.25, abs=0.05)


def test_reproducible(tmp_path):
    a = read_mc(muone.run(job(tmp_path, "dark_photon", name="a", events=5_000)))
    b = read_mc(muone.run(job(tmp_path, "dark_photon", name="b", events=5_000)))
    c = read_mc(muone.run(job(tmp_path, "dark_photon", name="c", events=5_000, seed=7)))
    assert ak.all(ak.flatten(a.mc.particles.E) == ak.flatten(b.mc.particles.E))
    assert ak.all(a.mc.decay_vertex.z == b.mc.decay_vertex.z)
    assert not np.array_equal(ak.to_numpy(a.mc.decay_vertex.z), ak.to_numpy(c.mc.decay_vertex.z))


def test_bad_parameters(tmp_path):
    with pytest.raises(muone.SteeringError) as info:
        muone.run(job(tmp_path, "dark_photon", mass=0.5, epsilon=0.0))
    text = str(info.value)
    assert "source.mass" in text and "source.epsilon" in text
    with pytest.raises(muone.SteeringError) as info:
        muone.run(job(tmp_path, "dark_photon", mass=0.2, energy_min=0.1, ee_min=5.0, ee_max=2.0))
    text = str(info.value)
    assert "source.energy_min" in text and "source.ee_max" in text
    with pytest.raises(muone.SteeringError) as info:
        muone.run(job(tmp_path, "invisible_zprime", mass=0.25, coupling=-1))
    text = str(info.value)
    assert "source.mass" in text and "source.coupling" in text
    with pytest.raises(muone.SteeringError) as info:
        muone.run(job(tmp_path, "invisible_zprime", masss=0.05))
    assert "masss" in str(info.value)
