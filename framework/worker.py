"""Running one chunk: source -> processors -> per-chunk outputs.

A :class:`ChunkRunner` is built once per worker (plugins set up once) and called per chunk. It
writes the chunk's results (``results/chunk-NNNNNN.pkl``), its saved collections
(``events/chunk-NNNNNN.root``) and, last, the chunk summary (``results/chunk-NNNNNN.json``): the
summary's presence marks the chunk complete, which is what a resumed job looks for.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np

from muone import outputs
from muone.processor import Chunk, ChunkSpec, Context, Output, is_parent_or_same
from muone.record import add_collection
from muone.steering import Steering


def chunk_stem(index: int) -> str:
    """File stem of a chunk's outputs: ``chunk-000042``."""
    return f"chunk-{index:06d}"


@dataclass
class ChunkFailure:
    """A chunk that failed: which processor, and why."""

    index: int
    instance: str
    message: str
    traceback: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"chunk": self.index, "processor": self.instance, "error": self.message}


@dataclass
class ChunkSummary:
    """What a completed chunk reports: events, per-processor statistics and files."""

    index: int
    events_in: int
    events_out: int
    stats: dict[str, dict[str, float]] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)  # relative path -> sha256
    events_schema: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "chunk": self.index, "events_in": self.events_in, "events_out": self.events_out,
            "stats": self.stats, "files": self.files, "events_schema": self.events_schema,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ChunkSummary:
        return cls(d["chunk"], d["events_in"], d["events_out"], d["stats"], d["files"], d.get("events_schema"))


class ProcessorError(Exception):
    """A plugin raised or broke the interface on a chunk (wrapped with its instance name)."""

    def __init__(self, instance: str, message: str, tb: str = "") -> None:
        super().__init__(message)
        self.instance = instance
        self.tb = tb


class ChunkRunner:
    """Builds the job's source and processors once and runs chunks through them."""

    def __init__(self, steering: Steering, output_dir: Path) -> None:
        self.steering = steering
        self.output_dir = Path(output_dir)
        self.context = Context(steering.job, steering.geometry, self.output_dir, steering.file)
        assert steering.source is not None
        self.source = steering.source.build()
        self.processors = [s.build() for s in steering.processors]
        self._writes = {s.instance: s.cls.writes_for(s.params) for s in steering.processors}
        self._set_up = False

    def setup(self) -> None:
        """Set up every plugin (once)."""
        if self._set_up:
            return
        for plugin in [self.source, *self.processors]:
            try:
                plugin.setup(self.context)
            except Exception as exc:
                raise ProcessorError(plugin.instance, f"setup failed: {type(exc).__name__}: {exc}", traceback.format_exc()) from exc
            if plugin is self.source:
                self.context.source_info = self.source.info()
        self._set_up = True

    def run(self, spec: ChunkSpec) -> ChunkSummary | ChunkFailure:
        """Run one chunk and write its outputs; failures are returned, not raised."""
        try:
            self.setup()
            return self._run(spec)
        except ProcessorError as exc:
            return ChunkFailure(spec.index, exc.instance, str(exc), exc.tb)

    def _run(self, spec: ChunkSpec) -> ChunkSummary:
        seed = self.steering.job.seed
        stats: dict[str, dict[str, float]] = {}
        chunk = Chunk(spec, seed, self.source.instance)
        t0 = time.perf_counter()
        try:
            events = self.source.read(spec, chunk)
        except Exception as exc:
            raise ProcessorError(self.source.instance, f"{type(exc).__name__}: {exc}", traceback.format_exc()) from exc
        if not isinstance(events, ak.Array):
            raise ProcessorError(self.source.instance, f"read() returned {type(events).__name__}, expected ak.Array")
        n_in = len(events)
        stats[self.source.instance] = _stat(0, n_in, time.perf_counter() - t0)
        results: dict[str, dict[str, Any]] = {}
        for proc in self.processors:
            t0 = time.perf_counter()
            n_before = len(events)
            try:
                out = proc.process(events, chunk.for_instance(proc.instance))
                events = self._apply(proc, events, out, results)
            except ProcessorError:
                raise
            except Exception as exc:
                raise ProcessorError(proc.instance, f"{type(exc).__name__}: {exc}", traceback.format_exc()) from exc
            stats[proc.instance] = _stat(n_before, len(events), time.perf_counter() - t0)
        return self._write(spec.index, n_in, events, results, stats)

    def _apply(self, proc: Any, events: ak.Array, out: Output | None, results: dict) -> ak.Array:
        if out is None:
            return events
        if not isinstance(out, Output):
            raise ProcessorError(proc.instance, f"process() returned {type(out).__name__}, expected muone.Output or None")
        for name, value in out.collections.items():
            if not any(is_parent_or_same(w, name) for w in self._writes[proc.instance]):
                raise ProcessorError(proc.instance, f"wrote collection {name!r} that it does not declare in writes {self._writes[proc.instance]}")
            if len(value) != len(events):
                raise ProcessorError(proc.instance, f"collection {name!r} has {len(value)} entries for {len(events)} events")
            events = add_collection(events, name, value)
        if out.results:
            results.setdefault(proc.instance, {}).update(out.results)
        if out.keep is not None:
            if not proc.removes_events:
                raise ProcessorError(proc.instance, "returned Output.keep, but only event filters (removes_events = True) may drop events")
            keep = np.asarray(out.keep, dtype=bool)
            if keep.shape != (len(events),):
                raise ProcessorError(proc.instance, f"keep mask has shape {keep.shape} for {len(events)} events")
            events = events[keep]
        return events

    def _write(self, index: int, n_in: int, events: ak.Array, results: dict, stats: dict) -> ChunkSummary:
        stem = chunk_stem(index)
        files: dict[str, str] = {}
        schema = None
        res_path = self.output_dir / "results" / f"{stem}.pkl"
        outputs.write_pickle(res_path, results)
        files[f"results/{stem}.pkl"] = outputs.sha256_file(res_path)
        save = self.steering.job.save
        if save:
            from muone import rootio

            ev_path = self.output_dir / "events" / f"{stem}.root"
            ev_path.parent.mkdir(parents=True, exist_ok=True)
            fields = [name for name in save if name in ak.fields(events)]
            missing = [name for name in save if name not in ak.fields(events)]
            if missing:
                raise ProcessorError("job.save", f"collections {missing} are not in the event record (fields: {ak.fields(events)})")
            schema = rootio.write_events(ev_path, events, fields)
            files[f"events/{stem}.root"] = outputs.sha256_file(ev_path)
        summary = ChunkSummary(index, n_in, len(events), stats, files, schema)
        outputs.write_json(self.output_dir / "results" / f"{stem}.json", summary.to_dict())
        return summary


def _stat(n_in: int, n_out: int, seconds: float) -> dict[str, float]:
    return {"events_in": n_in, "events_out": n_out, "seconds": seconds}
