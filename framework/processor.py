"""The plugin interface: :class:`Source`, :class:`Processor` and :class:`Finalizer`.

Every stage of a muone job is a small class behind one of these three interfaces. A plugin class
declares

- ``name``: the plugin name used in steering files (``plugin = "tracking"``);
- its docstring: the first line is the one-line summary shown by ``muone plugins``;
- ``Params``: a pydantic model of its steering parameters (types, defaults, bounds, descriptions);
  unknown keys are rejected;
- ``reads`` / ``writes``: the dotted collection names it consumes and produces (``raw.strips``,
  ``sel.elastic``). A read is satisfied by an earlier write of the same name or of a parent.

At run time the event loop calls ``setup(context)`` once per worker and ``process(events, chunk)``
once per chunk. ``chunk.rng`` is a :class:`numpy.random.Generator` keyed by (job seed, chunk index,
instance name), so adding a processor never changes the random numbers of another.
"""

from __future__ import annotations

import hashlib
import textwrap
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

import awkward as ak
import numpy as np
from pydantic import BaseModel, ConfigDict


class Params(BaseModel):
    """Base of every plugin's parameter model: unknown keys are errors, values are validated on
    assignment, and the model is frozen once built."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


def stable_name_key(name: str) -> int:
    """A 64-bit integer derived from ``name`` that is the same in every process and Python
    version (``hash()`` is salted per process, so it cannot key random streams)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little")


@dataclass(frozen=True)
class ChunkSpec:
    """What a source needs to produce one chunk: its index, the number of events to generate (for
    generators) and free-form, picklable source data (e.g. the file and entry range to read)."""

    index: int
    n_events: int
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Chunk:
    """The per-chunk handle passed to ``Source.read`` and ``Processor.process``.

    ``rng`` is keyed by (seed, chunk index, instance name): the numbers a processor draws depend
    only on the job seed, the chunk and its own instance name.
    """

    spec: ChunkSpec
    seed: int
    instance: str

    @property
    def index(self) -> int:
        """Index of the chunk in the job (0-based)."""
        return self.spec.index

    @cached_property
    def rng(self) -> np.random.Generator:
        """Random generator for this (seed, chunk, instance)."""
        seq = np.random.SeedSequence([self.seed, self.spec.index, stable_name_key(self.instance)])
        return np.random.Generator(np.random.PCG64(seq))

    def for_instance(self, instance: str) -> Chunk:
        """The same chunk seen by another plugin instance (with its own random stream)."""
        return Chunk(self.spec, self.seed, instance)


@dataclass
class Context:
    """What ``setup`` receives once per worker.

    Attributes:
        job: the validated ``[job]`` table (a pydantic model).
        geometry: the ``[geometry]`` table as given in the steering (the geometry service builds
            the detector from it).
        output_dir: the job's output directory.
        steering_file: the steering file the job came from (None for a dict).
        inputs: for finalizers, the merged results of earlier jobs by ``[job] inputs`` name.
        source_info: the source's description (cross section...), for processors that need it.
    """

    job: Any
    geometry: Any
    output_dir: Path
    steering_file: Path | None = None
    inputs: dict[str, Any] = field(default_factory=dict)
    source_info: SourceInfo | None = None


@dataclass
class Output:
    """What ``process`` returns.

    Attributes:
        collections: new collections by dotted name (``"sel.elastic"``, ``"tracks"``); each is an
            ``ak.Array`` or numpy array with one entry per event. Every name must be declared in
            ``writes``.
        results: mergeable per-chunk results by name (hist objects, :class:`muone.CutFlow`,
            counters: anything supporting ``+``).
        keep: boolean mask of events to keep; honoured only for plugins with
            ``removes_events = True`` (only ``filter`` removes events).
    """

    collections: dict[str, Any] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)
    keep: np.ndarray | None = None


@dataclass(frozen=True)
class SourceInfo:
    """What a source represents.

    Attributes:
        cross_section: cross section of the generated process in microbarn (None for readers of
            detector data or non-interacting beam).
        cross_section_error: its uncertainty in microbarn.
        weighted: True if events carry non-unit ``mc.weight``.
        description: free text for the report.
    """

    cross_section: float | None = None
    cross_section_error: float = 0.0
    weighted: bool = False
    description: str = ""


class Plugin:
    """Common base of sources, processors and finalizers."""

    name: ClassVar[str] = ""
    kind: ClassVar[str] = ""
    Params: ClassVar[type[Params]] = Params
    reads: ClassVar[tuple[str, ...]] = ()
    writes: ClassVar[tuple[str, ...]] = ()

    def __init__(self, params: Params, instance: str | None = None) -> None:
        self.params = params
        self.instance = instance or self.name

    @classmethod
    def summary(cls) -> str:
        """First line of the class docstring."""
        doc = textwrap.dedent(cls.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""

    @classmethod
    def reads_for(cls, params: Params) -> tuple[str, ...]:
        """Collections read with these parameters (default: the class attribute ``reads``)."""
        return tuple(cls.reads)

    @classmethod
    def writes_for(cls, params: Params) -> tuple[str, ...]:
        """Collections written with these parameters (default: the class attribute ``writes``)."""
        return tuple(cls.writes)

    @classmethod
    def check(cls, params: Params, steering: Any) -> list[tuple[str, str]]:
        """Extra validation against the whole steering, run before any event.

        Returns (key path relative to this plugin's table, message) pairs; empty if fine."""
        return []

    def setup(self, context: Context) -> None:
        """Called once per worker before the first chunk (load geometry, conditions...)."""


class Source(Plugin):
    """A producer of event chunks: a generator or a file reader."""

    kind: ClassVar[str] = "source"

    def plan(self, context: Context) -> list[ChunkSpec]:
        """The chunks of the job, known before any event is produced (so that executors can
        distribute them and a resumed job knows which are missing)."""
        raise NotImplementedError

    def read(self, spec: ChunkSpec, chunk: Chunk) -> ak.Array:
        """Produce the events of one chunk as an awkward record array."""
        raise NotImplementedError

    def info(self) -> SourceInfo:
        """What the source represents (cross section in microbarn...). Called after setup."""
        return SourceInfo()


class Processor(Plugin):
    """A per-chunk stage: adds collections and/or fills mergeable results."""

    kind: ClassVar[str] = "processor"
    #: Only event filters may drop events (``Output.keep``).
    removes_events: ClassVar[bool] = False

    def process(self, events: ak.Array, chunk: Chunk) -> Output | None:
        """Process one chunk of events; return new collections and/or results."""
        raise NotImplementedError


class Finalizer(Plugin):
    """A stage run once on the merged results (template fit, alignment)."""

    kind: ClassVar[str] = "finalizer"
    #: Names that must appear in ``[job] inputs`` for this finalizer.
    required_inputs: ClassVar[tuple[str, ...]] = ()

    def finalize(self, results: dict[str, Any], context: Context) -> dict[str, Any] | None:
        """Run on the merged results of this job (``results``: instance -> name -> object) and on
        ``context.inputs`` (earlier jobs); return results to store, or None."""
        raise NotImplementedError


def is_parent_or_same(written: str, read: str) -> bool:
    """True when a write of ``written`` satisfies a read of ``read`` (same name or a parent)."""
    return read == written or read.startswith(written + ".")
