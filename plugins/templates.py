"""Processors ``templates`` (reweightable templates for the Delta_alpha_had fit) and
``truth_angles`` (generator-level scattering angles).

``templates`` fills a :class:`muone.fit.Template` per chunk: observable axes are expressions on
event fields (as in ``histograms``), so the same processor makes templates from generator-level
angles now and from reconstructed vertices later without code changes::

    [[processors]]
    plugin = "truth_angles"            # writes truth.theta_e, truth.theta_mu
    resolution = 2e-5

    [[processors]]
    plugin = "templates"
    preset = "muone2d"                 # theta_e x theta_mu, MUonE binning (PHYSICS.md section 6)
    # observables = ["vertices.theta_e[vertices.best]", "vertices.theta_mu[vertices.best]"]

Method, parameters and exactness: docs/fit.md and :mod:`muone.fit.template`.
"""

from __future__ import annotations

from typing import Any, Literal

import awkward as ak
import hist
import numpy as np
from muone import hookimpl
from muone.errors import ExpressionError
from muone.expressions import Expression, expression_problems
from muone.fit.template import CELL_WIDTH, Axis, Template
from muone.fit.truth import AngleModel, truth_angles
from muone.plugins.histograms import AxisSpec
from muone.processor import Chunk, Output, Params, Processor
from pydantic import Field, ValidationError

#: MUonE 2D binning (PHYSICS.md section 6), in rad: theta_e 0-6 mrad in 0.1 mrad bins then 1 mrad
#: bins to 32 mrad; theta_mu 0-6 mrad in 0.1 mrad bins.
THETA_E_EDGES = [round(i * 1e-4, 10) for i in range(61)] + [round(i * 1e-3, 10) for i in range(7, 33)]
THETA_MU_EDGES = [round(i * 1e-4, 10) for i in range(61)]

#: Named axis sets: preset -> list of axis tables (expressions on the truth_angles output).
PRESETS: dict[str, list[dict[str, Any]]] = {
    "muone2d": [
        {"expr": "truth.theta_e", "edges": THETA_E_EDGES, "name": "theta_e", "label": "theta_e [rad]"},
        {"expr": "truth.theta_mu", "edges": THETA_MU_EDGES, "name": "theta_mu", "label": "theta_mu [rad]"},
    ],
    "theta_e": [
        {"expr": "truth.theta_e", "edges": THETA_E_EDGES, "name": "theta_e", "label": "theta_e [rad]"},
    ],
}


# ----------------------------------------------------------------------------------------------
# truth_angles


class TruthAnglesParams(Params):
    output: str = Field("truth", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="Collection written (fields theta_e, theta_mu [rad], E_e, E_mu [GeV]).")
    resolution: float = Field(0.0, ge=0.0, le=0.1, description="Intrinsic angular resolution per plane, Gaussian [rad] (MUonE requirement ~2e-5).")
    ms_radiation_lengths: float = Field(0.0, ge=0.0, le=1.0, description="Material x/X0 for the Highland multiple-scattering smearing of each outgoing particle (0: none; ~0.028 = half a 1.5 cm Be target + one module).")
    ms_scale: float = Field(1.0, ge=0.0, le=10.0, description="Scale of the multiple-scattering width (systematic variations of the MCS model).")
    beam_energy_shift: float = Field(0.0, ge=-50.0, le=50.0, description="Angles as for a beam energy shifted by this amount at the same t [GeV] (beam-energy-scale variations).")
    angle_scale: float = Field(1.0, gt=0.5, lt=2.0, description="Multiplies both angles (longitudinal alignment: 1 + dL/L).")
    random_stream: str = Field("", description="Instance name whose random stream to use (default: this instance); variations set it to the nominal instance so that they share its smearing.")


class TruthAngles(Processor):
    """Generator-level theta_e, theta_mu of the hard electron and muon relative to mc.beam, optionally smeared.

    Writes ``<output>.theta_e``, ``<output>.theta_mu`` [rad], ``<output>.E_e``, ``<output>.E_mu`` [GeV]
    (NaN when the event has no hard electron/muon). Emulation of resolution, multiple scattering,
    beam-energy shift and angle scale: :mod:`muone.fit.truth`, docs/fit.md.
    """

    name = "truth_angles"
    Params = TruthAnglesParams
    reads = ("mc.particles", "mc.beam")
    writes = ("truth",)  # the default output; writes_for gives the configured one

    @classmethod
    def writes_for(cls, params: TruthAnglesParams) -> tuple[str, ...]:
        return (params.output,)

    def setup(self, context: Any) -> None:
        p = self.params
        self.model = AngleModel(p.resolution, p.ms_radiation_lengths, p.ms_scale, p.beam_energy_shift, p.angle_scale)

    def process(self, events: ak.Array, chunk: Chunk) -> Output:
        stream = chunk.for_instance(self.params.random_stream) if self.params.random_stream else chunk
        normals = stream.rng.standard_normal((len(events), 4))
        angles = truth_angles(events, self.model, normals)
        return Output(collections={self.params.output: ak.zip(angles)})


# ----------------------------------------------------------------------------------------------
# templates


class TemplatesParams(Params):
    preset: Literal["", "muone2d", "theta_e"] = Field("", description="Named axes: muone2d (theta_e x theta_mu, MUonE binning) or theta_e (1D); axes in rad from truth_angles.")
    axes: list[AxisSpec] = Field(default_factory=list, max_length=3, description="Observable axes (expression + binning), instead of a preset.")
    observables: list[str] = Field(default_factory=list, description="Expressions replacing those of the preset axes, in order (e.g. vertices.theta_e[vertices.best]).")
    selection: str = Field("", description="Boolean expression selecting events (or objects, like the axes).")
    t: str = Field("mc.t", description="True momentum transfer of the electron line (t24) [GeV^2]; empty for data (no reweighting terms).")
    t_mu: str = Field("mc.t_mu", description="True muon-line momentum transfer (t13) [GeV^2], for the c2 and c5 terms.")
    c0: str = Field("mc.vp[:, 0]", description="Model-independent weight term (empty: none).")
    c1: str = Field("mc.vp[:, 1]", description="Coefficient of vp(t)^2 (elastic: weight_norun).")
    c2: str = Field("mc.vp[:, 2]", description="Coefficient of vp(t) vp(t_mu) (radiative events; empty: none).")
    c5: str = Field("mc.vp[:, 5]", description="Coefficient of vp(t_mu)^2 (radiative events; empty: none).")
    weight: str = Field("mc.weight", description="Sample weight for sumw/sumw2 (MC statistics); empty: 1.")
    smear: list[float] = Field(default_factory=list, description="Generator-level Gaussian smearing of each axis value (RMS in the axis units; empty: none).")
    cell_width: float = Field(CELL_WIDTH, gt=0.0, le=0.5, description="Width of the ln|t| cells of the reweighting moments.")


def resolve_axes(params: TemplatesParams) -> list[AxisSpec]:
    """The axes of a templates instance: the preset's (with ``observables`` replacing their
    expressions) or the explicit ones."""
    if params.preset:
        tables = [dict(t) for t in PRESETS[params.preset]]
        if params.observables:
            if len(params.observables) != len(tables):
                raise ValueError(f"observables has {len(params.observables)} expressions for the {len(tables)} axes of preset {params.preset!r}")
            for table, expr in zip(tables, params.observables):
                table["expr"] = expr
        return [AxisSpec.model_validate(t) for t in tables]
    return list(params.axes)


def _term_texts(params: TemplatesParams) -> dict[str, str]:
    if not params.t:
        return {}
    return {k: getattr(params, k) for k in ("t", "t_mu", "c0", "c1", "c2", "c5") if getattr(params, k)}


class Templates(Processor):
    """Fill a reweightable template (muone.fit.Template) for the Delta_alpha_had fit: expression axes, exact VP reweighting terms, MC statistics."""

    name = "templates"
    Params = TemplatesParams

    @classmethod
    def reads_for(cls, params: TemplatesParams) -> tuple[str, ...]:
        try:
            texts = [a.expr for a in resolve_axes(params)] + list(_term_texts(params).values())
            texts += [e for e in (params.selection, params.weight) if e]
            return tuple(dict.fromkeys(f for text in texts for f in Expression(text).fields))
        except (ValueError, ValidationError, ExpressionError):
            return ()

    @classmethod
    def check(cls, params: TemplatesParams, steering: Any) -> list[tuple[str, str]]:
        if bool(params.preset) == bool(params.axes):
            return [("preset", "give either a preset or axes (not both, not neither)")]
        if params.observables and not params.preset:
            return [("observables", "observables replace the expressions of a preset; with explicit axes set their expr")]
        try:
            axes = resolve_axes(params)
        except ValueError as exc:
            return [("observables", str(exc))]
        problems = []
        if params.smear and len(params.smear) != len(axes):
            problems.append(("smear", f"{len(params.smear)} values for {len(axes)} axes"))
        if any(s < 0 for s in params.smear):
            problems.append(("smear", "smearing widths must be >= 0"))
        checks = [(f"axes[{i}].expr", a.expr) for i, a in enumerate(axes)]
        checks += [(k, getattr(params, k)) for k in ("selection", "t", "t_mu", "c0", "c1", "c2", "c5", "weight")]
        return problems + expression_problems(checks)

    def setup(self, context: Any) -> None:
        p = self.params
        specs = resolve_axes(p)
        self.axes = [Axis(s.build().name, tuple(s.build().edges), s.label or s.expr, s.expr) for s in specs]
        self.axis_exprs = [Expression(s.expr) for s in specs]
        self.terms = {k: Expression(v) for k, v in _term_texts(p).items()}
        self.selection = Expression(p.selection) if p.selection else None
        self.weight = Expression(p.weight) if p.weight else None
        self.meta = {
            "axes": [s.expr for s in specs], "selection": p.selection, "weight": p.weight, "smear": list(p.smear), **_term_texts(p),
        }

    def empty(self) -> Template:
        """An empty template with this instance's axes and definition."""
        return Template(self.axes, self.params.cell_width, self.meta, has_truth=bool(self.terms))

    def process(self, events: ak.Array, chunk: Chunk) -> Output:
        n_axes = len(self.axis_exprs)
        columns = [e.evaluate(events) for e in self.axis_exprs]
        names = list(self.terms)
        columns += [self.terms[k].evaluate(events) for k in names]
        columns.append(self.weight.evaluate(events) if self.weight else np.ones(len(events)))
        if self.selection is not None:
            columns.append(self.selection.evaluate(events))
        flat = flatten_together(columns)
        keep = np.ones(len(flat[0]), bool)
        if self.selection is not None:
            keep = flat.pop() != 0
        flat = [c[keep] for c in flat]
        values = flat[:n_axes]
        if self.params.smear:
            normals = chunk.rng.standard_normal((len(values[0]), n_axes))
            values = [v + s * normals[:, i] for i, (v, s) in enumerate(zip(values, self.params.smear))]
        terms = dict(zip(names, flat[n_axes:n_axes + len(names)]))
        weight = flat[n_axes + len(names)]
        template = self.empty().fill(values, weight=weight, **terms)
        return Output(results={"template": template, "counts": counts_hist(template)})


def counts_hist(template: Template) -> hist.Hist:
    """The template's sample-weight sums as a weighted hist (for histograms.root and plots)."""
    axes = [hist.axis.Variable(a.edges, name=a.name, label=a.label) for a in template.axes]
    h = hist.Hist(*axes, storage=hist.storage.Weight())
    view = h.view(flow=False)
    view.value = template.sumw.reshape(template.shape)
    view.variance = template.sumw2.reshape(template.shape)
    return h


def flatten_together(arrays: list[Any]) -> list[np.ndarray]:
    """Broadcast per-event and per-object arrays to one structure and flatten each to 1-D float64
    numpy (None becomes NaN, or False for booleans), so that axis values, per-event truth and weights
    line up entry by entry."""
    as_ak = [a if isinstance(a, ak.Array) else ak.Array(np.asarray(a)) for a in arrays]
    as_ak = [ak.from_regular(a, axis=None) if a.ndim > 1 else a for a in as_ak]
    if any(a.ndim > 1 for a in as_ak):
        as_ak = list(ak.broadcast_arrays(*as_ak))
    out = []
    for a in as_ak:
        if "?" in str(a.type):
            a = ak.fill_none(a, False if "bool" in str(a.type) else np.nan, axis=None)
        if a.ndim > 1:
            a = ak.flatten(a, axis=None)
        out.append(np.asarray(ak.to_numpy(a), dtype=np.float64))
    return out


@hookimpl
def muone_plugins() -> list[type]:
    return [TruthAngles, Templates]
