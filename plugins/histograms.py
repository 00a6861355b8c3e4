"""Processor ``histograms``: weighted histograms declared in the steering file.

Each histogram has one to three axes, each an expression on event fields (per event or per
object: jagged values are flattened and the event weight broadcast), an optional weight
expression and an optional selection expression. Named presets (``presets = ["beam"]``) come from
the ``muone_histogram_presets`` hook, so plugin packages can add their own.

Example::

    [[processors]]
    plugin = "histograms"
    presets = ["beam"]
    [processors.hist.beam_energy]
    axes = [{ expr = "mc.beam.E", bins = 100, start = 140.0, stop = 180.0, label = "E [GeV]" }]
    selection = "num(mc.particles) == 1"
"""

from __future__ import annotations

import re
from typing import Any

import awkward as ak
import hist
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from muone import hookimpl
from muone.errors import ExpressionError
from muone.expressions import Expression, expression_problems
from muone.processor import Chunk, Output, Params, Processor
from muone.record import event_weights


class AxisSpec(BaseModel):
    """One histogram axis: an expression and a binning (bins/start/stop, or edges)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    expr: str = Field(..., min_length=1, description="Expression giving the axis value.")
    bins: int | None = Field(None, ge=1, le=10_000_000, description="Number of regular bins.")
    start: float | None = Field(None, description="Lower edge (regular or integer axis).")
    stop: float | None = Field(None, description="Upper edge (regular or integer axis).")
    edges: list[float] | None = Field(None, min_length=2, description="Bin edges of a variable axis.")
    integer: bool = Field(False, description="Integer axis from start to stop (one bin per integer).")
    label: str = Field("", description="Axis label with units, e.g. 'theta_e [mrad]'.")
    name: str = Field("", description="Axis name (default: from the expression).")

    @model_validator(mode="after")
    def _binning(self) -> AxisSpec:
        if self.edges is not None:
            if self.bins is not None or self.integer:
                raise ValueError("give either edges or bins/start/stop, not both")
            if any(b <= a for a, b in zip(self.edges, self.edges[1:])):
                raise ValueError("edges must increase strictly")
            return self
        if self.start is None or self.stop is None:
            raise ValueError("an axis needs start and stop (with bins or integer = true), or edges")
        if self.stop <= self.start:
            raise ValueError(f"stop ({self.stop}) must be above start ({self.start})")
        if self.integer:
            if self.start != int(self.start) or self.stop != int(self.stop):
                raise ValueError("an integer axis needs integer start and stop")
        elif self.bins is None:
            raise ValueError("a regular axis needs bins")
        return self

    def build(self) -> hist.axis.Axis:
        """The hist axis."""
        name = self.name or re.sub(r"\W+", "_", self.expr).strip("_") or "x"
        if self.edges is not None:
            return hist.axis.Variable(self.edges, name=name, label=self.label or self.expr)
        if self.integer:
            return hist.axis.Integer(int(self.start), int(self.stop), name=name, label=self.label or self.expr)
        return hist.axis.Regular(self.bins, self.start, self.stop, name=name, label=self.label or self.expr)


class HistSpec(BaseModel):
    """One histogram: axes, optional weight and selection expressions."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    axes: list[AxisSpec] = Field(..., min_length=1, max_length=3, description="One to three axes.")
    weight: str = Field("", description="Weight expression (default: the processor's weight).")
    selection: str = Field("", description="Boolean expression selecting events or objects.")
    title: str = Field("", description="Histogram title.")

    def expressions(self) -> list[str]:
        return [a.expr for a in self.axes] + [e for e in (self.weight, self.selection) if e]


class HistogramsParams(Params):
    hist: dict[str, HistSpec] = Field(default_factory=dict, description="Histograms by name: [processors.hist.NAME] tables.")
    presets: list[str] = Field(default_factory=list, description="Named histogram sets (muone plugins lists them).")
    weight: str = Field("", description="Default weight expression (default: mc.weight when present, else 1).")
    selection: str = Field("", description="Selection applied to every histogram of this instance.")


def _presets() -> dict[str, dict[str, Any]]:
    from muone.registry import default_registry

    return default_registry().histogram_presets


def resolve_histograms(params: HistogramsParams) -> dict[str, HistSpec]:
    """Presets and explicit histograms together (explicit definitions win on a name clash)."""
    out: dict[str, HistSpec] = {}
    available = _presets()
    for preset in params.presets:
        if preset not in available:
            raise KeyError(preset)
        for name, table in available[preset].items():
            out[name] = HistSpec.model_validate(table)
    out.update(params.hist)
    return out


def _all_expressions(params: HistogramsParams) -> list[str]:
    texts = [e for spec in resolve_histograms(params).values() for e in spec.expressions()]
    return texts + [e for e in (params.weight, params.selection) if e]


class Histograms(Processor):
    """Fill weighted histograms (hist, Weight storage) declared in the steering or by preset."""

    name = "histograms"
    Params = HistogramsParams

    @classmethod
    def reads_for(cls, params: HistogramsParams) -> tuple[str, ...]:
        try:
            return tuple(dict.fromkeys(f for text in _all_expressions(params) for f in Expression(text).fields))
        except (KeyError, ValidationError, ExpressionError):
            return ()

    @classmethod
    def check(cls, params: HistogramsParams, steering: Any) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        available = _presets()
        for i, preset in enumerate(params.presets):
            if preset not in available:
                problems.append((f"presets[{i}]", f"unknown histogram preset {preset!r}; available: {', '.join(sorted(available)) or 'none'}"))
        if problems:
            return problems
        try:
            specs = resolve_histograms(params)
        except ValidationError as exc:
            return [("presets", f"a preset has an invalid definition: {exc}")]
        if not specs:
            return [("hist", "no histograms: add [processors.hist.NAME] tables or presets")]
        checks = [(f"hist.{n}.axes[{i}].expr", a.expr) for n, s in specs.items() for i, a in enumerate(s.axes)]
        checks += [(f"hist.{n}.{k}", getattr(s, k)) for n, s in specs.items() for k in ("weight", "selection")]
        checks += [(k, getattr(params, k)) for k in ("weight", "selection")]
        return expression_problems(checks)

    def setup(self, context: Any) -> None:
        self.specs = resolve_histograms(self.params)
        self.compiled = {
            name: (
                [Expression(a.expr) for a in spec.axes],
                Expression(spec.weight or self.params.weight) if (spec.weight or self.params.weight) else None,
                [Expression(s) for s in (self.params.selection, spec.selection) if s],
            )
            for name, spec in self.specs.items()
        }

    def empty(self, name: str) -> hist.Hist:
        """An empty histogram of this name (weighted storage)."""
        spec = self.specs[name]
        return hist.Hist(*[a.build() for a in spec.axes], storage=hist.storage.Weight(), name=name, label=spec.title or name)

    def process(self, events: ak.Array, chunk: Chunk) -> Output:
        results = {}
        default_w = event_weights(events)
        for name, (axes, weight, selections) in self.compiled.items():
            h = self.empty(name)
            values = [ax.evaluate(events) for ax in axes]
            w = weight.evaluate(events) if weight else default_w
            masks = [s.evaluate(events) for s in selections]
            flat = _flatten_together(values + [w] + masks)
            vals, wflat, sel = flat[: len(axes)], flat[len(axes)], flat[len(axes) + 1:]
            keep = np.ones(len(wflat), bool)
            for m in sel:
                keep &= m.astype(bool)
            h.fill(*[v[keep] for v in vals], weight=wflat[keep])
            results[name] = h
        return Output(results=results)


def _flatten_together(arrays: list[Any]) -> list[np.ndarray]:
    """Broadcast per-event and per-object arrays to one structure and flatten each to 1-D numpy
    (entries where any array is None are dropped)."""
    # fixed-size arrays (e.g. raw.calo, 25 crystals per event) broadcast like per-object lists
    as_ak = [ak.from_regular(ak.Array(a) if not isinstance(a, ak.Array) else a, axis=None) for a in arrays]
    if all(a.ndim == 1 for a in as_ak):
        cols = as_ak
    else:
        cols = ak.broadcast_arrays(*as_ak)
        cols = [ak.flatten(c, axis=None) for c in cols]
    valid = np.ones(len(cols[0]), bool)
    for c in cols:
        if isinstance(c.layout, ak.contents.IndexedOptionArray) or "?" in str(c.type):
            valid &= ~np.asarray(ak.is_none(c))
    out = []
    for c in cols:
        c = c[valid]
        out.append(np.asarray(ak.to_numpy(ak.drop_none(c) if "?" in str(c.type) else c)))
    return out


BEAM_PRESET = {
    "beam_energy": {"axes": [{"expr": "mc.particles.E", "bins": 120, "start": 130.0, "stop": 190.0, "label": "E_mu [GeV]"}]},
    "beam_slope_x": {"axes": [{"expr": "mc.particles.px / mc.particles.pz * 1e3", "bins": 100, "start": -2.5, "stop": 2.5, "label": "dx/dz [mrad]"}]},
    "beam_slope_y": {"axes": [{"expr": "mc.particles.py / mc.particles.pz * 1e3", "bins": 100, "start": -2.5, "stop": 2.5, "label": "dy/dz [mrad]"}]},
    "beam_spot": {"axes": [
        {"expr": "mc.particles.vx", "bins": 60, "start": -90.0, "stop": 90.0, "label": "x [mm]"},
        {"expr": "mc.particles.vy", "bins": 60, "start": -90.0, "stop": 90.0, "label": "y [mm]"},
    ]},
    "muons_per_crossing": {"axes": [{"expr": "num(mc.particles)", "integer": True, "start": 0, "stop": 12, "label": "beam muons per bunch crossing"}]},
}


@hookimpl
def muone_plugins() -> list[type]:
    return [Histograms]


@hookimpl
def muone_histogram_presets() -> dict[str, dict[str, Any]]:
    return {"beam": BEAM_PRESET}
