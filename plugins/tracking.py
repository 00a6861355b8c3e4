"""Processor ``tracking``: straight-line tracks per station from ``stubs``.

Per event and station: x-view and y-view stub pairs are combined into 3D seeds that the u/v
(stereo) modules confirm (resolving which x projection belongs to which y projection), tracks with
one x or y stub missing are recovered from the stubs left over, and every candidate is fitted by
least squares with the full measurement covariance (intrinsic errors plus multiple scattering at a
momentum hypothesis from the elastic relation). Outliers are dropped, and candidates sharing
stubs are resolved by number of stubs and chi2. Algorithm, record layout, parameters and measured
performance: docs/reconstruction.md (section ``tracking``); kernels:
:mod:`muone.reconstruction.tracking`.
"""

from __future__ import annotations

from typing import Any, Literal

import awkward as ak
import numpy as np
from muone import hookimpl
from muone.errors import InputError, MuoneError
from muone.processor import Chunk, Context, Output, Params, Processor
from muone.reconstruction.tracking import (
    O_CHI2,
    O_COV,
    O_NDF,
    O_NSTUBS,
    O_PHYP,
    O_ROLE,
    O_STATION,
    O_ZREF,
    parameter_arrays,
    track_chunk,
)
from muone.reconstruction.tracking_geometry import TrackingGeometry
from pydantic import Field


class TrackingParams(Params):
    min_stubs: int = Field(5, ge=4, le=6, description="Fewest stubs on a track (of 2 x + 2 y + the u/v modules): 5 allows one missing stub (a missing x or y stub is recovered from the leftover stubs), 4 accepts x/y pairs without stereo confirmation (ambiguous with several tracks).")
    stereo_window: float = Field(5.0, gt=0.0, le=100.0, description="Half-width of the u/v confirmation window in standard deviations of the predicted stereo residual (stub and seed errors, multiple scattering at the seed's momentum hypothesis, window_floor).")
    window_floor: float = Field(0.02, ge=0.0, le=10.0, description="Added in quadrature to the predicted stereo residual [mm] (residual misalignment).")
    max_chi2_ndf: float = Field(10.0, gt=0.0, le=1e6, description="Largest chi2/ndf of a track; above it the worst stub is dropped while more than min_stubs remain, else the candidate is rejected.")
    max_shared: int = Field(1, ge=0, le=5, description="Most stubs of a candidate that may already be on better (accepted) tracks of the same station; more: dropped.")
    beam_energy: float = Field(160.0, gt=1.0, le=1000.0, description="Beam energy [GeV]: caps the momentum hypothesis and enters the elastic relation E_e(theta).")
    min_momentum: float = Field(0.5, gt=0.0, le=1000.0, description="Floor of the momentum hypothesis [GeV] (tracks at large angles).")
    incoming_momentum: Literal["beam", "elastic"] = Field("beam", description="Momentum hypothesis of tracks in stations without a target upstream of their modules: the beam energy (beam) or the elastic relation like outgoing tracks (elastic).")
    mcs_scale: float = Field(1.0, ge=0.0, le=10.0, description="Scale of the Highland widths in the multiple-scattering covariance (0: intrinsic errors only).")
    u_reference: Literal["midplane", "seed"] = Field("midplane", description="Where the stubs' u is measured: the module mid-plane (as the stubs processor's default u_reference) or the seed sensor.")
    max_slope: float = Field(0.15, gt=0.0, le=1.0, description="Largest |tx|, |ty| of a 2D candidate [rad].")
    row_margin: float = Field(1.0, ge=0.0, le=100.0, description="Tolerance [mm] of the check that a candidate crosses each of its stubs' strip rows (sensor halves).")
    max_candidates: int = Field(4096, ge=16, le=1_000_000, description="Most x pairs, y pairs and candidates per station and event (beyond: further ones are lost and counted in the result tracking_candidates_lost).")
    first_pass_momentum: float = Field(10.0, ge=0.0, le=1000.0, description="x/y combinations whose momentum hypothesis is at least this [GeV] are tried first (narrow windows); the others then only with the stubs left.")
    combination_search: Literal["all", "stereo"] = Field("all", description="Pass A tries every x/y combination (all), or only those a u/v stub points to (stereo): the same tracks, faster with many tracks per station.")
    tolerance: float = Field(1e-5, gt=0.0, le=1e-2, description="Gauss-Newton stops when the linearised prediction of every stub's u is right to this [mm] ...")
    momentum_tolerance: float = Field(1e-2, gt=0.0, le=1.0, description="... and the momentum hypothesis of the new slopes differs from the one of the covariance by less than this fraction.")


class Tracking(Processor):
    """Find and fit straight tracks per station from stubs (u/v ambiguity resolution, multiple-scattering-aware fit).

    ``tracks``: per event ``var * {station: int32, role: int8, z_ref, x, y, tx, ty: float64, cov:
    4 * 4 float64, chi2: float64, ndf, n_stubs: int32, stubs: var * int32, p_hyp: float64}``
    (docs/reconstruction.md). Results: ``tracks`` (total), ``tracking_candidates_lost`` and
    ``stubs_unknown_module``.
    """

    name = "tracking"
    Params = TrackingParams
    reads = ("stubs",)
    writes = ("tracks",)

    @classmethod
    def check(cls, params: TrackingParams, steering: Any) -> list[tuple[str, str]]:
        from muone.geometry import load_geometry

        try:
            detector = load_geometry(steering.geometry)
        except MuoneError as exc:
            return [("", f"cannot load the [geometry]: {exc}")]
        if not detector.modules:
            return [("", "the [geometry] has no tracker modules: set [geometry] preset (station2022, pilot2023, muone40) or file")]
        return []

    def setup(self, context: Context) -> None:
        from muone.geometry import load_geometry

        p = self.params
        self.geometry = TrackingGeometry.from_detector(load_geometry(context.geometry), p.u_reference)
        self.pf, self.pi = parameter_arrays(
            beam_energy=p.beam_energy, mcs_scale=p.mcs_scale, stereo_window=p.stereo_window, window_floor=p.window_floor,
            max_chi2_ndf=p.max_chi2_ndf, max_slope=p.max_slope, row_margin=p.row_margin, min_momentum=p.min_momentum,
            tolerance=p.tolerance, momentum_tolerance=p.momentum_tolerance, first_pass_momentum=p.first_pass_momentum, min_stubs=p.min_stubs, max_shared=p.max_shared,
            elastic_incoming=int(p.incoming_momentum == "elastic"), max_candidates=p.max_candidates,
            combination_search=int(p.combination_search == "stereo"),
        )

    def process(self, events: ak.Array, chunk: Chunk) -> Output:
        columns, offsets = stub_columns(events["stubs"])
        out = track_chunk(self.geometry, self.pf, self.pi, offsets, columns["module"], columns["row"], columns["u"], columns["error"])
        tracks = track_records(out)
        stats = out["stats"]
        results = {"tracks": len(out["f"]), "tracking_candidates_lost": int(stats[0]), "stubs_unknown_module": int(stats[1])}
        return Output(collections={"tracks": tracks}, results=results)


def stub_columns(stubs: ak.Array) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The flat ``module``, ``row``, ``u``, ``error`` columns and int64 offsets of the ``stubs``
    collection (zero-copy when it is a plain list of records)."""
    needed = ("module", "row", "u", "error")
    missing = [f for f in needed if f not in ak.fields(stubs)]
    if missing:
        raise InputError(f"tracking: the stubs collection lacks the field(s) {', '.join(missing)} (docs/reconstruction.md)")
    layout = ak.to_layout(stubs)
    if isinstance(layout, ak.contents.ListOffsetArray) and isinstance(layout.content, ak.contents.RecordArray):
        offsets = np.asarray(layout.offsets.data, np.int64)
        rec = layout.content
        cols = {}
        for f in needed:
            c = rec.content(f)
            if not isinstance(c, ak.contents.NumpyArray):
                break
            cols[f] = np.asarray(c.data)[offsets[0]:offsets[-1]]
        else:
            return cols, offsets - offsets[0]
    counts = np.asarray(ak.to_numpy(ak.num(stubs, axis=1)), np.int64)
    offsets = np.zeros(len(counts) + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    flat = ak.flatten(stubs, axis=1)
    return {f: np.asarray(ak.to_numpy(flat[f])) for f in needed}, offsets


def track_records(out: dict[str, np.ndarray]) -> ak.Array:
    """The ``tracks`` collection from the outputs of :func:`~muone.reconstruction.tracking.track_chunk`."""
    f, i, hits, counts = out["f"], out["i"], out["hits"], out["counts"]
    n = len(f)
    n_stubs = np.ascontiguousarray(i[:, O_NSTUBS])
    stub_offsets = np.zeros(n + 1, np.int64)
    np.cumsum(n_stubs, out=stub_offsets[1:])
    flat_hits = np.ascontiguousarray(hits[np.arange(hits.shape[1])[None, :] < n_stubs[:, None]], np.int32)
    cov = ak.contents.RegularArray(ak.contents.RegularArray(ak.contents.NumpyArray(np.ascontiguousarray(f[:, O_COV:O_COV + 16]).reshape(-1)), 4), 4, zeros_length=n)
    fields = {
        "station": ak.contents.NumpyArray(np.ascontiguousarray(i[:, O_STATION])),
        "role": ak.contents.NumpyArray(np.ascontiguousarray(i[:, O_ROLE]).astype(np.int8)),
        "z_ref": ak.contents.NumpyArray(np.ascontiguousarray(f[:, O_ZREF])),
        "x": ak.contents.NumpyArray(np.ascontiguousarray(f[:, 1])),
        "y": ak.contents.NumpyArray(np.ascontiguousarray(f[:, 2])),
        "tx": ak.contents.NumpyArray(np.ascontiguousarray(f[:, 3])),
        "ty": ak.contents.NumpyArray(np.ascontiguousarray(f[:, 4])),
        "cov": cov,
        "chi2": ak.contents.NumpyArray(np.ascontiguousarray(f[:, O_CHI2])),
        "ndf": ak.contents.NumpyArray(np.ascontiguousarray(i[:, O_NDF])),
        "n_stubs": ak.contents.NumpyArray(n_stubs),
        "stubs": ak.contents.ListOffsetArray(ak.index.Index64(stub_offsets), ak.contents.NumpyArray(flat_hits)),
        "p_hyp": ak.contents.NumpyArray(np.ascontiguousarray(f[:, O_PHYP])),
    }
    record = ak.contents.RecordArray(list(fields.values()), list(fields), length=n)
    offsets = np.zeros(len(counts) + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    return ak.Array(ak.contents.ListOffsetArray(ak.index.Index64(offsets), record))



@hookimpl
def muone_plugins() -> list[type]:
    return [Tracking]
