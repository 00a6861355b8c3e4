"""Alignment conditions: per-module offsets and rotations, kept in their own TOML file.

File format (docs/geometry.md)::

    description = "survey 2023-07-12"

    [modules."s1.m3"]      # by name: station 1, module 3 of that station (both 0-based)
    dx = 0.012             # mm, shift of the module centre along global x
    rz = 1.5e-4            # rad, rotation about the beam axis through the module centre

    [modules.7]            # by global module index (0-based, z order)
    du = -0.004            # mm, shift along the module's measured direction

Parameters (all default 0): ``dx, dy, dz`` [mm] shift the module centre in the global frame;
``du`` [mm] shifts it along the module's (aligned) measured direction, so that the measured
coordinate of every point changes by exactly ``-du``; ``rx, ry, rz`` [rad] rotate the module about
axes parallel to the global x, y, z axes through its centre, applied as ``Rz(rz) Ry(ry) Rx(rx)``
after the nominal orientation (see :class:`muone.geometry.Module`). Constants are always relative to
the nominal geometry: applying conditions to an already aligned detector replaces the old ones.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from muone.geometry.errors import GeometryError

if TYPE_CHECKING:  # pragma: no cover
    from muone.geometry.detector import Detector

PARAMETERS = ("dx", "dy", "dz", "du", "rx", "ry", "rz")

_INDEX_RE = re.compile(r"^\d+$")
_NAME_RE = re.compile(r"^s(\d+)\.m(\d+)$")


class ModuleAlignment(BaseModel):
    """Alignment constants of one module (all zero: nominal)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    dx: float = Field(0.0, description="Shift of the module centre along global x [mm].")
    dy: float = Field(0.0, description="Shift of the module centre along global y [mm].")
    dz: float = Field(0.0, description="Shift of the module centre along global z [mm].")
    du: float = Field(0.0, description="Shift along the module's measured direction [mm].")
    rx: float = Field(0.0, gt=-math.pi / 2, lt=math.pi / 2, description="Rotation about global x [rad].")
    ry: float = Field(0.0, gt=-math.pi / 2, lt=math.pi / 2, description="Rotation about global y [rad].")
    rz: float = Field(0.0, ge=-math.pi, le=math.pi, description="Rotation about the beam axis [rad].")

    def is_nominal(self) -> bool:
        """True when every constant is zero."""
        return all(getattr(self, p) == 0.0 for p in PARAMETERS)

    def __add__(self, other: ModuleAlignment) -> ModuleAlignment:
        """Parameter-wise sum (rotations add as angles: exact about one axis, first order otherwise)."""
        return ModuleAlignment(**{p: getattr(self, p) + getattr(other, p) for p in PARAMETERS})


NOMINAL = ModuleAlignment()


def normalise_key(key: str | int) -> str:
    """``7``, ``"07"`` -> ``"7"``; ``"s01.m3"`` -> ``"s1.m3"``; anything else: ValueError."""
    if isinstance(key, bool):
        raise ValueError(f"module key {key!r}: use a global module index ('7') or a name ('s1.m3')")
    if isinstance(key, int):
        if key < 0:
            raise ValueError(f"module index {key} is negative")
        return str(key)
    text = str(key).strip()
    if _INDEX_RE.match(text):
        return str(int(text))
    match = _NAME_RE.match(text)
    if match:
        return f"s{int(match[1])}.m{int(match[2])}"
    raise ValueError(f"module key {key!r}: use a global module index ('7') or a name ('s1.m3')")


def _try_normalise(key: Any) -> Any:
    try:
        return normalise_key(key)
    except ValueError:
        return None


class _AlignmentFile(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    description: str = ""
    modules: dict[str, ModuleAlignment] = Field(default_factory=dict)


@dataclass(frozen=True)
class AlignmentConditions:
    """Alignment constants by module key (global index as a string, or ``"sS.mK"``).

    Build one with :meth:`from_dict`, :func:`read_alignment` or :func:`random_misalignment`; apply it
    with :meth:`muone.geometry.Detector.with_alignment`. ``source`` (the file it came from) is used
    in error messages and does not take part in comparisons.
    """

    modules: Mapping[str, ModuleAlignment] = field(default_factory=dict)
    description: str = ""
    source: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        # accept int or un-normalised keys and dict values when built directly
        if all(isinstance(v, ModuleAlignment) and isinstance(k, str) and k == _try_normalise(k)
               for k, v in self.modules.items()):
            object.__setattr__(self, "modules", dict(self.modules))
            return
        parsed = AlignmentConditions._parse({"description": self.description, "modules": self.modules},
                                            self.source or "<alignment>")
        object.__setattr__(self, "modules", dict(parsed.modules))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "<dict>") -> AlignmentConditions:
        """From ``{"description": ..., "modules": {key: {dx: ...}}}`` (the file layout) or directly
        ``{key: {...}}`` (a mapping without ``modules`` and ``description`` keys).

        Keys may be ints or strings; values dicts or :class:`ModuleAlignment`. Invalid content raises
        :class:`GeometryError` naming ``source`` and the key path."""
        if not isinstance(data, Mapping):
            raise GeometryError(source, [("", f"expected a table, got {type(data).__name__}")], "alignment conditions")
        if data and "modules" not in data and "description" not in data:
            data = {"modules": data}
        return cls._parse(data, source)

    @classmethod
    def _parse(cls, data: Mapping[str, Any], source: str) -> AlignmentConditions:
        """The file layout: top-level keys ``description`` and ``modules``."""
        raw_modules = data.get("modules", {})
        problems: list[tuple[str, str]] = []
        modules: dict[str, Any] = {}
        if isinstance(raw_modules, Mapping):
            for key, value in raw_modules.items():
                try:
                    norm = normalise_key(key)
                except ValueError as exc:
                    problems.append((f"modules.{_quote(key)}", str(exc)))
                    continue
                if norm in modules:
                    problems.append((f"modules.{_quote(key)}", f"module {norm!r} is given twice"))
                    continue
                modules[norm] = value.model_dump() if isinstance(value, ModuleAlignment) else value
        else:
            modules = raw_modules
        body = {k: v for k, v in data.items() if k != "modules"}
        body["modules"] = modules
        try:
            parsed = _AlignmentFile.model_validate(body)
        except ValidationError as exc:
            from muone.geometry.description import pydantic_problems

            problems += pydantic_problems(exc, _AlignmentFile)
            parsed = None
        if problems or parsed is None:
            raise GeometryError(source, problems, "alignment conditions")
        return cls(dict(parsed.modules), parsed.description, source)

    def to_dict(self) -> dict[str, Any]:
        """TOML-ready form; zero constants are left out."""
        out: dict[str, Any] = {}
        if self.description:
            out["description"] = self.description
        out["modules"] = {k: v.model_dump(exclude_defaults=True) for k, v in self.modules.items()}
        return out

    def __len__(self) -> int:
        return len(self.modules)

    def updated(self, delta: AlignmentConditions | Mapping[str, Any]) -> AlignmentConditions:
        """These constants plus ``delta`` (parameter-wise, see :meth:`ModuleAlignment.__add__`).

        Used by iterative alignment: ``new = old.updated(correction)``. Keys of both must use the
        same addressing (index or name) for one module; mixed addressing is caught on apply."""
        if not isinstance(delta, AlignmentConditions):
            delta = AlignmentConditions.from_dict(delta)
        modules = dict(self.modules)
        for key, value in delta.modules.items():
            modules[key] = modules[key] + value if key in modules else value
        return AlignmentConditions(modules, self.description, self.source)

    def resolve(self, detector: Detector) -> list[ModuleAlignment]:
        """The constants of every module of ``detector`` in global index order (nominal when absent).

        Unknown modules, or one module addressed twice (by index and by name), raise
        :class:`GeometryError` naming the conditions' source."""
        by_name = {m.name: m.index for m in detector.modules}
        out = [NOMINAL] * len(detector.modules)
        seen: dict[int, str] = {}
        problems = []
        for key, value in self.modules.items():
            if _INDEX_RE.match(key):
                index = int(key)
                if index >= len(detector.modules):
                    problems.append((f"modules.{_quote(key)}", f"no module with global index {index}: the detector "
                                     f"{detector.name!r} has {len(detector.modules)} modules (0-{len(detector.modules) - 1})"))
                    continue
            elif key in by_name:
                index = by_name[key]
            else:
                problems.append((f"modules.{_quote(key)}", f"unknown module {key!r} in detector {detector.name!r}"
                                 f"{_suggest(key, list(by_name))}; modules are named s<station>.m<module> "
                                 f"(0-based): {_name_range(detector)}"))
                continue
            if index in seen:
                problems.append((f"modules.{_quote(key)}", f"module {index} ({detector.modules[index].name}) is "
                                 f"already given as {seen[index]!r}"))
                continue
            seen[index] = key
            out[index] = value
        if problems:
            raise GeometryError(self.source or "<alignment>", problems, "alignment conditions")
        return out


def _quote(key: Any) -> str:
    text = str(key)
    return text if re.match(r"^[A-Za-z0-9_-]+$", text) else f'"{text}"'


def _suggest(word: str, choices: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _name_range(detector: Detector) -> str:
    if not detector.modules:
        return "the detector has no modules"
    return f"{detector.modules[0].name} ... {detector.modules[-1].name}"


def read_alignment(path: str | os.PathLike[str]) -> AlignmentConditions:
    """Read an alignment conditions file; a missing or invalid file raises :class:`GeometryError`."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise GeometryError(str(path), [("", f"cannot read alignment file: {exc.strerror or exc}")],
                            "alignment conditions") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise GeometryError(str(path), [("", f"TOML syntax error: {exc}")], "alignment conditions") from None
    return AlignmentConditions._parse(data, source=str(path))


def write_alignment(path: str | os.PathLike[str], conditions: AlignmentConditions | Mapping[str, Any]) -> Path:
    """Write ``conditions`` as TOML (to a temporary name, renamed when complete); returns the path.

    ``read_alignment(write_alignment(p, c)) == c`` exactly (floats are written in shortest
    round-trip form)."""
    if not isinstance(conditions, AlignmentConditions):
        conditions = AlignmentConditions.from_dict(conditions)
    path = Path(path)
    header = "# muone alignment conditions (docs/geometry.md): constants relative to the nominal geometry\n"
    text = header + tomli_w.dumps(conditions.to_dict())
    fd, tmp = tempfile.mkstemp(dir=path.parent if str(path.parent) else ".", prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def random_misalignment(
    detector: Detector,
    rng: Any,
    *,
    dx: float = 0.0,
    dy: float = 0.0,
    dz: float = 0.0,
    du: float = 0.0,
    rx: float = 0.0,
    ry: float = 0.0,
    rz: float = 0.0,
    description: str = "random misalignment",
) -> AlignmentConditions:
    """Gaussian misalignment of every module: the keyword arguments are the RMS of each constant
    (mm, rad), ``rng`` a ``numpy.random.Generator``. Keys are module names. For simulation studies."""
    sigmas = {"dx": dx, "dy": dy, "dz": dz, "du": du, "rx": rx, "ry": ry, "rz": rz}
    modules = {}
    for module in detector.modules:
        values = {p: float(rng.normal(0.0, s)) if s > 0 else 0.0 for p, s in sigmas.items()}
        modules[module.name] = ModuleAlignment(**values)
    return AlignmentConditions(modules, description)
