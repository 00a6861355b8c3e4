"""The tracker simulation (``sim_tracker``): kernels against small reference implementations, and
the physics validation of docs/simulation.md ("Tracker").

Most tests build events directly in the ``mc`` layout and run the processor through its plugin
interface (setup/process) with a fixed chunk seed; a few run whole jobs with ``muone.run``.
"""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import awkward as ak
import muone
import numpy as np
import pytest
from muone import rawformat as rf
from muone.geometry import load_geometry
from muone.mc import momentum4d, particles_record, vector3d
from muone.physics.constants import M_MU
from muone.plugins.elastic import ElasticSource
from muone.plugins.sim_tracker import SimTracker
from muone.processor import Chunk, ChunkSpec, Context
from muone.simulation import tracker as T
from muone.simulation.highland import (
    effective_rms_factor,
    highland_theta0,
    highland_theta0_scalar,
)

PITCH = 0.090
SENSOR = 0.320
TILT = 0.233
IDEAL = {"mcs_scale": 0.0, "hit_efficiency": 1.0, "noise_occupancy": 0.0}


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def make_events(per_event, vertex=None, beam=None) -> ak.Array:
    """Events from per-event particle lists of dicts (pdg, px, py, pz, E, vx, vy, vz); ``vertex``
    (n, 3) and ``beam`` (n, 4: px, py, pz, E) default to NaN (no hard interaction)."""
    n = len(per_event)
    flat = [p for ev in per_event for p in ev]
    col = lambda k, d=np.float64: np.array([p[k] for p in flat], dtype=d)
    counts = np.array([len(ev) for ev in per_event], np.int64)
    particles = particles_record(counts, col("pdg", np.int32), col("px"), col("py"), col("pz"), col("E"), col("vx"),
                                 col("vy"), col("vz"), np.ones(len(flat), np.int8))
    vertex = np.full((n, 3), np.nan) if vertex is None else np.asarray(vertex, float)
    beam = np.full((n, 4), np.nan) if beam is None else np.asarray(beam, float)
    mc = ak.zip({"vertex": vector3d(*vertex.T), "beam": momentum4d(*beam.T), "particles": particles}, depth_limit=1)
    return ak.zip({"event": np.arange(n), "mc": mc}, depth_limit=1)


def muons(x, y, z=-100.0, tx=0.0, ty=0.0, energy=160.0, pdg=-13, mass=M_MU):
    """One particle per event starting at (x, y, z) with slopes (tx, ty)."""
    x = np.asarray(x, float)
    tx, ty, energy = (np.broadcast_to(np.asarray(a, float), x.shape) for a in (tx, ty, energy))
    y = np.broadcast_to(np.asarray(y, float), x.shape)
    p = np.sqrt(energy**2 - mass**2)
    pz = p / np.sqrt(1 + tx**2 + ty**2)
    return [[{"pdg": pdg, "px": a * c, "py": b * c, "pz": c, "E": e, "vx": xx, "vy": yy, "vz": z}]
            for xx, yy, a, b, c, e in zip(x, y, tx, ty, pz, energy)]


def uniform_muons(n, half=40.0, seed=3, **kw):
    rng = np.random.default_rng(seed)
    return make_events(muons(rng.uniform(-half, half, n), rng.uniform(-half, half, n), **kw))


def simulate(events, preset="station2022", seed=1, geometry_alignment="", instance="sim_tracker", **params):
    proc = SimTracker(SimTracker.Params(**params), instance)
    proc.setup(Context(job=SimpleNamespace(chunk_size=len(events)), geometry={"preset": preset, "alignment": geometry_alignment},
                       output_dir=Path(".")))
    out = proc.process(events, Chunk(ChunkSpec(0, len(events)), seed, instance))
    return out.collections["raw.strips"], out.collections.get("mc.sim_hits"), proc


def elastic_events(n, preset="pilot2023", seed=5, **params):
    src = ElasticSource(ElasticSource.Params(**params))
    src.setup(Context(job=SimpleNamespace(chunk_size=n, events=n), geometry={"preset": preset}, output_dir=Path(".")))
    spec = ChunkSpec(0, n)
    return src.read(spec, Chunk(spec, seed, "elastic"))


def flat_hits(hits) -> dict[str, np.ndarray]:
    return {f: ak.to_numpy(ak.flatten(hits[f])) for f in ak.fields(hits)}


def cluster_centre(detector, h):
    """Local u of the centre of the fired strips of each hit."""
    pitch = np.array([m.pitch for m in detector.modules])[h["module"]]
    n = np.array([m.n_strips for m in detector.modules])[h["module"]]
    return (h["strip"] + 0.5 * (h["size"] - 1) + 0.5 - 0.5 * n) * pitch


# ---------------------------------------------------------------------------------------------
# reference implementation (pure Python, the geometry objects' own transforms)
# ---------------------------------------------------------------------------------------------


def ref_fired(q_lo, q_hi, n_strips, threshold):
    width = q_hi - q_lo
    if width < 1e-9:
        k = math.floor(0.5 * (q_lo + q_hi))
        return (k, 1) if 0 <= k < n_strips else (-1, 0)
    edges = np.arange(n_strips + 1, dtype=float)
    share = np.clip(np.minimum(q_hi, edges[1:]) - np.maximum(q_lo, edges[:-1]), 0, None) / width
    fired = np.flatnonzero(share > threshold)
    if len(fired) == 0:
        return -1, 0
    assert np.all(np.diff(fired) == 1), "fired strips must be contiguous"
    return int(fired[0]), len(fired)


def ref_basis(d):
    e1 = np.array([d[2], 0.0, -d[0]]) / math.hypot(d[0], d[2])
    return e1, np.cross(d, e1)


def ref_rotate(d, th1, th2):
    """Rotate the unit vector d by theta = |(th1, th2)| towards th1 e1 + th2 e2 (cos/sin form)."""
    th = math.hypot(th1, th2)
    if th == 0:
        return d
    e1, e2 = ref_basis(d)
    return math.cos(th) * d + math.sin(th) * (th1 * e1 + th2 * e2) / th


def ref_width(rng, p, beta, xx0, P):
    a = P.mcs_scale * float(highland_theta0(p, beta, xx0))
    if P.mcs_tail_fraction > 0 and rng.random() < P.mcs_tail_fraction:
        a *= P.mcs_tail_scale
    return a


def ref_track(rng, det, start, slopes, p, beta, direction, particle, P):
    layers = sorted([(t.z_start, 0, t) for t in det.targets] + [(m.z, 1, m) for m in det.modules], key=lambda l: l[0])
    if direction < 0:
        layers = layers[::-1]
    X = np.array(start, float)
    tx, ty = slopes
    hits = []

    def sensor_hit(m, s):
        u, v, xh, yh, zh = m.intersect(X[0], X[1], X[2], tx, ty, w=m.sensor_w(s))
        if direction * (zh - X[2]) < 0 or m.strip_of(u) < 0 or m.row_of(v) < 0:
            return
        hit = dict(particle=particle, module=m.index, sensor=s, row=int(m.row_of(v)), u=u, v=v, x=xh, y=yh, z=zh,
                   tx=tx, ty=ty, strip=-1, size=0)
        if P.hit_efficiency >= 1.0 or rng.random() < P.hit_efficiency:
            ld = m.rotation.T @ np.array([tx, ty, 1.0])
            q = u / m.pitch + 0.5 * m.n_strips
            half = 0.5 * m.sensor_thickness * abs(ld[0] / ld[2]) / m.pitch
            hit["strip"], hit["size"] = ref_fired(q - half, q + half, m.n_strips, P.strip_threshold)
        hits.append(hit)

    for _, kind, obj in layers:
        if kind == 0:
            t = obj
            if direction > 0:
                if t.z_end <= X[2]:
                    continue
                z_in, z_out = max(t.z_start, X[2]), t.z_end
            else:
                if t.z_start >= X[2]:
                    continue
                z_in, z_out = min(t.z_end, X[2]), t.z_start
            dz = z_out - z_in
            X = X + (z_out - X[2]) * np.array([tx, ty, 1.0])
            if P.mcs_scale > 0:
                D = np.array([tx, ty, 1.0])
                path = abs(dz) * np.linalg.norm(D)
                a = ref_width(rng, p, beta, path / t.medium.x0, P)
                g = [rng.standard_normal() for _ in range(4)]
                sign = 1.0 if dz >= 0 else -1.0
                d1 = sign * path * a * (g[1] / math.sqrt(12) + 0.5 * g[0])
                d2 = sign * path * a * (g[3] / math.sqrt(12) + 0.5 * g[2])
                d = D / np.linalg.norm(D)
                e1, e2 = ref_basis(d)
                X[:2] += d1 * e1[:2] + d2 * e2[:2]
                d = ref_rotate(d, a * g[0], a * g[2])
                if d[2] <= 0:
                    return hits
                tx, ty = d[0] / d[2], d[1] / d[2]
            continue
        m = obj
        first = 0 if direction > 0 else 1
        sensor_hit(m, first)
        _, _, xm, ym, zm = m.intersect(X[0], X[1], X[2], tx, ty, w=0.0)
        if direction * (zm - X[2]) >= 0:
            X = np.array([xm, ym, zm], float)
            if P.mcs_scale > 0:
                D = np.array([tx, ty, 1.0])
                ld = m.rotation.T @ D
                a = ref_width(rng, p, beta, m.x_over_x0 * np.linalg.norm(D) / abs(ld[2]), P)
                g1, g2 = rng.standard_normal(), rng.standard_normal()
                d = ref_rotate(D / np.linalg.norm(D), a * g1, a * g2)
                if d[2] <= 0:
                    return hits
                tx, ty = d[0] / d[2], d[1] / d[2]
        sensor_hit(m, 1 - first)
    return hits


def ref_simulate(events, det, seed, instance="sim_tracker", **params):
    """Hits and words of a chunk, event by event, with the processor's random stream."""
    P = SimTracker.Params(**params)
    rng = Chunk(ChunkSpec(0, len(events)), seed, instance).rng
    module_z = min(m.z for m in det.modules)
    all_hits = []
    for ev in events.to_list():
        mc = ev["mc"]
        hits = []
        vx, vy, vz = (mc["vertex"][c] for c in "xyz")
        b = mc["beam"]
        if P.trace_beam and np.isfinite([vx, vy, vz, b["px"], b["py"], b["pz"], b["E"]]).all() and b["pz"] > 0 and module_z < vz:
            p = math.sqrt(b["px"] ** 2 + b["py"] ** 2 + b["pz"] ** 2)
            hits += ref_track(rng, det, (vx, vy, vz), (b["px"] / b["pz"], b["py"] / b["pz"]), p, p / b["E"], -1, -1, P)[::-1]
        for i, q in enumerate(mc["particles"]):
            if abs(q["pdg"]) not in (11, 13, 211, 321, 2212) or q["pz"] <= 0:
                continue
            p = math.sqrt(q["px"] ** 2 + q["py"] ** 2 + q["pz"] ** 2)
            hits += ref_track(rng, det, (q["vx"], q["vy"], q["vz"]), (q["px"] / q["pz"], q["py"] / q["pz"]), p, p / q["E"], 1, i, P)
        all_hits.append(hits)
    # noise: the same draws, decoded through an explicit list of every strip
    every = [rf.pack_strip_words(m.index, s, r, k)[()] for m in det.modules for s in (0, 1) for r in range(m.n_rows)
             for k in range(m.n_strips)]
    every = np.array(every, np.uint32)
    n = len(events)
    if P.noise_occupancy > 0:
        counts = rng.poisson(P.noise_occupancy * len(every), n)
        noise = every[rng.integers(0, len(every), int(counts.sum()), dtype=np.int64)]
    else:
        counts, noise = np.zeros(n, int), np.zeros(0, np.uint32)
    starts = np.concatenate([[0], np.cumsum(counts)])
    words = []
    for e, hits in enumerate(all_hits):
        ws = {int(rf.pack_strip_words(h["module"], h["sensor"], h["row"], h["strip"] + k)[()]) for h in hits for k in range(h["size"])}
        ws |= {int(w) for w in noise[starts[e]:starts[e + 1]]}
        words.append(sorted(ws))
    return all_hits, words


# ---------------------------------------------------------------------------------------------
# kernels against references
# ---------------------------------------------------------------------------------------------


def test_fired_strips_against_reference():
    rng = np.random.default_rng(1)
    for _ in range(3000):
        n = int(rng.integers(3, 12))
        q_mid = rng.uniform(-1.0, n + 1.0)
        width = rng.choice([0.0, rng.uniform(0, 0.3), rng.uniform(0, 4.0)])
        threshold = rng.choice([0.0, 0.1, 0.25, 0.5, rng.uniform(0, 0.9)])
        lo, hi = q_mid - 0.5 * width, q_mid + 0.5 * width
        if width < 1e-9 and not (0 <= q_mid < n):
            continue  # the kernel is only called inside the strip area
        assert tuple(T.fired_strips(lo, hi, n, threshold)) == ref_fired(lo, hi, n, threshold), (lo, hi, n, threshold)


def test_scatter_slopes_is_an_exact_rotation():
    rng = np.random.default_rng(2)
    for _ in range(500):
        tx, ty = rng.normal(0, 0.05, 2)
        th1, th2 = rng.normal(0, rng.choice([1e-5, 1e-3, 3e-2, 0.3]), 2)
        d = np.array([tx, ty, 1.0]) / math.sqrt(1 + tx * tx + ty * ty)
        ref = ref_rotate(d, th1, th2)
        ntx, nty, ok = T.scatter_slopes(tx, ty, th1, th2)
        assert ok
        got = np.array([ntx, nty, 1.0]) / math.sqrt(1 + ntx * ntx + nty * nty)
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-13)
        assert math.atan2(np.linalg.norm(np.cross(got, d)), float(got @ d)) == pytest.approx(math.hypot(th1, th2), rel=1e-7, abs=1e-12)
    assert T.scatter_slopes(0.0, 0.0, 2.0, 0.0)[2] is False  # turned backwards


def test_highland_numbers():
    # PHYSICS.md: 1.5 cm Be = 0.0425 X0; 160 GeV muon
    p = math.sqrt(160.0**2 - M_MU**2)
    x = 15.0 / 352.7597402597403
    expected = 0.0136 / (p * p / 160.0) * math.sqrt(x) * (1 + 0.038 * math.log(x))
    assert float(highland_theta0(p, p / 160.0, x)) == pytest.approx(expected, rel=1e-14)
    assert highland_theta0_scalar(p, p / 160.0, x) == pytest.approx(expected, rel=1e-14)
    assert expected == pytest.approx(1.5426e-5, rel=1e-3)
    assert float(highland_theta0(1.0, 1.0, 0.0)) == 0.0
    assert effective_rms_factor(0.1, 3.0) == pytest.approx(math.sqrt(1.8))


def test_merge_words_against_sorted_sets():
    rng = np.random.default_rng(4)
    n_ev, n_mod = 300, 6
    hit_counts = rng.integers(0, 12, n_ev)
    nh = int(hit_counts.sum())
    module = rng.integers(0, n_mod, nh).astype(np.int32)
    sensor = rng.integers(0, 2, nh).astype(np.int32)
    row = rng.integers(0, 2, nh).astype(np.int32)
    size = rng.integers(0, 4, nh).astype(np.int32)
    strip = rng.integers(0, 1010, nh).astype(np.int32)
    noise_counts = rng.integers(0, 3, n_ev)
    noise = rf.pack_strip_words(rng.integers(0, n_mod, noise_counts.sum()), rng.integers(0, 2, noise_counts.sum()),
                                rng.integers(0, 2, noise_counts.sum()), rng.integers(0, 1016, noise_counts.sum()))
    out = np.empty(int(size.sum()) + len(noise), np.uint32)
    counts = np.zeros(n_ev, np.int64)
    total = T.merge_words(hit_counts, module, sensor, row, strip, size, noise_counts, noise, n_mod, out, counts)
    got = ak.unflatten(out[:total], counts).to_list()
    hs, ns = np.concatenate([[0], np.cumsum(hit_counts)]), np.concatenate([[0], np.cumsum(noise_counts)])
    for e in range(n_ev):
        want = {int(rf.pack_strip_words(module[h], sensor[h], row[h], strip[h] + k)[()]) for h in range(hs[e], hs[e + 1]) for k in range(size[h])}
        want |= {int(w) for w in noise[ns[e]:ns[e + 1]]}
        assert got[e] == sorted(want)


def test_noise_words_decode_like_an_explicit_strip_list():
    det = load_geometry({"preset": "station2022"})
    tables = T.DetectorTables.from_detector(det)
    counts, words = T.noise_words(np.random.default_rng(9), 50, 1e-3, tables)
    every = np.array([rf.pack_strip_words(m.index, s, r, k)[()] for m in det.modules for s in (0, 1) for r in range(2) for k in range(1016)], np.uint32)
    rng = np.random.default_rng(9)
    c2 = rng.poisson(1e-3 * len(every), 50)
    np.testing.assert_array_equal(counts, c2)
    np.testing.assert_array_equal(words, every[rng.integers(0, len(every), c2.sum(), dtype=np.int64)])


@pytest.mark.parametrize("params", [
    {},
    {"mcs_tail_fraction": 0.3, "mcs_tail_scale": 5.0, "hit_efficiency": 0.8, "noise_occupancy": 2e-4, "strip_threshold": 0.05},
    {"mcs_scale": 0.0, "hit_efficiency": 1.0, "mcs_tail_fraction": 0.0},
])
def test_processor_against_reference_implementation(params):
    """Hits (every field) and words of a few elastic events with pile-up on pilot2023 (beam
    muons traced back through two stations) equal the pure-Python reference, draw for draw."""
    events = elastic_events(12, pileup_mean=2.0, ee_min=0.2)
    words, hits, proc = simulate(events, "pilot2023", seed=17, **params)
    ref_hits, ref_words = ref_simulate(events, proc.detector, 17, **params)
    assert ak.to_list(words) == ref_words
    got = hits.to_list()
    assert [len(h) for h in got] == [len(h) for h in ref_hits]
    assert sum(len(h) for h in got) > 12 * 40
    for ev_got, ev_ref in zip(got, ref_hits):
        for g, r in zip(ev_got, ev_ref):
            for k in ("particle", "module", "sensor", "row", "strip", "size"):
                assert g[k] == r[k], (k, g, r)
            assert g["z"] == pytest.approx(r["z"], rel=1e-12, abs=1e-9), ("z", g, r)
            for k in ("u", "v", "x", "y", "tx", "ty"):  # stored as float32
                assert g[k] == pytest.approx(r[k], rel=3e-7, abs=1e-12), (k, g, r)


def test_neutral_and_backward_particles_leave_no_hits():
    base = dict(px=0.0, py=0.0, vx=1.0, vy=2.0, vz=-100.0)
    events = make_events([[dict(base, pdg=22, pz=10.0, E=10.0), dict(base, pdg=14, pz=5.0, E=5.0)],
                          [dict(base, pdg=11, pz=-5.0, E=5.0)],
                          [dict(base, pdg=11, pz=5.0, E=5.0), dict(base, pdg=22, pz=10.0, E=10.0)]])
    words, hits, _ = simulate(events, **IDEAL)
    assert ak.num(hits).tolist() == [0, 0, 12]
    assert ak.num(words).tolist() == [0, 0, int(ak.sum(hits[2]["size"]))]
    assert set(ak.flatten(hits.particle).tolist()) == {0}


# ---------------------------------------------------------------------------------------------
# physics validation
# ---------------------------------------------------------------------------------------------


def tilted_rms(threshold, tilt=TILT, pitch=PITCH, thickness=SENSOR):
    """Analytic single-hit RMS and two-strip fraction of the binary charge-sharing model for a
    track crossing a width W = thickness * tan(angle): two strips fire within a = W (1 - 2 f)
    of a boundary (when a <= pitch)."""
    a = max(0.0, thickness * math.tan(tilt) * (1 - 2 * threshold))
    return math.sqrt(((pitch - a) ** 3 + a**3) / (12 * pitch)), a / pitch


@pytest.mark.parametrize("threshold", [0.25, 0.2])
def test_single_hit_residuals(threshold):
    """Tracks parallel to z: untilted u/v modules give pitch/sqrt(12) = 26 um; the 233 mrad
    tilted x/y modules share charge over 320 um * tan(233 mrad) = 76 um and do better."""
    events = uniform_muons(8000)
    _, hits, proc = simulate(events, strip_threshold=threshold, **IDEAL)
    h = flat_hits(hits)
    res = cluster_centre(proc.detector, h) - h["u"]
    kind = np.array([m.kind for m in proc.detector.modules])[h["module"]]
    untilted = np.isin(kind, ["u", "v"])
    assert np.all(h["size"] >= 1)
    rms_u = res[untilted].std()
    assert rms_u == pytest.approx(PITCH / math.sqrt(12), rel=0.02)
    assert np.all(h["size"][untilted] == 1) and np.abs(res[untilted]).max() <= PITCH / 2 + 1e-9
    expected, two = tilted_rms(threshold)
    rms_t = res[~untilted].std()
    assert rms_t == pytest.approx(expected, rel=0.02)
    assert np.mean(h["size"][~untilted] == 2) == pytest.approx(two, abs=0.015)
    assert rms_t < 0.55 * rms_u
    assert abs(res.mean()) < 1e-3


def mcs_setup(n=40_000, **params):
    events = uniform_muons(n, half=30.0, seed=11)
    _, hits, proc = simulate(events, seed=2, hit_efficiency=1.0, noise_occupancy=0.0, **params)
    h = flat_hits(hits)
    first = (h["module"] == 0) & (h["sensor"] == 0)
    second = (h["module"] == 0) & (h["sensor"] == 1)
    assert first.sum() == n and second.sum() == n  # every muon crosses module 0
    return h, first, second, proc


@pytest.mark.parametrize("scale", [1.0, 2.0])
def test_mcs_width_matches_highland(scale):
    """160 GeV muons through the 15 mm Be target alone (slopes at the first sensor of module 0)
    and through module 0 (the slope change between its two sensors), no tail."""
    h, first, second, proc = mcs_setup(mcs_tail_fraction=0.0, mcs_scale=scale)
    p = math.sqrt(160.0**2 - M_MU**2)
    beta = p / 160.0
    target = scale * float(highland_theta0(p, beta, 15.0 / proc.detector.targets[0].medium.x0))
    for c in ("tx", "ty"):
        assert h[c][first].std() == pytest.approx(target, rel=0.02)
    module = scale * float(highland_theta0(p, beta, 0.007 / math.cos(TILT)))
    for c in ("tx", "ty"):
        kick = h[c][second] - h[c][first]
        assert kick.std() == pytest.approx(module, rel=0.02)
    # the thick-target displacement: x at the first sensor = d1 + theta * D, D from the exit face
    D = h["z"][first] - 15.0
    norm = np.sqrt(15.0**2 / 3 + 15.0 * D + D**2)
    start_x = ak.to_numpy(ak.flatten(uniform_muons(40_000, half=30.0, seed=11).mc.particles.vx))
    assert ((h["x"][first] - start_x) / norm).std() == pytest.approx(target, rel=0.02)


def test_mcs_tail():
    h, first, _, proc = mcs_setup(mcs_tail_fraction=0.1, mcs_tail_scale=3.0)
    p = math.sqrt(160.0**2 - M_MU**2)
    core = float(highland_theta0(p, p / 160.0, 15.0 / proc.detector.targets[0].medium.x0))
    t = np.concatenate([h["tx"][first], h["ty"][first]])
    assert t.std() == pytest.approx(core * effective_rms_factor(0.1, 3.0), rel=0.02)
    # the tail: beyond 4 core widths a Gaussian has 6e-5, the mixture 0.1 * P(|g| > 4/3) = 1.8 %
    assert np.mean(np.abs(t) > 4 * core) == pytest.approx(0.1 * 0.18242, rel=0.1)


def test_hits_only_within_acceptance():
    """Straight tracks spread over +-80 mm: a hit exactly where the line crosses a sensor inside
    its strip area (checked with the geometry's own transforms)."""
    n = 3000
    rng = np.random.default_rng(6)
    x, y = rng.uniform(-80, 80, n), rng.uniform(-80, 80, n)
    tx, ty = rng.normal(0, 0.02, n), rng.normal(0, 0.02, n)
    _, hits, proc = simulate(make_events(muons(x, y, tx=tx, ty=ty)), **IDEAL)
    h = flat_hits(hits)
    ev = np.repeat(np.arange(n), ak.num(hits))
    expected = 0
    for m in proc.detector.modules:
        for s in (0, 1):
            u, v, *_ = m.intersect(x, y, -100.0, tx, ty, w=m.sensor_w(s))
            inside = m.in_acceptance(u, v)
            expected += inside.sum()
            sel = (h["module"] == m.index) & (h["sensor"] == s)
            np.testing.assert_array_equal(np.sort(ev[sel]), np.flatnonzero(inside))
            np.testing.assert_allclose(h["u"][sel], u[ev[sel]], atol=1e-5)  # float32
    assert len(h["u"]) == expected and 0.3 * 12 * n < expected < 0.9 * 12 * n
    assert np.all(np.abs(h["u"]) < 1016 * PITCH / 2) and np.all(np.abs(h["v"]) < 50.0)


def test_inefficiency_and_noise_rates():
    n = 6000
    words, hits, proc = simulate(uniform_muons(n), hit_efficiency=0.9, noise_occupancy=0.0, mcs_scale=0.0)
    size = ak.to_numpy(ak.flatten(hits["size"]))
    lost = np.mean(size == 0)
    assert lost == pytest.approx(0.1, abs=4 * math.sqrt(0.09 / len(size)))
    # noise only: empty events
    n = 4000
    words, hits, _ = simulate(make_events([[] for _ in range(n)]), noise_occupancy=1e-3)
    n_strips = 6 * 2 * 2 * 1016
    per_event = ak.num(words).to_numpy()
    mean = 1e-3 * n_strips
    assert per_event.mean() == pytest.approx(mean, abs=4 * math.sqrt(mean / n))
    assert per_event.var() == pytest.approx(mean, rel=0.1)  # Poisson
    w = ak.to_numpy(ak.flatten(words))
    module, sensor, row, strip = rf.unpack_strip_words(w)
    cells = np.bincount(module * 4 + sensor * 2 + row, minlength=24)
    chi2 = np.sum((cells - len(w) / 24) ** 2 / (len(w) / 24))
    assert chi2 < 60  # 23 degrees of freedom
    assert abs(strip.mean() - 507.5) < 4 * 293 / math.sqrt(len(w))
    assert ak.sum(ak.num(hits)) == 0


def test_words_decode_to_the_detector_and_the_hits():
    events = elastic_events(400, pileup_mean=1.25)
    words, hits, proc = simulate(events, "pilot2023", noise_occupancy=1e-4)
    w = ak.to_numpy(ak.flatten(words))
    arrays = proc.detector.module_arrays()
    assert np.all(rf.valid_strip_words(w, arrays["n_strips"], arrays["n_rows"]))
    assert np.all(rf.reserved_bits(w) == 0)
    extra = 0
    for ev_words, ev_hits in zip(words.to_list(), hits.to_list()):
        assert ev_words == sorted(set(ev_words))
        fired = {int(rf.pack_strip_words(h["module"], h["sensor"], h["row"], h["strip"] + k)[()]) for h in ev_hits for k in range(h["size"])}
        assert fired <= set(ev_words)
        extra += len(ev_words) - len(fired)
    noise = 1e-4 * 18 * 2 * 2 * 1016 * len(words)  # the rest is noise (7.3 per event)
    assert extra == pytest.approx(noise, abs=5 * math.sqrt(noise))
    # the beam muon (particle -1) is seen upstream of the vertex only, in increasing z
    vz = ak.to_numpy(events.mc.vertex.z)
    seen = 0
    for h, z in zip(hits.to_list(), vz):
        beam = [x for x in h if x["particle"] == -1]
        seen += bool(beam)
        assert all(x["z"] < z for x in beam)
        assert [x["z"] for x in beam] == sorted(x["z"] for x in beam)
    assert seen > 0.9 * len(vz)


def test_beam_muon_is_traced_back_from_the_vertex():
    n = 50
    rng = np.random.default_rng(8)
    vertex = np.column_stack([rng.normal(0, 10, n), rng.normal(0, 10, n), rng.uniform(2320, 2340, n)])
    tx, ty = rng.normal(0, 1e-3, n), rng.normal(0, 1e-3, n)
    pz = 160.0 / np.sqrt(1 + tx**2 + ty**2)
    beam = np.column_stack([tx * pz, ty * pz, pz, np.full(n, 160.0)])
    events = make_events([[] for _ in range(n)], vertex=vertex, beam=beam)
    _, hits, _ = simulate(events, "pilot2023", **IDEAL)
    h = flat_hits(hits)
    ev = np.repeat(np.arange(n), ak.num(hits))
    assert np.all(h["particle"] == -1) and set(h["module"]) <= set(range(12))  # s0 and s1 only
    np.testing.assert_allclose(h["x"], vertex[ev, 0] + tx[ev] * (h["z"] - vertex[ev, 2]), atol=1e-5)
    np.testing.assert_allclose(h["y"], vertex[ev, 1] + ty[ev] * (h["z"] - vertex[ev, 2]), atol=1e-5)
    # with scattering the upstream hits spread around the line, more the further upstream
    _, hits, _ = simulate(events, "pilot2023", hit_efficiency=1.0, noise_occupancy=0.0, mcs_tail_fraction=0.0)
    h2 = flat_hits(hits)
    far = h2["module"] == 0
    dev = h2["x"][far] - (vertex[ev[far], 0] + tx[ev[far]] * (h2["z"][far] - vertex[ev[far], 2]))
    assert 1e-3 < dev.std() < 0.1
    _, hits, _ = simulate(events, "pilot2023", trace_beam=False, **IDEAL)
    assert ak.sum(ak.num(hits)) == 0


def test_misalignment_moves_the_true_detector(tmp_path):
    """The simulation uses the aligned ("true") geometry: [geometry] alignment, or the
    processor's own alignment file."""
    conditions = tmp_path / "true.toml"
    conditions.write_text('[modules."s0.m2"]\ndu = 0.05\n[modules.4]\ndx = -0.2\n')
    events = uniform_muons(500, half=20.0)
    _, nominal, _ = simulate(events, **IDEAL)
    _, moved, proc = simulate(events, geometry_alignment=str(conditions), **IDEAL)
    _, moved2, _ = simulate(events, alignment=str(conditions), **IDEAL)
    a, b, c = flat_hits(nominal), flat_hits(moved), flat_hits(moved2)
    for k in ("u", "x"):
        np.testing.assert_array_equal(b[k], c[k])
    m2 = a["module"] == 2
    np.testing.assert_allclose(b["u"][m2], a["u"][m2] - 0.05, atol=1e-5)
    m4 = a["module"] == 4  # an x module tilted by 233 mrad: u moves by 0.2 / cos(tilt) at fixed x
    np.testing.assert_allclose(b["u"][m4] - a["u"][m4], 0.2 / math.cos(TILT), atol=2e-3)
    others = ~(m2 | m4)
    np.testing.assert_array_equal(b["u"][others], a["u"][others])
    assert proc.detector.module(2).alignment.du == 0.05


def test_reproducible_and_keyed_by_instance():
    events = elastic_events(300, "station2022", pileup_mean=1.25)
    a, ha, _ = simulate(events, "station2022", seed=3)
    b, hb, _ = simulate(events, "station2022", seed=3)
    c, _, _ = simulate(events, "station2022", seed=4)
    d, _, _ = simulate(events, "station2022", seed=3, instance="other")
    assert ak.to_list(a) == ak.to_list(b) and ak.to_list(ha) == ak.to_list(hb)
    assert ak.to_list(a) != ak.to_list(c) and ak.to_list(a) != ak.to_list(d)
    assert str(a.type) == "300 * var * uint32"
    # without the truth hits: the same words
    e, he, proc = simulate(events, "station2022", seed=3, sim_hits=False)
    assert he is None and ak.to_list(e) == ak.to_list(a)
    assert SimTracker.writes_for(proc.params) == ("raw.strips",)


def test_job_saves_raw_and_sim_hits(tmp_path):
    def job(out, seed=7):
        return {
            "job": {"events": 3000, "chunk_size": 1500, "executor": "serial", "seed": seed, "output_dir": str(tmp_path / out),
                    "save": ["run", "event", "bx", "mc", "raw"]},
            "geometry": {"preset": "pilot2023"},
            "source": {"plugin": "elastic"},
            "processors": [{"plugin": "sim_tracker"}],
        }

    from muone import rootio

    def read(res):
        parts = []
        for entry in res.manifest["chunks"]:
            f = res.output_dir / [k for k in entry["files"] if k.startswith("events/")][0]
            parts.append(rootio.read_events(f, res.manifest["events_schema"]))
        return ak.concatenate(parts)

    ev1, ev2 = read(muone.run(job("a"))), read(muone.run(job("b")))
    assert ak.to_list(ev1.raw.strips) == ak.to_list(ev2.raw.strips)
    assert str(ev1.raw.strips.type) == "3000 * var * uint32"
    assert ak.mean(ak.num(ev1.raw.strips)) > 50
    assert set(ak.fields(ev1.mc.sim_hits)) >= {"particle", "module", "sensor", "u", "v", "x", "y", "z", "tx", "ty"}
    assert ak.all(ak.num(ev1.mc.sim_hits) == ak.num(ev2.mc.sim_hits))


@pytest.mark.parametrize("bad, key", [
    ({"hit_efficiency": 1.5}, "processors.sim_tracker.hit_efficiency"),
    ({"mcs_scale": -1.0}, "processors.sim_tracker.mcs_scale"),
    ({"noise_occupancy": 0.5}, "processors.sim_tracker.noise_occupancy"),
    ({"strip_threshold": 1.0}, "processors.sim_tracker.strip_threshold"),
    ({"mcs_tail_scale": 0.5}, "processors.sim_tracker.mcs_tail_scale"),
    ({"mcs_scal": 1.0}, "processors.sim_tracker.mcs_scal"),
    ({"alignment": "/nonexistent/align.toml"}, "processors.sim_tracker.alignment"),
])
def test_bad_parameters_are_steering_errors(tmp_path, bad, key):
    steering = {"job": {"events": 10, "output_dir": str(tmp_path / "x")}, "geometry": {"preset": "station2022"},
                "source": {"plugin": "elastic"}, "processors": [{"plugin": "sim_tracker", **bad}]}
    with pytest.raises(muone.SteeringError) as info:
        muone.run(steering)
    assert key in str(info.value)


def test_geometry_without_modules_is_a_steering_error(tmp_path):
    steering = {"job": {"events": 10, "output_dir": str(tmp_path / "x")}, "source": {"plugin": "elastic"},
                "processors": [{"plugin": "sim_tracker"}]}
    with pytest.raises(muone.SteeringError, match="no tracker modules"):
        muone.run(steering)
