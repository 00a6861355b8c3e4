"""Source ``beam``: non-interacting beam muons (the M2 beam profile, PHYSICS.md section 7).

For alignment and multiple-scattering studies. Each bunch crossing carries Poisson(pileup_mean)
mu+ with the beam's energy spread (or profile), divergence and spot, starting at ``beam_z_start``.
"""

from __future__ import annotations

from typing import Any

import awkward as ak
import numpy as np
from pydantic import Field

from muone import hookimpl
from muone.generators import plan_chunks
from muone.generators.beam import BeamModel, GeneratorParams
from muone.mc import ORIGIN_PILEUP, PDG_MU_PLUS, PROCESS, momentum4d, particles_record, vector3d
from muone.processor import Chunk, ChunkSpec, Context, Source, SourceInfo


class BeamParams(GeneratorParams):
    pileup_mean: float = Field(1.25, ge=0, le=100, description="Mean number of beam muons per bunch crossing (Poisson).")
    min_muons: int = Field(0, ge=0, le=10, description="Keep only bunch crossings with at least this many muons (1 for alignment).")


class BeamSource(Source):
    """Non-interacting beam muons: energy spread, divergence, spot, Poisson number per bunch crossing.

    Writes ``run``, ``event``, ``bx`` and ``mc`` (process 0, every muon in ``mc.particles`` with
    origin 1; ``mc.beam`` is the first muon, NaN when the crossing is empty).
    """

    name = "beam"
    Params = BeamParams
    writes = ("run", "event", "bx", "mc")

    @classmethod
    def check(cls, params: BeamParams, steering: Any) -> list[tuple[str, str]]:
        if steering.job.events is None:
            return [("", "the beam generator needs job.events")]
        if params.min_muons > 0 and params.pileup_mean == 0:
            return [("min_muons", "min_muons > 0 needs pileup_mean > 0")]
        return []

    def setup(self, context: Context) -> None:
        self.chunk_size = context.job.chunk_size
        self.beam = BeamModel(self.params)

    def plan(self, context: Context) -> list[ChunkSpec]:
        return plan_chunks(context.job.events, context.job.chunk_size)

    def info(self) -> SourceInfo:
        p = self.params
        return SourceInfo(description=f"{p.beam_energy} GeV mu+ beam, Poisson({p.pileup_mean}) per crossing")

    def read(self, spec: ChunkSpec, chunk: Chunk) -> ak.Array:
        n = spec.n_events
        counts, mu = self.beam.pileup(chunk.rng, n, self.params.min_muons)
        total = len(mu["E"])
        particles = particles_record(
            counts, np.full(total, PDG_MU_PLUS), mu["px"], mu["py"], mu["pz"], mu["E"],
            mu["vx"], mu["vy"], mu["vz"], np.full(total, ORIGIN_PILEUP),
        )
        first = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64) if n else np.zeros(0, np.int64)
        has = counts > 0

        def pick(a: np.ndarray) -> np.ndarray:
            out = np.full(n, np.nan)
            out[has] = a[first[has]]
            return out

        event = spec.index * self.chunk_size + np.arange(n, dtype=np.int64)
        nan = np.full(n, np.nan)
        mc = ak.zip(
            {
                "process": np.full(n, PROCESS["beam"], np.int32),
                "target": np.full(n, -1, np.int32),
                "vertex": vector3d(nan, nan, nan),
                "t": np.zeros(n), "t_mu": np.zeros(n), "weight": np.ones(n),
                "beam": momentum4d(pick(mu["px"]), pick(mu["py"]), pick(mu["pz"]), pick(mu["E"])),
                "particles": particles,
            },
            depth_limit=1,
        )
        return ak.zip({"run": np.full(n, self.params.run, np.int64), "event": event, "bx": event, "mc": mc}, depth_limit=1)


@hookimpl
def muone_plugins() -> list[type]:
    return [BeamSource]
