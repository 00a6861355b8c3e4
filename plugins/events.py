"""Source ``events``: the saved collections of an earlier muone job, through its manifest.

Jobs chain: a generation job saves ``mc`` to events/, a reconstruction job reads it back with
this source. Vector behaviours (Momentum4D, Vector3D) are restored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import awkward as ak
from pydantic import Field

from muone import hookimpl, outputs
from muone.errors import InputError
from muone.processor import Chunk, ChunkSpec, Context, Params, Source, SourceInfo


class EventsParams(Params):
    input: str = Field(..., min_length=1, description="Output directory of the earlier job (holds manifest.json and events/).")
    collections: list[str] = Field(default_factory=list, description="Collections to read (default: every saved one).")


def _manifest(directory: str) -> dict[str, Any]:
    path = Path(directory) / "manifest.json"
    if not path.is_file():
        raise InputError(f"{directory}: not the output directory of a muone job (no manifest.json)")
    manifest = outputs.read_json(path)
    if manifest.get("status") != "complete":
        raise InputError(f"{path}: the job is not complete (status {manifest.get('status')!r}); finish it first")
    if not manifest.get("saved_collections"):
        raise InputError(f"{path}: the job saved no collections ([job] save is empty)")
    return manifest


class EventsSource(Source):
    """Events saved by an earlier muone job (its events/ files, found through its manifest).

    One chunk per ``chunk_size`` events of each input file; ``job.events`` limits the total.
    """

    name = "events"
    Params = EventsParams

    @classmethod
    def writes_for(cls, params: EventsParams) -> tuple[str, ...]:
        try:
            saved = _manifest(params.input)["saved_collections"]
        except InputError:
            return ()
        return tuple(params.collections or saved)

    @classmethod
    def check(cls, params: EventsParams, steering: Any) -> list[tuple[str, str]]:
        try:
            saved = _manifest(params.input)["saved_collections"]
        except InputError as exc:
            return [("input", str(exc))]
        missing = [c for c in params.collections if c not in saved]
        return [("collections", f"not saved by {params.input}: {missing}; saved: {saved}")] if missing else []

    def setup(self, context: Context) -> None:
        self.manifest = _manifest(self.params.input)
        self.collections = self.params.collections or self.manifest["saved_collections"]

    def plan(self, context: Context) -> list[ChunkSpec]:
        size, limit = context.job.chunk_size, context.job.events
        specs: list[ChunkSpec] = []
        taken = 0
        for entry in self.manifest["chunks"]:
            files = [f for f in entry["files"] if f.startswith("events/")]
            if not files:
                continue
            schema = entry.get("events_schema") or self.manifest["events_schema"]
            n = entry["events_out"]
            for start in range(0, n, size):
                stop = min(n, start + size)
                if limit is not None:
                    stop = min(stop, start + limit - taken)
                if stop <= start:
                    break
                specs.append(ChunkSpec(len(specs), stop - start, {"file": str(Path(self.params.input) / files[0]), "start": start, "stop": stop, "schema": schema}))
                taken += stop - start
            if limit is not None and taken >= limit:
                break
        return specs

    def info(self) -> SourceInfo:
        src = self.manifest.get("source", {})
        return SourceInfo(src.get("cross_section_ub"), src.get("cross_section_error_ub") or 0.0, bool(src.get("weighted")), f"events of {self.params.input}")

    def read(self, spec: ChunkSpec, chunk: Chunk) -> ak.Array:
        from muone import rootio

        d = spec.data
        return rootio.read_events(d["file"], d["schema"], self.collections, entry_start=d["start"], entry_stop=d["stop"])


@hookimpl
def muone_plugins() -> list[type]:
    return [EventsSource]
