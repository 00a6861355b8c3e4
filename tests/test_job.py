"""The event loop: executors, merging, resume, failures, chaining and finalizer-only jobs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

import muone
from muone.errors import JobError, ResumeError


def beam_job(out: Path, **job) -> dict:
    base = {"events": 20_000, "chunk_size": 4_000, "seed": 7, "output_dir": str(out)}
    base.update(job)
    return {
        "job": base,
        "source": {"plugin": "beam", "pileup_mean": 1.25},
        "processors": [
            {"plugin": "smear", "sigma": 0.02},
            {"plugin": "filter", "name": "one_or_more", "expression": "num(mc.particles) >= 1"},
            {"plugin": "histograms", "presets": ["beam", "testplugin_smeared"]},
        ],
    }


def hist_contents(results: muone.Results) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {k: (h.values(flow=True), h.variances(flow=True)) for k, h in results.histograms.items()}


def assert_same_contents(a: muone.Results, b: muone.Results) -> None:
    ca, cb = hist_contents(a), hist_contents(b)
    assert ca.keys() == cb.keys() and ca
    for key in ca:
        # identical, not approximately equal: the merge order is fixed
        assert np.array_equal(ca[key][0], cb[key][0]), key
        assert np.array_equal(ca[key][1], cb[key][1]), key
    assert a.report["cutflows"] == b.report["cutflows"]
    assert a.merged["smear"]["n"] == b.merged["smear"]["n"]


def test_identical_results_across_executors_and_workers(tmp_path):
    serial = muone.run(beam_job(tmp_path / "serial", executor="serial"))
    one = muone.run(beam_job(tmp_path / "p1", executor="processes", workers=1))
    two = muone.run(beam_job(tmp_path / "p2", executor="processes", workers=2))
    assert_same_contents(serial, one)
    assert_same_contents(serial, two)
    # a different chunking is a different job (different random streams) but the same statistics
    assert serial.report["events"]["in"] == 20_000


def test_outputs_layout_and_manifest(tmp_path):
    res = muone.run(beam_job(tmp_path / "o", save=["run", "event", "mc", "smeared"]))
    out = tmp_path / "o"
    for name in ("steering.resolved.toml", "manifest.json", "report.json", "histograms.root", "histograms.pkl"):
        assert (out / name).is_file(), name
    assert len(list((out / "results").glob("chunk-*.pkl"))) == 5
    assert len(list((out / "events").glob("chunk-*.root"))) == 5
    assert not list(out.rglob("*.tmp")), "temporary files left behind"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["chunks_done"] == 5
    assert manifest["versions"]["awkward"] and manifest["versions"]["muone"] == muone.__version__
    assert manifest["plugins"]["smear"]["distribution"] == "muone-testplugin"
    assert manifest["plugins"]["beam"]["distribution"] == "muone"
    # resolved steering reproduces the job
    import tomllib

    resolved = tomllib.loads((out / "steering.resolved.toml").read_text())
    assert resolved["processors"][0]["sigma"] == 0.02
    # histograms.root is readable by uproot and matches the pickle
    import uproot

    with uproot.open(out / "histograms.root") as f:
        h = f["histograms/beam_energy"].to_hist()
    assert np.allclose(h.values(), res.hist("beam_energy").values())
    # the cut flow of the filter is in the report
    flow = res.report["cutflows"]["one_or_more/cutflow"]["cuts"]
    assert flow[0]["count"] == 20_000 and 0 < flow[1]["count"] < 20_000


def test_rng_streams_are_independent_of_other_processors(tmp_path):
    a = muone.run(beam_job(tmp_path / "a", save=["smeared"]))
    job = beam_job(tmp_path / "b", save=["smeared"])
    job["processors"].insert(0, {"plugin": "sleepy", "seconds": 0.0})
    b = muone.run(job)
    assert_same_contents(a, b)


def test_changed_steering_refuses_to_resume_without_force(tmp_path):
    muone.run(beam_job(tmp_path / "o"))
    changed = beam_job(tmp_path / "o")
    changed["processors"][0]["sigma"] = 0.05
    with pytest.raises(ResumeError, match="--force"):
        muone.run(changed)
    res = muone.run(changed, force=True)
    assert res.report["chunks"]["run_now"] == 5
    # executor and workers are not part of the steering hash: resuming with processes is fine
    again = muone.run(beam_job(tmp_path / "o", executor="processes", workers=2) | {"processors": changed["processors"]})
    assert again.report["chunks"]["run_now"] == 0 and again.report["chunks"]["resumed"] == 5


def test_failing_chunk_fails_job_and_keeps_completed_chunks(tmp_path):
    job = beam_job(tmp_path / "o")
    job["processors"].append({"plugin": "explode", "on_chunk": 2})
    with pytest.raises(JobError) as info:
        muone.run(job)
    msg = str(info.value)
    assert "chunk 2" in msg and "'explode'" in msg and "boom on chunk 2" in msg
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert manifest["status"] == "failed"
    assert manifest["failed_chunks"][0]["chunk"] == 2
    assert manifest["chunks_done"] == 2  # chunks 0 and 1 ran before, serially
    job["job"]["on_error"] = "skip"
    res = muone.run(job, force=True)
    assert res.report["chunks"]["failed"][0]["processor"] == "explode"
    assert res.report["chunks"]["done"] == 4
    assert res.merged["explode"]["seen"] < 20_000


def test_chaining_two_jobs_through_events(tmp_path):
    first = muone.run(beam_job(tmp_path / "gen", save=["run", "event", "mc"]))
    second = muone.run({
        "job": {"chunk_size": 3_000, "output_dir": str(tmp_path / "ana")},
        "source": {"plugin": "events", "input": str(tmp_path / "gen")},
        "processors": [{"plugin": "histograms", "presets": ["beam"]}],
    })
    for name in ("beam_energy", "beam_spot", "muons_per_crossing"):
        assert np.array_equal(first.hist(name).values(flow=True), second.hist(name).values(flow=True)), name
    # vector behaviours are restored on read
    assert second.report["events"]["in"] == first.report["events"]["out"]


def test_events_source_restores_vector_behaviours(tmp_path):
    muone.run(beam_job(tmp_path / "gen", events=2_000, chunk_size=1_000, save=["mc"]))
    res = muone.run({
        "job": {"output_dir": str(tmp_path / "ana")},
        "source": {"plugin": "events", "input": str(tmp_path / "gen")},
        "processors": [{"plugin": "histograms", "hist": {"pt": {"axes": [{"expr": "mc.beam.pt", "bins": 10, "start": 0.0, "stop": 1.0}]}}}],
    })
    assert res.hist("pt").sum().value > 0


def test_finalizer_only_job_reads_earlier_results(tmp_path):
    muone.run(beam_job(tmp_path / "a"))
    muone.run(beam_job(tmp_path / "b", seed=8))
    res = muone.run({
        "job": {"output_dir": str(tmp_path / "fin"), "inputs": {"first": str(tmp_path / "a"), "second": str(tmp_path / "b")}},
        "finalizers": [{"plugin": "sum_inputs"}],
    })
    a = muone.Results.load(tmp_path / "a").hist("beam_energy").sum().value
    b = muone.Results.load(tmp_path / "b").hist("beam_energy").sum().value
    assert res.merged["sum_inputs"]["total"] == pytest.approx(a + b)
    # the finalizer's summary lines go to the report, not to the merged results
    assert res.report["finalizers"][0]["summary"] == [f"sum over inputs: {a + b:.1f}"]
    assert "summary" not in res.merged["sum_inputs"]
    assert "sum_inputs/summed" in muone.Results.load(tmp_path / "fin").histograms


def test_results_load_rejects_incomplete_or_missing(tmp_path):
    with pytest.raises(muone.InputError, match="no manifest.json"):
        muone.Results.load(tmp_path)


def test_resume_after_a_job_really_interrupted(tmp_path, muone_cli):
    steering = tmp_path / "slow.toml"
    out = tmp_path / "o"
    steering.write_text(f"""
[job]
events = 12000
chunk_size = 1000
seed = 3
output_dir = "{out}"
[source]
plugin = "beam"
[[processors]]
plugin = "sleepy"
seconds = 0.4
[[processors]]
plugin = "histograms"
presets = ["beam"]
""")
    proc = subprocess.Popen([*muone_cli, "run", str(steering), "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and len(list((out / "results").glob("chunk-*.json"))) < 3:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(list((out / "results").glob("chunk-*.json")))
    assert 3 <= done_before < 12, "the job was not interrupted in the middle"
    assert json.loads((out / "manifest.json").read_text())["status"] == "running"
    assert not (out / "report.json").exists()
    resumed = muone.run(steering)
    assert resumed.report["chunks"]["resumed"] == done_before
    assert resumed.report["chunks"]["run_now"] == 12 - done_before
    fresh = muone.run(steering, output=tmp_path / "fresh")
    for name, h in fresh.histograms.items():
        assert np.array_equal(h.values(flow=True), resumed.histograms[name].values(flow=True)), name
        assert np.array_equal(h.variances(flow=True), resumed.histograms[name].variances(flow=True)), name


def test_corrupt_chunk_output_is_redone(tmp_path):
    first = muone.run(beam_job(tmp_path / "o"))
    victim = tmp_path / "o" / "results" / "chunk-000003.pkl"
    victim.write_bytes(b"garbage")
    again = muone.run(beam_job(tmp_path / "o"))
    assert again.report["chunks"]["run_now"] == 1
    assert_same_contents(first, again)


def test_processor_interface_violations_are_named(tmp_path):
    from muone import Output, Processor

    class Liar(Processor):
        """Writes a collection it does not declare."""

        name = "liar"

        def process(self, events, chunk):
            return Output(collections={"secret": np.zeros(len(events))})

    job = {"job": {"events": 100, "output_dir": str(tmp_path / "o")}, "source": {"plugin": "beam"}, "processors": [{"plugin": "liar"}]}
    with pytest.raises(JobError, match="'liar'.*does not declare"):
        muone.run(job, plugins=[Liar])


def test_histograms_of_fixed_size_arrays(tmp_path):
    """Regression: histogramming a regular (fixed-size) per-event array such as raw.calo failed to
    broadcast the event weights."""

    from muone import Output, Processor

    class Cells(Processor):
        """Writes 4 fixed-size cells per event."""

        name = "cells"
        writes = ("cells",)

        def process(self, events, chunk):
            return Output(collections={"cells": np.tile(np.arange(4.0), (len(events), 1))})

    res = muone.run({
        "job": {"events": 500, "output_dir": str(tmp_path / "o")},
        "source": {"plugin": "beam"},
        "processors": [{"plugin": "cells"}, {"plugin": "histograms", "hist": {"c": {"axes": [{"expr": "cells", "bins": 4, "start": 0.0, "stop": 4.0}]}}}],
    }, plugins=[Cells])
    assert np.array_equal(res.hist("c").values(), [500, 500, 500, 500])
