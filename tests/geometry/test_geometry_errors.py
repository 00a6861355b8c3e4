"""Bad detector descriptions and [geometry] tables give InputErrors naming file and key path."""

from __future__ import annotations

import pytest

from muone.errors import InputError
from muone.geometry import GeometryError, detector_from_dict, load_detector, load_geometry

GOOD = """
name = "mini"
[[stations]]
z = 0.0
target = { material = "Be", thickness = 15.0 }
modules = [ { kind = "x", z = 100.0 }, { kind = "u", z = 200.0 } ]
[calorimeter]
z = 500.0
"""


def write(tmp_path, text):
    path = tmp_path / "det.toml"
    path.write_text(text)
    return path


def test_good_file_with_defaults(tmp_path):
    det = load_geometry({"file": "det.toml"}, base_dir=write(tmp_path, GOOD).parent)
    assert det.name == "mini" and len(det.modules) == 2
    x, u = det.modules
    assert (x.tilt, x.stereo, x.sensor_spacing) == (0.233, 0.0, 1.8)
    assert (u.tilt, u.sensor_spacing) == (0.0, 4.0)
    assert det.calorimeter.n == 5


def test_unknown_preset_lists_the_available_ones():
    with pytest.raises(InputError) as err:
        load_geometry({"preset": "pilot2022"})
    msg = str(err.value)
    assert "unknown geometry preset 'pilot2022'" in msg and "did you mean 'pilot2023'" in msg
    assert "available: muone40, pilot2023, station2022" in msg


@pytest.mark.parametrize(
    "old, new, where, what",
    [
        ('thickness = 15.0', 'thickness = 15.0, thick = 1', "stations[0].target.thick", "unknown key (did you mean 'thickness'?)"),
        ('thickness = 15.0', 'thickness = -15.0', "stations[0].target.thickness", "greater than 0"),
        ('kind = "u"', 'kind = "w"', "stations[0].modules[1].kind", "'x', 'y', 'u' or 'v'"),
        ('kind = "u", z = 200.0', 'kind = "u", z = 200.0, pitch = "0.09"', "stations[0].modules[1].pitch", "valid number"),
        ('kind = "u", z = 200.0', 'kind = "u", z = 200.0, tilt = nan', "stations[0].modules[1].tilt", "finite"),
        ('kind = "u", z = 200.0', 'kind = "u", z = 200.0, active_area = [100.0]', "stations[0].modules[1].active_area", "at least 2"),
        ('material = "Be"', 'material = "Bee"', "stations[0].target.material", "unknown material 'Bee' (did you mean 'Be'?)"),
        ('[calorimeter]\nz = 500.0', '[calorimeter]\nz = 500.0\ncrystals = 7', "calorimeter.crystals", "unknown key"),
        ('[calorimeter]\nz = 500.0', '[calorimeter]\nz = 150.0', "calorimeter.z", "downstream of the last module"),
        ('z = 200.0 }', 'z = 50.0 }', "stations[0]", "increasing z"),
        ('z = 100.0 }', 'z = 10.0 }', "stations[0].target", "contains module s0.m0"),
        ('name = "mini"', 'name = "mini"\nstation = 1', "station", "unknown key (did you mean 'stations'?)"),
        ('modules = [', 'layout = "six"\nmodules = [', "stations[0]", "either layout or modules"),
    ],
)
def test_bad_descriptions(tmp_path, old, new, where, what):
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(GeometryError) as err:
        load_detector(path)
    assert isinstance(err.value, InputError)
    msg = str(err.value)
    assert str(path) in msg, msg
    assert f"{where}: " in msg, msg
    assert what in msg, msg


def test_all_problems_are_reported_together(tmp_path):
    text = GOOD.replace("thickness = 15.0", "thickness = -1.0").replace('kind = "u"', 'kind = "q"')
    with pytest.raises(GeometryError) as err:
        load_detector(write(tmp_path, text))
    assert len(err.value.problems) == 2


def test_layouts_and_repeat():
    data = {
        "layouts": {"two": {"modules": [{"kind": "x", "z": 100.0}, {"kind": "y", "z": 150.0}]}},
        "stations": [{"z": 0.0, "layout": "two", "repeat": 3, "pitch": 1000.0,
                      "target": {"material": "C", "thickness": 20.0}}],
    }
    det = detector_from_dict(data)
    assert [s.z for s in det.stations] == [0.0, 1000.0, 2000.0]
    assert [m.name for m in det.modules][-2:] == ["s2.m0", "s2.m1"]
    bad = {**data, "stations": [{**data["stations"][0], "pitch": None}]}
    del bad["stations"][0]["pitch"]
    with pytest.raises(GeometryError, match=r"stations\[0\].pitch: repeat = 3 needs"):
        detector_from_dict(bad)
    with pytest.raises(GeometryError, match=r"unknown layout 'tow' \(did you mean 'two'\?\)"):
        detector_from_dict({**data, "stations": [{"z": 0.0, "layout": "tow"}]})
    # stations too close: the second one's modules are upstream of the first one's
    with pytest.raises(GeometryError, match=r"stations\[0\] \(copy 1 of 3\).*increasing z"):
        detector_from_dict({**data, "stations": [{**data["stations"][0], "pitch": 40.0}]})


def test_custom_material(tmp_path):
    text = GOOD.replace('material = "Be"', 'material = "C_target"') + (
        '\n[materials.C_target]\ndensity = 1.83\nz_over_a = 0.49955\nx0 = 233.3\n')
    det = load_detector(write(tmp_path, text))
    t = det.targets[0]
    assert t.medium.density == 1.83 and t.x_over_x0 == pytest.approx(15.0 / 233.3)
    assert det.to_dict()["materials"]["C_target"]["density"] == 1.83


def test_missing_file_and_syntax_error(tmp_path):
    with pytest.raises(InputError, match="nothere.toml.*cannot read"):
        load_geometry({"file": str(tmp_path / "nothere.toml")})
    with pytest.raises(InputError, match="TOML syntax error"):
        load_detector(write(tmp_path, "[[stations]\n"))


def test_bad_geometry_tables():
    with pytest.raises(InputError, match=r"geometry.prest: unknown key \(did you mean 'preset'\?\)"):
        load_geometry({"prest": "pilot2023"})
    with pytest.raises(InputError, match="not both"):
        load_geometry({"preset": "pilot2023", "file": "x.toml"})
    with pytest.raises(InputError, match="expected the"):
        load_geometry(42)
