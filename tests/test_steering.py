"""Steering validation: every class of bad input is reported, all together, with file and key."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from muone.errors import SteeringError
from muone.steering import load_steering, parse_override

GOOD = """
[job]
events = 1000
chunk_size = 500
output_dir = "{out}"

[source]
plugin = "beam"
beam_energy = 160.0

[[processors]]
plugin = "histograms"
presets = ["beam"]
"""


def write(tmp_path: Path, text: str, name: str = "job.toml") -> Path:
    path = tmp_path / name
    path.write_text(text.format(out=tmp_path / "out"))
    return path


def problems(path_or_dict, overrides=None) -> list[str]:
    with pytest.raises(SteeringError) as info:
        load_steering(path_or_dict, overrides)
    return [str(p) for p in info.value.problems]


def test_good_steering_resolves_defaults(tmp_path):
    steering = load_steering(write(tmp_path, GOOD))
    resolved = steering.resolved()
    assert resolved["job"]["seed"] == 12345
    assert resolved["source"]["beam_spot_size"] == 20.0
    assert resolved["processors"][0]["name"] == "histograms"
    assert len(steering.physics_hash()) == 64


def test_unknown_keys_with_did_you_mean_all_reported_with_file(tmp_path):
    text = GOOD.replace("beam_energy = 160.0", "beam_enrgy = 160.0").replace("chunk_size = 500", "chunk_sise = 500")
    path = write(tmp_path, text)
    found = problems(path)
    assert len(found) == 2
    assert any("source.beam_enrgy" in p and "did you mean 'beam_energy'" in p and str(path) in p for p in found)
    assert any("job.chunk_sise" in p and "did you mean 'chunk_size'" in p for p in found)


def test_wrong_types_and_out_of_range(tmp_path):
    text = GOOD.replace("events = 1000", 'events = "many"').replace("beam_energy = 160.0", "beam_energy = -5.0")
    found = problems(write(tmp_path, text))
    assert any(p.endswith("") and "job.events" in p and "valid integer" in p for p in found)
    assert any("source.beam_energy" in p and "greater than 1" in p for p in found)


def test_unknown_plugin_lists_available_and_failed_plugins(tmp_path):
    text = GOOD.replace('plugin = "histograms"', 'plugin = "histogram"')
    found = problems(write(tmp_path, text))
    assert len(found) == 1
    msg = found[0]
    assert "processors.histogram.plugin" in msg
    assert "did you mean 'histograms'" in msg
    assert "testplugin_broken" in msg and "deliberately broken" in msg  # failed plugins are listed


def test_missing_dataflow_link_names_both_sides(tmp_path):
    text = GOOD + '\n[[processors]]\nplugin = "smear"\n'
    text = text.replace('plugin = "beam"', 'plugin = "beam"')
    steering = {
        "job": {"events": 10, "output_dir": str(tmp_path / "o")},
        "source": {"plugin": "beam"},
        "processors": [
            {"plugin": "histograms", "presets": ["testplugin_smeared"]},
            {"plugin": "smear"},
        ],
    }
    found = problems(steering)
    assert len(found) == 1
    assert "'histograms' reads 'smeared.energy'" in found[0]
    assert "written by 'smear', which runs later" in found[0]


def test_save_of_unwritten_collection(tmp_path):
    steering = {"job": {"events": 10, "save": ["vertices"]}, "source": {"plugin": "beam"}}
    (msg,) = problems(steering)
    assert "job.save[0]" in msg and "'vertices'" in msg


def test_many_problems_reported_together(tmp_path):
    text = """
[job]
events = 0
executor = "mpi"
bogus = 1

[sources]
plugin = "beam"

[[processors]]
plugin = "nope"
"""
    found = problems(write(tmp_path, text))
    keys = " ".join(found)
    for expected in ("job.events", "job.executor", "job.bogus", "sources", "processors.nope.plugin"):
        assert expected in keys, (expected, found)


def test_toml_syntax_error_names_file_and_line(tmp_path):
    path = write(tmp_path, "[job]\nevents = = 3\n")
    (msg,) = problems(path)
    assert str(path) in msg and "line 2" in msg


def test_missing_file():
    (msg,) = problems(Path("/nonexistent/steering.toml"))
    assert "/nonexistent/steering.toml" in msg


def test_duplicate_instance_names(tmp_path):
    steering = {
        "job": {"events": 10},
        "source": {"plugin": "beam"},
        "processors": [{"plugin": "filter", "expression": "run > 0"}, {"plugin": "filter", "expression": "run > 1"}],
    }
    found = problems(steering)
    assert any("already used" in p for p in found)


def test_bad_expression_is_a_steering_problem():
    steering = {"job": {"events": 10}, "source": {"plugin": "beam"}, "processors": [{"plugin": "filter", "expression": "run >"}]}
    (msg,) = problems(steering)
    assert "processors.filter.expression" in msg


def test_overrides_address_processors_by_instance_name(tmp_path):
    path = write(tmp_path, GOOD + '\n[[processors]]\nplugin = "filter"\nname = "cut"\nexpression = "run > 0"\n')
    steering = load_steering(path, ["job.events=42", "source.beam_energy=150", 'processors.cut.expression="run > 1"'])
    assert steering.job.events == 42
    assert steering.source.params.beam_energy == 150.0
    assert steering.processors[1].params.expression == "run > 1"


def test_bad_overrides_are_reported(tmp_path):
    path = write(tmp_path, GOOD)
    found = problems(path, ["processors.tracking.max_chi2=3", "jobs.events=1", "job.events=-1"])
    text = "\n".join(found)
    assert "no processor named 'tracking'" in text
    assert "unknown section 'jobs'" in text and "did you mean 'job'" in text
    assert "job.events" in text


def test_parse_override_values():
    assert parse_override("a.b=3") == ("a.b", 3)
    assert parse_override("a.b=1.5") == ("a.b", 1.5)
    assert parse_override("a.b=true") == ("a.b", True)
    assert parse_override("a.b=out/x") == ("a.b", "out/x")
    assert parse_override('a.h={model = "Pol2", c1 = 1.0}') == ("a.h", {"model": "Pol2", "c1": 1.0})
    with pytest.raises(SteeringError):
        parse_override("novalue")


def test_finalizer_needs_inputs(tmp_path):
    steering = {"job": {"inputs": {"first": str(tmp_path)}}, "finalizers": [{"plugin": "sum_inputs"}]}
    (msg,) = problems(steering)
    assert "job.inputs.first" in msg and "manifest.json" in msg
    steering = {"job": {}, "finalizers": [{"plugin": "sum_inputs"}]}
    (msg,) = problems(steering)
    assert "needs [job] inputs named first" in msg


def test_check_command_exit_code_and_no_traceback(tmp_path, muone_cli):
    path = write(tmp_path, GOOD.replace("beam_energy = 160.0", "beam_enrgy = 1"))
    proc = subprocess.run([*muone_cli, "check", str(path)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "source.beam_enrgy" in proc.stderr
    good = write(tmp_path, GOOD, "good.toml")
    proc = subprocess.run([*muone_cli, "check", str(good)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
