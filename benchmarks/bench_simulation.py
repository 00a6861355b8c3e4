"""Tracker simulation speed: events/s per core and peak memory of ``sim_tracker``.

Runs elastic events with beam pile-up (Poisson 1.25) through ``sim_tracker`` in the event loop
(serial executor, one core, nothing saved but the per-chunk results), once per geometry preset,
each in a fresh interpreter (so the peak memory is its own; the numba kernels are loaded from the
cache, or compiled, in the processor's setup, outside the timing). Prints

- ``sim_tracker``: events / the processor's own wall time from the job report;
- ``cpu``: events / the CPU time the processor adds to the job (CPU time of the job minus that
  of the same job without ``sim_tracker``): the better number on a loaded machine;
- the source's rate, the job's wall-clock rate, the mean sim hits and raw words per event, and
  the peak resident memory of the interpreter.

    .venv/bin/python benchmarks/bench_simulation.py [--events N] [--chunk-size N] [--no-sim-hits] [PRESET ...]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import awkward as ak
import muone

DEFAULT_PRESETS = ("station2022", "pilot2023")


def steering(preset: str, events: int, chunk_size: int, out: str, simulate: bool = True, sim_hits: bool = True) -> dict:
    return {
        "job": {"events": events, "chunk_size": chunk_size, "executor": "serial", "output_dir": out},
        "geometry": {"preset": preset},
        "source": {"plugin": "elastic", "pileup_mean": 1.25},
        "processors": [{"plugin": "sim_tracker", "sim_hits": sim_hits}] if simulate else [],
    }


def timed_job(config: dict) -> tuple[muone.Results, float, float]:
    t0, c0 = time.perf_counter(), time.process_time()
    res = muone.run(config)
    return res, time.perf_counter() - t0, time.process_time() - c0


def occupancy(preset: str, n: int = 20_000) -> tuple[float, float]:
    """Mean sim hits and raw words per event (one chunk, run through the plugins directly)."""
    from muone.plugins.elastic import ElasticSource
    from muone.plugins.sim_tracker import SimTracker
    from muone.processor import Chunk, ChunkSpec, Context

    ctx = Context(job=SimpleNamespace(chunk_size=n, events=n), geometry={"preset": preset}, output_dir=Path("."))
    src = ElasticSource(ElasticSource.Params(pileup_mean=1.25))
    src.setup(ctx)
    sim = SimTracker(SimTracker.Params())
    sim.setup(ctx)
    spec = ChunkSpec(0, n)
    out = sim.process(src.read(spec, Chunk(spec, 1, "elastic")), Chunk(spec, 1, "sim_tracker"))
    return float(ak.mean(ak.num(out.collections["mc.sim_hits"]))), float(ak.mean(ak.num(out.collections["raw.strips"])))


def one(preset: str, events: int, chunk_size: int, sim_hits: bool) -> None:
    with tempfile.TemporaryDirectory() as warm:  # imports, geometry, kernels: outside the timing
        muone.run(steering(preset, 1000, 1000, warm))
    with tempfile.TemporaryDirectory() as out:
        res, wall, cpu = timed_job(steering(preset, events, chunk_size, out, sim_hits=sim_hits))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with tempfile.TemporaryDirectory() as out:
        _, _, cpu_source_only = timed_job(steering(preset, events, chunk_size, out, simulate=False))
    rows = {r["name"]: r for r in res.report["processors"]}
    sim, src = rows["sim_tracker"], res.report["processors"][0]  # the source comes first
    hits, words = occupancy(preset)
    label = preset if sim_hits else preset + " (no sim_hits)"
    print(f"{label:27s} {events / sim['seconds']:>10,.0f} events/s (sim_tracker) {events / max(cpu - cpu_source_only, 1e-9):>10,.0f} (cpu)"
          f" {events / src['seconds']:>10,.0f} (source) {events / wall:>10,.0f} (job wall)"
          f"  hits/event {hits:5.1f}  words/event {words:5.1f}  peak RSS {peak:5.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("presets", nargs="*", default=list(DEFAULT_PRESETS))
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--chunk-size", type=int, default=100_000)
    parser.add_argument("--no-sim-hits", action="store_true", help="sim_tracker with sim_hits = false (raw.strips only)")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        one(args.presets[0], args.events, args.chunk_size, not args.no_sim_hits)
        return
    for preset in args.presets:
        # a fresh interpreter per preset: its peak memory is its own
        flags = ["--no-sim-hits"] if args.no_sim_hits else []
        subprocess.run([sys.executable, __file__, "--one", "--events", str(args.events), "--chunk-size", str(args.chunk_size), *flags, preset], check=True)


if __name__ == "__main__":
    main()
