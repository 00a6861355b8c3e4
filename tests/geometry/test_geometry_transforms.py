"""Module frames: round trips, directions, strips (docs/geometry.md "Coordinate conventions")."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from muone.geometry import KIND_DEFAULTS, Module, ModuleAlignment, load_preset

finite = dict(allow_nan=False, allow_infinity=False)


@st.composite
def modules(draw):
    kind = draw(st.sampled_from("xyuv"))
    alignment = ModuleAlignment(
        dx=draw(st.floats(-5, 5, **finite)),
        dy=draw(st.floats(-5, 5, **finite)),
        dz=draw(st.floats(-5, 5, **finite)),
        du=draw(st.floats(-5, 5, **finite)),
        rx=draw(st.floats(-1.0, 1.0, **finite)),
        ry=draw(st.floats(-1.0, 1.0, **finite)),
        rz=draw(st.floats(-math.pi, math.pi, **finite)),
    )
    return Module(
        index=0, name="s0.m0", station=0, layer=0, kind=kind,
        z_in_station=0.0,
        z_nominal=draw(st.floats(0, 50_000, **finite)),
        x_nominal=draw(st.floats(-20, 20, **finite)),
        y_nominal=draw(st.floats(-20, 20, **finite)),
        tilt=draw(st.one_of(st.just(KIND_DEFAULTS[kind]["tilt"]), st.floats(-1.2, 1.2, **finite))),
        stereo=draw(st.one_of(st.just(KIND_DEFAULTS[kind]["stereo"]), st.floats(-math.pi, math.pi, **finite))),
        alignment=draw(st.one_of(st.just(ModuleAlignment()), st.just(alignment))),
    )


coords = st.lists(st.tuples(st.floats(-100, 100, **finite), st.floats(-100, 100, **finite),
                            st.floats(-10, 10, **finite)), min_size=1, max_size=20)


@settings(max_examples=300, deadline=None)
@given(modules(), coords)
def test_local_global_local_round_trip(module, points):
    u, v, w = (np.array(c) for c in zip(*points))
    x, y, z = module.local_to_global(u, v, w)
    u2, v2, w2 = module.global_to_local(x, y, z)
    np.testing.assert_allclose(u2, u, rtol=0, atol=1e-9)
    np.testing.assert_allclose(v2, v, rtol=0, atol=1e-9)
    np.testing.assert_allclose(w2, w, rtol=0, atol=1e-9)
    # the other way round, about the module
    gx, gy, gz = x + 3.0, y - 2.0, z + 1.0
    x3, y3, z3 = module.local_to_global(*module.global_to_local(gx, gy, gz))
    np.testing.assert_allclose([x3, y3, z3], [gx, gy, gz], rtol=0, atol=1e-9)


@settings(max_examples=200, deadline=None)
@given(modules())
def test_rotation_is_proper_and_directions_are_its_columns(module):
    r = module.rotation
    np.testing.assert_allclose(r.T @ r, np.eye(3), atol=1e-12)
    assert np.linalg.det(r) == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(np.cross(module.measured_direction, module.strip_direction), module.normal, atol=1e-12)
    # the measured direction is the global displacement of one unit of u
    x0, y0, z0 = module.local_to_global(0.0, 0.0)
    x1, y1, z1 = module.local_to_global(1.0, 0.0)
    np.testing.assert_allclose([x1 - x0, y1 - y0, z1 - z0], module.measured_direction, atol=1e-9)
    np.testing.assert_allclose([x0, y0, z0], module.centre, atol=0)


@settings(max_examples=200, deadline=None)
@given(modules(), st.floats(-40, 40, **finite), st.floats(-40, 40, **finite),
       st.floats(-0.05, 0.05, **finite), st.floats(-0.05, 0.05, **finite), st.sampled_from([0, 1]))
def test_intersect_lies_on_line_and_plane(module, x, y, tx, ty, sensor):
    if abs(module.normal[2]) < 0.3:  # nearly edge-on random orientations: skip
        return
    w0 = module.sensor_w(sensor)
    u, v, xh, yh, zh = module.intersect(x, y, 0.0, tx, ty, w=w0)
    assert xh == pytest.approx(x + tx * zh, abs=1e-9) and yh == pytest.approx(y + ty * zh, abs=1e-9)
    u2, v2, w2 = module.global_to_local(xh, yh, zh)
    assert (u2, v2, w2) == pytest.approx((u, v, w0), abs=1e-9)


def test_nominal_directions_of_the_preset():
    det = load_preset("station2022")
    tilt = 0.233
    x, y, u, v = det.modules[0], det.modules[1], det.modules[2], det.modules[3]
    np.testing.assert_allclose(x.measured_direction, [math.cos(tilt), 0, -math.sin(tilt)], atol=1e-15)
    np.testing.assert_allclose(x.strip_direction, [0, 1, 0], atol=1e-15)
    np.testing.assert_allclose(x.normal, [math.sin(tilt), 0, math.cos(tilt)], atol=1e-15)
    np.testing.assert_allclose(y.measured_direction, [0, math.cos(tilt), -math.sin(tilt)], atol=1e-15)
    np.testing.assert_allclose(y.strip_direction, [-1, 0, 0], atol=1e-15)
    # u and v: measured direction at +45 and -45 degrees from x in the transverse plane
    for module, angle in ((u, 45.0), (v, -45.0)):
        d = module.measured_direction
        assert d[2] == 0.0
        assert math.degrees(math.atan2(d[1], d[0])) == pytest.approx(angle, abs=1e-12)
    # u module: u = (x + y)/sqrt(2); v module: u = (x - y)/sqrt(2)
    assert u.global_to_local(3.0, 1.0, u.z)[0] == pytest.approx(4 / math.sqrt(2))
    assert v.global_to_local(3.0, 1.0, v.z)[0] == pytest.approx(2 / math.sqrt(2))


def test_tilted_x_module_measures_x_over_cos_tilt():
    m = load_preset("station2022").modules[0]
    xs = np.linspace(-40, 40, 9)
    u, v, xh, yh, zh = m.intersect(xs, 5.0, 0.0, 0.0, 0.0)
    np.testing.assert_allclose(u, xs / math.cos(0.233), atol=1e-12)
    np.testing.assert_allclose(v, 5.0, atol=1e-12)
    np.testing.assert_allclose(zh, m.z - xs * math.tan(0.233), atol=1e-9)


def test_alignment_du_shifts_the_measured_coordinate():
    nominal = load_preset("station2022")
    for m in nominal.modules:
        shifted = m.with_alignment(ModuleAlignment(du=0.013))
        pts = (np.array([1.0, -7.0, 20.0]), np.array([3.0, 0.5, -9.0]), np.array([m.z, m.z + 1, m.z - 2]))
        u0, v0, w0 = m.global_to_local(*pts)
        u1, v1, w1 = shifted.global_to_local(*pts)
        np.testing.assert_allclose(u1, u0 - 0.013, atol=1e-12)
        np.testing.assert_allclose([v1, w1], [v0, w0], atol=1e-12)


def test_alignment_rz_rotates_about_the_beam_axis():
    m = load_preset("station2022").modules[2]  # u module, no tilt
    r = m.with_alignment(ModuleAlignment(rz=0.01, dx=0.5, dz=-0.2))
    phi = math.atan2(r.measured_direction[1], r.measured_direction[0])
    assert phi == pytest.approx(math.pi / 4 + 0.01, abs=1e-14)
    assert (r.x, r.y, r.z) == pytest.approx((0.5, 0.0, m.z - 0.2))


def test_strip_numbering_round_trip():
    m = load_preset("station2022").modules[0]
    strips = np.arange(1016)
    centres = m.u_of_strip(strips)
    np.testing.assert_array_equal(m.strip_of(centres), strips)
    assert centres[0] == pytest.approx(-45.72 + 0.045) and centres[-1] == pytest.approx(45.72 - 0.045)
    np.testing.assert_allclose(np.diff(centres), 0.090)
    # edges: strip s covers [u_of_strip(s) - pitch/2, u_of_strip(s) + pitch/2)
    assert m.strip_of(-45.72) == 0 and m.strip_of(-45.7201) == -1
    assert m.strip_of(45.7199) == 1015 and m.strip_of(45.72) == -1
    assert m.strip_of(np.nan) == -1
    # half strips: stub position h (half-strip units) sits at u_of_strip(h / 2)
    assert m.u_of_strip(11 / 2) == pytest.approx(0.5 * (m.u_of_strip(5) + m.u_of_strip(6)))
    # random u inside a strip map back to that strip's centre within pitch/2
    u = np.random.default_rng(1).uniform(-45.7, 45.7, 10_000)
    assert np.all(np.abs(m.u_of_strip(m.strip_of(u)) - u) <= 0.045 + 1e-12)
    # rows: two halves of 50 mm along v
    assert m.row_of(-49.9) == 0 and m.row_of(-0.001) == 0 and m.row_of(0.0) == 1 and m.row_of(49.9) == 1
    assert m.row_of(50.0) == -1 and m.row_of(-50.01) == -1
    np.testing.assert_array_equal(m.row_of(m.v_of_row(np.array([0, 1]))), [0, 1])
    assert m.in_acceptance(0.0, 0.0) and not m.in_acceptance(46.0, 0.0)


def test_scalars_in_scalars_out_and_broadcasting():
    m = load_preset("station2022").modules[1]
    x, y, z = m.local_to_global(1.0, 2.0)
    assert np.ndim(x) == 0 and isinstance(float(x), float)
    u, v, w = m.global_to_local(np.zeros((4, 3)), 1.0, m.z)
    assert u.shape == v.shape == w.shape == (4, 3)
    assert isinstance(m.strip_of(0.0), np.integer)
    assert m.sensor_w(0) == -0.9 and m.sensor_w(1) == 0.9
