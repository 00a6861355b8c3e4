"""The generated documentation is current and the README commands are wired to CI."""

from __future__ import annotations

from pathlib import Path

from muone.plugin_docs import _builtin_registry, steering_reference

ROOT = Path(__file__).resolve().parents[1]


def test_steering_reference_is_current():
    current = (ROOT / "docs" / "reference" / "steering.md").read_text()
    expected = steering_reference(_builtin_registry()) + "\n"
    assert current == expected, "docs/reference/steering.md is stale: run `.venv/bin/python -m muone.plugin_docs`"


def test_every_builtin_plugin_is_documented():
    text = (ROOT / "docs" / "reference" / "steering.md").read_text()
    for name in _builtin_registry().plugins:
        assert f"### `{name}`" in text, name


def test_readme_test_command_is_what_ci_runs():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and "make demo" in readme
    assert "make test" in ci.splitlines()[-1]


def test_docs_links_resolve():
    import re

    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#:]+\.md)\)", page.read_text()):
            assert (page.parent / target).exists(), f"{page.name} links to missing {target}"


def test_shipped_steering_files_validate(tmp_path):
    """Every steering file in steering/ is valid (those reading earlier jobs are pointed at a
    finished job made here)."""
    import muone
    from muone.steering import load_steering

    for name in ("demo.toml", "simulate.toml", "templates.toml"):
        assert load_steering(ROOT / "steering" / name).source is not None, name
    sim = muone.run(ROOT / "steering" / "simulate.toml", {"job.events": 200, "job.chunk_size": 100, "job.executor": "serial"}, output=tmp_path / "sim")
    assert sim.report["events"]["out"] == 200
    reco = load_steering(ROOT / "steering" / "reconstruct.toml", {"source.input": str(sim.output_dir)})
    assert [s.cls.name for s in reco.processors][:5] == ["unpack", "stubs", "tracking", "calo_clustering", "vertexing"]
    tpl = muone.run(ROOT / "steering" / "templates.toml", {"job.events": 2000, "job.chunk_size": 1000, "job.executor": "serial"}, output=tmp_path / "tpl")
    fit = load_steering(ROOT / "steering" / "fit.toml", {"job.inputs": {"mc": str(tpl.output_dir)}})
    assert fit.source is None and [s.cls.name for s in fit.finalizers] == ["template_fit"]
