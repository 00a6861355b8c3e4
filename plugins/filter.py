"""Processor ``filter``: keeps the events for which an expression is true.

The only built-in processor that removes events; it records a weighted cut flow.
"""

from __future__ import annotations

from typing import Any

import awkward as ak
import numpy as np
from pydantic import Field

from muone import hookimpl
from muone.cutflow import CutFlow
from muone.errors import ExpressionError
from muone.expressions import Expression, expression_problems
from muone.processor import Chunk, Output, Params, Processor
from muone.record import event_weights


class FilterParams(Params):
    expression: str = Field(..., min_length=1, description="Boolean expression on event fields, e.g. \"num(mc.particles) >= 2\".")
    weight: str = Field("", description="Weight expression for the cut flow (default: mc.weight when present, else 1).")


def _expressions(params: FilterParams) -> list[Expression]:
    return [Expression(params.expression)] + ([Expression(params.weight)] if params.weight else [])


class Filter(Processor):
    """Keep the events where ``expression`` is true (one boolean per event)."""

    name = "filter"
    Params = FilterParams
    removes_events = True

    @classmethod
    def reads_for(cls, params: FilterParams) -> tuple[str, ...]:
        try:
            return tuple(dict.fromkeys(f for e in _expressions(params) for f in e.fields))
        except ExpressionError:
            return ()

    @classmethod
    def check(cls, params: FilterParams, steering: Any) -> list[tuple[str, str]]:
        return expression_problems((key, getattr(params, key)) for key in ("expression", "weight"))

    def setup(self, context: Any) -> None:
        self.expression = Expression(self.params.expression)
        self.weight = Expression(self.params.weight) if self.params.weight else None

    def process(self, events: ak.Array, chunk: Chunk) -> Output:
        mask = self.expression.evaluate(events)
        if isinstance(mask, ak.Array) and mask.ndim != 1:
            raise ExpressionError(self.params.expression, f"must give one boolean per event, got type {mask.type}")
        keep = np.asarray(ak.to_numpy(ak.fill_none(mask, False)) if isinstance(mask, ak.Array) else mask, dtype=bool)
        if keep.shape != (len(events),):
            keep = np.broadcast_to(keep, (len(events),)).copy()
        weights = np.asarray(self.weight.evaluate(events), np.float64) if self.weight else event_weights(events)
        flow = CutFlow()
        flow.fill("all", np.ones(len(events), bool), weights)
        flow.fill(self.params.expression, keep, weights)
        return Output(results={"cutflow": flow}, keep=keep)


@hookimpl
def muone_plugins() -> list[type]:
    return [Filter]
