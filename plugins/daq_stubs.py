"""Source ``daq_stubs``: stub-level TTrees of the real MUonE test-run decode (PHYSICS.md section 8).

Assumed layout (the decode output of the 2022-2023 test runs): one TTree (default name
``cbmsim``, parameter ``tree``) with **one entry per stub** and one number per entry in each of
the branches

| branch | assumed type | meaning |
|---|---|---|
| ``Bx`` | integer (e.g. UShort_t/UInt_t) | bunch crossing of the stub |
| ``Link`` | integer (UShort_t) | readout link = module; mapped to the global module index by ``link_map`` |
| ``LocalX`` | integer or float | stub position along the sensor, in half-strips (``localx_units = "half_strips"``, default) or strips (``"strips"``: multiplied by 2) |
| ``LocalY`` | integer (0/1) | sensor half (strip row) |
| ``Bend`` | integer or float | stub bend, in half-strips (``bend_units``, default) or strips |
| ``SuperID`` | integer (UInt_t) | super-ID (orbit counter) of the stub |

Any integer or floating type is accepted; a branch with more than one number per entry (vectors,
arrays) is an error. An *event* is the set of stubs with the same ``(SuperID, Bx)`` in one file:
events are ordered by their first stub in the file, stubs inside an event keep their file order
(events never span files). The grouping is columnar (stable ``lexsort`` + boundaries + ``argsort``).

Per event the source writes ``run`` (parameter), ``event`` (running number over the inputs,
from 0), ``bx`` (the events' Bx) and ``raw.stubs``: ``var * {module: int32, sensor_half: int8,
position: float64 (half-strips), bend: float64 (half-strips), bx: int64, superid: int64}``.
Links missing from a non-empty ``link_map`` give ``module = -1``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import awkward as ak
import numpy as np
from muone import hookimpl
from muone.errors import InputError
from muone.rootio import open_tree
from muone.processor import Chunk, ChunkSpec, Context, Params, Source, SourceInfo
from pydantic import Field, field_validator

BRANCHES = ("Bx", "Link", "LocalX", "LocalY", "Bend", "SuperID")
Units = Literal["half_strips", "strips"]


class DaqStubsParams(Params):
    files: list[str] = Field(..., min_length=1, description="ROOT files or glob patterns (a string or a list) of the stub decode, read in this order.")
    tree: str = Field("cbmsim", min_length=1, description="Name of the stub TTree in the files.")
    localx_units: Units = Field("half_strips", description="Units of LocalX: half_strips (as written by the decode) or strips (converted to half-strips).")
    bend_units: Units = Field("half_strips", description="Units of Bend: half_strips or strips (converted to half-strips).")
    link_map: dict[int, int] = Field(default_factory=dict, description="Link -> global module index, e.g. { 0 = 6, 1 = 7 } (empty: module = Link); unmapped links give module -1.")
    run: int = Field(0, ge=0, description="Run number written to every event.")

    @field_validator("files", mode="before")
    @classmethod
    def _one_file(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


def _open(path: Path, tree: str) -> tuple[Any, Any]:
    """(file, tree) with every needed branch checked; InputError naming the file/tree/branch."""
    import uproot

    file, obj = open_tree(path, tree, hint="; set the tree parameter")
    names = set(obj.keys())
    missing = [b for b in BRANCHES if b not in names]
    if missing:
        file.close()
        raise InputError(f"{path}: tree {tree!r} has no branch {', '.join(map(repr, missing))} (found: {', '.join(sorted(names)) or 'none'})")
    for b in BRANCHES:
        interp = obj[b].interpretation
        if not isinstance(interp, uproot.AsDtype) or interp.inner_shape or np.dtype(interp.from_dtype).kind not in "iuf":
            file.close()
            raise InputError(f"{path}: branch {b!r} of tree {tree!r} is not one number per entry ({interp}); this source expects one stub per entry")
    return file, obj


def _read(path: Path, tree: str, branches: tuple[str, ...], start: int | None = None, stop: int | None = None) -> dict[str, np.ndarray]:
    file, obj = _open(path, tree)
    with file:
        try:
            arrays = obj.arrays(list(branches), entry_start=start, entry_stop=stop, library="np")
        except Exception as exc:  # noqa: BLE001 - corrupt or truncated data
            raise InputError(f"{path}: cannot read tree {tree!r} ({type(exc).__name__}: {exc})") from None
    return {k: np.asarray(v) for k, v in arrays.items()}


def group_stubs(superid: np.ndarray, bx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Events of stubs grouped by ``(superid, bx)``.

    Returns ``(order, counts, first)``: ``order`` the stub indices event by event (each event's
    stubs in file order), ``counts`` the stubs per event, ``first`` the index of each event's first
    stub; events are ordered by their first stub.
    """
    superid = np.asarray(superid, np.int64)
    bx = np.asarray(bx, np.int64)
    n = len(superid)
    if n == 0:
        empty = np.zeros(0, np.int64)
        return empty, empty, empty
    by_key = np.lexsort((np.arange(n), bx, superid))  # stable: file order inside a key
    ks, kb = superid[by_key], bx[by_key]
    new = np.empty(n, bool)
    new[0] = True
    new[1:] = (ks[1:] != ks[:-1]) | (kb[1:] != kb[:-1])
    group_of_sorted = np.cumsum(new) - 1
    first_of_group = by_key[new]  # first stub (in file order) of each key
    rank = np.empty(len(first_of_group), np.int64)
    rank[np.argsort(first_of_group, kind="stable")] = np.arange(len(first_of_group))
    event_of = np.empty(n, np.int64)
    event_of[by_key] = rank[group_of_sorted]
    order = np.argsort(event_of, kind="stable")
    counts = np.bincount(event_of, minlength=len(first_of_group)).astype(np.int64)
    return order, counts, np.sort(first_of_group)


class DaqStubsSource(Source):
    """Stubs of real MUonE test-run data (one TTree entry per stub), built into events by (SuperID, Bx).

    Writes ``run``, ``event``, ``bx`` and ``raw.stubs`` (module, sensor_half, position and bend in
    half-strips, bx, superid). One chunk per ``chunk_size`` events of each file; ``job.events``
    limits the total.
    """

    name = "daq_stubs"
    Params = DaqStubsParams
    writes = ("run", "event", "bx", "raw.stubs")

    @classmethod
    def check(cls, params: DaqStubsParams, steering: Any) -> list[tuple[str, str]]:
        from muone.plugins.raw import resolve_files

        try:
            for path in resolve_files(params.files):
                file, _ = _open(path, params.tree)
                file.close()
        except InputError as exc:
            return [("files", str(exc))]
        return []

    def setup(self, context: Context) -> None:
        from muone.plugins.raw import resolve_files

        self.paths = resolve_files(self.params.files)
        links = sorted(self.params.link_map)
        self._map_keys = np.array(links, np.int64)
        self._map_values = np.array([self.params.link_map[k] for k in links], np.int32)

    def plan(self, context: Context) -> list[ChunkSpec]:
        size, limit = context.job.chunk_size, context.job.events
        specs: list[ChunkSpec] = []
        first = 0
        taken = 0
        for path in self.paths:
            cols = _read(path, self.params.tree, ("SuperID", "Bx"))
            _, counts, _ = group_stubs(cols["SuperID"], cols["Bx"])
            n = len(counts)
            for start in range(0, n, size):
                stop = min(n, start + size)
                if limit is not None:
                    stop = min(stop, start + limit - taken)
                if stop <= start:
                    break
                specs.append(ChunkSpec(len(specs), stop - start, {"file": str(path), "start": start, "stop": stop, "first_event": first + start}))
                taken += stop - start
            first += n
            if limit is not None and taken >= limit:
                break
        return specs

    def info(self) -> SourceInfo:
        return SourceInfo(description=f"DAQ stubs of {len(self.paths)} file(s), tree {self.params.tree!r}")

    def modules(self, link: np.ndarray) -> np.ndarray:
        """Global module index of each link (identity without a link_map; -1 if unmapped)."""
        link = np.asarray(link, np.int64)
        if len(self._map_keys) == 0:
            return link.astype(np.int32)
        pos = np.clip(np.searchsorted(self._map_keys, link), 0, len(self._map_keys) - 1)
        found = self._map_keys[pos] == link
        return np.where(found, self._map_values[pos], -1).astype(np.int32)

    def read(self, spec: ChunkSpec, chunk: Chunk) -> ak.Array:
        d = spec.data
        path = Path(d["file"])
        tree = self.params.tree
        keys = _read(path, tree, ("SuperID", "Bx"))
        order, counts, _ = group_stubs(keys["SuperID"], keys["Bx"])
        offsets = np.concatenate([[0], np.cumsum(counts)])
        start, stop = d["start"], d["stop"]
        if stop > len(counts):
            raise InputError(f"{path}: has {len(counts)} events now, the job planned {stop}; the file changed")
        idx = order[offsets[start]:offsets[stop]]  # stub entries of these events, event by event
        lo, hi = (int(idx.min()), int(idx.max()) + 1) if len(idx) else (0, 0)
        cols = _read(path, tree, BRANCHES, lo, hi) if hi > lo else {b: np.zeros(0) for b in BRANCHES}
        local = idx - lo
        x_scale = 2.0 if self.params.localx_units == "strips" else 1.0
        b_scale = 2.0 if self.params.bend_units == "strips" else 1.0
        stubs = ak.zip(
            {
                "module": self.modules(cols["Link"][local]),
                "sensor_half": np.asarray(cols["LocalY"][local]).astype(np.int8),
                "position": np.asarray(cols["LocalX"][local], np.float64) * x_scale,
                "bend": np.asarray(cols["Bend"][local], np.float64) * b_scale,
                "bx": np.asarray(cols["Bx"][local]).astype(np.int64),
                "superid": np.asarray(cols["SuperID"][local]).astype(np.int64),
            }
        )
        n = stop - start
        per_event = counts[start:stop]
        first_stub = idx[np.concatenate([[0], np.cumsum(per_event)[:-1]])] if n else np.zeros(0, np.int64)
        return ak.zip(
            {
                "run": np.full(n, self.params.run, np.int64),
                "event": d["first_event"] + np.arange(n, dtype=np.int64),
                "bx": np.asarray(keys["Bx"])[first_stub].astype(np.int64),
                "raw": ak.zip({"stubs": ak.unflatten(stubs, per_event)}, depth_limit=1),
            },
            depth_limit=1,
        )


@hookimpl
def muone_plugins() -> list[type]:
    return [DaqStubsSource]

