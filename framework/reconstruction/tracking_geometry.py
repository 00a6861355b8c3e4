"""Flat geometry tables of the ``tracking`` kernels (:mod:`muone.reconstruction.tracking`).

Built once per worker from a :class:`~muone.geometry.Detector` (aligned geometry):

* a module table: centre, the columns of the rotation (measured direction ``u``, strip direction
  ``v``, normal ``w``), the local ``w`` of the plane where the stub ``u`` is measured, the material
  budget, the strip length and rows (for the row-compatibility check) and the view sensitivity;
* a station table: the two x and two y modules, the stereo (u/v) modules, the role of its tracks,
  the reference z and the scatterers between its modules;
* a scatterer table: thin planes (the module mid-planes, and targets lying between the modules of
  a station) with their material budget.

Units: mm, rad.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from muone.simulation.highland import HIGHLAND_LOG, highland_theta0

__all__ = ["MAX_HITS", "MAX_SCATTERERS", "MAX_STEREO", "TrackingGeometry"]

# ---- module table (float64) columns
CX, CY, CZ, UX, UY, UZ, VX, VY, VZ, WX, WY, WZ, WMEAS, XX0, STRIP_LENGTH, N_ROWS_F, SENS = range(17)
N_MOD_F = 17
# ---- module table (int64) columns
KIND, STATION = 0, 1
N_MOD_I = 2
KIND_X, KIND_Y, KIND_U, KIND_V = 0, 1, 2, 3

#: Most stereo (u/v) modules per station the kernels handle.
MAX_STEREO = 4
#: Most stubs on one track (2 x + 2 y + the stereo modules).
MAX_HITS = 4 + MAX_STEREO
#: Most scatterers (modules and targets between them) per station.
MAX_SCATTERERS = 2 * MAX_HITS

# ---- station table (int64) columns
XA, XB, YA, YB, N_STEREO, S0 = 0, 1, 2, 3, 4, 5
ROLE = S0 + MAX_STEREO
SC_LO, SC_HI, VALID = ROLE + 1, ROLE + 2, ROLE + 3
N_ST_I = VALID + 1
# ---- station table (float64) columns: reference z, then the gating MCS variance per stereo slot
ZREF, G0 = 0, 1
N_ST_F = 1 + MAX_STEREO

# ---- scatterer table (float64) columns: a point of the plane, its normal, x/X0 at normal incidence
# and the Highland log factor 1 + 0.038 ln(x/X0) at normal incidence
PX, PY, PZ, NX, NY, NZ, SXX0, SF0 = range(8)
N_SC_F = 8


@dataclass(frozen=True)
class TrackingGeometry:
    """The tables of the tracking kernels.

    Attributes:
        mod_f: (n_modules, 17) float64, columns ``CX ... SENS`` above. ``WMEAS`` is the local w of
            the plane where the stub ``u`` is measured (0: mid-plane, ``-spacing/2``: seed sensor);
            ``SENS`` is 1 / |du/dc| for x (y) modules with c the global x (y) of a track parallel
            to z (it converts a u error into an x or y error for seeding).
        mod_i: (n_modules, 2) int64: kind (x 0, y 1, u 2, v 3), station.
        st_i: (n_stations, N_ST_I) int64: the x modules ``XA < XB``, y modules ``YA < YB``, number
            and indices of the stereo modules, role (1 when a target lies upstream of the
            station's modules), the scatterer range ``[SC_LO, SC_HI)`` and ``VALID`` (1 when the
            station has exactly two x and two y modules and at most MAX_STEREO stereo modules).
        st_f: (n_stations, N_ST_F) float64: reference z (mean z of the station's module centres)
            and, per stereo slot, the variance [mm^2] of the stereo residual after an x/y-pair seed
            caused by multiple scattering of a 1 GeV particle parallel to z (scales as 1/p^2).
        sc_f: (n_scatterers, 8) float64: scattering planes (point, unit normal, x/X0 at normal
            incidence, and the Highland factor 1 + 0.038 ln(x/X0) there), sorted by z within each station.
        skipped: names of stations without the x x y y layout (not tracked).
    """

    mod_f: np.ndarray
    mod_i: np.ndarray
    st_i: np.ndarray
    st_f: np.ndarray
    sc_f: np.ndarray
    skipped: tuple[str, ...] = ()

    @property
    def n_modules(self) -> int:
        return len(self.mod_f)

    @property
    def max_hits(self) -> int:
        """Most stubs a track of this detector can have."""
        if not len(self.st_i):
            return 4
        return int(4 + self.st_i[:, N_STEREO].max())

    @classmethod
    def from_detector(cls, detector: Any, u_reference: str = "midplane") -> TrackingGeometry:
        """Tables of ``detector`` (with its alignment). ``u_reference``: where the stubs' ``u`` is
        measured, ``"midplane"`` (w = 0) or ``"seed"`` (the seed sensor, w = -spacing/2)."""
        if u_reference not in ("midplane", "seed"):
            raise ValueError(f"u_reference must be 'midplane' or 'seed', not {u_reference!r}")
        a = detector.module_arrays()
        n = len(a["z"])
        mod_f = np.zeros((n, N_MOD_F))
        for col, key in ((CX, "x"), (CY, "y"), (CZ, "z"), (UX, "ux"), (UY, "uy"), (UZ, "uz"), (VX, "vx"), (VY, "vy"),
                         (VZ, "vz"), (WX, "wx"), (WY, "wy"), (WZ, "wz"), (XX0, "x_over_x0"), (STRIP_LENGTH, "strip_length")):
            mod_f[:, col] = a[key]
        mod_f[:, N_ROWS_F] = a["n_rows"]
        mod_f[:, WMEAS] = 0.0 if u_reference == "midplane" else -0.5 * a["sensor_spacing"]
        # sensitivity of u to the view coordinate for a track parallel to z: du/dx = ux - wx uz/wz
        with np.errstate(divide="ignore", invalid="ignore"):
            dudx = a["ux"] - a["wx"] * a["uz"] / a["wz"]
            dudy = a["uy"] - a["wy"] * a["uz"] / a["wz"]
            sens = np.where(a["kind"] == KIND_Y, 1.0 / np.abs(dudy), 1.0 / np.abs(dudx))
        mod_f[:, SENS] = np.where(np.isfinite(sens), sens, 1.0)
        mod_i = np.zeros((n, N_MOD_I), np.int64)
        mod_i[:, KIND] = a["kind"]
        mod_i[:, STATION] = a["station"]

        st_i = np.zeros((len(detector.stations), N_ST_I), np.int64)
        st_f = np.zeros((len(detector.stations), N_ST_F))
        scatterers: list[list[float]] = []
        skipped = []
        for s in detector.stations:
            mods = list(s.modules)
            row = st_i[s.index]
            row[XA:YB + 1] = -1
            row[SC_LO] = row[SC_HI] = len(scatterers)
            if not mods:
                continue
            xs = [m.index for m in mods if m.kind == "x"]
            ys = [m.index for m in mods if m.kind == "y"]
            stereo = [m.index for m in mods if m.kind in ("u", "v")]
            st_f[s.index, ZREF] = float(np.mean([m.z for m in mods]))
            first_z = min(m.z for m in mods)
            last_z = max(m.z for m in mods)
            row[ROLE] = 1 if (s.target is not None and s.target.z_end <= first_z) else 0
            n_targets_inside = sum(1 for t in detector.targets if first_z < t.z_start and t.z_end < last_z)
            if len(xs) != 2 or len(ys) != 2 or len(stereo) > MAX_STEREO or len(mods) + n_targets_inside > MAX_SCATTERERS:
                skipped.append(s.name)
                continue
            row[XA], row[XB] = sorted(xs)
            row[YA], row[YB] = sorted(ys)
            row[N_STEREO] = len(stereo)
            row[S0:S0 + len(stereo)] = stereo
            row[VALID] = 1
            planes = []
            for m in mods:
                planes.append([m.x, m.y, m.z, *m.normal, m.x_over_x0])
            for t in detector.targets:  # material between the station's modules (none in the presets)
                if first_z < t.z_start and t.z_end < last_z:
                    planes.append([0.0, 0.0, t.z_centre, 0.0, 0.0, 1.0, t.x_over_x0])
            for plane in planes:
                xx0 = plane[6]
                plane.append(1.0 + HIGHLAND_LOG * math.log(xx0) if xx0 > 0 else 0.0)
            planes.sort(key=lambda p: p[2])
            scatterers.extend(planes)
            row[SC_HI] = len(scatterers)
            for k, j in enumerate(stereo):
                st_f[s.index, G0 + k] = _gating_variance(a, row, j, np.array(planes))
        if skipped:
            warnings.warn(f"tracking: stations {', '.join(skipped)} do not have two x and two y modules "
                          f"(and at most {MAX_STEREO} u/v modules, {MAX_SCATTERERS} layers); they are not tracked",
                          stacklevel=2)
        sc_f = np.array(scatterers, np.float64).reshape(len(scatterers), N_SC_F)
        return cls(np.ascontiguousarray(mod_f), np.ascontiguousarray(mod_i), np.ascontiguousarray(st_i),
                   np.ascontiguousarray(st_f), np.ascontiguousarray(sc_f), tuple(skipped))


def _arm(z: float, z_scatter: float) -> float:
    """Lever arm of a scatter at ``z_scatter`` on a measurement at ``z`` (0 upstream of it)."""
    return max(z - z_scatter, 0.0)


def _gating_variance(a: dict[str, np.ndarray], row: np.ndarray, j: int, planes: np.ndarray) -> float:
    """Variance [mm^2] of the residual of stereo module ``j`` after a seed through the two x and the
    two y modules, from multiple scattering of a 1 GeV (beta = 1) particle parallel to z.

    A deflection (theta_x, theta_y) at scatterer k displaces the track by theta (z - z_k) for
    z > z_k. The seed interpolates x between the x modules (weights 1 - f, f) and y between the
    y modules, so the residual is linear in the deflections and its variance is
    sum_k theta_k^2 [a_j^2 (D_jk - (1 - f) D_Ak - f D_Bk)^2 + b_j^2 (same in y)]."""
    z = a["z"]
    xa, xb, ya, yb = (int(row[c]) for c in (XA, XB, YA, YB))
    zj = z[j]
    dudx = a["ux"][j] - a["wx"][j] * a["uz"][j] / a["wz"][j]
    dudy = a["uy"][j] - a["wy"][j] * a["uz"][j] / a["wz"][j]
    fx = (zj - z[xa]) / (z[xb] - z[xa])
    fy = (zj - z[ya]) / (z[yb] - z[ya])
    total = 0.0
    for p in planes:
        zk = p[PZ]
        cos_incidence = abs(p[NZ])
        theta = float(highland_theta0(1.0, 1.0, p[SXX0] / max(cos_incidence, 1e-6)))
        rx = _arm(zj, zk) - (1 - fx) * _arm(z[xa], zk) - fx * _arm(z[xb], zk)
        ry = _arm(zj, zk) - (1 - fy) * _arm(z[ya], zk) - fy * _arm(z[yb], zk)
        total += theta * theta * (dudx * dudx * rx * rx + dudy * dudy * ry * ry)
    return total if math.isfinite(total) else 0.0
