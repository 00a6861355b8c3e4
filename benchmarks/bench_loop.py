"""Event-loop throughput: the demo chain (beam source, filter, histograms) on each executor.

Prints events/s and the peak resident memory of the job (parent and workers).

    .venv/bin/python benchmarks/bench_loop.py [--events N] [--chunk-size N]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time

import muone


def peak_rss_mib() -> tuple[float, float]:
    """Peak RSS of this process and of its (finished) children, in MiB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, children


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--chunk-size", type=int, default=100_000)
    parser.add_argument("--one", nargs=2, metavar=("EXECUTOR", "WORKERS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is None:
        # each configuration in a fresh interpreter, so peak memory is its own
        import subprocess
        import sys

        for executor, workers in (("serial", 1), ("processes", 1), ("processes", 2)):
            subprocess.run([sys.executable, __file__, "--events", str(args.events), "--chunk-size", str(args.chunk_size), "--one", executor, str(workers)], check=True)
        return
    for executor, workers in [(args.one[0], int(args.one[1]))]:
        with tempfile.TemporaryDirectory() as out:
            steering = {
                "job": {"events": args.events, "chunk_size": args.chunk_size, "executor": executor, "workers": workers, "output_dir": out},
                "source": {"plugin": "beam"},
                "processors": [
                    {"plugin": "filter", "expression": "num(mc.particles) >= 1"},
                    {"plugin": "histograms", "presets": ["beam"]},
                ],
            }
            t0 = time.perf_counter()
            res = muone.run(steering)
            wall = time.perf_counter() - t0
            own, children = peak_rss_mib()
            per_proc = {r["name"]: r["events_in"] / r["seconds"] if r["seconds"] and r["events_in"] else r["events_out"] / r["seconds"] for r in res.report["processors"]}
            print(f"{executor:9s} workers={workers}: {args.events / wall:,.0f} events/s wall ({wall:.2f} s); "
                  f"peak RSS parent {own:.0f} MiB, largest worker {children:.0f} MiB; "
                  + ", ".join(f"{k} {v:,.0f}/s" for k, v in per_proc.items()))


if __name__ == "__main__":
    main()
