"""Executors: how the chunks of a job are distributed.

An executor takes a picklable :class:`RunnerFactory` (which builds the worker's
:class:`~muone.worker.ChunkRunner`, setting plugins up once per worker) and the chunks to run, and
yields one :class:`~muone.worker.ChunkSummary` or :class:`~muone.worker.ChunkFailure` per chunk
in completion order. The job merges results in chunk-index order afterwards, so results never
depend on the executor or the worker count.

New executors (``dask``) register through the ``muone_executors`` hook: a class with the same
constructor and methods as :class:`SerialExecutor`.
"""

from __future__ import annotations

import multiprocessing
import traceback
from collections import deque
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from muone.processor import ChunkSpec
from muone.worker import ChunkFailure, ChunkRunner, ChunkSummary

Outcome = ChunkSummary | ChunkFailure


@dataclass
class RunnerFactory:
    """Everything a worker needs to build its ChunkRunner (picklable: plugin classes are pickled
    by reference, so they must be importable in the worker)."""

    steering: Any
    output_dir: Path

    def build(self) -> ChunkRunner:
        return ChunkRunner(self.steering, self.output_dir)


class SerialExecutor:
    """Runs every chunk in this process, in index order."""

    name = "serial"

    def __init__(self, job: Any) -> None:
        self.job = job
        self._cancelled = False

    def run(self, factory: RunnerFactory, specs: list[ChunkSpec]) -> Iterator[Outcome]:
        runner = None
        for spec in specs:
            if self._cancelled:
                return
            if runner is None:
                try:
                    runner = factory.build()
                except Exception as exc:
                    yield _build_failure(spec.index, exc)
                    return
            yield runner.run(spec)

    def cancel(self) -> None:
        """Stop starting new chunks."""
        self._cancelled = True

    def close(self) -> None:
        """Release resources (nothing to do)."""


_WORKER: dict[str, Any] = {}


def _init_worker(factory: RunnerFactory) -> None:
    _WORKER["factory"] = factory
    _WORKER["runner"] = None


def _run_in_worker(spec: ChunkSpec) -> Outcome:
    if _WORKER.get("runner") is None:
        try:
            _WORKER["runner"] = _WORKER["factory"].build()
        except Exception as exc:
            return _build_failure(spec.index, exc)
    return _WORKER["runner"].run(spec)


def _build_failure(index: int, exc: Exception) -> ChunkFailure:
    return ChunkFailure(index, "<setup>", f"cannot build the job's plugins: {type(exc).__name__}: {exc}", traceback.format_exc())


class ProcessesExecutor:
    """Runs chunks in ``workers`` spawned processes (plugins set up once per process).

    At most ``2 * workers`` chunks are in flight, so memory does not grow with the job size.
    """

    name = "processes"

    def __init__(self, job: Any) -> None:
        self.workers = job.workers
        self._cancelled = False

    def run(self, factory: RunnerFactory, specs: list[ChunkSpec]) -> Iterator[Outcome]:
        pending = deque(specs)
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_init_worker, initargs=(factory,)) as pool:
            running: dict[Future, ChunkSpec] = {}
            while pending or running:
                while pending and not self._cancelled and len(running) < 2 * self.workers:
                    spec = pending.popleft()
                    running[pool.submit(_run_in_worker, spec)] = spec
                if not running:
                    break
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in sorted(done, key=lambda f: running[f].index):
                    spec = running.pop(fut)
                    try:
                        yield fut.result()
                    except BrokenProcessPool as exc:
                        self._cancelled = True
                        yield ChunkFailure(spec.index, "<worker>", f"a worker process died while running chunk {spec.index} ({exc})")
                    except Exception as exc:  # unpicklable result and the like
                        yield ChunkFailure(spec.index, "<worker>", f"{type(exc).__name__}: {exc}")

    def cancel(self) -> None:
        """Stop submitting chunks; those already running finish and are reported."""
        self._cancelled = True

    def close(self) -> None:
        """Nothing to release (the pool closes at the end of run)."""


BUILTIN_EXECUTORS: dict[str, Any] = {"serial": SerialExecutor, "processes": ProcessesExecutor}
