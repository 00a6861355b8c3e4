"""Write collections of the event record to ROOT TTrees and read them back exactly.

Used for the per-chunk files under ``events/`` of a job (DESIGN.md "Outputs") and by the
``events`` source that reads an earlier job's output. Files are plain TTrees written with uproot,
so ROOT, uproot or any other reader sees ordinary branches; a JSON-serialisable *schema* (returned
by :func:`write_events`, stored in the manifest) says how to rebuild the awkward structure.

Branches
--------
Branch names are the field path joined with ``_`` (``mc.beam.px`` -> ``mc_beam_px``), made unique
by appending ``_1``, ``_2``... on a clash.

- per-event numbers and booleans: one scalar branch each (``run``, ``mc_t``, ``sel_elastic``);
  records (nested too) are flattened into one branch per number;
- fixed-size arrays of numbers per event: one fixed-size branch (``name[3]`` in ROOT terms);
- a ``var *`` list (of numbers, of records, of records with nested records...) is a *jagged
  group*: its entries share one counter branch ``n<group>`` (int32, entries per event) and each
  number inside is a jagged branch ``<group>_<field path>`` (a list of plain numbers is the single
  jagged branch ``<group>``). This is what uproot writes for an ``ak.zip`` of jagged fields.
- a list inside a list (``var * var * x``) or a fixed-size array inside a list or of records adds
  a jagged branch ``<group>_<field>_n`` with the lengths of the inner lists in the outer group, and
  a new jagged group for the inner entries (concatenated per event).
- option types (values that may be None) add a boolean branch ``<path>_valid`` (same jaggedness);
  the value branches hold NaN (floats), -1 (signed integers), 0 (unsigned integers) or False
  (booleans) where the value is None, and a list that is None is written empty. Reading restores
  the None exactly (as an awkward IndexedOptionArray, the usual layout of ``?`` types).

Unsupported (MuoneError naming the path and type): strings, unions, lists of unknown type
(``var * unknown``), complex numbers, dates and field names that are not ``[A-Za-z0-9_]+``.

Schema
------
``{"format": "muone.rootio", "version": 1, "tree": "events", "collections": [{"name": ...,
"node": NODE}, ...], "groups": [{"name": G, "counter": "nG", "branches": [...]}, ...],
"branches": [all branch names in file order]}`` where NODE is one of

- ``{"kind": "number", "dtype": "float64", "branch": B}``
- ``{"kind": "array", "dtype": "int16", "shape": [3, 2], "branch": B}`` (fixed-size branch)
- ``{"kind": "record", "record": "Momentum4D" | None, "fields": [{"name": F, "node": NODE}]}``
  (``"tuple": true`` for tuples)
- ``{"kind": "list", "group": G, "counts": B, "content": NODE}`` (``counts`` is the counter
  ``nG`` for a list per event, the inner-length branch for a list inside a list)
- ``{"kind": "regular", "size": K, "group": G, "counts": B, "content": NODE}`` (fixed-size
  dimension stored as a jagged group)
- ``{"kind": "option", "valid": B, "content": NODE}``

Any node may carry ``"parameters"`` (awkward parameters other than ``__record__``). The schema
depends only on the types, not on the number of events, so all chunks of a job share it.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import uproot
import vector

from muone.errors import InputError, MuoneError

__all__ = ["SCHEMA_FORMAT", "SCHEMA_VERSION", "num_entries", "read_events", "write_events"]

SCHEMA_FORMAT = "muone.rootio"
SCHEMA_VERSION = 1

_DTYPES = frozenset(
    "bool int8 int16 int32 int64 uint8 uint16 uint32 uint64 float32 float64".split()
)
_FIELD_NAME = re.compile(r"^[A-Za-z0-9_]+$")
_C = ak.contents


def _counter_name(counted: str) -> str:
    """Name of the counter branch of jagged group ``counted`` (uproot's default)."""
    return "n" + counted


def _field_name(outer: str, inner: str) -> str:
    """Name of the branch of field ``inner`` of jagged group ``outer`` (uproot's default)."""
    return inner if outer == "" else outer + "_" + inner


class _Unsupported(Exception):
    """A structure that cannot be written; carries the reason."""


# ---------------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------------


@dataclass
class _Group:
    """A jagged group being written: entries per event and flat values of each field."""

    name: str
    counts: np.ndarray  # entries per event
    plain: bool  # a list of plain numbers: one branch named like the group
    fields: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class _Ctx:
    """Where a layout lives: per event (group None) or flat inside a jagged group.

    ``relpath`` is the field path from the event record (per event) or from the group's entries.
    """

    length: int
    abspath: tuple[str, ...]
    relpath: tuple[str, ...]
    group: _Group | None = None

    def child(self, name: str) -> _Ctx:
        """Context of field ``name`` of a record in this context."""
        return _Ctx(self.length, (*self.abspath, name), (*self.relpath, name), self.group)


def _fill_value(dtype: np.dtype) -> Any:
    """Value written where an option is None: NaN, -1, 0 (unsigned) or False."""
    if dtype.kind == "f":
        return np.nan
    if dtype.kind == "i":
        return -1
    return 0 if dtype.kind == "u" else False


def _normalise(layout: ak.contents.Content) -> ak.contents.Content:
    """Resolve layout nodes that do not change the type (IndexedArray, ListArray)."""
    if isinstance(layout, _C.IndexedArray):
        return _normalise(layout.project())
    if isinstance(layout, _C.ListArray):
        return layout.to_ListOffsetArray64(True)
    if isinstance(layout, _C.ListOffsetArray):
        return layout.to_ListOffsetArray64(True)
    return layout


def _json_parameters(layout: ak.contents.Content, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    """Awkward parameters of ``layout`` (minus ``drop``), checked to be JSON-serialisable."""
    params = {k: v for k, v in layout.parameters.items() if k not in drop}
    if params.get("__array__") in ("string", "bytestring", "char", "byte"):
        raise _Unsupported("strings cannot be written")
    try:
        json.dumps(params)
    except (TypeError, ValueError) as exc:
        raise _Unsupported(f"parameters {params!r} are not JSON-serialisable") from exc
    return params


def _with_parameters(node: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """Attach non-empty parameters to a schema node."""
    if params:
        node["parameters"] = params
    return node


def _segment_sums(item_counts: np.ndarray, per_event: np.ndarray) -> np.ndarray:
    """Sum of ``item_counts`` over each event's items (``per_event`` items per event)."""
    cumulative = np.concatenate([[0], np.cumsum(item_counts, dtype=np.int64)])
    bounds = np.concatenate([[0], np.cumsum(per_event, dtype=np.int64)])
    return cumulative[bounds[1:]] - cumulative[bounds[:-1]]


def _empty_where(
    layout: ak.contents.ListOffsetArray, invalid: np.ndarray | None
) -> ak.contents.ListOffsetArray:
    """The lists with those under a None (``invalid``) emptied, so no junk values are written."""
    if invalid is None or not invalid.any():
        return layout
    offsets = np.asarray(layout.offsets.data)
    starts = offsets[:-1].copy()
    stops = offsets[1:].copy()
    stops[invalid] = starts[invalid]
    emptied = _C.ListArray(
        ak.index.Index64(starts),
        ak.index.Index64(stops),
        layout.content,
        parameters=layout.parameters,
    )
    return emptied.to_ListOffsetArray64(True)


def _fixed_numeric(layout: ak.contents.Content) -> bool:
    """True for a fixed-size array of plain numbers (RegularArray chain or N-d NumpyArray)."""
    while isinstance(layout, _C.RegularArray):
        if layout.parameters or layout.size == 0:
            return False
        layout = layout.content
    return (
        isinstance(layout, _C.NumpyArray)
        and not layout.parameters
        and all(size > 0 for size in layout.data.shape[1:])
    )


class _Encoder:
    """Turns collections into flat branches and schema nodes (see the module docstring)."""

    def __init__(self, n_events: int) -> None:
        self.n_events = n_events
        self.taken: set[str] = set()
        self.order: list[tuple[str, str]] = []  # ("branch" | "group", name), file order
        self.branches: dict[str, np.ndarray] = {}
        self.groups: dict[str, _Group] = {}

    # -- names ---------------------------------------------------------------------------------

    def _unique(self, base: str, extra: Any = None) -> str:
        """``base`` or ``base_1``, ``base_2``... such that ``extra(name)`` names are free too."""
        candidate, k = base, 0
        while candidate in self.taken or (extra is not None and extra(candidate) in self.taken):
            k += 1
            candidate = f"{base}_{k}"
        return candidate

    def new_group(self, base: str, counts: np.ndarray, plain: bool) -> _Group:
        """Create a jagged group, reserving its name and its counter branch name."""
        name = self._unique(base, _counter_name)
        self.taken.update((name, _counter_name(name)))
        group = _Group(name, counts.astype(np.int64), plain)
        self.groups[name] = group
        self.order.append(("group", name))
        return group

    def leaf(self, ctx: _Ctx, suffix: tuple[str, ...], data: np.ndarray) -> str:
        """Store flat values of ``ctx`` as a branch; returns the full branch name."""
        if ctx.group is None:
            name = self._unique("_".join(ctx.relpath + suffix))
            self.taken.add(name)
            self.branches[name] = data
            self.order.append(("branch", name))
            return name
        group = ctx.group
        parts = ctx.relpath + suffix
        if not parts and group.plain:
            group.fields[""] = data
            return group.name
        base = "_".join(parts) or "value"
        inner, k = base, 0
        while inner in group.fields or _field_name(group.name, inner) in self.taken:
            k += 1
            inner = f"{base}_{k}"
        full = _field_name(group.name, inner)
        self.taken.add(full)
        group.fields[inner] = data
        return full

    # -- structure -----------------------------------------------------------------------------

    def encode(
        self, layout: ak.contents.Content, ctx: _Ctx, invalid: np.ndarray | None
    ) -> dict[str, Any]:
        """Schema node for ``layout`` (length ``ctx.length``), storing its branches.

        ``invalid`` marks entries under a None of an enclosing option (filled on write).
        """
        layout = _normalise(layout)
        if layout.is_option:
            return self.option(layout, ctx, invalid)
        if isinstance(layout, _C.RecordArray):
            return self.record(layout, ctx, invalid)
        if isinstance(layout, _C.NumpyArray):
            if layout.data.ndim > 1:
                if ctx.group is None and _fixed_numeric(layout):
                    return self.fixed(layout, ctx, invalid)
                return self.encode(layout.to_RegularArray(), ctx, invalid)
            return self.number(layout, ctx, invalid)
        if isinstance(layout, _C.RegularArray):
            if ctx.group is None and _fixed_numeric(layout):
                return self.fixed(layout, ctx, invalid)
            return self.listlike(layout, ctx)
        if isinstance(layout, _C.ListOffsetArray):
            return self.listlike(_empty_where(layout, invalid), ctx)
        if isinstance(layout, _C.EmptyArray):
            raise _Unsupported("lists of unknown type (var * unknown) cannot be written")
        if isinstance(layout, _C.UnionArray):
            raise _Unsupported("union types cannot be written")
        raise _Unsupported(f"{type(layout).__name__} cannot be written")

    def number(
        self, layout: ak.contents.NumpyArray, ctx: _Ctx, invalid: np.ndarray | None
    ) -> dict[str, Any]:
        """A number per entry: one branch."""
        params = _json_parameters(layout)
        data = np.ascontiguousarray(np.asarray(layout.data)[: ctx.length])
        if str(data.dtype) not in _DTYPES:
            raise _Unsupported(f"dtype {data.dtype} cannot be written")
        if invalid is not None:
            data = np.where(invalid, np.asarray(_fill_value(data.dtype), dtype=data.dtype), data)
        branch = self.leaf(ctx, (), data)
        node = {"kind": "number", "dtype": str(data.dtype), "branch": branch}
        return _with_parameters(node, params)

    def fixed(
        self, layout: ak.contents.Content, ctx: _Ctx, invalid: np.ndarray | None
    ) -> dict[str, Any]:
        """A fixed-size array of numbers per event: one fixed-size branch."""
        data = np.ascontiguousarray(ak.to_numpy(ak.Array(layout), allow_missing=False))
        data = data[: ctx.length]
        if str(data.dtype) not in _DTYPES:
            raise _Unsupported(f"dtype {data.dtype} cannot be written")
        if invalid is not None:
            mask = invalid.reshape((-1,) + (1,) * (data.ndim - 1))
            data = np.where(mask, np.asarray(_fill_value(data.dtype), dtype=data.dtype), data)
        branch = self.leaf(ctx, (), data)
        return {
            "kind": "array",
            "dtype": str(data.dtype),
            "shape": list(data.shape[1:]),
            "branch": branch,
        }

    def record(
        self, layout: ak.contents.RecordArray, ctx: _Ctx, invalid: np.ndarray | None
    ) -> dict[str, Any]:
        """A record: its fields, flattened into branches of the same context."""
        params = _json_parameters(layout, drop=("__record__",))
        if not layout.fields:
            raise _Unsupported("records without fields cannot be written")
        fields = []
        for name in layout.fields:
            if not _FIELD_NAME.match(name):
                raise _Unsupported(f"field name {name!r} is not [A-Za-z0-9_]+")
            content = layout.content(name)[: ctx.length]
            fields.append({"name": name, "node": self.encode(content, ctx.child(name), invalid)})
        node: dict[str, Any] = {
            "kind": "record",
            "record": layout.parameter("__record__"),
            "fields": fields,
        }
        if layout.is_tuple:
            node["tuple"] = True
        return _with_parameters(node, params)

    def option(
        self, layout: ak.contents.Content, ctx: _Ctx, invalid: np.ndarray | None
    ) -> dict[str, Any]:
        """Values that may be None: a ``_valid`` branch plus the content, filled where None."""
        params = _json_parameters(layout)
        if _normalise(layout.content).is_unknown:
            raise _Unsupported("values of unknown type (?unknown, e.g. all None) cannot be written")
        if isinstance(layout, _C.UnmaskedArray):
            valid = np.ones(ctx.length, dtype=bool)
            content = layout.content[: ctx.length]
        else:
            masked = layout.to_ByteMaskedArray(True)
            valid = np.asarray(masked.mask.data)[: ctx.length].astype(bool)
            content = masked.content[: ctx.length]
        branch = self.leaf(ctx, ("valid",), valid)
        below = ~valid if invalid is None else (invalid | ~valid)
        node = {"kind": "option", "valid": branch, "content": self.encode(content, ctx, below)}
        return _with_parameters(node, params)

    def listlike(self, layout: ak.contents.Content, ctx: _Ctx) -> dict[str, Any]:
        """A ``var *`` or fixed-size dimension stored as a jagged group."""
        params = _json_parameters(layout)
        if isinstance(layout, _C.RegularArray):
            kind, size = "regular", layout.size
            item_counts = np.full(ctx.length, size, dtype=np.int64)
            content = layout.content[: ctx.length * size]
        else:
            kind, size = "list", None
            offsets = np.asarray(layout.offsets.data)
            item_counts = np.diff(offsets)
            content = layout.content[int(offsets[0]) : int(offsets[-1])]
        if ctx.group is None:
            per_event = item_counts
        else:
            per_event = _segment_sums(item_counts, ctx.group.counts)
        content = _normalise(content)
        plain = (
            isinstance(content, _C.NumpyArray) and content.data.ndim == 1 and not content.parameters
        )
        base = "_".join(ctx.abspath) if ctx.group is None else "_".join(ctx.abspath) + "_items"
        group = self.new_group(base, per_event, plain)
        if ctx.group is None:
            counts = _counter_name(group.name)
        else:
            counts = self.leaf(ctx, ("n",), item_counts.astype(np.int32))
        node: dict[str, Any] = {"kind": kind}
        if size is not None:
            node["size"] = int(size)
        node.update({"group": group.name, "counts": counts})
        inner = _Ctx(int(len(content)), ctx.abspath, (), group)
        node["content"] = self.encode(content, inner, None)
        return _with_parameters(node, params)

    # -- output --------------------------------------------------------------------------------

    def tree_data(self) -> dict[str, Any]:
        """The dict given to uproot's ``mktree``: numpy arrays and jagged awkward arrays."""
        data: dict[str, Any] = {}
        for kind, name in self.order:
            if kind == "branch":
                data[name] = self.branches[name]
                continue
            group = self.groups[name]
            if not group.fields:
                raise _Unsupported(f"jagged group {name!r} has no values")
            if group.plain:
                data[name] = ak.unflatten(group.fields[""], group.counts)
            else:
                jagged = {k: ak.unflatten(v, group.counts) for k, v in group.fields.items()}
                data[name] = ak.zip(jagged)
        return data

    def branch_names(self) -> list[str]:
        """All branch names in file order, counters included."""
        names: list[str] = []
        for kind, name in self.order:
            if kind == "branch":
                names.append(name)
                continue
            group = self.groups[name]
            names.append(_counter_name(name))
            names += [name if k == "" else _field_name(name, k) for k in group.fields]
        return names

    def group_table(self) -> list[dict[str, Any]]:
        """Schema entries describing each jagged group."""
        table = []
        for kind, name in self.order:
            if kind == "group":
                fields = self.groups[name].fields
                branches = [name if k == "" else _field_name(name, k) for k in fields]
                table.append({"name": name, "counter": _counter_name(name), "branches": branches})
        return table


def _top_layout(events: ak.Array) -> ak.contents.RecordArray:
    """The event record's RecordArray layout; MuoneError if ``events`` is not records."""
    layout = _normalise(ak.to_layout(events))
    if not isinstance(layout, _C.RecordArray) or layout.is_tuple:
        raise MuoneError(f"events must be an array of records, got type {ak.type(events)}")
    return layout


def _encode(events: ak.Array, collections: Sequence[str], tree: str) -> tuple[dict, dict]:
    """Schema and uproot data for ``collections`` of ``events``; MuoneError if unsupported."""
    if isinstance(collections, str):
        collections = [collections]
    if not collections:
        raise MuoneError("no collections to write")
    duplicates = sorted({c for c in collections if list(collections).count(c) > 1})
    if duplicates:
        raise MuoneError(f"collections listed more than once: {', '.join(duplicates)}")
    layout = _top_layout(events)
    encoder = _Encoder(len(layout))
    nodes = []
    for name in collections:
        if name not in layout.fields:
            available = ", ".join(layout.fields) or "none"
            raise MuoneError(
                f"cannot write collection {name!r}: no such field; available: {available}"
            )
        content = layout.content(name)
        try:
            if not _FIELD_NAME.match(name):
                raise _Unsupported(f"field name {name!r} is not [A-Za-z0-9_]+")
            ctx = _Ctx(len(layout), (name,), (name,))
            nodes.append({"name": name, "node": encoder.encode(content, ctx, None)})
        except _Unsupported as exc:
            raise MuoneError(
                f"cannot write collection {name!r} (type {content.form.type}) to ROOT: {exc}"
            ) from None
    try:
        data = encoder.tree_data()
    except _Unsupported as exc:
        raise MuoneError(f"cannot write collections to ROOT: {exc}") from None
    schema = {
        "format": SCHEMA_FORMAT,
        "version": SCHEMA_VERSION,
        "tree": tree,
        "collections": nodes,
        "groups": encoder.group_table(),
        "branches": encoder.branch_names(),
    }
    return schema, data


def write_events(
    path: str | Path, events: ak.Array, collections: Sequence[str], tree: str = "events"
) -> dict[str, Any]:
    """Write ``collections`` (top-level fields) of ``events`` to a ROOT TTree, atomically.

    The file is written to a temporary name in the same directory and renamed onto ``path``
    when complete, so ``path`` never holds a partial file (an existing file stays untouched if
    writing fails).

    Args:
        path: output file (``.root``).
        events: awkward array of event records (any number of events, 0 included).
        collections: top-level field names to write, e.g. ``["run", "event", "mc", "sel"]``.
        tree: TTree name.

    Returns:
        The JSON-serialisable schema (module docstring) needed by :func:`read_events`.

    Raises:
        MuoneError: a collection is missing or has an unsupported structure (named with its
            type), or the file cannot be written.
    """
    path = Path(path)
    schema, data = _encode(events, collections, tree)
    directory = path.parent if str(path.parent) else Path(".")
    tmp = directory / f".{path.name}.{uuid.uuid4().hex}.tmp"
    try:
        _write_tree(tmp, tree, data)
        os.replace(tmp, path)
    except OSError as exc:
        _remove_quietly(tmp)
        raise MuoneError(f"cannot write {path}: {exc}") from exc
    except BaseException:
        _remove_quietly(tmp)
        raise
    return schema


def _remove_quietly(path: Path) -> None:
    """Remove a temporary file if it exists; never raises."""
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass


def _write_tree(path: Path, tree: str, data: dict[str, Any]) -> None:
    """Create ``path`` holding one TTree ``tree`` filled with ``data`` (uproot ``mktree``)."""
    with uproot.recreate(path) as file:
        file.mktree(tree, data, counter_name=_counter_name, field_name=_field_name)


# ---------------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------------


def _open_tree(path: Path, tree: str) -> tuple[Any, Any]:
    """Open ``path`` and return (file, tree); InputError for a missing or unreadable file."""
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if not path.is_file():
        raise InputError(f"{path}: not a file")
    try:
        file = uproot.open(path)
    except Exception as exc:  # noqa: BLE001 - uproot raises many kinds for corrupt files
        raise InputError(f"{path}: not a readable ROOT file ({_brief(exc)})") from None
    try:
        obj = file[tree]
    except Exception as exc:  # noqa: BLE001
        file.close()
        keys = ", ".join(sorted({k.split(";")[0] for k in _safe_keys(file)})) or "none"
        if isinstance(exc, KeyError):
            raise InputError(f"{path}: no tree {tree!r} (found: {keys})") from None
        raise InputError(f"{path}: cannot read tree {tree!r} ({_brief(exc)})") from None
    if not isinstance(obj, uproot.TTree):
        file.close()
        raise InputError(f"{path}: {tree!r} is a {type(obj).__name__}, not a TTree")
    return file, obj


def _safe_keys(file: Any) -> list[str]:
    """Keys of an open file, or none if even that fails."""
    try:
        return list(file.keys())
    except Exception:  # noqa: BLE001
        return []


def _brief(exc: BaseException) -> str:
    """One-line description of an exception."""
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def num_entries(path: str | Path, tree: str = "events") -> int:
    """Number of entries (events) in TTree ``tree`` of ``path``; InputError for a bad file."""
    path = Path(path)
    file, obj = _open_tree(path, tree)
    with file:
        return int(obj.num_entries)


def _node_branches(node: dict[str, Any]) -> list[str]:
    """All branches a schema node reads."""
    kind = node["kind"]
    if kind in ("number", "array"):
        return [node["branch"]]
    if kind == "record":
        return [b for f in node["fields"] for b in _node_branches(f["node"])]
    if kind == "option":
        return [node["valid"], *_node_branches(node["content"])]
    if kind in ("list", "regular"):
        return [node["counts"], *_node_branches(node["content"])]
    raise InputError(f"schema node of unknown kind {kind!r}")


class _Decoder:
    """Rebuilds awkward layouts from branch arrays, following schema nodes."""

    def __init__(self, path: Path, arrays: dict[str, ak.Array], n_events: int) -> None:
        self.path = path
        self.arrays = arrays
        self.n_events = n_events

    def flat(self, branch: str, jagged: bool, length: int) -> np.ndarray:
        """Values of ``branch`` in a context of ``length`` entries (flattened when jagged)."""
        array = self.arrays[branch]
        if jagged:
            array = ak.flatten(array, axis=1)
        values = ak.to_numpy(array, allow_missing=False)
        if len(values) != length:
            raise InputError(
                f"{self.path}: branch {branch!r} has {len(values)} values where the schema "
                f"needs {length}; the file does not match the schema"
            )
        return values

    def decode(self, node: dict[str, Any], length: int, jagged: bool) -> ak.contents.Content:
        """Layout of ``length`` entries for ``node`` (``jagged``: inside a group)."""
        kind = node["kind"]
        params = node.get("parameters") or None
        if kind == "number":
            values = self.flat(node["branch"], jagged, length).astype(node["dtype"], copy=False)
            return _C.NumpyArray(values, parameters=params)
        if kind == "array":
            values = self.flat(node["branch"], jagged, length).astype(node["dtype"], copy=False)
            return _C.NumpyArray(values.reshape((length, *node["shape"])), parameters=params)
        if kind == "record":
            return self.record(node, length, jagged, params)
        if kind == "option":
            valid = self.flat(node["valid"], jagged, length).astype(bool)
            content = self.decode(node["content"], length, jagged)
            index = np.where(valid, np.arange(length, dtype=np.int64), -1)
            return _C.IndexedOptionArray(ak.index.Index64(index), content, parameters=params)
        if kind in ("list", "regular"):
            return self.listlike(node, length, jagged, params)
        raise InputError(f"{self.path}: schema node of unknown kind {kind!r}")

    def record(
        self, node: dict[str, Any], length: int, jagged: bool, params: dict | None
    ) -> ak.contents.RecordArray:
        """A record from its fields' layouts, with its ``__record__`` name restored."""
        contents = [self.decode(f["node"], length, jagged) for f in node["fields"]]
        names = None if node.get("tuple") else [f["name"] for f in node["fields"]]
        parameters = dict(params or {})
        if node.get("record") is not None:
            parameters["__record__"] = node["record"]
        return _C.RecordArray(contents, names, length=length, parameters=parameters or None)

    def listlike(
        self, node: dict[str, Any], length: int, jagged: bool, params: dict | None
    ) -> ak.contents.Content:
        """A ``var *`` list (offsets from the counts) or a fixed-size dimension."""
        counts = self.flat(node["counts"], jagged, length).astype(np.int64)
        offsets = np.zeros(length + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        content = self.decode(node["content"], int(offsets[-1]), True)
        if node["kind"] == "list":
            return _C.ListOffsetArray(ak.index.Index64(offsets), content, parameters=params)
        size = int(node["size"])
        if np.any(counts != size):
            raise InputError(
                f"{self.path}: branch {node['counts']!r} has lengths other than {size}; "
                "the file does not match the schema"
            )
        return _C.RegularArray(content, size, zeros_length=length, parameters=params)


def _check_schema(schema: dict[str, Any]) -> None:
    """InputError unless ``schema`` is a schema written by this module's version."""
    if not isinstance(schema, dict) or schema.get("format") != SCHEMA_FORMAT:
        raise InputError(f"not a {SCHEMA_FORMAT} schema")
    if schema.get("version") != SCHEMA_VERSION:
        raise InputError(
            f"{SCHEMA_FORMAT} schema version {schema.get('version')!r} is not supported "
            f"(this muone reads version {SCHEMA_VERSION})"
        )


def _select(schema: dict[str, Any], collections: Sequence[str] | None, path: Path) -> list[dict]:
    """The schema entries of the requested collections, in the requested order."""
    entries = {c["name"]: c for c in schema["collections"]}
    if collections is None:
        return list(schema["collections"])
    if isinstance(collections, str):
        collections = [collections]
    missing = [c for c in collections if c not in entries]
    if missing:
        raise InputError(
            f"{path}: collection(s) {', '.join(map(repr, missing))} not in the file; "
            f"available: {', '.join(entries) or 'none'}"
        )
    return [entries[c] for c in collections]


def read_events(
    path: str | Path,
    schema: dict[str, Any],
    collections: Sequence[str] | None = None,
    entry_start: int | None = None,
    entry_stop: int | None = None,
    tree: str = "events",
) -> ak.Array:
    """Read collections written by :func:`write_events` back into an awkward event record.

    Args:
        path: a file written by :func:`write_events`.
        schema: the schema :func:`write_events` returned (e.g. loaded from a manifest).
        collections: which collections to read (default: all in the schema), in this order.
        entry_start, entry_stop: entry range, as in uproot (None: from the start / to the end).
        tree: TTree name.

    Returns:
        ``ak.Array`` of records with the collections as fields, the same structure, dtypes and
        record names as written; ``vector`` behaviours (Momentum4D...) are registered.

    Raises:
        InputError: missing, truncated or non-ROOT file, missing tree or branch (named), or a
            file that does not match the schema.
    """
    vector.register_awkward()
    path = Path(path)
    _check_schema(schema)
    selected = _select(schema, collections, path)
    file, obj = _open_tree(path, tree)
    with file:
        available = set(obj.keys())
        needed: list[str] = []
        for entry in selected:
            for branch in _node_branches(entry["node"]):
                if branch not in available:
                    raise InputError(
                        f"{path}: tree {tree!r} has no branch {branch!r} "
                        f"(needed for collection {entry['name']!r})"
                    )
                if branch not in needed:
                    needed.append(branch)
        arrays = {}
        for branch in needed:
            try:
                arrays[branch] = obj[branch].array(
                    entry_start=entry_start, entry_stop=entry_stop, library="ak"
                )
            except Exception as exc:  # noqa: BLE001 - corrupt or truncated data
                raise InputError(
                    f"{path}: cannot read branch {branch!r} of tree {tree!r} ({_brief(exc)})"
                ) from None
    n_events = len(arrays[needed[0]]) if needed else 0
    decoder = _Decoder(path, arrays, n_events)
    contents = [decoder.decode(e["node"], n_events, False) for e in selected]
    names = [e["name"] for e in selected]
    return ak.Array(_C.RecordArray(contents, names, length=n_events))


def open_tree(path: str | Path, tree: str, hint: str = "") -> tuple[Any, Any]:
    """Open ``path`` with uproot and return (file, TTree ``tree``); the caller closes the file.

    A missing file, a file uproot cannot read, a missing tree (the trees found are listed, then
    ``hint``) or an object that is not a TTree raises InputError naming the file."""
    import uproot

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        file = uproot.open(path)
    except Exception as exc:  # noqa: BLE001 - uproot raises many kinds for corrupt files
        raise InputError(f"{path}: not a readable ROOT file ({type(exc).__name__}: {exc})") from None
    try:
        obj = file[tree]
    except Exception:  # noqa: BLE001
        keys = sorted({k.split(";")[0] for k in file.keys()})  # noqa: SIM118 - an uproot directory
        file.close()
        raise InputError(f"{path}: no tree {tree!r} (found: {', '.join(keys) or 'none'}){hint}") from None
    if not isinstance(obj, uproot.TTree):
        file.close()
        raise InputError(f"{path}: {tree!r} is a {type(obj).__name__}, not a TTree")
    return file, obj
