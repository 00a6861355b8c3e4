"""Processor ``calo_clustering``: crystal ADC counts (``raw.calo``) -> ``calo_clusters``.

ADC counts become energies with the calibration of ``sim_calorimeter`` (by default the same ADC
counts per GeV and pedestal), local maxima above ``seed_threshold`` seed clusters of
``cluster_size x cluster_size`` crystals (a crystal in two windows goes to the more energetic
seed), crystals above ``cell_threshold`` are summed, and the position on the front face is the
log-weighted (or linear) centre of gravity. Algorithm, parameters and measured performance:
docs/reconstruction.md; kernel: :mod:`muone.reconstruction.calorimeter`.
"""

from __future__ import annotations

from typing import Any, Literal

import awkward as ak
import numpy as np
from muone import hookimpl
from muone.errors import InputError, MuoneError
from muone.plugins.sim_calorimeter import SimCalorimeterParams
from muone.processor import Chunk, Context, Output, Params, Processor
from muone.reconstruction.calorimeter import (
    cluster_crystals,
    max_seeds,
    window_containment,
)
from muone.reconstruction.columns import jagged_records, regular_matrix
from pydantic import Field, field_validator

_SIM = SimCalorimeterParams.model_fields


class CaloClusteringParams(Params):
    adc_per_gev: float = Field(_SIM["adc_per_gev"].default, gt=0, description="ADC counts per GeV (default: the sim_calorimeter default).")
    pedestal: float = Field(float(_SIM["pedestal"].default), ge=0, description="ADC pedestal [counts] (default: the sim_calorimeter default).")
    seed_threshold: float = Field(0.35, ge=0, description="Smallest seed energy [GeV]: a seed is a local maximum above it (0.35: a muon's 0.22 GeV MIP deposit + 3 sigma of noise).")
    cell_threshold: float = Field(0.04, ge=0, description="Crystals of a cluster must have more than this energy [GeV] (0.04: 1 sigma of noise).")
    cluster_size: int = Field(3, ge=1, le=15, description="Cluster window side in crystals (odd), centred on the seed.")
    position: Literal["log", "linear"] = Field("log", description="Position weights: log (max(0, log_w0 + ln(E_i/E))) or linear (E_i).")
    log_w0: float = Field(4.0, gt=0, le=20, description="Cut-off w0 of the logarithmic weights.")
    energy_scale: float | None = Field(None, gt=0, description="Factor applied to the summed energy (lateral leakage correction); default: 1 / the mean window containment of the shower profile (1.0292 for 3 x 3 crystals of 28.5 mm).")

    @field_validator("cluster_size")
    @classmethod
    def _odd(cls, value: int) -> int:
        if value % 2 != 1:
            raise ValueError(f"must be odd (the window is centred on the seed), got {value}")
        return value


class CaloClustering(Processor):
    """Cluster the calorimeter crystals around local maxima: energy, front-face position, size and seed per cluster.

    ``calo_clusters``: per event ``var * {energy, x, y: float64 (GeV, mm), n_cells, seed: int32}``,
    in decreasing seed energy (docs/reconstruction.md). Results: ``calo_clusters`` (total).
    """

    name = "calo_clustering"
    Params = CaloClusteringParams
    reads = ("raw.calo",)
    writes = ("calo_clusters",)

    @classmethod
    def check(cls, params: CaloClusteringParams, steering: Any) -> list[tuple[str, str]]:
        from muone.geometry import load_geometry

        base = steering.file.parent if getattr(steering, "file", None) else None
        try:
            cal = load_geometry(steering.geometry, base).calorimeter
        except MuoneError as exc:
            return [("", f"cannot load the [geometry]: {exc}")]
        if cal is None:
            return [("", "the [geometry] has no calorimeter: use a preset (station2022, pilot2023, muone40) or a description with a [calorimeter] table")]
        return []

    def setup(self, context: Context) -> None:
        from muone.geometry import load_geometry

        base = context.steering_file.parent if context.steering_file else None
        cal = load_geometry(context.geometry, base).calorimeter
        if cal is None:
            raise InputError("calo_clustering: the geometry has no calorimeter")
        self.n = cal.n
        p = self.params
        if p.energy_scale is None:
            profile = {k: _SIM[k].default for k in ("core_fraction", "core_radius", "tail_radius")}
            rm = cal.moliere_radius
            self.energy_scale = 1.0 / window_containment(p.cluster_size, cal.crystal_size, profile["core_fraction"],
                                                         profile["core_radius"] * rm, profile["tail_radius"] * rm)
        else:
            self.energy_scale = p.energy_scale
        x, y = cal.cell_centre(np.arange(cal.n_cells))
        self.cell_x = np.ascontiguousarray(x, np.float64)
        self.cell_y = np.ascontiguousarray(y, np.float64)

    def process(self, events: ak.Array, chunk: Chunk) -> Output:
        adc = regular_matrix(events["raw", "calo"], self.n * self.n, "raw.calo")
        clusters, counts = cluster(adc, self.n, self.cell_x, self.cell_y, self.params, self.energy_scale)
        offsets = np.zeros(len(counts) + 1, np.int64)
        np.cumsum(counts, out=offsets[1:])
        return Output(collections={"calo_clusters": jagged_records(clusters, offsets)}, results={"calo_clusters": int(offsets[-1])})


def cluster(adc: np.ndarray, n: int, cell_x: np.ndarray, cell_y: np.ndarray, params: CaloClusteringParams,
            energy_scale: float = 1.0) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Flat cluster columns (energy, x, y, n_cells, seed) and clusters per event of an
    (n_events, n*n) ADC matrix."""
    p = params
    n_events = adc.shape[0]
    if adc.dtype.kind not in "iu":
        adc = adc.astype(np.int64)
    cap = n_events * max_seeds(n)
    energy, x, y = np.empty(cap), np.empty(cap), np.empty(cap)
    n_cells, seed = np.empty(cap, np.int32), np.empty(cap, np.int32)
    counts = np.zeros(n_events, np.int64)
    log_w0 = p.log_w0 if p.position == "log" else 0.0
    total = cluster_crystals(adc, n, float(p.pedestal), float(p.adc_per_gev), p.seed_threshold, p.cell_threshold, p.cluster_size,
                             log_w0, energy_scale, cell_x, cell_y, energy, x, y, n_cells, seed, counts)
    cols = {"energy": energy[:total], "x": x[:total], "y": y[:total], "n_cells": n_cells[:total], "seed": seed[:total]}
    return cols, counts


@hookimpl
def muone_plugins() -> list[type]:
    return [CaloClustering]
