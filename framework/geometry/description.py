"""Detector descriptions: the TOML format, its validation (pydantic) and the presets.

Format (docs/geometry.md has the full reference and an example)::

    name = "my_detector"
    description = "free text"

    [materials.C_target]            # optional: add or redefine materials
    density = 1.83                  # g/cm^3
    z_over_a = 0.49955              # mol/g
    x0 = 233.3                      # radiation length, mm

    [layouts.six]                   # optional: a module list shared by stations
    modules = [ { kind = "x", z = 180.2 }, ... ]   # z measured from the station start

    [[stations]]
    z = 0.0                         # global z of the station start, mm
    target = { material = "Be", thickness = 15.0, z = 0.0 }   # z: upstream face from the start
    layout = "six"                  # or modules = [ ... ] (z from the station start)
    repeat = 1                      # this many stations ...
    pitch = 1160.0                  # ... every pitch mm (needed when repeat > 1)

    [calorimeter]
    z = 1237.7                      # global z of the front face, mm

Module keys: ``kind`` (x|y|u|v), ``z``; optional with defaults: ``tilt`` and ``stereo`` [rad] and
``sensor_spacing`` [mm] by kind (:data:`~muone.geometry.detector.KIND_DEFAULTS`), ``pitch`` 0.090,
``n_strips`` 1016, ``n_rows`` 2, ``strip_length`` 50.0, ``active_area`` [100.0, 100.0],
``sensor_thickness`` 0.320, ``x_over_x0`` 0.007, ``x``, ``y`` 0.0 (nominal centre).
"""

from __future__ import annotations

import difflib
import math
import os
import tomllib
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from muone.geometry.detector import KIND_DEFAULTS, Calorimeter, Detector, Module, Station, Target
from muone.geometry.errors import GeometryError
from muone.geometry.materials import MATERIALS, Material

_CONFIG = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class MaterialSpec(BaseModel):
    """``[materials.NAME]``."""

    model_config = _CONFIG

    density: float = Field(gt=0, description="Density [g/cm^3].")
    z_over_a: float = Field(gt=0, le=1, description="<Z/A> [mol/g].")
    x0: float = Field(gt=0, description="Radiation length [mm].")
    description: str = ""


class TargetSpec(BaseModel):
    """A station's ``target``."""

    model_config = _CONFIG

    material: str = Field(min_length=1, description="Material name (built-in or [materials]).")
    thickness: float = Field(gt=0, description="Thickness along z [mm].")
    z: float = Field(0.0, description="Upstream face, measured from the station start [mm].")


class ModuleSpec(BaseModel):
    """One module of a station or layout."""

    model_config = _CONFIG

    kind: Literal["x", "y", "u", "v"]
    z: float = Field(description="Centre, measured from the station start [mm].")
    tilt: float | None = Field(None, gt=-math.pi / 2, lt=math.pi / 2,
                               description="Rotation about the strip axis [rad]; default 0.233 (x, y), 0 (u, v).")
    stereo: float | None = Field(None, ge=-math.pi, le=math.pi,
                                 description="Rotation about the beam axis [rad]; default 0, pi/2, pi/4, -pi/4.")
    sensor_spacing: float | None = Field(None, gt=0, description="Sensor mid-plane distance [mm]; default 1.8 (x, y), 4.0 (u, v).")
    pitch: float = Field(0.090, gt=0, description="Strip pitch [mm].")
    n_strips: int = Field(1016, ge=1, description="Strips per row.")
    n_rows: int = Field(2, ge=1, description="Rows (sensor halves) along the strips.")
    strip_length: float = Field(50.0, gt=0, description="Strip length [mm].")
    active_area: Annotated[list[Annotated[float, Field(gt=0)]], Field(min_length=2, max_length=2)] = Field(
        default_factory=lambda: [100.0, 100.0], description="Nominal sensor active area (u, v) [mm].")
    sensor_thickness: float = Field(0.320, gt=0, description="Sensor thickness [mm].")
    x_over_x0: float = Field(0.007, ge=0, description="Material budget of the module [X0].")
    x: float = Field(0.0, description="Nominal centre x [mm].")
    y: float = Field(0.0, description="Nominal centre y [mm].")


class LayoutSpec(BaseModel):
    """``[layouts.NAME]``: a module list shared by stations."""

    model_config = _CONFIG

    modules: list[ModuleSpec] = Field(min_length=1)
    description: str = ""


class StationSpec(BaseModel):
    """One ``[[stations]]`` entry (``repeat`` copies of it)."""

    model_config = _CONFIG

    z: float = Field(description="Global z of the station start [mm].")
    target: TargetSpec | None = None
    layout: str | None = Field(None, description="Name of a [layouts] entry (instead of modules).")
    modules: list[ModuleSpec] | None = None
    repeat: int = Field(1, ge=1, description="Number of identical stations.")
    pitch: float | None = Field(None, gt=0, description="Distance between repeated stations [mm].")


class CalorimeterSpec(BaseModel):
    """``[calorimeter]``."""

    model_config = _CONFIG

    z: float = Field(description="Global z of the front face [mm].")
    x: float = 0.0
    y: float = 0.0
    crystal_size: float = Field(28.5, gt=0, description="Transverse crystal size [mm].")
    n: int = Field(5, ge=1, description="Crystals per side.")
    crystal_length: float = Field(220.0, gt=0, description="Crystal length [mm].")
    material: str = "PbWO4"
    moliere_radius: float = Field(20.0, gt=0, description="Moliere radius [mm].")


class DetectorSpec(BaseModel):
    """A whole detector description file."""

    model_config = _CONFIG

    name: str = ""
    description: str = ""
    materials: dict[str, MaterialSpec] = Field(default_factory=dict)
    layouts: dict[str, LayoutSpec] = Field(default_factory=dict)
    stations: list[StationSpec] = Field(default_factory=list)
    calorimeter: CalorimeterSpec | None = None


# ---------------------------------------------------------------------------------------------
# error messages


def format_loc(loc: tuple[Any, ...]) -> str:
    """``('stations', 1, 'target', 'z')`` -> ``stations[1].target.z``; odd keys are quoted."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            text = str(part)
            if not text.replace("_", "").replace("-", "").isalnum():
                text = f'"{text}"'
            out += f".{text}" if out else text
    return out


def _unwrap(annotation: Any) -> list[Any]:
    """The candidate types of an annotation (Optional/Union/Annotated flattened)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _unwrap(get_args(annotation)[0])
    if origin is Union or type(annotation).__name__ == "UnionType":
        return [t for arg in get_args(annotation) for t in _unwrap(arg) if t is not type(None)]
    return [annotation]


def _step(annotation: Any, part: Any) -> Any:
    for cand in _unwrap(annotation):
        if isinstance(cand, type) and issubclass(cand, BaseModel):
            info = cand.model_fields.get(part) if isinstance(part, str) else None
            if info is not None:
                return info.annotation
        origin = get_origin(cand)
        if origin in (list, tuple) and isinstance(part, int):
            return get_args(cand)[0]
        if origin is dict:
            return get_args(cand)[1]
    return None


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    annotation: Any = model
    for part in loc:
        annotation = _step(annotation, part)
        if annotation is None:
            return []
    for cand in _unwrap(annotation):
        if isinstance(cand, type) and issubclass(cand, BaseModel):
            return list(cand.model_fields)
    return []


def suggest(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def pydantic_problems(exc: ValidationError, model: type[BaseModel]) -> list[tuple[str, str]]:
    """Pydantic errors as ``(key path, message)`` with did-you-mean for unknown keys."""
    problems = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        if err["type"] == "extra_forbidden":
            fields = _fields_at(model, loc[:-1])
            msg = f"unknown key{suggest(loc[-1], fields)}; valid keys: {', '.join(fields)}"
        elif err["type"] == "missing":
            msg = "missing required key"
        else:
            msg = f"{err['msg']} (got {err.get('input')!r})"
        problems.append((format_loc(loc), msg))
    return problems


# ---------------------------------------------------------------------------------------------
# building


def _material(name: str, materials: dict[str, Material], key: str, problems: list[tuple[str, str]]) -> Material | None:
    if name in materials:
        return materials[name]
    problems.append((key, f"unknown material {name!r}{suggest(name, materials)}; available: {', '.join(sorted(materials))}"))
    return None


def _module(spec: ModuleSpec, index: int, station: int, layer: int, z0: float) -> Module:
    defaults = KIND_DEFAULTS[spec.kind]
    return Module(
        index=index,
        name=f"s{station}.m{layer}",
        station=station,
        layer=layer,
        kind=spec.kind,
        z_in_station=spec.z,
        z_nominal=z0 + spec.z,
        x_nominal=spec.x,
        y_nominal=spec.y,
        tilt=defaults["tilt"] if spec.tilt is None else spec.tilt,
        stereo=defaults["stereo"] if spec.stereo is None else spec.stereo,
        sensor_spacing=defaults["sensor_spacing"] if spec.sensor_spacing is None else spec.sensor_spacing,
        pitch=spec.pitch,
        n_strips=spec.n_strips,
        n_rows=spec.n_rows,
        strip_length=spec.strip_length,
        active_area=(spec.active_area[0], spec.active_area[1]),
        sensor_thickness=spec.sensor_thickness,
        x_over_x0=spec.x_over_x0,
    )


def build_detector(spec: DetectorSpec, source: str, name: str = "") -> Detector:
    """A :class:`Detector` from a validated description; semantic problems raise GeometryError."""
    problems: list[tuple[str, str]] = []
    materials = dict(MATERIALS)
    for mname, m in spec.materials.items():
        materials[mname] = Material(mname, m.density, m.z_over_a, m.x0, m.description)

    stations: list[Station] = []
    keys: list[str] = []  # key path of each built station, for messages
    modules: list[Module] = []
    targets: list[Target] = []
    for i, st in enumerate(spec.stations):
        key = f"stations[{i}]"
        mods: list[ModuleSpec] = []
        if st.layout is not None and st.modules is not None:
            problems.append((key, "give either layout or modules, not both"))
        elif st.layout is not None:
            if st.layout in spec.layouts:
                mods = list(spec.layouts[st.layout].modules)
            else:
                avail = ", ".join(sorted(spec.layouts)) or "none (add a [layouts.NAME] table)"
                problems.append((f"{key}.layout", f"unknown layout {st.layout!r}{suggest(st.layout, spec.layouts)}; available: {avail}"))
                continue
        elif st.modules is not None:
            mods = list(st.modules)
        if not mods and st.target is None:
            problems.append((key, "a station needs a target, modules or both"))
            continue
        if st.repeat > 1 and st.pitch is None:
            problems.append((f"{key}.pitch", f"repeat = {st.repeat} needs the distance between the stations (pitch, mm)"))
            continue
        medium = _material(st.target.material, materials, f"{key}.target.material", problems) if st.target else None
        for k in range(st.repeat):
            z0 = st.z + k * (st.pitch or 0.0)
            s_index = len(stations)
            built = [_module(m, len(modules) + j, s_index, j, z0) for j, m in enumerate(mods)]
            target = None
            if st.target is not None and medium is not None:
                target = Target(len(targets), s_index, st.target.material, st.target.thickness, st.target.z,
                                z0 + st.target.z, medium)
                targets.append(target)
            modules += built
            stations.append(Station(s_index, z0, target, tuple(built)))
            keys.append(key if st.repeat == 1 else f"{key} (copy {k} of {st.repeat})")

    # ordering: modules strictly increasing in z over the whole detector
    owner = {m.index: keys[m.station] for m in modules}
    for a, b in zip(modules, modules[1:]):
        if not b.z_nominal > a.z_nominal:
            problems.append((owner[b.index], f"module {b.name} (z = {b.z_nominal} mm) is not downstream of "
                             f"{a.name} (z = {a.z_nominal} mm): stations and their modules must be listed in "
                             "increasing z"))
    for a, b in zip(targets, targets[1:]):
        if b.z_start < a.z_end:
            problems.append((f"{keys[b.station]}.target", f"target {b.index} (z = {b.z_start} mm) overlaps target "
                             f"{a.index} ({a.z_start} - {a.z_end} mm) or lies upstream of it"))
    for t in targets:
        inside = [m.name for m in modules if t.z_start <= m.z_nominal <= t.z_end]
        if inside:
            problems.append((f"{keys[t.station]}.target", f"target {t.index} ({t.z_start} - {t.z_end} mm) "
                             f"contains module {', '.join(inside)}"))

    calorimeter = None
    if spec.calorimeter is not None:
        c = spec.calorimeter
        medium = _material(c.material, materials, "calorimeter.material", problems)
        last = max([m.z_nominal for m in modules] + [t.z_end for t in targets], default=-math.inf)
        if not c.z > last:
            problems.append(("calorimeter.z", f"the calorimeter front (z = {c.z} mm) must lie downstream of the "
                             f"last module or target (z = {last} mm)"))
        if medium is not None:
            calorimeter = Calorimeter(c.z, c.x, c.y, c.crystal_size, c.n, c.crystal_length, c.material,
                                      c.moliere_radius, medium)
    if problems:
        raise GeometryError(source, problems)
    return Detector(
        name=spec.name or name,
        stations=tuple(stations),
        modules=tuple(modules),
        targets=tuple(targets),
        calorimeter=calorimeter,
        materials=materials,
        description=spec.description,
        source=source,
    )


def detector_from_dict(data: dict[str, Any], source: str = "<dict>", name: str = "") -> Detector:
    """A detector from a parsed description (the TOML content as a dict)."""
    if not isinstance(data, dict):
        raise GeometryError(source, [("", f"expected a table, got {type(data).__name__}")])
    try:
        spec = DetectorSpec.model_validate(data)
    except ValidationError as exc:
        raise GeometryError(source, pydantic_problems(exc, DetectorSpec)) from None
    return build_detector(spec, source, name)


def _read_toml(path: Path, what: str) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise GeometryError(str(path), [("", f"cannot read {what}: {exc.strerror or exc}")], what) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise GeometryError(str(path), [("", f"TOML syntax error: {exc}")], what) from None


def load_detector(path: str | os.PathLike[str]) -> Detector:
    """A detector from a description file; a missing or invalid file raises GeometryError (an
    InputError) naming the file and the key path."""
    path = Path(path)
    return detector_from_dict(_read_toml(path, "detector description"), str(path), path.stem)


def available_presets() -> list[str]:
    """Names of the shipped presets (sorted)."""
    folder = resources.files("muone.geometry") / "presets"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def preset_path(name: str) -> Path:
    """The TOML file of a preset; an unknown name raises GeometryError listing the available ones."""
    presets = available_presets()
    if name not in presets:
        raise GeometryError(
            "[geometry]",
            [("geometry.preset", f"unknown geometry preset {name!r}{suggest(name, presets)}; available: {', '.join(presets)}")],
            "geometry configuration",
        )
    return Path(str(resources.files("muone.geometry") / "presets" / f"{name}.toml"))


def load_preset(name: str) -> Detector:
    """A shipped preset (:func:`available_presets`)."""
    path = preset_path(name)
    return detector_from_dict(_read_toml(path, "detector description"), f"preset {name} ({path})", name)


def default_detector() -> Detector:
    """The detector of a steering without geometry: one 15 mm Be target at z = 0, no modules, no
    calorimeter (generator-level jobs)."""
    return detector_from_dict(
        {"name": "default", "description": "no detector: one 1.5 cm Be target at z = 0",
         "stations": [{"z": 0.0, "target": {"material": "Be", "thickness": 15.0}}]},
        "<default geometry>",
    )


# ---------------------------------------------------------------------------------------------
# writing


def detector_to_dict(detector: Detector) -> dict[str, Any]:
    """The explicit description of a detector (nominal geometry; alignment is separate)."""
    out: dict[str, Any] = {"name": detector.name}
    if detector.description:
        out["description"] = detector.description
    extra = {n: m for n, m in detector.materials.items() if MATERIALS.get(n) != m}
    if extra:
        out["materials"] = {
            n: {"density": m.density, "z_over_a": m.z_over_a, "x0": m.x0, **({"description": m.description} if m.description else {})}
            for n, m in extra.items()
        }
    stations = []
    for s in detector.stations:
        entry: dict[str, Any] = {"z": s.z}
        if s.target is not None:
            t = s.target
            entry["target"] = {"material": t.material, "thickness": t.thickness, "z": t.z_in_station}
        if s.modules:
            entry["modules"] = [
                {
                    "kind": m.kind, "z": m.z_in_station, "tilt": m.tilt, "stereo": m.stereo,
                    "sensor_spacing": m.sensor_spacing, "pitch": m.pitch, "n_strips": m.n_strips,
                    "n_rows": m.n_rows, "strip_length": m.strip_length, "active_area": list(m.active_area),
                    "sensor_thickness": m.sensor_thickness, "x_over_x0": m.x_over_x0,
                    "x": m.x_nominal, "y": m.y_nominal,
                }
                for m in s.modules
            ]
        stations.append(entry)
    out["stations"] = stations
    if detector.calorimeter is not None:
        c = detector.calorimeter
        out["calorimeter"] = {
            "z": c.z, "x": c.x, "y": c.y, "crystal_size": c.crystal_size, "n": c.n,
            "crystal_length": c.crystal_length, "material": c.material, "moliere_radius": c.moliere_radius,
        }
    return out


def write_detector(path: str | os.PathLike[str], detector: Detector) -> Path:
    """Write the explicit description of ``detector`` as TOML (temporary name, then renamed)."""
    import tempfile

    import tomli_w

    path = Path(path)
    text = "# muone detector description (docs/geometry.md)\n" + tomli_w.dumps(detector_to_dict(detector))
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
