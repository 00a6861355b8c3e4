"""Synthetic ``tracks`` and ``calo_clusters`` from MC truth, for developing and testing ``vertexing``
without the tracker simulation and reconstruction.

Not an entry-point plugin: pass :class:`SyntheticVertexingInputs` to ``muone.run(...,
plugins=[SyntheticVertexingInputs])`` and use ``plugin = "synthetic_vertexing_inputs"``.

Tracks. Every charged particle of ``mc.particles`` (hard process and pile-up, from its production
vertex downstream) and the incoming beam muon (``mc.beam``, upstream of ``mc.vertex``) gives one
track per station whose modules it crosses entirely (straight line, no scattering in the truth),
when it is inside ``acceptance`` (|x|, |y| at the first and last module of the station) and passes
the ``efficiency`` draw. The track is the true line at ``z_ref`` (the mean z of the station's
modules) smeared with its covariance ``C = C_meas + C_mcs``:

* ``C_meas``: the covariance of a least-squares straight-line fit to one measurement of
  ``u = cos(stereo) x + sin(stereo) y`` per module with resolution ``sigma_hit`` (tilts ignored);
* ``C_mcs`` (``mcs = true``): one Highland scatter of the true momentum through
  ``0.5 x/X0(target) + 0.007`` located at the target's downstream face (stations without target:
  1 mm before the first module), i.e. slope variance theta0^2, position variance
  theta0^2 (z_ref - z_sc)^2 and their covariance theta0^2 (z_ref - z_sc).

The smearing follows ``C`` exactly, so the vertex-fit pulls are unit Gaussians by construction.
Tracks are ordered by station, in random order within a station. Extra field ``particle``: the
index of the particle in ``mc.particles`` (-1: the beam muon).

Clusters. Electrons, positrons and photons of the hard process reaching the calorimeter front face
inside it give a cluster at their impact point smeared by ``calo_sigma_position`` with energy
``E (1 + N(0, sigma_E/E))``, ``sigma_E/E = a/sqrt(E) (+) b (+) noise/E``; muons give a MIP cluster
(``mip_energy`` plus ``noise`` Gaussian) unless they land within ``merge_distance`` of a shower of
the same event (then they are part of it and ignored). Extra field ``particle`` as for tracks.
"""

from __future__ import annotations

import math
from typing import Any

import awkward as ak
import numpy as np
from muone.processor import Chunk, Context, Output, Params, Processor
from muone.reconstruction.columns import jagged_records
from muone.simulation.highland import highland_theta0
from numba import njit
from pydantic import Field

CHARGED = (11, 13, 211, 321, 2212)
SHOWERING = (11, 22)


class SyntheticVertexingInputsParams(Params):
    sigma_hit: float = Field(0.015, gt=0, le=1.0, description="Resolution of the measured coordinate per module [mm].")
    mcs: bool = Field(True, description="Add one Highland scatter per track (true momentum) to the covariance and the smearing.")
    efficiency: float = Field(1.0, ge=0, le=1, description="Probability that a crossing particle gives a track in a station.")
    acceptance: float = Field(45.0, gt=0, description="Half-width of the sensitive area in x and y [mm].")
    pileup: bool = Field(True, description="Make tracks of the pile-up muons too.")
    calo_sigma_position: float = Field(3.0, ge=0, description="Cluster position resolution per coordinate [mm].")
    calo_stochastic: float = Field(0.028, ge=0, description="Stochastic term of sigma_E/E [sqrt(GeV)].")
    calo_constant: float = Field(0.003, ge=0, description="Constant term of sigma_E/E.")
    calo_noise: float = Field(0.12, ge=0, description="Noise term of sigma_E [GeV] (e.g. 9 crystals x 40 MeV).")
    mip_energy: float = Field(0.224, ge=0, description="Mean energy of a muon MIP cluster [GeV] (220 mm PbWO4).")
    merge_distance: float = Field(57.0, ge=0, description="Muons closer than this to a shower are merged into it [mm].")


def station_tables(detector: Any, sigma_hit: float) -> dict[str, np.ndarray]:
    """Per station with modules: z of the first and last module, z_ref, role, scatter z and x/X0,
    and the measurement covariance ``C_meas`` (n_stations, 4, 4)."""
    rows = []
    covs = []
    for st in detector.stations:
        if not st.modules:
            continue
        zs = np.array([m.centre[2] for m in st.modules])
        z_ref = float(zs.mean())
        h = np.array([[math.cos(m.stereo), math.sin(m.stereo), math.cos(m.stereo) * (m.centre[2] - z_ref),
                       math.sin(m.stereo) * (m.centre[2] - z_ref)] for m in st.modules])
        covs.append(np.linalg.inv(h.T @ h) * sigma_hit**2)
        if st.target is not None:
            z_sc, x0 = st.target.z_end, 0.5 * st.target.x_over_x0 + 0.007
        else:
            z_sc, x0 = zs[0] - 1.0, 0.007
        rows.append((st.index, zs[0], zs[-1], z_ref, 1 if st.target is not None else 0, z_sc, x0))
    a = np.array(rows, dtype=np.float64).reshape(-1, 7)
    return {
        "station": a[:, 0].astype(np.int32), "z_first": a[:, 1], "z_last": a[:, 2], "z_ref": a[:, 3],
        "role": a[:, 4].astype(np.int8), "z_sc": a[:, 5], "x_over_x0": a[:, 6],
        "cov": np.array(covs, dtype=np.float64).reshape(-1, 4, 4),
    }


def _flat(a: Any, dtype: Any = np.float64) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(ak.to_numpy(ak.flatten(a, axis=1))), dtype=dtype)


def synthetic_tracks(mc: ak.Array, detector: Any, rng: np.random.Generator, p: SyntheticVertexingInputsParams | None = None) -> ak.Array:
    """The synthetic ``tracks`` collection of events with truth ``mc`` (module docstring)."""
    p = p or SyntheticVertexingInputsParams()
    n_events = len(mc)
    st = station_tables(detector, p.sigma_hit)
    parts = mc["particles"]
    counts = np.asarray(ak.to_numpy(ak.num(parts, axis=1)), np.int64)
    ev = np.repeat(np.arange(n_events), counts)
    pidx = np.arange(len(ev)) - np.repeat(np.cumsum(counts) - counts, counts)
    px, py, pz, en = (_flat(parts[f]) for f in ("px", "py", "pz", "E"))
    vx, vy, vz = (_flat(parts[f]) for f in ("vx", "vy", "vz"))
    pdg = _flat(parts["pdg"], np.int64)
    origin = _flat(parts["origin"], np.int64)
    keep = np.isin(np.abs(pdg), CHARGED) & (pz > 0)
    if not p.pileup:
        keep &= origin != 1
    # the beam muon, upstream of the vertex
    beam, vertex = mc["beam"], mc["vertex"]
    b = {f: np.asarray(ak.to_numpy(beam[f]), np.float64) for f in ("px", "py", "pz", "E")}
    w = {f: np.asarray(ak.to_numpy(vertex[f]), np.float64) for f in ("x", "y", "z")}
    cat = lambda u, v: np.concatenate([u[keep], v])
    P = {
        "ev": cat(ev, np.arange(n_events)), "pidx": cat(pidx, np.full(n_events, -1)),
        "x0": cat(vx, w["x"]), "y0": cat(vy, w["y"]), "z0": cat(vz, w["z"]),
        "tx": cat(px / np.where(pz > 0, pz, 1.0), b["px"] / b["pz"]), "ty": cat(py / np.where(pz > 0, pz, 1.0), b["py"] / b["pz"]),
        "p": cat(np.sqrt(px**2 + py**2 + pz**2), np.sqrt(b["px"] ** 2 + b["py"] ** 2 + b["pz"] ** 2)),
        "E": cat(en, b["E"]),
        "down": np.concatenate([np.ones(int(keep.sum()), bool), np.zeros(n_events, bool)]),
    }
    n_p, n_s = len(P["ev"]), len(st["z_ref"])
    # particle x station combinations
    ip = np.repeat(np.arange(n_p), n_s)
    is_ = np.tile(np.arange(n_s), n_p)
    z0, down = P["z0"][ip], P["down"][ip]
    cross = np.where(down, z0 < st["z_first"][is_], z0 > st["z_last"][is_])
    for zname in ("z_first", "z_last"):
        z = st[zname][is_]
        xx = P["x0"][ip] + P["tx"][ip] * (z - z0)
        yy = P["y0"][ip] + P["ty"][ip] * (z - z0)
        cross &= (np.abs(xx) < p.acceptance) & (np.abs(yy) < p.acceptance)
    if p.efficiency < 1.0:
        cross &= rng.random(len(cross)) < p.efficiency
    ip, is_ = ip[cross], is_[cross]
    n = len(ip)
    zref = st["z_ref"][is_]
    z0 = P["z0"][ip]
    true = np.stack([P["x0"][ip] + P["tx"][ip] * (zref - z0), P["y0"][ip] + P["ty"][ip] * (zref - z0), P["tx"][ip], P["ty"][ip]], axis=1)
    cov = st["cov"][is_].copy()
    if p.mcs:
        mass = np.sqrt(np.maximum(P["E"][ip] ** 2 - P["p"][ip] ** 2, 0.0))
        beta = P["p"][ip] / np.sqrt(P["p"][ip] ** 2 + mass**2)
        th2 = highland_theta0(P["p"][ip], beta, st["x_over_x0"][is_]) ** 2
        lever = zref - st["z_sc"][is_]
        for k in (0, 1):
            cov[:, k, k] += th2 * lever**2
            cov[:, k + 2, k + 2] += th2
            cov[:, k, k + 2] += th2 * lever
            cov[:, k + 2, k] += th2 * lever
    chol = np.linalg.cholesky(cov)
    params = true + np.einsum("nij,nj->ni", chol, rng.standard_normal((n, 4)))
    order = np.lexsort((rng.random(n), st["station"][is_], P["ev"][ip]))
    ip, is_, params, cov, zref = ip[order], is_[order], params[order], cov[order], zref[order]
    track_counts = np.bincount(P["ev"][ip], minlength=n_events).astype(np.int64)
    offsets = np.zeros(n_events + 1, np.int64)
    np.cumsum(track_counts, out=offsets[1:])
    columns = {
        "station": st["station"][is_].astype(np.int32), "role": st["role"][is_].astype(np.int8),
        "z_ref": np.ascontiguousarray(zref), "x": np.ascontiguousarray(params[:, 0]), "y": np.ascontiguousarray(params[:, 1]),
        "tx": np.ascontiguousarray(params[:, 2]), "ty": np.ascontiguousarray(params[:, 3]),
    }
    fields = list(columns) + ["cov", "chi2", "ndf", "n_stubs", "stubs", "p_hyp", "particle"]
    contents = [ak.contents.NumpyArray(c) for c in columns.values()]
    contents.append(ak.contents.RegularArray(ak.contents.RegularArray(ak.contents.NumpyArray(np.ascontiguousarray(cov).reshape(-1)), 4), 4, zeros_length=n))
    contents.append(ak.contents.NumpyArray(rng.chisquare(2, n)))
    contents.append(ak.contents.NumpyArray(np.full(n, 2, np.int32)))
    contents.append(ak.contents.NumpyArray(np.full(n, 6, np.int32)))
    contents.append(ak.contents.ListOffsetArray(ak.index.Index64(np.zeros(n + 1, np.int64)), ak.contents.NumpyArray(np.zeros(0, np.int32))))
    contents.append(ak.contents.NumpyArray(np.ascontiguousarray(P["p"][ip])))
    contents.append(ak.contents.NumpyArray(P["pidx"][ip].astype(np.int32)))
    record = ak.contents.RecordArray(contents, fields, length=n)
    return ak.Array(ak.contents.ListOffsetArray(ak.index.Index64(offsets), record))


@njit(cache=True)
def _near_shower(mu_ev, mu_x, mu_y, sh_off, sh_x, sh_y, dist):  # pragma: no cover - numba
    out = np.zeros(len(mu_ev), np.bool_)
    d2 = dist * dist
    for k in range(len(mu_ev)):
        e = mu_ev[k]
        for j in range(sh_off[e], sh_off[e + 1]):
            if (mu_x[k] - sh_x[j]) ** 2 + (mu_y[k] - sh_y[j]) ** 2 < d2:
                out[k] = True
                break
    return out


def synthetic_clusters(mc: ak.Array, detector: Any, rng: np.random.Generator, p: SyntheticVertexingInputsParams | None = None) -> ak.Array:
    """The synthetic ``calo_clusters`` collection of events with truth ``mc`` (module docstring)."""
    p = p or SyntheticVertexingInputsParams()
    cal = detector.calorimeter
    n_events = len(mc)
    parts = mc["particles"]
    counts = np.asarray(ak.to_numpy(ak.num(parts, axis=1)), np.int64)
    ev = np.repeat(np.arange(n_events), counts)
    pidx = np.arange(len(ev)) - np.repeat(np.cumsum(counts) - counts, counts)
    px, py, pz, en = (_flat(parts[f]) for f in ("px", "py", "pz", "E"))
    vx, vy, vz = (_flat(parts[f]) for f in ("vx", "vy", "vz"))
    pdg = np.abs(_flat(parts["pdg"], np.int64))
    origin = _flat(parts["origin"], np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        cx = vx + px / pz * (cal.z - vz)
        cy = vy + py / pz * (cal.z - vz)
    half = 0.5 * cal.width
    inside = (pz > 0) & (vz < cal.z) & (np.abs(cx - cal.x) < half) & (np.abs(cy - cal.y) < half)
    shower = inside & np.isin(pdg, SHOWERING) & (origin == 0)
    muon = inside & (pdg == 13) & ((origin != 1) | p.pileup)
    s_ev, s_x, s_y, s_e, s_i = ev[shower], cx[shower], cy[shower], en[shower], pidx[shower]
    s_off = np.zeros(n_events + 1, np.int64)
    np.cumsum(np.bincount(s_ev, minlength=n_events), out=s_off[1:])
    merged = _near_shower(ev[muon], cx[muon], cy[muon], s_off, s_x, s_y, p.merge_distance)
    m_ev, m_x, m_y, m_i = ev[muon][~merged], cx[muon][~merged], cy[muon][~merged], pidx[muon][~merged]
    rel = np.sqrt((p.calo_stochastic / np.sqrt(s_e)) ** 2 + p.calo_constant**2 + (p.calo_noise / s_e) ** 2)
    s_energy = s_e * (1.0 + rel * rng.standard_normal(len(s_e)))
    m_energy = p.mip_energy + p.calo_noise * rng.standard_normal(len(m_ev))
    c_ev = np.concatenate([s_ev, m_ev])
    order = np.argsort(c_ev, kind="stable")
    sig = p.calo_sigma_position
    x = np.concatenate([s_x, m_x])[order] + sig * rng.standard_normal(len(order))
    y = np.concatenate([s_y, m_y])[order] + sig * rng.standard_normal(len(order))
    offsets = np.zeros(n_events + 1, np.int64)
    np.cumsum(np.bincount(c_ev, minlength=n_events), out=offsets[1:])
    n_cells = np.concatenate([np.full(len(s_ev), 9, np.int32), np.ones(len(m_ev), np.int32)])[order]
    columns = {
        "energy": np.concatenate([s_energy, m_energy])[order], "x": x, "y": y, "n_cells": n_cells,
        "seed": np.asarray(cal.cell_of(x, y), np.int32).reshape(-1),
        "particle": np.concatenate([s_i, m_i])[order].astype(np.int32),
    }
    return jagged_records({k: np.ascontiguousarray(v) for k, v in columns.items()}, offsets)


class SyntheticVertexingInputs(Processor):
    """Synthetic tracks and calorimeter clusters from MC truth (for vertexing development and tests)."""

    name = "synthetic_vertexing_inputs"
    Params = SyntheticVertexingInputsParams
    reads = ("mc.particles", "mc.beam", "mc.vertex")
    writes = ("tracks", "calo_clusters")

    def setup(self, context: Context) -> None:
        from muone.geometry import load_geometry

        self.detector = load_geometry(context.geometry)

    def process(self, events: ak.Array, chunk: Chunk) -> Output:
        mc = events["mc"]
        rng = chunk.rng
        tracks = synthetic_tracks(mc, self.detector, rng, self.params)
        out = {"tracks": tracks}
        if self.detector.calorimeter is not None:
            out["calo_clusters"] = synthetic_clusters(mc, self.detector, rng, self.params)
        else:
            empty = {k: np.zeros(0, d) for k, d in (("energy", np.float64), ("x", np.float64), ("y", np.float64), ("n_cells", np.int32), ("seed", np.int32), ("particle", np.int32))}
            out["calo_clusters"] = jagged_records(empty, np.zeros(len(events) + 1, np.int64))
        return Output(collections=out)
