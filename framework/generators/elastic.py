"""Unweighted mu+ e- -> mu+ e- events from the full dsigma/dt with running (PHYSICS.md sections 2-3).

Sampling (exact accept-reject, vectorised):

1. the beam energy E from the beam model;
2. t from the envelope g(t) ~ 1/t^2 on the job-wide range [t_lo, t_hi], where t_hi comes from the
   E_e >= ee_min cut and t_lo = max(t_min(E_max), t(ee_max)) covers every beam energy;
3. accept with probability dsigma/dt(t, E) t^2 / C, zero outside the cuts of this event's E.

Because dsigma0/dt t^2 = 4 pi alpha^2/lambda [(s - m_mu^2 - m_e^2)^2 + s t + t^2/2] and
s t + t^2/2 < 0 for -2s < t < 0, the bound C = max_E 4 pi alpha^2 (s - m_mu^2 - m_e^2)^2/lambda
times the largest running factor (at t_lo) holds everywhere: accepted (E, t) are distributed as
p(E) dsigma/dt(t, E), exactly. The efficiency is about 90 % at 160 GeV with E_e > 1 GeV.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from muone.physics import constants as C
from muone.physics.cross_section import dsigma0_dt, sigma
from muone.physics.vacuum_polarisation import delta_alpha_lep
from muone.physics.kinematics import (
    electron_energy_from_theta,
    kallen_lambda,
    s_mandelstam,
    t_from_electron_energy,
    t_min,
    theta_e_from_electron_energy,
    theta_mu_from_electron_energy,
)


@dataclass(frozen=True)
class ElasticCuts:
    """Generator-level cuts: electron energy [GeV] and angles [rad] (None: no cut)."""

    ee_min: float = 1.0
    ee_max: float | None = None
    theta_e_max: float | None = None
    theta_mu_min: float | None = None


class ElasticSampler:
    """Draws (E, t) pairs distributed as p(E) dsigma/dt(t, E) within the cuts.

    Args:
        energy_range: smallest and largest beam energy [GeV].
        energies: callable (rng, n) -> n beam energies.
        had: hadronic model (or None) for the running; ``leptonic``: include Delta_alpha_lep;
            ``running``: False generates from dsigma0/dt.
    """

    def __init__(self, energy_range: tuple[float, float], cuts: ElasticCuts, had: Any = None, leptonic: bool = True, running: bool = True) -> None:
        self.cuts, self.had, self.leptonic, self.running = cuts, had, leptonic, running
        e_lo, e_hi = energy_range
        self.t_hi = float(t_from_electron_energy(cuts.ee_min))
        t_lo = float(t_min(e_hi))
        if cuts.ee_max is not None:
            t_lo = max(t_lo, float(t_from_electron_energy(cuts.ee_max)))
        if not t_lo < self.t_hi < 0:
            raise ValueError(f"the cuts leave no phase space (t from {t_lo:.4g} to {self.t_hi:.4g} GeV^2)")
        self.t_lo = t_lo
        grid = np.linspace(e_lo, e_hi, 257)
        s = s_mandelstam(grid)
        lam = kallen_lambda(s, C.M_MU**2, C.M_E**2)
        core = 4 * math.pi * C.ALPHA**2 * (s - C.M_MU**2 - C.M_E**2) ** 2 / lam * C.GEV2_TO_UB
        self.bound = float(core.max()) * self._running(np.array([t_lo]))[0] * 1.0005

    def deltas(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Delta_alpha_lep and Delta_alpha_had of the generation coupling at t (zeros where off)."""
        lep = np.asarray(delta_alpha_lep(t)) if (self.running and self.leptonic) else np.zeros_like(t)
        had = np.asarray(self.had(t)) if (self.running and self.had is not None) else np.zeros_like(t)
        return lep, had

    def _running(self, t: np.ndarray) -> np.ndarray:
        lep, had = self.deltas(t)
        return 1.0 / (1.0 - lep - had) ** 2

    def density(self, t: np.ndarray, E: np.ndarray, running: np.ndarray | None = None) -> np.ndarray:
        """dsigma/dt [microbarn/GeV^2] with the cuts of each event's beam energy (0 outside);
        ``running``: the running factor at t if already known."""
        ok = (t >= t_min(E)) & (t <= self.t_hi) & (t >= self.t_lo)
        if self.cuts.theta_e_max is not None:
            ok &= t <= t_from_electron_energy(electron_energy_from_theta(self.cuts.theta_e_max, E))
        if self.cuts.theta_mu_min is not None:
            e_e = C.M_E - t / (2 * C.M_E)
            ok &= theta_mu_from_electron_energy(e_e, E) >= self.cuts.theta_mu_min
        if running is None:
            running = self._running(t)
        return np.where(ok, dsigma0_dt(np.where(ok, t, self.t_hi), E) * running, 0.0)

    def sample(self, rng: np.random.Generator, energies: Any, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``n`` accepted events: beam energy E [GeV], t [GeV^2], and Delta_alpha_lep(t),
        Delta_alpha_had(t) of the generation coupling."""
        out: list[list[np.ndarray]] = [[], [], [], []]
        have, efficiency = 0, 0.85
        inv_lo, inv_hi = 1.0 / -self.t_lo, 1.0 / -self.t_hi
        while have < n:
            m = int((n - have) / efficiency * 1.05) + 64
            E = energies(rng, m)
            t = -1.0 / (inv_lo + rng.random(m) * (inv_hi - inv_lo))
            lep, had = self.deltas(t)
            ratio = self.density(t, E, 1.0 / (1.0 - lep - had) ** 2) * t * t / self.bound
            if np.any(ratio > 1.0):
                raise RuntimeError(f"elastic sampler envelope violated (max ratio {ratio.max():.6f}): report this")
            keep = rng.random(m) < ratio
            efficiency = max(keep.mean(), 0.01)
            for acc, a in zip(out, (E, t, lep, had)):
                acc.append(a[keep])
            have += int(keep.sum())
        E, t, lep, had = (np.concatenate(acc)[:n] for acc in out)
        return E, t, lep, had

    def cross_section(self, nodes: np.ndarray, weights: np.ndarray) -> float:
        """sigma [microbarn] averaged over the beam-energy distribution (quadrature nodes)."""
        values = [
            sigma(float(E), self._ee_min(float(E)), self.cuts.ee_max, had=self.had if self.running else None, running=self.running,
                  theta_mu_min=self.cuts.theta_mu_min) if self.leptonic or not self.running else math.nan
            for E in nodes
        ]
        return float(np.dot(weights, values))

    def _ee_min(self, E: float) -> float:
        if self.cuts.theta_e_max is None:
            return self.cuts.ee_min
        return max(self.cuts.ee_min, float(electron_energy_from_theta(self.cuts.theta_e_max, E)))


def final_state(E: np.ndarray, t: np.ndarray, phi: np.ndarray) -> dict[str, np.ndarray]:
    """Outgoing muon and electron momenta [GeV] in the frame where the beam flies along +z:
    E_e' = m_e - t/(2 m_e), theta_e from the elastic relation, the muon from momentum conservation
    (so four-momentum is conserved to rounding)."""
    kinetic = -t / (2 * C.M_E)
    e_energy = C.M_E + kinetic
    e_p = np.sqrt(kinetic * (kinetic + 2 * C.M_E))
    theta_e = theta_e_from_electron_energy(e_energy, E)
    pt, e_pz = e_p * np.sin(theta_e), e_p * np.cos(theta_e)
    p = np.sqrt((E - C.M_MU) * (E + C.M_MU))
    cos_phi, sin_phi = np.cos(phi), np.sin(phi)
    return {
        "e_px": pt * cos_phi, "e_py": pt * sin_phi, "e_pz": e_pz, "e_E": e_energy,
        "mu_px": -pt * cos_phi, "mu_py": -pt * sin_phi, "mu_pz": p - e_pz, "mu_E": E + C.M_E - e_energy,
    }
