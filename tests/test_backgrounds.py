"""The background generators ``pairs`` and ``radiative`` against their models
(muone.generators.pairs, muone.generators.radiative; docs/backgrounds-and-signals.md)."""

from __future__ import annotations

import itertools
import math

import awkward as ak
import muone
import numpy as np
import pytest
from muone import physics as P
from muone.generators.elastic import ElasticCuts
from muone.generators.pairs import (
    PairSampler,
    eps_max,
    kkp_d2sigma,
    pair_final_state,
    rho_max,
    sigma_nucleus,
    tsai_u_cdf,
)
from muone.generators.radiative import (
    ALPHA_2PI,
    RadiativeSampler,
    angular_integral,
    emission_probability_uncapped,
    q2_max,
    splitting_integral,
    splitting_primitive,
)
from muone.generators.targets import target_weights
from muone.geometry import detector_from_dict, load_geometry, write_detector
from muone.physics.quadrature import composite_nodes, gauss_legendre
from scipy import stats
from scipy.optimize import brentq

LL = P.LeptonLike(P.LL_K_REF, P.LL_M_REF)
BE_TARGET = list(load_geometry(None).targets)


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


def job(tmp_path, plugin, name=None, events=40_000, seed=12345, geometry=None, **source):
    steering = {
        "job": {"events": events, "chunk_size": 20_000, "seed": seed, "output_dir": str(tmp_path / (name or plugin)), "save": ["mc"]},
        "source": {"plugin": plugin, **source},
    }
    if geometry is not None:
        steering["geometry"] = geometry
    return steering


# ---------------------------------------------------------------------------------------------
# pairs: the KKP model


def d_sigma_d_eps(E, eps, Z):
    """int drho of the KKP formula at each eps (Gauss-Legendre in ln(1 - |rho|))."""
    x, w = gauss_legendre(32)
    tmn = np.log1p(-rho_max(E, eps))
    s = 0.5 * (x + 1.0)
    omr = np.exp(tmn[:, None] * s[None, :])
    f = kkp_d2sigma(E, eps[:, None], 1.0 - omr, Z)
    return 2.0 * (-tmn) * np.sum(0.5 * w * omr * f, axis=1)


def test_kkp_reproduces_the_muon_pair_energy_loss():
    """b_pair = N_A/A (1/E) int eps dsigma/deps of standard rock (Z = 11, A = 22) at 100 GeV:
    ~1.5e-6 g^-1 cm^2 in the muon energy-loss tables (Groom, Mokhov, Striganov, At. Data Nucl.
    Data Tables 78 (2001) 183), which include the atomic electrons (~Z(Z + 1))."""
    E, Z = 100.0, 11.0
    lg, wg = composite_nodes(np.linspace(math.log(4 * P.M_E * 1.001), math.log(float(eps_max(E, Z))), 65), 16)
    eps = np.exp(lg)
    loss = np.dot(wg, eps * eps * d_sigma_d_eps(E, eps, Z))  # microbarn GeV
    b_pair = 6.02214076e23 / 22.0 * loss * 1e-30 / E * (1.0 + 1.0 / Z)
    assert b_pair == pytest.approx(1.5e-6, rel=0.1)


def test_pair_cross_section_quadrature_converges_and_matches_the_sampler():
    s24 = sigma_nucleus(160.0, 4.0, 1.0)
    assert sigma_nucleus(160.0, 4.0, 1.0, n_rho=48) == pytest.approx(s24, rel=1e-6)
    # envelope integral x mean acceptance = sigma (Be, fixed beam energy)
    sampler = PairSampler((160.0, 160.0), BE_TARGET, 1.0)
    rng = np.random.default_rng(3)
    m = 400_000
    a, s, env = sampler.envelope.sample(rng, m)
    ratio = sampler.h(np.full(m, 160.0), a, s, np.full(m, 4.0)) / env
    mc = sampler.envelope.integral * ratio.mean() * 16.0
    err = sampler.envelope.integral * ratio.std() / math.sqrt(m) * 16.0
    assert mc == pytest.approx(s24, abs=4 * err)
    # Z^2 scaling up to the screening logarithms
    assert sigma_nucleus(160.0, 6.0, 1.0) / 36 == pytest.approx(s24 / 16, rel=0.1)


@pytest.fixture(scope="module")
def pair_sample():
    sampler = PairSampler((160.0, 160.0), BE_TARGET, 1.0)
    return sampler, sampler.sample(np.random.default_rng(2025), fixed_energy(160.0), 200_000)


def test_pair_energy_spectrum_matches_kkp(pair_sample):
    _, s = pair_sample
    assert s["eps"].min() >= 1.0 and s["eps"].max() <= eps_max(160.0, 4.0)
    edges = np.array([1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 7.0, 10.0, 15.0, 25.0, 50.0, 155.0])
    counts, _ = np.histogram(s["eps"], edges)
    expected = np.array([sigma_nucleus(160.0, 4.0, a, b) for a, b in itertools.pairwise(edges)])
    assert chi2_pvalue(counts, expected) > 1e-3


def test_pair_energy_sharing_matches_kkp(pair_sample):
    """|rho| = |E+ - E-|/(E+ + E-) for 2 < eps < 4 GeV against the KKP rho dependence."""
    _, s = pair_sample
    sel = (s["eps"] > 2.0) & (s["eps"] < 4.0)
    r = np.abs(s["rho"][sel])
    edges = np.array([0.0, 0.2, 0.4, 0.6, 0.75, 0.85, 0.92, 0.96, 0.98, 0.995, 1.0])
    counts, _ = np.histogram(r, edges)
    le, we = composite_nodes(np.linspace(math.log(2.0), math.log(4.0), 5), 16)
    eps = np.exp(le)
    top = rho_max(160.0, eps)
    x, w = gauss_legendre(24)
    expected = []
    for a, b in itertools.pairwise(edges):
        hi = np.minimum(b, top)
        lo = np.minimum(a, hi)
        # integrate in v = -ln(1 - rho) (smooth near rho -> 1)
        v0, v1 = -np.log1p(-lo), -np.log1p(-hi)
        v = v0[:, None] + (v1 - v0)[:, None] * 0.5 * (x + 1.0)[None, :]
        rho = -np.expm1(-v)
        f = kkp_d2sigma(160.0, eps[:, None], rho, 4.0) * (1.0 - rho)
        inner = 0.5 * (v1 - v0) * np.sum(w * f, axis=1)
        expected.append(np.dot(we, eps * inner))
    assert chi2_pvalue(counts, np.array(expected)) > 1e-3
    # asymmetric pairs are common, the signs symmetric
    assert abs(np.mean(np.sign(s["rho"]))) < 0.01


def test_pair_lepton_angles_follow_tsai():
    rng = np.random.default_rng(8)
    n = 100_000
    fs = pair_final_state(rng, np.full(n, 160.0), np.full(n, 4.0), rng.uniform(-0.9, 0.9, n))
    for lep in ("ep", "em"):
        theta = np.arctan2(np.hypot(fs[f"{lep}_px"], fs[f"{lep}_py"]), fs[f"{lep}_pz"])
        u = 2.0 * fs[f"{lep}_E"] / P.M_E * np.sin(0.5 * theta)
        assert stats.kstest(u, tsai_u_cdf).pvalue > 1e-3
        median = brentq(lambda v: tsai_u_cdf(v) - 0.5, 0.1, 10.0)
        assert np.median(theta * fs[f"{lep}_E"] / P.M_E) == pytest.approx(median, rel=0.02)  # theta ~ u m_e/E
    # back to back in azimuth; the muon balances the pair's transverse momentum
    phi_p = np.arctan2(fs["ep_py"], fs["ep_px"])
    phi_m = np.arctan2(fs["em_py"], fs["em_px"])
    assert np.allclose(np.cos(phi_p - phi_m), -1.0)
    assert np.allclose(fs["mu_px"] + fs["ep_px"] + fs["em_px"], 0.0, atol=1e-15)


def test_pairs_source_events(tmp_path):
    res = muone.run(job(tmp_path, "pairs", pileup_mean=1.25))
    sampler = PairSampler(res_energy_range(), BE_TARGET, 1.0)
    from muone.generators.beam import BeamModel, GeneratorParams

    beam = BeamModel(GeneratorParams())
    # cross section per target electron: sigma_nucleus(Be)/Z for the single Be target
    assert res.cross_section == pytest.approx(sampler.cross_section_per_electron(*beam.energy_nodes(16)), rel=1e-12)
    assert res.cross_section == pytest.approx(sigma_nucleus(160.0, 4.0, 1.0) / 4.0, rel=0.02)
    ev = read_mc(res)
    mc = ev.mc
    assert ak.all(mc.process == 2) and ak.all(mc.weight == 1.0) and ak.all(mc.vp[:, 0] == 1.0)
    hard = mc.particles[mc.particles.origin == 0]
    assert ak.all(ak.num(hard) == 3)
    assert ak.all(ak.sum(hard.pdg == -11, axis=1) == 1) and ak.all(ak.sum(hard.pdg == 11, axis=1) == 1)
    # energy conserved (nucleus recoil energy neglected); the nucleus takes q = q_z n along the beam
    assert np.allclose(ak.sum(hard.E, axis=1), mc.beam.E, rtol=1e-13)
    d = np.stack([ak.to_numpy(mc.beam[c] - ak.sum(hard[c], axis=1)) for c in ("px", "py", "pz")], axis=1)
    b = np.stack([ak.to_numpy(mc.beam[c]) for c in ("px", "py", "pz")], axis=1)
    n = b / np.linalg.norm(b, axis=1)[:, None]
    qz = np.sum(d * n, axis=1)
    assert np.all(np.linalg.norm(np.cross(d, n), axis=1) < 1e-9)
    # q_z ~ sum (m^2 + p_T^2)/(2 E): ~1e-6 GeV typically, a few MeV for a soft lepton at a wide angle
    assert np.all(qz > 0) and np.all(qz < 0.02) and np.median(qz) < 2e-5
    assert np.allclose(mc.t, -qz * qz, rtol=1e-3, atol=1e-15)
    # the muon loses the pair energy; pair energies above the threshold
    leptons = hard[abs(hard.pdg) == 11]
    assert ak.all(ak.sum(leptons.E, axis=1) >= 1.0)
    mu = hard[hard.pdg == -13][:, 0]
    assert np.allclose(mc.beam.E - mu.E, ak.sum(leptons.E, axis=1), rtol=1e-12)
    # t13 from the four-vectors
    q = mc.beam.subtract(mu)
    assert np.allclose(q.tau2, mc.t_mu, rtol=1e-5, atol=1e-12)
    # pile-up and vertices
    n_pile = ak.to_numpy(ak.num(mc.particles[mc.particles.origin == 1]))
    assert n_pile.mean() == pytest.approx(1.25, abs=0.03)
    assert ak.all((mc.vertex.z >= 0) & (mc.vertex.z <= 15.0)) and ak.all(mc.target == 0)


def res_energy_range():
    from muone.generators.beam import BeamModel, GeneratorParams

    return BeamModel(GeneratorParams()).energy_range


def test_pairs_target_choice_be_and_c(tmp_path):
    """Two different targets: events per target = n_i sigma_i (~ Z per electron, up to the
    screening logarithms); two equal graphite targets (pilot2023) share the events equally."""
    det = detector_from_dict({"name": "bec", "stations": [
        {"z": 0.0, "target": {"material": "Be", "thickness": 15.0}},
        {"z": 1160.0, "target": {"material": "C", "thickness": 20.0}}]})
    path = write_detector(tmp_path / "bec.toml", det)
    res = muone.run(job(tmp_path, "pairs", name="bec", geometry={"file": str(path)}, pileup_mean=0.0, beam_energy_spread=0.0))
    mc = read_mc(res).mc
    targets = list(det.targets)
    sampler = PairSampler((160.0, 160.0), targets, 1.0)
    nodes, weights = np.array([160.0]), np.array([1.0])
    expected = sampler.target_probabilities(nodes, weights)
    frac_c = float(ak.mean(mc.target == 1))
    n = len(mc)
    assert frac_c == pytest.approx(expected[1], abs=4 * math.sqrt(expected[1] * (1 - expected[1]) / n))
    z_per_electron = target_weights(targets, per="nucleus_z2")  # electrons x Z
    assert frac_c == pytest.approx(z_per_electron[1], rel=0.05)
    assert ak.all(ak.where(mc.target == 0, (mc.vertex.z >= 0) & (mc.vertex.z <= 15), (mc.vertex.z >= 1160) & (mc.vertex.z <= 1180)))
    electrons = target_weights(targets, per="electron")
    per_nucleus = sampler.cross_sections(nodes, weights)
    assert res.cross_section == pytest.approx(float(np.dot(electrons, per_nucleus / np.array([4.0, 6.0]))), rel=1e-12)
    # pilot2023: two 2 cm graphite targets
    res2 = muone.run(job(tmp_path, "pairs", name="pilot", events=20_000, geometry={"preset": "pilot2023"}, pileup_mean=0.0))
    mc2 = read_mc(res2).mc
    assert float(ak.mean(mc2.target == 1)) == pytest.approx(0.5, abs=4 * math.sqrt(0.25 / 20_000))
    assert res2.cross_section == pytest.approx(sigma_nucleus(160.0, 6.0, 1.0) / 6.0, rel=0.02)


def test_pairs_reproducible(tmp_path):
    a = read_mc(muone.run(job(tmp_path, "pairs", name="a", events=5_000)))
    b = read_mc(muone.run(job(tmp_path, "pairs", name="b", events=5_000)))
    c = read_mc(muone.run(job(tmp_path, "pairs", name="c", events=5_000, seed=99)))
    assert ak.all(ak.flatten(a.mc.particles.E) == ak.flatten(b.mc.particles.E))
    assert ak.all(a.mc.vertex.z == b.mc.vertex.z)
    assert not np.array_equal(ak.to_numpy(a.mc.vertex.z), ak.to_numpy(c.mc.vertex.z))


def test_bad_pairs_parameters(tmp_path):
    with pytest.raises(muone.SteeringError) as info:
        muone.run(job(tmp_path, "pairs", pair_energy_min=0.001, pileup_mean=-1))
    text = str(info.value)
    assert "source.pair_energy_min" in text and "source.pileup_mean" in text
    with pytest.raises(muone.SteeringError) as info:
        muone.run(job(tmp_path, "pairs", beam_energy=50.0, pair_energy_min=48.0))
    assert "source.pair_energy_min" in str(info.value) and "below the beam energy" in str(info.value)


# ---------------------------------------------------------------------------------------------
# radiative


def test_emission_probability_leading_log():
    """Below the kinematic limit P_emit = (alpha/2pi) [ln(|t|/m_e^2) - 1] int P(z) dz."""
    sampler = RadiativeSampler((160.0, 160.0), ElasticCuts(1.0), 0.1, LL)
    t = np.array([-1.5e-3, -3e-3])
    E = np.full(2, 160.0)
    e_e = P.M_E - t / (2 * P.M_E)
    ll = ALPHA_2PI * (np.log(-t / P.M_E**2) - 1.0) * splitting_integral(0.1 / e_e)
    assert np.allclose(sampler.emission_probability(t, E), ll, rtol=2e-3)
    assert np.allclose(angular_integral(-t / P.M_E**2), np.log(-t / P.M_E**2) - 1.0, rtol=1e-3)
    # at the elastic end point the muon has no energy left for a massive (e gamma) system
    t_min = P.t_min(160.0)
    assert q2_max(t_min, 160.0) == pytest.approx(0.0, abs=1e-12)
    near = t_min * (1 - np.array([1e-10, 1e-6, 1e-4, 1e-2]))
    p_near = sampler.emission_probability(near, np.full(4, 160.0))
    assert p_near[0] == 0.0 and np.all(np.diff(p_near) > 0)
    assert p_near[-1] < emission_probability_uncapped(near[-1], 0.1)


def test_radiative_cross_section_quadrature_matches_the_sampler():
    sampler = RadiativeSampler((160.0, 160.0), ElasticCuts(1.0), 0.1, LL)
    quad = sampler.cross_section(np.array([160.0]), np.array([1.0]))
    rng = np.random.default_rng(4)
    m = 1_000_000
    ratio, _ = sampler.propose(rng, fixed_energy(160.0), m)
    mc = sampler.envelope_integral * ratio.mean()
    err = sampler.envelope_integral * ratio.std() / math.sqrt(m)
    assert mc == pytest.approx(quad, abs=4 * err)
    elastic = sampler.elastic.cross_section(np.array([160.0]), np.array([1.0]))
    assert 0.03 < quad / elastic < 0.08  # a few per cent of the elastic events radiate a photon above 100 MeV


@pytest.fixture(scope="module")
def radiative_sample():
    sampler = RadiativeSampler((160.0, 160.0), ElasticCuts(1.0), 0.1, LL)
    return sampler, sampler.sample(np.random.default_rng(77), fixed_energy(160.0), 200_000)


def test_radiative_t_distribution(radiative_sample):
    sampler, s = radiative_sample
    t = s["t"]
    assert t.min() >= P.t_min(160.0) and t.max() <= P.t_from_electron_energy(1.0)
    edges = np.sort(-np.geomspace(-P.t_from_electron_energy(1.0), -P.t_min(160.0), 25))
    counts, _ = np.histogram(t, edges)
    expected = np.array([sampler.cross_section(np.array([160.0]), np.array([1.0]), (a, b)) for a, b in itertools.pairwise(edges)])
    assert chi2_pvalue(counts, expected) > 1e-3


def test_radiative_splitting_and_angle_distributions(radiative_sample):
    _, s = radiative_sample
    t, z, y = s["t"], s["z"], s["y"]
    Y = -t / P.M_E**2
    # y given (z, t): y/(1 + y)^2 on [0, min(Y, y_kin(z))]
    y_kin = q2_max(t, 160.0) * (1 - z) / (z * P.M_E**2) - 1.0
    top = np.minimum(Y, y_kin)
    assert np.all(y <= top * (1 + 1e-12))
    assert stats.kstest(angular_integral(y) / angular_integral(top), "uniform").pvalue > 1e-3
    # z given t, where the kinematic limit is far: P(z) on [z_min, 0.5] for |t| < 2e-3
    sel = (-t < 2e-3) & (z < 0.5)
    z_min = 0.1 / (P.M_E - t[sel] / (2 * P.M_E))
    u = (splitting_primitive(z[sel]) - splitting_primitive(z_min)) / (splitting_primitive(0.5) - splitting_primitive(z_min))
    assert sel.sum() > 10_000 and stats.kstest(u, "uniform").pvalue > 1e-3


def test_radiative_source_events(tmp_path):
    res = muone.run(job(tmp_path, "radiative", pileup_mean=1.25, photon_energy_min=0.2))
    ev = read_mc(res)
    mc = ev.mc
    assert ak.all(mc.process == 3)
    hard = mc.particles[mc.particles.origin == 0]
    assert ak.all(ak.num(hard) == 3)
    # exact four-momentum conservation: beam + electron at rest = mu' + e' + gamma
    assert np.allclose(ak.sum(hard.E, axis=1), mc.beam.E + P.M_E, rtol=1e-13)
    for c in ("px", "py", "pz"):
        assert np.allclose(ak.sum(hard[c], axis=1), mc.beam[c], rtol=0, atol=1e-9)
    gamma = hard[hard.pdg == 22][:, 0]
    electron = hard[hard.pdg == 11][:, 0]
    mu = hard[hard.pdg == -13][:, 0]
    assert ak.all(gamma.E >= 0.2)
    # t24 and t13 from the four-vectors; the elastic cut on the muon-line kinematics
    assert np.allclose(mc.t, 2 * P.M_E**2 - 2 * P.M_E * electron.E, rtol=1e-9)
    assert np.allclose(mc.beam.subtract(mu).tau2, mc.t_mu, rtol=1e-6)
    assert ak.all(P.M_E - mc.t_mu / (2 * P.M_E) >= 1.0)
    # the invariant of the emission: y = Q^2 (1 - z)/(z m_e^2) - 1 in [0, |t13|/m_e^2]
    z = gamma.E / (gamma.E + electron.E)
    q2 = 2 * P.M_E * (mc.beam.E - mu.E) + mc.t_mu
    y = ak.to_numpy(q2 * (1 - z) / (z * P.M_E**2) - 1)
    assert np.all(y > -1e-6) and np.all(y <= ak.to_numpy(-mc.t_mu / P.M_E**2) * (1 + 1e-6))
    # the photon is collinear with the electron (within a few theta_e)
    assert np.median(ak.to_numpy(gamma.deltaangle(electron))) < 5e-3
    # VP coefficients: w = c5 vp(t13)^2 reproduces the generation coupling (weight 1)
    assert np.allclose(mc.vp[:, 5] * P.running_factor(mc.t_mu, LL), 1.0, rtol=1e-12)
    assert ak.all(ak.sum(mc.vp, axis=1) == mc.vp[:, 5])
    assert np.allclose(mc.weight_lep, mc.weight_norun * P.running_factor(mc.t_mu, None), rtol=1e-12)
    n_pile = ak.to_numpy(ak.num(mc.particles[mc.particles.origin == 1]))
    assert n_pile.mean() == pytest.approx(1.25, abs=0.03)
    assert 0.0 < res.cross_section < 12.0


def test_radiative_reproducible_and_bad_parameters(tmp_path):
    a = read_mc(muone.run(job(tmp_path, "radiative", name="a", events=5_000)))
    b = read_mc(muone.run(job(tmp_path, "radiative", name="b", events=5_000)))
    assert ak.all(ak.flatten(a.mc.particles.pz) == ak.flatten(b.mc.particles.pz))
    with pytest.raises(muone.SteeringError) as info:
        muone.run(job(tmp_path, "radiative", photon_energy_min=-0.1, pileup_mean=-1))
    text = str(info.value)
    assert "source.photon_energy_min" in text and "source.pileup_mean" in text
    with pytest.raises(muone.SteeringError) as info:
        muone.run(job(tmp_path, "radiative", hadronic={"model": "LeptonLyke"}, ee_max=0.5))
    text = str(info.value)
    assert "source.hadronic" in text and "LeptonLike" in text and "source.ee_max" in text
    with pytest.raises(muone.SteeringError) as info:
        muone.run(job(tmp_path, "radiative", ee_max=5.0, photon_energy_min=6.0))
    assert "source.photon_energy_min" in str(info.value)
