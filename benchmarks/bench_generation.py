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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sources", nargs="*", default=list(DEFAULT_SOURCES))
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--chunk-size", type=int, default=200_000)
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        one(args.sources[0], args.events, args.chunk_size)
        return
    registry = muone.registry.default_registry() if hasattr(muone, "registry") else None
    for source in args.sources:
        if registry is not None and source not in registry.plugins:
            print(f"{source:17s} (not installed)")
            continue
        # a fresh interpreter per source: its peak memory is its own
        subprocess.run([sys.executable, __file__, "--one", "--events", str(args.events), "--chunk-size", str(args.chunk_size), source], check=True)


if __name__ == "__main__":
    main()
