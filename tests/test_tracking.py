"""Track finding and fitting (processor ``tracking``, kernels muone.reconstruction.tracking).

Synthetic stubs made directly from the geometry (muone.reconstruction.tracking_synthetic:
straight lines with Gaussian multiple scattering, u smeared by the stub error) test the fit
(pulls, a pure-numpy reference of the multiple-scattering-aware least squares), the u/v ambiguity
resolution with several tracks and pile-up, the fake rate on noise, outlier removal and shared
stubs. The full chain elastic -> sim_tracker -> unpack -> stubs -> tracking runs once through
``muone.run``; the large validation studies are marked slow.
"""

from __future__ import annotations

import math
from pathlib import Path

import awkward as ak
import muone
import numpy as np
import pytest
from muone.geometry import load_geometry, random_misalignment
from muone.physics import electron_energy_from_theta
from muone.plugins.tracking import Tracking, TrackingParams
from muone.processor import Chunk, ChunkSpec, Context
from muone.reconstruction.tracking import (
    fit_stubs,
    momentum_hypothesis,
    parameter_arrays,
)
from muone.reconstruction.tracking_geometry import TrackingGeometry
from muone.reconstruction.tracking_synthetic import (
    electron_momentum,
    stub_events,
    trace_lines,
)
from muone.reconstruction.tracking_validation import match_tracks
from muone.simulation.highland import highland_theta0

PILOT = {"preset": "pilot2023"}
DETECTOR = load_geometry(PILOT)
ARRAYS = DETECTOR.module_arrays()
TRACK_TYPE = ("var * {station: int32, role: int8, z_ref: float64, x: float64, y: float64, tx: float64, ty: float64, "
              "cov: 4 * 4 * float64, chi2: float64, ndf: int32, n_stubs: int32, stubs: var * int32, p_hyp: float64}")


def run_tracking(events: ak.Array, **params) -> ak.Array:
    """The ``tracks`` of ``events`` (with a ``stubs`` collection) through the processor interface."""
    proc = Tracking(TrackingParams(**params))
    proc.setup(Context(job=None, geometry=PILOT, output_dir=Path(".")))
    return proc.process(events, Chunk(ChunkSpec(0, len(events)), 1, "tracking")).collections["tracks"]


def target_tracks(rng, n, theta_max=0.03, station=1, electrons=True):
    """n lines from target ``station - 1`` (z uniform in it), polar angle up to theta_max; momentum
    of an elastic electron at that angle (else 160 GeV)."""
    target = DETECTOR.targets[station - 1]
    theta = rng.uniform(0.0005, theta_max, n)
    phi = rng.uniform(0, 2 * math.pi, n)
    tx, ty = np.tan(theta) * np.cos(phi), np.tan(theta) * np.sin(phi)
    p = electron_momentum(tx, ty) if electrons else np.full(n, 160.0)
    z = rng.uniform(target.z_start, target.z_end, n)
    x, y = rng.normal(0, 12, n), rng.normal(0, 12, n)
    return x, y, z, tx, ty, p


def pulls(tracks: ak.Array, entry: np.ndarray, station: int) -> tuple[np.ndarray, ak.Array]:
    """(x, y, tx, ty) pulls of single-track events in ``station`` against the entry truth."""
    st = tracks[tracks.station == station]
    one = np.asarray(ak.num(st) == 1)
    t = ak.firsts(st[one])
    truth = entry[one, station]
    cov = np.asarray(t.cov)
    fitted = np.stack([np.asarray(t[f]) for f in ("x", "y", "tx", "ty")], axis=1)
    return (fitted - truth[:, :4]) / np.sqrt(np.diagonal(cov, axis1=1, axis2=2)), t


# ------------------------------------------------------------------------------------------
# pieces
# ------------------------------------------------------------------------------------------


def test_momentum_hypothesis_is_the_elastic_relation():
    for theta in (0.0, 1e-4, 1e-3, 0.005, 0.0319, 0.1):
        tx = math.tan(theta)
        e = float(electron_energy_from_theta(theta, 160.0))
        assert momentum_hypothesis(tx, 0.0, 160.0, 0.5) == pytest.approx(min(max(e, 0.5), 160.0), rel=1e-12)
        assert momentum_hypothesis(tx / math.sqrt(2), tx / math.sqrt(2), 160.0, 0.5) == pytest.approx(min(max(e, 0.5), 160.0), rel=1e-12)
    assert momentum_hypothesis(0.0, 0.0, 160.0, 0.5) < 160.0  # E_e,max = 149.8 GeV at theta = 0
    assert momentum_hypothesis(0.5, 0.0, 160.0, 0.5) == 0.5  # the floor


def test_geometry_tables_of_pilot2023():
    g = TrackingGeometry.from_detector(DETECTOR)
    assert list(g.st_i[:, 9]) == [0, 1, 1]  # role: targets upstream of stations 1 and 2
    for s in DETECTOR.stations:
        assert g.st_f[s.index, 0] == pytest.approx(np.mean([m.z for m in s.modules]))
    assert g.max_hits == 6
    # tilted x module: u = (x - Cx)/cos(tilt) for a track parallel to z -> x error = u error * cos(tilt)
    assert g.mod_f[0, 16] == pytest.approx(math.cos(0.233))


def _numpy_fit(detector, modules, u, err, station, p0, mcs_scale=1.0, u_reference="midplane", beam=160.0, p_min=0.5):
    """Pure-numpy generalised least squares with the exact plane-crossing model (Module.intersect),
    a finite-difference Jacobian and the multiple-scattering covariance built term by term;
    iterated to convergence. Returns (params, cov, chi2, p_hyp)."""
    st = detector.stations[station]
    z_ref = np.mean([m.z for m in st.modules])
    mods = [detector.modules[k] for k in modules]
    w = [0.0 if u_reference == "midplane" else -0.5 * m.sensor_spacing for m in mods]

    def predict(q):
        out = np.array([m.intersect(q[0], q[1], z_ref, q[2], q[3], wi)[0] for m, wi in zip(mods, w)])
        zc = np.array([m.intersect(q[0], q[1], z_ref, q[2], q[3], wi)[4] for m, wi in zip(mods, w)])
        return out, zc

    q = np.array(p0, float)
    for _ in range(30):
        f0, zc = predict(q)
        H = np.empty((len(mods), 4))
        for k, h in enumerate((1e-6, 1e-6, 1e-9, 1e-9)):
            dq = np.zeros(4)
            dq[k] = h
            H[:, k] = (predict(q + dq)[0] - predict(q - dq)[0]) / (2 * h)
        theta = math.atan(math.hypot(q[2], q[3]))
        p = min(max(float(electron_energy_from_theta(theta, beam)), p_min), beam)
        V = np.diag(np.asarray(err, float) ** 2)
        norm = math.sqrt(1 + q[2] ** 2 + q[3] ** 2)
        for m in st.modules:  # scatterers: every module of the station, at its mid-plane
            zk = m.intersect(q[0], q[1], z_ref, q[2], q[3], 0.0)[4]
            nx, ny, nz = m.normal
            xx0 = m.x_over_x0 * norm / abs(nx * q[2] + ny * q[3] + nz)
            th2 = (mcs_scale * float(highland_theta0(p, 1.0, xx0))) ** 2
            for i in range(len(mods)):
                for j in range(len(mods)):
                    if zc[i] > zk and zc[j] > zk:
                        V[i, j] += th2 * (zc[i] - zk) * (zc[j] - zk) * (H[i, 0] * H[j, 0] + H[i, 1] * H[j, 1])
        Vi = np.linalg.inv(V)
        cov = np.linalg.inv(H.T @ Vi @ H)
        step = cov @ H.T @ Vi @ (np.asarray(u) - f0)
        q = q + step
        if np.all(np.abs(step) < [1e-13, 1e-13, 1e-16, 1e-16]):
            break
    r = np.asarray(u) - predict(q)[0]
    return q, cov, float(r @ Vi @ r), p


@pytest.mark.parametrize("u_reference", ["midplane", "seed"])
@pytest.mark.parametrize("drop", [None, 3, 0])
def test_fit_kernel_matches_numpy_reference(u_reference, drop):
    """The numba fit against the pure-numpy reference on a misaligned detector (rotations make
    every module measure a mix of x, y and z), with multiple scattering of a 1.5 GeV electron."""
    rng = np.random.default_rng(7)
    detector = DETECTOR.with_alignment(random_misalignment(DETECTOR, rng, dx=0.05, dy=0.05, dz=0.5, rx=2e-3, ry=2e-3, rz=2e-3))
    g = TrackingGeometry.from_detector(detector, u_reference)
    station = 1
    x0, y0, z0, tx, ty = 3.0, -7.0, 1170.0, 0.021, -0.012
    tr = trace_lines(detector, [x0], [y0], [z0], [tx], [ty], [1.5], rng, u_reference=u_reference)
    modules = [m.index for m in detector.stations[station].modules]
    if drop is not None:
        modules.pop(drop)
    err = np.array([0.012 if detector.modules[k].kind in "xy" else 0.026 for k in modules])
    u = tr.u[0, modules] + err * rng.standard_normal(len(modules))
    z_ref = np.mean([m.z for m in detector.stations[station].modules])
    p0 = np.array([x0 + tx * (z_ref - z0) + 0.3, y0 + ty * (z_ref - z0) - 0.2, tx + 1e-3, ty - 1e-3])
    pf, _ = parameter_arrays(beam_energy=160, mcs_scale=1, stereo_window=5, window_floor=0.02, max_chi2_ndf=10, max_slope=0.15,
                             row_margin=1, min_momentum=0.5, tolerance=1e-10, momentum_tolerance=1e-10, first_pass_momentum=10, min_stubs=5, max_shared=1,
                             elastic_incoming=0, max_candidates=100)
    par, cov, chi2, p_hyp = fit_stubs(g, station, modules, u, err, p0, pf)
    ref, ref_cov, ref_chi2, ref_p = _numpy_fit(detector, modules, u, err, station, p0, u_reference=u_reference)
    sig = np.sqrt(np.diag(ref_cov))
    np.testing.assert_allclose((par - ref) / sig, 0.0, atol=1e-6)
    np.testing.assert_allclose(cov / np.outer(sig, sig), ref_cov / np.outer(sig, sig), atol=1e-6)
    assert chi2 == pytest.approx(ref_chi2, rel=1e-6, abs=1e-9)
    assert p_hyp == pytest.approx(ref_p, rel=1e-8)
    # without scattering: the intrinsic errors only
    pf0 = pf.copy()
    pf0[1] = 0.0
    par0, cov0, chi20, _ = fit_stubs(g, station, modules, u, err, p0, pf0)
    ref0, ref_cov0, ref_chi20, _ = _numpy_fit(detector, modules, u, err, station, p0, mcs_scale=0.0, u_reference=u_reference)
    np.testing.assert_allclose((par0 - ref0) / np.sqrt(np.diag(ref_cov0)), 0.0, atol=1e-6)
    sig0 = np.sqrt(np.diag(ref_cov0))
    np.testing.assert_allclose(cov0 / np.outer(sig0, sig0), ref_cov0 / np.outer(sig0, sig0), atol=1e-6)
    assert chi20 == pytest.approx(ref_chi20, rel=1e-6, abs=1e-9)
    # the default tolerance agrees to a negligible fraction of the errors
    pf1 = pf.copy()
    pf1[8] = 1e-5
    pf1[10] = 1e-2
    par1, _, _, _ = fit_stubs(g, station, modules, u, err, p0, pf1)
    np.testing.assert_allclose((par1 - ref) / sig, 0.0, atol=0.02)


def test_fit_needs_four_determining_stubs():
    g = TrackingGeometry.from_detector(DETECTOR)
    pf, _ = parameter_arrays(beam_energy=160, mcs_scale=1, stereo_window=5, window_floor=0.02, max_chi2_ndf=10, max_slope=0.15,
                             row_margin=1, min_momentum=0.5, tolerance=1e-5, momentum_tolerance=1e-3, first_pass_momentum=10, min_stubs=5, max_shared=1,
                             elastic_incoming=0, max_candidates=100)
    # two x and two u/v stubs cannot separate y from its slope... x, x, u: 3 stubs
    _, _, chi2, _ = fit_stubs(g, 1, [6, 10, 8], [0.0, 0.0, 0.0], [0.01] * 3, np.zeros(4), pf)
    assert chi2 < 0


# ------------------------------------------------------------------------------------------
# single tracks: pulls
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mcs", [True, False])
def test_single_track_pulls(mcs):
    """Perfect single tracks from the target: pulls of (x, y, tx, ty) have mean 0 and width 1,
    with multiple scattering at the elastic-electron momentum (the fit's hypothesis) or without."""
    rng = np.random.default_rng(11 if mcs else 12)
    n = 3000
    x, y, z, tx, ty, p = target_tracks(rng, n)
    tr = trace_lines(DETECTOR, x, y, z, tx, ty, p, rng if mcs else None)
    events, _ = stub_events(DETECTOR, np.arange(n), tr, n, rng)
    tracks = run_tracking(events, mcs_scale=1.0 if mcs else 0.0)
    assert str(tracks.type).endswith(TRACK_TYPE)
    for station in (1, 2):
        pull, t = pulls(tracks, tr.entry, station)
        has_all = np.all(tr.hit[:, [m.index for m in DETECTOR.stations[station].modules]], axis=1)
        one = np.asarray(ak.num(tracks[tracks.station == station]) == 1)
        assert np.sum(one & has_all) >= 0.99 * has_all.sum()  # efficiency for tracks crossing all six modules
        assert np.mean(np.asarray(t.n_stubs)[has_all[one]] == 6) > 0.995
        m, s = pull.mean(axis=0), pull.std(axis=0)
        k = len(pull)
        assert np.all(np.abs(m) < 4 / math.sqrt(k)), (station, m)
        assert np.all(np.abs(s - 1) < 4 / math.sqrt(2 * k)), (station, s)
        chi2_ndf = np.asarray(t.chi2) / np.asarray(t.ndf)
        assert np.mean(chi2_ndf) == pytest.approx(1.0, abs=0.1)
        assert np.all(np.asarray(t.role) == 1)
        np.testing.assert_allclose(np.asarray(t.p_hyp), np.clip(electron_momentum(np.asarray(t.tx), np.asarray(t.ty)), 0.5, 160), rtol=1.5e-2)


def test_incoming_tracks_use_the_beam_energy_and_role_0():
    rng = np.random.default_rng(3)
    n = 500
    tr = trace_lines(DETECTOR, rng.normal(0, 15, n), rng.normal(0, 15, n), np.full(n, -500.0), rng.normal(0, 4e-4, n),
                     rng.normal(0, 4e-4, n), np.full(n, 160.0), rng)
    events, _ = stub_events(DETECTOR, np.arange(n), tr, n, rng)
    tracks = run_tracking(events)
    st0 = ak.flatten(tracks[tracks.station == 0])
    assert len(st0) >= 0.99 * np.sum(np.all(tr.hit[:, :6], axis=1))
    assert np.all(np.asarray(st0.role) == 0) and np.all(np.asarray(st0.p_hyp) == 160.0)
    st1 = ak.flatten(tracks[tracks.station == 1])
    assert np.all(np.asarray(st1.role) == 1) and np.all(np.asarray(st1.p_hyp) < 160.0)
    elastic = ak.flatten(run_tracking(events, incoming_momentum="elastic"))
    assert np.all(np.asarray(elastic.p_hyp) < 160.0)
    assert np.all(np.asarray(tracks.z_ref[tracks.station == 0][ak.num(tracks) > 0][:, 0]) == pytest.approx(np.mean([m.z for m in DETECTOR.stations[0].modules])))


# ------------------------------------------------------------------------------------------
# several tracks: the u/v ambiguity, pile-up, noise, outliers, shared stubs
# ------------------------------------------------------------------------------------------


def _separation(entry_a: np.ndarray, entry_b: np.ndarray) -> np.ndarray:
    """Smallest distance [mm] of two lines in x or in y over the station's modules (z_ref +- 380)."""
    out = np.full(len(entry_a), np.inf)
    for dz in (-380.0, 0.0, 380.0):
        for c in (0, 1):
            out = np.minimum(out, np.abs(entry_a[:, c] - entry_b[:, c] + (entry_a[:, c + 2] - entry_b[:, c + 2]) * dz))
    return out


def test_two_tracks_with_pileup_resolve_the_xy_ambiguity():
    """mu and e from the target plus Poisson(1.25) beam muons: >= 99 % of the tracks separated from
    all others by more than 10 resolutions (0.2 mm in x or y) are found with exactly their stubs."""
    rng = np.random.default_rng(21)
    n = 3000
    x, y, z, tx, ty, p = target_tracks(rng, n, theta_max=0.032)
    # the muon: small angle, opposite azimuth, 160 GeV; pile-up muons from upstream
    phi = np.arctan2(ty, tx) + math.pi
    th_mu = rng.uniform(0.0002, 0.0048, n)
    n_pile = rng.poisson(1.25, n)
    pe = np.repeat(np.arange(n), n_pile)
    lines = {
        "event": np.concatenate([np.arange(n), np.arange(n), pe]),
        "x": np.concatenate([x, x, rng.normal(0, 20, len(pe))]),
        "y": np.concatenate([y, y, rng.normal(0, 20, len(pe))]),
        "z": np.concatenate([z, z, np.full(len(pe), -500.0)]),
        "tx": np.concatenate([tx, np.tan(th_mu) * np.cos(phi), rng.normal(0, 4e-4, len(pe))]),
        "ty": np.concatenate([ty, np.tan(th_mu) * np.sin(phi), rng.normal(0, 4e-4, len(pe))]),
        "p": np.concatenate([p, np.full(n, 150.0), np.full(len(pe), 160.0)]),
    }
    tr = trace_lines(DETECTOR, lines["x"], lines["y"], lines["z"], lines["tx"], lines["ty"], lines["p"], rng)
    events, truth = stub_events(DETECTOR, lines["event"], tr, n, rng)
    tracks = run_tracking(events)
    tt = match_tracks(tracks, events.stubs, truth, ARRAYS["kind"], ARRAYS["station"])
    assert tt.summary["efficiency"] > 0.99
    # isolation of every line in station 1 from the other lines of its event
    station = 1
    entry = tr.entry[:, station]
    iso = np.full(len(entry), np.inf)
    ev = lines["event"]
    order = np.argsort(ev, kind="stable")
    starts = np.searchsorted(ev[order], np.arange(n + 1))
    for k in range(int(np.max(np.diff(starts)))):  # pairs by rank within the event (no per-event loop)
        for j in range(int(np.max(np.diff(starts)))):
            if j == k:
                continue
            ok = (starts[:-1] + k < starts[1:]) & (starts[:-1] + j < starts[1:])
            a, b = order[starts[:-1][ok] + k], order[starts[:-1][ok] + j]
            sep = _separation(entry[a], entry[b])
            sep = np.where(np.isnan(sep), np.inf, sep)
            iso[a] = np.minimum(iso[a], sep)
    sel = (tt.reco_station == station) & (iso[tt.reco_label] > 0.2)
    found = tt.found[sel]
    clean = np.zeros(sel.sum(), bool)
    t_idx = tt.track_of[sel]
    ok = t_idx >= 0
    clean[ok] = (tt.n_match[t_idx[ok]] == tt.n_stubs[t_idx[ok]]) & ~tt.xy_mistake[t_idx[ok]]
    assert sel.sum() > 5000
    assert found.mean() > 0.99 and clean.mean() > 0.99, (found.mean(), clean.mean())
    # all tracks: the x/y mistakes are few and concentrated on nearly overlapping lines
    assert tt.summary["xy_mistake_rate"] < 0.01


def test_combination_search_gives_the_same_tracks():
    rng = np.random.default_rng(5)
    n = 400
    x, y, z, tx, ty, p = target_tracks(rng, 3 * n, theta_max=0.03)
    tr = trace_lines(DETECTOR, x, y, z, tx, ty, p, rng)
    events, _ = stub_events(DETECTOR, np.repeat(np.arange(n), 3), tr, n, rng, noise_per_module=0.3)
    a = run_tracking(events, combination_search="all")
    b = run_tracking(events, combination_search="stereo")
    assert ak.to_list(a) == ak.to_list(b)


def test_fake_rate_on_noise_only():
    rng = np.random.default_rng(8)
    n = 2000
    tr = trace_lines(DETECTOR, np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0))
    events, _ = stub_events(DETECTOR, np.zeros(0, np.int64), tr, n, rng, noise_per_module=1.0)
    assert ak.mean(ak.num(events.stubs)) == pytest.approx(18, rel=0.05)
    tracks = run_tracking(events)
    assert ak.sum(ak.num(tracks)) / n < 0.01
    # stubs with no tracks at all, and events without stubs
    empty = events[:0]
    assert len(run_tracking(empty)) == 0


def test_unsorted_stubs_give_the_same_tracks():
    rng = np.random.default_rng(9)
    n = 300
    x, y, z, tx, ty, p = target_tracks(rng, 2 * n)
    tr = trace_lines(DETECTOR, x, y, z, tx, ty, p, rng)
    ev_sorted, truth_s = stub_events(DETECTOR, np.repeat(np.arange(n), 2), tr, n, np.random.default_rng(1))
    ev_shuffled, truth_u = stub_events(DETECTOR, np.repeat(np.arange(n), 2), tr, n, np.random.default_rng(1), shuffle=True)
    a = run_tracking(ev_sorted)
    b = run_tracking(ev_shuffled)
    ta = match_tracks(a, ev_sorted.stubs, truth_s, ARRAYS["kind"], ARRAYS["station"])
    tb = match_tracks(b, ev_shuffled.stubs, truth_u, ARRAYS["kind"], ARRAYS["station"])
    assert ta.summary["efficiency"] == tb.summary["efficiency"] > 0.99
    np.testing.assert_allclose(np.sort(np.asarray(ak.flatten(a.tx))), np.sort(np.asarray(ak.flatten(b.tx))), atol=1e-7)


def _single_track_events(rng, n, station=1):
    """Single elastic-electron-like lines from the target (theta < 10 mrad, E_e > 20 GeV)."""
    x, y, z, tx, ty, p = target_tracks(rng, n, theta_max=0.01, station=station)
    return trace_lines(DETECTOR, x, y, z, tx, ty, p, rng)


def _events_from(tr, n, rng, edit):
    """Stub events of single lines after ``edit(u, hit)`` changed the true u / hit arrays."""
    u = tr.u.copy()
    hit = tr.hit.copy()
    edit(u, hit)
    tr2 = type(tr)(u, tr.v, hit, tr.entry)
    return stub_events(DETECTOR, np.arange(n), tr2, n, rng)


@pytest.mark.parametrize("module", [8, 9])
def test_outlier_stub_is_removed(module):
    """A u (v) stub 0.4 mm (15 sigma) off: with a wide stereo window it enters the candidate, and
    the chi2 / outlier removal drops it. (Which of the two x, or y, stubs of a track is an outlier
    cannot be told by the chi2: removing either leaves an equally good 5-stub fit.)"""
    rng = np.random.default_rng(31 + module)
    n = 400
    tr = _single_track_events(rng, n)

    def shift(u, hit):
        u[:, module] += 0.4

    events, _ = _events_from(tr, n, rng, shift)
    tracks = run_tracking(events, stereo_window=40.0)
    st = tracks[tracks.station == 1]
    assert np.mean(ak.num(st) == 1) > 0.99
    one = np.asarray(ak.num(st) == 1)
    t = ak.firsts(st[one])
    assert np.all(np.asarray(t.n_stubs) == 5)
    used_modules = np.asarray(ak.flatten(events.stubs.module[one][t.stubs]))
    assert module not in set(used_modules.tolist())
    pull, _ = pulls(tracks, tr.entry, 1)
    assert np.all(np.abs(pull.mean(axis=0)) < 0.25) and np.all(np.abs(pull.std(axis=0) - 1) < 0.15)


@pytest.mark.parametrize("module", [6, 7, 8, 9, 10, 11])
def test_one_missing_stub_is_recovered(module):
    rng = np.random.default_rng(40 + module)
    n = 300
    tr = _single_track_events(rng, n)

    def drop(u, hit):
        hit[:, module] = False

    events, _ = _events_from(tr, n, rng, drop)
    tracks = run_tracking(events)
    st = tracks[tracks.station == 1]
    assert np.mean(ak.num(st) == 1) > 0.99
    assert np.all(ak.flatten(st.n_stubs) == 5) and np.all(ak.flatten(st.ndf) == 1)
    strict = run_tracking(events, min_stubs=6)
    assert ak.sum(strict.station == 1) == 0


def test_shared_stub_resolution():
    """Two tracks crossing at the first x module share its stub: both are kept with max_shared = 1;
    with max_shared = 0 the second keeps its five own stubs."""
    rng = np.random.default_rng(50)
    n = 300
    z_x = DETECTOR.modules[6].z
    x0 = rng.normal(0, 10, n)
    y0 = rng.normal(0, 10, n)
    txa, tya = rng.normal(0, 0.003, n), rng.normal(0, 0.003, n)
    txb, tyb = txa + rng.choice([-1, 1], n) * rng.uniform(0.004, 0.01, n), tya + rng.choice([-1, 1], n) * rng.uniform(0.004, 0.01, n)
    # both lines pass through (x0, y0) at the first x module: same u there
    zs = 1165.0
    lines_x = np.concatenate([x0 - txa * (z_x - zs), x0 - txb * (z_x - zs)])
    lines_y = np.concatenate([y0 - tya * (z_x - zs), y0 - tyb * (z_x - zs)])
    tr = trace_lines(DETECTOR, lines_x, lines_y, np.full(2 * n, zs), np.concatenate([txa, txb]), np.concatenate([tya, tyb]),
                     np.full(2 * n, 150.0))
    hit = tr.hit.copy()
    hit[n:, 6] = False  # one stub for both at module 6
    tr2 = type(tr)(tr.u, tr.v, hit, tr.entry)
    events, _ = stub_events(DETECTOR, np.concatenate([np.arange(n), np.arange(n)]), tr2, n, rng)
    tracks = run_tracking(events, max_shared=1)
    st = tracks[tracks.station == 1]
    two = ak.num(st) == 2
    assert np.mean(two) > 0.98
    both6 = ak.all(st[two].n_stubs == 6, axis=1)
    assert np.mean(both6) > 0.95
    first = st[two][:, 0].stubs
    second = st[two][:, 1].stubs
    shared = ak.sum(ak.sum(first[:, :, None] == second[:, None, :], axis=2), axis=1)
    assert np.mean(np.asarray(shared)[np.asarray(both6)] == 1) > 0.99
    strict = run_tracking(events, max_shared=0)
    st0 = strict[strict.station == 1]
    assert np.mean(ak.num(st0) == 2) > 0.95
    ns = np.sort(np.asarray(st0[ak.num(st0) == 2].n_stubs), axis=1)
    assert np.mean(np.all(ns == [5, 6], axis=1)) > 0.95


# ------------------------------------------------------------------------------------------
# the real chain
# ------------------------------------------------------------------------------------------


def test_tracking_in_a_job_on_the_simulation_chain(tmp_path):
    res = muone.run({
        "job": {"events": 400, "chunk_size": 200, "executor": "serial", "output_dir": str(tmp_path / "out"),
                "save": ["tracks", "stubs"]},
        "geometry": PILOT,
        "source": {"plugin": "elastic"},
        "processors": [{"plugin": "sim_tracker"}, {"plugin": "unpack"}, {"plugin": "stubs"}, {"plugin": "tracking"}],
    })
    merged = res.merged["tracking"]
    assert merged["tracks"] > 400 * 5
    events = res.events(["tracks", "stubs"])
    assert str(events.tracks.type).endswith(TRACK_TYPE)
    t = ak.flatten(events.tracks)
    assert set(np.unique(np.asarray(t.station))) == {0, 1, 2}
    assert np.all(np.asarray(t.stubs[ak.num(t.stubs) > 0][:, 0]) >= 0)


@pytest.mark.slow
def test_real_chain_performance():
    """pilot2023 elastic events (E_e > 1 GeV, pile-up 1.25) through sim_tracker/unpack/stubs: the
    figures quoted in docs/reconstruction.md (section tracking)."""
    from muone.reconstruction.tracking_validation import chain_report

    report = chain_report(20_000, seed=5)
    assert report["efficiency_elastic"] >= 0.99
    assert report["efficiency_all"] >= 0.99
    assert report["xy_mistake_rate_separated"] < 0.01
    assert report["pull_width_tx_muon"] == pytest.approx(1.0, abs=0.15)
    assert report["resolution_tx_muon"] < 0.03e-3
