"""Shared machinery of the event generators: the beam model, interaction points in the targets,
beam pile-up, frame rotations and the assembly of the ``mc`` record.

The generator *sources* themselves are plugins (``muone.plugins.elastic`` and friends); what they
share lives here so that every generator treats the beam, the targets and pile-up the same way.
"""

from muone.generators.beam import BeamModel, GeneratorParams
from muone.generators.frames import rotate_from_z
from muone.generators.record import HardProcess, build_events
from muone.generators.targets import choose_interaction_points

__all__ = ["BeamModel", "GeneratorParams", "HardProcess", "build_events", "choose_interaction_points", "plan_chunks", "rotate_from_z"]


def plan_chunks(events: int, chunk_size: int) -> list:
    """The chunks of a generator job: ``events`` split into chunks of ``chunk_size`` (the last one
    shorter)."""
    import math

    from muone.processor import ChunkSpec

    return [ChunkSpec(i, min(chunk_size, events - i * chunk_size)) for i in range(math.ceil(events / chunk_size))]
