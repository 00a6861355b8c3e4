"""Processor ``stubs``: CMS 2S stubs from ``digis`` (or from the DAQ's ``raw.stubs``).

Adjacent fired strips of one (module, sensor, row) form clusters (wider than ``max_cluster_width``
strips: dropped); each seed-sensor (sensor 0) cluster is correlated with the sensor-1 clusters of
the same module and row inside the bend window (centred on the bend of a track parallel to the beam
axis) and the best match makes one stub, placed in the aligned geometry of ``[geometry]``. With
``input = "daq"`` the stubs of the ``daq_stubs`` source are placed instead. Algorithm, record
layout, parameters and the measured errors: docs/reconstruction.md; kernels:
:mod:`muone.reconstruction.stubs`.
"""

from __future__ import annotations

from typing import Any, Literal

import awkward as ak
import numpy as np
from muone import hookimpl
from muone.errors import MuoneError
from muone.processor import Chunk, Context, Output, Params, Processor
from muone.reconstruction.columns import flat_fields, jagged_records
from muone.reconstruction.stubs import StubGeometry, build_stubs, digi_keys, place_stubs
from pydantic import Field, PositiveFloat

#: Intrinsic u errors [mm] by (u_reference, module class) for seed-cluster widths 1, 2, >= 3: the
#: residual RMS against sim_tracker truth in pilot2023 elastic events with pile-up (single tracks,
#: plus the merged clusters of nearby tracks; docs/reconstruction.md, "stubs").
DEFAULT_ERRORS = {
    ("midplane", "untilted"): (0.0245, 0.035, 0.078),
    ("midplane", "tilted"): (0.0085, 0.0078, 0.078),
    ("seed", "untilted"): (0.026, 0.035, 0.078),
    ("seed", "tilted"): (0.015, 0.0116, 0.078),
}

Errors3 = tuple[PositiveFloat, PositiveFloat, PositiveFloat]


class StubsParams(Params):
    input: Literal["digis", "daq"] = Field("digis", description="Build stubs from the digis of unpack (digis) or place the raw.stubs of the daq_stubs source (daq).")
    max_cluster_width: int = Field(4, ge=1, le=64, description="Widest cluster kept [strips]; wider clusters are dropped (in both sensors).")
    bend_window: float = Field(7.0, ge=0.0, le=64.0, description="Largest |bend - bend of a beam-parallel track| accepted [half-strips].")
    u_reference: Literal["midplane", "seed"] = Field("midplane", description="u at the module mid-plane from both clusters (midplane: seed centre + bend/2) or the seed-cluster centre (seed).")
    errors_untilted: Errors3 | None = Field(None, description="Intrinsic u error [mm] of stubs in untilted modules (u, v) for seed-cluster widths 1, 2, >= 3 (default: the calibration for u_reference).")
    errors_tilted: Errors3 | None = Field(None, description="Intrinsic u error [mm] of stubs in tilted modules (x, y) for seed-cluster widths 1, 2, >= 3 (default: the calibration for u_reference).")

    def error_table(self) -> np.ndarray:
        """(2, 3) error table [mm]: rows untilted, tilted; columns width 1, 2, >= 3."""
        return np.array([self.errors_untilted or DEFAULT_ERRORS[(self.u_reference, "untilted")],
                         self.errors_tilted or DEFAULT_ERRORS[(self.u_reference, "tilted")]], np.float64)


class Stubs(Processor):
    """Cluster strips and correlate the two sensors of each 2S module into stubs (or place DAQ stubs).

    ``stubs``: per event ``var * {module, station: int32, row: int8, position, bend: float32
    (half-strips), width: int8, u, v, x, y, z, error: float64 (mm)}`` (docs/reconstruction.md).
    Reads ``digis`` (``input = "digis"``) or ``raw.stubs`` (``input = "daq"``). Results:
    ``stubs`` (total) and, for DAQ input, ``daq_stubs_dropped`` (stubs of unknown modules or
    impossible positions).
    """

    name = "stubs"
    Params = StubsParams
    reads = ("digis",)
    writes = ("stubs",)

    @classmethod
    def reads_for(cls, params: StubsParams) -> tuple[str, ...]:
        return ("raw.stubs",) if params.input == "daq" else ("digis",)

    @classmethod
    def check(cls, params: StubsParams, steering: Any) -> list[tuple[str, str]]:
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

        self.geometry = StubGeometry.from_detector(load_geometry(context.geometry))
        self.errors = self.params.error_table()
        self._keys = np.empty(0, np.int32)

    def _scratch(self, n: int) -> np.ndarray:
        """A reused int32 buffer of ``n`` digi keys (kept between chunks: fresh pages cost more than
        the kernel on some machines)."""
        if len(self._keys) < n:
            self._keys = np.empty(int(n * 1.25) + 1024, np.int32)
        return self._keys[:n]

    def process(self, events: ak.Array, chunk: Chunk) -> Output:
        p = self.params
        g = self.geometry
        midplane = p.u_reference == "midplane"
        if p.input == "daq":
            cols, offsets = flat_fields(events["raw", "stubs"], {"module": np.int64, "sensor_half": np.int64, "position": np.float64, "bend": np.float64})
            out = {name: np.empty(len(cols["module"]), dtype) for name, dtype in STUB_FIELDS.items()}
            counts = np.zeros(len(offsets) - 1, np.int64)
            n = place_stubs(offsets, cols["module"], cols["sensor_half"], cols["position"], cols["bend"], midplane, g.mod_f, g.mod_i,
                            self.errors, *out.values(), counts)
            results = {"stubs": int(n), "daq_stubs_dropped": int(len(cols["module"]) - n)}
        else:
            cols, offsets = flat_fields(events["digis"], {"module": np.int32, "sensor": np.int8, "row": np.int8, "strip": np.int16, "flags": np.uint8})
            keys = self._scratch(len(cols["module"]))
            digi_keys(cols["module"], cols["sensor"], cols["row"], cols["strip"], cols["flags"], g.mod_i, keys)
            counts = np.zeros(len(offsets) - 1, np.int64)
            # a first guess of the capacity (numpy allocations, which may use huge pages), then the bound
            for capacity in (len(keys) // 2 + 16, len(keys)):
                out = {name: np.empty(capacity, dtype) for name, dtype in STUB_FIELDS.items()}
                n = build_stubs(offsets, keys, p.max_cluster_width, p.bend_window, midplane, g.mod_f, g.mod_i, self.errors,
                                *out.values(), counts)
                if n >= 0:
                    break
            results = {"stubs": int(n)}
        return Output(collections={"stubs": stub_records(out, counts, n)}, results=results)


#: The stub record: field -> dtype, in the order of docs/reconstruction.md.
STUB_FIELDS = {"module": np.int32, "station": np.int32, "row": np.int8, "position": np.float32, "bend": np.float32, "width": np.int8,
               "u": np.float64, "v": np.float64, "x": np.float64, "y": np.float64, "z": np.float64, "error": np.float64}


def stub_records(out: dict[str, np.ndarray], counts: np.ndarray, n: int) -> ak.Array:
    """The ``stubs`` collection from the kernel outputs (the first ``n`` entries)."""
    offsets = np.zeros(len(counts) + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    return jagged_records({name: a[:n] for name, a in out.items()}, offsets)


@hookimpl
def muone_plugins() -> list[type]:
    return [Stubs]
