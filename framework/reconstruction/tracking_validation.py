"""Truth matching and performance figures of ``tracking`` (used by the tests and the studies in
docs/reconstruction.md, section ``tracking``).

A *truth label* per stub (an integer naming the particle that made it, -1 for noise) comes either
from the synthetic generator (:mod:`muone.reconstruction.tracking_synthetic`) or, for the full
simulation chain, from matching stubs to ``mc.sim_hits`` (:func:`label_stubs_from_sim_hits`).

Definitions (per station):

* a particle is *reconstructable* in a station when it left stubs in all modules of the station
  (``require`` of them, default all six);
* a track is *matched* to the particle that made most of its stubs, and *clean* when all its
  stubs come from that particle;
* *efficiency*: reconstructable (particle, station) pairs with a matched track holding at least
  ``min_stubs`` of the particle's stubs, over all reconstructable pairs;
* *x/y mistake* (the u/v ambiguity resolved wrongly): a track whose x stubs and y stubs come
  from different particles; *impure*: any stub from another particle or noise;
* *fake*: a track with fewer than ``min_stubs - 1`` stubs of its majority particle (or whose
  majority is noise).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import awkward as ak
import numpy as np

__all__ = ["TrackTruth", "label_stubs_from_sim_hits", "match_tracks"]


@dataclass
class TrackTruth:
    """Matching summary. Arrays are per track (flat over events) unless stated.

    Attributes:
        event, station: of each track.
        label: majority truth label of each track (-1: noise).
        n_match: stubs of the track from its label.
        n_stubs: stubs of the track.
        xy_mistake: the x-module stubs and the y-module stubs have different majority labels.
        reco_event, reco_label, reco_station: the reconstructable (particle, station) pairs.
        found: per reconstructable pair, True when a track is matched to it with at least
            ``min_stubs`` of its stubs.
        track_of: per reconstructable pair, the flat index of that track (-1).
    """

    event: np.ndarray
    station: np.ndarray
    label: np.ndarray
    n_match: np.ndarray
    n_stubs: np.ndarray
    xy_mistake: np.ndarray
    reco_event: np.ndarray
    reco_label: np.ndarray
    reco_station: np.ndarray
    found: np.ndarray
    track_of: np.ndarray
    summary: dict[str, float] = field(default_factory=dict)


def match_tracks(tracks: ak.Array, stubs: ak.Array, labels: np.ndarray, module_kind: np.ndarray, module_station: np.ndarray,
                 require: int = 6, min_stubs: int = 5) -> TrackTruth:
    """Match ``tracks`` to the truth ``labels`` of ``stubs`` (flat, in event order).

    ``module_kind`` / ``module_station``: per global module (``Detector.module_arrays()['kind']``,
    ``['station']``). Python-level bookkeeping (numpy, no per-event loop)."""
    counts = np.asarray(ak.num(stubs, axis=1), np.int64)
    offsets = np.zeros(len(counts) + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    s_module = np.asarray(ak.flatten(stubs.module), np.int64)
    s_station = module_station[s_module]
    labels = np.asarray(labels, np.int64)
    s_event = np.repeat(np.arange(len(counts)), counts)

    t_counts = np.asarray(ak.num(tracks, axis=1), np.int64)
    t_event = np.repeat(np.arange(len(t_counts)), t_counts)
    flat = ak.flatten(tracks)
    t_station = np.asarray(flat.station, np.int64)
    n_stubs = np.asarray(flat.n_stubs, np.int64)
    hit_local = np.asarray(ak.flatten(flat.stubs), np.int64)
    hit_track = np.repeat(np.arange(len(n_stubs)), n_stubs)
    hit_flat = offsets[t_event[hit_track]] + hit_local
    hit_label = labels[hit_flat]
    hit_kind = module_kind[s_module[hit_flat]]

    def majority(track_index: np.ndarray, lab: np.ndarray, n_tracks: int) -> tuple[np.ndarray, np.ndarray]:
        """Most frequent label per track (ties: the smaller label) and its count."""
        out = np.full(n_tracks, -2, np.int64)
        cnt = np.zeros(n_tracks, np.int64)
        if len(lab) == 0:
            return out, cnt
        key = np.stack([track_index, lab])
        uniq, c = np.unique(key, axis=1, return_counts=True)
        order = np.lexsort((uniq[1], -c, uniq[0]))
        uniq, c = uniq[:, order], c[order]
        first = np.ones(len(c), bool)
        first[1:] = uniq[0, 1:] != uniq[0, :-1]
        out[uniq[0, first]] = uniq[1, first]
        cnt[uniq[0, first]] = c[first]
        return out, cnt

    n_tracks = len(n_stubs)
    label, n_match = majority(hit_track, hit_label, n_tracks)
    is_x = hit_kind == 0
    is_y = hit_kind == 1
    lx, _ = majority(hit_track[is_x], hit_label[is_x], n_tracks)
    ly, _ = majority(hit_track[is_y], hit_label[is_y], n_tracks)
    xy_mistake = (lx != ly) & (lx >= -1) & (ly >= -1)

    # reconstructable (event, label, station): stubs of the label in every module of the station
    good = labels >= 0
    key = np.stack([s_event[good], labels[good], s_station[good], s_module[good]])
    uniq = np.unique(key, axis=1)
    trip, n_mod = np.unique(uniq[:3], axis=1, return_counts=True)
    reco = trip[:, n_mod >= require]
    # matched tracks
    ok = n_match >= min_stubs
    tkey = np.stack([t_event[ok], label[ok], t_station[ok]])
    t_ids = np.flatnonzero(ok)
    found = np.zeros(reco.shape[1], bool)
    track_of = np.full(reco.shape[1], -1, np.int64)
    if reco.shape[1] and tkey.shape[1]:
        enc = lambda k: (k[0] * (1 << 22) + (k[1] + 1)) * 64 + k[2]
        r_enc, t_enc = enc(reco), enc(tkey)
        order = np.argsort(t_enc, kind="stable")
        pos = np.searchsorted(t_enc[order], r_enc)
        pos = np.minimum(pos, len(order) - 1)
        hit = t_enc[order][pos] == r_enc
        found = hit
        track_of = np.where(hit, t_ids[order][pos], -1)
    n_reco = reco.shape[1]
    summary = {
        "reconstructable": float(n_reco),
        "efficiency": float(found.mean()) if n_reco else float("nan"),
        "tracks": float(n_tracks),
        "xy_mistake_rate": float(xy_mistake.mean()) if n_tracks else float("nan"),
        "impure_rate": float(np.mean(n_match < n_stubs)) if n_tracks else float("nan"),
        "fake_rate": float(np.mean((n_match < min_stubs - 1) | (label < 0))) if n_tracks else float("nan"),
    }
    return TrackTruth(t_event, t_station, label, n_match, n_stubs, xy_mistake, reco[0], reco[1], reco[2], found, track_of, summary)


def label_stubs_from_sim_hits(stubs: ak.Array, sim_hits: ak.Array, tolerance: float = 0.15, u_reference: str = "midplane") -> np.ndarray:
    """Truth label per stub (flat): ``particle + 1`` of the closest sim-hit crossing of the same
    event and module within ``tolerance`` [mm] in u (so 0 is the incoming beam muon, whose sim
    hits carry particle -1, and k + 1 is ``mc.particles[k]``); -1: none (noise).

    The crossing's u is the mean of the particle's two sensor hits in the module (the mid-plane,
    like the stubs' default ``u_reference``), or its sensor-0 hit (``u_reference = "seed"``).
    Vectorised over the chunk (a loop over the few crossings per event and module only)."""
    s_counts = np.asarray(ak.num(stubs, axis=1), np.int64)
    s_event = np.repeat(np.arange(len(s_counts)), s_counts)
    s_module = np.asarray(ak.flatten(stubs.module), np.int64)
    s_u = np.asarray(ak.flatten(stubs.u), float)
    h_counts = np.asarray(ak.num(sim_hits, axis=1), np.int64)
    h_event = np.repeat(np.arange(len(h_counts)), h_counts)
    hf = ak.flatten(sim_hits)
    h_sensor = np.asarray(hf.sensor, np.int64)
    h_module = np.asarray(hf.module, np.int64)
    h_u = np.asarray(hf.u, float)
    h_particle = np.asarray(hf.particle, np.int64) + 1
    if u_reference == "seed":
        keep = h_sensor == 0
        h_event, h_module, h_u, h_particle = h_event[keep], h_module[keep], h_u[keep], h_particle[keep]
    n_mod = int(max(s_module.max(initial=0), h_module.max(initial=0)) + 1)
    n_lab = int(h_particle.max(initial=0) + 1)
    if u_reference != "seed" and len(h_u):
        # one crossing per (event, module, particle): the mean u of its sensor hits
        key = (h_event * n_mod + h_module) * n_lab + h_particle
        uniq, inv = np.unique(key, return_inverse=True)
        h_u = np.bincount(inv, weights=h_u) / np.bincount(inv)
        h_particle = uniq % n_lab
        h_module = (uniq // n_lab) % n_mod
        h_event = uniq // n_lab // n_mod
    h_key = h_event * n_mod + h_module
    s_key = s_event * n_mod + s_module
    order = np.lexsort((h_u, h_key))
    h_key, h_u, h_particle = h_key[order], h_u[order], h_particle[order]
    labels = np.full(len(s_u), -1, np.int64)
    best = np.full(len(s_u), np.inf)
    lo = np.searchsorted(h_key, s_key, side="left")
    hi = np.searchsorted(h_key, s_key, side="right")
    width = int((hi - lo).max(initial=0))
    for k in range(width):  # a handful of crossings per (event, module)
        j = lo + k
        ok = j < hi
        jj = np.where(ok, j, 0)
        d = np.where(ok, np.abs(h_u[jj] - s_u), np.inf)
        better = d < best
        best = np.where(better, d, best)
        labels = np.where(better, h_particle[jj], labels)
    labels[best > tolerance] = -1
    return labels


def run_chain(n_events: int, seed: int = 1, geometry: dict[str, Any] | None = None, source: dict[str, Any] | None = None,
              sim: dict[str, Any] | None = None, stubs: dict[str, Any] | None = None,
              tracking: dict[str, Any] | None = None) -> tuple[ak.Array, dict[str, float]]:
    """Run elastic -> sim_tracker -> unpack -> stubs -> tracking on one chunk of ``n_events``
    (plugins called directly, no job machinery) and return (events, seconds per stage).

    The dicts are the plugins' parameters (defaults: the plugins' own)."""
    import time

    from muone.plugins.elastic import ElasticSource
    from muone.plugins.sim_tracker import SimTracker
    from muone.plugins.stubs import Stubs
    from muone.plugins.tracking import Tracking
    from muone.plugins.unpack import Unpack
    from muone.processor import Chunk, ChunkSpec, Context
    from muone.record import add_collection

    class _Job:
        chunk_size = n_events
        events = n_events

    context = Context(job=_Job(), geometry=geometry or {"preset": "pilot2023"}, output_dir=".")
    spec = ChunkSpec(0, n_events)
    src = ElasticSource(ElasticSource.Params(**(source or {})))
    src.setup(context)
    timings: dict[str, float] = {}
    t0 = time.process_time()
    events = src.read(spec, Chunk(spec, seed, "elastic"))
    timings["elastic"] = time.process_time() - t0
    for cls, params in ((SimTracker, sim), (Unpack, None), (Stubs, stubs), (Tracking, tracking)):
        proc = cls(cls.Params(**(params or {})))
        proc.setup(context)
        t0 = time.process_time()
        out = proc.process(events, Chunk(spec, seed, cls.name))
        timings[cls.name] = time.process_time() - t0
        for name, value in out.collections.items():
            events = add_collection(events, name, value)
    return events, timings


def sim_truth_lines(events: ak.Array, detector: Any) -> dict[str, np.ndarray]:
    """Per (event, label, station) with a sensor-0 sim hit in the station's first module: the true
    line entering the station (x, y at the station's reference z, tx, ty, from the first module's
    hit), keyed like the labels of :func:`label_stubs_from_sim_hits` (particle + 1; 0 the beam
    muon). Returns flat arrays ``event, label, station, x, y, tx, ty``."""
    arrays = detector.module_arrays()
    first = np.array([s.modules[0].index if s.modules else -1 for s in detector.stations])
    z_ref = np.array([np.mean([m.z for m in s.modules]) if s.modules else 0.0 for s in detector.stations])
    hits = events["mc", "sim_hits"]
    counts = np.asarray(ak.num(hits, axis=1), np.int64)
    ev = np.repeat(np.arange(len(counts)), counts)
    flat = ak.flatten(hits)
    module = np.asarray(flat.module, np.int64)
    sensor = np.asarray(flat.sensor, np.int64)
    station = arrays["station"][module]
    keep = (sensor == 0) & (first[station] == module)
    x, y, z, tx, ty = (np.asarray(flat[f], float)[keep] for f in ("x", "y", "z", "tx", "ty"))
    st = station[keep]
    zr = z_ref[st]
    return {"event": ev[keep], "label": np.asarray(flat.particle, np.int64)[keep] + 1, "station": st,
            "x": x + tx * (zr - z), "y": y + ty * (zr - z), "tx": tx, "ty": ty}


def chain_report(n_events: int, seed: int = 5, tracking: dict[str, Any] | None = None,
                 separation: tuple[float, ...] = (0.2, 1.0)) -> dict[str, float]:
    """Performance of ``tracking`` on pilot2023 elastic events through the full simulation chain
    (:func:`run_chain`; E_e > 1 GeV, pile-up 1.25): efficiencies, x/y mistakes, fakes, resolutions
    and pulls against the ``mc.sim_hits`` truth, and the time per event of each stage (CPU time).

    ``efficiency_elastic``: events with theta_e in [1, 32] mrad whose muon and electron both
    crossed all six modules of the station behind the interaction target: the fraction with both
    found. ``xy_mistake_rate_separated``: x/y mistakes among all tracks whose x-stub and y-stub
    particles are more than ``separation[-1]`` mm apart in x or y at the station's modules."""
    from muone.geometry import load_geometry

    events, timings = run_chain(n_events, seed=seed, tracking=tracking)
    detector = load_geometry({"preset": "pilot2023"})
    arrays = detector.module_arrays()
    labels = label_stubs_from_sim_hits(events.stubs, events.mc.sim_hits)
    tt = match_tracks(events.tracks, events.stubs, labels, arrays["kind"], arrays["station"])
    truth = sim_truth_lines(events, detector)
    report: dict[str, float] = {"events": float(n_events)}
    report.update({f"time_{k}_us": v / n_events * 1e6 for k, v in timings.items()})
    report["tracks_per_event"] = tt.summary["tracks"] / n_events
    report["stubs_per_event"] = float(ak.mean(ak.num(events.stubs)))
    report["efficiency_all"] = tt.summary["efficiency"]
    report["xy_mistake_rate"] = tt.summary["xy_mistake_rate"]
    report["impure_rate"] = tt.summary["impure_rate"]
    report["fake_rate"] = tt.summary["fake_rate"]

    # ---- truth lines of the tracks
    def key(e, lab, st):
        return (np.asarray(e, np.int64) * (1 << 20) + np.asarray(lab, np.int64)) * 64 + np.asarray(st, np.int64)

    k_truth = key(truth["event"], truth["label"], truth["station"])
    order = np.argsort(k_truth)

    def lookup(e, lab, st):
        k = key(e, lab, st)
        pos = np.minimum(np.searchsorted(k_truth[order], k), max(len(order) - 1, 0))
        ok = (len(order) > 0) & (k_truth[order][pos] == k)
        return np.where(ok, order[pos], -1)

    # ---- elastic efficiency: both outgoing particles reconstructable behind the target
    parts = events.mc.particles
    pdg = np.asarray(ak.flatten(parts.pdg))
    origin = np.asarray(ak.flatten(parts.origin))
    counts = np.asarray(ak.num(parts))
    ev = np.repeat(np.arange(n_events), counts)
    local = np.asarray(ak.flatten(ak.local_index(parts)))
    theta = np.arctan2(np.hypot(np.asarray(ak.flatten(parts.px)), np.asarray(ak.flatten(parts.py))), np.asarray(ak.flatten(parts.pz)))
    station_of_target = np.array([t.station for t in detector.targets])
    st_behind = station_of_target[np.asarray(events.mc.target)]
    is_e = (pdg == 11) & (origin == 0)
    is_mu = (pdg == -13) & (origin == 0)
    e_lab = np.full(n_events, -1)
    mu_lab = np.full(n_events, -1)
    e_theta = np.full(n_events, np.nan)
    e_lab[ev[is_e]] = local[is_e] + 1
    e_theta[ev[is_e]] = theta[is_e]
    mu_lab[ev[is_mu]] = local[is_mu] + 1
    reco_key = key(tt.reco_event, tt.reco_label, tt.reco_station)
    k_e = key(np.arange(n_events), e_lab, st_behind)
    k_mu = key(np.arange(n_events), mu_lab, st_behind)
    r_order = np.argsort(reco_key)

    def status(k):
        pos = np.minimum(np.searchsorted(reco_key[r_order], k), max(len(r_order) - 1, 0))
        ok = (len(r_order) > 0) & (reco_key[r_order][pos] == k)
        return ok, ok & tt.found[r_order][pos]

    e_reco, e_found = status(k_e)
    mu_reco, mu_found = status(k_mu)
    sel = (e_theta >= 1e-3) & (e_theta <= 32e-3) & e_reco & mu_reco
    report["elastic_events_selected"] = float(sel.sum())
    report["efficiency_elastic"] = float(np.mean(e_found[sel] & mu_found[sel])) if sel.any() else float("nan")
    report["efficiency_electron"] = float(np.mean(e_found[sel])) if sel.any() else float("nan")
    report["efficiency_muon"] = float(np.mean(mu_found[sel])) if sel.any() else float("nan")

    # ---- x/y mistakes against the separation of the particles involved
    flat = ak.flatten(events.tracks)
    s_counts = np.asarray(ak.num(events.stubs), np.int64)
    s_off = np.concatenate([[0], np.cumsum(s_counts)])
    s_mod = np.asarray(ak.flatten(events.stubs.module), np.int64)
    n_stubs = np.asarray(flat.n_stubs, np.int64)
    hit_track = np.repeat(np.arange(len(n_stubs)), n_stubs)
    hit_flat = s_off[tt.event[hit_track]] + np.asarray(ak.flatten(flat.stubs), np.int64)
    hit_kind = arrays["kind"][s_mod[hit_flat]]
    hit_label = labels[hit_flat]
    bad = np.flatnonzero(tt.xy_mistake)
    seps = np.full(len(bad), np.inf)
    z_span = np.array([-380.0, 0.0, 380.0])
    for n_, t in enumerate(bad):
        lab = hit_label[hit_track == t]
        kind = hit_kind[hit_track == t]
        lx, ly = lab[(kind == 0) & (lab >= 0)], lab[(kind == 1) & (lab >= 0)]
        if not len(lx) or not len(ly):
            continue
        i1 = lookup([tt.event[t]], [np.bincount(lx).argmax()], [tt.station[t]])[0]
        i2 = lookup([tt.event[t]], [np.bincount(ly).argmax()], [tt.station[t]])[0]
        if i1 < 0 or i2 < 0:
            continue
        d = [np.abs(truth[c][i1] - truth[c][i2] + (truth["t" + c][i1] - truth["t" + c][i2]) * z_span).min() for c in ("x", "y")]
        seps[n_] = min(d)
    for cut in separation:
        report[f"xy_mistake_rate_sep_gt_{cut:g}mm"] = float(np.sum(seps > cut) / max(len(n_stubs), 1))
    report["xy_mistake_rate_separated"] = report[f"xy_mistake_rate_sep_gt_{separation[-1]:g}mm"]

    # ---- resolution and pulls of clean tracks against the truth entering the station
    idx = lookup(tt.event, tt.label, tt.station)
    clean = (idx >= 0) & (tt.n_match == tt.n_stubs) & (tt.label >= 0)
    pmag = np.sqrt(np.asarray(ak.flatten(parts.px)) ** 2 + np.asarray(ak.flatten(parts.py)) ** 2 + np.asarray(ak.flatten(parts.pz)) ** 2)
    p_off = np.concatenate([[0], np.cumsum(counts)])
    beam = events.mc.beam
    p_beam = np.sqrt(np.asarray(beam.px) ** 2 + np.asarray(beam.py) ** 2 + np.asarray(beam.pz) ** 2)
    lab_index = np.clip(p_off[tt.event] + tt.label - 1, 0, max(len(pmag) - 1, 0))
    p_true = np.where(tt.label > 0, pmag[lab_index] if len(pmag) else 0.0, p_beam[tt.event])
    cov = np.asarray(flat.cov)
    bins = {"muon": (100.0, np.inf), "e_10_100": (10.0, 100.0), "e_3_10": (3.0, 10.0), "e_1_3": (1.0, 3.0)}
    for k, name in enumerate(("x", "y", "tx", "ty")):
        res = np.asarray(flat[name]) - np.where(idx >= 0, truth[name][np.maximum(idx, 0)], np.nan)
        sig = np.sqrt(cov[:, k, k])
        for label, (lo, hi) in bins.items():
            s = clean & (p_true >= lo) & (p_true < hi)
            if not s.any():
                continue
            report[f"resolution_{name}_{label}"] = float(np.std(res[s]))
            report[f"expected_{name}_{label}"] = float(np.sqrt(np.mean(sig[s] ** 2)))
            report[f"pull_width_{name}_{label}"] = float(np.std(res[s] / sig[s]))
            report[f"pull_mean_{name}_{label}"] = float(np.mean(res[s] / sig[s]))
    return report


def benchmark(n_events: int, seed: int = 7, repeat: int = 5, tracking: dict[str, Any] | None = None) -> dict[str, float]:
    """CPU time of ``Tracking.process`` alone (best of ``repeat``, after a warm-up) on the stubs of
    ``n_events`` pilot2023 elastic events (pile-up 1.25) from :func:`run_chain`."""
    import time

    from muone.plugins.tracking import Tracking
    from muone.processor import Chunk, ChunkSpec, Context

    events, _ = run_chain(n_events, seed=seed)
    stubs = ak.zip({"stubs": events.stubs}, depth_limit=1)
    proc = Tracking(Tracking.Params(**(tracking or {})))
    proc.setup(Context(job=None, geometry={"preset": "pilot2023"}, output_dir="."))
    proc.process(stubs[:10], Chunk(ChunkSpec(0, 10), seed, "tracking"))
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        out = proc.process(stubs, Chunk(ChunkSpec(0, n_events), seed, "tracking"))
        best = min(best, time.process_time() - t0)
    return {"events": float(n_events), "us_per_event": best / n_events * 1e6, "events_per_s": n_events / best,
            "tracks_per_event": out.results["tracks"] / n_events, "stubs_per_event": float(ak.mean(ak.num(events.stubs)))}


def main(argv: list[str] | None = None) -> None:
    """``python -m muone.reconstruction.tracking_validation [--events N] [--seed S] [--benchmark]``:
    print :func:`chain_report` (or :func:`benchmark`) as JSON."""
    import argparse
    import json

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--benchmark", action="store_true", help="time the tracking processor only")
    args = parser.parse_args(argv)
    result = benchmark(args.events, args.seed) if args.benchmark else chain_report(args.events, args.seed)
    print(json.dumps(result, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
