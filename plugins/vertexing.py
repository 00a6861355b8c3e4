"""Processor ``vertexing``: target vertices from one incoming and two outgoing tracks, the
scattering angles, the elastic-curve distance and the mu/e assignment.

Reads ``tracks`` (and ``calo_clusters`` when ``use_calorimeter``), writes ``vertices``
(docs/reconstruction.md: the record layout and the ``vertexing`` section: method, parameters,
measured performance). Kernels: :mod:`muone.reconstruction.vertexing`.

Per target and event, the candidates are every (incoming track, pair of outgoing tracks):

* incoming: each track of the station whose modules are just upstream of the target
  (``Detector.upstream_modules``; pilot2023: station 0 for target 0, station 1 for target 1); all
  of them are tried and the chi2 decides. Without upstream tracking (station2022) the nominal beam:
  direction (0, 0, 1), position unknown (it does not constrain the vertex; ndf 1), angular
  uncertainty ``beam_divergence``;
* outgoing: each pair of ``role == 1`` tracks of the station measuring the target's products.

A candidate is kept when the fit converges, the vertex z lies in
[z_start - z_window, z_end + z_window] and chi2 <= max_chi2; ``best`` marks the lowest chi2/ndf of
the event. Angles are 3D opening angles of the measured track directions relative to the incoming
direction; the mu/e assignment uses the angles (0), the elastic curve (1) or the calorimeter (2),
each decision weighed with the angle uncertainties (track covariances, multiple scattering in the
target, beam divergence for the nominal beam) and the beam-energy spread.
"""

from __future__ import annotations

import math
from typing import Any

import awkward as ak
import numpy as np
from muone import hookimpl
from muone.errors import InputError, MuoneError
from muone.physics.constants import M_E, M_MU
from muone.processor import Chunk, Context, Output, Params, Processor
from muone.reconstruction import vertexing as K
from muone.reconstruction.columns import jagged_records
from pydantic import Field

#: theta_mu,max = arcsin(m_e / m_mu) = 4.836 mrad (PHYSICS.md section 2).
THETA_MU_MAX = math.asin(M_E / M_MU)

TRACK_FIELDS = {"station": np.int32, "role": np.int8, "z_ref": np.float64, "x": np.float64, "y": np.float64,
                "tx": np.float64, "ty": np.float64, "p_hyp": np.float64}
CLUSTER_FIELDS = {"energy": np.float64, "x": np.float64, "y": np.float64}

#: The ``vertices`` record fields and dtypes (docs/reconstruction.md).
VERTEX_FIELDS = {
    "target": np.int32, "x": np.float64, "y": np.float64, "z": np.float64, "chi2": np.float64, "ndf": np.int32,
    "track_in": np.int32, "track_mu": np.int32, "track_e": np.int32, "theta_mu": np.float64, "theta_e": np.float64,
    "acoplanarity": np.float64, "elastic_distance": np.float64, "calo_cluster": np.int32, "assignment": np.int8,
    "best": np.bool_,
}


class VertexingParams(Params):
    beam_energy: float = Field(160.0, gt=1.0, le=1000.0, description="Beam energy of the elastic curve theta_mu(theta_e) and of E_e(theta_e) [GeV].")
    beam_energy_spread: float = Field(0.0375, ge=0, lt=0.5, description="Relative RMS of the beam energy: its effect on theta_mu,el(theta_e) and E_e(theta_e) enters the uncertainties of the mu/e assignment (the curve itself is taken at beam_energy).")
    beam_divergence: float = Field(4e-4, ge=0, le=0.01, description="Angular uncertainty per plane of the nominal beam direction (0, 0, 1) used when the target has no upstream tracking [rad] (enters the angle uncertainties of the mu/e assignment).")
    nominal_beam_fallback: bool = Field(False, description="Use the nominal beam also when upstream tracking exists but measured no track in the event.")
    z_window: float = Field(20.0, ge=0, le=1000.0, description="Accepted vertex z: [target z_start - z_window, target z_end + z_window] [mm].")
    max_chi2: float = Field(100.0, gt=0, description="Largest accepted vertex chi2 (ndf 3 with an incoming track, 1 with the nominal beam; the multiple-scattering tails of the tracks give a long tail: 50 keeps 97 % of the true vertices of pilot2023, 100 keeps 98.5 %).")
    electron_angle_margin: float = Field(0.0, ge=0, le=0.01, description="Assignment 0: the larger angle is the electron's when it exceeds theta_mu,max (4.836 mrad) + electron_angle_margin + electron_angle_nsigma x its uncertainty [rad].")
    electron_angle_nsigma: float = Field(3.0, ge=0, le=100, description="See electron_angle_margin (the angle uncertainty: slope covariances of the track and of the incoming track, or the beam divergence, plus the multiple scattering in the target).")
    ambiguity_nsigma: float = Field(3.0, ge=0, le=100, description="Assignment 2: when both mu/e assignments are compatible with the elastic curve (|theta_mu - theta_mu,el(theta_e)| below ambiguity_nsigma x its uncertainty for both) the calorimeter decides.")
    ambiguity_margin: float = Field(5e-5, ge=0, le=0.01, description="Assignment 2 also when the two assignments' elastic-curve distances differ by less than this [rad].")
    target_mcs_scale: float = Field(1.0, ge=0, le=10, description="Scale of the multiple scattering in the target (Highland with the tracks' p_hyp: the outgoing tracks through the material downstream of the vertex, the incoming one upstream of it) added to the angle uncertainties of the mu/e assignment (the tracks' covariances do not contain the target); 0 switches it off.")
    use_calorimeter: bool = Field(True, description="Read calo_clusters and use them for ambiguous assignments and the electron's cluster match.")
    calo_window: float = Field(30.0, gt=0, description="Largest distance between a track's extrapolation to the calorimeter front face and a matched cluster [mm].")
    calo_position_sigma: float = Field(5.0, gt=0, description="Position resolution of the track-cluster match (score term) [mm].")
    calo_energy_sigma: float = Field(0.05, gt=0, le=1.0, description="Relative energy resolution of the E_cluster vs E_e(theta_e) consistency (score term).")
    calo_energy_nsigma: float = Field(5.0, gt=0, description="A cluster matches only when |E - E_e(theta_e)| < calo_energy_nsigma * sigma_E, sigma_E^2 = (calo_energy_sigma E_e)^2 + (dE_e/dtheta_e sigma_theta)^2 + (beam-energy-spread change of E_e)^2.")
    max_iterations: int = Field(10, ge=1, le=100, description="Largest number of steps of the vertex fit (one Gauss-Newton step, then Newton steps).")
    tolerance: float = Field(0.1, gt=0, le=10.0, description="Convergence: the fit stops after a Newton step (the second or later) shorter than this in z [mm]; Newton converges quadratically, so the remaining error is far smaller (< 1 um at 0.1 mm on pilot2023).")


def _detector(geometry: Any, base_dir: Any = None) -> Any:
    from muone.geometry import load_geometry

    return load_geometry(geometry, base_dir)


def target_tables(detector: Any, z_window: float) -> dict[str, np.ndarray]:
    """Per target: accepted z window, centre, upstream station (-1: no upstream tracking), the
    station of its outgoing tracks (-1: no modules downstream), faces and radiation lengths per mm."""
    lo, hi, zc, up, out, x0 = [], [], [], [], [], []
    for t in detector.targets:
        x0.append(t.x_over_x0 / t.thickness)
        ups = detector.upstream_modules(t)
        downs = detector.downstream_modules(t)
        lo.append(t.z_start - z_window)
        hi.append(t.z_end + z_window)
        zc.append(t.z_centre)
        up.append(ups[-1].station if ups else -1)
        out.append(downs[0].station if downs else -1)
    return {
        "zlo": np.array(lo, np.float64), "zhi": np.array(hi, np.float64), "zc": np.array(zc, np.float64),
        "up": np.array(up, np.int32), "out": np.array(out, np.int32),
        "zstart": np.array([t.z_start for t in detector.targets], np.float64),
        "zend": np.array([t.z_end for t in detector.targets], np.float64), "x0": np.array(x0, np.float64),
    }


def parameter_vectors(p: VertexingParams, calorimeter: Any) -> tuple[np.ndarray, np.ndarray]:
    """The float and int parameter vectors of :func:`muone.reconstruction.vertexing.vertex_events`."""
    f = np.zeros(K.N_FPAR)
    f[K.F_MAX_CHI2] = p.max_chi2
    f[K.F_P], f[K.F_P2], f[K.F_S] = K.elastic_constants(p.beam_energy)
    f[K.F_P_HI], f[K.F_P2_HI], f[K.F_S_HI] = K.elastic_constants(p.beam_energy * (1.0 + p.beam_energy_spread))
    f[K.F_P_LO], f[K.F_P2_LO], f[K.F_S_LO] = K.elastic_constants(p.beam_energy * (1.0 - p.beam_energy_spread))
    f[K.F_THETA_E_MIN] = THETA_MU_MAX + p.electron_angle_margin
    f[K.F_E_NSIG] = p.electron_angle_nsigma
    f[K.F_AMBIGUITY] = p.ambiguity_margin
    f[K.F_AMB_NSIG] = p.ambiguity_nsigma
    f[K.F_DIV2] = p.beam_divergence**2
    f[K.F_TGT_MCS] = p.target_mcs_scale
    f[K.F_BEAM_E] = p.beam_energy
    use_calo = p.use_calorimeter and calorimeter is not None
    f[K.F_HAS_CALO] = 1.0 if use_calo else 0.0
    f[K.F_CALO_Z] = calorimeter.z if calorimeter is not None else 0.0
    f[K.F_CALO_WINDOW] = p.calo_window
    f[K.F_CALO_SIG_POS] = p.calo_position_sigma
    f[K.F_CALO_SIG_E] = p.calo_energy_sigma
    f[K.F_CALO_NSIG] = p.calo_energy_nsigma
    f[K.F_TOL] = p.tolerance
    f[K.F_Z_GUARD] = 1.0e5
    i = np.zeros(K.N_IPAR, np.int64)
    i[K.I_MAX_ITER] = p.max_iterations
    i[K.I_FALLBACK] = 1 if p.nominal_beam_fallback else 0
    return f, i


def _columns(records: Any, fields: dict[str, Any]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    counts = np.asarray(ak.to_numpy(ak.num(records, axis=1)), np.int64)
    offsets = np.zeros(len(counts) + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    flat = ak.flatten(records, axis=1)
    out = {name: np.ascontiguousarray(np.asarray(ak.to_numpy(flat[name])), dtype=dtype) for name, dtype in fields.items()}
    return out, offsets


def track_columns(tracks: Any) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Flat track columns and offsets; ``cov``: the covariances flat, 16 numbers per track."""
    cols, offsets = _columns(tracks, TRACK_FIELDS)
    n = int(offsets[-1])
    cov = np.asarray(ak.to_numpy(ak.flatten(ak.flatten(tracks["cov"], axis=1), axis=None)), np.float64)
    if cov.size != 16 * n:
        raise InputError(f"tracks.cov: expected 4 x 4 numbers per track, got {cov.size} numbers for {n} tracks")
    cols["cov"] = K.flat_covariances(cov)
    return cols, offsets


class Vertexing(Processor):
    """Vertex fit per target (incoming track or nominal beam + two outgoing tracks), angles, elastic distance and mu/e assignment.

    Writes ``vertices``: one candidate per (target, incoming track, pair of outgoing tracks) that
    passes the z window and the chi2 cut, with ``best`` marking the lowest chi2/ndf of the event.
    """

    name = "vertexing"
    Params = VertexingParams
    reads = ("tracks", "calo_clusters")
    writes = ("vertices",)

    @classmethod
    def reads_for(cls, params: VertexingParams) -> tuple[str, ...]:
        return ("tracks", "calo_clusters") if params.use_calorimeter else ("tracks",)

    @classmethod
    def check(cls, params: VertexingParams, steering: Any) -> list[tuple[str, str]]:
        base = steering.file.parent if getattr(steering, "file", None) else None
        try:
            detector = _detector(steering.geometry, base)
        except MuoneError as exc:
            return [("", f"cannot load the [geometry]: {exc}")]
        problems = []
        if not detector.targets:
            problems.append(("", "the [geometry] has no target"))
        elif not any(detector.downstream_modules(t) for t in detector.targets):
            problems.append(("", "no target of the [geometry] has tracker modules downstream"))
        if params.use_calorimeter and detector.calorimeter is None:
            problems.append(("use_calorimeter", "the [geometry] has no calorimeter: set use_calorimeter = false"))
        return problems

    def setup(self, context: Context) -> None:
        base = context.steering_file.parent if context.steering_file else None
        self.detector = _detector(context.geometry, base)
        self.targets = target_tables(self.detector, self.params.z_window)
        self.fpar, self.ipar = parameter_vectors(self.params, self.detector.calorimeter)

    def process(self, events: ak.Array, chunk: Chunk) -> Output:
        return Output(collections={"vertices": self.vertices(events)})

    def vertices(self, events: ak.Array) -> ak.Array:
        """The ``vertices`` collection of ``events`` (needs ``tracks``, and ``calo_clusters`` when
        the calorimeter is used)."""
        n_events = len(events)
        trk, trk_off = track_columns(events["tracks"])
        if self.fpar[K.F_HAS_CALO] != 0.0:
            clu, clu_off = _columns(events["calo_clusters"], CLUSTER_FIELDS)
        else:
            clu = {k: np.zeros(0) for k in CLUSTER_FIELDS}
            clu_off = np.zeros(n_events + 1, np.int64)
        return run_kernel(trk, trk_off, clu, clu_off, self.targets, self.fpar, self.ipar)


def run_kernel(trk: dict[str, np.ndarray], trk_off: np.ndarray, clu: dict[str, np.ndarray], clu_off: np.ndarray,
               targets: dict[str, np.ndarray], fpar: np.ndarray, ipar: np.ndarray, capacity: int | None = None,
               stats: np.ndarray | None = None) -> ak.Array:
    """Run :func:`~muone.reconstruction.vertexing.vertex_events` on flat columns and build the
    ``vertices`` collection (reallocating once if the candidates exceed ``capacity``); ``stats``
    (int64, 4), when given, accumulates the kernel's counters (pairs tried, pairs passing the chi2
    bound, fits, converged fits)."""
    n_events = len(trk_off) - 1
    cap = capacity if capacity is not None else 2 * n_events + 1024
    while True:
        out = {name: np.empty(cap, dtype) for name, dtype in VERTEX_FIELDS.items()}
        counts = np.zeros(n_events, np.int64)
        st = np.zeros(4, np.int64)
        total = K.vertex_events(
            trk_off, trk["station"], trk["role"], trk["z_ref"], trk["x"], trk["y"], trk["tx"], trk["ty"], trk["cov"], trk["p_hyp"],
            clu_off, clu["energy"], clu["x"], clu["y"],
            targets["zlo"], targets["zhi"], targets["zc"], targets["up"], targets["out"], targets["zstart"], targets["zend"], targets["x0"],
            fpar, ipar, *out.values(), counts, st,
        )
        if total <= cap:
            if stats is not None:
                stats += st
            break
        cap = int(total)
    offsets = np.zeros(n_events + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    return jagged_records({name: a[:total] for name, a in out.items()}, offsets)


@hookimpl
def muone_plugins() -> list[type]:
    return [Vertexing]
