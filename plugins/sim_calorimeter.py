"""Processor ``sim_calorimeter``: fast simulation of the 5x5 PbWO4 calorimeter.

Reads ``mc.particles`` (every origin: hard process, pile-up, decays) and writes

- ``raw.calo``: per event the ADC counts of the n x n crystals, a regular ``n*n * int32`` array
  (cell ``iy * n + ix``), ``adc = round(pedestal + E_visible * adc_per_gev)`` clipped to
  ``[0, saturation]``; ``muone.simulation.calorimeter.adc_to_energy`` inverts it;
- ``mc.calo_truth``: per event the mean deposited energy per crystal [GeV], ``n*n * float64``
  (no resolution smearing, noise or digitisation).

The model (straight-line extrapolation without multiple scattering, two-component
Grindhammer-Peters lateral profile integrated analytically over each crystal, longitudinal
containment, lateral leakage lost, MIP deposit of muons, per-shower resolution, per-crystal noise)
is described in :mod:`muone.simulation.calorimeter` and docs/simulation.md. All random numbers come
from ``chunk.rng``.
"""

from __future__ import annotations

from typing import Any

import awkward as ak
import numpy as np
from muone import hookimpl
from muone.errors import InputError
from muone.processor import Chunk, Context, Output, Params, Processor
from muone.simulation.calorimeter import MIP_DEDX_PBWO4, CaloModel, simulate
from pydantic import Field, model_validator


class SimCalorimeterParams(Params):
    stochastic: float = Field(0.028, ge=0, description="Stochastic term a of sigma_E/E = a/sqrt(E) (+) b [sqrt(GeV)].")
    constant: float = Field(0.003, ge=0, description="Constant term b of sigma_E/E.")
    noise_per_crystal: float = Field(0.040, ge=0, description="Gaussian noise per crystal and event [GeV].")
    adc_per_gev: float = Field(1000.0, gt=0, description="ADC counts per GeV (default: 1 count = 1 MeV).")
    pedestal: int = Field(200, ge=0, description="ADC pedestal [counts], added to every crystal.")
    saturation: int = Field(262143, gt=0, description="Largest ADC count (2^18 - 1); larger values are clipped.")
    core_fraction: float = Field(0.8, ge=0, le=1, description="Fraction p of the core component of the lateral profile.")
    core_radius: float = Field(0.15, gt=0, description="Core radius R_C of the lateral profile [Moliere radii].")
    tail_radius: float = Field(0.84, gt=0, description="Tail radius R_T of the lateral profile [Moliere radii].")
    moliere_radius: float | None = Field(None, gt=0, description="Moliere radius [mm] (default: the geometry's calorimeter, 20 mm for PbWO4).")
    mip_dedx: float = Field(MIP_DEDX_PBWO4, ge=0, description="Muon energy loss in the crystals [GeV/mm] (PbWO4 minimum ionising: 10.2 MeV/cm).")

    @model_validator(mode="after")
    def _adc_range(self) -> SimCalorimeterParams:
        if self.saturation <= self.pedestal:
            raise ValueError(f"saturation ({self.saturation}) must be above the pedestal ({self.pedestal})")
        return self


def _calorimeter(geometry: Any, base_dir: Any = None) -> Any:
    from muone.geometry import load_geometry

    cal = load_geometry(geometry, base_dir).calorimeter
    if cal is None:
        raise InputError("the geometry has no calorimeter: use a preset (station2022, pilot2023, muone40) or a description with a [calorimeter] table")
    return cal


class SimCalorimeter(Processor):
    """Fast calorimeter simulation: showers of e+- and photons, MIP deposits of muons, resolution, noise and ADC.

    Writes ``raw.calo`` (n*n int32 ADC counts, 1 MeV/count and a 200-count pedestal by default)
    and ``mc.calo_truth`` (n*n float64 mean deposits in GeV).
    """

    name = "sim_calorimeter"
    Params = SimCalorimeterParams
    reads = ("mc.particles",)
    writes = ("raw.calo", "mc.calo_truth")

    @classmethod
    def check(cls, params: SimCalorimeterParams, steering: Any) -> list[tuple[str, str]]:
        base = steering.file.parent if getattr(steering, "file", None) else None
        try:
            _calorimeter(steering.geometry, base)
        except InputError as exc:
            return [("", str(exc))]
        except Exception as exc:  # noqa: BLE001 - any geometry problem is reported by name
            return [("", f"cannot load the geometry: {exc}")]
        return []

    def setup(self, context: Context) -> None:
        base = context.steering_file.parent if context.steering_file else None
        cal = _calorimeter(context.geometry, base)
        p = self.params
        self.model = CaloModel(
            z=cal.z, x=cal.x, y=cal.y, crystal_size=cal.crystal_size, n=cal.n,
            crystal_length=cal.crystal_length, moliere_radius=p.moliere_radius or cal.moliere_radius,
            core_fraction=p.core_fraction, core_radius=p.core_radius, tail_radius=p.tail_radius,
            stochastic=p.stochastic, constant=p.constant, noise_per_crystal=p.noise_per_crystal,
            mip_dedx=p.mip_dedx, adc_per_gev=p.adc_per_gev, pedestal=p.pedestal, saturation=p.saturation,
        )

    def process(self, events: ak.Array, chunk: Chunk) -> Output:
        adc, truth = simulate_events(self.model, events, chunk.rng)
        return Output(collections={"raw.calo": adc, "mc.calo_truth": truth})


def simulate_events(model: CaloModel, events: ak.Array, rng: np.random.Generator) -> tuple[ak.Array, ak.Array]:
    """``raw.calo`` and ``mc.calo_truth`` (regular ``n*n`` arrays) of ``events`` (needs
    ``mc.particles``)."""
    particles = events.mc.particles
    counts = ak.to_numpy(ak.num(particles, axis=1)).astype(np.int64)
    flat = ak.flatten(particles, axis=1)
    col = {k: ak.to_numpy(flat[k]) for k in ("pdg", "px", "py", "pz", "E", "vx", "vy", "vz")}
    event = np.repeat(np.arange(len(events), dtype=np.int64), counts)
    adc, truth = simulate(model, rng, len(events), event, col["pdg"], col["px"], col["py"], col["pz"], col["E"], col["vx"], col["vy"], col["vz"])
    return ak.Array(adc), ak.Array(truth)


@hookimpl
def muone_plugins() -> list[type]:
    return [SimCalorimeter]
