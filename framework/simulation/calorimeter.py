"""Fast simulation of the MUonE electromagnetic calorimeter (PHYSICS.md section 9).

A parametrised (not Geant4) response of the n x n PbWO4 crystal matrix, used by the
``sim_calorimeter`` processor (``muone.plugins.sim_calorimeter``). Units: mm, GeV, rad.

Model
-----
- **Extrapolation.** Every particle is a straight line from its production vertex ``(vx, vy, vz)``
  along ``(px, py, pz)`` to the front-face plane ``z = calorimeter.z``; no multiple scattering,
  no magnetic field, no interaction in the tracker material. Particles with ``pz <= 0`` or
  produced at or behind the front face are ignored, as are particles whose impact point misses the
  front face (no entry through the side faces).
- **Showers** (e-, e+, photons). Longitudinal containment is assumed (22 cm of PbWO4 = 24.7 X0;
  the leakage out of the back, below 1 % for the energies of interest, is neglected). The lateral
  profile is the two-component form of Grindhammer and Peters, integrated over the depth:

      dE/dA (r) = E [ p   R_C^2 / (pi (r^2 + R_C^2)^2)
                    + (1-p) R_T^2 / (pi (r^2 + R_T^2)^2) ]

  with ``r`` the distance from the shower axis on the front face, a core (``R_C``) and a tail
  (``R_T``) component; the energy inside a radius r is ``p r^2/(r^2+R_C^2) + (1-p) r^2/(r^2+R_T^2)``.
  Defaults ``p = 0.8``, ``R_C = 0.15 R_M``, ``R_T = 0.84 R_M`` (R_M = 20 mm for PbWO4) contain
  90.0 % within 1 R_M, 96.6 % within 2 R_M and 98.8 % within 3.5 R_M. Each component integrates
  analytically over a rectangle (:func:`quadrant_integral`), so the energy of each crystal is exact
  for the model; energy outside the matrix is lost (lateral leakage). The shower axis is taken
  parallel to z through the front-face impact point (the 0.1-0.2 R_M displacement of the shower
  maximum at the 20-50 mrad of elastic electrons is not modelled). Photons shower like electrons
  (their conversion depth is not modelled).
- **Resolution.** Each shower's visible energy is ``E * g`` with ``g = 1 + sigma * N(0, 1)``
  (clipped at 0), ``sigma = stochastic / sqrt(E) (+) constant`` in quadrature (default
  2.8 % / sqrt(E/GeV) (+) 0.3 %), shared by all crystals of the shower.
- **Muons** (mu+-) deposit ``mip_dedx * L`` in the crystal of their impact point, L the straight
  path through the crystal length (``crystal_length / cos(theta)``), with the minimum-ionising
  dE/dx of PbWO4, 1.229 MeV cm^2/g x 8.30 g/cm^3 = 10.2 MeV/cm (PDG): 0.224 GeV for 22 cm at
  normal incidence. No Landau fluctuation, no radiative losses, no sharing with the neighbouring
  crystal when the muon leaves through a side face. Other particles (hadrons, neutrinos, dark
  photons...) deposit nothing.
- **Noise.** Every crystal of every event gets Gaussian noise of ``noise_per_crystal`` GeV
  (default 0.040).
- **Digitisation.** ``adc = round(pedestal + E_visible * adc_per_gev)`` clipped to
  ``[0, saturation]``, int32 (default 1000 counts per GeV = 1 MeV per count, pedestal 200 counts,
  saturation 262143 = 2^18 - 1 counts, i.e. 261.9 GeV above the pedestal). :func:`adc_to_energy`
  inverts it.

``truth`` (``mc.calo_truth``) is the mean deposited energy per crystal (profile x energy, plus the
MIP deposits): no resolution smearing, no noise, no digitisation.

Cells are numbered ``iy * n + ix`` as in :class:`muone.geometry.Calorimeter`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba as nb
import numpy as np

__all__ = [
    "PDG_MIP",
    "PDG_SHOWER",
    "CaloModel",
    "adc_to_energy",
    "containment_radius_fraction",
    "digitise",
    "impact_points",
    "quadrant_integral",
    "simulate",
]

#: Particles that shower (e-, e+, photon) and that deposit a MIP signal (mu-, mu+).
PDG_SHOWER = (11, -11, 22)
PDG_MIP = (13, -13)

#: Minimum-ionising dE/dx of PbWO4 [GeV/mm]: 1.229 MeV cm^2/g x 8.30 g/cm^3 = 10.2 MeV/cm.
MIP_DEDX_PBWO4 = 1.02e-3


@dataclass(frozen=True)
class CaloModel:
    """Parameters of the calorimeter response (lengths mm, energies GeV)."""

    z: float  # front face
    x: float  # centre of the front face
    y: float
    crystal_size: float
    n: int
    crystal_length: float
    moliere_radius: float
    core_fraction: float = 0.8
    core_radius: float = 0.15  # in Moliere radii
    tail_radius: float = 0.84  # in Moliere radii
    stochastic: float = 0.028
    constant: float = 0.003
    noise_per_crystal: float = 0.040
    mip_dedx: float = MIP_DEDX_PBWO4  # GeV/mm
    adc_per_gev: float = 1000.0
    pedestal: int = 200
    saturation: int = 262143

    @property
    def n_cells(self) -> int:
        return self.n * self.n

    @property
    def half_width(self) -> float:
        return 0.5 * self.n * self.crystal_size

    def relative_resolution(self, energy: np.ndarray | float) -> np.ndarray:
        """sigma_E / E of one shower: stochastic / sqrt(E) (+) constant."""
        e = np.asarray(energy, dtype=np.float64)
        with np.errstate(divide="ignore"):
            return np.sqrt(self.stochastic**2 / e + self.constant**2)

    def cell_fractions(self, dx: np.ndarray | float, dy: np.ndarray | float) -> np.ndarray:
        """Fraction of a shower's energy in each crystal for impact points ``(x, y)`` given
        relative to the matrix centre; shape ``(len, n*n)`` (analytic integral of the profile)."""
        dx = np.atleast_1d(np.asarray(dx, np.float64))
        dy = np.atleast_1d(np.asarray(dy, np.float64))
        out = np.zeros((len(dx), self.n_cells))
        x0 = -self.half_width
        _shower_kernel(
            np.arange(len(dx), dtype=np.int64), dx, dy, np.ones(len(dx)), np.ones(len(dx)),
            x0, x0, self.crystal_size, self.n, self.core_fraction,
            self.core_radius * self.moliere_radius, self.tail_radius * self.moliere_radius, out, out.copy(),
        )
        return out


def containment_radius_fraction(r: np.ndarray | float, core_fraction: float, core_radius: float, tail_radius: float) -> np.ndarray:
    """Fraction of the shower energy inside radius ``r`` (same units as the radii)."""
    r2 = np.asarray(r, np.float64) ** 2
    return core_fraction * r2 / (r2 + core_radius**2) + (1 - core_fraction) * r2 / (r2 + tail_radius**2)


@nb.njit(cache=True, nogil=True)
def quadrant_integral(a: float, b: float, radius: float) -> float:
    """Integral of the profile component ``R^2 / (pi (r^2 + R^2)^2)`` over ``[0, a] x [0, b]``
    (odd in ``a`` and in ``b``, so it gives signed rectangles); the whole plane integrates to 1:

        G = 1/(2 pi) [ a/s_a atan(b/s_a) + b/s_b atan(a/s_b) ],  s_a = sqrt(a^2 + R^2).
    """
    sa = math.sqrt(a * a + radius * radius)
    sb = math.sqrt(b * b + radius * radius)
    return (a / sa * math.atan(b / sa) + b / sb * math.atan(a / sb)) / (2.0 * math.pi)


@nb.njit(cache=True, nogil=True)
def _shower_kernel(event, x, y, energy, gain, x0, y0, size, n, core_fraction, core_radius, tail_radius, truth, visible):
    """Add the showers (flat arrays: event index, impact point, energy, visible/true gain) to
    ``truth[event, cell]`` (energy x fraction) and ``visible`` (energy x gain x fraction)."""
    m = n + 1
    gx = np.empty((m, m))
    for i in range(len(event)):
        ev = event[i]
        # signed distances of the crystal edges from the shower axis
        for a in range(m):
            ea = x0 + a * size - x[i]
            for b in range(m):
                eb = y0 + b * size - y[i]
                gx[a, b] = core_fraction * quadrant_integral(ea, eb, core_radius) + (1.0 - core_fraction) * quadrant_integral(ea, eb, tail_radius)
        e_true = energy[i]
        e_vis = energy[i] * gain[i]
        for iy in range(n):
            for ix in range(n):
                frac = gx[ix + 1, iy + 1] - gx[ix, iy + 1] - gx[ix + 1, iy] + gx[ix, iy]
                frac = max(frac, 0.0)
                cell = iy * n + ix
                truth[ev, cell] += e_true * frac
                visible[ev, cell] += e_vis * frac


@nb.njit(cache=True, nogil=True)
def _mip_kernel(event, cell, deposit, truth, visible):
    """Add MIP deposits to their crystals."""
    for i in range(len(event)):
        truth[event[i], cell[i]] += deposit[i]
        visible[event[i], cell[i]] += deposit[i]


def impact_points(z_front: float, vx: np.ndarray, vy: np.ndarray, vz: np.ndarray, px: np.ndarray, py: np.ndarray, pz: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Straight-line impact points on the plane ``z = z_front`` (no multiple scattering) and the
    mask of particles that reach it (``pz > 0`` and produced upstream of the plane)."""
    ok = (pz > 0) & (vz < z_front)
    with np.errstate(divide="ignore", invalid="ignore"):
        dz = z_front - vz
        x = np.where(ok, vx + px / np.where(ok, pz, 1.0) * dz, np.nan)
        y = np.where(ok, vy + py / np.where(ok, pz, 1.0) * dz, np.nan)
    return x, y, ok


def digitise(visible: np.ndarray, model: CaloModel) -> np.ndarray:
    """ADC counts (int32) of visible energies [GeV]: pedestal + E * adc_per_gev, rounded, clipped
    to [0, saturation]."""
    adc = np.rint(model.pedestal + visible * model.adc_per_gev)
    return np.clip(adc, 0, model.saturation).astype(np.int32)


def adc_to_energy(adc: np.ndarray, adc_per_gev: float = 1000.0, pedestal: float = 200.0) -> np.ndarray:
    """Energies [GeV] of ADC counts: (adc - pedestal) / adc_per_gev (saturated counts are not
    corrected)."""
    return (np.asarray(adc, np.float64) - pedestal) / adc_per_gev


def simulate(
    model: CaloModel,
    rng: np.random.Generator,
    n_events: int,
    event: np.ndarray,
    pdg: np.ndarray,
    px: np.ndarray,
    py: np.ndarray,
    pz: np.ndarray,
    energy: np.ndarray,
    vx: np.ndarray,
    vy: np.ndarray,
    vz: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Simulate the calorimeter for flat particle arrays (``event``: index of each particle's
    event, 0 <= event < n_events).

    Random numbers, in this order: the noise of every crystal (n_events x n*n normals), then one
    normal per accepted shower in particle order, so the noise of an event never depends on the
    particle content.

    Returns:
        ``(adc, truth)``: int32 ADC counts and float64 true deposits [GeV], both ``(n_events, n*n)``.
    """
    nc = model.n_cells
    truth = np.zeros((n_events, nc), np.float64)
    visible = np.zeros((n_events, nc), np.float64)
    noise = rng.normal(0.0, 1.0, size=(n_events, nc)) * model.noise_per_crystal

    event = np.asarray(event, np.int64)
    pdg = np.asarray(pdg)
    x, y, reach = impact_points(model.z, *(np.asarray(a, np.float64) for a in (vx, vy, vz, px, py, pz)))
    half = model.half_width
    with np.errstate(invalid="ignore"):
        inside = reach & (np.abs(x - model.x) < half) & (np.abs(y - model.y) < half)
    shower = inside & np.isin(pdg, PDG_SHOWER) & (np.asarray(energy) > 0)
    mip = inside & np.isin(pdg, PDG_MIP)

    e_sh = np.asarray(energy, np.float64)[shower]
    sigma = model.relative_resolution(e_sh)
    gain = np.maximum(1.0 + sigma * rng.normal(0.0, 1.0, size=len(e_sh)), 0.0)
    x0 = model.x - half
    y0 = model.y - half
    _shower_kernel(
        event[shower], x[shower], y[shower], e_sh, gain, x0, y0, float(model.crystal_size), int(model.n),
        float(model.core_fraction), float(model.core_radius * model.moliere_radius),
        float(model.tail_radius * model.moliere_radius), truth, visible,
    )

    if np.any(mip):
        p = np.sqrt(np.asarray(px, np.float64)[mip] ** 2 + np.asarray(py, np.float64)[mip] ** 2 + np.asarray(pz, np.float64)[mip] ** 2)
        path = model.crystal_length * p / np.asarray(pz, np.float64)[mip]
        ix = np.clip(np.floor((x[mip] - x0) / model.crystal_size), 0, model.n - 1).astype(np.int64)
        iy = np.clip(np.floor((y[mip] - y0) / model.crystal_size), 0, model.n - 1).astype(np.int64)
        _mip_kernel(event[mip], iy * model.n + ix, model.mip_dedx * path, truth, visible)

    adc = digitise(visible + noise, model)
    return adc, truth
