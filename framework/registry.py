"""The plugin registry: loads the ``muone`` entry-point group one entry point at a time.

One broken entry point (an import error, a hook that raises, a class that does not follow the
interface) is recorded by name in :attr:`Registry.failures` and never hides the others.
"""

from __future__ import annotations

import importlib.metadata as md
import traceback
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pluggy

from muone import hookspecs
from muone.errors import InputError
from muone.processor import Finalizer, Plugin, Processor, Source

GROUP = "muone"


@dataclass(frozen=True)
class PluginOrigin:
    """Where a plugin class came from: entry point, distribution and version, module."""

    entry_point: str
    distribution: str
    version: str
    module: str


@dataclass
class Registry:
    """Sources, processors and finalizers by plugin name, with their origins and load failures."""

    plugins: dict[str, type[Plugin]] = field(default_factory=dict)
    origins: dict[str, PluginOrigin] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    executors: dict[str, Any] = field(default_factory=dict)
    histogram_presets: dict[str, dict[str, Any]] = field(default_factory=dict)

    def by_kind(self, kind: str) -> dict[str, type[Plugin]]:
        """Plugins of one kind ("source", "processor", "finalizer") by name."""
        return {n: c for n, c in sorted(self.plugins.items()) if c.kind == kind}

    def get(self, name: str, kind: str) -> type[Plugin]:
        """The plugin class ``name`` of ``kind``; KeyError if there is none."""
        cls = self.plugins[name]
        if cls.kind != kind:
            raise KeyError(name)
        return cls

    def add_module(self, obj: ModuleType | object, origin: PluginOrigin) -> None:
        """Register a module (or object) implementing muone hooks; failures are recorded."""
        pm = pluggy.PluginManager(hookspecs.PROJECT)
        pm.add_hookspecs(hookspecs)
        try:
            pm.register(obj, name=origin.entry_point)
        except Exception as exc:  # a hook with a wrong signature
            self.failures[origin.entry_point] = f"cannot register: {exc}"
            return
        for hook_name, sink in (
            ("muone_plugins", self._add_classes),
            ("muone_executors", self._add_executors),
            ("muone_histogram_presets", self._add_presets),
        ):
            for impl in getattr(pm.hook, hook_name).get_hookimpls():
                try:
                    value = impl.function()
                    sink(value, origin)
                except Exception as exc:
                    self.failures[origin.entry_point] = (
                        f"hook {hook_name} failed: {type(exc).__name__}: {exc}"
                    )

    def add_classes(self, classes: list[type], origin: PluginOrigin | None = None) -> None:
        """Register plugin classes directly (e.g. from a test or a notebook)."""
        if origin is None:
            mods = {c.__module__ for c in classes}
            origin = PluginOrigin("<direct>", "", "", ", ".join(sorted(mods)))
        self._add_classes(classes, origin)

    def _add_classes(self, classes: Any, origin: PluginOrigin) -> None:
        for cls in classes or ():
            problem = _interface_problem(cls)
            if problem:
                raise TypeError(problem)
            if cls.name in self.plugins and self.plugins[cls.name] is not cls:
                other = self.origins[cls.name]
                raise TypeError(
                    f"plugin name {cls.name!r} already registered by {other.entry_point} "
                    f"({other.module})"
                )
            self.plugins[cls.name] = cls
            self.origins[cls.name] = PluginOrigin(
                origin.entry_point, origin.distribution, origin.version, cls.__module__
            )

    def _add_executors(self, executors: Any, origin: PluginOrigin) -> None:
        self.executors.update(executors or {})

    def _add_presets(self, presets: Any, origin: PluginOrigin) -> None:
        self.histogram_presets.update(presets or {})


def _interface_problem(cls: Any) -> str:
    if not isinstance(cls, type) or not issubclass(cls, (Source, Processor, Finalizer)):
        return f"{cls!r} is not a Source, Processor or Finalizer subclass"
    if not cls.name or not cls.name.isidentifier():
        return f"{cls.__qualname__} has no valid plugin name (class attribute 'name')"
    return ""


def load_entry_points() -> Registry:
    """Build a registry from every entry point of the ``muone`` group, one at a time."""
    from muone import executors as _executors

    registry = Registry()
    registry.executors.update(_executors.BUILTIN_EXECUTORS)
    for ep in sorted(md.entry_points(group=GROUP), key=lambda e: e.name):
        dist = getattr(ep, "dist", None)
        origin = PluginOrigin(
            ep.name,
            dist.metadata["Name"] if dist is not None else "",
            dist.version if dist is not None else "",
            ep.value,
        )
        try:
            obj = ep.load()
        except Exception as exc:
            last = traceback.extract_tb(exc.__traceback__)[-1:]
            where = f" ({last[0].filename}:{last[0].lineno})" if last else ""
            registry.failures[ep.name] = f"cannot load {ep.value}: {type(exc).__name__}: {exc}{where}"
            continue
        registry.add_module(obj, origin)
    return registry


_DEFAULT: Registry | None = None


def default_registry() -> Registry:
    """The process-wide registry from entry points (loaded once)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = load_entry_points()
    return _DEFAULT


def registry_with(extra: list[type] | None) -> Registry:
    """The default registry plus extra plugin classes (a copy; the default is not changed)."""
    base = default_registry()
    if not extra:
        return base
    reg = Registry(
        dict(base.plugins), dict(base.origins), dict(base.failures), dict(base.executors),
        dict(base.histogram_presets),
    )
    try:
        reg.add_classes(list(extra))
    except TypeError as exc:
        raise InputError(str(exc)) from None
    return reg
