"""Sources ``pairs`` (mu N -> mu N e+ e-) and ``radiative`` (mu e -> mu e gamma): backgrounds of the
elastic measurement (PHYSICS.md section 10).

Physics and sampling: :mod:`muone.generators.pairs` (Kelner-Kokoulin-Petrukhin pair production on
the target nuclei) and :mod:`muone.generators.radiative` (elastic scatter plus collinear
leading-log photon emission off the electron). Both are unweighted generators with beam pile-up,
the interaction point in the targets of the job geometry, and a cross section in microbarn
(docs/backgrounds-and-signals.md).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from muone import hookimpl
from muone.generators.beam import BeamModel, GeneratorParams, momentum_along
from muone.generators.source import GeneratorSource
from muone.generators.elastic import ElasticCuts
from muone.generators.frames import rotate_from_z
from muone.generators.pairs import PairSampler, pair_final_state
from muone.generators.radiative import RadiativeSampler, radiative_final_state
from muone.generators.record import N_VP, HardProcess, constant_vp
from muone.generators.targets import choose_interaction_points
from muone.mc import ORIGIN_HARD, PDG_ELECTRON, PDG_MU_PLUS, PDG_PHOTON, PROCESS
from muone.physics import constants as C
from muone.physics.model_table import hadronic_model
from muone.physics.vacuum_polarisation import delta_alpha_lep
from muone.plugins.elastic import ElasticParams, ElasticSource
from muone.processor import Context, SourceInfo
from pydantic import Field

PDG_POSITRON = -PDG_ELECTRON


def geometry_targets(context: Context) -> list[Any]:
    """The targets of the job's geometry (``[geometry]`` table)."""
    from muone.geometry import load_geometry

    targets = list(load_geometry(context.geometry).targets)
    if not targets:
        raise ValueError("the geometry has no target: a generator needs at least one")
    return targets


def interleave_columns(*arrays: np.ndarray) -> np.ndarray:
    """Per event, one entry of each array in turn (a, b, c, a, b, c, ...)."""
    return np.column_stack(arrays).ravel()


def rotated(fs: dict[str, np.ndarray], who: str, beam: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Momentum of ``who`` (keys who_px, who_py, who_pz) rotated from the beam frame to the lab."""
    return rotate_from_z(fs[f"{who}_px"], fs[f"{who}_py"], fs[f"{who}_pz"], beam["nx"], beam["ny"], beam["nz"])


def hard_particles(n: int, pdgs: list[int], momenta: list[tuple[np.ndarray, ...]], energies: list[np.ndarray],
                   vertices: list[tuple[np.ndarray, np.ndarray, np.ndarray]], origins: list[int]) -> dict[str, np.ndarray]:
    """Flat particle columns for ``len(pdgs)`` particles per event, in the given order."""
    k = len(pdgs)
    return {
        "pdg": np.tile(np.asarray(pdgs, np.int32), n),
        "px": interleave_columns(*(m[0] for m in momenta)), "py": interleave_columns(*(m[1] for m in momenta)),
        "pz": interleave_columns(*(m[2] for m in momenta)), "E": interleave_columns(*energies),
        "vx": interleave_columns(*(v[0] for v in vertices)), "vy": interleave_columns(*(v[1] for v in vertices)),
        "vz": interleave_columns(*(v[2] for v in vertices)),
        "origin": np.tile(np.asarray(origins, np.int8), n) if k else np.zeros(0, np.int8),
    }


def muon_line_t(E: np.ndarray, fs: dict[str, np.ndarray]) -> np.ndarray:
    """t13 = (p_beam - p_mu')^2 [GeV^2] from the beam-frame momenta (beam along +z), written as
    (dE - dp_z)(dE + dp_z) - p_T^2 with dE - dp_z = m^2/(E + p) - (E' - p_z') and
    E' - p_z' = (m^2 + p_T^2)/(E' + p_z') (no cancellation)."""
    m2 = C.M_MU**2
    p = np.sqrt((E - C.M_MU) * (E + C.M_MU))
    pt2 = fs["mu_px"] ** 2 + fs["mu_py"] ** 2
    e3, pz3 = fs["mu_E"], fs["mu_pz"]
    minus = m2 / (E + p) - (m2 + pt2) / (e3 + pz3)
    plus = (E - e3) + (p - pz3)
    return minus * plus - pt2


class PairsParams(GeneratorParams):
    pair_energy_min: float = Field(1.0, gt=4 * C.M_E, le=100.0,
                                   description="Minimum e+e- pair energy E+ + E- [GeV]: the cross section and the events are for pair energies above it.")


class PairsSource(GeneratorSource):
    """Unweighted mu N -> mu N e+ e- (coherent pair production on the target nuclei, Kelner-Kokoulin-Petrukhin) with beam pile-up.

    The target is chosen with probability n_i sigma_i (nuclei per cm^2 times the KKP cross section
    of its Z, ~ Z^2: proposals by ``target_weights(per="nucleus_z2")``, the rest of the Z dependence
    by acceptance). The reported cross section is per target *electron*: sum_i n_i sigma_i /
    sum_i n_i Z_i, so that, like the mu e processes, events = cross section x mu-e luminosity.
    ``mc.process`` = 2; ``mc.t`` is the momentum transfer to the nucleus (-q_z^2, tiny) and
    ``mc.t_mu`` the muon-line t13; weights are 1 and ``mc.vp`` has c0 = 1 (no Delta_alpha dependence).
    """

    name = "pairs"
    Params = PairsParams
    writes = ("run", "event", "bx", "mc")

    @classmethod
    def check(cls, params: PairsParams, steering: Any) -> list[tuple[str, str]]:
        problems = []
        if steering.job.events is None:
            problems.append(("", "the pairs generator needs job.events"))
        if params.pair_energy_min >= 0.9 * params.beam_energy:
            problems.append(("pair_energy_min", f"must be well below the beam energy ({params.beam_energy} GeV)"))
        return problems

    def setup(self, context: Context) -> None:
        p = self.params
        self.chunk_size = context.job.chunk_size
        self.beam = BeamModel(p)
        self.targets = geometry_targets(context)
        self.sampler = PairSampler(self.beam.energy_range, self.targets, p.pair_energy_min)
        self.z_start = np.array([t.z_start for t in self.targets])
        self.thickness = np.array([t.thickness for t in self.targets])
        self._xs: float | None = None

    def info(self) -> SourceInfo:
        if self._xs is None:
            self._xs = self.sampler.cross_section_per_electron(*self.beam.energy_nodes(16))
        p = self.params
        return SourceInfo(self._xs, 0.0, False,
                          f"mu N -> mu N e+ e- (KKP, coherent) at {p.beam_energy} GeV, E+ + E- > {p.pair_energy_min} GeV; "
                          "cross section per target electron")

    def generate(self, rng: np.random.Generator, n: int) -> HardProcess:
        """The hard process of ``n`` events."""
        s = self.sampler.sample(rng, self.beam.energies, n)
        E, target = s["E"], s["target"]
        tx, ty = self.beam.slopes(rng, n)
        beam = momentum_along(E, tx, ty)
        fs = pair_final_state(rng, E, s["eps"], s["rho"])
        z = self.z_start[target] + self.thickness[target] * rng.random(n)
        x, y = self.beam.spots(rng, n)
        p = np.sqrt((E - C.M_MU) * (E + C.M_MU))
        qz = p - fs["mu_pz"] - fs["ep_pz"] - fs["em_pz"]
        vtx = (x, y, z)
        particles = hard_particles(
            n, [PDG_MU_PLUS, PDG_POSITRON, PDG_ELECTRON],
            [rotated(fs, "mu", beam), rotated(fs, "ep", beam), rotated(fs, "em", beam)],
            [fs["mu_E"], fs["ep_E"], fs["em_E"]], [vtx, vtx, vtx], [ORIGIN_HARD] * 3)
        ones = np.ones(n)
        return HardProcess(
            process=np.full(n, PROCESS["pairs"], np.int32), target=target, vertex=vtx, t=-qz * qz, t_mu=muon_line_t(E, fs),
            weight=ones, weight_norun=ones.copy(), weight_lep=ones.copy(), vp=constant_vp(ones),
            beam={k: beam[k] for k in ("px", "py", "pz", "E")}, counts=np.full(n, 3, np.int64), particles=particles,
        )


class RadiativeParams(ElasticParams):
    photon_energy_min: float = Field(0.1, gt=0.0, le=100.0, description="Minimum photon energy [GeV] (emission above it; applied as z E_e >= it, which guarantees E_gamma >= it).")


class RadiativeSource(GeneratorSource):
    """Unweighted mu e -> mu e gamma: elastic scatter with running plus leading-log photon emission off the electron, with beam pile-up.

    Cuts (``ee_min``...) apply to the underlying elastic kinematics (E_e = m_e - t13/(2 m_e)); the
    photon has E_gamma >= ``photon_energy_min``. ``mc.process`` = 3, ``mc.t_mu`` = t13 (the photon
    propagator, as generated), ``mc.t`` = t24 from the final electron; ``mc.vp`` c5 =
    ``weight_norun`` (MESMER radiative convention: w = c5 vp(t_mu)^2), so the events reweight
    exactly to any Delta_alpha.
    """

    name = "radiative"
    Params = RadiativeParams
    writes = ("run", "event", "bx", "mc")

    @classmethod
    def check(cls, params: RadiativeParams, steering: Any) -> list[tuple[str, str]]:
        problems = [(k, m.replace("elastic generator", "radiative generator")) for k, m in ElasticSource.check(params, steering)]
        top = params.ee_max if params.ee_max is not None else params.beam_energy
        if params.photon_energy_min >= top:
            problems.append(("photon_energy_min", f"must be below the largest electron energy allowed by the cuts ({top} GeV)"))
        return problems

    def setup(self, context: Context) -> None:
        p = self.params
        self.chunk_size = context.job.chunk_size
        self.beam = BeamModel(p)
        self.had = hadronic_model(p.hadronic) if p.running == "full" else None
        self.targets = geometry_targets(context)
        cuts = ElasticCuts(p.ee_min, p.ee_max, p.theta_e_max, p.theta_mu_min)
        self.sampler = RadiativeSampler(self.beam.energy_range, cuts, p.photon_energy_min, self.had,
                                        leptonic=p.running != "none", running=p.running != "none")
        self._xs: float | None = None

    def info(self) -> SourceInfo:
        if self._xs is None:
            self._xs = self.sampler.cross_section(*self.beam.energy_nodes(16))
        p = self.params
        return SourceInfo(self._xs, 0.0, False,
                          f"mu e -> mu e gamma (LL, photon off the electron) at {p.beam_energy} GeV, E_e > {p.ee_min} GeV, "
                          f"E_gamma > {p.photon_energy_min} GeV, running {p.running}")

    def generate(self, rng: np.random.Generator, n: int) -> HardProcess:
        """The hard process of ``n`` events."""
        s = self.sampler.sample(rng, self.beam.energies, n)
        E, t, d_lep, d_had = s["E"], s["t"], s["lep"], s["had"]
        tx, ty = self.beam.slopes(rng, n)
        beam = momentum_along(E, tx, ty)
        fs = radiative_final_state(rng, E, t, s["z"], s["y"], s["Q2"])
        target, z = choose_interaction_points(rng, n, self.targets)
        x, y = self.beam.spots(rng, n)
        vtx = (x, y, z)
        particles = hard_particles(
            n, [PDG_MU_PLUS, PDG_ELECTRON, PDG_PHOTON],
            [rotated(fs, "mu", beam), rotated(fs, "e", beam), rotated(fs, "g", beam)],
            [fs["mu_E"], fs["e_E"], fs["g_E"]], [vtx, vtx, vtx], [ORIGIN_HARD] * 3)
        gen = (1.0 - d_lep - d_had) ** 2
        lep = d_lep if self.params.running != "none" else np.asarray(delta_alpha_lep(t))
        vp = np.zeros((n, N_VP))
        vp[:, 5] = gen
        t24 = -2.0 * C.M_E * (fs["e_E"] - C.M_E)
        return HardProcess(
            process=np.full(n, PROCESS["radiative"], np.int32), target=target, vertex=vtx, t=t24, t_mu=t,
            weight=np.ones(n), weight_norun=gen, weight_lep=gen / (1.0 - lep) ** 2, vp=vp,
            beam={k: beam[k] for k in ("px", "py", "pz", "E")}, counts=np.full(n, 3, np.int64), particles=particles,
        )


@hookimpl
def muone_plugins() -> list[type]:
    return [PairsSource, RadiativeSource]
