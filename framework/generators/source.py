"""Base class of the generator sources: chunk planning and the per-chunk event assembly that every
generator shares (hard process, then the beam's pile-up, then the event record)."""

from __future__ import annotations

from typing import Any

import awkward as ak
import numpy as np

from muone.generators import plan_chunks
from muone.generators.record import HardProcess, build_events
from muone.processor import Chunk, ChunkSpec, Context, Source


class GeneratorSource(Source):
    """A source that generates ``job.events`` events. Subclasses set ``self.beam`` (a
    :class:`~muone.generators.beam.BeamModel`) and ``self.chunk_size`` in ``setup`` and implement
    ``generate(rng, n)`` returning a :class:`HardProcess`, or ``(HardProcess, extra)`` where
    ``extra`` holds additional per-event ``mc`` fields."""

    def plan(self, context: Context) -> list[ChunkSpec]:
        return plan_chunks(context.job.events, context.job.chunk_size)

    def generate(self, rng: np.random.Generator, n: int) -> HardProcess | tuple[HardProcess, dict[str, Any]]:
        raise NotImplementedError

    def read(self, spec: ChunkSpec, chunk: Chunk) -> ak.Array:
        rng = chunk.rng
        produced = self.generate(rng, spec.n_events)
        hard, extra = produced if isinstance(produced, tuple) else (produced, {})
        counts, pileup = self.beam.pileup(rng, spec.n_events)
        return build_events(spec.index * self.chunk_size, self.params.run, hard, counts, pileup, extra)
