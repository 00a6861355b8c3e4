"""Tests of muone.expressions: safe columnar expressions over the event record."""

from __future__ import annotations

import math
import pickle

import awkward as ak
import numpy as np
import pytest
import vector
from hypothesis import given, settings
from hypothesis import strategies as st

from muone.errors import ExpressionError, MuoneError
from muone.expressions import FUNCTIONS, Expression, broadcast_weights

vector.register_awkward()


@pytest.fixture(scope="module")
def events() -> ak.Array:
    """Three events: 2, 0 and 1 particles; Momentum4D beam and particles, Vector3D vertex."""
    particles = ak.zip(
        {
            "px": [[1.0, 2.0], [], [0.5]],
            "py": [[0.0, 1.0], [], [0.0]],
            "pz": [[3.0, 4.0], [], [10.0]],
            "E": [[5.0, 6.0], [], [11.0]],
            "pdg": [[11, 13], [], [11]],
        },
        with_name="Momentum4D",
    )
    beam = ak.zip(
        {
            "px": [0.0, 0.1, 0.0],
            "py": [0.0, 0.0, 0.2],
            "pz": [160.0, 150.0, 155.0],
            "E": [160.0, 150.0, 155.0],
        },
        with_name="Momentum4D",
    )
    vertex = ak.zip(
        {"x": [3.0, 0.0, 1.0], "y": [4.0, 1.0, 0.0], "z": [1.0, 2.0, 3.0]}, with_name="Vector3D"
    )
    mc = ak.zip(
        {
            "particles": particles,
            "beam": beam,
            "vertex": vertex,
            "t": [-0.02, -0.005, -0.1],
            "weight": [1.0, -1.0, 2.0],
            "process": np.array([1, 2, 3], dtype=np.int32),
        },
        depth_limit=1,
    )
    sel = ak.zip({"elastic": [True, False, True], "displaced": [False, False, True]})
    return ak.zip({"run": [1, 1, 2], "mc": mc, "sel": sel}, depth_limit=1)


def ev(text: str, events: ak.Array) -> list:
    return ak.to_list(Expression(text).evaluate(events))


def approx_list(values: list) -> object:
    """pytest.approx for flat lists, or lists of lists (compared row by row)."""
    if any(isinstance(v, list) for v in values):
        return [approx_list(v) if isinstance(v, list) else v for v in values]
    return pytest.approx(values, nan_ok=True)


# -- fields, attributes, behaviours -------------------------------------------------------------


def test_fields_and_behaviour_properties(events: ak.Array) -> None:
    assert ev("mc.beam.E", events) == [160.0, 150.0, 155.0]
    assert ev("run", events) == [1, 1, 2]
    assert ev("mc.beam.pt", events) == approx_list([0.0, 0.1, 0.2])
    assert ev("mc.beam.theta * 1e3", events) == approx_list(
        [0.0, math.atan2(0.1, 150) * 1e3, math.atan2(0.2, 155) * 1e3]
    )
    assert ev("mc.vertex.rho", events) == approx_list([5.0, 1.0, 1.0])
    assert ev("mc.particles.pt", events) == approx_list([[1.0, math.sqrt(5)], [], [0.5]])
    assert ev("firsts(mc.particles).pt", events) == approx_list([1.0, None, 0.5])


def test_fields_attribute() -> None:
    e = Expression("abs(mc.particles.px / mc.particles.pz) < 0.05")
    assert e.fields == ("mc.particles.px", "mc.particles.pz")
    assert e.text == "abs(mc.particles.px / mc.particles.pz) < 0.05"
    assert Expression("num(mc.particles) >= 2").fields == ("mc.particles",)
    assert Expression("mc.beam.theta * 1e3 + pi").fields == ("mc.beam.theta",)
    assert Expression("sqrt(mc.vertex.x**2 + mc.vertex.y**2) + mc.vertex.x").fields == (
        "mc.vertex.x",
        "mc.vertex.y",
    )
    assert Expression("firsts(mc.particles).pt").fields == ("mc.particles",)
    assert Expression("1 + 2").fields == ()


# -- operators -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mc.t + 1", [0.98, 0.995, 0.9]),
        ("mc.t - 1", [-1.02, -1.005, -1.1]),
        ("mc.weight * 3", [3.0, -3.0, 6.0]),
        ("mc.weight / 4", [0.25, -0.25, 0.5]),
        ("mc.process // 2", [0, 1, 1]),
        ("mc.process % 2", [1, 0, 1]),
        ("mc.process ** 2", [1, 4, 9]),
        ("-mc.weight", [-1.0, 1.0, -2.0]),
        ("+mc.weight", [1.0, -1.0, 2.0]),
        ("~sel.elastic", [False, True, False]),
        ("sel.elastic & sel.displaced", [False, False, True]),
        ("sel.elastic | sel.displaced", [True, False, True]),
        ("sel.elastic ^ sel.displaced", [True, False, False]),
        ("sel.elastic and sel.displaced", [False, False, True]),
        ("sel.elastic or sel.displaced", [True, False, True]),
        ("not sel.elastic", [False, True, False]),
        ("mc.t < -0.01", [True, False, True]),
        ("mc.t <= -0.02", [True, False, True]),
        ("mc.t > -0.01", [False, True, False]),
        ("mc.t >= -0.005", [False, True, False]),
        ("mc.process == 2", [False, True, False]),
        ("mc.process != 2", [True, False, True]),
        ("(mc.t < -0.01) & (mc.weight > 0)", [True, False, True]),
        ("mc.t < -0.01 and mc.weight > 0 or run == 1", [True, True, True]),
        ("-0.05 < mc.t < -0.01", [True, False, False]),
        ("-1 < mc.t <= -0.005 < 0", [True, True, True]),
        ("1 < mc.process < 3 != 4", [False, True, False]),
        ("mc.process * 0 + pi", [math.pi] * 3),
        ("mc.process * 0 + e", [math.e] * 3),
        ("mc.t > -inf", [True] * 3),
        ("isnan(mc.t * nan)", [True] * 3),
        ("sel.elastic & true", [True, False, True]),
        ("sel.elastic & False", [False] * 3),
        ("sel.elastic | false", [True, False, True]),
        ("sel.elastic == True", [True, False, True]),
        ("~true | sel.elastic", [True, False, True]),
    ],
)
def test_operators(events: ak.Array, text: str, expected: list) -> None:
    assert ev(text, events) == approx_list(expected)


def test_chained_comparison_evaluates_once(events: ak.Array) -> None:
    chained = Expression("-0.05 < mc.t < -0.01").evaluate(events)
    explicit = Expression("(-0.05 < mc.t) & (mc.t < -0.01)").evaluate(events)
    assert ak.to_list(chained) == ak.to_list(explicit)


def test_subscripts(events: ak.Array) -> None:
    assert ev("mc.particles.E[:, 0]", events[[0, 2]]) == [5.0, 11.0]
    assert ev("mc.particles.pt[:, 0]", events[[0, 2]]) == approx_list([1.0, 0.5])
    assert ev("mc.particles.E[:, -1]", events[[0, 2]]) == [6.0, 11.0]
    assert ev("mc.particles.E[:, 1:]", events) == [[6.0], [], []]
    assert ev("mc.particles.E[:, ::-1]", events) == [[6.0, 5.0], [], [11.0]]
    assert ev("mc.beam.E[1]", events) == [150.0] * 3  # a constant: broadcast per event
    assert ev("mc.particles.E[mc.particles.pdg == 11]", events) == [[5.0], [], [11.0]]
    with pytest.raises(ExpressionError, match="evaluation failed.*index"):
        Expression("mc.particles.E[:, 0]").evaluate(events)  # event 1 has no particle


def test_constant_expression_is_broadcast(events: ak.Array) -> None:
    assert ev("true", events) == [True] * 3
    assert ev("2 * 3", events) == [6] * 3


# -- functions -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("abs(mc.weight)", [1.0, 1.0, 2.0]),
        ("sqrt(mc.vertex.x**2 + mc.vertex.y**2)", [5.0, 1.0, 1.0]),
        ("exp(mc.process * 0)", [1.0] * 3),
        ("log(exp(mc.weight))", [1.0, -1.0, 2.0]),
        ("log10(mc.process * 10)", [1.0, math.log10(20), math.log10(30)]),
        ("sin(mc.process * 0)", [0.0] * 3),
        ("cos(mc.process * 0)", [1.0] * 3),
        ("tan(mc.process * 0)", [0.0] * 3),
        ("arcsin(mc.weight / 2)", [math.asin(0.5), math.asin(-0.5), math.pi / 2]),
        ("arccos(mc.weight / 2)", [math.acos(0.5), math.acos(-0.5), 0.0]),
        ("arctan(mc.weight)", [math.atan(1), math.atan(-1), math.atan(2)]),
        ("arctan2(mc.vertex.y, mc.vertex.x)", [math.atan2(4, 3), math.pi / 2, 0.0]),
        ("hypot(mc.vertex.x, mc.vertex.y)", [5.0, 1.0, 1.0]),
        ("minimum(mc.weight, 0)", [0.0, -1.0, 0.0]),
        ("maximum(mc.weight, 0)", [1.0, 0.0, 2.0]),
        ("where(mc.weight > 0, mc.weight, 0)", [1.0, 0.0, 2.0]),
        ("isfinite(mc.weight / (mc.process - 2))", [True, False, True]),
        ("isnan(sqrt(mc.weight))", [False, True, False]),
        ("floor(mc.weight * 1.5)", [1.0, -2.0, 3.0]),
        ("ceil(mc.weight * 1.5)", [2.0, -1.0, 3.0]),
        ("sign(mc.weight)", [1.0, -1.0, 1.0]),
        ("num(mc.particles)", [2, 0, 1]),
        ("num(mc.particles) >= 2", [True, False, False]),
        ("sum(mc.particles.E)", [11.0, 0.0, 11.0]),
        ("any(mc.particles.pdg == 13)", [True, False, False]),
        ("all(mc.particles.pdg == 11)", [False, True, True]),
        ("max(mc.particles.E)", [6.0, -math.inf, 11.0]),
        ("min(mc.particles.E)", [5.0, math.inf, 11.0]),
        ("mean(mc.particles.E)", [5.5, math.nan, 11.0]),
        ("count(mc.particles.E)", [2, 0, 1]),
        ("firsts(mc.particles.E)", [5.0, None, 11.0]),
        ("flatten(mc.particles.E)", [5.0, 6.0, 11.0]),
        ("sum(mc.particles.pdg == 11)", [1, 0, 1]),
        ("sum(abs(mc.particles.px / mc.particles.pz) < 0.4)", [1, 0, 1]),
    ],
)
def test_functions(events: ak.Array, text: str, expected: list) -> None:
    assert ev(text, events) == approx_list(expected)


def test_every_function_is_tested() -> None:
    texts = " ".join(t for t, _ in test_functions.pytestmark[0].args[1])
    missing = [name for name in FUNCTIONS if f"{name}(" not in texts]
    assert missing == []


def test_list_functions_need_lists(events: ak.Array) -> None:
    for name in ("num", "sum", "max", "firsts", "flatten"):
        with pytest.raises(ExpressionError, match=rf"{name}\(\) needs a list per event"):
            Expression(f"{name}(mc.weight)").evaluate(events)


# -- errors --------------------------------------------------------------------------------------


def test_missing_field_did_you_mean(events: ak.Array) -> None:
    with pytest.raises(ExpressionError) as info:
        Expression("mc.beam.thetaa > 0").evaluate(events)
    message = str(info.value)
    assert "no field 'mc.beam.thetaa'" in message
    assert "fields of 'mc.beam': px, py, pz, E" in message
    assert "did you mean 'theta'" in message
    assert info.value.expression == "mc.beam.thetaa > 0"

    with pytest.raises(ExpressionError, match="no field 'mcc'.*run, mc, sel.*did you mean 'mc'"):
        Expression("mcc.t").evaluate(events)
    with pytest.raises(ExpressionError, match="no field 'mc.wieght'.*did you mean 'weight'"):
        Expression("mc.wieght > 0").evaluate(events)
    with pytest.raises(ExpressionError, match="no field 'mc.t.x'.*has no fields"):
        Expression("mc.t.x").evaluate(events)
    with pytest.raises(ExpressionError, match="no field 'mc.particles.layout'"):
        Expression("mc.particles.layout").evaluate(events)  # ak.Array internals are not fields


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("__class__", "name '__class__' is not allowed"),
        ("mc.__class__", "attribute '__class__' is not allowed"),
        ("mc.beam.__dict__.keys", "attribute '__dict__' is not allowed"),
        ("mc._private", "attribute '_private' is not allowed"),
        ("(mc.t).__class__", "attribute '__class__' is not allowed"),
        ('open("x")', "function 'open' is not allowed; allowed: abs, all, any"),
        ("eval('1')", "function 'eval' is not allowed"),
        ("__import__('os')", "function '__import__' is not allowed"),
        ("np.sqrt(mc.t)", "only the named functions may be called"),
        ("mc.beam.boost(mc.beam)", "only the named functions may be called"),
        ("lambda: 1", "lambda expressions are not allowed"),
        ("(lambda x: x)(1)", "only the named functions may be called"),
        ("[x for x in y]", "comprehensions are not allowed"),
        ("sum(x for x in y)", "comprehensions are not allowed"),
        ("{k: 1 for k in y}", "comprehensions are not allowed"),
        ("import os", "import statements are not allowed"),
        ("from os import path", "import statements are not allowed"),
        ("x = 1", "assignments are not allowed"),
        ("x += 1", "assignments are not allowed"),
        ("(y := 1)", r"assignment expressions \(:=\) are not allowed"),
        ("a if b else c", "use where"),
        ("'text'", "string constants are not allowed"),
        ("[1, 2]", "list literals are not allowed"),
        ("(1, 2)", "tuples are only allowed inside subscripts"),
        ("x is None", "comparison 'is' is not allowed"),
        ("x in y", "comparison 'in' is not allowed"),
        ("a @ b", "operator '@' is not allowed"),
        ("a << 2", "operator '<<' is not allowed"),
        ("abs", "function 'abs' must be called"),
        ("sqrt(1, 2)", r"function 'sqrt' takes 1 argument \(2 given\)"),
        ("where(a, b)", r"function 'where' takes 3 arguments \(2 given\)"),
        ("abs(x=1)", "no keyword arguments"),
        ("abs(*x)", "starred arguments are not allowed"),
        ("x[1.5]", "index 1.5 is not allowed"),
        ("x[a:2]", "slice bounds must be integer constants"),
        ("pi.real", "constant 'pi' has no attributes"),
        ("", "empty expression"),
        ("   ", "empty expression"),
    ],
)
def test_forbidden(text: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=message) as info:
        Expression(text)
    assert isinstance(info.value, MuoneError)
    assert info.value.exit_code == 2
    assert info.value.expression == text


def test_syntax_error_has_column() -> None:
    with pytest.raises(ExpressionError, match=r"syntax error at column \d+") as info:
        Expression("mc.t < < 3")
    assert "mc.t < < 3" in str(info.value)
    with pytest.raises(ExpressionError, match="syntax error"):
        Expression("abs(mc.t")
    with pytest.raises(ExpressionError, match="at column 8"):
        Expression("mc.t + __x")


def test_not_a_string() -> None:
    with pytest.raises(ExpressionError, match="expected a string"):
        Expression(3)  # type: ignore[arg-type]


def test_evaluation_failure_is_expression_error(events: ak.Array) -> None:
    with pytest.raises(ExpressionError, match="evaluation failed"):
        Expression("mc.particles + 1").evaluate(events)


# -- objects -------------------------------------------------------------------------------------


def test_pickle_equality_repr(events: ak.Array) -> None:
    e = Expression("mc.beam.E * 2")
    copy = pickle.loads(pickle.dumps(e))
    assert copy == e and hash(copy) == hash(e)
    assert copy.fields == e.fields
    assert ak.to_list(copy.evaluate(events)) == [320.0, 300.0, 310.0]
    assert repr(e) == "Expression('mc.beam.E * 2')"


def test_compiled_once(events: ak.Array) -> None:
    e = Expression("mc.t * 2")
    code = e._code
    e.evaluate(events)
    e.evaluate(events[:1])
    assert e._code is code


def test_columnar_on_large_input() -> None:
    n = 200_000
    rng = np.random.default_rng(0)
    counts = rng.integers(0, 5, n)
    total = int(counts.sum())
    parts = ak.zip(
        {k: ak.unflatten(rng.normal(size=total), counts) for k in ("px", "py", "pz")}
        | {"E": ak.unflatten(rng.uniform(10, 20, total), counts)},
        with_name="Momentum4D",
    )
    events = ak.zip({"mc": ak.zip({"particles": parts}, depth_limit=1)}, depth_limit=1)
    result = Expression("sum(mc.particles.pt > 1) >= 1").evaluate(events)
    assert len(result) == n
    expected = ak.sum(np.hypot(parts.px, parts.py) > 1, axis=1) >= 1
    assert ak.to_list(result) == ak.to_list(expected)


# -- property test -------------------------------------------------------------------------------

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(
    a=st.lists(finite, min_size=1, max_size=20),
    b=st.floats(min_value=0.5, max_value=1e3),
    op=st.sampled_from(["+", "-", "*", "/"]),
)
def test_arithmetic_matches_numpy(a: list[float], b: float, op: str) -> None:
    x = np.asarray(a)
    y = np.full(len(a), b)
    events = ak.zip({"v": ak.zip({"x": x, "y": y})}, depth_limit=1)
    result = ak.to_numpy(Expression(f"(v.x {op} v.y) * 2 - abs(v.x) / v.y").evaluate(events))
    ops = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide}
    expected = ops[op](x, y) * 2 - np.abs(x) / y
    np.testing.assert_array_equal(result, expected)


@settings(max_examples=40, deadline=None)
@given(
    lists=st.lists(st.lists(finite, max_size=5), min_size=1, max_size=10),
    cut=finite,
)
def test_jagged_reducers_match_python(lists: list[list[float]], cut: float) -> None:
    events = ak.zip({"p": ak.zip({"x": ak.Array(lists, with_name=None)})}, depth_limit=1)
    count = ak.to_list(Expression(f"sum(p.x > {cut!r})").evaluate(events))
    assert count == [sum(v > cut for v in row) for row in lists]
    assert ak.to_list(Expression("num(p)").evaluate(events)) == [len(r) for r in lists]


# -- broadcast_weights ---------------------------------------------------------------------------


def test_broadcast_weights_jagged(events: ak.Array) -> None:
    energies = Expression("mc.particles.E").evaluate(events)
    values, weights = broadcast_weights(energies, events.mc.weight)
    assert values.dtype == np.float64 and weights.dtype == np.float64
    assert values.tolist() == [5.0, 6.0, 11.0]
    assert weights.tolist() == [1.0, 1.0, 2.0]


def test_broadcast_weights_flat_and_defaults(events: ak.Array) -> None:
    values, weights = broadcast_weights(events.mc.t, events.mc.weight)
    assert values.tolist() == [-0.02, -0.005, -0.1] and weights.tolist() == [1.0, -1.0, 2.0]
    values, weights = broadcast_weights(np.array([1, 2, 3]), None)
    assert values.tolist() == [1.0, 2.0, 3.0] and weights.tolist() == [1.0, 1.0, 1.0]
    values, weights = broadcast_weights(np.array([True, False]), 0.5)
    assert values.tolist() == [1.0, 0.0] and weights.tolist() == [0.5, 0.5]
    values, weights = broadcast_weights(np.ones((2, 3)), np.array([1.0, 2.0]))
    assert values.tolist() == [1.0] * 6 and weights.tolist() == [1.0] * 3 + [2.0] * 3


def test_broadcast_weights_drops_none_consistently(events: ak.Array) -> None:
    first = Expression("firsts(mc.particles.E)").evaluate(events)
    values, weights = broadcast_weights(first, events.mc.weight)
    assert values.tolist() == [5.0, 11.0] and weights.tolist() == [1.0, 2.0]
    jagged = ak.Array([[1, None], None, [3]])
    values, weights = broadcast_weights(jagged, ak.Array([1.0, 2.0, None]))
    assert values.tolist() == [1.0] and weights.tolist() == [1.0]
    values, weights = broadcast_weights(ak.Array([[1.0], [2.0, 3.0]]), ak.Array([None, 4.0]))
    assert values.tolist() == [2.0, 3.0] and weights.tolist() == [4.0, 4.0]


def test_broadcast_weights_errors(events: ak.Array) -> None:
    with pytest.raises(MuoneError, match="cannot histogram records"):
        broadcast_weights(events.mc.beam, events.mc.weight)
    with pytest.raises(MuoneError, match="weights have 2 entries for 3 events"):
        broadcast_weights(events.mc.t, np.ones(2))
