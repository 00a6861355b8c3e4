"""Generator-level scattering angles: the truth observables of template studies before reconstruction.

The angles theta_e and theta_mu of the hard electron and muon (``mc.particles`` with origin 0)
relative to the incoming muon (``mc.beam``), optionally

* shifted as if the beam energy were E + ``beam_energy_shift`` for the same t (the elastic relations
  of PHYSICS.md section 2: theta += theta_el(E_e; E + dE) - theta_el(E_e; E), with E_e = m_e - t/2m_e
  taken from the particle) - a beam-energy-scale variation;
* smeared with a Gaussian angular resolution per plane: sigma^2 = ``resolution``^2 +
  (``ms_scale`` theta0(p))^2, theta0 the Highland multiple-scattering width (PHYSICS.md section 8)
  for ``ms_radiation_lengths`` x/X0 and the particle momentum p. Smearing the two projections of a
  direction at polar angle theta by independent Gaussians gives theta' = hypot(theta + s xi1, s xi2)
  (the frame may be turned so the true direction lies in the first projection);
* scaled by ``angle_scale`` (a longitudinal misalignment: a station length error dL/L scales every
  measured angle by 1 + dL/L).

These are the ingredients of generator-level systematic variations: nominal and varied angles
computed from the same events and the same random numbers give correlated templates, whose
differences are smooth.
"""

from __future__ import annotations

from dataclasses import dataclass

import awkward as ak
import numpy as np
from muone.physics.constants import M_E

__all__ = ["AngleModel", "hard_particles", "highland", "polar_angle", "truth_angles"]


@dataclass(frozen=True)
class AngleModel:
    """Parameters of the generator-level angle emulation (module docstring). Angles in rad, energies in GeV."""

    resolution: float = 0.0
    ms_radiation_lengths: float = 0.0
    ms_scale: float = 1.0
    beam_energy_shift: float = 0.0
    angle_scale: float = 1.0


def _first(particles: ak.Array, mask: ak.Array) -> dict[str, np.ndarray]:
    chosen = ak.firsts(particles[mask], axis=1)
    out = {}
    for name in ("px", "py", "pz", "E"):
        out[name] = np.asarray(ak.to_numpy(ak.fill_none(chosen[name], np.nan)), dtype=np.float64)
    return out


def hard_particles(events: ak.Array) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The hard electron (pdg 11) and muon (pdg +-13) of each event (origin 0): dicts of
    px, py, pz, E [GeV], NaN where the event has none."""
    p = events.mc.particles
    hard = p.origin == 0
    electron = _first(p, hard & (p.pdg == 11))
    muon = _first(p, hard & (abs(p.pdg) == 13))
    return electron, muon


def polar_angle(px: np.ndarray, py: np.ndarray, pz: np.ndarray, bx: np.ndarray, by: np.ndarray, bz: np.ndarray) -> np.ndarray:
    """Angle between p and b [rad], atan2(|p x b|, p . b) (accurate at small angles)."""
    cx = py * bz - pz * by
    cy = pz * bx - px * bz
    cz = px * by - py * bx
    return np.arctan2(np.sqrt(cx * cx + cy * cy + cz * cz), px * bx + py * by + pz * bz)


def highland(p: np.ndarray, x_over_x0: float) -> np.ndarray:
    """Highland multiple-scattering width per plane [rad] for momentum p [GeV] (PHYSICS.md section 8):
    0.0136/p sqrt(x/X0) (1 + 0.038 ln(x/X0)); 0 for x/X0 = 0."""
    if x_over_x0 <= 0:
        return np.zeros_like(p)
    return 0.0136 / p * np.sqrt(x_over_x0) * (1.0 + 0.038 * np.log(x_over_x0))


def truth_angles(events: ak.Array, model: AngleModel, normals: np.ndarray) -> dict[str, np.ndarray]:
    """theta_e, theta_mu [rad] (and E_e, E_mu [GeV]) per event, emulated with ``model``.

    ``normals``: standard normal numbers of shape (n_events, 4) (two projections per particle),
    drawn by the caller so that variations can share them. Events without a hard electron or muon
    get NaN.
    """
    from muone.physics.kinematics import (
        theta_e_from_electron_energy,
        theta_mu_from_electron_energy,
    )

    electron, muon = hard_particles(events)
    beam = events.mc.beam
    b = [np.asarray(ak.to_numpy(beam[c]), dtype=np.float64) for c in ("px", "py", "pz")]
    theta_e = polar_angle(electron["px"], electron["py"], electron["pz"], *b)
    theta_mu = polar_angle(muon["px"], muon["py"], muon["pz"], *b)
    if model.beam_energy_shift != 0.0:
        E_beam = np.asarray(ak.to_numpy(beam.E), dtype=np.float64)
        E_e = np.where(electron["E"] > M_E, electron["E"], np.nan)
        shifted = E_beam + model.beam_energy_shift
        with np.errstate(invalid="ignore"):
            theta_e = theta_e + (np.asarray(theta_e_from_electron_energy(E_e, shifted)) - np.asarray(theta_e_from_electron_energy(E_e, E_beam)))
            theta_mu = theta_mu + (np.asarray(theta_mu_from_electron_energy(E_e, shifted)) - np.asarray(theta_mu_from_electron_energy(E_e, E_beam)))
    out = {}
    for name, theta, part, cols in (("theta_e", theta_e, electron, (0, 1)), ("theta_mu", theta_mu, muon, (2, 3))):
        p = np.sqrt(part["px"] ** 2 + part["py"] ** 2 + part["pz"] ** 2)
        sigma = np.sqrt(model.resolution**2 + (model.ms_scale * highland(p, model.ms_radiation_lengths)) ** 2)
        if model.resolution > 0 or model.ms_radiation_lengths > 0:
            theta = np.hypot(theta + sigma * normals[:, cols[0]], sigma * normals[:, cols[1]])
        out[name] = theta * model.angle_scale
    out["E_e"] = electron["E"]
    out["E_mu"] = muon["E"]
    return out
