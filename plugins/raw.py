"""Source ``raw``: muone raw ROOT files (the ``raw`` collection saved by an earlier job).

A simulation job that saves ``raw`` (``[job] save = ["run", "event", "bx", "raw", "mc"]``) writes
per-chunk ROOT files under ``events/`` (:mod:`muone.rootio`). This source reads them back, either

- ``input = "out/sim"``: the job's output directory, through its ``manifest.json`` (which holds the
  schema of the files), or
- ``files = ["a.root", "runs/*.root"]``: ROOT files or glob patterns. The schema of each file is
  taken, in this order, from a JSON string ``muone_schema`` (TObjString) stored in the file (see
  :func:`write_raw_file`), from the ``manifest.json`` of the job directory the file lies in
  (``<job>/events/chunk-*.root``), or rebuilt from the branch names for the known layout:
  ``run``, ``event``, ``bx``; ``raw_calo`` (fixed-size), ``raw_strips`` (jagged) and other
  ``raw_<field>`` numbers, fixed-size arrays, lists of numbers or lists of flat records; ``mc_*``
  numbers and arrays, ``mc_vertex_{x,y,z}`` (Vector3D), ``mc_beam_{px,py,pz,E}`` (Momentum4D),
  ``mc_particles_*`` (lists of Momentum4D) and other lists of flat records.

It writes ``run``, ``event``, ``bx`` and ``raw`` by default, and ``mc`` when listed in
``collections``. ``run``, ``event`` and ``bx`` missing from the files are made up: ``run`` from the
``run`` parameter, ``event`` the entry number counted over all inputs (from 0), ``bx`` = that
number.
"""

from __future__ import annotations

import glob
import json
import os
import re
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import awkward as ak
import numpy as np
from muone import hookimpl, outputs
from muone.errors import InputError, MuoneError
from muone.rootio import open_tree
from muone.processor import Chunk, ChunkSpec, Context, Params, Source, SourceInfo
from pydantic import Field, field_validator

#: Name of the TObjString holding the JSON schema in files written by :func:`write_raw_file`.
SCHEMA_KEY = "muone_schema"
IDENTIFIERS = ("run", "event", "bx")
DEFAULT_COLLECTIONS = ("run", "event", "bx", "raw")
Collection = Literal["run", "event", "bx", "raw", "mc"]

_KNOWN_MC_RECORDS = {"vertex": ("Vector3D", ("x", "y", "z")), "beam": ("Momentum4D", ("px", "py", "pz", "E"))}
_KNOWN_MC_LISTS = {"particles": "Momentum4D"}


class RawParams(Params):
    input: str = Field("", description="Output directory of an earlier muone job (holds manifest.json and events/); or give files.")
    files: list[str] = Field(default_factory=list, description="ROOT files or glob patterns (a string or a list), read in this order; or give input.")
    collections: list[Collection] = Field(default_factory=list, description="Collections to write: run, event, bx, raw, mc (default: run, event, bx, raw).")
    tree: str = Field("events", min_length=1, description="TTree name in the files (muone jobs write 'events').")
    run: int = Field(0, ge=0, description="Run number given to events whose files have no run branch.")

    @field_validator("files", mode="before")
    @classmethod
    def _one_file(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


# ---------------------------------------------------------------------------------------------
# inputs: files, schemas, entries
# ---------------------------------------------------------------------------------------------


def resolve_files(patterns: Sequence[str]) -> list[Path]:
    """Files named by ``patterns`` (paths or glob patterns; each pattern's matches sorted), in
    order; InputError for a missing file or a pattern that matches nothing."""
    paths: list[Path] = []
    for pattern in patterns:
        if glob.has_magic(pattern):
            matches = sorted(glob.glob(pattern, recursive=True))
            if not matches:
                raise InputError(f"{pattern}: no file matches this pattern")
            paths += [Path(m) for m in matches if Path(m).is_file()]
        else:
            path = Path(pattern)
            if not path.exists():
                raise InputError(f"{path}: no such file")
            if not path.is_file():
                raise InputError(f"{path}: not a file")
            paths.append(path)
    return paths


def _manifest(directory: str) -> dict[str, Any]:
    path = Path(directory) / "manifest.json"
    if not path.is_file():
        raise InputError(f"{directory}: not the output directory of a muone job (no manifest.json)")
    manifest = outputs.read_json(path)
    if manifest.get("status") != "complete":
        raise InputError(f"{path}: the job is not complete (status {manifest.get('status')!r}); finish it first")
    if "raw" not in (manifest.get("saved_collections") or []):
        raise InputError(f"{path}: the job did not save raw (saved: {manifest.get('saved_collections')}); add it to [job] save")
    return manifest


def _adjacent_manifest_schema(path: Path) -> dict[str, Any] | None:
    """The schema of ``path`` from the manifest of the job directory it lies in, if any."""
    job = path.resolve().parent.parent
    manifest_path = job / "manifest.json"
    if path.resolve().parent.name != "events" or not manifest_path.is_file():
        return None
    try:
        manifest = outputs.read_json(manifest_path)
    except Exception:  # noqa: BLE001 - a broken manifest is as good as none
        return None
    rel = f"events/{path.name}"
    for entry in manifest.get("chunks", []):
        if rel in entry.get("files", {}):
            return entry.get("events_schema") or manifest.get("events_schema")
    return None


def file_schema(path: Path, tree: str = "events") -> tuple[dict[str, Any], int, str]:
    """``(schema, entries, origin)`` of a raw file: the embedded JSON schema, the manifest of the
    job directory around it, or the schema rebuilt from its branches (``origin`` says which)."""
    file, obj = open_tree(path, tree)
    with file:
        entries = int(obj.num_entries)
        if SCHEMA_KEY in {k.split(";")[0] for k in file.keys()}:  # noqa: SIM118 - an uproot directory
            try:
                schema = json.loads(str(file[SCHEMA_KEY]))
            except Exception as exc:  # noqa: BLE001
                raise InputError(f"{path}: the {SCHEMA_KEY} string is not a JSON schema ({exc})") from None
            return schema, entries, "embedded"
        schema = _adjacent_manifest_schema(path)
        if schema is not None and schema.get("tree", tree) == tree:
            return schema, entries, "manifest"
        return schema_from_tree(obj, path, tree), entries, "branches"


# ---------------------------------------------------------------------------------------------
# schema from branch names (files without a schema)
# ---------------------------------------------------------------------------------------------


def _native(dtype: Any) -> str:
    return np.dtype(dtype).base.newbyteorder("=").name


def _branch_info(obj: Any, path: Path) -> list[dict[str, Any]]:
    """Name, kind (scalar/fixed/jagged), dtype, shape and counter of each branch, file order."""
    import uproot

    infos = []
    for name, branch in obj.items(filter_name=lambda n: "/" not in n and "." not in n):
        try:
            interp = branch.interpretation
        except Exception:  # noqa: BLE001
            interp = None
        info: dict[str, Any] = {"name": name}
        if isinstance(interp, uproot.AsJagged) and isinstance(interp.content, uproot.AsDtype) and not interp.content.inner_shape:
            leaves = branch.member("fLeaves")
            counter = leaves[0].member("fLeafCount") if leaves else None
            cname = counter.member("fName") if counter is not None else None
            if cname is None:
                m = re.search(r"\[(\w+)\]", branch.title or "")
                cname = m.group(1) if m else None
            info.update(kind="jagged", dtype=_native(interp.content.from_dtype), counter=cname)
        elif isinstance(interp, uproot.AsDtype):
            shape = list(interp.inner_shape)
            info.update(kind="fixed" if shape else "scalar", dtype=_native(interp.from_dtype), shape=shape)
        else:
            info.update(kind="other")
        infos.append(info)
    return infos


def _ours(name: str) -> bool:
    """A branch of the raw or mc collections (or a counter of one of their lists)."""
    return any(name.startswith(p) for p in ("raw_", "mc_", "nraw_", "nmc_"))


def _number(info: dict[str, Any]) -> dict[str, Any]:
    if info["kind"] == "fixed":
        return {"kind": "array", "dtype": info["dtype"], "shape": info["shape"], "branch": info["name"]}
    return {"kind": "number", "dtype": info["dtype"], "branch": info["name"]}


def schema_from_tree(obj: Any, path: Path, tree: str = "events") -> dict[str, Any]:
    """A :mod:`muone.rootio` schema rebuilt from the branch names of a muone raw file (module
    docstring: the known layout); InputError for branches it cannot interpret."""
    from muone import rootio

    infos = [i for i in _branch_info(obj, path) if i["name"] in IDENTIFIERS or _ours(i["name"])]
    by_name = {i["name"]: i for i in infos}
    groups: dict[str, list[dict[str, Any]]] = {}
    for info in infos:
        if info["kind"] == "jagged":
            if not info["counter"] or not info["counter"].startswith("n"):
                raise InputError(f"{path}: jagged branch {info['name']!r} has no muone counter branch; cannot rebuild the raw layout without a schema")
            groups.setdefault(info["counter"][1:], []).append(info)
    counters = {"n" + g for g in groups}
    for g in groups:
        if any(o != g and g.startswith(o + "_") for o in groups):
            raise InputError(f"{path}: branch group {g!r} is a list inside a list; such files need their schema (read the job directory with input =)")
    for name in by_name:
        if name.endswith("_valid") and name[: -len("_valid")] in by_name:
            raise InputError(f"{path}: branch {name!r} marks optional values; such files need their schema (read the job directory with input =)")

    collections: list[dict[str, Any]] = []
    for ident in IDENTIFIERS:
        info = by_name.get(ident)
        if info is not None and info["kind"] == "scalar":
            collections.append({"name": ident, "node": _number(info)})
    for prefix in ("raw", "mc"):
        node = _record_from_branches(prefix, infos, groups, counters, path)
        if node is not None:
            collections.append({"name": prefix, "node": node})
    group_table = [{"name": g, "counter": "n" + g, "branches": [b["name"] for b in bs]} for g, bs in groups.items()]
    used = {b for c in collections for b in _branches_of(c["node"])}
    return {
        "format": rootio.SCHEMA_FORMAT, "version": rootio.SCHEMA_VERSION, "tree": tree,
        "collections": collections, "groups": [g for g in group_table if "n" + g["name"] in used],
        "branches": [i["name"] for i in infos if i["name"] in used],
    }


def _branches_of(node: dict[str, Any]) -> list[str]:
    kind = node["kind"]
    if kind in ("number", "array"):
        return [node["branch"]]
    if kind == "record":
        return [b for f in node["fields"] for b in _branches_of(f["node"])]
    return [node["counts"], *_branches_of(node["content"])]


def _record_from_branches(prefix: str, infos: list[dict], groups: dict[str, list[dict]], counters: set[str], path: Path) -> dict[str, Any] | None:
    """The record node of collection ``prefix`` (``raw`` or ``mc``) from its branches."""
    start = prefix + "_"
    fields: dict[str, dict[str, Any]] = {}
    subrecords: dict[str, dict[str, dict[str, Any]]] = {}
    names = {i["name"] for i in infos}
    for info in infos:
        name = info["name"]
        if name in counters:
            if name[1:].startswith(start) and name[1:] in groups and name[1 + len(start):] not in fields:
                group = name[1:]
                fields[group[len(start):]] = _list_node(prefix, group, groups[group])
            continue
        if not name.startswith(start) or info["kind"] == "jagged":
            continue
        if info["kind"] == "other":
            raise InputError(f"{path}: branch {name!r} has a type the raw source cannot read without a schema")
        rest = name[len(start):]
        if prefix == "mc":
            sub = next((s for s, (_, comps) in _KNOWN_MC_RECORDS.items() if rest.startswith(s + "_") and all(f"{start}{s}_{c}" in names for c in comps) and rest[len(s) + 1:] in comps), None)
            if sub is not None:
                if sub not in fields:
                    fields[sub] = {"kind": "record", "record": _KNOWN_MC_RECORDS[sub][0], "fields": []}
                    subrecords[sub] = {}
                subrecords[sub][rest[len(sub) + 1:]] = _number(info)
                continue
        fields[rest] = _number(info)
    for sub, comps in subrecords.items():
        fields[sub]["fields"] = [{"name": c, "node": comps[c]} for c in _KNOWN_MC_RECORDS[sub][1]]
    if not fields:
        return None
    return {"kind": "record", "record": None, "fields": [{"name": k, "node": v} for k, v in fields.items()]}


def _list_node(prefix: str, group: str, branches: list[dict[str, Any]]) -> dict[str, Any]:
    """A ``var *`` list node of group ``group`` (plain numbers, or flat records)."""
    counter = "n" + group
    if len(branches) == 1 and branches[0]["name"] == group:
        content = {"kind": "number", "dtype": branches[0]["dtype"], "branch": group}
    else:
        sub = group[len(prefix) + 1:]
        record = _KNOWN_MC_LISTS.get(sub) if prefix == "mc" else None
        content = {
            "kind": "record", "record": record,
            "fields": [{"name": b["name"][len(group) + 1:], "node": {"kind": "number", "dtype": b["dtype"], "branch": b["name"]}} for b in branches],
        }
    return {"kind": "list", "group": group, "counts": counter, "content": content}


# ---------------------------------------------------------------------------------------------
# writing files that carry their schema
# ---------------------------------------------------------------------------------------------


def write_raw_file(path: str | Path, events: ak.Array, collections: Sequence[str] = DEFAULT_COLLECTIONS, tree: str = "events") -> dict[str, Any]:
    """Write ``collections`` of ``events`` like a muone job does (:func:`muone.rootio.write_events`)
    and store the schema as a JSON TObjString ``muone_schema`` in the same file, so the ``raw``
    source reads it exactly without a manifest. Atomic (temporary name, then rename). Returns
    the schema."""
    import uproot
    from muone import rootio

    path = Path(path)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
    try:
        schema = rootio.write_events(tmp, events, [c for c in collections if c in ak.fields(events)], tree=tree)
        with uproot.update(tmp) as file:
            file[SCHEMA_KEY] = json.dumps(schema)
        os.replace(tmp, path)
    except OSError as exc:
        raise MuoneError(f"cannot write {path}: {exc}") from exc
    finally:
        if tmp.exists():
            tmp.unlink()
    return schema


# ---------------------------------------------------------------------------------------------
# the source
# ---------------------------------------------------------------------------------------------


def _collection_names(schema: dict[str, Any]) -> list[str]:
    return [c["name"] for c in schema.get("collections", [])]


class RawSource(Source):
    """Raw data (raw.calo, raw.strips...) of muone ROOT files: a job's output directory or a list of files.

    One chunk per ``chunk_size`` entries of each file; ``job.events`` limits the total. Writes
    ``run``, ``event``, ``bx`` and ``raw`` (and ``mc`` when listed in ``collections``).
    """

    name = "raw"
    Params = RawParams
    writes = DEFAULT_COLLECTIONS  # with the default parameters; writes_for follows `collections`

    @classmethod
    def writes_for(cls, params: RawParams) -> tuple[str, ...]:
        return tuple(dict.fromkeys(params.collections or DEFAULT_COLLECTIONS))

    @classmethod
    def check(cls, params: RawParams, steering: Any) -> list[tuple[str, str]]:
        try:
            cls._inputs(params)
        except InputError as exc:
            return [("files" if params.files else "input", str(exc))]
        return []

    @staticmethod
    def _inputs(params: RawParams) -> list[dict[str, Any]]:
        """Per input file: path, schema, entries, where the schema came from."""
        if bool(params.input) == bool(params.files):
            raise InputError("give either input (a job output directory) or files (ROOT files or glob patterns), not both" if params.input else "give input (a job output directory) or files (ROOT files or glob patterns)")
        wanted = list(dict.fromkeys(params.collections or DEFAULT_COLLECTIONS))
        inputs = []
        if params.input:
            manifest = _manifest(params.input)
            for entry in manifest["chunks"]:
                files = [f for f in entry["files"] if f.startswith("events/")]
                if not files:
                    continue
                schema = entry.get("events_schema") or manifest["events_schema"]
                inputs.append({"file": str(Path(params.input) / files[0]), "schema": schema, "entries": int(entry["events_out"]), "origin": "manifest"})
        else:
            for path in resolve_files(params.files):
                schema, entries, origin = file_schema(path, params.tree)
                inputs.append({"file": str(path), "schema": schema, "entries": entries, "origin": origin})
        for item in inputs:
            present = _collection_names(item["schema"])
            missing = [c for c in wanted if c not in present and c not in IDENTIFIERS]
            if missing:
                raise InputError(f"{item['file']}: no {' or '.join(missing)} collection in the file (it holds: {', '.join(present) or 'nothing muone can read'})")
        return inputs

    def setup(self, context: Context) -> None:
        self.collections = list(dict.fromkeys(self.params.collections or DEFAULT_COLLECTIONS))
        self.inputs = self._inputs(self.params)

    def plan(self, context: Context) -> list[ChunkSpec]:
        size, limit = context.job.chunk_size, context.job.events
        specs: list[ChunkSpec] = []
        taken = 0
        first = 0
        for item in self.inputs:
            tree = self.params.tree if self.params.files else item["schema"].get("tree", "events")
            n = item["entries"]
            for start in range(0, n, size):
                stop = min(n, start + size)
                if limit is not None:
                    stop = min(stop, start + limit - taken)
                if stop <= start:
                    break
                data = {"file": item["file"], "schema": item["schema"], "start": start, "stop": stop, "first_event": first + start, "tree": tree}
                specs.append(ChunkSpec(len(specs), stop - start, data))
                taken += stop - start
            first += n
            if limit is not None and taken >= limit:
                break
        return specs

    def info(self) -> SourceInfo:
        what = f"job {self.params.input}" if self.params.input else f"{len(self.inputs)} file(s)"
        return SourceInfo(description=f"raw data of {what}")

    def read(self, spec: ChunkSpec, chunk: Chunk) -> ak.Array:
        from muone import rootio

        d = spec.data
        present = [c for c in self.collections if c in _collection_names(d["schema"])]
        events = rootio.read_events(d["file"], d["schema"], present, entry_start=d["start"], entry_stop=d["stop"], tree=d["tree"])
        n = len(events)
        if n != d["stop"] - d["start"]:
            raise InputError(f"{d['file']}: expected {d['stop'] - d['start']} entries from {d['start']}, read {n}")
        fields: dict[str, Any] = {}
        event_numbers = d["first_event"] + np.arange(n, dtype=np.int64)
        for name in self.collections:
            if name in present:
                fields[name] = events[name]
            elif name == "run":
                fields[name] = np.full(n, self.params.run, np.int64)
            elif name == "event" or name == "bx":
                fields[name] = event_numbers
        return ak.zip(fields, depth_limit=1)


@hookimpl
def muone_plugins() -> list[type]:
    return [RawSource]
