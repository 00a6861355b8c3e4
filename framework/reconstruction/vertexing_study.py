"""Performance studies of ``vertexing`` (the numbers of docs/reconstruction.md, section ``vertexing``).

Commands (``python -m muone.reconstruction.vertexing_study ...``)::

    chain PRESET OUTPUT [--events N] [--pileup MU] [--ee-min E] [--seed S] [--chunk-size C]
        elastic -> sim_tracker -> sim_calorimeter -> unpack -> stubs -> tracking ->
        calo_clustering -> vertexing, saving mc, tracks, calo_clusters and vertices; then analyse.
    synthetic PRESET OUTPUT [same options]
        elastic -> synthetic_vertexing_inputs -> vertexing (muone.reconstruction.vertexing_synthetic).
    analyse OUTPUT [--set KEY=VALUE ...]
        resolution, efficiency and mu/e mis-assignment tables of a saved job (re-running vertexing
        on its tracks and clusters with the given parameters when --set is used).
    bench OUTPUT [--repeat R] [--set KEY=VALUE ...]
        the vertexing processor's own time per event on a saved job's tracks and clusters (best of
        R repetitions of CPU time; whole saved sample in one call).

Truth matching (elastic events: ``mc.particles`` 0 is the muon, 1 the electron): each of the
best vertex's two outgoing tracks is attributed to the true particle whose direction is closest in
slope; the vertex is a *true pair* when it is on the true target and its tracks go to different
particles, both within 20 mrad; a true pair is *mis-assigned* when ``track_e`` is the muon's track.
Resolutions are robust widths (1.4826 x the median absolute deviation) of the reconstructed minus
the true quantity (angles relative to ``mc.beam``, the true incoming muon).
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from typing import Any

import awkward as ak
import numpy as np

CHAIN = ("sim_tracker", "sim_calorimeter", "unpack", "stubs", "tracking", "calo_clustering", "vertexing")
THETA_BINS_MRAD = (0.0, 1.0, 2.0, 2.3, 2.6, 3.0, 4.0, 5.0, 10.0, 20.0, 35.0)


def steering(preset: str, output: str, events: int, pileup: float, ee_min: float, seed: int, chunk_size: int, synthetic: bool) -> dict[str, Any]:
    processors = [{"plugin": "synthetic_vertexing_inputs"}, {"plugin": "vertexing"}] if synthetic else [{"plugin": p} for p in CHAIN]
    return {
        "job": {"events": events, "chunk_size": chunk_size, "output_dir": output, "seed": seed,
                "save": ["mc", "tracks", "calo_clusters", "vertices"]},
        "geometry": {"preset": preset},
        "source": {"plugin": "elastic", "pileup_mean": pileup, "ee_min": ee_min},
        "processors": processors,
    }


def _robust(x: np.ndarray) -> float:
    x = np.asarray(x)
    if len(x) == 0:
        return float("nan")
    return float(1.4826 * np.median(np.abs(x - np.median(x))))


def _track_field(tracks: ak.Array, index: ak.Array, field: str) -> np.ndarray:
    local = ak.local_index(tracks, axis=1)
    return np.asarray(np.ma.getdata(ak.to_numpy(ak.firsts(tracks[field][local == index]))))


def revertex(events: ak.Array, geometry: dict[str, Any], params: dict[str, Any]) -> ak.Array:
    """``vertices`` of ``events`` with the given vertexing parameters."""
    from muone.plugins.vertexing import Vertexing, VertexingParams
    from muone.processor import Context

    proc = Vertexing(VertexingParams(**params))
    proc.setup(Context(job=None, geometry=geometry, output_dir="."))
    return proc.vertices(events)


def analyse(events: ak.Array, out=sys.stdout) -> dict[str, Any]:
    """Print and return the performance summary of elastic ``events`` with ``vertices``."""
    p = lambda *a: print(*a, file=out)
    n_events = len(events)
    v = events.vertices
    has = ak.to_numpy(ak.num(v) > 0)
    ev = events[has]
    v = v[has]
    b = v[v.best][:, 0]
    mc = ev.mc
    tr = ev.tracks
    mu, e = mc.particles[:, 0], mc.particles[:, 1]
    slopes = {k: (ak.to_numpy(q.px / q.pz), ak.to_numpy(q.py / q.pz)) for k, q in (("mu", mu), ("e", e))}

    def closest(index: ak.Array) -> tuple[np.ndarray, np.ndarray]:
        tx, ty = _track_field(tr, index, "tx"), _track_field(tr, index, "ty")
        dm = np.hypot(tx - slopes["mu"][0], ty - slopes["mu"][1])
        de = np.hypot(tx - slopes["e"][0], ty - slopes["e"][1])
        return np.where(dm < de, 0, 1), np.minimum(dm, de)

    cm, dm = closest(b.track_mu)
    ce, de = closest(b.track_e)
    on_target = ak.to_numpy(b.target == mc.target)
    pair = on_target & (cm != ce) & (dm < 0.02) & (de < 0.02)
    swapped = pair & (cm == 1)
    good = pair & ~swapped
    th_mu_t = ak.to_numpy(mu.deltaangle(mc.beam))
    th_e_t = ak.to_numpy(e.deltaangle(mc.beam))
    code = ak.to_numpy(b.assignment)
    dz = ak.to_numpy(b.z - mc.vertex.z)
    dx = ak.to_numpy(b.x - mc.vertex.x)
    the, thm = ak.to_numpy(b.theta_e), ak.to_numpy(b.theta_mu)
    chi2 = ak.to_numpy(b.chi2)
    summary = {
        "events": n_events, "with_vertex": float(has.mean()), "candidates_per_event": float(ak.mean(ak.num(events.vertices))),
        "on_true_target": float(on_target.mean()), "true_pair": float(pair.mean()),
        "mis_assignment": float(swapped[pair].mean()) if pair.any() else float("nan"),
        "assignment_fractions": (np.bincount(code, minlength=3) / max(len(code), 1)).tolist(),
        "sigma_z": _robust(dz[pair]), "rms_z": float(dz[pair].std()), "mean_z": float(dz[pair].mean()),
        "sigma_x": _robust(dx[pair]), "chi2_mean": float(chi2[pair].mean()), "chi2_median": float(np.median(chi2[pair])),
        "ndf": sorted(set(ak.to_numpy(b.ndf).tolist())),
        "acoplanarity_median": float(np.median(ak.to_numpy(b.acoplanarity)[good])),
        "elastic_distance_median": float(np.median(ak.to_numpy(b.elastic_distance)[good])),
        "elastic_distance_sigma": _robust(ak.to_numpy(b.elastic_distance)[good]),
        "calo_matched": float(np.mean(ak.to_numpy(b.calo_cluster)[good] >= 0)),
        "bins": [],
    }
    p(f"events {n_events}: with a vertex {summary['with_vertex']:.4f}, candidates/event {summary['candidates_per_event']:.3f}")
    p(f"best vertex on the true target {summary['on_true_target']:.4f}; true mu-e pair {summary['true_pair']:.4f}")
    p(f"mu/e mis-assignment (true pairs) {summary['mis_assignment']:.5f}; assignment 0/1/2 fractions "
      + " ".join(f"{f:.4f}" for f in summary["assignment_fractions"]))
    p(f"z - z_true: robust sigma {summary['sigma_z']:.2f} mm, rms {summary['rms_z']:.2f} mm, mean {summary['mean_z']:.3f} mm; "
      f"x: robust sigma {1e3 * summary['sigma_x']:.1f} um")
    p(f"chi2 mean {summary['chi2_mean']:.2f}, median {summary['chi2_median']:.2f} (ndf {summary['ndf']})")
    p(f"acoplanarity median {summary['acoplanarity_median']:.4f} rad; elastic distance median {summary['elastic_distance_median']:.2e} rad, "
      f"robust sigma {summary['elastic_distance_sigma']:.2e} rad; electron matched to a cluster {summary['calo_matched']:.4f}")
    p("theta_e [mrad]      n   sigma(theta_e) sigma(theta_mu) [urad]   sigma_z [mm]   mis-assigned   assignment 0/1/2")
    for lo, hi in itertools.pairwise(THETA_BINS_MRAD):
        s = (th_e_t * 1e3 >= lo) & (th_e_t * 1e3 < hi)
        g = s & good
        if g.sum() < 5:
            continue
        frac = np.bincount(code[s & pair], minlength=3) / max((s & pair).sum(), 1)
        row = {"lo": lo, "hi": hi, "n": int(s.sum()), "sigma_theta_e": _robust(the[g] - th_e_t[g]),
               "sigma_theta_mu": _robust(thm[g] - th_mu_t[g]), "sigma_z": _robust(dz[g]),
               "mis_assignment": float(swapped[s & pair].mean()), "assignment": frac.tolist()}
        summary["bins"].append(row)
        p(f"{lo:5.1f} - {hi:5.1f} {row['n']:7d}   {1e6 * row['sigma_theta_e']:9.1f}   {1e6 * row['sigma_theta_mu']:9.1f}"
          f"             {row['sigma_z']:6.2f}        {row['mis_assignment']:.4f}       " + " ".join(f"{f:.3f}" for f in frac))
    return summary


def bench(events: ak.Array, geometry: dict[str, Any], params: dict[str, Any], repeat: int = 15, out=sys.stdout) -> dict[str, float]:
    """Best-of-``repeat`` CPU time per event of the vertexing processor on ``events`` (with
    ``tracks`` and ``calo_clusters``), and of its parts."""
    from muone.plugins.vertexing import (
        CLUSTER_FIELDS,
        Vertexing,
        VertexingParams,
        _columns,
        run_kernel,
        track_columns,
    )
    from muone.processor import Context

    proc = Vertexing(VertexingParams(**params))
    proc.setup(Context(job=None, geometry=geometry, output_dir="."))
    n = len(events)

    def best(fn) -> float:
        fn()
        t = float("inf")
        for _ in range(repeat):
            t0 = time.process_time()
            fn()
            t = min(t, time.process_time() - t0)
        return t / n * 1e9

    trk, toff = track_columns(events.tracks)
    clu, coff = _columns(events.calo_clusters, CLUSTER_FIELDS)
    stats = np.zeros(4, np.int64)
    run_kernel(trk, toff, clu, coff, proc.targets, proc.fpar, proc.ipar, stats=stats)
    result = {
        "events": n, "tracks_per_event": float(toff[-1] / n), "pairs_per_event": stats[0] / n,
        "pairs_passing_bound_per_event": stats[1] / n, "fits_per_event": stats[2] / n,
        "processor_ns": best(lambda: proc.vertices(events)),
        "kernel_ns": best(lambda: run_kernel(trk, toff, clu, coff, proc.targets, proc.fpar, proc.ipar)),
        "columns_ns": best(lambda: (track_columns(events.tracks), _columns(events.calo_clusters, CLUSTER_FIELDS))),
    }
    print(f"{n} events, {result['tracks_per_event']:.2f} tracks/event: pairs {result['pairs_per_event']:.2f}, passing the chi2 bound "
          f"{result['pairs_passing_bound_per_event']:.3f}, fits {result['fits_per_event']:.3f} per event", file=out)
    print(f"processor {result['processor_ns']:.0f} ns/event ({1e9 / result['processor_ns']:.3g} events/s); kernel and output "
          f"{result['kernel_ns']:.0f} ns/event; input columns {result['columns_ns']:.0f} ns/event", file=out)
    return result


def _parse_set(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, _, value = item.partition("=")
        if value in ("true", "false"):
            out[key] = value == "true"
        else:
            try:
                out[key] = int(value) if value.lstrip("-").isdigit() else float(value)
            except ValueError:
                out[key] = value
    return out


def main(argv: list[str] | None = None) -> int:
    import muone
    from muone.reconstruction.vertexing_synthetic import SyntheticVertexingInputs

    parser = argparse.ArgumentParser(prog="python -m muone.reconstruction.vertexing_study", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("chain", "synthetic"):
        sp = sub.add_parser(name)
        sp.add_argument("preset")
        sp.add_argument("output")
        sp.add_argument("--events", type=int, default=20_000)
        sp.add_argument("--pileup", type=float, default=1.25)
        sp.add_argument("--ee-min", type=float, default=1.0)
        sp.add_argument("--seed", type=int, default=11)
        sp.add_argument("--chunk-size", type=int, default=10_000)
    for name in ("analyse", "bench"):
        sp = sub.add_parser(name)
        sp.add_argument("output")
        sp.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="vertexing parameter")
        if name == "bench":
            sp.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args(argv)
    if args.command in ("chain", "synthetic"):
        steer = steering(args.preset, args.output, args.events, args.pileup, args.ee_min, args.seed, args.chunk_size, args.command == "synthetic")
        res = muone.run(steer, plugins=[SyntheticVertexingInputs] if args.command == "synthetic" else None)
        analyse(res.events())
        return 0
    res = muone.Results.load(args.output)
    geometry = _geometry_from_resolved(args.output)
    params = _parse_set(args.set)
    if args.command == "analyse":
        events = res.events()
        if params:
            events = ak.with_field(events, revertex(events, geometry, params), "vertices")
        analyse(events)
    else:
        bench(res.events(["tracks", "calo_clusters"]), geometry, params, args.repeat)
    return 0


def _geometry_from_resolved(output: str) -> dict[str, Any]:
    import tomllib
    from pathlib import Path

    with open(Path(output) / "steering.resolved.toml", "rb") as f:
        resolved = tomllib.load(f)
    geometry = resolved.get("geometry", {})
    return {k: v for k, v in geometry.items() if v not in ("", None)}


if __name__ == "__main__":
    raise SystemExit(main())
