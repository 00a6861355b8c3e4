"""Processor ``unpack``: raw strip words (``raw.strips``) -> ``digis`` and ``digis_bad``.

Every word becomes one digi (module, sensor, row, strip, flags), in the order of the words.
Impossible words (reserved bits set, a module the detector does not have, a strip or row beyond
the module's) and repeated words are kept, flagged and counted per event in ``digis_bad``; they
never stop the job and later stages use only digis with ``flags == 0``. Flag bits and record
layout: docs/reconstruction.md; kernel: :mod:`muone.reconstruction.unpack`.
"""

from __future__ import annotations

from typing import Any

import awkward as ak
import numpy as np
from muone import hookimpl
from muone.errors import MuoneError
from muone.processor import Chunk, Context, Output, Params, Processor
from muone.reconstruction.columns import flat_and_offsets, jagged_records
from muone.reconstruction.unpack import unpack_words


class UnpackParams(Params):
    """``unpack`` has no parameters: the detector (modules, strips, rows) comes from ``[geometry]``."""


class Unpack(Processor):
    """Decode raw strip words into digis (module, sensor, row, strip) with per-word quality flags.

    ``digis``: per event ``var * {module: int32, sensor: int8, row: int8, strip: int16, flags:
    uint8}``, one entry per word (flags: bit 0 reserved bits set, 1 unknown module, 2 strip or row
    out of range, 3 duplicate word; 0 is good). ``digis_bad``: int32 per event, the number of
    flagged words. Results: ``words`` and ``flagged_words`` (totals).
    """

    name = "unpack"
    Params = UnpackParams
    reads = ("raw.strips",)
    writes = ("digis", "digis_bad")

    @classmethod
    def check(cls, params: UnpackParams, steering: Any) -> list[tuple[str, str]]:
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

        arrays = load_geometry(context.geometry).module_arrays()
        self.n_strips = np.ascontiguousarray(arrays["n_strips"], np.int32)
        self.n_rows = np.ascontiguousarray(arrays["n_rows"], np.int32)

    def process(self, events: ak.Array, chunk: Chunk) -> Output:
        words, offsets = flat_and_offsets(events["raw", "strips"], np.uint32)
        digis, n_bad = unpack(words, offsets, self.n_strips, self.n_rows)
        return Output(
            collections={"digis": jagged_records(digis, offsets), "digis_bad": n_bad},
            results={"words": len(words), "flagged_words": int(n_bad.sum())},
        )


def unpack(words: np.ndarray, offsets: np.ndarray, n_strips: np.ndarray, n_rows: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Flat digi columns (module, sensor, row, strip, flags) and the per-event flagged counts of
    flat uint32 ``words`` with int64 ``offsets`` (n_events + 1)."""
    n = len(words)
    digis = {
        "module": np.empty(n, np.int32),
        "sensor": np.empty(n, np.int8),
        "row": np.empty(n, np.int8),
        "strip": np.empty(n, np.int16),
        "flags": np.empty(n, np.uint8),
    }
    n_bad = np.zeros(len(offsets) - 1, np.int32)
    unpack_words(offsets, np.ascontiguousarray(words, np.uint32), n_strips, n_rows, digis["module"], digis["sensor"],
                 digis["row"], digis["strip"], digis["flags"], n_bad)
    return digis, n_bad


@hookimpl
def muone_plugins() -> list[type]:
    return [Unpack]
