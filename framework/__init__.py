"""muone: event-data framework for the MUonE experiment.

The public Python surface: :func:`run` (a job from a steering file or dict), :class:`Results`,
the plugin base classes (:class:`Source`, :class:`Processor`, :class:`Finalizer`, :class:`Params`,
:class:`Output`), the pluggy marker :data:`hookimpl`, and :mod:`muone.physics`.
"""

from muone._version import __version__
from muone.cutflow import CutFlow
from muone.errors import InputError, JobError, MuoneError, SteeringError
from muone.hookspecs import hookimpl
from muone.job import run
from muone.processor import Chunk, ChunkSpec, Context, Finalizer, Output, Params, Processor, Source, SourceInfo
from muone.results import Results

__all__ = [
    "__version__", "run", "Results", "Source", "Processor", "Finalizer", "Params", "Output",
    "Chunk", "ChunkSpec", "Context", "SourceInfo", "CutFlow", "hookimpl", "MuoneError",
    "SteeringError", "InputError", "JobError",
]
