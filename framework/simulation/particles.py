"""Which generated particles leave hits: the charged ones, by PDG code."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["CHARGED_ABS_PDG", "is_charged"]

#: |PDG code| of the charged particles the tracker simulation traces (leptons, charged hadrons,
#: W). Everything else (photons, neutrinos, neutral hadrons, dark photons, Z') is skipped.
CHARGED_ABS_PDG = np.array(
    [11, 13, 15, 24, 211, 321, 411, 431, 521, 2212, 3112, 3222, 3312, 3334], dtype=np.int64
)


def is_charged(pdg: Any) -> np.ndarray:
    """True for the PDG codes of charged particles (vectorised)."""
    return np.isin(np.abs(np.asarray(pdg, np.int64)), CHARGED_ABS_PDG)
