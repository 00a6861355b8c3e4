"""Generation speed: events/s per core and peak memory of each generator source.

Runs each source through the event loop (serial executor, one core, no outputs but the per-chunk
results) and prints the source's own time per event from the job report, the wall-clock rate and
the peak resident memory.

    .venv/bin/python benchmarks/bench_generation.py [--events N] [--chunk-size N] [SOURCE ...]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import muone

DEFAULT_SOURCES = ("elastic", "beam", "radiative", "pairs", "dark_photon", "invisible_zprime")


def one(source: str, events: int, chunk_size: int) -> None:
    with tempfile.TemporaryDirectory() as out:
        steering = {
            "job": {"events": events, "chunk_size": chunk_size, "executor": "serial", "output_dir": out},
            "source": {"plugin": source},
        }
        t0 = time.perf_counter()
        res = muone.run(steering)
        wall = time.perf_counter() - t0
    src = res.report["processors"][0]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    xs = res.cross_section
    print(f"{source:17s} {events / src['seconds']:>12,.0f} events/s (source) {events / wall:>12,.0f} events/s (job wall)  "
          f"peak RSS {peak:6.0f} MiB  sigma = {xs if xs is None else f'{xs:.6g} ub'}")


def steady(source: str, events: int, chunk_size: int) -> None:
    """The source's own rate in a warm loop: set up once, one warm-up chunk, then ``events``
    events in chunks (no job bookkeeping, memory reused by the allocator): CPU and wall time."""
    from muone.processor import Chunk, ChunkSpec, Context
    from muone.steering import load_steering

    steering = load_steering({"job": {"events": events, "chunk_size": chunk_size}, "source": {"plugin": source}})
    src = steering.source.build()
    src.setup(Context(steering.job, steering.geometry, Path(tempfile.gettempdir())))
    src.read(ChunkSpec(0, 1000), Chunk(ChunkSpec(0, 1000), 1, "source"))
    c0, w0 = time.process_time(), time.perf_counter()
    n = 0
    for i in range(max(1, events // chunk_size)):
        spec = ChunkSpec(i, chunk_size)
        n += len(src.read(spec, Chunk(spec, 1, "source")))
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{source:17s} steady: {n / cpu:>12,.0f} events/s (cpu) {n / wall:>12,.0f} events/s (wall)  peak RSS {peak:6.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sources", nargs="*", default=list(DEFAULT_SOURCES))
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--chunk-size", type=int, default=200_000)
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--steady", action="store_true", help="also measure each source in a warm loop without job bookkeeping")
    args = parser.parse_args()
    if args.one:
        one(args.sources[0], args.events, args.chunk_size)
        if args.steady:
            steady(args.sources[0], args.events, args.chunk_size)
        return
    registry = muone.registry.default_registry() if hasattr(muone, "registry") else None
    for source in args.sources:
        if registry is not None and source not in registry.plugins:
            print(f"{source:17s} (not installed)")
            continue
        # a fresh interpreter per source: its peak memory is its own
        subprocess.run([sys.executable, __file__, "--one", *(["--steady"] if args.steady else []), "--events", str(args.events), "--chunk-size", str(args.chunk_size), source], check=True)


if __name__ == "__main__":
    main()
