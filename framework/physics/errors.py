"""The error that :mod:`muone.physics` raises for bad input.

:class:`PhysicsInputError` is both a :class:`ValueError` (what Python users expect from a
function given a bad argument) and a :class:`muone.errors.InputError` (so the command line shows
the message and exits with code 2, without a traceback).
"""

from __future__ import annotations

import numpy as np

from muone.errors import InputError


class PhysicsInputError(InputError, ValueError):
    """A bad argument to a physics function: the message names the argument or key."""


def as_float_array(value, name: str) -> np.ndarray:
    """``value`` as a float64 array; a non-numeric value raises naming ``name``."""
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise PhysicsInputError(f"{name} must be a number or an array of numbers, got {value!r}") from exc


def check_beam_energy(E, name: str = "E") -> np.ndarray:
    """The beam energy as a float64 array, checked to be finite and above the muon mass [GeV]."""
    from muone.physics.constants import M_MU

    E = as_float_array(E, name)
    if not np.all(np.isfinite(E)) or np.any(E <= M_MU):
        bad = E[~(np.isfinite(E) & (E > M_MU))] if E.ndim else E
        raise PhysicsInputError(
            f"beam energy {name} must be finite and larger than m_mu = {M_MU} GeV, got {np.ravel(bad)[0]!r}"
        )
    return E


def scalar_or_array(x):
    """A 0-d result as a numpy float64 scalar, an array unchanged (scalar in, scalar out)."""
    return np.asarray(x)[()]
