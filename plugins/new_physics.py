"""Sources ``dark_photon`` (mu e -> mu e A', A' -> e+ e-) and ``invisible_zprime`` (mu e -> mu e Z',
Z' -> nu nubar): new-physics signals (PHYSICS.md section 10).

Physics and sampling: :mod:`muone.generators.vector_emission` (the boson radiated off the muon
line in a Weizsaecker-Williams approximation after Bjorken, Essig, Schuster, Toro, adapted to a
muon beam on atomic electrons). Unweighted generators with beam pile-up, the interaction point in
the targets of the job geometry (electron areal density), cross sections in microbarn per
electron (docs/backgrounds-and-signals.md).

Extra ``mc`` fields:

| source | field | content |
|---|---|---|
| dark_photon | ``decay_vertex`` | A' decay point (Vector3D, mm); the e+ e- (origin 2) start there |
| dark_photon | ``ap_mass`` | A' mass [GeV] |
| dark_photon | ``ap_ctau`` | A' proper decay length c tau [mm] |
| invisible_zprime | ``invisible`` | the Z' four-momentum (Momentum4D, GeV), not in ``mc.particles`` |
"""

from __future__ import annotations

import math
from typing import Any

import awkward as ak
import numpy as np
from muone import hookimpl
from muone.generators.beam import BeamModel, GeneratorParams, momentum_along
from muone.generators.source import GeneratorSource
from muone.generators.record import N_VP, HardProcess
from muone.generators.targets import choose_interaction_points
from muone.generators.vector_emission import (
    VectorEmissionSampler,
    dark_photon_ctau,
    emission_final_state,
    isotropic_decay,
    zprime_invisible_width,
)
from muone.mc import (
    ORIGIN_DECAY,
    ORIGIN_HARD,
    PDG_ELECTRON,
    PDG_MU_PLUS,
    PROCESS,
    momentum4d,
    vector3d,
)
from muone.physics import constants as C
from muone.physics.vacuum_polarisation import delta_alpha_lep
from muone.plugins.backgrounds import (
    PDG_POSITRON,
    geometry_targets,
    hard_particles,
    muon_line_t,
    rotated,
)
from muone.processor import Context, SourceInfo
from pydantic import Field


class EmissionParams(GeneratorParams):
    ee_min: float = Field(1.0, gt=C.M_E, description="Minimum electron energy [GeV] (the recoil electron must be seen).")
    ee_max: float | None = Field(None, gt=C.M_E, description="Maximum electron energy [GeV] (default: kinematic limit).")
    energy_min: float = Field(1.0, gt=0.0, le=100.0, description="Minimum energy of the new boson [GeV].")


class DarkPhotonParams(EmissionParams):
    mass: float = Field(0.02, ge=0.002, le=0.3, description="A' mass [GeV] (2-300 MeV).")
    epsilon: float = Field(1e-3, gt=0.0, le=0.1, description="Kinetic mixing epsilon (alpha' = epsilon^2 alpha); the cross section scales as epsilon^2.")


class ZprimeParams(EmissionParams):
    mass: float = Field(0.02, ge=0.001, lt=2 * C.M_MU, description="Z' mass [GeV] (below 2 m_mu, where Z' -> nu nubar is its only decay).")
    coupling: float = Field(5e-4, gt=0.0, le=0.1, description="L_mu - L_tau gauge coupling g' (alpha' = g'^2/(4 pi)); the cross section scales as g'^2.")


def _emission_checks(name: str, params: EmissionParams, steering: Any) -> list[tuple[str, str]]:
    problems = []
    if steering.job.events is None:
        problems.append(("", f"the {name} generator needs job.events"))
    if params.ee_max is not None and params.ee_max <= params.ee_min:
        problems.append(("ee_max", f"must be above ee_min = {params.ee_min}"))
    if params.energy_min <= params.mass:
        problems.append(("energy_min", f"must be above the boson mass ({params.mass} GeV)"))
    if params.energy_min >= 0.9 * params.beam_energy:
        problems.append(("energy_min", f"must be well below the beam energy ({params.beam_energy} GeV)"))
    return problems


class _EmissionSource(GeneratorSource):
    """Common machinery of the two sources (not a plugin)."""

    writes = ("run", "event", "bx", "mc")
    process = ""

    def alpha_prime(self) -> float:
        raise NotImplementedError

    def setup(self, context: Context) -> None:
        p = self.params
        self.chunk_size = context.job.chunk_size
        self.beam = BeamModel(p)
        self.targets = geometry_targets(context)
        self.sampler = VectorEmissionSampler(self.beam.energy_range, p.mass, self.alpha_prime(), p.ee_min, p.ee_max, p.energy_min)
        self._xs: float | None = None

    def cross_section(self) -> float:
        if self._xs is None:
            self._xs = self.sampler.cross_section(*self.beam.energy_nodes(16))
        return self._xs

    def emission(self, rng: np.random.Generator, n: int) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Common part of ``generate``: kinematics, beam, vertex, weights (boson momentum in
        the lab under v_px...)."""
        s = self.sampler.sample(rng, self.beam.energies, n)
        E, tau = s["E"], s["tau"]
        tx, ty = self.beam.slopes(rng, n)
        beam = momentum_along(E, tx, ty)
        fs = emission_final_state(rng, E, s["x"], s["U"], tau, self.params.mass)
        target, z = choose_interaction_points(rng, n, self.targets)
        x, y = self.beam.spots(rng, n)
        t = -tau
        ones = np.ones(n)
        vp = np.zeros((n, N_VP))
        vp[:, 1] = 1.0  # generated at fixed alpha: w(Delta) = vp(t24)^2, t24 = the photon propagator
        common = {
            "process": np.full(n, PROCESS[self.process], np.int32), "target": target, "vertex": (x, y, z), "t": t, "t_mu": muon_line_t(E, fs),
            "weight": ones, "weight_norun": ones.copy(), "weight_lep": 1.0 / (1.0 - np.asarray(delta_alpha_lep(t))) ** 2, "vp": vp,
            "beam": {k: beam[k] for k in ("px", "py", "pz", "E")},
        }
        lab = {who: rotated(fs, who, beam) for who in ("mu", "e", "v")}
        lab.update({f"{who}_E": fs[f"{who}_E"] for who in ("mu", "e", "v")})
        return common, lab


class DarkPhotonSource(_EmissionSource):
    """Unweighted mu e -> mu e A', A' -> e+ e- (A' off the muon line, WW approximation), displaced decay, with beam pile-up.

    ``mc.process`` = 4. ``mc.particles``: mu+, e- (hard, origin 0) and the A' decay e-, e+
    (origin 2, production vertex = ``mc.decay_vertex``). Extra fields ``mc.decay_vertex``
    (Vector3D, mm), ``mc.ap_mass`` [GeV] and ``mc.ap_ctau`` [mm]; the A' four-momentum is the sum of
    the two origin-2 particles. ``mc.t`` = t24 (the photon propagator), ``mc.t_mu`` = t13; generated
    at fixed alpha: ``mc.vp`` c1 = 1 (w = vp(t24)^2 reweights to running).
    """

    name = "dark_photon"
    Params = DarkPhotonParams
    process = "dark_photon"

    @classmethod
    def check(cls, params: DarkPhotonParams, steering: Any) -> list[tuple[str, str]]:
        return _emission_checks("dark_photon", params, steering)

    def alpha_prime(self) -> float:
        return self.params.epsilon**2 * C.ALPHA

    def info(self) -> SourceInfo:
        p = self.params
        ctau = float(dark_photon_ctau(p.mass, p.epsilon))
        return SourceInfo(self.cross_section(), 0.0, False,
                          f"mu e -> mu e A' (A' -> e+e-), m = {p.mass} GeV, epsilon = {p.epsilon:g}, c tau = {ctau:.4g} mm, "
                          f"{p.beam_energy} GeV, E_e > {p.ee_min} GeV, E_A' > {p.energy_min} GeV")

    def generate(self, rng: np.random.Generator, n: int) -> tuple[HardProcess, dict[str, ak.Array]]:
        """The hard process of ``n`` events and the extra ``mc`` fields."""
        p = self.params
        common, lab = self.emission(rng, n)
        vx, vy, vz = common["vertex"]
        kx, ky, kz = lab["v"]
        kE = lab["v_E"]
        kp = np.sqrt(kx * kx + ky * ky + kz * kz)
        ctau = float(dark_photon_ctau(p.mass, p.epsilon))
        length = kp / p.mass * ctau * rng.standard_exponential(n)  # gamma beta c tau x Exp(1)
        dx, dy, dz = vx + length * kx / kp, vy + length * ky / kp, vz + length * kz / kp
        em, ep = isotropic_decay(rng, kx, ky, kz, kE, p.mass, C.M_E)
        vtx, dvtx = (vx, vy, vz), (dx, dy, dz)
        particles = hard_particles(
            n, [PDG_MU_PLUS, PDG_ELECTRON, PDG_ELECTRON, PDG_POSITRON],
            [lab["mu"], lab["e"], (em["px"], em["py"], em["pz"]), (ep["px"], ep["py"], ep["pz"])],
            [lab["mu_E"], lab["e_E"], em["E"], ep["E"]], [vtx, vtx, dvtx, dvtx],
            [ORIGIN_HARD, ORIGIN_HARD, ORIGIN_DECAY, ORIGIN_DECAY])
        hard = HardProcess(**common, counts=np.full(n, 4, np.int64), particles=particles)
        extra = {"decay_vertex": vector3d(dx, dy, dz), "ap_mass": np.full(n, p.mass), "ap_ctau": np.full(n, ctau)}
        return hard, extra


class ZprimeSource(_EmissionSource):
    """Unweighted mu e -> mu e Z', Z' -> nu nubar invisible (L_mu - L_tau, Z' off the muon line, WW approximation), with beam pile-up.

    ``mc.process`` = 5. ``mc.particles``: mu+ and e- (origin 0) only; the Z' four-momentum is in
    the extra field ``mc.invisible`` (Momentum4D) for truth studies. ``mc.t`` = t24, ``mc.t_mu`` =
    t13; generated at fixed alpha: ``mc.vp`` c1 = 1.
    """

    name = "invisible_zprime"
    Params = ZprimeParams
    process = "invisible_zprime"

    @classmethod
    def check(cls, params: ZprimeParams, steering: Any) -> list[tuple[str, str]]:
        return _emission_checks("invisible_zprime", params, steering)

    def alpha_prime(self) -> float:
        return self.params.coupling**2 / (4.0 * math.pi)

    def info(self) -> SourceInfo:
        p = self.params
        width = float(zprime_invisible_width(p.mass, p.coupling))
        return SourceInfo(self.cross_section(), 0.0, False,
                          f"mu e -> mu e Z' (Z' -> nu nubar, width {width:.3g} GeV), m = {p.mass} GeV, g' = {p.coupling:g}, "
                          f"{p.beam_energy} GeV, E_e > {p.ee_min} GeV, E_Z' > {p.energy_min} GeV")

    def generate(self, rng: np.random.Generator, n: int) -> tuple[HardProcess, dict[str, ak.Array]]:
        """The hard process of ``n`` events and the extra ``mc`` fields."""
        common, lab = self.emission(rng, n)
        vtx = common["vertex"]
        particles = hard_particles(n, [PDG_MU_PLUS, PDG_ELECTRON], [lab["mu"], lab["e"]], [lab["mu_E"], lab["e_E"]],
                                   [vtx, vtx], [ORIGIN_HARD, ORIGIN_HARD])
        hard = HardProcess(**common, counts=np.full(n, 2, np.int64), particles=particles)
        kx, ky, kz = lab["v"]
        return hard, {"invisible": momentum4d(kx, ky, kz, lab["v_E"])}


@hookimpl
def muone_plugins() -> list[type]:
    return [DarkPhotonSource, ZprimeSource]
