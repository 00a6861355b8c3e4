"""Regions of the observable space as expressions on the bin centres.

A region is a boolean expression in the language of :mod:`muone.expressions` whose names are the
template's axis names, evaluated on the centre of every bin: e.g. the normalisation region of
PHYSICS.md section 6 (small |t|: E_e below ~10 GeV, i.e. theta_e above ~10 mrad at 160 GeV) is
``"theta_e > 0.010"`` for the ``muone2d``/``theta_e`` presets (angles in rad).
"""

from __future__ import annotations

import awkward as ak
import numpy as np
from muone.errors import ExpressionError
from muone.expressions import Expression
from muone.fit.template import Template

__all__ = ["region_mask"]


def region_mask(template: Template, expression: str) -> np.ndarray:
    """Boolean mask over the template's (flattened) bins: ``expression`` on the bin centres.

    An empty expression selects every bin. Raises ExpressionError for unknown names (the message
    lists the axis names) or a non-boolean result."""
    centres = template.centres()
    if not expression.strip():
        return np.ones(template.n_bins, bool)
    expr = Expression(expression)
    unknown = [f for f in expr.fields if f.split(".")[0] not in centres]
    if unknown:
        raise ExpressionError(expression, f"unknown name {unknown[0]!r}; region expressions use the axis names: {', '.join(centres)}")
    value = expr.evaluate(ak.zip({k: v for k, v in centres.items()}))
    mask = np.asarray(ak.to_numpy(value) if isinstance(value, ak.Array) else value)
    if mask.dtype != bool:
        raise ExpressionError(expression, f"a region must be a boolean expression (got {mask.dtype})")
    return mask.reshape(-1)
