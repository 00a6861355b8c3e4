"""Steering files: TOML in the layout of DESIGN.md, validated completely before any event.

:func:`load_steering` reads a file (or takes a dict), applies ``--set`` overrides, validates every
table against the pydantic models of the job and of each plugin, checks the data flow and the
finalizer inputs, and raises one :class:`~muone.errors.SteeringError` listing every problem with
the file and the dotted key path. The result, :class:`Steering`, knows its resolved form (every
default filled in), which the job writes next to its outputs.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from muone.errors import Problem, SteeringError
from muone.processor import Plugin, is_parent_or_same
from muone.registry import Registry

SECTIONS = ("job", "geometry", "source", "processors", "finalizers")
#: Job keys that never change results: excluded from the steering hash, so a job may be resumed
#: with another executor or worker count.
NON_PHYSICS_JOB_KEYS = ("executor", "workers", "scheduler", "output_dir")


class JobConfig(BaseModel):
    """The ``[job]`` table."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    events: int | None = Field(
        None, ge=1, description="Events to generate (generators); readers default to all."
    )
    chunk_size: int = Field(100_000, ge=1, description="Events per chunk (unit of work and output).")
    seed: int = Field(12345, ge=0, description="Job seed; chunk and processor streams derive from it.")
    executor: str = Field("serial", description="serial | processes | dask (when installed).")
    workers: int = Field(1, ge=1, le=1024, description="Worker processes for parallel executors.")
    scheduler: str = Field("", description="Dask scheduler address; empty: a LocalCluster.")
    output_dir: str = Field("out/job", min_length=1, description="Output directory (relative to the working directory).")
    on_error: Literal["fail", "skip"] = Field(
        "fail", description="fail: a failing chunk stops the job; skip: it is reported and left out."
    )
    save: list[str] = Field(default_factory=list, description="Collections written to events/.")
    inputs: dict[str, str] = Field(
        default_factory=dict,
        description="Finalizer-only jobs: name -> output directory of an earlier job.",
    )


class GeometryConfig(BaseModel):
    """The ``[geometry]`` table."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    preset: str = Field("", description="Detector preset: station2022 | pilot2023 | muone40.")
    file: str = Field("", description="Detector description TOML file (instead of a preset).")
    alignment: str = Field("", description="Alignment conditions file (optional).")


@dataclass
class PluginSpec:
    """One configured plugin: class, instance name, validated parameters, and key path."""

    cls: type[Plugin]
    instance: str
    params: Any
    key: str

    def build(self) -> Plugin:
        """A fresh plugin object."""
        return self.cls(self.params, self.instance)


@dataclass
class Steering:
    """A validated steering: job, geometry, the configured plugins and the resolved form."""

    job: JobConfig
    geometry: GeometryConfig
    source: PluginSpec | None
    processors: list[PluginSpec]
    finalizers: list[PluginSpec]
    file: Path | None = None
    registry: Registry | None = field(default=None, repr=False)

    def resolved(self) -> dict[str, Any]:
        """The steering with every default filled in (TOML-serialisable: no None values)."""
        out: dict[str, Any] = {
            "job": _drop_none(self.job.model_dump(mode="json")),
            "geometry": self.geometry.model_dump(mode="json"),
        }
        if self.source is not None:
            out["source"] = {"plugin": self.source.cls.name, **_plugin_params(self.source)}
        for section, specs in (("processors", self.processors), ("finalizers", self.finalizers)):
            if specs:
                out[section] = [
                    {"plugin": s.cls.name, "name": s.instance, **_plugin_params(s)} for s in specs
                ]
        return out

    def resolved_toml(self) -> str:
        """The resolved steering as TOML text."""
        return tomli_w.dumps(self.resolved())

    def physics_hash(self) -> str:
        """sha256 of the resolved steering without the keys that cannot change results."""
        res = self.resolved()
        for key in NON_PHYSICS_JOB_KEYS:
            res["job"].pop(key, None)
        return hashlib.sha256(json.dumps(res, sort_keys=True).encode()).hexdigest()

    def all_specs(self) -> list[PluginSpec]:
        """Source, processors and finalizers in order."""
        return ([self.source] if self.source else []) + self.processors + self.finalizers


def _plugin_params(spec: PluginSpec) -> dict[str, Any]:
    return _drop_none(spec.params.model_dump(mode="json"))


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value if v is not None]
    return value


# ----------------------------------------------------------------------------------------------
# reading and overrides


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a steering file; a missing file or a TOML syntax error is a SteeringError."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise SteeringError([Problem("", f"cannot read steering file: {exc.strerror}", str(path))]) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SteeringError([Problem("", f"TOML syntax error: {exc}", str(path))]) from None


def parse_override(text: str) -> tuple[str, Any]:
    """``"processors.tracking.max_chi2=30"`` -> (key, value); the value is read as a TOML value
    (``30``, ``1.5``, ``true``, ``"x"``, ``[1, 2]``, ``{model = "Pol2"}``), else as a string."""
    if "=" not in text:
        raise SteeringError([Problem(f"--set {text}", "expected KEY=VALUE")])
    key, raw = text.split("=", 1)
    key, raw = key.strip(), raw.strip()
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key, value


def apply_overrides(raw: dict[str, Any], overrides: dict[str, Any]) -> list[Problem]:
    """Apply ``{dotted key: value}`` overrides to the raw steering dict in place.

    Processors and finalizers are addressed by instance name (``processors.tracking.max_chi2``).
    Returns the problems (unknown sections or instance names)."""
    problems: list[Problem] = []
    for key, value in overrides.items():
        parts = key.split(".")
        where = f"--set {key}"
        if parts[0] not in SECTIONS:
            problems.append(Problem(where, f"unknown section {parts[0]!r}{_suggest(parts[0], SECTIONS)}"))
            continue
        if parts[0] in ("processors", "finalizers"):
            if len(parts) < 3:
                problems.append(Problem(where, f"use {parts[0]}.NAME.PARAMETER"))
                continue
            entries = raw.get(parts[0], [])
            names = [_instance_name(e) for e in entries]
            if parts[1] not in names:
                problems.append(
                    Problem(where, f"no {parts[0][:-1]} named {parts[1]!r}{_suggest(parts[1], names)}; "
                            f"instances: {', '.join(map(str, names)) or 'none'}")
                )
                continue
            target, rest = entries[names.index(parts[1])], parts[2:]
        else:
            target, rest = raw.setdefault(parts[0], {}), parts[1:]
            if not rest:
                problems.append(Problem(where, "a key inside the section is needed"))
                continue
        for part in rest[:-1]:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                problems.append(Problem(where, f"{part!r} is not a table"))
                break
        else:
            target[rest[-1]] = value
    return problems


def _instance_name(entry: Any) -> str:
    if isinstance(entry, dict):
        return str(entry.get("name") or entry.get("plugin") or "")
    return ""


def _suggest(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


# ----------------------------------------------------------------------------------------------
# validation


def _model_problems(model: type[BaseModel], data: Any, key: str) -> tuple[Any, list[Problem]]:
    """Validate ``data`` against ``model``; map pydantic errors to problems with key paths."""
    if not isinstance(data, dict):
        return None, [Problem(key, f"expected a table, got {type(data).__name__}")]
    try:
        return model.model_validate(data), []
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            path = f"{key}.{loc}" if key and loc else (key or loc)
            if err["type"] == "extra_forbidden":
                name = str(err["loc"][-1])
                fields = _fields_at(model, err["loc"][:-1])
                msg = f"unknown key{_suggest(name, fields)}; valid keys: {', '.join(fields)}"
            else:
                msg = f"{err['msg']} (got {err.get('input')!r})"
            problems.append(Problem(path, msg))
        return None, problems


def _fields_at(model: type[BaseModel], loc: tuple) -> list[str]:
    """Field names of the (possibly nested) model at ``loc``; best effort for messages."""
    current: Any = model
    for part in loc:
        if isinstance(part, int) or not (isinstance(current, type) and issubclass(current, BaseModel)):
            continue
        info = current.model_fields.get(part)
        if info is None:
            return []
        current = _inner_model(info.annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _inner_model(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def _plugin_spec(
    registry: Registry, kind: str, table: Any, key: str, default_instance: str | None
) -> tuple[PluginSpec | None, list[Problem]]:
    if not isinstance(table, dict):
        return None, [Problem(key, f"expected a table, got {type(table).__name__}")]
    body = dict(table)
    name = body.pop("plugin", None)
    instance = body.pop("name", None) if kind != "source" else default_instance
    if not isinstance(name, str) or not name:
        return None, [Problem(f"{key}.plugin", f"missing: which {kind} plugin to run")]
    try:
        cls = registry.get(name, kind)
    except KeyError:
        return None, [Problem(f"{key}.plugin", _unknown_plugin_message(registry, kind, name))]
    if kind != "source":
        instance = instance if instance is not None else name
        if not isinstance(instance, str) or not instance.isidentifier():
            return None, [Problem(f"{key}.name", f"instance name must be an identifier, got {instance!r}")]
    params, problems = _model_problems(cls.Params, body, key)
    if params is None:
        return None, problems
    return PluginSpec(cls, instance or name, params, key), []


def _unknown_plugin_message(registry: Registry, kind: str, name: str) -> str:
    available = list(registry.by_kind(kind))
    msg = f"unknown {kind} plugin {name!r}{_suggest(name, available)}; available: {', '.join(available) or 'none'}"
    if name in registry.plugins:
        msg += f" ({name!r} is a {registry.plugins[name].kind}, not a {kind})"
    if registry.failures:
        failed = "; ".join(f"{ep}: {why}" for ep, why in sorted(registry.failures.items()))
        msg += f". Plugins that failed to load: {failed}"
    return msg


def validate(raw: dict[str, Any], registry: Registry, file: Path | None = None) -> Steering:
    """Validate a raw steering dict completely; raise SteeringError with every problem."""
    problems: list[Problem] = []
    for section in raw:
        if section not in SECTIONS:
            problems.append(Problem(section, f"unknown section{_suggest(section, SECTIONS)}; sections: {', '.join(SECTIONS)}"))
    job, p = _model_problems(JobConfig, raw.get("job", {}), "job")
    problems += p
    geometry, p = _model_problems(GeometryConfig, raw.get("geometry", {}), "geometry")
    problems += p

    source = None
    if "source" in raw:
        source, p = _plugin_spec(registry, "source", raw["source"], "source", "source")
        problems += p
    lists: dict[str, list[PluginSpec]] = {"processors": [], "finalizers": []}
    for section, kind in (("processors", "processor"), ("finalizers", "finalizer")):
        entries = raw.get(section, [])
        if not isinstance(entries, list):
            problems.append(Problem(section, f"use [[{section}]] tables (an array), not [{section}]"))
            continue
        seen: dict[str, int] = {}
        for i, entry in enumerate(entries):
            name = _instance_name(entry)
            key = f"{section}.{name}" if name and name.isidentifier() else f"{section}[{i}]"
            if name in seen:
                problems.append(Problem(f"{section}[{i}].name", f"instance name {name!r} is already used by {section}[{seen[name]}]; give one a unique name"))
                key = f"{section}[{i}]"
            seen.setdefault(name, i)
            spec, p = _plugin_spec(registry, kind, entry, key, None)
            problems += p
            if spec is not None:
                lists[section].append(spec)

    executor = raw.get("job", {}).get("executor") if isinstance(raw.get("job"), dict) else None
    if isinstance(executor, str) and executor not in registry.executors:
        avail = ", ".join(sorted(registry.executors))
        hint = " (install muone[dask] for the dask executor)" if executor == "dask" else ""
        problems.append(Problem("job.executor", f"unknown executor {executor!r}{_suggest(executor, registry.executors)}; available: {avail}{hint}"))
    if job is not None:
        problems += _job_problems(job, registry, source, lists, raw)
    if not problems:
        steering = Steering(job, geometry, source, lists["processors"], lists["finalizers"], file, registry)
        problems += _dataflow_problems(steering, registry)
        for spec in steering.all_specs():
            problems += [Problem(f"{spec.key}.{k}" if k else spec.key, m) for k, m in spec.cls.check(spec.params, steering)]
    if problems:
        raise SteeringError([Problem(p.key, p.message, p.file or (str(file) if file else "")) for p in problems])
    return steering


def _job_problems(job: JobConfig, registry: Registry, source: Any, lists: dict, raw: dict) -> list[Problem]:
    problems = []
    has_source = "source" in raw
    if not has_source and raw.get("processors"):
        problems.append(Problem("source", "processors need events: add a [source] table"))
    if not has_source and not raw.get("finalizers"):
        problems.append(Problem("source", "a job needs a [source] (or only [[finalizers]] reading [job] inputs)"))
    if not has_source and job.save:
        problems.append(Problem("job.save", "a job without a source has no events to save"))
    for name, directory in job.inputs.items():
        path = Path(directory)
        if not (path / "manifest.json").is_file():
            problems.append(Problem(f"job.inputs.{name}", f"{directory!r} is not the output directory of a muone job (no manifest.json)"))
    for spec in lists["finalizers"]:
        missing = [n for n in spec.cls.required_inputs if n not in job.inputs]
        if missing:
            problems.append(Problem(f"{spec.key}", f"needs [job] inputs named {', '.join(missing)}"))
    return problems


def _dataflow_problems(steering: Steering, registry: Registry) -> list[Problem]:
    """Every read must be satisfied by an earlier write of the same name or a parent."""
    problems = []
    written: list[tuple[str, str]] = []  # (collection, writer instance)
    chain = ([steering.source] if steering.source else []) + steering.processors
    writes_of = {s.instance: s.cls.writes_for(s.params) for s in chain}
    for pos, spec in enumerate(chain):
        for read in spec.cls.reads_for(spec.params):
            if any(is_parent_or_same(w, read) for w, _ in written):
                continue
            later = [s.instance for s in chain[pos + 1:] if any(is_parent_or_same(w, read) for w in writes_of[s.instance])]
            providers = sorted(n for n, c in registry.plugins.items() if any(is_parent_or_same(w, read) for w in c.writes))
            if later:
                hint = f"it is written by {', '.join(repr(x) for x in later)}, which runs later: move that before {spec.instance!r}"
            elif providers:
                hint = f"add a plugin that writes it before {spec.instance!r}: {', '.join(providers)}"
            else:
                hint = "no registered plugin writes it"
            have = ", ".join(sorted({w for w, _ in written})) or "nothing"
            problems.append(Problem(f"{spec.key}", f"{spec.instance!r} reads {read!r}, but nothing before it writes it (available: {have}); {hint}"))
        for w in spec.cls.writes_for(spec.params):
            written.append((w, spec.instance))
    for i, name in enumerate(steering.job.save):
        if not any(w == name or w.startswith(name + ".") or is_parent_or_same(w, name) for w, _ in written):
            have = ", ".join(sorted({w.split(".")[0] for w, _ in written})) or "nothing"
            problems.append(Problem(f"job.save[{i}]", f"{name!r} is not written by the source or any processor (written: {have})"))
    return problems


def load_steering(
    steering: str | Path | dict[str, Any],
    overrides: dict[str, Any] | list[str] | None = None,
    registry: Registry | None = None,
) -> Steering:
    """Read (path) or take (dict) a steering, apply overrides, validate it completely."""
    from muone.registry import default_registry

    registry = registry or default_registry()
    if isinstance(steering, dict):
        raw, file = copy.deepcopy(steering), None
    else:
        file = Path(steering)
        raw = read_toml(file)
    if isinstance(overrides, list):
        parsed = [parse_override(o) for o in overrides]
        overrides = dict(parsed)
    problems = apply_overrides(raw, overrides or {})
    try:
        result = validate(raw, registry, file)
    except SteeringError as exc:
        problems += exc.problems
        result = None
    if problems:
        raise SteeringError([Problem(p.key, p.message, p.file or (str(file) if file else "")) for p in problems])
    assert result is not None
    return result
