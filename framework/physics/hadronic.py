"""Hadronic vacuum-polarisation models Delta_alpha_had(t) for space-like t <= 0 (PHYSICS.md sec. 4).

A model is an immutable object with ``__call__(t)`` (vectorised, t in GeV^2, dimensionless result),
a readable ``repr``, ``params`` (a dict of its parameters) and ``to_table()`` (the steering-table
form, e.g. ``{"model": "LeptonLike", "K": 0.13724, "M": 0.0525}``). Models are built from that
table form by :func:`muone.physics.hadronic_model` (or ``HadronicModel.from_table``).

Here: :class:`LeptonLike` (MUonE's parametrisation) and :class:`Pol2` (a second-order polynomial);
the dispersive model built from R(s) is :class:`muone.physics.dispersive.Dispersive`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

import numpy as np

from muone.physics.constants import LL_K_REF, LL_M_REF, POL2_C1_REF, POL2_C2_REF
from muone.physics.errors import PhysicsInputError, as_float_array, scalar_or_array
from muone.physics.vacuum_polarisation import one_loop_bracket

__all__ = ["HadronicModel", "LeptonLike", "Pol2"]


class HadronicModel:
    """Interface of the hadronic models: a callable Delta_alpha_had(t), t <= 0 in GeV^2.

    Subclasses are frozen dataclasses whose fields are the (float) parameters; ``name`` is the
    value of ``model`` in the steering table. ``requires_x_max`` is True for models whose
    a_mu master integral diverges as x -> 1 (they are only valid in the measured range).
    """

    name: ClassVar[str] = ""
    requires_x_max: ClassVar[bool] = False

    def __call__(self, t):  # pragma: no cover - interface
        raise NotImplementedError

    @property
    def param_names(self) -> tuple[str, ...]:
        """Names of the parameters, in constructor order."""
        return tuple(f.name for f in dataclasses.fields(self))  # type: ignore[arg-type]

    @property
    def params(self) -> dict[str, float]:
        """The parameters as a dict (name -> value)."""
        return {n: getattr(self, n) for n in self.param_names}

    def with_params(self, **changes: float) -> HadronicModel:
        """A copy with some parameters changed (unknown names raise naming the key)."""
        for key in changes:
            if key not in self.param_names:
                raise PhysicsInputError(
                    f"hadronic model {self.name}: unknown parameter {key!r}; allowed: {', '.join(self.param_names)}"
                )
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]

    def to_table(self) -> dict[str, Any]:
        """Steering-table form ``{"model": name, param: value, ...}``; inverse of ``from_table``."""
        return {"model": self.name, **self.params}

    @classmethod
    def from_table(cls, table):
        """Build a model from its steering-table form; see :func:`muone.physics.hadronic_model`."""
        from muone.physics.model_table import hadronic_model

        return hadronic_model(table)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"


def _check_finite(model: str, **values: float) -> None:
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
            raise PhysicsInputError(f"hadronic model {model}: parameter {key!r} must be a number, got {value!r}")
        if not math.isfinite(value):
            raise PhysicsInputError(f"hadronic model {model}: parameter {key!r} must be finite, got {value!r}")


@dataclasses.dataclass(frozen=True, repr=False)
class LeptonLike(HadronicModel):
    """MUonE's lepton-like parametrisation of Delta_alpha_had(t) (PHYSICS.md section 4).

    With beta_M = sqrt(1 - 4M/t) (Abbiendi, Phys. Scr. 97 (2022) 054007; MUonE LoI):

        Delta_alpha_had(t) = K M { -5/9 - 4M/(3t)
                                   + [4M^2/(3t^2) + M/(3t) - 1/6] (2/beta_M) ln|(1 - beta_M)/(1 + beta_M)| }

    which equals K M b(-t/M) with the one-loop lepton bracket b of
    :func:`muone.physics.vacuum_polarisation.one_loop_bracket` (the same function with m^2 -> M),
    so it inherits its stable small-|t| series: Delta_alpha_had ~ -K t/15 for |t| << M.

    Parameters: ``K`` [GeV^-2] (reference 0.13724), ``M`` [GeV^2] (reference 0.0525, must be > 0).
    """

    K: float = LL_K_REF
    M: float = LL_M_REF

    name: ClassVar[str] = "LeptonLike"

    def __post_init__(self) -> None:
        _check_finite(self.name, K=self.K, M=self.M)
        if self.M <= 0:
            raise PhysicsInputError(f"hadronic model LeptonLike: parameter 'M' must be positive, got {self.M!r}")
        object.__setattr__(self, "K", float(self.K))
        object.__setattr__(self, "M", float(self.M))

    def __call__(self, t):
        """Delta_alpha_had(t) for t <= 0 [GeV^2] (dimensionless; t > 0 gives NaN)."""
        t = as_float_array(t, "t")
        return scalar_or_array(self.K * self.M * np.asarray(one_loop_bracket(-t / self.M)))


@dataclasses.dataclass(frozen=True, repr=False)
class Pol2(HadronicModel):
    """Second-order polynomial Delta_alpha_had(t) = c1 t + c2 t^2 (PHYSICS.md section 4).

    ``c1`` [GeV^-2] (reference -0.009057), ``c2`` [GeV^-4] (reference -0.01364). Valid only in the
    measured t range: its a_mu master integral diverges as x -> 1, so :func:`muone.physics.amu_hlo`
    requires an ``x_max`` for it.
    """

    c1: float = POL2_C1_REF
    c2: float = POL2_C2_REF

    name: ClassVar[str] = "Pol2"
    requires_x_max: ClassVar[bool] = True

    def __post_init__(self) -> None:
        _check_finite(self.name, c1=self.c1, c2=self.c2)
        object.__setattr__(self, "c1", float(self.c1))
        object.__setattr__(self, "c2", float(self.c2))

    def __call__(self, t):
        """Delta_alpha_had(t) = c1 t + c2 t^2 for t <= 0 [GeV^2] (t > 0 gives NaN)."""
        t = as_float_array(t, "t")
        return scalar_or_array(np.where(t <= 0, t * (self.c1 + self.c2 * t), np.nan))
