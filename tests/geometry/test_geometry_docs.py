"""The examples and tables of docs/geometry.md are what the code does."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from muone.geometry import MATERIALS, AlignmentConditions, detector_from_dict, load_preset

DOC = Path(__file__).resolve().parents[2] / "docs" / "geometry.md"


def toml_blocks() -> list[dict]:
    return [tomllib.loads(b) for b in re.findall(r"```toml\n(.*?)```", DOC.read_text(), re.S)]


def test_description_and_alignment_examples_load():
    blocks = toml_blocks()
    (desc,) = [b for b in blocks if "stations" in b]
    det = detector_from_dict(desc, source="docs/geometry.md")
    assert [len(s.modules) for s in det.stations] == [2, 6, 6]
    assert det.targets[0].material == "C_target" and det.targets[1].z_start == 2320.0
    (align,) = [b for b in blocks if "modules" in b and "stations" not in b]
    aligned = det.with_alignment(AlignmentConditions.from_dict(align))
    assert aligned.module("s1.m3").alignment.dx == 0.012 and aligned.modules[7].alignment.du == -0.004


def test_materials_table_matches():
    rows = re.findall(r"^\| `(\w+)` \| ([\d.]+)[^|]*\| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|$", DOC.read_text(), re.M)
    assert {r[0] for r in rows} == set(MATERIALS)
    for name, density, z_over_a, x0_mass, x0 in rows:
        m = MATERIALS[name]
        assert (m.density, m.z_over_a) == (float(density), float(z_over_a))
        assert m.x0_mass == pytest.approx(float(x0_mass), rel=1e-9)
        assert m.x0 == pytest.approx(float(x0), abs=0.01)


def test_presets_table_matches():
    for name, calo in (("station2022", 1237.7), ("pilot2023", 3557.7), ("muone40", 47637.7)):
        assert f"| `{name}` |" in DOC.read_text()
        assert load_preset(name).calorimeter.z == pytest.approx(calo)
