"""Plugin discovery through the ``muone`` entry-point group, and broken plugins."""

from __future__ import annotations

import json
import subprocess
import tomllib

import pytest

from muone.processor import Processor
from muone.registry import PluginOrigin, Registry, load_entry_points


def test_third_party_plugin_discovered_through_entry_point(muone_cli):
    proc = subprocess.run([*muone_cli, "plugins", "--json"], capture_output=True, text=True, check=True)
    listing = json.loads(proc.stdout)
    smear = listing["processors"]["smear"]
    assert smear["origin"]["distribution"] == "muone-testplugin"
    assert smear["origin"]["entry_point"] == "testplugin"
    assert {p["name"] for p in smear["parameters"]} == {"sigma"}
    assert "sum_inputs" in listing["finalizers"]
    # built-in plugins come through the same group
    assert listing["sources"]["beam"]["origin"]["distribution"] == "muone"
    assert {"beam", "events"} <= set(listing["sources"])
    assert {"filter", "histograms"} <= set(listing["processors"])
    assert "testplugin_smeared" in listing["histogram_presets"]


def test_broken_plugins_are_reported_by_name_and_hide_nothing():
    registry = load_entry_points()
    assert "deliberately broken" in registry.failures["testplugin_broken"]
    assert "deliberately failing hook" in registry.failures["testplugin_badhook"]
    # the other plugins of the same distribution and the built-ins still load
    assert {"smear", "sleepy", "explode", "sum_inputs", "beam", "histograms"} <= set(registry.plugins)


def test_plugins_command_prints_failures(muone_cli):
    proc = subprocess.run([*muone_cli, "plugins"], capture_output=True, text=True)
    assert proc.returncode == 0
    assert "testplugin_broken" in proc.stderr and "Traceback" not in proc.stderr


def test_run_a_third_party_plugin_from_a_steering_file(tmp_path, muone_cli):
    steering = tmp_path / "s.toml"
    steering.write_text(f"""
[job]
events = 3000
chunk_size = 1000
output_dir = "{tmp_path / 'out'}"
[source]
plugin = "beam"
[[processors]]
plugin = "smear"
sigma = 0.05
[[processors]]
plugin = "histograms"
presets = ["testplugin_smeared"]
""")
    proc = subprocess.run([*muone_cli, "run", str(steering)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "smear" in proc.stderr  # the timing table names it
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert [r["name"] for r in report["processors"]] == ["source", "smear", "histograms"]


def test_interface_problems_are_rejected():
    registry = Registry()

    class NoName(Processor):
        """No name."""

    with pytest.raises(TypeError, match="no valid plugin name"):
        registry.add_classes([NoName])
    with pytest.raises(TypeError, match="not a Source"):
        registry.add_classes([int])


def test_name_clash_is_reported():
    registry = Registry()

    class A(Processor):
        name = "same"

    class B(Processor):
        name = "same"

    registry.add_classes([A], PluginOrigin("one", "", "", "m"))
    with pytest.raises(TypeError, match="already registered by one"):
        registry.add_classes([B])


def test_steering_template_is_valid_toml_and_validates(tmp_path, muone_cli):
    proc = subprocess.run([*muone_cli, "steering-template", "beam", "smear", "histograms"], capture_output=True, text=True, check=True)
    data = tomllib.loads(proc.stdout)
    assert data["source"]["plugin"] == "beam" and data["source"]["beam_energy"] == 160.0
    assert [p["plugin"] for p in data["processors"]] == ["smear", "histograms"]
    assert "# Relative Gaussian smearing" in proc.stdout
    bad = subprocess.run([*muone_cli, "steering-template", "nonesuch"], capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown plugin" in bad.stderr


def test_version(muone_cli):
    import muone

    proc = subprocess.run([*muone_cli, "--version"], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == f"muone {muone.__version__}"


def test_run_exit_codes(tmp_path, muone_cli):
    bad = tmp_path / "bad.toml"
    bad.write_text("[job]\nevents = -1\n[source]\nplugin = 'beam'\n")
    proc = subprocess.run([*muone_cli, "run", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 2 and "job.events" in proc.stderr and "Traceback" not in proc.stderr
    failing = tmp_path / "fail.toml"
    failing.write_text(f"[job]\nevents = 100\nchunk_size = 50\noutput_dir = '{tmp_path / 'o'}'\n[source]\nplugin = 'beam'\n[[processors]]\nplugin = 'explode'\non_chunk = 0\n")
    proc = subprocess.run([*muone_cli, "run", str(failing)], capture_output=True, text=True)
    assert proc.returncode == 1 and "boom on chunk 0" in proc.stderr and "Traceback" not in proc.stderr


def test_physics_command_through_the_muone_cli(muone_cli):
    proc = subprocess.run([*muone_cli, "physics", "xsec", "--ee-min", "1", "--running", "none", "--json"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "245.59" in proc.stdout
    bad = subprocess.run([*muone_cli, "physics", "amu", "--model", "Pol2"], capture_output=True, text=True)
    assert bad.returncode == 2 and "x-max" in bad.stderr and "Traceback" not in bad.stderr
