"""Processor ``sim_tracker``: the tracker simulation, from ``mc`` truth to raw strip words.

Every charged particle of ``mc.particles`` is traced as a straight line from its production
vertex downstream through the rest of its target, all later modules and targets, with multiple
scattering (Highland core plus a tail) at each layer; the incoming beam muon ``mc.beam`` is traced
upstream from the vertex through the modules before it. Each crossing of a 2S sensor inside the
strip area is a truth hit (``mc.sim_hits``) that fires strips (charge sharing from the crossing
angle, binary threshold, efficiency); noise strips are added; the fired strips of an event are
packed into ``raw.strips`` (:mod:`muone.rawformat`), sorted and unique. The simulated detector is
the geometry of ``[geometry]`` with its alignment conditions (the "true" detector), or with the
conditions of this processor's ``alignment`` file. Model and validation: docs/simulation.md.
"""

from __future__ import annotations

from typing import Any

import awkward as ak
import numpy as np
from muone import hookimpl
from muone.errors import MuoneError
from muone.processor import Chunk, Context, Output, Params, Processor
from muone.simulation.particles import is_charged
from muone.simulation.tracker import (
    HIT_FLOAT_FIELDS,
    HIT_INT_FIELDS,
    DetectorTables,
    hit_arrays,
    merge_words,
    noise_words,
    simulate_hits,
)
from pydantic import Field


class SimTrackerParams(Params):
    mcs_scale: float = Field(1.0, ge=0.0, le=10.0, description="Scale factor of every multiple-scattering width (the MCS systematic; 0 switches scattering off).")
    mcs_tail_fraction: float = Field(0.01, ge=0.0, le=0.5, description="Fraction of scatters drawn with the tail width (mcs_tail_scale x Highland) instead of the Gaussian core.")
    mcs_tail_scale: float = Field(3.0, ge=1.0, le=100.0, description="Width of the tail scatters in units of the Highland width.")
    strip_threshold: float = Field(0.25, ge=0.0, lt=1.0, description="A strip fires when it holds more than this fraction of the track's path (charge) in the sensor (binary readout).")
    hit_efficiency: float = Field(0.99, ge=0.0, le=1.0, description="Probability that a sensor crossing inside the strip area fires its strips (per sensor hit).")
    noise_occupancy: float = Field(1e-5, ge=0.0, le=0.01, description="Noise hits per strip per event (Poisson per event, uniform over all strips).")
    trace_beam: bool = Field(True, description="Trace the incoming beam muon (mc.beam) upstream from the vertex through the modules before it.")
    sim_hits: bool = Field(True, description="Write the truth hits mc.sim_hits (switch off to save memory in big jobs).")
    alignment: str = Field("", description="Alignment conditions of the simulated (true) detector; empty: those of [geometry] alignment.")


def _detector(geometry: Any, alignment: str) -> Any:
    from muone.geometry import load_geometry

    detector = load_geometry(geometry)
    if alignment:
        detector = detector.with_alignment(alignment)
    return detector


def _flat(array: ak.Array, field: str, dtype: Any = np.float64) -> np.ndarray:
    return np.ascontiguousarray(ak.to_numpy(ak.flatten(array[field], axis=1)), dtype=dtype)


def _column(record: ak.Array, field: str) -> np.ndarray:
    return np.ascontiguousarray(ak.to_numpy(record[field]), dtype=np.float64)


class SimTracker(Processor):
    """Tracker simulation: trace charged particles with multiple scattering, fire 2S strips, write raw.strips and mc.sim_hits.

    ``raw.strips``: per event the packed uint32 words of the fired strips (bits 0-9 strip, 10
    row, 11 sensor, 12-23 module; muone.rawformat), sorted and unique. ``mc.sim_hits``: per event
    the truth hits (particle index in mc.particles, -1 for the beam muon; module, sensor, row, true
    local u and v at the sensor mid-plane [mm], global x, y, z, slopes tx, ty at the sensor, first
    fired strip and number of fired strips, 0 when the hit was lost).
    """

    name = "sim_tracker"
    Params = SimTrackerParams
    reads = ("mc.particles", "mc.beam", "mc.vertex")
    writes = ("raw.strips", "mc.sim_hits")

    @classmethod
    def reads_for(cls, params: SimTrackerParams) -> tuple[str, ...]:
        return ("mc.particles", "mc.beam", "mc.vertex") if params.trace_beam else ("mc.particles",)

    @classmethod
    def writes_for(cls, params: SimTrackerParams) -> tuple[str, ...]:
        return ("raw.strips", "mc.sim_hits") if params.sim_hits else ("raw.strips",)

    @classmethod
    def check(cls, params: SimTrackerParams, steering: Any) -> list[tuple[str, str]]:
        from muone.geometry import load_geometry

        try:
            detector = load_geometry(steering.geometry)
        except MuoneError as exc:
            return [("", f"cannot load the [geometry]: {exc}")]
        if not detector.modules:
            return [("", "the [geometry] has no tracker modules: set [geometry] preset (station2022, pilot2023, muone40) or file")]
        if params.alignment:
            try:
                detector.with_alignment(params.alignment)
            except MuoneError as exc:
                return [("alignment", str(exc))]
        return []

    def setup(self, context: Context) -> None:
        self.detector = _detector(context.geometry, self.params.alignment)
        self.tables = DetectorTables.from_detector(self.detector)
        self._warm_up()

    def _warm_up(self) -> None:
        """Compile (or load from the numba cache) the kernels now, not inside the first chunk."""
        t = self.tables
        one = np.ones(1)
        hf, hz, hi = hit_arrays(2 * t.n_modules)
        simulate_hits(np.random.default_rng(0), np.array([0, 1], np.int64), 0 * one, 0 * one, one, 2 * one, 0 * one, 0 * one,
                      -1e9 * one, np.ones(1, bool), 0 * one, 0 * one, one, 2 * one, 0 * one, 0 * one, 0 * one,
                      np.zeros(1, bool), t.layer_kind, t.layer_index, t.mod_f, t.mod_i, t.tgt_f, 1.0, 0.5, 2.0, 0.25, 0.5,
                      True, hf, hz, hi, np.zeros(1, np.int64))
        words = np.zeros(4 * t.n_modules, np.uint32)
        merge_words(np.zeros(1, np.int64), hi[1], hi[2], hi[3], hi[4], hi[5], np.zeros(1, np.int64), words[:0], t.n_modules,
                    words, np.zeros(1, np.int64))

    def process(self, events: ak.Array, chunk: Chunk) -> Output:
        p = self.params
        t = self.tables
        rng = chunk.rng
        n_events = len(events)
        mc = events["mc"]
        parts = mc["particles"]
        counts = np.asarray(ak.to_numpy(ak.num(parts, axis=1)), np.int64)
        offsets = np.zeros(n_events + 1, np.int64)
        np.cumsum(counts, out=offsets[1:])
        px, py, pz, energy = (_flat(parts, f) for f in ("px", "py", "pz", "E"))
        vx, vy, vz = (_flat(parts, f) for f in ("vx", "vy", "vz"))
        pdg = _flat(parts, "pdg", np.int64)
        with np.errstate(invalid="ignore"):
            traced = is_charged(pdg) & (pz > 0) & (energy > 0)
            traced &= np.isfinite(px) & np.isfinite(py) & np.isfinite(vx) & np.isfinite(vy) & np.isfinite(vz) & np.isfinite(energy)

        fields = ak.fields(mc)
        if p.trace_beam and "beam" in fields and "vertex" in fields:
            beam, vertex = mc["beam"], mc["vertex"]
            bpx, bpy, bpz, be = (_column(beam, f) for f in ("px", "py", "pz", "E"))
            wx, wy, wz = (_column(vertex, f) for f in ("x", "y", "z"))
            with np.errstate(invalid="ignore"):
                beam_traced = (bpz > 0) & (be > 0) & np.isfinite(bpx) & np.isfinite(bpy) & np.isfinite(wx) & np.isfinite(wy) & np.isfinite(wz)
                # only when a module lies upstream of the vertex (centre z below it)
                beam_traced &= (t.n_modules > 0) & (wz > (t.module_z_sorted[0] if t.n_modules else np.inf))
        else:
            bpx = bpy = bpz = be = wx = wy = wz = np.zeros(n_events)
            beam_traced = np.zeros(n_events, bool)

        capacity = int(t.max_hits(vz[traced], +1).sum() + t.max_hits(wz[beam_traced], -1).sum())
        hf, hz, hi = hit_arrays(capacity, truth=p.sim_hits)
        hit_counts = np.zeros(n_events, np.int64)
        n_hits = simulate_hits(
            rng, offsets, px, py, pz, energy, vx, vy, vz, traced, bpx, bpy, bpz, be, wx, wy, wz, beam_traced,
            t.layer_kind, t.layer_index, t.mod_f, t.mod_i, t.tgt_f, p.mcs_scale, p.mcs_tail_fraction, p.mcs_tail_scale,
            p.strip_threshold, p.hit_efficiency, p.sim_hits, hf, hz, hi, hit_counts,
        )
        if n_hits < 0:  # cannot happen: the capacity is a strict bound
            raise RuntimeError(f"sim hit capacity {capacity} exceeded")
        ints = {name: hi[k, :n_hits] for k, name in enumerate(HIT_INT_FIELDS)}

        noise_counts, noise = noise_words(rng, n_events, p.noise_occupancy, t)
        words = np.empty(int(ints["size"].sum()) + len(noise), np.uint32)
        word_counts = np.zeros(n_events, np.int64)
        n_words = merge_words(hit_counts, ints["module"], ints["sensor"], ints["row"], ints["strip"], ints["size"],
                              noise_counts, noise, t.n_modules, words, word_counts)
        collections: dict[str, Any] = {"raw.strips": ak.unflatten(words[:n_words], word_counts)}
        if p.sim_hits:
            columns = {name: hf[k, :n_hits] for k, name in enumerate(HIT_FLOAT_FIELDS)}
            columns.update(ints, z=hz[:n_hits], sensor=ints["sensor"].astype(np.int8), row=ints["row"].astype(np.int8))
            order = ("particle", "module", "sensor", "row", "u", "v", "x", "y", "z", "tx", "ty", "strip", "size")
            record = {name: columns[name] for name in order}
            collections["mc.sim_hits"] = ak.unflatten(ak.zip(record), hit_counts)
        return Output(collections=collections)


@hookimpl
def muone_plugins() -> list[type]:
    return [SimTracker]
