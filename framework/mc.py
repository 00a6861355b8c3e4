"""Monte Carlo truth conventions of the event record (``mc``)."""

from __future__ import annotations

import awkward as ak
import numpy as np
import vector

#: ``mc.process`` codes.
PROCESS = {
    "beam": 0,  # no hard interaction: non-interacting beam muons only
    "elastic": 1,
    "pairs": 2,
    "radiative": 3,
    "dark_photon": 4,
    "invisible_zprime": 5,
    "mesmer": 6,
}

#: ``mc.particles.origin`` codes.
ORIGIN_HARD, ORIGIN_PILEUP, ORIGIN_DECAY = 0, 1, 2

PDG_MU_PLUS, PDG_ELECTRON, PDG_PHOTON = -13, 11, 22

vector.register_awkward()


def particles_record(
    counts: np.ndarray,
    pdg: np.ndarray,
    px: np.ndarray,
    py: np.ndarray,
    pz: np.ndarray,
    energy: np.ndarray,
    vx: np.ndarray,
    vy: np.ndarray,
    vz: np.ndarray,
    origin: np.ndarray,
) -> ak.Array:
    """Build ``mc.particles`` (``var * Momentum4D`` records) from flat arrays and per-event counts.

    Momenta and energies in GeV, production vertex (vx, vy, vz) in mm; ``origin`` as above."""
    flat = ak.zip(
        {
            "pdg": np.asarray(pdg, np.int32),
            "px": np.asarray(px, np.float64), "py": np.asarray(py, np.float64),
            "pz": np.asarray(pz, np.float64), "E": np.asarray(energy, np.float64),
            "vx": np.asarray(vx, np.float64), "vy": np.asarray(vy, np.float64),
            "vz": np.asarray(vz, np.float64), "origin": np.asarray(origin, np.int8),
        },
        with_name="Momentum4D",
    )
    return ak.unflatten(flat, np.asarray(counts, np.int64))


def momentum4d(px: np.ndarray, py: np.ndarray, pz: np.ndarray, energy: np.ndarray) -> ak.Array:
    """A per-event ``Momentum4D`` record array (GeV)."""
    return ak.zip({"px": px, "py": py, "pz": pz, "E": energy}, with_name="Momentum4D")


def vector3d(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> ak.Array:
    """A per-event ``Vector3D`` record array (mm)."""
    return ak.zip({"x": x, "y": y, "z": z}, with_name="Vector3D")
