"""Stub building (processor ``stubs``, kernels muone.reconstruction.stubs): hand-made strip
patterns, a pure-Python reference, simulated tracks against sim_tracker truth, and DAQ stubs."""

from __future__ import annotations

from pathlib import Path

import awkward as ak
import muone
import numpy as np
import pytest
from muone.geometry import load_geometry
from muone.mc import particles_record
from muone.plugins.sim_tracker import SimTracker
from muone.plugins.stubs import DEFAULT_ERRORS, Stubs
from muone.plugins.unpack import Unpack
from muone.processor import Chunk, ChunkSpec, Context
from muone.reconstruction.stubs import bend_offsets

PILOT = {"preset": "pilot2023"}
STUB_TYPE = ("var * {module: int32, station: int32, row: int8, position: float32, bend: float32, width: int8, "
             "u: float64, v: float64, x: float64, y: float64, z: float64, error: float64}")
X_MODULE, U_MODULE = 0, 2  # s0.m0 (tilted x), s0.m2 (untilted u)
OFFSET_TILTED = -2 * 1.8 * np.tan(0.233) / 0.090  # -9.49 half-strips


def make_stubs(digis: list[list[tuple]], geometry=PILOT, **params) -> ak.Array:
    """Run the processor on events given as lists of (module, sensor, row, strip[, flags])."""
    rows = [[dict(zip(("module", "sensor", "row", "strip", "flags"), (*d, 0)[:5])) for d in ev] for ev in digis]
    flat = [d for ev in rows for d in ev]
    cols = {k: np.array([d[k] for d in flat], dt) for k, dt in
            (("module", np.int32), ("sensor", np.int8), ("row", np.int8), ("strip", np.int16), ("flags", np.uint8))}
    counts = np.array([len(ev) for ev in rows], np.int64)
    events = ak.zip({"digis": ak.unflatten(ak.zip(cols), counts)}, depth_limit=1)
    proc = Stubs(Stubs.Params(**params))
    proc.setup(Context(job=None, geometry=geometry, output_dir=Path(".")))
    return proc.process(events, Chunk(ChunkSpec(0, len(events)), 1, "stubs")).collections["stubs"]


def u_of(h, pitch=0.090, n=1016):
    return (h / 2 + 0.5 - n / 2) * pitch


# ---- hand-made patterns ----------------------------------------------------------------------


def test_single_strips_untilted():
    st = make_stubs([[(U_MODULE, 0, 0, 300), (U_MODULE, 1, 0, 300)]])
    assert str(st.type) == "1 * " + STUB_TYPE
    s = st[0, 0]
    assert (s.module, s.station, s.row, s.position, s.bend, s.width) == (U_MODULE, 0, 0, 600.0, 0.0, 1)
    assert s.u == pytest.approx(u_of(600)) and s.v == pytest.approx(-25.0)
    assert s.error == DEFAULT_ERRORS[("midplane", "untilted")][0]
    m = load_geometry(PILOT).modules[U_MODULE]
    assert np.allclose((s.x, s.y, s.z), m.local_to_global(s.u, s.v, 0.0))


def test_two_strip_cluster_and_midplane_u():
    st = make_stubs([[(U_MODULE, 0, 1, 300), (U_MODULE, 0, 1, 301), (U_MODULE, 1, 1, 302)]])
    s = st[0, 0]
    assert (s.row, s.position, s.bend, s.width) == (1, 601.0, 3.0, 2)
    assert s.u == pytest.approx(u_of(601 + 1.5)) and s.v == pytest.approx(25.0)
    assert s.error == DEFAULT_ERRORS[("midplane", "untilted")][1]
    seed = make_stubs([[(U_MODULE, 0, 1, 300), (U_MODULE, 0, 1, 301), (U_MODULE, 1, 1, 302)]], u_reference="seed")[0, 0]
    assert seed.u == pytest.approx(u_of(601)) and seed.error == DEFAULT_ERRORS[("seed", "untilted")][1]


@pytest.mark.parametrize("partner, accepted", [
    ((303, 304), True),    # h1 = 607: bend +7, on the window edge
    ((304, 305), False),   # bend +9
    ((304,), False),       # bend +8
    ((296, 297), True),    # bend -7
    ((296,), False),       # bend -8
])
def test_bend_window_edges_untilted(partner, accepted):
    st = make_stubs([[(U_MODULE, 0, 0, 300)] + [(U_MODULE, 1, 0, s) for s in partner]])
    assert len(st[0]) == int(accepted)
    if accepted:
        assert abs(st[0, 0].bend) == 7.0


@pytest.mark.parametrize("bend, accepted", [(-16, True), (-17, False), (-3, True), (-2, False), (0, False), (-9, True), (-10, True)])
def test_bend_window_edges_tilted(bend, accepted):
    """Tilted modules: the window is centred on the bend of a beam-parallel track (-9.49)."""
    seed = 500
    h1 = 2 * seed + bend
    partner = [(X_MODULE, 1, 0, h1 // 2)] if h1 % 2 == 0 else [(X_MODULE, 1, 0, (h1 - 1) // 2), (X_MODULE, 1, 0, (h1 + 1) // 2)]
    st = make_stubs([[(X_MODULE, 0, 0, seed)] + partner])
    assert len(st[0]) == int(accepted)
    if accepted:
        s = st[0, 0]
        assert s.bend == bend and s.u == pytest.approx(u_of(2 * seed + bend / 2))
        assert s.error == DEFAULT_ERRORS[("midplane", "tilted")][0]


def test_window_parameter():
    pattern = [[(U_MODULE, 0, 0, 300), (U_MODULE, 1, 0, 304)]]
    assert len(make_stubs(pattern)[0]) == 0
    assert make_stubs(pattern, bend_window=8.0)[0, 0].bend == 8.0


def test_both_rows_and_several_modules():
    ev = [(0, 0, 0, 10), (0, 0, 1, 1000), (0, 1, 0, 5), (0, 1, 1, 995), (9, 0, 1, 512), (9, 1, 1, 512)]
    st = make_stubs([ev])[0]
    assert st.module.tolist() == [0, 0, 9] and st.row.tolist() == [0, 1, 1] and st.station.tolist() == [0, 0, 1]
    assert st.v.tolist() == [-25.0, 25.0, 25.0]


def test_no_partner_no_stub():
    ev = [
        (U_MODULE, 0, 0, 100),   # noise strip in the seed sensor only
        (U_MODULE, 1, 0, 700),   # noise strip in the other sensor only
        (3, 0, 1, 50), (3, 1, 0, 50),  # partner in the other row
        (4, 0, 0, 200), (5, 1, 0, 200),  # partner in another module
    ]
    assert len(make_stubs([ev])[0]) == 0
    # a sensor-1 cluster alone never makes a stub, nor does a seed whose partner is flagged
    assert len(make_stubs([[(U_MODULE, 1, 0, 300)], [(U_MODULE, 0, 0, 300), (U_MODULE, 1, 0, 300, 8)]])[1]) == 0


def test_wide_clusters_are_dropped():
    four = [(U_MODULE, 0, 0, s) for s in range(300, 304)]
    five = [(U_MODULE, 0, 0, s) for s in range(300, 305)]
    assert make_stubs([four + [(U_MODULE, 1, 0, 301), (U_MODULE, 1, 0, 302)]])[0, 0].width == 4
    assert len(make_stubs([five + [(U_MODULE, 1, 0, 302)]])[0]) == 0
    assert make_stubs([five + [(U_MODULE, 1, 0, 302)]], max_cluster_width=5)[0, 0].error == DEFAULT_ERRORS[("midplane", "untilted")][2]
    # a wide partner is dropped too
    assert len(make_stubs([[(U_MODULE, 0, 0, 300)] + [(U_MODULE, 1, 0, s) for s in range(298, 303)]])[0]) == 0


def test_best_partner_and_shared_partner():
    # two candidates: the one closest to the expected bend wins; one sensor-1 cluster serves two seeds
    st = make_stubs([[(U_MODULE, 0, 0, 300), (U_MODULE, 1, 0, 297), (U_MODULE, 1, 0, 301)],
                     [(U_MODULE, 0, 0, 300), (U_MODULE, 0, 0, 303), (U_MODULE, 1, 0, 301)]])
    assert st[0].bend.tolist() == [2.0]
    assert st[1].position.tolist() == [600.0, 606.0] and st[1].bend.tolist() == [2.0, -4.0]


def test_more_stubs_than_half_the_digis():
    """Many seeds sharing one partner: more stubs than the first capacity guess (digis / 2 + 16)."""
    seeds = [(m, 0, 0, s) for m in (2, 3) for s in range(300, 340, 2)]  # 40 single-strip seeds
    partners = [(2, 1, 0, 320), (3, 1, 0, 320)]
    st = make_stubs([seeds + partners], bend_window=64.0)
    assert len(st[0]) == 40 and set(st[0].bend.tolist()) == set(range(-36, 44, 4))


def test_unsorted_repeated_and_flagged_digis():
    ordered = [(U_MODULE, 0, 0, 300), (U_MODULE, 0, 0, 301), (U_MODULE, 1, 0, 301), (X_MODULE, 0, 1, 10), (X_MODULE, 1, 1, 6)]
    shuffled = [ordered[i] for i in (4, 2, 1, 3, 0)] + [(U_MODULE, 0, 0, 301, 8), (U_MODULE, 0, 0, 302, 1)]
    a, b = make_stubs([ordered, shuffled])
    assert a.tolist() == b.tolist() and len(a) == 2


# ---- reference implementation ------------------------------------------------------------------


def reference_stubs(events, detector, max_width=4, window=7.0, midplane=True, errors=None):
    """Pure-Python stub building following docs/reconstruction.md."""
    errors = errors if errors is not None else np.array([DEFAULT_ERRORS[("midplane", "untilted")], DEFAULT_ERRORS[("midplane", "tilted")]])
    offsets = bend_offsets(detector.module_arrays())
    out = []
    for ev in events:
        strips: dict[tuple, set] = {}
        for d in ev:
            if len(d) > 4 and d[4]:
                continue
            strips.setdefault(d[:3], set()).add(d[3])
        clusters: dict[tuple, list] = {}
        for key, ss in strips.items():
            ss = sorted(ss)
            runs = [[ss[0]]]
            for s in ss[1:]:
                if s == runs[-1][-1] + 1:
                    runs[-1].append(s)
                else:
                    runs.append([s])
            clusters[key] = [(r[0], len(r)) for r in runs if len(r) <= max_width]
        stubs = []
        for (m, sensor, row) in sorted(clusters):
            if sensor != 0:
                continue
            mod = detector.modules[m]
            for first, width in clusters[(m, 0, row)]:
                h0 = 2 * first + width - 1
                cands = [(abs(2 * f + w - 1 - h0 - offsets[m]), 2 * f + w - 1 - h0) for f, w in clusters.get((m, 1, row), [])]
                cands = [c for c in cands if c[0] <= window]
                if not cands:
                    continue
                bend = min(cands, key=lambda c: c[0])[1]
                u = float(mod.u_of_strip((h0 + (bend / 2 if midplane else 0)) / 2))
                v = float(mod.v_of_row(row))
                x, y, z = mod.local_to_global(u, v, 0.0)
                err = errors[int(abs(mod.tilt) > 1e-3), min(width, 3) - 1]
                stubs.append((m, mod.station, row, h0, bend, width, u, v, float(x), float(y), float(z), err))
        out.append(stubs)
    return out


def random_digis(rng, n_events, n_modules=18):
    events = []
    for _ in range(n_events):
        ev = []
        for _ in range(rng.integers(0, 12)):  # track-like pairs with a random bend and widths
            m, row, s = int(rng.integers(n_modules)), int(rng.integers(2)), int(rng.integers(5, 1005))
            w0, w1 = rng.integers(1, 6, 2)
            shift = int(rng.integers(-6, 7)) - (5 if m % 6 in (0, 1, 4, 5) else 0)
            ev += [(m, 0, row, s + k) for k in range(w0)] + [(m, 1, row, s + shift + k) for k in range(w1)]
        for _ in range(rng.integers(0, 6)):  # noise, some flagged
            ev.append((int(rng.integers(n_modules)), int(rng.integers(2)), int(rng.integers(2)), int(rng.integers(1016)), int(rng.choice([0, 0, 0, 8]))))
        ev = [d for d in ev if 0 <= d[3] < 1016]
        rng.shuffle(ev)
        events.append([tuple(int(x) for x in d) for d in ev])
    return events


@pytest.mark.parametrize("params", [{}, {"max_cluster_width": 2, "bend_window": 3.0}, {"u_reference": "seed"}])
def test_kernel_matches_reference_with_alignment(tmp_path, params):
    detector = load_geometry(PILOT)
    conditions = muone.geometry.random_misalignment(detector, np.random.default_rng(3), dx=0.1, dy=0.1, dz=1.0, rz=1e-3, rx=1e-3)
    path = muone.geometry.write_alignment(tmp_path / "align.toml", conditions)
    geometry = {"preset": "pilot2023", "alignment": str(path)}
    aligned = load_geometry(geometry)
    assert aligned.modules[0].centre[0] != detector.modules[0].centre[0]
    events = random_digis(np.random.default_rng(5), 150)
    got = make_stubs(events, geometry=geometry, **params).tolist()
    proc_params = Stubs.Params(**params)
    ref = reference_stubs(events, aligned, proc_params.max_cluster_width, proc_params.bend_window,
                          proc_params.u_reference == "midplane", proc_params.error_table())
    assert sum(len(r) for r in ref) > 30
    names = ("module", "station", "row", "position", "bend", "width", "u", "v", "x", "y", "z", "error")
    for g, r in zip(got, ref):
        assert len(g) == len(r)
        for gs, rs in zip(g, r):
            assert [gs[k] for k in names[:6]] == list(rs[:6])
            assert np.allclose([gs[k] for k in names[6:]], rs[6:], rtol=0, atol=1e-9)


# ---- simulated tracks -------------------------------------------------------------------------


def simulate(events: ak.Array, seed=11, **sim) -> ak.Array:
    """sim_tracker (efficiency 1, no noise) + unpack + stubs through the plugin interface."""
    ctx = Context(job=None, geometry=PILOT, output_dir=Path("."))
    chunk = Chunk(ChunkSpec(0, len(events)), seed, "sim_tracker")
    st = SimTracker(SimTracker.Params(**{"hit_efficiency": 1.0, "noise_occupancy": 0.0, **sim}))
    st.setup(ctx)
    out = st.process(events, chunk).collections
    events = ak.with_field(events, ak.zip({"strips": out["raw.strips"]}, depth_limit=1), "raw")
    events = ak.with_field(events, out["mc.sim_hits"], ["mc", "sim_hits"])
    for proc, name in ((Unpack(Unpack.Params()), "digis"), (Stubs(Stubs.Params()), "stubs")):
        proc.setup(ctx)
        events = ak.with_field(events, proc.process(events, chunk).collections[name], name)
    return events


def single_tracks(rng, n, slope_sigma=None, slope_max=None):
    """One 160 GeV muon per event from z = -10 mm, x, y uniform in +-30 mm."""
    if slope_sigma is not None:
        tx, ty = rng.normal(0, slope_sigma, (2, n))
    else:
        tx, ty = rng.uniform(-slope_max, slope_max, (2, n))
    x, y = rng.uniform(-30, 30, (2, n))
    pz = np.sqrt(160.0**2 - 0.1056583755**2) / np.sqrt(1 + tx**2 + ty**2)
    parts = particles_record(np.ones(n, np.int64), np.full(n, -13), tx * pz, ty * pz, pz, np.full(n, 160.0), x - 10 * tx, y - 10 * ty,
                             np.full(n, -10.0), np.zeros(n, np.int8))
    mc = ak.zip({"particles": parts}, depth_limit=1)
    return ak.zip({"run": np.zeros(n, np.int64), "event": np.arange(n), "mc": mc}, depth_limit=1)


def crossings(events: ak.Array) -> dict[str, np.ndarray]:
    """Module crossings of the truth: consecutive sim hits of one particle in sensor 0 then 1 of
    one module and row. Returns event, module, row, the true mid-plane u (mean of the two, ``u``)
    and the true u at the seed sensor (``u_seed``)."""
    h = events.mc.sim_hits
    n = ak.to_numpy(ak.num(h))
    f = {k: ak.to_numpy(ak.flatten(h[k])) for k in ("particle", "module", "sensor", "row", "u")}
    evt = np.repeat(np.arange(len(n)), n)
    a, b = np.arange(len(evt) - 1), np.arange(1, len(evt))
    pair = ((evt[a] == evt[b]) & (f["particle"][a] == f["particle"][b]) & (f["module"][a] == f["module"][b])
            & (f["sensor"][a] == 0) & (f["sensor"][b] == 1) & (f["row"][a] == f["row"][b]))
    a, b = a[pair], b[pair]
    return {"event": evt[a], "module": f["module"][a].astype(np.int64), "row": f["row"][a].astype(np.int64), "u": 0.5 * (f["u"][a] + f["u"][b]),
            "u_seed": f["u"][a]}


def nearest_stub(events: ak.Array, cr: dict[str, np.ndarray], truth: str = "u") -> tuple[np.ndarray, np.ndarray]:
    """For each crossing, the residual (stub u - true u) of the nearest stub of the same event,
    module and row (nan when none) and that stub's index in the flat stub list."""
    st = events.stubs
    n = ak.to_numpy(ak.num(st))
    evt = np.repeat(np.arange(len(n)), n)
    f = {k: ak.to_numpy(ak.flatten(st[k])) for k in ("module", "row", "u")}
    key = (evt * 64 + f["module"]) * 2 + f["row"]
    order = np.lexsort((f["u"], key))
    comp = key[order] * 1000.0 + f["u"][order]
    ckey = (cr["event"] * 64 + cr["module"]) * 2 + cr["row"]
    cval = ckey * 1000.0 + cr[truth]
    pos = np.searchsorted(comp, cval)
    best = np.full(len(cval), np.nan)
    idx = np.full(len(cval), -1)
    for cand in (pos - 1, pos):
        ok = (cand >= 0) & (cand < len(comp))
        c = np.clip(cand, 0, max(len(comp) - 1, 0))
        same = ok & (key[order][c] == ckey)
        r = f["u"][order][c] - cr[truth]
        better = same & ~(np.abs(r) >= np.abs(best))
        best = np.where(better, r, best)
        idx = np.where(better, order[c], idx)
    return best, idx


def residuals_by_class(events, cr, truth="u"):
    res, idx = nearest_stub(events, cr, truth)
    found = np.abs(res) < 0.5
    flat = ak.flatten(events.stubs)
    width = ak.to_numpy(flat.width)[idx]
    error = ak.to_numpy(flat.error)[idx]
    tilted = np.array([abs(m.tilt) > 1e-3 for m in load_geometry(PILOT).modules])[cr["module"]]
    return found, res, width, error, tilted


def test_single_tracks_efficiency_and_errors():
    """Beam-like single muons: every crossing has its stub and the residuals are no wider than the
    documented errors (which also cover electrons and merged clusters)."""
    events = simulate(single_tracks(np.random.default_rng(2), 2000, slope_sigma=0.0005), trace_beam=False)
    cr = crossings(events)
    assert len(cr["u"]) > 0.95 * 2000 * 18 * 0.9
    found, res, width, error, tilted = residuals_by_class(events, cr)
    assert found.mean() >= 0.999
    for t, w in ((False, 1), (True, 1), (True, 2)):
        sel = found & (tilted == t) & (width == w)
        assert sel.sum() > 1000
        rms = np.sqrt(np.mean(res[sel] ** 2))
        assert 0.7 * error[sel][0] < rms < 1.05 * error[sel][0], (t, w, rms)


def test_large_angle_tracks_within_the_window():
    """Tracks up to 50 mrad in both planes keep their stubs; the errors stay conservative."""
    events = simulate(single_tracks(np.random.default_rng(4), 1000, slope_max=0.05), trace_beam=False)
    found, res, width, error, tilted = residuals_by_class(events, crossings(events))
    assert found.mean() >= 0.999
    for t in (False, True):
        sel = found & (tilted == t) & (width <= 2)
        assert np.sqrt(np.mean(res[sel] ** 2)) < 1.25 * np.sqrt(np.mean(error[sel] ** 2))


@pytest.mark.parametrize("u_reference", ["midplane", "seed"])
def test_elastic_events_with_pileup(tmp_path, u_reference):
    """>= 99 % of the in-acceptance module crossings of elastic events with pile-up have a stub, and
    the residual RMS per (module class, width) is the documented error."""
    res = muone.run({
        "job": {"events": 2000, "chunk_size": 2000, "output_dir": str(tmp_path / "job"), "save": ["mc", "stubs"]},
        "geometry": PILOT,
        "source": {"plugin": "elastic"},
        "processors": [{"plugin": "sim_tracker", "hit_efficiency": 1.0, "noise_occupancy": 0.0}, {"plugin": "unpack"},
                       {"plugin": "stubs", "u_reference": u_reference}],
    })
    events = res.events()
    assert str(events.stubs.type) == "2000 * " + STUB_TYPE
    cr = crossings(events)
    found, res, width, _, tilted = residuals_by_class(events, cr, "u" if u_reference == "midplane" else "u_seed")
    assert len(found) > 2000 * 18 * 2
    assert found.mean() >= 0.99, found.mean()
    for t, w in ((False, 1), (True, 1), (True, 2)):
        sel = found & (tilted == t) & (width == w)
        rms = np.sqrt(np.mean(res[sel] ** 2))
        assert rms == pytest.approx(DEFAULT_ERRORS[(u_reference, "tilted" if t else "untilted")][w - 1], rel=0.1), (t, w, rms)


# ---- DAQ stubs ------------------------------------------------------------------------------


def write_daq_file(path: Path, stubs: dict[str, np.ndarray]) -> Path:
    import uproot

    with uproot.recreate(path) as f:
        f.mktree("cbmsim", {k: v.dtype for k, v in stubs.items()})
        f["cbmsim"].extend(stubs)
    return path


def test_daq_input(tmp_path):
    stubs = {
        "Bx": np.array([5, 5, 5, 9, 9, 5], np.uint16),
        "SuperID": np.array([1, 1, 1, 1, 1, 2], np.uint32),
        "Link": np.array([0, 2, 7, 2, 40, 3], np.uint16),
        "LocalX": np.array([1000.0, 601.0, 10.0, 2031.0, 50.0, 3000.0], np.float32),
        "LocalY": np.array([0, 1, 1, 0, 0, 1], np.uint8),
        "Bend": np.array([-9.0, 2.0, -10.0, 0.0, 0.0, 0.0], np.float32),
    }
    path = write_daq_file(tmp_path / "daq.root", stubs)
    res = muone.run({
        "job": {"events": 10, "chunk_size": 10, "output_dir": str(tmp_path / "job"), "save": ["raw", "stubs"]},
        "geometry": PILOT,
        "source": {"plugin": "daq_stubs", "files": str(path)},
        "processors": [{"plugin": "stubs", "input": "daq"}],
    })
    ev = res.events()
    assert str(ev.stubs.type) == "3 * " + STUB_TYPE
    assert ak.num(ev.stubs).tolist() == [3, 1, 0]  # (1, 5): 3 stubs; (1, 9): module 40 unknown; (2, 5): position beyond 2031
    s = ev.stubs[0]
    assert s.module.tolist() == [0, 2, 7] and s.row.tolist() == [0, 1, 1] and s.width.tolist() == [1, 2, 1]
    assert s.position.tolist() == [1000.0, 601.0, 10.0] and s.bend.tolist() == [-9.0, 2.0, -10.0]
    det = load_geometry(PILOT)
    for k in range(3):
        m = det.modules[int(s.module[k])]
        assert s.u[k] == pytest.approx(float(m.u_of_strip((s.position[k] + s.bend[k] / 2) / 2)))
        assert np.allclose([s.x[k], s.y[k], s.z[k]], m.local_to_global(s.u[k], s.v[k], 0.0))
    assert ev.stubs[1, 0].position == 2031.0 and ev.stubs[1, 0].width == 2
    assert res.merged["stubs"]["daq_stubs_dropped"] == 2


def test_daq_input_declares_raw_stubs(tmp_path):
    assert Stubs.reads_for(Stubs.Params(input="daq")) == ("raw.stubs",)
    assert Stubs.reads_for(Stubs.Params()) == ("digis",)
    with pytest.raises(muone.errors.SteeringError, match="raw.stubs"):
        muone.run({"job": {"events": 10, "output_dir": str(tmp_path / "x")}, "geometry": PILOT,
                   "source": {"plugin": "elastic"}, "processors": [{"plugin": "sim_tracker"}, {"plugin": "stubs", "input": "daq"}]})
