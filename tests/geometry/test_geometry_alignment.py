"""Alignment conditions: file round trip, application, addressing, errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from muone.errors import InputError
from muone.geometry import (
    AlignmentConditions,
    ModuleAlignment,
    load_geometry,
    load_preset,
    random_misalignment,
    read_alignment,
    write_alignment,
)

finite = dict(allow_nan=False, allow_infinity=False)
constants = st.builds(
    ModuleAlignment,
    dx=st.floats(-10, 10, **finite), dy=st.floats(-10, 10, **finite), dz=st.floats(-10, 10, **finite),
    du=st.floats(-10, 10, **finite), rx=st.floats(-1, 1, **finite), ry=st.floats(-1, 1, **finite),
    rz=st.floats(-3, 3, **finite),
)
keys = st.one_of(st.integers(0, 245).map(str), st.builds(lambda s, m: f"s{s}.m{m}", st.integers(0, 40), st.integers(0, 5)))


@settings(max_examples=50, deadline=None)
@given(st.dictionaries(keys, constants, max_size=8), st.text(max_size=20))
def test_write_read_round_trip(tmp_path_factory, modules, description):
    cond = AlignmentConditions(modules, description)
    path = write_alignment(tmp_path_factory.mktemp("al") / "alignment.toml", cond)
    again = read_alignment(path)
    assert again == cond
    assert again.source == str(path)


def test_with_alignment_returns_an_aligned_copy(tmp_path):
    det = load_preset("pilot2023")
    cond = AlignmentConditions.from_dict({
        "description": "test",
        "modules": {"s1.m3": {"dx": 0.1, "rz": 0.002}, 7: {"du": -0.004, "dz": 0.05}, "0": {"rx": 1e-3, "ry": -2e-3}},
    })
    aligned = det.with_alignment(cond)
    assert aligned is not det and aligned.alignment == cond
    assert det.modules[9].alignment.is_nominal()  # the original is untouched
    m9 = aligned.module("s1.m3")
    assert m9.index == 9 and m9.alignment.dx == 0.1 and m9.alignment.rz == 0.002
    assert aligned.modules[7].alignment.du == -0.004
    assert aligned.modules[7].z == pytest.approx(det.modules[7].z + 0.05 - 0.004 * aligned.modules[7].measured_direction[2])
    assert aligned.modules[0].alignment.rx == 1e-3
    assert aligned.stations[1].modules[3] is aligned.modules[9]
    untouched = [m.index for m in aligned.modules if m.alignment.is_nominal()]
    assert untouched == [i for i in range(18) if i not in (0, 7, 9)]
    arrays = aligned.module_arrays()
    assert arrays["dx"][9] == 0.1 and arrays["rz"][9] == 0.002 and arrays["du"][7] == -0.004
    assert arrays["x"][9] == pytest.approx(0.1)
    # back to nominal, and replacing (not composing) constants
    assert aligned.nominal().module_arrays()["x"].tolist() == det.module_arrays()["x"].tolist()
    twice = aligned.with_alignment({"s1.m3": {"dx": 0.2}})
    assert twice.module("s1.m3").alignment.dx == 0.2 and twice.modules[7].alignment.is_nominal()
    # the file path form and load_geometry with an alignment file (relative to base_dir)
    write_alignment(tmp_path / "al.toml", cond)
    assert det.with_alignment(tmp_path / "al.toml").module_arrays()["x"].tolist() == arrays["x"].tolist()
    loaded = load_geometry({"preset": "pilot2023", "alignment": "al.toml"}, base_dir=tmp_path)
    assert loaded.module_arrays()["rz"].tolist() == arrays["rz"].tolist()
    assert loaded.fingerprint() != det.fingerprint()


def test_updated_adds_constants():
    a = AlignmentConditions.from_dict({"s0.m1": {"dx": 0.1}, "s0.m2": {"rz": 0.001}})
    b = a.updated({"s0.m1": {"dx": 0.05, "dy": 0.01}, "s0.m3": {"dz": 1.0}})
    assert b.modules["s0.m1"] == ModuleAlignment(dx=0.1 + 0.05, dy=0.01)
    assert b.modules["s0.m2"] == ModuleAlignment(rz=0.001)
    assert b.modules["s0.m3"] == ModuleAlignment(dz=1.0)


def test_random_misalignment_is_reproducible():
    det = load_preset("station2022")
    a = random_misalignment(det, np.random.default_rng(7), dx=0.01, rz=1e-4)
    b = random_misalignment(det, np.random.default_rng(7), dx=0.01, rz=1e-4)
    assert a == b and len(a) == 6
    assert all(m.dy == 0.0 and m.dx != 0.0 for m in a.modules.values())
    det.with_alignment(a)


def test_unknown_module_in_alignment_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[modules."s1.m3"]\ndx = 0.1\n[modules.12]\ndy = 0.2\n')
    cond = read_alignment(path)
    with pytest.raises(InputError) as err:
        load_preset("station2022").with_alignment(cond)
    msg = str(err.value)
    assert str(path) in msg and "s1.m3" in msg and "unknown module" in msg
    assert "no module with global index 12" in msg
    with pytest.raises(InputError, match="s1.m3"):
        load_geometry({"preset": "station2022", "alignment": str(path)})
    # the same alignment is fine on a detector that has those modules
    load_preset("pilot2023").with_alignment(cond)


@pytest.mark.parametrize(
    "text, where, what",
    [
        ('[modules."s0.m1"]\ndxx = 0.1\n', 'modules."s0.m1".dxx', "unknown key (did you mean 'dx'?)"),
        ('[modules.station1]\ndx = 0.1\n', "modules.station1", "use a global module index"),
        ('[modules.3]\ndx = "0.1"\n', "modules.3.dx", "valid number"),
        ('[modules.3]\nrx = 2.0\n', "modules.3.rx", "less than"),
        ('modules = 3\n', "modules", "dictionary"),
        ('[modules.3\n', "", "TOML syntax error"),
        ('comment = "x"\n', "comment", "unknown key"),
    ],
)
def test_bad_alignment_files(tmp_path, text, where, what):
    path = tmp_path / "al.toml"
    path.write_text(text)
    with pytest.raises(InputError) as err:
        read_alignment(path)
    msg = str(err.value)
    assert str(path) in msg and what in msg
    if where:
        assert f"{where}:" in msg


def test_missing_alignment_file(tmp_path):
    with pytest.raises(InputError, match="nope.toml"):
        read_alignment(tmp_path / "nope.toml")
    with pytest.raises(InputError, match="nope.toml"):
        load_geometry({"preset": "station2022", "alignment": str(tmp_path / "nope.toml")})


def test_module_addressed_twice():
    with pytest.raises(InputError, match="already given"):
        load_preset("station2022").with_alignment({"s0.m1": {"dx": 1.0}, "1": {"dy": 1.0}})


def test_direct_construction_normalises_keys_and_values():
    a = AlignmentConditions({7: {"dx": 0.1}, "s01.m2": ModuleAlignment(rz=0.1)})
    assert a == AlignmentConditions({"7": ModuleAlignment(dx=0.1), "s1.m2": ModuleAlignment(rz=0.1)})
    with pytest.raises(InputError, match="use a global module index"):
        AlignmentConditions({"bad": {}})


def test_aligned_detector_pickles():
    import pickle

    det = load_preset("muone40").with_alignment({"s40.m5": {"dx": 0.1, "rz": 0.01}})
    again = pickle.loads(pickle.dumps(det))
    assert again.alignment == det.alignment and again.modules[-1] == det.modules[-1]
    for key in ("x", "z", "ux", "rotation"):
        np.testing.assert_array_equal(again.module_arrays()[key], det.module_arrays()[key])
