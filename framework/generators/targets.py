"""Where the hard interaction happens (PHYSICS.md section 7): a target chosen with probability
proportional to its areal density of scattering centres (electrons for mu e processes), then z
uniformly inside it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


#: Atomic numbers of the target materials (nuclear processes scale with Z^2 per nucleus, i.e. with
#: Z per electron).
ATOMIC_NUMBERS = {"Be": 4, "C": 6, "Si": 14, "Al": 13, "Cu": 29, "W": 74, "Pb": 82}


def atomic_number(material: str) -> int:
    """Z of a target material (ValueError for a compound or unknown material)."""
    try:
        return ATOMIC_NUMBERS[material]
    except KeyError:
        raise ValueError(f"no atomic number known for target material {material!r}; known: {', '.join(ATOMIC_NUMBERS)}") from None


def target_weights(targets: Sequence[Any], per: str = "electron") -> np.ndarray:
    """Relative interaction probabilities of the targets: the electron areal density
    rho N_A (Z/A) x for ``per = "electron"``; for ``per = "nucleus_z2"`` (coherent processes on
    nuclei, e.g. pair production) the nuclear areal density times Z^2."""
    if per == "electron":
        w = np.array([t.electron_areal_density for t in targets], dtype=np.float64)
    elif per == "nucleus_z2":
        w = np.array([t.electron_areal_density * atomic_number(t.material) for t in targets], dtype=np.float64)
    else:
        raise ValueError(f"unknown target weighting {per!r}")
    return w / w.sum()


def choose_interaction_points(rng: np.random.Generator, n: int, targets: Sequence[Any], per: str = "electron") -> tuple[np.ndarray, np.ndarray]:
    """Target index (int32) and z [mm] of ``n`` interactions: the target by ``target_weights``,
    then z uniform between its upstream and downstream faces."""
    weights = target_weights(targets, per)
    index = rng.choice(len(targets), size=n, p=weights).astype(np.int32) if len(targets) > 1 else np.zeros(n, np.int32)
    z0 = np.array([t.z_start for t in targets])[index]
    thickness = np.array([t.thickness for t in targets])[index]
    return index, z0 + thickness * rng.random(n)
