"""Building hadronic models from the steering-table form (DESIGN.md "Steering files").

    hadronic = { model = "LeptonLike", K = 0.13724, M = 0.0525 }
    hadronic = { model = "Pol2", c1 = -0.009057, c2 = -0.01364 }
    hadronic = { model = "Dispersive", alpha_s = 0.2 }
    hadronic = { model = "none" }

:func:`hadronic_model` turns such a table into a model object (or None for "none"); parameters not
given take the model's defaults (the PHYSICS.md reference values). Errors name the bad key.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from typing import Any

from muone.physics.dispersive import Dispersive
from muone.physics.errors import PhysicsInputError
from muone.physics.hadronic import HadronicModel, LeptonLike, Pol2

__all__ = ["MODELS", "hadronic_model"]

#: Model classes by their steering name.
MODELS: dict[str, type[HadronicModel]] = {cls.name: cls for cls in (LeptonLike, Pol2, Dispersive)}

_NONE_NAMES = ("none",)


def _did_you_mean(word: str, options) -> str:
    by_lower = {o.lower(): o for o in options}
    close = difflib.get_close_matches(word.lower(), list(by_lower), n=1)
    return f" (did you mean {by_lower[close[0]]!r}?)" if close else ""


def hadronic_model(table: Mapping[str, Any] | HadronicModel | None) -> HadronicModel | None:
    """A hadronic model from its table form ``{"model": NAME, param: value, ...}``.

    ``NAME`` is one of "LeptonLike", "Pol2", "Dispersive" (case-insensitive) or "none" (returns None).
    A model object or None is passed through unchanged. Raises
    :class:`~muone.physics.errors.PhysicsInputError` (a ``ValueError``) naming the bad key for a
    missing or unknown ``model``, an unknown parameter, or a bad parameter value.
    """
    if table is None or isinstance(table, HadronicModel):
        return table
    if not isinstance(table, Mapping):
        raise PhysicsInputError(f"hadronic: expected a table like {{model = \"LeptonLike\", K = ..., M = ...}}, got {table!r}")
    if "model" not in table:
        raise PhysicsInputError(f"hadronic: missing key 'model' (one of {', '.join([*MODELS, 'none'])})")
    name = table["model"]
    known = {n.lower(): cls for n, cls in MODELS.items()}
    if not isinstance(name, str) or (name.lower() not in known and name.lower() not in _NONE_NAMES):
        raise PhysicsInputError(
            f"hadronic: unknown value {name!r} of key 'model'{_did_you_mean(str(name), [*MODELS, 'none'])}; "
            f"known models: {', '.join([*MODELS, 'none'])}"
        )
    params = {k: v for k, v in table.items() if k != "model"}
    if name.lower() in _NONE_NAMES:
        if params:
            raise PhysicsInputError(f"hadronic: model 'none' takes no parameters, got key {next(iter(params))!r}")
        return None
    cls = known[name.lower()]
    allowed = [f.name for f in dataclasses.fields(cls)]
    for key in params:
        if key not in allowed:
            raise PhysicsInputError(
                f"hadronic model {cls.name}: unknown key {key!r}{_did_you_mean(str(key), allowed)}; "
                f"allowed parameters: {', '.join(allowed)}"
            )
    return cls(**params)
