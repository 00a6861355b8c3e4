"""Source ``beam``: non-interacting beam muons (the M2 beam profile, PHYSICS.md section 7).

For alignment and multiple-scattering studies. Each bunch crossing carries Poisson(mean_muons)
mu+ with a Gaussian energy spread, Gaussian divergence and spot, starting at ``z_start``.
"""

from __future__ import annotations

import math

import awkward as ak
import numpy as np
from pydantic import Field

from muone import hookimpl
from muone.mc import ORIGIN_PILEUP, PDG_MU_PLUS, PROCESS, momentum4d, particles_record, vector3d
from muone.physics.constants import M_MU
from muone.processor import Chunk, ChunkSpec, Context, Params, Source, SourceInfo


class BeamParams(Params):
    energy: float = Field(160.0, gt=0, description="Mean beam energy [GeV].")
    energy_spread: float = Field(0.0375, ge=0, lt=0.5, description="Relative Gaussian RMS of the beam energy.")
    divergence: float = Field(4e-4, ge=0, le=0.05, description="Gaussian RMS of the beam slope per plane (x and y) [rad].")
    spot_size: float = Field(20.0, ge=0, description="Gaussian RMS of the beam position per plane at z_start [mm].")
    mean_muons: float = Field(1.25, ge=0, le=100, description="Mean number of beam muons per bunch crossing (Poisson).")
    min_muons: int = Field(0, ge=0, le=10, description="Keep only bunch crossings with at least this many muons (1 for alignment).")
    z_start: float = Field(-1000.0, description="z where the muons are generated [mm].")
    run: int = Field(1, ge=0, description="Run number written to every event.")


def sample_beam_muons(rng: np.random.Generator, n: int, p: BeamParams) -> dict[str, np.ndarray]:
    """``n`` beam mu+ with the beam's energy spread, divergence and spot: flat arrays of
    px, py, pz, E [GeV] and the position vx, vy, vz [mm] at ``z_start``."""
    energy = p.energy * (1.0 + p.energy_spread * rng.standard_normal(n))
    energy = np.maximum(energy, 1.001 * M_MU)
    momentum = np.sqrt(energy * energy - M_MU * M_MU)
    tx = p.divergence * rng.standard_normal(n)
    ty = p.divergence * rng.standard_normal(n)
    norm = momentum / np.sqrt(1.0 + tx * tx + ty * ty)
    return {
        "px": norm * tx, "py": norm * ty, "pz": norm, "E": energy,
        "vx": p.spot_size * rng.standard_normal(n), "vy": p.spot_size * rng.standard_normal(n),
        "vz": np.full(n, p.z_start),
    }


def poisson_at_least(rng: np.random.Generator, mean: float, minimum: int, n: int) -> np.ndarray:
    """``n`` Poisson(mean) counts conditioned on count >= minimum (inverse-CDF sampling of the
    truncated distribution, no rejection loop)."""
    if minimum == 0:
        return rng.poisson(mean, n)
    if mean <= 0:
        raise ValueError(f"mean_muons = {mean} cannot give at least {minimum} muons")
    from scipy.stats import poisson

    lo = poisson.cdf(minimum - 1, mean)
    u = lo + (1.0 - lo) * rng.random(n)
    return np.maximum(poisson.ppf(u, mean).astype(np.int64), minimum)


class BeamSource(Source):
    """Non-interacting beam muons: energy spread, divergence, spot, Poisson number per bunch crossing.

    Writes ``run``, ``event``, ``bx`` and ``mc`` (process 0, every muon in ``mc.particles`` with
    origin 1; ``mc.beam`` is the first muon, NaN when the crossing is empty).
    """

    name = "beam"
    Params = BeamParams
    writes = ("run", "event", "bx", "mc")

    @classmethod
    def check(cls, params: BeamParams, steering) -> list[tuple[str, str]]:
        if steering.job.events is None:
            return [("", "the beam generator needs job.events")]
        if params.min_muons > 0 and params.mean_muons == 0:
            return [("min_muons", "min_muons > 0 needs mean_muons > 0")]
        return []

    def setup(self, context: Context) -> None:
        self.job = context.job

    def plan(self, context: Context) -> list[ChunkSpec]:
        total, size = context.job.events, context.job.chunk_size
        return [ChunkSpec(i, min(size, total - i * size)) for i in range(math.ceil(total / size))]

    def info(self) -> SourceInfo:
        return SourceInfo(description=f"{self.params.energy} GeV mu+ beam, Poisson({self.params.mean_muons}) per crossing")

    def read(self, spec: ChunkSpec, chunk: Chunk) -> ak.Array:
        p, rng, n = self.params, chunk.rng, spec.n_events
        counts = poisson_at_least(rng, p.mean_muons, p.min_muons, n)
        mu = sample_beam_muons(rng, int(counts.sum()), p)
        total = len(mu["E"])
        particles = particles_record(
            counts, np.full(total, PDG_MU_PLUS), mu["px"], mu["py"], mu["pz"], mu["E"],
            mu["vx"], mu["vy"], mu["vz"], np.full(total, ORIGIN_PILEUP),
        )
        first = np.concatenate([[0], np.cumsum(counts)[:-1]]) if n else np.zeros(0, np.int64)
        has = counts > 0
        def pick(a: np.ndarray) -> np.ndarray:
            out = np.full(n, np.nan)
            out[has] = a[first[has]]
            return out
        event = spec.index * self.job.chunk_size + np.arange(n, dtype=np.int64)
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
        return ak.zip({"run": np.full(n, p.run, np.int64), "event": event, "bx": event, "mc": mc}, depth_limit=1)


@hookimpl
def muone_plugins() -> list[type]:
    return [BeamSource]
