"""The muon beam of the generators (PHYSICS.md section 7): energy (Gaussian spread or a measured
profile), divergence, spot, and the Poisson number of pile-up muons per bunch crossing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import Field

from muone.errors import InputError
from muone.physics.constants import M_MU
from muone.processor import Params

#: Gaussian beam energies are truncated at this many standard deviations (documented; the
#: generators' envelopes are built for the largest energy).
ENERGY_TRUNCATION_SIGMAS = 6.0


class GeneratorParams(Params):
    """Beam and pile-up parameters shared by every generator source."""

    beam_energy: float = Field(160.0, gt=1.0, le=1000.0, description="Mean beam energy [GeV].")
    beam_energy_spread: float = Field(0.0375, ge=0, lt=0.15, description="Relative Gaussian RMS of the beam energy (truncated at 6 sigma).")
    beam_profile: str = Field("", description="Beam-energy profile file (two columns: energy [GeV], relative weight; piecewise constant between bin centres); replaces the Gaussian spread.")
    beam_divergence: float = Field(4e-4, ge=0, le=0.01, description="Gaussian RMS of the beam slope per plane [rad].")
    beam_spot_size: float = Field(20.0, ge=0, le=500, description="Gaussian RMS of the beam position per plane [mm].")
    beam_z_start: float = Field(-1000.0, description="z where pile-up beam muons start [mm] (upstream of the detector).")
    pileup_mean: float = Field(1.25, ge=0, le=50, description="Mean number of other, non-interacting beam muons per event (Poisson; 0 disables).")
    run: int = Field(1, ge=0, description="Run number written to every event.")


class BeamModel:
    """Samples beam muons: energies, directions and positions.

    Energies follow a Gaussian (mean ``beam_energy``, relative RMS ``beam_energy_spread``,
    truncated at 6 sigma) or the measured profile in ``beam_profile``: a text file of lines
    ``energy weight`` (GeV, arbitrary units) with increasing energies, sampled as a piecewise
    constant density on bins centred on the given energies.
    """

    def __init__(self, params: GeneratorParams) -> None:
        self.params = params
        self.profile = _read_profile(Path(params.beam_profile)) if params.beam_profile else None

    @property
    def energy_range(self) -> tuple[float, float]:
        """Smallest and largest energy the model can produce [GeV]."""
        if self.profile is not None:
            edges, _ = self.profile
            return float(edges[0]), float(edges[-1])
        p = self.params
        half = ENERGY_TRUNCATION_SIGMAS * p.beam_energy_spread * p.beam_energy
        return p.beam_energy - half, p.beam_energy + half

    def energy_nodes(self, n: int = 24) -> tuple[np.ndarray, np.ndarray]:
        """Quadrature nodes and weights over the beam-energy distribution (Gauss-Hermite for the
        Gaussian, midpoints for a profile): for averaging a smooth function such as sigma(E)."""
        if self.profile is not None:
            edges, cdf = self.profile
            return 0.5 * (edges[1:] + edges[:-1]), np.diff(cdf)
        p = self.params
        if p.beam_energy_spread == 0:
            return np.array([p.beam_energy]), np.array([1.0])
        x, w = np.polynomial.hermite_e.hermegauss(n)
        return p.beam_energy * (1 + p.beam_energy_spread * x), w / w.sum()

    def energies(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` beam energies [GeV]."""
        if self.profile is not None:
            edges, cdf = self.profile
            u = rng.random(n)
            i = np.clip(np.searchsorted(cdf, u, side="right") - 1, 0, len(edges) - 2)
            frac = (u - cdf[i]) / np.maximum(cdf[i + 1] - cdf[i], 1e-300)
            return edges[i] + frac * (edges[i + 1] - edges[i])
        p = self.params
        z = rng.standard_normal(n)
        np.clip(z, -ENERGY_TRUNCATION_SIGMAS, ENERGY_TRUNCATION_SIGMAS, out=z)
        return p.beam_energy * (1.0 + p.beam_energy_spread * z)

    def slopes(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Beam slopes dx/dz, dy/dz [rad] (Gaussian divergence per plane)."""
        d = self.params.beam_divergence
        return d * rng.standard_normal(n), d * rng.standard_normal(n)

    def spots(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Transverse positions x, y [mm] (Gaussian spot per plane)."""
        s = self.params.beam_spot_size
        return s * rng.standard_normal(n), s * rng.standard_normal(n)

    def muons(self, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
        """``n`` complete beam mu+: momenta px, py, pz, E [GeV] and direction nx, ny, nz."""
        energy = self.energies(rng, n)
        tx, ty = self.slopes(rng, n)
        return momentum_along(energy, tx, ty)

    def pileup(self, rng: np.random.Generator, n_events: int, minimum: int = 0) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Pile-up: per-event Poisson(pileup_mean) counts (conditioned on >= ``minimum``) and the
        flat arrays of those muons (momenta, and start position vx, vy, vz = beam_z_start)."""
        counts = poisson_at_least(rng, self.params.pileup_mean, minimum, n_events)
        total = int(counts.sum())
        mu = self.muons(rng, total)
        x, y = self.spots(rng, total)
        mu.update(vx=x, vy=y, vz=np.full(total, self.params.beam_z_start))
        return counts, mu


def poisson_at_least(rng: np.random.Generator, mean: float, minimum: int, n: int) -> np.ndarray:
    """``n`` Poisson(mean) counts conditioned on count >= minimum (inverse-CDF sampling of the
    truncated distribution, no rejection loop)."""
    if minimum == 0:
        return rng.poisson(mean, n) if mean > 0 else np.zeros(n, np.int64)
    if mean <= 0:
        raise ValueError(f"a mean of {mean} cannot give at least {minimum} muons")
    from scipy.stats import poisson

    lo = poisson.cdf(minimum - 1, mean)
    u = lo + (1.0 - lo) * rng.random(n)
    return np.maximum(poisson.ppf(u, mean).astype(np.int64), minimum)


def momentum_along(energy: np.ndarray, tx: np.ndarray, ty: np.ndarray, mass: float = M_MU) -> dict[str, np.ndarray]:
    """Four-momenta [GeV] of particles of ``mass`` and ``energy`` with slopes tx, ty [rad], plus the
    unit direction (nx, ny, nz)."""
    momentum = np.sqrt(np.maximum(energy * energy - mass * mass, 0.0))
    norm = 1.0 / np.sqrt(1.0 + tx * tx + ty * ty)
    nx, ny, nz = tx * norm, ty * norm, norm
    return {"px": momentum * nx, "py": momentum * ny, "pz": momentum * nz, "E": energy, "p": momentum, "nx": nx, "ny": ny, "nz": nz}


def _read_profile(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Bin edges and CDF at the edges of a beam-energy profile file."""
    try:
        data = np.loadtxt(path, ndmin=2, comments="#")
    except OSError as exc:
        raise InputError(f"beam profile {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise InputError(f"beam profile {path}: not two numeric columns ({exc})") from None
    if data.shape[1] != 2 or len(data) < 2:
        raise InputError(f"beam profile {path}: expected at least two lines of 'energy weight'")
    energy, weight = data[:, 0], data[:, 1]
    if np.any(np.diff(energy) <= 0) or np.any(weight < 0) or weight.sum() <= 0 or energy[0] <= M_MU:
        raise InputError(f"beam profile {path}: energies must increase (above m_mu) and weights be >= 0 with a positive sum")
    mid = 0.5 * (energy[1:] + energy[:-1])
    edges = np.concatenate([[energy[0] - (mid[0] - energy[0])], mid, [energy[-1] + (energy[-1] - mid[-1])]])
    cdf = np.concatenate([[0.0], np.cumsum(weight)]) / weight.sum()
    return edges, cdf
