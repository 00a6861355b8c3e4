"""Safe, columnar expressions over the awkward event record.

Steering files select events and fill histograms with small Python-like expressions such as
``"abs(mc.particles.px / mc.particles.pz) < 0.05"`` or ``"mc.beam.theta * 1e3"``. An
:class:`Expression` parses the text once with :mod:`ast`, checks it against a whitelist (no
private or dunder attributes, no lambdas, comprehensions, imports, assignments or calls other
than the functions in :data:`FUNCTIONS`), rewrites it into a small columnar program and compiles
it once. :meth:`Expression.evaluate` then runs that program on a chunk of events: every operation
acts on whole awkward/numpy arrays, never event by event.

Language
--------
- Names are top-level fields of the event record (``run``, ``mc``, ``sel``...); dotted attributes
  walk into records (``mc.beam.E``) or, when no field has that name, into properties of the
  record's behaviour (``mc.beam.pt``, ``mc.particles.theta`` with ``vector``).
- Constants: numbers, ``pi``, ``e``, ``inf``, ``nan``, ``true``/``false``/``True``/``False``.
  These names take precedence over event fields of the same name.
- Operators: ``+ - * / // % **``, unary ``- + ~``, comparisons (chained ones such as
  ``a < b < c`` mean ``(a < b) & (b < c)``), ``& | ^``, and ``and``/``or``/``not`` which act
  elementwise (logical and, or, not).
- Subscripts: integer constants, slices of integer constants and tuples of those
  (``mc.particles.pt[:, 0]``), or another expression (a boolean mask or an index array, e.g.
  ``mc.particles.E[mc.particles.pdg == 11]``).
- Functions: see :data:`FUNCTIONS` (numpy ufuncs, ``where``, ``num``, reducers along the
  innermost list, ``firsts``, ``flatten``).

Units are those of the event record (DESIGN.md: mm, GeV, rad).
"""

from __future__ import annotations

import ast
import difflib
import math
import operator
import re
from collections.abc import Callable, Iterable
from typing import Any

import awkward as ak
import numpy as np

from muone.errors import ExpressionError, MuoneError

__all__ = ["CONSTANTS", "FUNCTIONS", "Expression", "broadcast_weights"]

#: Names that stand for constants (they take precedence over event fields of the same name).
CONSTANTS: dict[str, float | bool] = {
    "pi": math.pi,
    "e": math.e,
    "inf": math.inf,
    "nan": math.nan,
    "true": True,
    "false": False,
    "True": True,
    "False": False,
}


class _EvalError(Exception):
    """Raised by the runtime helpers; turned into an ExpressionError naming the expression."""


def _ndim(x: Any) -> int:
    """Number of dimensions of an array (0 for Python and numpy scalars)."""
    return int(getattr(x, "ndim", 0))


def _needs_list(name: str, x: Any) -> None:
    """Check that ``x`` has a list dimension per event, for the list functions."""
    if _ndim(x) < 2:
        kind = str(ak.type(x)) if isinstance(x, ak.Array) else type(x).__name__
        raise _EvalError(
            f"{name}() needs a list per event (a 'var *' or fixed-size dimension), got {kind}"
        )


def _num(x: Any) -> ak.Array:
    """Number of entries of each event's list (``ak.num(x, axis=1)``)."""
    _needs_list("num", x)
    return ak.num(x, axis=1)


def _reducer(name: str, fn: Callable[..., Any], **kwargs: Any) -> Callable[[Any], Any]:
    """An awkward reducer along the innermost list (axis=-1), refusing flat arrays."""

    def reduce(x: Any) -> Any:
        _needs_list(name, x)
        return fn(x, axis=-1, **kwargs)

    reduce.__name__ = name
    return reduce


def _firsts(x: Any) -> ak.Array:
    """The first entry of each event's list (None for an empty list)."""
    _needs_list("firsts", x)
    return ak.firsts(x, axis=1)


def _flatten(x: Any) -> ak.Array:
    """Concatenate the lists of all events (removes one list level, ``ak.flatten(x, axis=1)``)."""
    _needs_list("flatten", x)
    return ak.flatten(x, axis=1)


def _where(condition: Any, if_true: Any, if_false: Any) -> Any:
    """Elementwise choice: ``if_true`` where ``condition`` holds, else ``if_false``."""
    if any(isinstance(a, ak.Array) for a in (condition, if_true, if_false)):
        return ak.where(condition, if_true, if_false)
    return np.where(condition, if_true, if_false)


#: Allowed functions: name -> (implementation, number of arguments).
FUNCTIONS: dict[str, tuple[Callable[..., Any], int]] = {
    "abs": (np.absolute, 1),
    "sqrt": (np.sqrt, 1),
    "exp": (np.exp, 1),
    "log": (np.log, 1),
    "log10": (np.log10, 1),
    "sin": (np.sin, 1),
    "cos": (np.cos, 1),
    "tan": (np.tan, 1),
    "arcsin": (np.arcsin, 1),
    "arccos": (np.arccos, 1),
    "arctan": (np.arctan, 1),
    "arctan2": (np.arctan2, 2),
    "hypot": (np.hypot, 2),
    "minimum": (np.minimum, 2),
    "maximum": (np.maximum, 2),
    "where": (_where, 3),
    "isfinite": (np.isfinite, 1),
    "isnan": (np.isnan, 1),
    "floor": (np.floor, 1),
    "ceil": (np.ceil, 1),
    "sign": (np.sign, 1),
    "num": (_num, 1),
    "sum": (_reducer("sum", ak.sum), 1),
    "any": (_reducer("any", ak.any), 1),
    "all": (_reducer("all", ak.all), 1),
    # Empty lists give the identity (-inf / +inf for floats) rather than None.
    "max": (_reducer("max", ak.max, mask_identity=False), 1),
    "min": (_reducer("min", ak.min, mask_identity=False), 1),
    # Empty lists give nan rather than None.
    "mean": (_reducer("mean", ak.mean, mask_identity=False), 1),
    "count": (_reducer("count", ak.count), 1),
    "firsts": (_firsts, 1),
    "flatten": (_flatten, 1),
}

_BINOPS: dict[type, str] = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.Pow: "**",
    ast.BitAnd: "&",
    ast.BitOr: "|",
    ast.BitXor: "^",
}
_FORBIDDEN_BINOPS: dict[type, str] = {ast.MatMult: "@", ast.LShift: "<<", ast.RShift: ">>"}
_COMPARISONS: dict[type, tuple[str, Callable[[Any, Any], Any]]] = {
    ast.Eq: ("==", operator.eq),
    ast.NotEq: ("!=", operator.ne),
    ast.Lt: ("<", operator.lt),
    ast.LtE: ("<=", operator.le),
    ast.Gt: (">", operator.gt),
    ast.GtE: (">=", operator.ge),
}
_COMPARE_BY_SYMBOL: dict[str, Callable[[Any, Any], Any]] = dict(_COMPARISONS.values())

_FORBIDDEN_NODES: dict[type, str] = {
    ast.Lambda: "lambda expressions are not allowed",
    ast.ListComp: "comprehensions are not allowed",
    ast.SetComp: "comprehensions are not allowed",
    ast.DictComp: "comprehensions are not allowed",
    ast.GeneratorExp: "comprehensions are not allowed",
    ast.NamedExpr: "assignment expressions (:=) are not allowed",
    ast.IfExp: "conditional expressions (a if c else b) are not allowed; use where(c, a, b)",
    ast.List: "list literals are not allowed",
    ast.Tuple: "tuples are only allowed inside subscripts, e.g. x[:, 0]",
    ast.Set: "set literals are not allowed",
    ast.Dict: "dict literals are not allowed",
    ast.JoinedStr: "string constants are not allowed",
    ast.Starred: "starred arguments are not allowed",
    ast.Await: "await is not allowed",
    ast.Yield: "yield is not allowed",
    ast.YieldFrom: "yield is not allowed",
}

_STATEMENTS: dict[type, str] = {
    ast.Import: "import statements are not allowed",
    ast.ImportFrom: "import statements are not allowed",
    ast.Assign: "assignments are not allowed",
    ast.AugAssign: "assignments are not allowed",
    ast.AnnAssign: "assignments are not allowed",
    ast.Delete: "del statements are not allowed",
}

_MISSING = object()


# ---------------------------------------------------------------------------------------------
# runtime helpers (referenced by the rewritten program)
# ---------------------------------------------------------------------------------------------


def _behaviour_properties(obj: ak.Array) -> list[str]:
    """Public properties that the array's behaviour class adds to ``ak.Array`` (e.g. vector's)."""
    cls = type(obj)
    return sorted(
        name
        for name in dir(cls)
        if not name.startswith("_")
        and not hasattr(ak.Array, name)
        and isinstance(getattr(cls, name, None), property)
    )


def _describe(prefix: str) -> str:
    """How to name a location in messages: the dotted path or the event record itself."""
    return f"'{prefix}'" if prefix else "the event record"


def _missing_message(obj: Any, name: str, prefix: str) -> str:
    """Message for a missing field ``name`` below ``prefix``, listing what exists there."""
    dotted = f"{prefix}.{name}" if prefix else name
    if not isinstance(obj, ak.Array) or not obj.fields:
        kind = str(ak.type(obj)) if isinstance(obj, ak.Array) else type(obj).__name__
        return f"no field '{dotted}': {_describe(prefix)} has no fields (its type is {kind})"
    fields = list(obj.fields)
    props = _behaviour_properties(obj)
    message = f"no field '{dotted}'; fields of {_describe(prefix)}: {', '.join(fields)}"
    if props:
        shown = ", ".join(props[:12]) + (", ..." if len(props) > 12 else "")
        message += f" (and {len(props)} properties of its behaviour: {shown})"
    close = difflib.get_close_matches(name, fields + props, n=3, cutoff=0.6)
    if close:
        message += "; did you mean " + " or ".join(f"'{c}'" for c in close) + "?"
    return message


def _get(obj: Any, name: str, prefix: str) -> Any:
    """Field ``name`` of ``obj``, or else a property of its behaviour; ExpressionError if neither.

    ``prefix`` is the dotted path of ``obj`` (empty for the event record), for messages.
    """
    if isinstance(obj, ak.Array):
        if name in obj.fields:
            return obj[name]
        if not hasattr(ak.Array, name):
            try:
                value = getattr(obj, name)
            except AttributeError:
                value = _MISSING
            except Exception as exc:  # noqa: BLE001 - a behaviour failing on this data
                dotted = f"{prefix}.{name}" if prefix else name
                raise _EvalError(f"cannot compute '{dotted}': {_short(exc)}") from exc
            if isinstance(value, (ak.Array, np.ndarray, np.generic, int, float, bool)):
                return value
    raise _EvalError(_missing_message(obj, name, prefix))


def _short(exc: BaseException) -> str:
    """First lines of an exception message, without awkward's long trailers."""
    text = str(exc).strip() or type(exc).__name__
    text = re.sub(r"\s*\(in compiled code: [^)]*\)", "", text)
    lines = [line for line in text.splitlines() if line.strip()]
    kept = " ".join(line.strip() for line in lines[:3])
    return kept if len(kept) <= 400 else kept[:397] + "..."


def _and(*values: Any) -> Any:
    """Elementwise logical and of all operands."""
    result = values[0]
    for value in values[1:]:
        result = np.logical_and(result, value)
    return result


def _or(*values: Any) -> Any:
    """Elementwise logical or of all operands."""
    result = values[0]
    for value in values[1:]:
        result = np.logical_or(result, value)
    return result


def _not(value: Any) -> Any:
    """Elementwise logical not."""
    return np.logical_not(value)


def _invert(value: Any) -> Any:
    """``~value``: logical not for booleans (also Python ones), bitwise not for integers."""
    if isinstance(value, (bool, np.bool_)):
        return not value
    return ~value


def _chain(symbols: tuple[str, ...], *operands: Any) -> Any:
    """Chained comparison ``a < b < c``: each operand evaluated once, results and-ed."""
    result = None
    for i, symbol in enumerate(symbols):
        step = _COMPARE_BY_SYMBOL[symbol](operands[i], operands[i + 1])
        result = step if result is None else np.logical_and(result, step)
    return result


# ---------------------------------------------------------------------------------------------
# parsing and validation
# ---------------------------------------------------------------------------------------------


def _call(name: str, args: list[ast.expr]) -> ast.Call:
    """AST for a call of a runtime helper."""
    return ast.Call(func=ast.Name(id=name, ctx=ast.Load()), args=args, keywords=[])


def _int_constant(node: ast.expr) -> bool:
    """True for an integer literal, possibly negated (``3``, ``-1``)."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        node = node.operand
    return (
        isinstance(node, ast.Constant)
        and isinstance(node.value, int)
        and not isinstance(node.value, bool)
    )


class _Rewriter:
    """Validates an expression AST and rewrites it into the program that ``evaluate`` runs.

    Field references become ``_field_(("mc", "beam", "E"))``; attributes of computed values
    ``_attr_(value, "pt")``; ``and``/``or``/``not``/``~``/chained comparisons become helper
    calls; function calls become calls of ``_fn_<name>``.
    """

    def __init__(self, text: str, column_offset: int) -> None:
        self.text = text
        self.column_offset = column_offset
        self.fields: list[str] = []

    def fail(self, node: ast.AST, message: str) -> ExpressionError:
        """An ExpressionError for ``node`` with its 1-based column."""
        col = getattr(node, "col_offset", None)
        where = f" (at column {col + 1 + self.column_offset})" if col is not None else ""
        return ExpressionError(self.text, message + where)

    def convert(self, node: ast.AST) -> ast.expr:
        """Validate ``node`` and return its rewritten form."""
        method = getattr(self, f"visit_{type(node).__name__}", None)
        if method is not None:
            return method(node)
        if type(node) in _FORBIDDEN_NODES:
            raise self.fail(node, _FORBIDDEN_NODES[type(node)])
        raise self.fail(node, f"{type(node).__name__} is not allowed in expressions")

    def visit_Constant(self, node: ast.Constant) -> ast.expr:
        if isinstance(node.value, (bool, int, float)):
            return ast.Constant(value=node.value)
        if isinstance(node.value, (str, bytes)):
            raise self.fail(node, "string constants are not allowed")
        raise self.fail(node, f"constant {node.value!r} is not allowed")

    def visit_Name(self, node: ast.Name) -> ast.expr:
        if node.id in CONSTANTS:
            return ast.Constant(value=CONSTANTS[node.id])
        if node.id in FUNCTIONS:
            raise self.fail(node, f"function '{node.id}' must be called, e.g. {node.id}(x)")
        return self.field((node.id,), node)

    def field(self, path: tuple[str, ...], node: ast.AST) -> ast.expr:
        """A reference to the dotted field ``path`` of the event record."""
        for part in path:
            if part.startswith("_"):
                raise self.fail(
                    node, f"name '{part}' is not allowed (names starting with '_' are private)"
                )
        self.fields.append(".".join(path))
        return _call("_field_", [ast.Constant(value=path)])

    def visit_Attribute(self, node: ast.Attribute) -> ast.expr:
        chain: list[str] = []
        base: ast.expr = node
        while isinstance(base, ast.Attribute):
            chain.append(base.attr)
            base = base.value
        chain.reverse()
        for attr in chain:
            if attr.startswith("_"):
                raise self.fail(
                    node, f"attribute '{attr}' is not allowed (names starting with '_' are private)"
                )
        if isinstance(base, ast.Name) and base.id not in CONSTANTS and base.id not in FUNCTIONS:
            return self.field((base.id, *chain), node)
        if isinstance(base, ast.Name) and base.id in CONSTANTS:
            raise self.fail(node, f"constant '{base.id}' has no attributes")
        return _call("_attr_", [self.convert(node.value), ast.Constant(value=node.attr)])

    def visit_BinOp(self, node: ast.BinOp) -> ast.expr:
        if type(node.op) in _FORBIDDEN_BINOPS:
            symbol = _FORBIDDEN_BINOPS[type(node.op)]
            raise self.fail(node, f"operator '{symbol}' is not allowed")
        return ast.BinOp(left=self.convert(node.left), op=node.op, right=self.convert(node.right))

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.expr:
        operand = self.convert(node.operand)
        if isinstance(node.op, ast.Not):
            return _call("_not_", [operand])
        if isinstance(node.op, ast.Invert):
            return _call("_invert_", [operand])
        return ast.UnaryOp(op=node.op, operand=operand)

    def visit_BoolOp(self, node: ast.BoolOp) -> ast.expr:
        helper = "_and_" if isinstance(node.op, ast.And) else "_or_"
        return _call(helper, [self.convert(v) for v in node.values])

    def visit_Compare(self, node: ast.Compare) -> ast.expr:
        symbols = []
        for op in node.ops:
            if type(op) not in _COMPARISONS:
                names = {ast.Is: "is", ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in"}
                raise self.fail(node, f"comparison '{names.get(type(op), op)}' is not allowed")
            symbols.append(_COMPARISONS[type(op)][0])
        left = self.convert(node.left)
        rights = [self.convert(c) for c in node.comparators]
        if len(symbols) == 1:
            return ast.Compare(left=left, ops=node.ops, comparators=rights)
        return _call("_chain_", [ast.Constant(value=tuple(symbols)), left, *rights])

    def visit_Call(self, node: ast.Call) -> ast.expr:
        allowed = ", ".join(sorted(FUNCTIONS))
        if not isinstance(node.func, ast.Name):
            raise self.fail(
                node,
                f"only the named functions may be called (found a call of "
                f"'{ast.unparse(node.func)}'); allowed: {allowed}",
            )
        name = node.func.id
        if name not in FUNCTIONS:
            raise self.fail(node, f"function '{name}' is not allowed; allowed: {allowed}")
        if node.keywords:
            raise self.fail(node, f"function '{name}' takes no keyword arguments")
        nargs = FUNCTIONS[name][1]
        if len(node.args) != nargs:
            plural = "s" if nargs != 1 else ""
            raise self.fail(
                node, f"function '{name}' takes {nargs} argument{plural} ({len(node.args)} given)"
            )
        return _call(f"_fn_{name}", [self.convert(a) for a in node.args])

    def visit_Subscript(self, node: ast.Subscript) -> ast.expr:
        return ast.Subscript(
            value=self.convert(node.value), slice=self.index(node.slice), ctx=ast.Load()
        )

    def index(self, node: ast.expr) -> ast.expr:
        """Validate a subscript: integer constants, slices of them, tuples, or an expression."""
        if isinstance(node, ast.Tuple):
            return ast.Tuple(elts=[self.index(e) for e in node.elts], ctx=ast.Load())
        if isinstance(node, ast.Slice):
            bounds = {}
            for key in ("lower", "upper", "step"):
                bound = getattr(node, key)
                if bound is not None and not _int_constant(bound):
                    raise self.fail(bound, "slice bounds must be integer constants")
                bounds[key] = None if bound is None else self.convert(bound)
            return ast.Slice(**bounds)
        if isinstance(node, ast.Constant) and not _int_constant(node):
            raise self.fail(
                node, f"index {node.value!r} is not allowed; use an integer, a slice or a mask"
            )
        return self.convert(node)


def _parse(text: str) -> tuple[ast.Expression, int]:
    """Parse ``text`` in eval mode; classify statements and report syntax errors precisely.

    Returns the tree and the number of leading characters stripped (for column numbers).
    """
    stripped = text.strip()
    offset = len(text) - len(text.lstrip())
    if not stripped:
        raise ExpressionError(text, "empty expression")
    try:
        return ast.parse(stripped, mode="eval"), offset
    except SyntaxError as exc:
        try:
            module = ast.parse(stripped, mode="exec")
        except SyntaxError:
            module = None
        if module is not None and module.body:
            statement = module.body[0]
            message = _STATEMENTS.get(
                type(statement), f"statements ({type(statement).__name__}) are not allowed"
            )
            raise ExpressionError(text, f"{message}; write a single expression") from None
        column = f" at column {exc.offset + offset}" if exc.offset else ""
        line = f" (line {exc.lineno})" if exc.lineno and exc.lineno > 1 else ""
        raise ExpressionError(text, f"syntax error{column}{line}: {exc.msg}") from None


class Expression:
    """A validated, compiled expression over the event record.

    ``Expression("abs(mc.particles.px / mc.particles.pz) < 0.05")`` parses and checks the text
    (raising :class:`~muone.errors.ExpressionError` with a precise message) and compiles it once.
    ``evaluate(events)`` returns an awkward or numpy array aligned with ``events`` (a scalar
    result, e.g. ``"true"``, is broadcast to one value per event).

    Attributes:
        text: the expression as written.
        fields: dotted paths referenced (longest attribute chains that start at a field name,
            e.g. ``("mc.particles.px", "mc.particles.pz")``), in order of first use. A chain may
            end in a behaviour property (``"mc.beam.theta"``).
    """

    __slots__ = ("_code", "_namespace", "fields", "text")

    def __init__(self, text: str) -> None:
        if not isinstance(text, str):
            raise ExpressionError(repr(text), f"expected a string, got {type(text).__name__}")
        self.text = text
        tree, offset = _parse(text)
        rewriter = _Rewriter(text, offset)
        body = rewriter.convert(tree.body)
        self.fields: tuple[str, ...] = tuple(dict.fromkeys(rewriter.fields))
        program = ast.fix_missing_locations(ast.Expression(body=body))
        self._code = compile(program, f"<expression {text!r}>", "eval")
        self._namespace = self._static_namespace()

    @staticmethod
    def _static_namespace() -> dict[str, Any]:
        """Names the compiled program may use; no builtins."""
        namespace: dict[str, Any] = {
            "__builtins__": {},
            "_attr_": lambda obj, name: _get(obj, name, "(value)"),
            "_and_": _and,
            "_or_": _or,
            "_not_": _not,
            "_invert_": _invert,
            "_chain_": _chain,
        }
        namespace.update({f"_fn_{name}": fn for name, (fn, _) in FUNCTIONS.items()})
        return namespace

    def evaluate(self, events: ak.Array) -> ak.Array | np.ndarray:
        """Evaluate on a chunk of events (columnar); ExpressionError on missing fields or failures.

        Args:
            events: awkward array of event records (DESIGN.md "Event record").

        Returns:
            One value (or one list) per event: an ``ak.Array`` or ``np.ndarray`` of length
            ``len(events)``; a constant expression gives ``np.full(len(events), value)``.
        """

        def field(path: tuple[str, ...]) -> Any:
            obj: Any = events
            for i, name in enumerate(path):
                obj = _get(obj, name, ".".join(path[:i]))
            return obj

        namespace = dict(self._namespace)
        namespace["_field_"] = field
        try:
            with np.errstate(all="ignore"):
                result = eval(self._code, namespace)  # noqa: S307 - validated, no builtins
        except _EvalError as exc:
            raise ExpressionError(self.text, str(exc)) from None
        except MuoneError:
            raise
        except Exception as exc:  # noqa: BLE001 - report awkward/numpy failures without traceback
            raise ExpressionError(
                self.text, f"evaluation failed: {type(exc).__name__}: {_short(exc)}"
            ) from exc
        if isinstance(result, (bool, int, float, np.generic)):
            return np.full(len(events), result)
        return result

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Expression) and other.text == self.text

    def __hash__(self) -> int:
        return hash((Expression, self.text))

    def __getstate__(self) -> str:
        """Pickle as the text (code objects cannot be pickled); recompiled on load."""
        return self.text

    def __setstate__(self, state: str) -> None:
        self.__init__(state)  # type: ignore[misc]


# ---------------------------------------------------------------------------------------------
# weights for histogram filling
# ---------------------------------------------------------------------------------------------


def _as_float_numpy(array: Any) -> np.ndarray:
    """1-D float64 numpy copy of a flat, None-free awkward or numpy array."""
    if isinstance(array, ak.Array):
        array = ak.to_numpy(ak.fill_none(array, np.nan), allow_missing=False)
    return np.asarray(array, dtype=np.float64).reshape(-1)


def broadcast_weights(
    values: ak.Array | np.ndarray, weights: ak.Array | np.ndarray | float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Flatten values and broadcast per-event weights to them, for filling weighted histograms.

    Args:
        values: one value per event (flat), or lists of values per event (``var * number``,
            fixed-size, or deeper); booleans are converted to 0/1.
        weights: one weight per event (same length as ``values``), a scalar, or None for 1.

    Returns:
        ``(values, weights)`` as 1-D float64 numpy arrays of equal length: each entry of a list
        carries its event's weight. Entries that are None in ``values`` or ``weights`` (at any
        level) are dropped from both.

    Raises:
        MuoneError: for records (not histogrammable) or weights of the wrong length.
    """
    n = len(values)
    if weights is None:
        weights = np.ones(n)
    elif np.ndim(weights) == 0:
        weights = np.full(n, float(weights))
    if len(weights) != n:
        raise MuoneError(f"weights have {len(weights)} entries for {n} events")
    if isinstance(values, ak.Array) and values.fields:
        raise MuoneError(f"cannot histogram records (type {ak.type(values)}); select a field")
    if isinstance(weights, ak.Array) and weights.fields:
        raise MuoneError(f"weights must be numbers, not records (type {ak.type(weights)})")

    if isinstance(values, np.ndarray) and values.ndim == 1 and not isinstance(weights, ak.Array):
        return values.astype(np.float64), np.asarray(weights, dtype=np.float64).reshape(-1)

    # Fixed-size dimensions would broadcast numpy-style (from the right): make them var.
    v = ak.from_regular(ak.Array(values), axis=None)
    w = ak.from_regular(ak.Array(weights), axis=None)
    v, w = ak.broadcast_arrays(v, w)
    # Remove None level by level, from the outermost inwards, identically in both.
    for axis in range(v.ndim):
        missing = ak.is_none(v, axis=axis) | ak.is_none(w, axis=axis)
        if ak.any(missing):
            keep = ~missing
            v, w = v[keep], w[keep]
    v = ak.flatten(v, axis=None)
    w = ak.flatten(w, axis=None)
    return _as_float_numpy(v), _as_float_numpy(w)


def expression_problems(items: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Parse each (steering key, expression text) pair; return (key, reason) for those that are
    invalid (empty texts are skipped). For plugins' ``check`` methods."""
    problems = []
    for key, text in items:
        if not text:
            continue
        try:
            Expression(text)
        except ExpressionError as exc:
            problems.append((key, exc.reason))
    return problems
