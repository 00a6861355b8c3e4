"""Assembly of generated events into the event record (DESIGN.md "Event record").

``mc`` fields written by every generator:

| field | content |
|---|---|
| ``process`` | process code (``muone.mc.PROCESS``) |
| ``target`` | index of the target of the interaction |
| ``vertex`` | interaction point (Vector3D, mm) |
| ``t``, ``t_mu`` | electron-line (t24) and muon-line (t13) momentum transfers [GeV^2] |
| ``weight`` | event weight (1 for unweighted generation) |
| ``weight_norun``, ``weight_lep`` | the weight without running, and with leptonic running only |
| ``vp`` | 11 vacuum-polarisation coefficients c0..c10 (MESMER convention): the weight for any Delta_alpha is c0 + c1 vp(t)^2 for two-body events and c1 vp(t)^2 + c2 vp(t) vp(t_mu) + c5 vp(t_mu)^2 for radiative ones, vp = 1/(1 - Delta_alpha); processes that do not depend on Delta_alpha carry c0 = weight only |
| ``beam`` | the incoming muon (Momentum4D); it arrives at ``vertex`` along its own direction |
| ``particles`` | outgoing particles (Momentum4D with pdg, vx, vy, vz, origin): hard process (0), pile-up beam muons (1, starting at the beam's z_start), decay products (2) |
"""

from __future__ import annotations

from dataclasses import dataclass, field

import awkward as ak
import numpy as np

from muone.mc import ORIGIN_PILEUP, PDG_MU_PLUS, momentum4d, particles_record, vector3d

N_VP = 11


@dataclass
class HardProcess:
    """Per-event arrays of a generated hard process (length n) and its particles (flat, with
    per-event ``counts``). Units: GeV, GeV^2, mm."""

    process: np.ndarray
    target: np.ndarray
    vertex: tuple[np.ndarray, np.ndarray, np.ndarray]
    t: np.ndarray
    t_mu: np.ndarray
    weight: np.ndarray
    weight_norun: np.ndarray
    weight_lep: np.ndarray
    vp: np.ndarray  # (n, 11)
    beam: dict[str, np.ndarray]  # px, py, pz, E
    counts: np.ndarray
    particles: dict[str, np.ndarray] = field(default_factory=dict)  # pdg, px, py, pz, E, vx, vy, vz, origin

    def __len__(self) -> int:
        return len(self.t)


def constant_vp(weight: np.ndarray) -> np.ndarray:
    """VP coefficients of a process that does not depend on Delta_alpha: c0 = weight."""
    vp = np.zeros((len(weight), N_VP))
    vp[:, 0] = weight
    return vp


def build_events(first_event: int, run: int, hard: HardProcess, pileup_counts: np.ndarray, pileup: dict[str, np.ndarray], extra: dict | None = None) -> ak.Array:
    """The event record of one chunk: ``run``, ``event``, ``bx`` and ``mc`` with the hard
    particles followed by the pile-up muons of each event; ``extra``: additional ``mc`` fields
    (per-event arrays, e.g. a dark photon's decay vertex)."""
    n = len(hard)
    total_pile = len(pileup["E"])
    pile = dict(pileup, pdg=np.full(total_pile, PDG_MU_PLUS, np.int32), origin=np.full(total_pile, ORIGIN_PILEUP, np.int8))
    counts, merged = interleave(hard.counts, hard.particles, np.asarray(pileup_counts), pile)
    particles = particles_record(counts, merged["pdg"], merged["px"], merged["py"], merged["pz"], merged["E"], merged["vx"], merged["vy"], merged["vz"], merged["origin"])
    b = hard.beam
    mc = ak.zip(
        {
            "process": np.asarray(hard.process, np.int32),
            "target": np.asarray(hard.target, np.int32),
            "vertex": vector3d(*hard.vertex),
            "t": hard.t, "t_mu": hard.t_mu,
            "weight": hard.weight, "weight_norun": hard.weight_norun, "weight_lep": hard.weight_lep,
            "vp": ak.Array(np.ascontiguousarray(hard.vp, dtype=np.float64)),
            "beam": momentum4d(b["px"], b["py"], b["pz"], b["E"]),
            "particles": particles,
            **(extra or {}),
        },
        depth_limit=1,
    )
    event = first_event + np.arange(n, dtype=np.int64)
    return ak.zip({"run": np.full(n, run, np.int64), "event": event, "bx": event, "mc": mc}, depth_limit=1)


PARTICLE_FIELDS = ("pdg", "px", "py", "pz", "E", "vx", "vy", "vz", "origin")


def interleave(counts_a: np.ndarray, a: dict[str, np.ndarray], counts_b: np.ndarray, b: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Per event, the particles of ``a`` followed by those of ``b`` (flat arrays with per-event
    counts), by computing each particle's destination index (no per-event loop)."""
    counts = counts_a + counts_b
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    starts_a = np.concatenate([[0], np.cumsum(counts_a)[:-1]]).astype(np.int64)
    starts_b = np.concatenate([[0], np.cumsum(counts_b)[:-1]]).astype(np.int64)
    dest_a = np.repeat(starts - starts_a, counts_a) + np.arange(int(counts_a.sum()))
    dest_b = np.repeat(starts + counts_a - starts_b, counts_b) + np.arange(int(counts_b.sum()))
    total = int(counts.sum())
    out = {}
    for name in PARTICLE_FIELDS:
        col = np.empty(total, dtype=np.result_type(a[name], b[name]))
        col[dest_a] = a[name]
        col[dest_b] = b[name]
        out[name] = col
    return counts, out
