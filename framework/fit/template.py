"""Reweightable templates: the observable histogram of simulated events for ANY Delta_alpha_had.

PHYSICS.md section 6: the template for a hadronic model is the simulated sample reweighted per
event with its *true* momentum transfer(s). With the MESMER convention of ``mc.vp`` (docs/generators.md)
the weight of an event for a coupling Delta_alpha = Delta_alpha_lep + Delta_alpha_had is

    w = c0 + c1 vp(t)^2 + c2 vp(t) vp(t_mu) + c5 vp(t_mu)^2,      vp(t) = 1 / (1 - Delta_alpha(t)),

(two-body events have only c1, with t = t_mu; radiative ones have t = t24 != t_mu = t13).
Keeping every event to reweight it at each step of a fit is expensive; a :class:`Template` keeps
instead, per observable bin, a few sums that make the reweighted bin content exact to far below
the statistical precision of any conceivable MUonE data set.

Method
------
Let u = ln|t| and cut the u axis into global cells of width h (``cell_width``, default 1/64):
cell k = floor(u / h), centre u_k = (k + 1/2) h, and delta = u - u_k in [-h/2, h/2).
For each term and each (observable bin, cell) the template accumulates the moments

    S_i = sum over entries of c delta^i,   i = 0, 1, 2      (and sum |c| for the error bound)

(a 3 x 3 matrix S_ij = sum c delta^i delta_mu^j over (bin, cell of t, cell of t_mu) for the cross
term c2). For a model, g(u) = vp(t)^2 is replaced inside each cell by its quadratic interpolant P
through the cell's edges and centre (nodes u_k - h/2, u_k, u_k + h/2, shared with the neighbours):

    P(delta) = a0 + a1 delta + a2 delta^2,  a0 = g_mid, a1 = (g_right - g_left)/h,
               a2 = 2 (g_right - 2 g_mid + g_left)/h^2,

so that  sum c g(u) ~= a0 S_0 + a1 S_1 + a2 S_2  for the cell: a fixed linear map of the node
values g(u_node). The cross term uses the product of the two interpolants of vp (the full 3 x 3
moments make it exactly P_F(delta) P_G(delta_mu)).

Error bound. Lagrange's remainder for the interpolant on three nodes h/2 apart gives, per entry,
|g(u) - P(delta)| <= max|g'''| |(delta + h/2) delta (delta - h/2)| / 6 <= max|g'''| h^3 / (72 sqrt 3),
so a bin's error is at most  sum |c| max|g'''| h^3 / 124.7  (:meth:`Template.error_bound` evaluates
it with g''' from third differences of the node values). With the leptonic running plus any of the
hadronic models g''' (a derivative in ln|t|) is of order d^3 Delta/du^3 ~ 1e-3 (up to ~5e-3 at
t_min for Pol2 with the reference coefficients), so the default h = 1/64 gives a relative error
below ~2e-10 per bin (1.3e-9 with h = 1/32); the measured differences with exact per-event
reweighting are 1e-13 to 1e-10 (tests/test_template.py). The sums are float64 and merged along the fixed
chunk-order tree, so results are reproducible bit for bit.

MC statistics: ``sumw`` and ``sumw2`` per bin hold the sums of the sample's weights (the ``weight``
expression, by default ``mc.weight``) and of their squares; the relative MC variance of a bin,
sumw2 / sumw^2, is what the fit's Barlow-Beeston-lite treatment uses (it changes by O(1e-3) with
the model, which is neglected).

Observable bins are the cells of the product of the axes (row-major, like ``numpy.ravel``); entries
outside every axis range, or with a non-finite value, are not filled (``outside`` counts them).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["CELL_WIDTH", "TERMS", "Axis", "CrossTerm", "SquareTerm", "Template", "TemplateEvaluator"]

#: Default width of the ln|t| cells.
CELL_WIDTH = 1.0 / 64.0
#: The vacuum-polarisation terms, by their coefficient name (MESMER convention of ``mc.vp``).
TERMS = {"c0": "constant", "c1": "vp(t)^2", "c2": "vp(t) vp(t_mu)", "c5": "vp(t_mu)^2"}

# cell indices are packed into int64 keys with this offset and range
_CELL_OFFSET = 1 << 19
_CELL_RANGE = 1 << 20
# rows i = 0, 1, 2 (powers of delta) of the map from node values (left, mid, right) to a_i
# are built per cell width by _interpolation_matrix.


def _interpolation_matrix(h: float) -> np.ndarray:
    """L with a_i = sum_p L_ip g_p for the nodes (left, mid, right) = (-h/2, 0, h/2)."""
    return np.array([[0.0, 1.0, 0.0], [-1.0 / h, 0.0, 1.0 / h], [2.0 / h**2, -4.0 / h**2, 2.0 / h**2]])


@dataclass(frozen=True)
class Axis:
    """One observable axis: its name (used by region expressions), bin edges and label."""

    name: str
    edges: tuple[float, ...]
    label: str = ""
    expression: str = ""

    def __post_init__(self) -> None:
        edges = tuple(float(e) for e in self.edges)
        if len(edges) < 2 or any(b <= a for a, b in itertools.pairwise(edges)) or not all(map(math.isfinite, edges)):
            raise ValueError(f"axis {self.name!r}: edges must be at least two finite, strictly increasing numbers")
        object.__setattr__(self, "edges", edges)

    @property
    def n_bins(self) -> int:
        return len(self.edges) - 1

    @property
    def edges_array(self) -> np.ndarray:
        return np.asarray(self.edges)

    @property
    def centres(self) -> np.ndarray:
        e = self.edges_array
        return 0.5 * (e[1:] + e[:-1])

    def index(self, values: np.ndarray) -> np.ndarray:
        """Bin index of each value; -1 outside [first edge, last edge) or for NaN."""
        e = self.edges_array
        idx = np.searchsorted(e, values, side="right") - 1
        idx[(idx >= self.n_bins) | ~np.isfinite(values)] = -1
        return idx


def _aggregate(keys: list[np.ndarray], values: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Sum the rows of ``values`` (n, ...) with equal key tuples; keys come back sorted.

    Deterministic: ``np.bincount`` adds in input order."""
    if len(values) == 0:
        return [k[:0] for k in keys], values
    packed = keys[0].astype(np.int64)
    for k in keys[1:]:
        packed = packed * _CELL_RANGE + (k + _CELL_OFFSET)
    uniq, inverse = np.unique(packed, return_inverse=True)
    flat = values.reshape(len(values), -1)
    sums = np.empty((len(uniq), flat.shape[1]))
    for j in range(flat.shape[1]):
        sums[:, j] = np.bincount(inverse, weights=flat[:, j], minlength=len(uniq))
    out_keys = []
    rest = uniq
    for _ in keys[1:]:
        out_keys.append(rest % _CELL_RANGE - _CELL_OFFSET)
        rest = rest // _CELL_RANGE
    out_keys.append(rest)
    out_keys.reverse()
    return out_keys, sums.reshape((len(uniq),) + values.shape[1:])


def _column(value: Any, n: int) -> np.ndarray | None:
    """A 1-D float64 array (a scalar is repeated n times); None stays None."""
    if value is None:
        return None
    a = np.asarray(value, dtype=np.float64)
    return np.full(n, float(a)) if a.ndim == 0 else a.reshape(-1)


def _cells(t: np.ndarray, h: float) -> tuple[np.ndarray, np.ndarray]:
    """Cell index k = floor(ln|t| / h) and offset delta = ln|t| - (k + 1/2) h."""
    u = np.log(-t)
    k = np.floor(u / h)
    delta = u - (k + 0.5) * h
    k = k.astype(np.int64)
    if len(k) and (k.min() <= -_CELL_OFFSET or k.max() >= _CELL_OFFSET):
        raise ValueError(f"ln|t| = {u.min():.4g}..{u.max():.4g} is outside the range of cells of width {h}")
    return k, delta


@dataclass
class SquareTerm:
    """Entries c vp(t)^2 (c1, with t = mc.t) or c vp(t_mu)^2 (c5): moments per (bin, cell).

    ``moments[:, 0:3]`` = sum c delta^i (i = 0, 1, 2), ``moments[:, 3]`` = sum |c|.
    """

    variable: str
    bins: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    cells: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    moments: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))

    @classmethod
    def from_entries(cls, variable: str, bins: np.ndarray, t: np.ndarray, c: np.ndarray, h: float) -> SquareTerm:
        k, d = _cells(t, h)
        values = np.column_stack([c, c * d, c * d * d, np.abs(c)])
        (b, k), m = _aggregate([bins, k], values)
        return cls(variable, b, k, m)

    def __add__(self, other: SquareTerm) -> SquareTerm:
        (b, k), m = _aggregate(
            [np.concatenate([self.bins, other.bins]), np.concatenate([self.cells, other.cells])],
            np.concatenate([self.moments, other.moments]),
        )
        return SquareTerm(self.variable, b, k, m)

    def __len__(self) -> int:
        return len(self.bins)


@dataclass
class CrossTerm:
    """Entries c2 vp(t) vp(t_mu) (radiative events, t = t24, t_mu = t13): per (bin, cell of t,
    cell of t_mu) the moments ``moments[:, i, j]`` = sum c delta^i delta_mu^j (i, j = 0, 1, 2) and
    ``abs_sum`` = sum |c|."""

    bins: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    cells: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    cells_mu: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    moments: np.ndarray = field(default_factory=lambda: np.zeros((0, 3, 3)))
    abs_sum: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @classmethod
    def from_entries(cls, bins: np.ndarray, t: np.ndarray, t_mu: np.ndarray, c: np.ndarray, h: float) -> CrossTerm:
        k, d = _cells(t, h)
        km, dm = _cells(t_mu, h)
        pd = np.stack([np.ones_like(d), d, d * d], axis=1)
        pm = np.stack([np.ones_like(dm), dm, dm * dm], axis=1)
        values = np.concatenate([(c[:, None, None] * pd[:, :, None] * pm[:, None, :]).reshape(-1, 9), np.abs(c)[:, None]], axis=1)
        (b, k, km), m = _aggregate([bins, k, km], values)
        return cls(b, k, km, m[:, :9].reshape(-1, 3, 3), m[:, 9])

    def __add__(self, other: CrossTerm) -> CrossTerm:
        values = np.concatenate([
            np.concatenate([self.moments.reshape(-1, 9), self.abs_sum[:, None]], axis=1),
            np.concatenate([other.moments.reshape(-1, 9), other.abs_sum[:, None]], axis=1),
        ])
        keys = [np.concatenate([a, b]) for a, b in ((self.bins, other.bins), (self.cells, other.cells), (self.cells_mu, other.cells_mu))]
        (b, k, km), m = _aggregate(keys, values)
        return CrossTerm(b, k, km, m[:, :9].reshape(-1, 3, 3), m[:, 9])

    def __len__(self) -> int:
        return len(self.bins)


class Template:
    """A reweightable template over observable axes (module docstring: method and error bound).

    Build it empty with its axes, :meth:`fill` it per chunk, add chunks with ``+`` (deterministic,
    a new object), pickle it, and ask for :meth:`expected` bin contents for any hadronic model.

    Attributes:
        axes: the observable axes.
        cell_width: h, the width of the ln|t| cells.
        meta: free description (the expressions used to fill it); must match to add templates.
        sumw, sumw2: per bin, sums of the sample weights and of their squares.
        entries: per bin, number of filled entries.
        constant: per bin, sum of c0 (the model-independent part).
        terms: the model-dependent terms present: "c1" and "c5" (:class:`SquareTerm`),
            "c2" (:class:`CrossTerm`).
        outside: number of entries not filled (outside the axes, or a non-finite value).
        has_truth: False for a template filled without truth (data): only sumw/sumw2.
    """

    def __init__(self, axes: Sequence[Axis], cell_width: float = CELL_WIDTH, meta: dict[str, Any] | None = None, has_truth: bool = True) -> None:
        if not axes:
            raise ValueError("a template needs at least one axis")
        if not (0.0 < cell_width <= 1.0):
            raise ValueError(f"cell_width must be in (0, 1], got {cell_width}")
        self.axes = tuple(axes)
        self.cell_width = float(cell_width)
        self.meta = dict(meta or {})
        self.has_truth = bool(has_truth)
        n = self.n_bins
        self.sumw = np.zeros(n)
        self.sumw2 = np.zeros(n)
        self.entries = np.zeros(n, np.int64)
        self.constant = np.zeros(n)
        self.terms: dict[str, SquareTerm | CrossTerm] = {}
        self.outside = 0
        self._evaluator: TemplateEvaluator | None = None

    # -- shape ------------------------------------------------------------------------------

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(a.n_bins for a in self.axes)

    @property
    def n_bins(self) -> int:
        return int(np.prod(self.shape))

    def centres(self) -> dict[str, np.ndarray]:
        """Bin centres per axis name, one value per (flattened) bin."""
        grids = np.meshgrid(*[a.centres for a in self.axes], indexing="ij")
        return {a.name: g.ravel() for a, g in zip(self.axes, grids)}

    def bin_index(self, values: Sequence[np.ndarray]) -> np.ndarray:
        """Flattened bin index of each entry (-1 outside)."""
        if len(values) != len(self.axes):
            raise ValueError(f"{len(values)} value arrays for {len(self.axes)} axes")
        idx = [a.index(np.asarray(v, dtype=np.float64)) for a, v in zip(self.axes, values)]
        inside = np.ones(len(idx[0]), bool)
        for i in idx:
            inside &= i >= 0
        flat = np.full(len(inside), -1, np.int64)
        if inside.any():
            flat[inside] = np.ravel_multi_index(tuple(i[inside] for i in idx), self.shape)
        return flat

    def compatible(self, other: Template) -> str | None:
        """None when the two templates can be added or compared; else why not."""
        if not isinstance(other, Template):
            return f"not a Template: {type(other).__name__}"
        if [(a.name, a.edges) for a in self.axes] != [(a.name, a.edges) for a in other.axes]:
            return "different axes (names or edges)"
        if self.cell_width != other.cell_width:
            return f"different cell widths ({self.cell_width} vs {other.cell_width})"
        return None

    # -- filling ------------------------------------------------------------------------------

    def fill(
        self,
        values: Sequence[np.ndarray],
        *,
        weight: np.ndarray | None = None,
        t: np.ndarray | None = None,
        t_mu: np.ndarray | None = None,
        c0: np.ndarray | None = None,
        c1: np.ndarray | None = None,
        c2: np.ndarray | None = None,
        c5: np.ndarray | None = None,
    ) -> Template:
        """Fill entries (in place; returns self). All arrays are 1-D, one value per entry.

        Args:
            values: one array per axis (entries outside the axes or non-finite are skipped).
            weight: sample weight of each entry for ``sumw``/``sumw2`` (default 1).
            t, t_mu: true momentum transfers [GeV^2], t < 0 (t_mu defaults to t).
            c0, c1, c2, c5: the VP coefficients (missing: 0). Entries with a nonzero coefficient
                need a finite negative t (and t_mu for c2, c5).

        Raises:
            ValueError: arrays of different lengths, or a nonzero coefficient with t >= 0 / NaN.
        """
        values = [np.asarray(v, dtype=np.float64).reshape(-1) for v in values]
        n = len(values[0]) if values else 0
        given = {"weight": weight, "t": t, "t_mu": t_mu, "c0": c0, "c1": c1, "c2": c2, "c5": c5}
        arrays = {k: _column(v, n) for k, v in given.items()}
        for k, v in list(arrays.items()) + [(f"values[{i}]", v) for i, v in enumerate(values)]:
            if v is not None and len(v) != n:
                raise ValueError(f"{k} has {len(v)} entries, expected {n}")
        self._evaluator = None
        bins = self.bin_index(values)
        inside = bins >= 0
        self.outside += int(n - inside.sum())
        b = bins[inside]
        w = arrays["weight"][inside] if arrays["weight"] is not None else np.ones(len(b))
        self.sumw += np.bincount(b, weights=w, minlength=self.n_bins)
        self.sumw2 += np.bincount(b, weights=w * w, minlength=self.n_bins)
        self.entries += np.bincount(b, minlength=self.n_bins)
        if not self.has_truth:
            if any(arrays[c] is not None for c in ("t", "c0", "c1", "c2", "c5")):
                raise ValueError("this template has no truth (data): fill it with values and weight only")
            return self
        if arrays["c0"] is not None:
            self.constant += np.bincount(b, weights=arrays["c0"][inside], minlength=self.n_bins)
        t_e = arrays["t"][inside] if arrays["t"] is not None else None
        t_m = arrays["t_mu"][inside] if arrays["t_mu"] is not None else t_e
        variables = {"c1": {"t": t_e}, "c5": {"t_mu": t_m}, "c2": {"t": t_e, "t_mu": t_m}}
        for name, needs in variables.items():
            c = arrays[name]
            if c is None:
                continue
            c = c[inside]
            use = c != 0
            if not use.any():
                continue
            for label, var in needs.items():
                if var is None:
                    raise ValueError(f"{name} needs {label}")
                bad = use & ~(var < 0)
                if bad.any():
                    raise ValueError(f"{int(bad.sum())} entries with nonzero {name} have {label} >= 0 or NaN (e.g. {var[bad][0]!r}); the VP reweighting needs t < 0")
            if name == "c2":
                term = CrossTerm.from_entries(b[use], t_e[use], t_m[use], c[use], self.cell_width)
            else:
                label, var = next(iter(needs.items()))
                term = SquareTerm.from_entries(label, b[use], var[use], c[use], self.cell_width)
            self.terms[name] = self.terms[name] + term if name in self.terms else term
        return self

    # -- merging and pickling -------------------------------------------------------------------

    def empty_like(self) -> Template:
        return Template(self.axes, self.cell_width, self.meta, self.has_truth)

    def __add__(self, other: Template) -> Template:
        why = self.compatible(other)
        if why is None and self.meta != other.meta:
            why = f"different definitions ({self.meta} vs {other.meta})"
        if why is None and self.has_truth != other.has_truth:
            why = "one has truth terms, the other not"
        if why is not None:
            raise ValueError(f"cannot add templates: {why}")
        out = self.empty_like()
        out.sumw = self.sumw + other.sumw
        out.sumw2 = self.sumw2 + other.sumw2
        out.entries = self.entries + other.entries
        out.constant = self.constant + other.constant
        out.outside = self.outside + other.outside
        for name in sorted(set(self.terms) | set(other.terms)):
            if name in self.terms and name in other.terms:
                out.terms[name] = self.terms[name] + other.terms[name]
            else:
                out.terms[name] = self.terms[name] if name in self.terms else other.terms[name]
        return out

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_evaluator"] = None
        return state

    def __repr__(self) -> str:
        axes = ", ".join(f"{a.name}[{a.n_bins}]" for a in self.axes)
        cells = ", ".join(f"{k}: {len(v)} cells" for k, v in sorted(self.terms.items()))
        return f"Template({axes}; entries {int(self.entries.sum())}, sumw {self.sumw.sum():.6g}; {cells or 'no VP terms'})"

    # -- evaluation ---------------------------------------------------------------------------

    @property
    def evaluator(self) -> TemplateEvaluator:
        """The (cached) linear maps from node values to bin contents."""
        if self._evaluator is None:
            self._evaluator = TemplateEvaluator(self)
        return self._evaluator

    def expected(self, model: Callable[[np.ndarray], Any] | None = None) -> np.ndarray:
        """Per-bin sum of event weights for the hadronic model (a callable Delta_alpha_had(t), or
        None for no hadronic running), with the leptonic running of :func:`muone.physics.delta_alpha_lep`.
        Units: those of the sample weights (scale by L / L_template for a luminosity)."""
        return self.evaluator.expected(model)

    def error_bound(self, model: Callable[[np.ndarray], Any] | None = None) -> np.ndarray:
        """Per-bin upper bound of |expected(model) - exact reweighting| (module docstring)."""
        return self.evaluator.error_bound(model)

    def mc_relative_variance(self) -> np.ndarray:
        """sumw2 / sumw^2 per bin (0 where sumw = 0): the relative MC variance of each bin."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.sumw != 0, self.sumw2 / self.sumw**2, 0.0)


class TemplateEvaluator:
    """Linear maps from vp values at the cell nodes to the per-bin template contents.

    Nodes sit at u = j h / 2 (integer j): cell k has nodes 2k, 2k + 1, 2k + 2. The square terms
    give one sparse matrix A (bins x nodes) with mu = A @ vp^2; the cross term keeps per entry its
    3 x 3 node weights W = L^T S L and node indices, mu_b += sum W_pq vp[p] vp[q].
    """

    def __init__(self, template: Template) -> None:
        from muone.physics.vacuum_polarisation import delta_alpha_lep
        from scipy import sparse

        self.n_bins = template.n_bins
        self.constant = template.constant.copy()
        h = template.cell_width
        self.h = h
        L = _interpolation_matrix(h)
        lows, highs = [], []
        for term in template.terms.values():
            if len(term):
                lows.append(term.cells.min())
                highs.append(term.cells.max())
                if isinstance(term, CrossTerm):
                    lows.append(term.cells_mu.min())
                    highs.append(term.cells_mu.max())
        self.j0 = 2 * int(min(lows)) - 2 if lows else 0  # one spare node each side for third differences
        n_nodes = 2 * (int(max(highs)) - int(min(lows)) + 1) + 5 if lows else 0
        self.n_nodes = n_nodes
        j = self.j0 + np.arange(n_nodes)
        self.t_nodes = -np.exp(j * (h / 2.0))
        self.lep_nodes = np.asarray(delta_alpha_lep(self.t_nodes)) if n_nodes else np.zeros(0)
        rows, cols, data = [], [], []
        self._sq_cells: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (bins, node of left, abs sum)
        for name in ("c1", "c5"):
            term = template.terms.get(name)
            if term is None or not len(term):
                continue
            w = term.moments[:, :3] @ L  # (n, 3): node weights
            left = 2 * term.cells - self.j0
            for p in range(3):
                rows.append(term.bins)
                cols.append(left + p)
                data.append(w[:, p])
            self._sq_cells.append((term.bins, left, term.moments[:, 3]))
        if rows:
            self.square = sparse.csr_matrix((np.concatenate(data), (np.concatenate(rows), np.concatenate(cols))), shape=(self.n_bins, n_nodes))
        else:
            self.square = None
        cross = template.terms.get("c2")
        if cross is not None and len(cross):
            self.cross_bins = cross.bins
            self.cross_left = 2 * cross.cells - self.j0
            self.cross_left_mu = 2 * cross.cells_mu - self.j0
            self.cross_w = np.einsum("ip,nij,jq->npq", L, cross.moments, L)
            self.cross_abs = cross.abs_sum
        else:
            self.cross_bins = None

    def vp(self, model: Callable[[np.ndarray], Any] | None) -> np.ndarray:
        """vp = 1 / (1 - Delta_alpha_lep - Delta_alpha_had) at the nodes."""
        had = np.asarray(model(self.t_nodes), dtype=np.float64) if (model is not None and self.n_nodes) else 0.0
        return 1.0 / (1.0 - self.lep_nodes - had)

    def expected(self, model: Callable[[np.ndarray], Any] | None = None) -> np.ndarray:
        """Per-bin template content for the model (see :meth:`Template.expected`)."""
        vp = self.vp(model)
        return self.expected_from_vp(vp)

    def expected_from_vp(self, vp: np.ndarray) -> np.ndarray:
        """Per-bin content from vp values at the nodes (e.g. a tabulated coupling)."""
        mu = self.constant.copy()
        if self.square is not None:
            mu += self.square @ (vp * vp)
        if self.cross_bins is not None:
            a = vp[self.cross_left[:, None] + np.arange(3)]
            b = vp[self.cross_left_mu[:, None] + np.arange(3)]
            mu += np.bincount(self.cross_bins, weights=np.einsum("np,npq,nq->n", a, self.cross_w, b), minlength=self.n_bins)
        return mu

    def error_bound(self, model: Callable[[np.ndarray], Any] | None = None) -> np.ndarray:
        """Per-bin bound sum |c| max|g'''| h^3 / (72 sqrt 3), g''' from third differences of the
        node values (spacing h/2) over the cell and its neighbours."""
        bound = np.zeros(self.n_bins)
        if not self.n_nodes:
            return bound
        vp = self.vp(model)
        c = self.h**3 / (72.0 * math.sqrt(3.0))

        def third(g: np.ndarray) -> np.ndarray:
            d3 = np.abs(np.diff(g, 3)) / (self.h / 2.0) ** 3  # at nodes j + 1.5
            return d3

        def cell_max(d3: np.ndarray, left: np.ndarray) -> np.ndarray:
            # third differences touching the cell's span [left - 1, left + 3]
            idx = np.clip(left[:, None] + np.arange(-1, 3), 0, len(d3) - 1)
            return d3[idx].max(axis=1)

        d3_sq = third(vp * vp)
        for bins, left, abs_sum in self._sq_cells:
            bound += np.bincount(bins, weights=abs_sum * cell_max(d3_sq, left) * c, minlength=self.n_bins)
        if self.cross_bins is not None:
            d3 = third(vp)
            vmax = float(np.max(np.abs(vp)))
            e = (cell_max(d3, self.cross_left) + cell_max(d3, self.cross_left_mu)) * c * vmax * 1.01
            bound += np.bincount(self.cross_bins, weights=self.cross_abs * e, minlength=self.n_bins)
        return bound
