"""The presets match PHYSICS.md section 8 (z in cm there, mm here) and the target numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from muone.geometry import MATERIALS, N_AVOGADRO, available_presets, load_geometry, load_preset
from muone.steering import GeometryConfig

OFFSETS_CM = [18.02, 21.87, 55.36, 56.62, 89.92, 93.77]  # PHYSICS.md section 8, from the station start
KINDS = ["x", "y", "u", "v", "x", "y"]
PITCH_MM = 1160.0
CALO_AFTER_MM = 300.0


def test_available_presets():
    assert available_presets() == ["muone40", "pilot2023", "station2022"]


@pytest.mark.parametrize(
    "name, n_stations, n_modules, n_targets, material, thickness, first_target_station",
    [
        ("station2022", 1, 6, 1, "Be", 15.0, 0),
        ("pilot2023", 3, 18, 2, "C", 20.0, 1),
        ("muone40", 41, 246, 40, "Be", 15.0, 1),
    ],
)
def test_preset_layout(name, n_stations, n_modules, n_targets, material, thickness, first_target_station):
    det = load_geometry(GeometryConfig(preset=name))
    assert det.name == name
    assert (len(det.stations), len(det.modules), len(det.targets)) == (n_stations, n_modules, n_targets)
    # stations every 116 cm from z = 0, each x y u v x y at the 2022 offsets
    for s in det.stations:
        assert s.z == pytest.approx(s.index * PITCH_MM, abs=1e-9)
        assert [m.kind for m in s.modules] == KINDS
        assert [m.z - s.z for m in s.modules] == pytest.approx([10 * c for c in OFFSETS_CM], abs=1e-9)
        assert [m.name for m in s.modules] == [f"s{s.index}.m{k}" for k in range(6)]
        has_target = s.index >= first_target_station
        assert (s.target is not None) == has_target
        if has_target:
            assert s.target.material == material
            assert s.target.thickness == thickness
            assert s.target.z_start == s.z  # the target starts the station
            assert s.target.z_end == pytest.approx(s.z + thickness)
    # flat module list: global index order, strictly increasing z
    assert [m.index for m in det.modules] == list(range(n_modules))
    assert all(b.z > a.z for a, b in zip(det.modules, det.modules[1:]))
    assert [t.index for t in det.targets] == list(range(n_targets))
    assert det.targets[0].z_start == pytest.approx(first_target_station * PITCH_MM)
    # calorimeter 30 cm after the last module
    calo = det.calorimeter
    assert calo.z == pytest.approx(det.modules[-1].z + CALO_AFTER_MM, abs=1e-9)
    assert (calo.n, calo.crystal_size, calo.crystal_length, calo.material, calo.moliere_radius) == (5, 28.5, 220.0, "PbWO4", 20.0)
    assert calo.width == pytest.approx(142.5)  # front face ~14 x 14 cm
    assert calo.depth_x0 == pytest.approx(25, rel=0.02)  # ~25 X0


def test_station2022_numbers():
    det = load_preset("station2022")
    assert [m.z for m in det.modules] == pytest.approx([180.2, 218.7, 553.6, 566.2, 899.2, 937.7])
    assert det.calorimeter.z == pytest.approx(1237.7)
    for m in det.modules:
        xy = m.kind in "xy"
        assert m.tilt == (0.233 if xy else 0.0)
        assert m.stereo == {"x": 0.0, "y": math.pi / 2, "u": math.pi / 4, "v": -math.pi / 4}[m.kind]
        assert m.sensor_spacing == (1.8 if xy else 4.0)
        assert (m.pitch, m.n_strips, m.n_rows, m.strip_length) == (0.090, 1016, 2, 50.0)
        assert m.active_area == (100.0, 100.0)
        assert (m.sensor_thickness, m.x_over_x0) == (0.320, 0.007)


def test_muone40_and_pilot_z_extent():
    assert load_preset("muone40").calorimeter.z == pytest.approx(40 * 1160.0 + 937.7 + 300.0)
    assert load_preset("pilot2023").calorimeter.z == pytest.approx(2 * 1160.0 + 937.7 + 300.0)
    targets = load_preset("muone40").targets
    assert sum(t.thickness for t in targets) == pytest.approx(600.0)  # 60 cm of Be in total


def test_electron_areal_density_hand_computed():
    # 1.5 cm Be: rho 1.848 g/cm^3, Z/A 0.44384 mol/g -> 1.848 * 6.02214076e23 * 0.44384 * 1.5 per cm^2
    be = load_preset("station2022").targets[0]
    assert be.electron_areal_density == pytest.approx(7.40919e23, rel=1e-5)
    assert be.electron_areal_density == pytest.approx(1.848 * N_AVOGADRO * 0.44384 * 1.5, rel=1e-12)
    # 2 cm graphite: rho 2.210 g/cm^3, Z/A 0.49955 mol/g
    c = load_preset("pilot2023").targets[0]
    assert c.electron_areal_density == pytest.approx(1.329695e24, rel=1e-5)
    assert c.electron_areal_density == pytest.approx(2.210 * N_AVOGADRO * 0.49955 * 2.0, rel=1e-12)
    # one muon through 1.5 cm Be: 7.4e23 cm^-2 = 7.4e-10 nb^-1
    assert be.luminosity_per_muon == pytest.approx(7.40919e-10, rel=1e-5)


def test_target_radiation_lengths():
    be = load_preset("station2022").targets[0]
    assert be.x_over_x0 == pytest.approx(0.0425, rel=0.01)  # PHYSICS.md section 8
    c = load_preset("pilot2023").targets[0]
    assert c.x_over_x0 == pytest.approx(20.0 / 193.2, rel=1e-3)  # graphite X0 = 19.32 cm at 2.21 g/cm^3


def test_materials_table():
    assert MATERIALS["Be"].x0 == pytest.approx(352.8, rel=1e-3)
    assert MATERIALS["C"].density == 2.210
    assert MATERIALS["Si"].x0 == pytest.approx(93.7, rel=1e-3)
    assert MATERIALS["PbWO4"].x0 == pytest.approx(8.9, rel=1e-2)
    # two 320 um Si sensors are ~0.68 % X0: the 0.7 % module budget of PHYSICS.md includes support
    assert 2 * MATERIALS["Si"].x_over_x0(0.320) == pytest.approx(0.0068, rel=0.02)


@pytest.mark.parametrize("config", [None, {}, {"preset": "", "file": "", "alignment": ""}, GeometryConfig()])
def test_no_geometry_gives_the_default_target(config):
    det = load_geometry(config)
    assert det.modules == () and det.calorimeter is None
    (t,) = det.targets
    assert (t.material, t.thickness, t.z_start, t.z_end) == ("Be", 15.0, 0.0, 15.0)


def test_target_arrays_and_module_arrays():
    det = load_preset("pilot2023")
    ta = det.target_arrays()
    assert ta["z_start"].tolist() == [1160.0, 2320.0]
    assert ta["station"].dtype == np.int32 and ta["station"].tolist() == [1, 2]
    ma = det.module_arrays()
    assert all(len(v) == 18 for v in ma.values())
    assert ma["z"].dtype == np.float64 and ma["kind"].dtype == np.int32 and ma["n_strips"].dtype == np.int32
    assert ma["kind"][:6].tolist() == [0, 1, 2, 3, 0, 1]
    assert ma["station"].tolist() == [s for s in range(3) for _ in range(6)]
    assert ma["z"].tolist() == [m.z for m in det.modules]
    np.testing.assert_allclose(ma["cos_stereo"], np.cos(ma["stereo"]))
    np.testing.assert_allclose(ma["sin_stereo"], np.sin(ma["stereo"]))
    for m in det.modules:
        np.testing.assert_array_equal(ma["rotation"][m.index], m.rotation)
        np.testing.assert_array_equal([ma["ux"][m.index], ma["uy"][m.index], ma["uz"][m.index]], m.measured_direction)


def test_upstream_and_downstream_modules():
    det = load_preset("pilot2023")
    assert [m.name for m in det.upstream_modules(0)] == [f"s0.m{k}" for k in range(6)]
    assert [m.name for m in det.upstream_modules(1)] == [f"s1.m{k}" for k in range(6)]
    assert [m.name for m in det.downstream_modules(1)] == [f"s2.m{k}" for k in range(6)]
    assert load_preset("station2022").upstream_modules(0) == []


def test_explicit_description_round_trip(tmp_path):
    from muone.geometry import load_detector, write_detector

    for name in available_presets():
        det = load_preset(name)
        path = write_detector(tmp_path / f"{name}.toml", det)
        again = load_detector(path)
        assert again.to_dict() == det.to_dict()
        assert [m.z for m in again.modules] == [m.z for m in det.modules]
        assert again.fingerprint() == det.fingerprint()


def test_calorimeter_cells():
    calo = load_preset("station2022").calorimeter
    assert calo.cell_of(0.0, 0.0) == 12  # the centre of 5 x 5
    assert calo.cell_of(-71.0, -71.0) == 0 and calo.cell_of(71.0, 71.0) == 24
    assert calo.cell_of(72.0, 0.0) == -1
    cells = np.arange(25)
    x, y = calo.cell_centre(cells)
    np.testing.assert_array_equal(calo.cell_of(x, y), cells)
