"""The ``vertexing`` processor on synthetic tracks and clusters built from elastic MC truth
(muone.reconstruction.vertexing_synthetic): vertex resolution and pulls, chi2 vs ndf, angles,
acoplanarity and elastic distance, the three mu/e assignment regimes, the nominal-beam mode of
station2022, and the numba kernels against a pure-Python implementation."""

from __future__ import annotations

import math
from types import SimpleNamespace

import awkward as ak
import muone
import numpy as np
import pytest
from muone import physics as P
from muone.generators.beam import GeneratorParams  # noqa: F401  (imported for the source params)
from muone.geometry import load_geometry
from muone.plugins.elastic import ElasticParams, ElasticSource
from muone.plugins.vertexing import (
    THETA_MU_MAX,
    Vertexing,
    VertexingParams,
    run_kernel,
    track_columns,
)
from muone.processor import Chunk, ChunkSpec, Context
from muone.reconstruction import vertexing as K
from muone.reconstruction.vertexing_synthetic import (
    SyntheticVertexingInputs,
    SyntheticVertexingInputsParams,
    synthetic_clusters,
    synthetic_tracks,
)
from muone.simulation.highland import highland_theta0
from scipy import optimize

SEED = 20240611


# ----------------------------------------------------------------------------------- helpers
def generate(preset: str, n: int, seed: int = SEED, synth: dict | None = None, **source) -> ak.Array:
    """Elastic events on ``preset`` with synthetic ``tracks`` and ``calo_clusters``."""
    src = ElasticSource(ElasticParams(**source))
    ctx = Context(job=SimpleNamespace(chunk_size=n, events=n), geometry={"preset": preset}, output_dir=".")
    src.setup(ctx)
    spec = ChunkSpec(0, n)
    events = src.read(spec, Chunk(spec, seed, "elastic"))
    detector = load_geometry({"preset": preset})
    p = SyntheticVertexingInputsParams(**(synth or {}))
    rng = np.random.default_rng(seed + 1)
    tracks = synthetic_tracks(events.mc, detector, rng, p)
    clusters = synthetic_clusters(events.mc, detector, rng, p)
    return ak.with_field(ak.with_field(events, tracks, "tracks"), clusters, "calo_clusters")


def processor(preset: str, **params) -> Vertexing:
    proc = Vertexing(VertexingParams(**params))
    proc.setup(Context(job=None, geometry={"preset": preset}, output_dir="."))
    return proc


def best_vertex(events: ak.Array, vertices: ak.Array) -> tuple[ak.Array, ak.Array]:
    """Events with at least one vertex and their best vertex."""
    has = ak.num(vertices) > 0
    v = vertices[has]
    return events[has], v[v.best][:, 0]


def track_field(tracks: ak.Array, index: ak.Array, field: str) -> np.ndarray:
    """``tracks[field]`` of the track ``index`` of each event."""
    local = ak.local_index(tracks, axis=1)
    return np.ma.getdata(ak.to_numpy(ak.firsts(tracks[field][local == index])))


def track_matrix(tracks: ak.Array, index: ak.Array) -> np.ndarray:
    local = ak.local_index(tracks, axis=1)
    return np.ma.getdata(ak.to_numpy(ak.firsts(tracks["cov"][local == index])))


def truth_angles(events: ak.Array) -> tuple[np.ndarray, np.ndarray]:
    mc = events.mc
    hard = mc.particles
    mu, e = hard[:, 0], hard[:, 1]
    return ak.to_numpy(mu.deltaangle(mc.beam)), ak.to_numpy(e.deltaangle(mc.beam))


def mean_error(x: np.ndarray) -> float:
    return float(np.std(x) / math.sqrt(len(x)))


# ----------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def pilot():
    """pilot2023, no pile-up, no beam-energy spread: 12k elastic events with E_e > 5 GeV (below,
    the multiple scattering of the electron makes its slope error a sizeable fraction of theta_e
    and the z estimate, a ratio of position and slope differences, biased by ~0.1 sigma) with
    their vertices."""
    events = generate("pilot2023", 12_000, pileup_mean=0.0, beam_energy_spread=0.0, ee_min=5.0)
    proc = processor("pilot2023")
    return events, proc.vertices(events), proc


# ----------------------------------------------------------------------------------- the fit
def fit_errors(events: ak.Array, b: ak.Array, proc: Vertexing) -> np.ndarray:
    """Vertex covariance (n, 3, 3) of the best vertices, refitted with the kernel's fit_vertex."""
    trk, off = track_columns(events.tracks)
    out = np.empty((len(b), 3, 3))
    zc = proc.targets["zc"]
    tin, ta, tb = (ak.to_numpy(b[f]) for f in ("track_in", "track_mu", "track_e"))
    tg = ak.to_numpy(b.target)
    for k in range(len(b)):
        ids = np.array([tin[k], ta[k], tb[k]], np.int64) + off[k]
        w = K.fit_vertex_arrays(ids, 3, trk["z_ref"], trk["x"], trk["y"], trk["tx"], trk["ty"], trk["cov"], zc[tg[k]], 10, 1e-3, 1e5)
        out[k] = [[w[K.W_CXX], w[K.W_CXY], w[K.W_CXZ]], [w[K.W_CXY], w[K.W_CYY], w[K.W_CYZ]], [w[K.W_CXZ], w[K.W_CYZ], w[K.W_CZZ]]]
    return out


def test_vertex_resolution_pulls_and_chi2(pilot):
    events, vertices, proc = pilot
    ev, b = best_vertex(events, vertices)
    assert len(b) > 0.8 * len(events)
    assert ak.all(b.target == ev.mc.target) and ak.all(b.ndf == 3)
    # the best vertex uses the true muon and electron tracks
    assert np.mean(track_field(ev.tracks, b.track_mu, "particle") == 0) > 0.999
    assert np.mean(track_field(ev.tracks, b.track_e, "particle") == 1) > 0.999
    assert np.all(track_field(ev.tracks, b.track_in, "particle") == -1)
    cov = fit_errors(ev, b, proc)
    for k, c in enumerate("xyz"):
        res = ak.to_numpy(b[c] - ev.mc.vertex[c])
        pull = res / np.sqrt(cov[:, k, k])
        assert abs(pull.mean()) < 4 * mean_error(pull), (c, pull.mean())
        assert pull.std() == pytest.approx(1.0, abs=0.04), (c, pull.std())
    dz = ak.to_numpy(b.z - ev.mc.vertex.z)
    assert np.std(dz) < 4.0 and np.median(np.abs(dz)) < 2.5  # mm (synthetic resolution)
    chi2 = ak.to_numpy(b.chi2)
    assert chi2.mean() == pytest.approx(3.0, abs=4 * math.sqrt(6 / len(chi2)))
    # chi2 probabilities flat: the fraction below p = 0.1 is 0.1
    from scipy import stats

    prob = stats.chi2.sf(chi2, 3)
    assert np.mean(prob < 0.1) == pytest.approx(0.1, abs=0.015)


def test_angles_acoplanarity_and_elastic_distance(pilot):
    events, vertices, _ = pilot
    ev, b = best_vertex(events, vertices)
    th_mu_true, th_e_true = truth_angles(ev)
    tr = ev.tracks
    c_in, c_mu, c_e = (track_matrix(tr, b[f])[:, 2:, 2:] for f in ("track_in", "track_mu", "track_e"))
    s_in = np.stack([track_field(tr, b.track_in, f) for f in ("tx", "ty")], 1)
    expected = {}
    for name, cc, who in (("theta_mu", c_mu, b.track_mu), ("theta_e", c_e, b.track_e)):
        s = np.stack([track_field(tr, who, f) for f in ("tx", "ty")], 1)
        d = s - s_in
        u = d / np.linalg.norm(d, axis=1)[:, None]  # radial direction
        v = np.stack([-u[:, 1], u[:, 0]], 1)  # azimuthal direction
        ctot = cc + c_in
        sig_r = np.sqrt(np.einsum("ni,nij,nj->n", u, ctot, u))
        sig_phi = np.sqrt(np.einsum("ni,nij,nj->n", v, ctot, v)) / np.linalg.norm(d, axis=1)
        expected[name] = (sig_r, sig_phi)
    for name, truth in (("theta_mu", th_mu_true), ("theta_e", th_e_true)):
        sig = expected[name][0]
        sel = truth > 10 * sig  # away from the origin (Rice regime)
        pull = (ak.to_numpy(b[name]) - truth)[sel] / sig[sel]
        assert sel.sum() > 1000
        assert abs(pull.mean()) < 4 * mean_error(pull) + 0.02, (name, pull.mean())
        assert pull.std() == pytest.approx(1.0, abs=0.05), (name, pull.std())
    # acoplanarity: |N(0, sigma)| with sigma^2 = sum of the azimuthal variances
    sig_a = np.hypot(expected["theta_mu"][1], expected["theta_e"][1])
    sel = sig_a < 0.1
    a = ak.to_numpy(b.acoplanarity)
    assert np.all((a >= 0) & (a <= math.pi))
    assert np.sqrt(np.mean((a[sel] / sig_a[sel]) ** 2)) == pytest.approx(1.0, abs=0.06)
    # elastic distance: centred on 0, width from the two radial resolutions (the muon angle well
    # above its resolution: a 3D angle of a few sigma is biased upwards)
    ed = ak.to_numpy(b.elastic_distance)
    the = ak.to_numpy(b.theta_e)
    slope = (P.theta_mu_from_theta_e(the + 1e-7) - P.theta_mu_from_theta_e(the - 1e-7)) / 2e-7
    sig_ed = np.hypot(expected["theta_mu"][0], slope * expected["theta_e"][0])
    sel = th_mu_true > 10 * expected["theta_mu"][0]
    pull = ed[sel] / sig_ed[sel]
    assert sel.sum() > 1000
    assert abs(np.mean(pull)) < 4 * mean_error(pull) + 0.02, np.mean(pull)
    assert np.std(pull) < 1.1 and np.mean(np.abs(pull) < 3) > 0.98
    # the elastic curve of the kernel is muone.physics'
    assert np.allclose(ed, ak.to_numpy(b.theta_mu) - P.theta_mu_from_theta_e(the, 160.0), rtol=0, atol=1e-12)


def test_chi2_window_and_best_choice(pilot):
    events, vertices, proc = pilot
    flat = ak.flatten(vertices)
    assert ak.all(flat.chi2 <= proc.params.max_chi2)
    zlo, zhi = proc.targets["zlo"], proc.targets["zhi"]
    tg = ak.to_numpy(flat.target)
    z = ak.to_numpy(flat.z)
    assert np.all((z >= zlo[tg]) & (z <= zhi[tg]))
    n_best = ak.to_numpy(ak.sum(vertices.best, axis=1))
    assert np.all(n_best == (ak.to_numpy(ak.num(vertices)) > 0))
    # best = lowest chi2/ndf of the event
    red = vertices.chi2 / vertices.ndf
    has = ak.num(vertices) > 0
    assert ak.all(ak.min(red[has], axis=1) == red[has][vertices.best[has]][:, 0])
    # a tighter window removes far vertices only
    tight = processor("pilot2023", z_window=0.0).vertices(events)
    zt = ak.to_numpy(ak.flatten(tight.z))
    tt = ak.to_numpy(ak.flatten(tight.target))
    assert np.all((zt >= zlo[tt] + 20.0) & (zt <= zhi[tt] - 20.0))
    assert len(zt) < len(z)


# ----------------------------------------------------------------------------------- mu/e regimes
def assignment_summary(events: ak.Array, vertices: ak.Array) -> tuple[np.ndarray, np.ndarray, ak.Array, ak.Array]:
    ev, b = best_vertex(events, vertices)
    correct = (track_field(ev.tracks, b.track_mu, "particle") == 0) & (track_field(ev.tracks, b.track_e, "particle") == 1)
    return correct, ak.to_numpy(b.assignment), ev, b


@pytest.mark.parametrize(
    "source, regime, min_fraction, max_wrong",
    [
        ({"ee_min": 1.0, "ee_max": 28.0}, 0, 0.97, 1e-3),  # theta_e > theta_mu,max
        ({"ee_min": 33.0, "ee_max": 42.0}, 1, 0.95, 3e-3),  # elastic curve
        ({"ee_min": 125.0, "ee_max": 150.0}, 1, 0.95, 3e-3),  # elastic curve, theta_mu near its maximum
        ({"ee_min": 74.0, "ee_max": 86.0}, 2, 0.99, 0.06),  # near the equal-angle point: calorimeter
    ],
)
def test_mu_e_assignment_regimes(source, regime, min_fraction, max_wrong):
    events = generate("pilot2023", 3000, pileup_mean=1.25, beam_energy_spread=0.0, **source)
    vertices = processor("pilot2023").vertices(events)
    correct, code, ev, b = assignment_summary(events, vertices)
    assert len(b) > 0.7 * len(events)
    assert np.mean(code == regime) > min_fraction, np.bincount(code, minlength=3)
    assert 1 - correct.mean() < max_wrong
    # the matched cluster is the electron's (when one is matched)
    clu = ak.to_numpy(b.calo_cluster)
    m = clu >= 0
    if regime == 2:
        assert m.mean() > 0.95
    particle = track_field(ak.with_name(ev.calo_clusters, None), b.calo_cluster, "particle")
    assert np.mean(particle[m] == 1) > 0.99


def test_ambiguous_region_without_calorimeter_falls_back_to_the_curve():
    events = generate("pilot2023", 1500, pileup_mean=0.0, beam_energy_spread=0.0, ee_min=74.0, ee_max=86.0)
    vertices = processor("pilot2023", use_calorimeter=False).vertices(events)
    correct, code, _, b = assignment_summary(events, vertices)
    assert np.all(code == 1) and ak.all(b.calo_cluster == -1)
    assert correct.mean() < 0.8  # the curve alone is much worse there (see the regime-2 case)
    assert Vertexing.reads_for(VertexingParams(use_calorimeter=False)) == ("tracks",)


def test_electron_angle_threshold():
    """An angle above theta_mu,max + margin makes that track the electron, even off the curve."""
    assert THETA_MU_MAX == pytest.approx(P.theta_mu_max(), rel=1e-12)
    f = processor("pilot2023").fpar
    assert f[K.F_THETA_E_MIN] == pytest.approx(THETA_MU_MAX) and f[K.F_E_NSIG] == 3.0


# ----------------------------------------------------------------------------------- station2022
def test_station2022_nominal_beam():
    events = generate("station2022", 4000, pileup_mean=0.0, ee_min=20.0)
    proc = processor("station2022")
    assert proc.targets["up"].tolist() == [-1]
    vertices = proc.vertices(events)
    ev, b = best_vertex(events, vertices)
    assert len(b) > 0.8 * len(events)
    assert ak.all(b.track_in == -1) and ak.all(b.ndf == 1)
    # the vertex comes from the two outgoing tracks: unit pulls in z
    trk, off = track_columns(ev.tracks)
    pulls = []
    t_mu, t_e, z, z_true = (ak.to_numpy(a) for a in (b.track_mu, b.track_e, b.z, ev.mc.vertex.z))
    for k in range(len(b)):
        ids = np.array([t_mu[k], t_e[k], 0], np.int64) + off[k]
        w = K.fit_vertex_arrays(ids, 2, trk["z_ref"], trk["x"], trk["y"], trk["tx"], trk["ty"], trk["cov"], 7.5, 10, 1e-3, 1e5)
        pulls.append((w[K.W_Z] - z_true[k]) / math.sqrt(w[K.W_CZZ]))
        assert w[K.W_Z] == pytest.approx(z[k], abs=1e-3)
    pulls = np.array(pulls)
    assert pulls.std() == pytest.approx(1.0, abs=0.05)
    assert ak.mean(b.chi2) == pytest.approx(1.0, abs=0.1)
    # angles relative to the nominal beam: smeared by the beam divergence (0.4 mrad per plane)
    _, th_e = truth_angles(ev)
    d_e = ak.to_numpy(b.theta_e) - th_e
    assert np.std(d_e) == pytest.approx(4e-4, rel=0.15)
    tracks = ev.tracks
    c_e = track_matrix(tracks, b.track_e)
    assert np.median(np.sqrt(c_e[:, 2, 2])) < 1e-4  # the tracks themselves are much better
    correct = (track_field(ev.tracks, b.track_mu, "particle") == 0) & (track_field(ev.tracks, b.track_e, "particle") == 1)
    assert correct.mean() > 0.97  # mistakes near the equal-angle point (calorimeter position resolution)


def test_nominal_beam_fallback_when_the_upstream_station_has_no_track():
    events = generate("pilot2023", 1000, pileup_mean=0.0)
    tracks = events.tracks[events.tracks.station != 0]
    events = ak.with_field(events, tracks, "tracks")
    without = processor("pilot2023").vertices(events)
    with_fallback = processor("pilot2023", nominal_beam_fallback=True).vertices(events)
    target = ak.to_numpy(events.mc.target)
    n0 = ak.to_numpy(ak.num(without[without.target == 0]))
    assert n0.sum() == 0  # target 0 needs its incoming track
    fb = with_fallback[with_fallback.target == 0]
    assert ak.sum(ak.num(fb)) > 0.7 * np.sum(target == 0)
    assert ak.all(ak.flatten(fb.track_in) == -1) and ak.all(ak.flatten(fb.ndf) == 1)
    # target 1 keeps its incoming tracks from station 1
    t1 = with_fallback[with_fallback.target == 1]
    assert ak.all(ak.flatten(t1.track_in) >= 0)


# ----------------------------------------------------------------------------------- reference
def ref_propagated(cov: np.ndarray, dz: float) -> np.ndarray:
    J = np.array([[1.0, 0.0, dz, 0.0], [0.0, 1.0, 0.0, dz]])
    return J @ cov @ J.T


def ref_profile_chi2(lines: list[dict], z: float) -> tuple[float, np.ndarray]:
    """min over (X, Y) of sum r^T S^-1 r at fixed z, by weighted least squares."""
    Ws, ps = [], []
    for ln in lines:
        dz = z - ln["z_ref"]
        Ws.append(np.linalg.inv(ref_propagated(ln["cov"], dz)))
        ps.append(np.array([ln["x"] + ln["tx"] * dz, ln["y"] + ln["ty"] * dz]))
    V = np.linalg.solve(sum(Ws), sum(W @ p for W, p in zip(Ws, ps)))
    return float(sum((V - p) @ W @ (V - p) for W, p in zip(Ws, ps))), V


def ref_pair_chi2_min(la: dict, lb: dict, zlo: float, zhi: float) -> float:
    """Smallest two-line chi2 d^T (S_a + S_b)^-1 d on a 0.1 mm grid of the z window."""
    z = np.linspace(zlo, zhi, int((zhi - zlo) / 0.1) + 2)
    S = np.zeros((len(z), 2, 2))
    d = np.zeros((len(z), 2))
    for ln, sign in ((la, 1.0), (lb, -1.0)):
        dz = z - ln["z_ref"]
        J = np.zeros((len(z), 2, 4))
        J[:, 0, 0] = J[:, 1, 1] = 1.0
        J[:, 0, 2] = J[:, 1, 3] = dz
        S += J @ ln["cov"] @ J.transpose(0, 2, 1)
        d += sign * np.stack([ln["x"] + ln["tx"] * dz, ln["y"] + ln["ty"] * dz], 1)
    return float(np.min(np.einsum("ni,nij,nj->n", d, np.linalg.inv(S), d)))


def ref_fit(lines: list[dict], z0: float) -> tuple[float, float, float, float]:
    """Vertex (X, Y, Z, chi2): Brent minimisation of the profile chi2 in z, started at the
    fixed-weight linear least-squares solution (normal equations with the weights at z0)."""
    A = np.zeros((3, 3))
    rhs = np.zeros(3)
    for ln in lines:
        W = np.linalg.inv(ref_propagated(ln["cov"], z0 - ln["z_ref"]))
        M = np.array([[1.0, 0.0, -ln["tx"]], [0.0, 1.0, -ln["ty"]]])
        a = np.array([ln["x"] - ln["tx"] * ln["z_ref"], ln["y"] - ln["ty"] * ln["z_ref"]])
        A += M.T @ W @ M
        rhs += M.T @ W @ a
    z1 = np.linalg.solve(A, rhs)[2]
    if not abs(z1 - z0) < 1e5:
        return math.nan, math.nan, math.nan, math.inf
    res = optimize.minimize_scalar(lambda z: ref_profile_chi2(lines, z)[0], bracket=(z1 - 1.0, z1 + 1.0), tol=1e-12)
    chi2, V = ref_profile_chi2(lines, res.x)
    return V[0], V[1], res.x, chi2


def ref_full_chi2_fit(lines: list[dict], start: tuple[float, float, float]) -> tuple[np.ndarray, float]:
    """The full measurement model: vertex and per-line slopes fitted to each line's four measured
    parameters with their 4 x 4 covariance (scipy least squares)."""
    Ls = [np.linalg.inv(np.linalg.cholesky(ln["cov"])) for ln in lines]

    def residuals(par):
        X, Y, Z = par[:3]
        out = []
        for k, (ln, L) in enumerate(zip(lines, Ls)):
            sx, sy = par[3 + 2 * k: 5 + 2 * k]
            pred = np.array([X + sx * (ln["z_ref"] - Z), Y + sy * (ln["z_ref"] - Z), sx, sy])
            out.append(L @ (np.array([ln["x"], ln["y"], ln["tx"], ln["ty"]]) - pred))
        return np.concatenate(out)

    x0 = list(start) + [v for ln in lines for v in (ln["tx"], ln["ty"])]
    res = optimize.least_squares(residuals, x0, xtol=1e-15, ftol=1e-15, gtol=1e-15, x_scale="jac")
    return res.x[:3], float(2 * res.cost)


def ref_angles(n_in: np.ndarray, s1: np.ndarray, s2: np.ndarray) -> tuple[float, float, float]:
    n = n_in / np.linalg.norm(n_in)
    d1 = np.array([s1[0], s1[1], 1.0])
    d2 = np.array([s2[0], s2[1], 1.0])
    d1 /= np.linalg.norm(d1)
    d2 /= np.linalg.norm(d2)
    th1 = math.atan2(np.linalg.norm(np.cross(n, d1)), n @ d1)
    th2 = math.atan2(np.linalg.norm(np.cross(n, d2)), n @ d2)
    p1 = d1 - (d1 @ n) * n
    p2 = d2 - (d2 @ n) * n
    cosphi = np.clip(p1 @ p2 / np.linalg.norm(p1) / np.linalg.norm(p2), -1, 1)
    return th1, th2, math.pi - math.acos(cosphi)


def ref_candidate(tracks: list[dict], clusters: list[dict], cal, tg, p: VertexingParams, i: int, a: int, b: int,
                  X: float, Y: float, Z: float, chi2: float, n_lines: int) -> dict:
    """The fields of one accepted candidate: angles, uncertainties and the mu/e assignment."""
    n_in = np.array([0.0, 0.0, 1.0]) if i < 0 else np.array([tracks[i]["tx"], tracks[i]["ty"], 1.0])
    th_a, th_b, acop = ref_angles(n_in, (tracks[a]["tx"], tracks[a]["ty"]), (tracks[b]["tx"], tracks[b]["ty"]))

    def match(k, theta, sig):
        best, score = -1, math.inf
        if not p.use_calorimeter:
            return best, score
        t = tracks[k]
        ex = t["x"] + t["tx"] * (cal.z - t["z_ref"])
        ey = t["y"] + t["ty"] * (cal.z - t["z_ref"])
        ee = P.electron_energy_from_theta(theta, p.beam_energy)
        h = 1e-6
        dedt = (P.electron_energy_from_theta(theta + h, p.beam_energy) - P.electron_energy_from_theta(theta - h, p.beam_energy)) / (2 * h)
        sig_e = math.sqrt((p.calo_energy_sigma * ee) ** 2 + (dedt * sig) ** 2 + spread(theta)[1] ** 2)
        for j, c in enumerate(clusters):
            d = math.hypot(c["x"] - ex, c["y"] - ey)
            pull = (c["energy"] - ee) / sig_e
            if d > p.calo_window or abs(pull) >= p.calo_energy_nsigma:
                continue
            s = (d / p.calo_position_sigma) ** 2 + pull**2
            if s < score:
                best, score = j, s
        return best, score

    zv = min(max(Z, tg.z_start), tg.z_end)
    x_in = (zv - tg.z_start) / tg.thickness * tg.x_over_x0
    x_out = (tg.z_end - zv) / tg.thickness * tg.x_over_x0
    p_in = p.beam_energy if i < 0 else tracks[i]["p_hyp"]
    var_in = (p.target_mcs_scale * highland_theta0(p_in, 1.0, x_in)) ** 2

    def sigma(k):
        c = tracks[k]["cov"][2:, 2:] + (np.eye(2) * p.beam_divergence**2 if i < 0 else tracks[i]["cov"][2:, 2:])
        d = np.array([tracks[k]["tx"], tracks[k]["ty"]]) - n_in[:2]
        u = d / np.linalg.norm(d)
        return math.sqrt(u @ c @ u + var_in + (p.target_mcs_scale * highland_theta0(tracks[k]["p_hyp"], 1.0, x_out)) ** 2)

    def slope(theta):
        h = 1e-7
        return (P.theta_mu_from_theta_e(theta + h, p.beam_energy) - P.theta_mu_from_theta_e(theta - h, p.beam_energy)) / (2 * h)

    e_hi, e_lo = p.beam_energy * (1 + p.beam_energy_spread), p.beam_energy * (1 - p.beam_energy_spread)

    def spread(theta):
        return (0.5 * abs(P.theta_mu_from_theta_e(theta, e_hi) - P.theta_mu_from_theta_e(theta, e_lo)),
                0.5 * abs(P.electron_energy_from_theta(theta, e_hi) - P.electron_energy_from_theta(theta, e_lo)))

    sig_a, sig_b = sigma(a), sigma(b)
    code = 1
    big, sig_big = (th_b, sig_b) if th_b > th_a else (th_a, sig_a)
    if big > THETA_MU_MAX + p.electron_angle_margin + p.electron_angle_nsigma * sig_big:
        e_is_b, code = th_b > th_a, 0
    else:
        da = abs(th_b - P.theta_mu_from_theta_e(th_a, p.beam_energy))
        db = abs(th_a - P.theta_mu_from_theta_e(th_b, p.beam_energy))
        za = da / math.sqrt(sig_b**2 + (slope(th_a) * sig_a) ** 2 + spread(th_a)[0] ** 2)
        zb = db / math.sqrt(sig_a**2 + (slope(th_b) * sig_b) ** 2 + spread(th_b)[0] ** 2)
        e_is_b = zb < za
        if p.use_calorimeter and (max(za, zb) < p.ambiguity_nsigma or abs(da - db) < p.ambiguity_margin):
            ja, sa = match(a, th_a, sig_a)
            jb, sb = match(b, th_b, sig_b)
            if ja >= 0 or jb >= 0:
                e_is_b, code = sb < sa, 2
    mu, el = (a, b) if e_is_b else (b, a)
    th_mu, th_e = (th_a, th_b) if e_is_b else (th_b, th_a)
    clu = match(el, th_e, sig_b if e_is_b else sig_a)[0]
    return {
        "target": tg.index, "x": X, "y": Y, "z": Z, "chi2": chi2, "ndf": 2 * n_lines - 3,
        "track_in": i, "track_mu": mu, "track_e": el, "theta_mu": th_mu, "theta_e": th_e,
        "acoplanarity": acop, "elastic_distance": th_mu - P.theta_mu_from_theta_e(th_e, p.beam_energy),
        "calo_cluster": clu, "assignment": code,
    }


def ref_event(tracks: list[dict], clusters: list[dict], detector, p: VertexingParams) -> list[dict]:
    """Every vertex candidate of one event, by plain Python loops (the processor's rules,
    docs/reconstruction.md ``vertexing``), without the kernel's chi2 pre-selection bound."""
    cal = detector.calorimeter
    out = []
    for tg in detector.targets:
        ups = detector.upstream_modules(tg)
        up = ups[-1].station if ups else -1
        out_station = detector.downstream_modules(tg)[0].station
        zlo, zhi = tg.z_start - p.z_window, tg.z_end + p.z_window
        incoming = [k for k, t in enumerate(tracks) if t["station"] == up] if up >= 0 else []
        nominal = up < 0 or (not incoming and p.nominal_beam_fallback)
        if not incoming and not nominal:
            continue
        outgoing = [k for k, t in enumerate(tracks) if t["station"] == out_station and t["role"] == 1]
        for ia in range(len(outgoing)):
            for ib in range(ia + 1, len(outgoing)):
                a, b = outgoing[ia], outgoing[ib]
                if ref_pair_chi2_min(tracks[a], tracks[b], zlo, zhi) > 2 * p.max_chi2:
                    continue  # (speed only) no vertex in the window can have a small chi2
                for i in ([-1] if nominal else incoming):
                    lines = [tracks[a], tracks[b]] + ([] if i < 0 else [tracks[i]])
                    X, Y, Z, chi2 = ref_fit(lines, tg.z_centre)
                    if not (zlo <= Z <= zhi and chi2 <= p.max_chi2):
                        continue
                    out.append(ref_candidate(tracks, clusters, cal, tg, p, i, a, b, X, Y, Z, chi2, len(lines)))
    if out:
        red = [c["chi2"] / c["ndf"] for c in out]
        best = int(np.argmin(red))
        for k, c in enumerate(out):
            c["best"] = k == best
    return out


@pytest.mark.parametrize("preset, source", [
    ("pilot2023", {"pileup_mean": 1.5, "ee_min": 20.0}),
    ("station2022", {"pileup_mean": 1.0, "ee_min": 20.0}),
])
def test_kernel_matches_python_reference(preset, source):
    events = generate(preset, 100, seed=7, **source)
    p = VertexingParams()
    proc = processor(preset)
    vertices = ak.to_list(proc.vertices(events))
    detector = load_geometry({"preset": preset})
    tracks = ak.to_list(events.tracks)
    clusters = ak.to_list(events.calo_clusters)
    n_candidates = 0
    for k in range(len(events)):
        trk = [dict(t, cov=np.array(t["cov"])) for t in tracks[k]]
        ref = ref_event(trk, clusters[k], detector, p)
        got = vertices[k]
        key = lambda c: (c["target"], c["track_in"], min(c["track_mu"], c["track_e"]), max(c["track_mu"], c["track_e"]))
        assert sorted(map(key, got)) == sorted(map(key, ref)), k
        for g, r in zip(sorted(got, key=key), sorted(ref, key=key)):
            for f in ("x", "y"):
                assert g[f] == pytest.approx(r[f], abs=5e-5), (k, f)
            assert g["z"] == pytest.approx(r["z"], abs=2e-3), k
            assert g["chi2"] == pytest.approx(r["chi2"], rel=1e-6, abs=1e-6), k
            for f in ("theta_mu", "theta_e", "elastic_distance"):
                assert g[f] == pytest.approx(r[f], abs=1e-12), (k, f)
            assert g["acoplanarity"] == pytest.approx(r["acoplanarity"], abs=1e-7), k
            for f in ("ndf", "track_mu", "track_e", "calo_cluster", "assignment", "best"):
                assert g[f] == r[f], (k, f)
        n_candidates += len(ref)
    assert n_candidates > 60


def test_profile_fit_is_the_full_measurement_fit():
    """The kernel's chi2 (propagated 2 x 2 covariances, slopes profiled) equals the chi2 of the full
    model: each track's 4 measured parameters vs a line through the vertex with free slopes."""
    events = generate("pilot2023", 30, seed=3, pileup_mean=0.0)
    proc = processor("pilot2023")
    ev, b = best_vertex(events, proc.vertices(events))
    tracks = ak.to_list(ev.tracks)
    for k in range(len(b)):
        lines = [dict(tracks[k][int(b[f][k])], cov=np.array(tracks[k][int(b[f][k])]["cov"])) for f in ("track_in", "track_mu", "track_e")]
        zc = proc.targets["zc"][int(b.target[k])]
        start = (lines[1]["x"] + lines[1]["tx"] * (zc - lines[1]["z_ref"]), lines[1]["y"] + lines[1]["ty"] * (zc - lines[1]["z_ref"]), zc)
        vertex, chi2 = ref_full_chi2_fit(lines, start)
        assert chi2 == pytest.approx(b.chi2[k], rel=1e-4, abs=1e-5)  # the processor stops at tolerance = 0.1 mm
        assert vertex == pytest.approx([b.x[k], b.y[k], b.z[k]], abs=2e-3)


def test_pair_bound_is_below_the_two_line_chi2():
    """The kernel's pre-selection bound never exceeds the exact two-line chi2 in the window."""
    events = generate("pilot2023", 20, seed=11, pileup_mean=2.0)
    trk, off = track_columns(events.tracks)
    tracks = ak.to_list(events.tracks)
    n = 0
    for k in range(len(events)):
        for a in range(len(tracks[k])):
            for b in range(a + 1, len(tracks[k])):
                la, lb = (dict(tracks[k][j], cov=np.array(tracks[k][j]["cov"])) for j in (a, b))
                for zlo, zhi in ((1140.0, 1200.0), (2300.0, 2360.0)):
                    bound = K.pair_chi2_bound(a + off[k], b + off[k], trk["z_ref"], trk["x"], trk["y"], trk["tx"], trk["ty"], trk["cov"], zlo, zhi)
                    assert bound <= ref_pair_chi2_min(la, lb, zlo, zhi) * (1 + 1e-9)
                    n += 1
    assert n > 200


def test_elastic_curve_kernels():
    p, p2, s = K.elastic_constants(150.0)
    for th in (1e-5, 1e-3, 2.44e-3, 5e-3, 0.03, 0.2):
        assert K.theta_mu_elastic(th, p, p2, s) == pytest.approx(P.theta_mu_from_theta_e(th, 150.0), rel=1e-12)
        assert K.electron_energy_elastic(th, p2, s) == pytest.approx(P.electron_energy_from_theta(th, 150.0), rel=1e-12)
    assert math.isnan(K.theta_mu_elastic(-1e-3, p, p2, s))


def test_fit_vertex_failures():
    """Parallel lines (singular normal matrix) and non-positive covariances are rejected."""
    zr = np.array([100.0, 100.0])
    x = np.array([0.0, 1.0])
    y = np.zeros(2)
    t = np.zeros(2)
    cov = np.stack([np.diag([1e-4, 1e-4, 1e-8, 1e-8])] * 2)
    ids = np.array([0, 1, 0])
    w = K.fit_vertex_arrays(ids, 2, zr, x, y, t, t, K.flat_covariances(cov), 0.0, 10, 1e-3, 1e5)
    assert np.all(np.isnan(w))
    bad = cov.copy()
    bad[0, 0, 0] = -1.0
    tx = np.array([0.001, -0.001])
    w = K.fit_vertex_arrays(ids, 2, zr, x, y, tx, t, K.flat_covariances(bad), 0.0, 10, 1e-3, 1e5)
    assert np.all(np.isnan(w))
    w = K.fit_vertex_arrays(ids, 2, zr, np.array([0.1, -0.1]), y, tx, t, K.flat_covariances(cov), 0.0, 10, 1e-3, 1e5)
    assert w[K.W_Z] == pytest.approx(0.0, abs=1e-9) and w[K.W_CHI2] == pytest.approx(0.0, abs=1e-12)


# ----------------------------------------------------------------------------------- processor
def test_empty_events_and_capacity_regrowth():
    events = generate("pilot2023", 400, pileup_mean=1.0)
    proc = processor("pilot2023")
    full = proc.vertices(events)
    trk, off = track_columns(events.tracks)
    from muone.plugins.vertexing import CLUSTER_FIELDS, _columns

    clu, coff = _columns(events.calo_clusters, CLUSTER_FIELDS)
    small = run_kernel(trk, off, clu, coff, proc.targets, proc.fpar, proc.ipar, capacity=1)
    assert ak.to_list(small) == ak.to_list(full)
    assert ak.sum(ak.num(full)) > 1
    # events without tracks give empty lists
    empty = ak.with_field(events, events.tracks[events.tracks.station < 0], "tracks")
    v = proc.vertices(empty)
    assert len(v) == len(events) and ak.sum(ak.num(v)) == 0
    assert set(ak.fields(v)) == {"target", "x", "y", "z", "chi2", "ndf", "track_in", "track_mu", "track_e", "theta_mu",
                                 "theta_e", "acoplanarity", "elastic_distance", "calo_cluster", "assignment", "best"}


def test_parameters_are_validated():
    with pytest.raises(ValueError):
        VertexingParams(z_window=-1.0)
    with pytest.raises(ValueError):
        VertexingParams(max_chi2=0.0)
    with pytest.raises(ValueError):
        VertexingParams(unknown=1)
    for name, field in VertexingParams.model_fields.items():
        assert field.description, name


def test_full_job_with_synthetic_inputs(tmp_path):
    steering = {
        "job": {"events": 2000, "chunk_size": 1000, "output_dir": str(tmp_path / "v"), "save": ["mc", "vertices"]},
        "geometry": {"preset": "pilot2023"},
        "source": {"plugin": "elastic"},
        "processors": [{"plugin": "synthetic_vertexing_inputs"}, {"plugin": "vertexing", "max_chi2": 40.0}],
    }
    res = muone.run(steering, plugins=[SyntheticVertexingInputs])
    ev = res.events()
    v = ev.vertices
    assert ak.sum(ak.num(v)) > 1500
    flat = ak.flatten(v)
    types = {f: str(ak.type(flat[f]).content) for f in ak.fields(flat)}
    assert types["best"] == "bool" and types["assignment"] == "int8" and types["track_in"] == "int32"
    assert ak.all(flat.chi2 <= 40.0)
    # a geometry without calorimeter needs use_calorimeter = false
    bad = dict(steering, geometry={"file": str(tmp_path / "nocalo.toml")})
    (tmp_path / "nocalo.toml").write_text(
        '[[stations]]\nz = 0.0\ntarget = { material = "Be", thickness = 15.0 }\n'
        'modules = [{ kind = "x", z = 180.2 }, { kind = "y", z = 218.7 }, { kind = "x", z = 899.2 }, { kind = "y", z = 937.7 }]\n'
    )
    with pytest.raises(muone.SteeringError) as info:
        muone.run(bad, plugins=[SyntheticVertexingInputs])
    assert "use_calorimeter" in str(info.value)


# ----------------------------------------------------------------------------------- real chain
@pytest.mark.slow
@pytest.mark.parametrize("pileup", [0.0, 1.25])
def test_real_chain_pilot2023(tmp_path, pileup):
    """elastic -> sim_tracker -> sim_calorimeter -> unpack -> stubs -> tracking -> calo_clustering
    -> vertexing (docs/reconstruction.md, vertexing: measured performance)."""
    import io

    from muone.reconstruction.vertexing_study import analyse, steering

    steer = steering("pilot2023", str(tmp_path / "chain"), 6000, pileup, 20.0, 5, 3000, synthetic=False)
    summary = analyse(muone.run(steer).events(), out=io.StringIO())
    assert summary["with_vertex"] > 0.75 and summary["on_true_target"] > 0.999 and summary["true_pair"] > 0.99
    assert summary["mis_assignment"] < 0.005
    assert summary["sigma_z"] < 4.0 and abs(summary["mean_z"]) < 0.3
    assert summary["chi2_median"] < 2.5
    assert abs(summary["elastic_distance_median"]) < 1e-5 and summary["elastic_distance_sigma"] < 1e-4
