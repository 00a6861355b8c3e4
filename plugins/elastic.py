"""Source ``elastic``: unweighted mu+ e- -> mu+ e- events with the running coupling.

Formulas: PHYSICS.md sections 2-3 (tree-level dsigma0/dt with full masses times
1/(1 - Delta_alpha_lep - Delta_alpha_had)^2); sampling: :mod:`muone.generators.elastic`.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from pydantic import Field

from muone import hookimpl
from muone.generators.source import GeneratorSource
from muone.generators.beam import BeamModel, GeneratorParams, momentum_along
from muone.generators.elastic import ElasticCuts, ElasticSampler, final_state
from muone.generators.frames import rotate_from_z
from muone.generators.record import N_VP, HardProcess
from muone.generators.targets import choose_interaction_points
from muone.mc import ORIGIN_HARD, PDG_ELECTRON, PDG_MU_PLUS, PROCESS
from muone.physics import constants as C
from muone.physics.vacuum_polarisation import delta_alpha_lep
from muone.physics.model_table import hadronic_model
from muone.processor import Context, SourceInfo

REFERENCE_LL = {"model": "LeptonLike", "K": C.LL_K_REF, "M": C.LL_M_REF}


class ElasticParams(GeneratorParams):
    ee_min: float = Field(1.0, gt=C.M_E, description="Minimum electron energy [GeV].")
    ee_max: float | None = Field(None, gt=C.M_E, description="Maximum electron energy [GeV] (default: kinematic limit).")
    theta_e_max: float | None = Field(None, gt=0, lt=math.pi / 2, description="Maximum electron angle [rad].")
    theta_mu_min: float | None = Field(None, ge=0, lt=math.asin(C.M_E / C.M_MU), description="Minimum muon angle [rad] (below theta_mu,max = 4.836 mrad).")
    running: Literal["full", "leptonic", "none"] = Field("full", description="Coupling used to generate: full (leptonic + hadronic), leptonic only, or none (tree level).")
    hadronic: dict[str, Any] = Field(default_factory=lambda: dict(REFERENCE_LL), description="Hadronic model table, e.g. { model = \"LeptonLike\", K = 0.13724, M = 0.0525 }.")


def _geometry_targets(context: Context) -> list[Any]:
    from muone.geometry import load_geometry

    return list(load_geometry(context.geometry).targets)


class ElasticSource(GeneratorSource):
    """Unweighted mu+ e- -> mu+ e- (LO with running alpha) on the targets of the job's geometry, with beam pile-up.

    Per event ``mc.t`` (= ``mc.t_mu``), ``mc.weight`` = 1, ``mc.weight_norun`` and ``mc.weight_lep``
    (the weights without running / with leptonic running) and ``mc.vp`` (c1 = weight_norun), so the
    events reweight exactly to any Delta_alpha_had: w = weight_norun / (1 - Delta_alpha(t))^2.
    """

    name = "elastic"
    Params = ElasticParams
    writes = ("run", "event", "bx", "mc")

    @classmethod
    def check(cls, params: ElasticParams, steering: Any) -> list[tuple[str, str]]:
        problems = []
        if steering.job.events is None:
            problems.append(("", "the elastic generator needs job.events"))
        try:
            hadronic_model(params.hadronic)
        except ValueError as exc:
            problems.append(("hadronic", str(exc)))
        if params.ee_max is not None and params.ee_max <= params.ee_min:
            problems.append(("ee_max", f"must be above ee_min = {params.ee_min}"))
        return problems

    def setup(self, context: Context) -> None:
        p = self.params
        self.chunk_size = context.job.chunk_size
        self.beam = BeamModel(p)
        self.had = hadronic_model(p.hadronic) if p.running == "full" else None
        self.targets = _geometry_targets(context)
        cuts = ElasticCuts(p.ee_min, p.ee_max, p.theta_e_max, p.theta_mu_min)
        self.sampler = ElasticSampler(self.beam.energy_range, cuts, self.had, leptonic=p.running != "none", running=p.running != "none")
        self._xs: float | None = None

    def info(self) -> SourceInfo:
        if self._xs is None:
            self._xs = self.sampler.cross_section(*self.beam.energy_nodes(16))
        p = self.params
        return SourceInfo(self._xs, 0.0, False, f"mu e -> mu e at {p.beam_energy} GeV, E_e > {p.ee_min} GeV, running {p.running}")

    def generate(self, rng: np.random.Generator, n: int) -> HardProcess:
        """The hard process of ``n`` events."""
        E, t, d_lep, d_had = self.sampler.sample(rng, self.beam.energies, n)
        tx, ty = self.beam.slopes(rng, n)
        beam = momentum_along(E, tx, ty)
        fs = final_state(E, t, rng.uniform(0.0, 2 * math.pi, n))
        target, z = choose_interaction_points(rng, n, self.targets)
        x, y = self.beam.spots(rng, n)
        parts = {}
        for who in ("mu", "e"):
            parts[who] = rotate_from_z(fs[f"{who}_px"], fs[f"{who}_py"], fs[f"{who}_pz"], beam["nx"], beam["ny"], beam["nz"])
        # weights relative to the generation coupling: w(Delta) = (1 - Delta_gen)^2 / (1 - Delta)^2
        gen = (1.0 - d_lep - d_had) ** 2
        weight_norun = gen
        lep = d_lep if self.params.running != "none" else np.asarray(delta_alpha_lep(t))
        weight_lep = gen / (1.0 - lep) ** 2
        vp = np.zeros((n, N_VP))
        vp[:, 1] = weight_norun
        flat = lambda a, b: np.column_stack([a, b]).ravel()  # noqa: E731  (mu, e) per event
        particles = {
            "pdg": np.tile(np.array([PDG_MU_PLUS, PDG_ELECTRON], np.int32), n),
            "px": flat(parts["mu"][0], parts["e"][0]), "py": flat(parts["mu"][1], parts["e"][1]),
            "pz": flat(parts["mu"][2], parts["e"][2]), "E": flat(fs["mu_E"], fs["e_E"]),
            "vx": np.repeat(x, 2), "vy": np.repeat(y, 2), "vz": np.repeat(z, 2),
            "origin": np.full(2 * n, ORIGIN_HARD, np.int8),
        }
        return HardProcess(
            process=np.full(n, PROCESS["elastic"], np.int32), target=target, vertex=(x, y, z), t=t, t_mu=t.copy(),
            weight=np.ones(n), weight_norun=weight_norun, weight_lep=weight_lep, vp=vp,
            beam={k: beam[k] for k in ("px", "py", "pz", "E")}, counts=np.full(n, 2, np.int64), particles=particles,
        )


@hookimpl
def muone_plugins() -> list[type]:
    return [ElasticSource]
