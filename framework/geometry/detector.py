"""The detector objects: :class:`Module`, :class:`Target`, :class:`Station`, :class:`Calorimeter`,
:class:`Detector`.

Units: mm, rad. Global frame: right-handed, z along the beam, x horizontal, y vertical; z = 0 is
the start of the first station (the upstream face of its target when it has one).

Module frame and transforms (also in docs/geometry.md):

* local coordinates ``(u, v, w)``: ``u`` the measured coordinate (across the strips), ``v`` along
  the strips, ``w = u x v`` the sensor normal (downstream for an unrotated module). The origin is the
  module centre: midway between its two sensors (sensor 0 at ``w = -spacing/2``, sensor 1 at
  ``w = +spacing/2``), at the centre of the strip area.
* orientation ``R = R_align R_z(stereo) R_y(tilt)``, whose columns are the global directions of
  ``u, v, w``. An unrotated module has ``u || x, v || y, w || z``. ``tilt`` rotates it about its
  strip axis (``v``, right-handed), then ``stereo`` about the beam axis (z, right-handed: from x
  towards y), then the alignment rotations ``R_align = R_z(rz) R_y(ry) R_x(rx)`` about axes parallel
  to the global ones through the module centre.
* position: ``X = C + R (u, v, w)``, with the centre
  ``C = (x + dx, y + dy, z + dz) + du * R e_u`` (nominal centre plus alignment shifts).

So with no tilt the measured direction is ``(cos(stereo), sin(stereo), 0)`` and
``u = (x - Cx) cos(stereo) + (y - Cy) sin(stereo)``: x modules (stereo 0) measure +x, y modules
(pi/2) measure +y, u modules (+pi/4) measure (x + y)/sqrt(2), v modules (-pi/4) (x - y)/sqrt(2).
For a tilted x module the measured direction is ``(cos(tilt), 0, -sin(tilt))`` and a track parallel
to z at x crosses the mid-plane at ``u = (x - Cx) / cos(tilt)``.

Strips: ``n_strips`` per row, pitch ``pitch``, strip ``s`` (0-based, increasing with u) has its
centre at ``u = (s + 0.5 - n_strips/2) * pitch``; the rows (sensor halves) split the strip length
along v: row ``r`` covers ``v`` in ``[-n_rows/2 + r, -n_rows/2 + r + 1) * strip_length`` (for two
rows: row 0 is ``v < 0``, row 1 is ``v >= 0``). Stub positions in half-strip units ``h`` sit at
``u_of_strip(h / 2)``.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from muone.geometry.alignment import NOMINAL, AlignmentConditions, ModuleAlignment
from muone.geometry.materials import MATERIALS, Material

#: Module kinds and their integer codes in :meth:`Detector.module_arrays`.
KINDS = ("x", "y", "u", "v")
KIND_CODES = {k: i for i, k in enumerate(KINDS)}

#: Nominal values by kind (PHYSICS.md section 8): tilt [rad] about the strip axis, stereo angle
#: [rad] about the beam axis, sensor spacing [mm] (2022 station).
KIND_DEFAULTS: dict[str, dict[str, float]] = {
    "x": {"tilt": 0.233, "stereo": 0.0, "sensor_spacing": 1.8},
    "y": {"tilt": 0.233, "stereo": math.pi / 2, "sensor_spacing": 1.8},
    "u": {"tilt": 0.0, "stereo": math.pi / 4, "sensor_spacing": 4.0},
    "v": {"tilt": 0.0, "stereo": -math.pi / 4, "sensor_spacing": 4.0},
}


def rot_x(a: float) -> np.ndarray:
    """Right-handed rotation by ``a`` about x."""
    c, s = math.cos(a), math.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def rot_y(a: float) -> np.ndarray:
    """Right-handed rotation by ``a`` about y."""
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def rot_z(a: float) -> np.ndarray:
    """Right-handed rotation by ``a`` about z."""
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _scalar(a: np.ndarray) -> Any:
    """0-d arrays to numpy scalars; other arrays unchanged."""
    return a[()] if a.ndim == 0 else a


@dataclass(frozen=True)
class Module:
    """One CMS 2S module (two strip sensors). See the module docstring for the frame conventions.

    Attributes:
        index: global index (0-based, modules sorted by z over the whole detector).
        name: ``"s<station>.m<layer>"`` (both 0-based), e.g. ``"s1.m3"``.
        station: index of the station it belongs to.
        layer: position inside its station (0-based, z order).
        kind: ``"x"``, ``"y"``, ``"u"`` or ``"v"``.
        z_in_station: nominal z of the centre measured from the station start [mm].
        z_nominal, x_nominal, y_nominal: nominal centre in the global frame [mm].
        tilt: rotation about the strip axis [rad] (0.233 for x/y modules).
        stereo: rotation about the beam axis [rad] (0, pi/2, +pi/4, -pi/4 for x, y, u, v).
        sensor_spacing: distance between the mid-planes of the two sensors [mm].
        pitch: strip pitch [mm]; n_strips: strips per row; n_rows: rows (sensor halves);
        strip_length: length of one strip [mm]; active_area: nominal (u, v) size of a sensor [mm];
        sensor_thickness: [mm]; x_over_x0: material budget of the whole module in radiation lengths.
        alignment: the alignment constants applied (all zero: nominal).
    """

    index: int
    name: str
    station: int
    layer: int
    kind: str
    z_in_station: float
    z_nominal: float
    x_nominal: float = 0.0
    y_nominal: float = 0.0
    tilt: float = 0.233
    stereo: float = 0.0
    sensor_spacing: float = 1.8
    pitch: float = 0.090
    n_strips: int = 1016
    n_rows: int = 2
    strip_length: float = 50.0
    active_area: tuple[float, float] = (100.0, 100.0)
    sensor_thickness: float = 0.320
    x_over_x0: float = 0.007
    alignment: ModuleAlignment = NOMINAL
    rotation: np.ndarray = field(init=False, repr=False, compare=False)
    centre: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        a = self.alignment
        nominal = rot_z(self.stereo) @ rot_y(self.tilt)
        rot = rot_z(a.rz) @ rot_y(a.ry) @ rot_x(a.rx) @ nominal
        centre = np.array([self.x_nominal + a.dx, self.y_nominal + a.dy, self.z_nominal + a.dz]) + a.du * rot[:, 0]
        rot.flags.writeable = False
        centre.flags.writeable = False
        object.__setattr__(self, "rotation", rot)
        object.__setattr__(self, "centre", centre)

    # ------------------------------------------------------------------ position and directions
    @property
    def x(self) -> float:
        """Global x of the (aligned) centre [mm]."""
        return float(self.centre[0])

    @property
    def y(self) -> float:
        """Global y of the (aligned) centre [mm]."""
        return float(self.centre[1])

    @property
    def z(self) -> float:
        """Global z of the (aligned) centre [mm]."""
        return float(self.centre[2])

    @property
    def measured_direction(self) -> np.ndarray:
        """Unit vector of increasing ``u`` (across the strips) in the global frame."""
        return self.rotation[:, 0].copy()

    @property
    def strip_direction(self) -> np.ndarray:
        """Unit vector of increasing ``v`` (along the strips) in the global frame."""
        return self.rotation[:, 1].copy()

    @property
    def normal(self) -> np.ndarray:
        """Unit normal ``w = u x v`` of the sensors in the global frame (downstream-pointing)."""
        return self.rotation[:, 2].copy()

    @property
    def kind_code(self) -> int:
        """Integer code of the kind: x 0, y 1, u 2, v 3."""
        return KIND_CODES[self.kind]

    def sensor_w(self, sensor: Any) -> Any:
        """Local w of the mid-plane of sensor 0 (``-spacing/2``) or 1 (``+spacing/2``)."""
        s = np.asarray(sensor)
        return _scalar((s - 0.5) * self.sensor_spacing)

    # ------------------------------------------------------------------ transforms
    def local_to_global(self, u: Any, v: Any, w: Any = 0.0) -> tuple[Any, Any, Any]:
        """Global ``(x, y, z)`` [mm] of local ``(u, v, w)``; vectorised (numpy broadcasting)."""
        u, v, w = np.asarray(u, float), np.asarray(v, float), np.asarray(w, float)
        r, c = self.rotation, self.centre
        x = c[0] + r[0, 0] * u + r[0, 1] * v + r[0, 2] * w
        y = c[1] + r[1, 0] * u + r[1, 1] * v + r[1, 2] * w
        z = c[2] + r[2, 0] * u + r[2, 1] * v + r[2, 2] * w
        return _scalar(x), _scalar(y), _scalar(z)

    def global_to_local(self, x: Any, y: Any, z: Any) -> tuple[Any, Any, Any]:
        """Local ``(u, v, w)`` [mm] of global ``(x, y, z)``; vectorised (``R^T (X - C)``)."""
        r, c = self.rotation, self.centre
        dx = np.asarray(x, float) - c[0]
        dy = np.asarray(y, float) - c[1]
        dz = np.asarray(z, float) - c[2]
        u = r[0, 0] * dx + r[1, 0] * dy + r[2, 0] * dz
        v = r[0, 1] * dx + r[1, 1] * dy + r[2, 1] * dz
        w = r[0, 2] * dx + r[1, 2] * dy + r[2, 2] * dz
        return _scalar(u), _scalar(v), _scalar(w)

    def intersect(self, x: Any, y: Any, z: Any, tx: Any, ty: Any, w: Any = 0.0) -> tuple[Any, Any, Any, Any, Any]:
        """Where straight lines cross the plane ``w`` (0: the module mid-plane; ``sensor_w(s)``: a sensor).

        A line is given by a point ``(x, y, z)`` and slopes ``tx = dx/dz``, ``ty = dy/dz``.
        Returns ``(u, v, x_hit, y_hit, z_hit)``; vectorised. Lines parallel to the plane give nan."""
        x, y, z = np.asarray(x, float), np.asarray(y, float), np.asarray(z, float)
        tx, ty = np.asarray(tx, float), np.asarray(ty, float)
        pu, pv, pw = self.global_to_local(x, y, z)
        r = self.rotation
        du = r[0, 0] * tx + r[1, 0] * ty + r[2, 0]
        dv = r[0, 1] * tx + r[1, 1] * ty + r[2, 1]
        dw = r[0, 2] * tx + r[1, 2] * ty + r[2, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(dw != 0.0, (np.asarray(w, float) - pw) / dw, np.nan)
        return (_scalar(pu + t * du), _scalar(pv + t * dv), _scalar(x + t * tx), _scalar(y + t * ty), _scalar(z + t))

    # ------------------------------------------------------------------ strips
    @property
    def strip_area(self) -> tuple[float, float]:
        """Size (u, v) [mm] covered by the strips: ``n_strips * pitch``, ``n_rows * strip_length``."""
        return self.n_strips * self.pitch, self.n_rows * self.strip_length

    def strip_of(self, u: Any) -> Any:
        """Strip number (0 .. n_strips-1, int64) containing local ``u``; -1 outside (or nan)."""
        u = np.asarray(u, float)
        with np.errstate(invalid="ignore"):
            s = np.floor(u / self.pitch + 0.5 * self.n_strips)
            ok = (s >= 0) & (s < self.n_strips)
        return _scalar(np.where(ok, s, -1).astype(np.int64))

    def u_of_strip(self, strip: Any) -> Any:
        """Local ``u`` [mm] of the centre of ``strip`` (may be fractional: half strips ``h`` -> ``h/2``)."""
        s = np.asarray(strip, float)
        return _scalar((s + 0.5 - 0.5 * self.n_strips) * self.pitch)

    def row_of(self, v: Any) -> Any:
        """Row (sensor half, 0 .. n_rows-1) containing local ``v``; -1 outside (or nan)."""
        v = np.asarray(v, float)
        with np.errstate(invalid="ignore"):
            r = np.floor(v / self.strip_length + 0.5 * self.n_rows)
            ok = (r >= 0) & (r < self.n_rows)
        return _scalar(np.where(ok, r, -1).astype(np.int64))

    def v_of_row(self, row: Any) -> Any:
        """Local ``v`` [mm] of the middle of ``row``."""
        r = np.asarray(row, float)
        return _scalar((r + 0.5 - 0.5 * self.n_rows) * self.strip_length)

    def in_acceptance(self, u: Any, v: Any) -> Any:
        """True where local ``(u, v)`` lies on a strip."""
        return _scalar((np.asarray(self.strip_of(u)) >= 0) & (np.asarray(self.row_of(v)) >= 0))

    def with_alignment(self, alignment: ModuleAlignment | None) -> Module:
        """A copy with these alignment constants (None: nominal)."""
        return replace(self, alignment=alignment or NOMINAL)


@dataclass(frozen=True)
class Target:
    """A target slab, perpendicular to the beam, infinite transversely.

    Attributes:
        index: target index (0-based, z order); ``mc.target`` refers to it.
        station: index of the station it belongs to.
        material: material name (``"Be"``); ``medium`` the :class:`Material` itself.
        thickness: [mm].
        z_in_station: upstream face measured from the station start [mm].
        z_start: global z of the upstream face [mm].
    """

    index: int
    station: int
    material: str
    thickness: float
    z_in_station: float
    z_start: float
    medium: Material = field(repr=False)

    @property
    def z_end(self) -> float:
        """Global z of the downstream face [mm]."""
        return self.z_start + self.thickness

    @property
    def z_centre(self) -> float:
        """Global z of the middle [mm]."""
        return self.z_start + 0.5 * self.thickness

    @property
    def electron_areal_density(self) -> float:
        """Electrons per **cm^2**: rho [g/cm^3] * N_A * (Z/A) [mol/g] * thickness [cm]."""
        return self.medium.electron_areal_density(self.thickness)

    @property
    def luminosity_per_muon(self) -> float:
        """Integrated mu-e luminosity of one beam muon crossing the target [nb^-1]
        (``electron_areal_density`` * 1e-33, since 1 nb^-1 = 1e33 cm^-2)."""
        return self.electron_areal_density * 1e-33

    @property
    def x_over_x0(self) -> float:
        """Thickness in radiation lengths."""
        return self.medium.x_over_x0(self.thickness)


@dataclass(frozen=True)
class Station:
    """A tracking station: an optional target followed by modules.

    Attributes:
        index: station index (0-based, z order); name ``"s<index>"``.
        z: global z of the station start [mm] (the upstream face of its target, when it has one at
            offset 0).
        target: the target, or None (e.g. the upstream station measuring the incoming muon).
        modules: its modules in z order.
    """

    index: int
    z: float
    target: Target | None
    modules: tuple[Module, ...]

    @property
    def name(self) -> str:
        return f"s{self.index}"

    @property
    def module_indices(self) -> list[int]:
        """Global indices of its modules."""
        return [m.index for m in self.modules]


@dataclass(frozen=True)
class Calorimeter:
    """An n x n matrix of crystals with its front face perpendicular to the beam.

    Cells are numbered ``iy * n + ix``, ``ix`` (``iy``) = 0 at the smallest x (y).

    Attributes:
        z: global z of the front face [mm]; x, y: centre of the front face [mm].
        crystal_size: transverse size of a crystal [mm]; n: crystals per side;
        crystal_length: [mm]; material: name; medium: the :class:`Material`;
        moliere_radius: [mm].
    """

    z: float
    x: float = 0.0
    y: float = 0.0
    crystal_size: float = 28.5
    n: int = 5
    crystal_length: float = 220.0
    material: str = "PbWO4"
    moliere_radius: float = 20.0
    medium: Material = field(default=MATERIALS["PbWO4"], repr=False)

    @property
    def z_back(self) -> float:
        return self.z + self.crystal_length

    @property
    def width(self) -> float:
        """Side of the front face [mm]."""
        return self.n * self.crystal_size

    @property
    def n_cells(self) -> int:
        return self.n * self.n

    @property
    def depth_x0(self) -> float:
        """Crystal length in radiation lengths."""
        return self.medium.x_over_x0(self.crystal_length)

    def cell_of(self, x: Any, y: Any) -> Any:
        """Cell index at front-face position ``(x, y)`` [mm]; -1 outside (vectorised)."""
        with np.errstate(invalid="ignore"):
            ix = np.floor((np.asarray(x, float) - self.x) / self.crystal_size + 0.5 * self.n)
            iy = np.floor((np.asarray(y, float) - self.y) / self.crystal_size + 0.5 * self.n)
            ok = (ix >= 0) & (ix < self.n) & (iy >= 0) & (iy < self.n)
        return _scalar(np.where(ok, iy * self.n + ix, -1).astype(np.int64))

    def cell_centre(self, cell: Any) -> tuple[Any, Any]:
        """``(x, y)`` [mm] of the centre of ``cell`` on the front face (vectorised)."""
        c = np.asarray(cell)
        ix, iy = c % self.n, c // self.n
        x = self.x + (ix + 0.5 - 0.5 * self.n) * self.crystal_size
        y = self.y + (iy + 0.5 - 0.5 * self.n) * self.crystal_size
        return _scalar(np.asarray(x, float)), _scalar(np.asarray(y, float))


@dataclass(frozen=True, eq=False)
class Detector:
    """A detector: stations (targets and modules) and an optional calorimeter.

    Attributes:
        name: preset or description name.
        stations: in z order.
        modules: every module, global index order (sorted by z).
        targets: every target, index order (sorted by z).
        calorimeter: or None.
        materials: the materials table the description used (built-ins plus its own).
        alignment: the conditions applied (None: nominal geometry).
        description: free text; source: the preset name or file it came from.
    """

    name: str
    stations: tuple[Station, ...]
    modules: tuple[Module, ...]
    targets: tuple[Target, ...]
    calorimeter: Calorimeter | None
    materials: Mapping[str, Material] = field(default_factory=lambda: dict(MATERIALS))
    alignment: AlignmentConditions | None = None
    description: str = ""
    source: str = ""

    def __repr__(self) -> str:
        calo = "calorimeter" if self.calorimeter else "no calorimeter"
        aligned = ", aligned" if self.alignment else ""
        return (f"Detector({self.name!r}: {len(self.stations)} stations, {len(self.modules)} modules, "
                f"{len(self.targets)} targets, {calo}{aligned})")

    def module(self, key: int | str) -> Module:
        """A module by global index or name (``"s1.m3"``); KeyError when unknown."""
        if isinstance(key, int) and not isinstance(key, bool):
            if 0 <= key < len(self.modules):
                return self.modules[key]
        else:
            for m in self.modules:
                if m.name == key:
                    return m
        raise KeyError(f"no module {key!r} in detector {self.name!r}")

    def with_alignment(self, conditions: AlignmentConditions | Mapping[str, Any] | str | None) -> Detector:
        """An aligned copy: the constants of ``conditions`` (an :class:`AlignmentConditions`, a dict
        accepted by :meth:`AlignmentConditions.from_dict`, or the path of a conditions file) applied
        to the *nominal* geometry. None gives the nominal geometry. Unknown modules raise
        :class:`~muone.geometry.GeometryError` (an InputError)."""
        if conditions is None:
            per_module: list[ModuleAlignment] = [NOMINAL] * len(self.modules)
        else:
            if isinstance(conditions, str) or hasattr(conditions, "__fspath__"):
                from muone.geometry.alignment import read_alignment

                conditions = read_alignment(conditions)  # type: ignore[arg-type]
            elif not isinstance(conditions, AlignmentConditions):
                conditions = AlignmentConditions.from_dict(conditions)
            per_module = conditions.resolve(self)
        modules = tuple(m.with_alignment(a) for m, a in zip(self.modules, per_module))
        stations = tuple(replace(s, modules=tuple(modules[m.index] for m in s.modules)) for s in self.stations)
        return replace(self, stations=stations, modules=modules, alignment=conditions)

    def nominal(self) -> Detector:
        """The copy without alignment constants."""
        return self.with_alignment(None)

    # ------------------------------------------------------------------ flat views for kernels
    def module_arrays(self) -> dict[str, np.ndarray]:
        """Flat arrays indexed by global module index, for numba kernels (fresh, writable copies).

        float64: ``z, x, y`` (aligned centre), ``z_nominal, x_nominal, y_nominal``, ``tilt``,
        ``stereo``, ``cos_stereo, sin_stereo, cos_tilt, sin_tilt``, alignment ``dx, dy, dz, du, rx,
        ry, rz``, ``pitch, strip_length, sensor_spacing, sensor_thickness, x_over_x0``, the
        orientation columns ``ux, uy, uz`` (measured direction), ``vx, vy, vz`` (strip direction),
        ``wx, wy, wz`` (normal) and ``rotation`` (shape (n, 3, 3), ``rotation[i] = R``);
        int32: ``index, station, layer, kind`` (x 0, y 1, u 2, v 3), ``n_strips, n_rows``.
        Global from local: ``X = (x, y, z) + u (ux, uy, uz) + v (vx, vy, vz) + w (wx, wy, wz)``.
        """
        ms = self.modules
        f = lambda values: np.array(list(values), dtype=np.float64)  # noqa: E731
        i = lambda values: np.array(list(values), dtype=np.int32)  # noqa: E731
        rotation = np.array([m.rotation for m in ms], dtype=np.float64).reshape(len(ms), 3, 3)
        out = {
            "index": i(m.index for m in ms),
            "station": i(m.station for m in ms),
            "layer": i(m.layer for m in ms),
            "kind": i(m.kind_code for m in ms),
            "n_strips": i(m.n_strips for m in ms),
            "n_rows": i(m.n_rows for m in ms),
            "z": f(m.centre[2] for m in ms),
            "x": f(m.centre[0] for m in ms),
            "y": f(m.centre[1] for m in ms),
            "z_nominal": f(m.z_nominal for m in ms),
            "x_nominal": f(m.x_nominal for m in ms),
            "y_nominal": f(m.y_nominal for m in ms),
            "tilt": f(m.tilt for m in ms),
            "stereo": f(m.stereo for m in ms),
            "cos_stereo": f(math.cos(m.stereo) for m in ms),
            "sin_stereo": f(math.sin(m.stereo) for m in ms),
            "cos_tilt": f(math.cos(m.tilt) for m in ms),
            "sin_tilt": f(math.sin(m.tilt) for m in ms),
            "pitch": f(m.pitch for m in ms),
            "strip_length": f(m.strip_length for m in ms),
            "sensor_spacing": f(m.sensor_spacing for m in ms),
            "sensor_thickness": f(m.sensor_thickness for m in ms),
            "x_over_x0": f(m.x_over_x0 for m in ms),
            "rotation": np.ascontiguousarray(rotation),
        }
        for p in ("dx", "dy", "dz", "du", "rx", "ry", "rz"):
            out[p] = f(getattr(m.alignment, p) for m in ms)
        for col, axis in enumerate("uvw"):
            for row, comp in enumerate("xyz"):
                out[f"{axis}{comp}"] = np.ascontiguousarray(rotation[:, row, col])
        return out

    def target_arrays(self) -> dict[str, np.ndarray]:
        """Flat arrays indexed by target index: float64 ``z_start, z_end, thickness,
        electron_areal_density`` (cm^-2), ``x_over_x0``; int32 ``station``."""
        ts = self.targets
        return {
            "z_start": np.array([t.z_start for t in ts], dtype=np.float64),
            "z_end": np.array([t.z_end for t in ts], dtype=np.float64),
            "thickness": np.array([t.thickness for t in ts], dtype=np.float64),
            "electron_areal_density": np.array([t.electron_areal_density for t in ts], dtype=np.float64),
            "x_over_x0": np.array([t.x_over_x0 for t in ts], dtype=np.float64),
            "station": np.array([t.station for t in ts], dtype=np.int32),
        }

    def upstream_modules(self, target: int | Target) -> list[Module]:
        """The modules just upstream of a target (those of the nearest station before it that has
        modules upstream of the target): they measure the incoming muon (PHYSICS.md section 8)."""
        t = self.targets[target] if isinstance(target, int) else target
        before = [m for m in self.modules if m.z_nominal < t.z_start]
        if not before:
            return []
        last_station = before[-1].station
        return [m for m in before if m.station == last_station]

    def downstream_modules(self, target: int | Target) -> list[Module]:
        """The modules after a target and before the next one (they measure its outgoing tracks)."""
        t = self.targets[target] if isinstance(target, int) else target
        nxt = self.targets[t.index + 1].z_start if t.index + 1 < len(self.targets) else math.inf
        return [m for m in self.modules if t.z_end < m.z_nominal < nxt]

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        """The explicit detector description (every station and module written out, no layouts);
        :func:`muone.geometry.detector_from_dict` of it rebuilds this detector (without alignment)."""
        from muone.geometry.description import detector_to_dict

        return detector_to_dict(self)

    def to_toml(self) -> str:
        """:meth:`to_dict` as TOML text."""
        import tomli_w

        return tomli_w.dumps(self.to_dict())

    def fingerprint(self) -> str:
        """sha256 of the description and the alignment constants (for provenance)."""
        data = {"detector": self.to_dict(), "alignment": self.alignment.to_dict() if self.alignment else None}
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
