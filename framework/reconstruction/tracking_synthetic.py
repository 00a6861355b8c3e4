"""Synthetic stubs for developing and validating ``tracking`` without the simulation chain.

Straight lines are traced through the geometry in z order (numpy, vectorised over the lines): at
each module the crossing of the measurement plane (``u_reference``: the mid-plane, or the seed
sensor) gives the true local (u, v); then, optionally, a Gaussian multiple-scattering deflection
(Highland with the module's x/X0 along the line, both projections) at the module mid-plane,
and for targets a thick-scatterer deflection and displacement. Stubs are the crossings inside the
strip area with u smeared by the intrinsic error, in the record layout of the ``stubs`` contract
(docs/reconstruction.md); noise stubs are uniform over the strip area. Used by the tests and the
validation studies of :mod:`muone.reconstruction.tracking_validation`; not a detector simulation
(``sim_tracker`` is).

Units: mm, rad, GeV.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import awkward as ak
import numpy as np
from muone.simulation.highland import highland_theta0

__all__ = ["DEFAULT_ERRORS", "Traced", "electron_momentum", "stub_events", "trace_lines"]

#: Default intrinsic u errors [mm] of synthetic stubs by module kind (tilted x/y ~ 10-15 um,
#: untilted u/v: binary strips, 90 um / sqrt(12)).
DEFAULT_ERRORS = {"x": 0.012, "y": 0.012, "u": 0.026, "v": 0.026}


@dataclass
class Traced:
    """Result of :func:`trace_lines` for n lines and the detector's m modules.

    Attributes:
        u, v: (n, m) true local coordinates at the measurement plane [mm] (nan: not crossed).
        hit: (n, m) bool: crossed inside the strip area.
        entry: (n, n_stations, 5) float64: the line (x, y, tx, ty at the station's reference z,
            then the z where it was recorded) as it enters each station's first module (nan when it
            does not reach it): the truth the fit estimates.
    """

    u: np.ndarray
    v: np.ndarray
    hit: np.ndarray
    entry: np.ndarray


def electron_momentum(tx: Any, ty: Any, beam_energy: float = 160.0) -> np.ndarray:
    """Energy [GeV] of an elastic electron at the polar angle of slopes (tx, ty)."""
    from muone.physics import electron_energy_from_theta

    theta = np.arctan(np.hypot(np.asarray(tx, float), np.asarray(ty, float)))
    return np.asarray(electron_energy_from_theta(theta, beam_energy), float)


def trace_lines(detector: Any, x: Any, y: Any, z: Any, tx: Any, ty: Any, p: Any, rng: np.random.Generator | None = None,
                mcs_scale: float = 1.0, u_reference: str = "midplane", targets: bool = True,
                z_ref: np.ndarray | None = None) -> Traced:
    """Trace lines starting at (x, y, z) with slopes (tx, ty) and momenta ``p`` [GeV] downstream.

    ``mcs_scale = 0`` (or ``rng`` None) switches scattering off; ``targets``: scatter in targets
    too. ``z_ref``: reference z per station for :attr:`Traced.entry` (default: the mean z of the
    station's modules)."""
    x, y, z, tx, ty, p = (np.array(np.broadcast_to(np.asarray(a, float), np.shape(np.asarray(x, float))), float)
                          for a in (x, y, z, tx, ty, p))
    n = len(x)
    modules = detector.modules
    stations = detector.stations
    if z_ref is None:
        z_ref = np.array([np.mean([m.z for m in s.modules]) if s.modules else 0.0 for s in stations])
    u_out = np.full((n, len(modules)), np.nan)
    v_out = np.full((n, len(modules)), np.nan)
    hit = np.zeros((n, len(modules)), bool)
    entry = np.full((n, len(stations), 5), np.nan)
    scatter = rng is not None and mcs_scale > 0
    layers = [(m.z, 1, m) for m in modules]
    if targets:
        layers += [(t.z_start, 0, t) for t in detector.targets]
    layers.sort(key=lambda item: (item[0], item[1]))
    first_of_station = {s.modules[0].index: s.index for s in stations if s.modules}
    for _, kind, obj in layers:
        if kind == 0:  # target slab
            t = obj
            z_in = np.maximum(z, t.z_start)
            length = t.z_end - z_in
            ok = length > 0
            x = np.where(ok, x + tx * (t.z_end - z), x)
            y = np.where(ok, y + ty * (t.z_end - z), y)
            z = np.where(ok, t.z_end, z)
            if scatter and ok.any():
                norm = np.sqrt(1 + tx * tx + ty * ty)
                path = np.where(ok, length * norm, 0.0)
                a = mcs_scale * highland_theta0(p, 1.0, path / t.medium.x0)
                g = rng.standard_normal((4, n))
                x = x + path * a * (g[1] / math.sqrt(12) + 0.5 * g[0])
                y = y + path * a * (g[3] / math.sqrt(12) + 0.5 * g[2])
                tx = tx + a * g[0]
                ty = ty + a * g[2]
            continue
        m = obj
        if m.index in first_of_station:
            s = first_of_station[m.index]
            ahead = z < m.z
            zr = z_ref[s]
            entry[ahead, s, 0] = (x + tx * (zr - z))[ahead]
            entry[ahead, s, 1] = (y + ty * (zr - z))[ahead]
            entry[ahead, s, 2] = tx[ahead]
            entry[ahead, s, 3] = ty[ahead]
            entry[ahead, s, 4] = zr
        ahead = z < m.z + 20.0  # lines that start before (or inside) the module
        w_meas = 0.0 if u_reference == "midplane" else -0.5 * m.sensor_spacing
        u, v, _, _, _ = m.intersect(x, y, z, tx, ty, w_meas)
        inside = ahead & np.asarray(m.in_acceptance(u, v))
        u_out[:, m.index] = np.where(ahead, u, np.nan)
        v_out[:, m.index] = np.where(ahead, v, np.nan)
        hit[:, m.index] = inside
        # move to the mid-plane and scatter there
        _, _, xm, ym, zm = m.intersect(x, y, z, tx, ty, 0.0)
        x = np.where(ahead, xm, x)
        y = np.where(ahead, ym, y)
        z = np.where(ahead, zm, z)
        if scatter:
            wx, wy, wz = m.normal
            norm = np.sqrt(1 + tx * tx + ty * ty)
            xx0 = m.x_over_x0 * norm / np.abs(wx * tx + wy * ty + wz)
            a = np.where(ahead, mcs_scale * highland_theta0(p, 1.0, xx0), 0.0)
            g = rng.standard_normal((2, n))
            tx = tx + a * g[0]
            ty = ty + a * g[1]
    return Traced(u_out, v_out, hit, entry)


def stub_events(detector: Any, event: np.ndarray, traced: Traced, n_events: int, rng: np.random.Generator,
                errors: dict[str, float] | None = None, efficiency: float = 1.0, noise_per_module: float = 0.0,
                shuffle: bool = False, smear: bool = True) -> tuple[ak.Array, np.ndarray]:
    """Events with a ``stubs`` collection (contract layout) from traced lines.

    ``event``: the event index of every traced line. Each crossing inside the strip area becomes a
    stub with probability ``efficiency``, u smeared by the error of its module kind (``errors``,
    default :data:`DEFAULT_ERRORS`); ``noise_per_module``: mean number of noise stubs per module
    and event (Poisson, uniform in u and row). Stubs are sorted by module (and u) in each event
    unless ``shuffle``. Returns (events, truth) with ``truth`` the flat index of the line of every
    stub in event order (-1: noise)."""
    errors = dict(DEFAULT_ERRORS, **(errors or {}))
    modules = detector.modules
    line, mod = np.nonzero(traced.hit)
    if efficiency < 1.0:
        keep = rng.random(len(line)) < efficiency
        line, mod = line[keep], mod[keep]
    ev = np.asarray(event)[line]
    u = traced.u[line, mod]
    v = traced.v[line, mod]
    truth = line.astype(np.int64)
    if noise_per_module > 0:
        counts = rng.poisson(noise_per_module, (n_events, len(modules)))
        nev, nmod = np.nonzero(counts)
        reps = counts[nev, nmod]
        nev = np.repeat(nev, reps)
        nmod = np.repeat(nmod, reps)
        half_u = np.array([0.5 * modules[k].n_strips * modules[k].pitch for k in nmod])
        half_v = np.array([0.5 * modules[k].n_rows * modules[k].strip_length for k in nmod])
        ev = np.concatenate([ev, nev])
        mod = np.concatenate([mod, nmod])
        u = np.concatenate([u, rng.uniform(-half_u, half_u)])
        v = np.concatenate([v, rng.uniform(-half_v, half_v)])
        truth = np.concatenate([truth, np.full(len(nev), -1, np.int64)])
    kinds = np.array([m.kind for m in modules])
    err = np.array([errors[k] for k in kinds])[mod]
    if smear:
        u = u + err * rng.standard_normal(len(u))
    key = rng.random(len(u)) if shuffle else u
    order = np.lexsort((key, mod, ev)) if not shuffle else np.lexsort((key, ev))
    ev, mod, u, v, err, truth = ev[order], mod[order], u[order], v[order], err[order], truth[order]
    n = len(u)
    row = np.zeros(n, np.int8)
    vrow = np.zeros(n)
    gx, gy, gz = np.zeros(n), np.zeros(n), np.zeros(n)
    position = np.zeros(n, np.float32)
    station = np.zeros(n, np.int32)
    for k in np.unique(mod):
        sel = mod == k
        m = modules[k]
        r = np.clip(np.asarray(m.row_of(v[sel])), 0, m.n_rows - 1)
        row[sel] = r
        vrow[sel] = m.v_of_row(r)
        gx[sel], gy[sel], gz[sel] = m.local_to_global(u[sel], vrow[sel], 0.0)
        position[sel] = 2.0 * (u[sel] / m.pitch + 0.5 * m.n_strips - 0.5)
        station[sel] = m.station
    counts = np.bincount(ev, minlength=n_events).astype(np.int64)
    offsets = np.zeros(n_events + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    columns = {
        "module": mod.astype(np.int32), "station": station, "row": row, "position": position,
        "bend": np.zeros(n, np.float32), "width": np.ones(n, np.int8), "u": u, "v": vrow, "x": gx, "y": gy, "z": gz,
        "error": err,
    }
    content = ak.contents.RecordArray([ak.contents.NumpyArray(np.ascontiguousarray(c)) for c in columns.values()], list(columns))
    stubs = ak.Array(ak.contents.ListOffsetArray(ak.index.Index64(offsets), content))
    events = ak.zip({"event": np.arange(n_events, dtype=np.int64), "stubs": stubs}, depth_limit=1)
    return events, truth


def stubs_from_truth(events: ak.Array, detector: Any, rng: np.random.Generator, mcs_scale: float = 1.0,
                     efficiency: float = 1.0, noise_per_module: float = 0.0, z_start: float = -1000.0,
                     errors: dict[str, float] | None = None) -> tuple[ak.Array, np.ndarray, dict[str, np.ndarray]]:
    """Synthetic stubs of generated events (``mc.particles`` and the incoming ``mc.beam``).

    Charged leptons (|pdg| 11 or 13) are traced from their production vertex; the incoming beam
    muon from ``z_start`` along its direction so that it reaches ``mc.vertex`` (scattering upstream
    of the vertex is applied on the way, so it arrives there only approximately). Returns (events
    with ``stubs``, truth line of every stub, line table: ``event``, ``particle`` (index in
    ``mc.particles``, -1 for the beam muon), ``pdg``, ``p``, ``entry`` (:attr:`Traced.entry`))."""
    parts = events["mc", "particles"]
    counts = np.asarray(ak.num(parts, axis=1))
    n_events = len(counts)
    ev = np.repeat(np.arange(n_events), counts)
    local = np.asarray(ak.flatten(ak.local_index(parts, axis=1)))
    flat = ak.flatten(parts)
    pdg = np.asarray(flat["pdg"])
    px, py, pz = (np.asarray(flat[f], float) for f in ("px", "py", "pz"))
    vx, vy, vz = (np.asarray(flat[f], float) for f in ("vx", "vy", "vz"))
    charged = np.isin(np.abs(pdg), (11, 13)) & (pz > 0)
    beam = events["mc", "beam"]
    vertex = events["mc", "vertex"]
    bpx, bpy, bpz = (np.asarray(beam[f], float) for f in ("px", "py", "pz"))
    wx, wy, wz = (np.asarray(vertex[f], float) for f in ("x", "y", "z"))
    btx, bty = bpx / bpz, bpy / bpz
    lines = {
        "event": np.concatenate([np.arange(n_events), ev[charged]]),
        "particle": np.concatenate([np.full(n_events, -1), local[charged]]),
        "pdg": np.concatenate([np.full(n_events, -13), pdg[charged]]),
        "p": np.concatenate([np.sqrt(bpx**2 + bpy**2 + bpz**2), np.sqrt(px**2 + py**2 + pz**2)[charged]]),
    }
    x0 = np.concatenate([wx - btx * (wz - z_start), vx[charged]])
    y0 = np.concatenate([wy - bty * (wz - z_start), vy[charged]])
    z0 = np.concatenate([np.full(n_events, z_start), vz[charged]])
    tx = np.concatenate([btx, (px / pz)[charged]])
    ty = np.concatenate([bty, (py / pz)[charged]])
    traced = trace_lines(detector, x0, y0, z0, tx, ty, lines["p"], rng, mcs_scale=mcs_scale)
    # the beam muon stops at the vertex: no crossings downstream of it
    beam_line = np.arange(n_events)
    mz = np.array([m.z for m in detector.modules])
    after = mz[None, :] > wz[:, None]
    traced.hit[beam_line] &= ~after
    lines["entry"] = traced.entry
    stubs, truth = stub_events(detector, lines["event"], traced, n_events, rng, errors=errors, efficiency=efficiency,
                               noise_per_module=noise_per_module)
    return ak.with_field(events, stubs["stubs"], "stubs"), truth, lines
