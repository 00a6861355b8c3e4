"""Sources ``raw`` (muone raw ROOT files) and ``daq_stubs`` (real test-run stub trees).

Every input file is written here with uproot (no external data).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import awkward as ak
import muone
import numpy as np
import pytest
import uproot
from muone import rootio
from muone.errors import InputError
from muone.plugins.daq_stubs import DaqStubsSource, group_stubs
from muone.plugins.raw import RawSource, file_schema, write_raw_file
from muone.processor import Chunk, Context

ALL = ["run", "event", "bx", "raw", "mc"]


def read_job(res_or_dir) -> ak.Array:
    """Every saved event of a job, in chunk order."""
    out = Path(getattr(res_or_dir, "output_dir", res_or_dir))
    manifest = json.loads((out / "manifest.json").read_text())
    parts = []
    for entry in manifest["chunks"]:
        schema = entry.get("events_schema") or manifest["events_schema"]
        parts += [rootio.read_events(out / f, schema) for f in entry["files"] if f.startswith("events/")]
    return ak.concatenate(parts)


def run_source(cls, chunk_size=1000, events=None, **params) -> list[ak.Array]:
    """The chunks a source produces (setup, plan, read), without a job."""
    source = cls(cls.Params(**params))
    ctx = Context(job=SimpleNamespace(chunk_size=chunk_size, events=events, seed=1), geometry={}, output_dir=Path("."))
    source.setup(ctx)
    return [source.read(spec, Chunk(spec, 1, source.instance)) for spec in source.plan(ctx)]


def assert_same(a: ak.Array, b: ak.Array) -> None:
    assert str(ak.type(a)) == str(ak.type(b))
    assert ak.fields(a) == ak.fields(b)
    assert ak.array_equal(a, b, equal_nan=True, check_parameters=True)


@pytest.fixture(scope="module")
def sim_job(tmp_path_factory) -> muone.Results:
    """Elastic events through the calorimeter simulation, raw and mc saved."""
    out = tmp_path_factory.mktemp("rawjob") / "sim"
    return muone.run({
        "job": {"events": 3000, "chunk_size": 1200, "seed": 3, "output_dir": str(out), "save": ALL},
        "geometry": {"preset": "pilot2023"},
        "source": {"plugin": "elastic"},
        "processors": [{"plugin": "sim_calorimeter"}],
    })


# --- raw -----------------------------------------------------------------------------------


def test_round_trip_through_a_job_directory(sim_job, tmp_path):
    original = read_job(sim_job)
    again = muone.run({
        "job": {"chunk_size": 700, "output_dir": str(tmp_path / "again"), "save": ALL},
        "source": {"plugin": "raw", "input": str(sim_job.output_dir), "collections": ALL},
    })
    assert again.report["events"]["in"] == 3000
    copy = read_job(again)
    assert_same(copy, original)
    assert ak.all(copy.mc.particles.pt >= 0)  # vector behaviours restored
    # the default collections leave mc out
    chunks = run_source(RawSource, chunk_size=5000, input=str(sim_job.output_dir))
    assert [len(c) for c in chunks] == [1200, 1200, 600]
    assert ak.fields(chunks[0]) == ["run", "event", "bx", "raw"]
    assert_same(ak.concatenate(chunks).raw, original.raw)


def test_round_trip_through_bare_files(sim_job, tmp_path):
    """Files without a manifest: the schema rebuilt from the branch names is the job's."""
    original = read_job(sim_job)
    bare = tmp_path / "bare"
    bare.mkdir()
    for f in sorted((sim_job.output_dir / "events").glob("*.root")):
        shutil.copy(f, bare / f.name)
    schema, entries, origin = file_schema(bare / "chunk-000000.root")
    assert origin == "branches" and entries == 1200
    assert schema["collections"] == sim_job.manifest["events_schema"]["collections"]
    assert schema["branches"] == sim_job.manifest["events_schema"]["branches"]
    chunks = run_source(RawSource, chunk_size=1000, files=str(bare / "*.root"), collections=ALL)
    assert [len(c) for c in chunks] == [1000, 200, 1000, 200, 600]
    assert_same(ak.concatenate(chunks), original)
    # files still inside the job directory take the schema from its manifest
    assert file_schema(sim_job.output_dir / "events" / "chunk-000001.root")[2] == "manifest"
    # job.events limits the total across files
    chunks = run_source(RawSource, chunk_size=1000, events=1500, files=[str(bare / "chunk-000001.root"), str(bare / "chunk-000000.root")])
    assert [len(c) for c in chunks] == [1000, 200, 300]
    assert np.array_equal(ak.to_numpy(ak.concatenate(chunks).event), np.r_[1200:2400, 0:300])


def raw_events(n: int, seed: int = 0) -> ak.Array:
    rng = np.random.default_rng(seed)
    counts = rng.poisson(3.0, n)
    strips = ak.unflatten(rng.integers(0, 2**31, counts.sum()).astype(np.uint32), counts)
    calo = rng.integers(0, 4000, (n, 25)).astype(np.int32)
    raw = ak.zip({"strips": strips, "calo": ak.Array(calo)}, depth_limit=1)
    return ak.zip({"run": np.full(n, 7, np.int64), "event": np.arange(100, 100 + n, dtype=np.int64), "bx": np.arange(n, dtype=np.int64) * 3, "raw": raw}, depth_limit=1)


def test_strips_and_calo_layout_from_branches(tmp_path):
    events = raw_events(250)
    rootio.write_events(tmp_path / "a.root", events, ["run", "event", "bx", "raw"])
    _, _, origin = file_schema(tmp_path / "a.root")
    assert origin == "branches"
    (got,) = run_source(RawSource, files=[str(tmp_path / "a.root")])
    assert_same(got, events)
    assert str(ak.type(got.raw.strips)) == "250 * var * uint32"


def test_files_with_an_embedded_schema_and_made_up_identifiers(tmp_path):
    events = raw_events(40)
    schema = write_raw_file(tmp_path / "e.root", events, ["raw"], tree="calo")
    with uproot.open(tmp_path / "e.root") as f:
        assert json.loads(str(f["muone_schema"])) == schema
    assert file_schema(tmp_path / "e.root", "calo")[2] == "embedded"
    (got,) = run_source(RawSource, files=str(tmp_path / "e.root"), tree="calo", run=12)
    assert_same(got.raw, events.raw)
    assert ak.all(got.run == 12) and np.array_equal(ak.to_numpy(got.event), np.arange(40)) and ak.all(got.bx == got.event)


def test_raw_source_bad_inputs(tmp_path, sim_job):
    rootio.write_events(tmp_path / "norad.root", raw_events(5), ["run", "event"])
    (tmp_path / "junk.root").write_bytes(b"not a root file")
    cases = [
        ({"files": [str(tmp_path / "missing.root")]}, "missing.root: no such file"),
        ({"files": str(tmp_path / "nothing*.root")}, "no file matches"),
        ({"files": [str(tmp_path / "junk.root")]}, "junk.root: not a readable ROOT file"),
        ({"files": [str(tmp_path / "norad.root")]}, "no raw collection"),
        ({"files": [str(tmp_path / "norad.root")], "tree": "stubs"}, "no tree 'stubs'"),
        ({"input": str(tmp_path)}, "no manifest.json"),
        ({"input": str(sim_job.output_dir), "files": ["x.root"]}, "not both"),
        ({}, "give input"),
    ]
    for params, message in cases:
        with pytest.raises(InputError, match=message):
            run_source(RawSource, **params)
    # through a steering: a steering error naming the file, exit before any event
    with pytest.raises(muone.SteeringError) as info:
        muone.run({"job": {"output_dir": str(tmp_path / "o")}, "source": {"plugin": "raw", "files": [str(tmp_path / "norad.root")], "collections": ["raw", "mc"]}})
    assert "source.files" in str(info.value) and "norad.root" in str(info.value) and "mc" in str(info.value)
    with pytest.raises(muone.SteeringError, match="collections"):
        muone.run({"job": {"output_dir": str(tmp_path / "o2")}, "source": {"plugin": "raw", "input": str(sim_job.output_dir), "collections": ["tracks"]}})


# --- daq_stubs -----------------------------------------------------------------------------


def write_stubs(path: Path, superid, bx, link=None, localx=None, localy=None, bend=None, tree="cbmsim", drop=()) -> None:
    n = len(superid)
    data = {
        "Bx": np.asarray(bx, np.uint16),
        "Link": np.asarray(link if link is not None else np.arange(n) % 6, np.uint16),
        "LocalX": np.asarray(localx if localx is not None else np.arange(n) * 2.5, np.float32),
        "LocalY": np.asarray(localy if localy is not None else np.arange(n) % 2, np.uint8),
        "Bend": np.asarray(bend if bend is not None else (np.arange(n) % 7) - 3, np.float32),
        "SuperID": np.asarray(superid, np.uint32),
    }
    with uproot.recreate(path) as f:
        f.mktree(tree, {k: v for k, v in data.items() if k not in drop})


def test_daq_stubs_event_building(tmp_path):
    #          stub: 0  1  2  3  4  5  6  7
    superid = np.array([1, 1, 1, 2, 1, 1, 0, 2])
    bx = np.array([5, 5, 6, 5, 5, 6, 9, 5])
    write_stubs(tmp_path / "a.root", superid, bx, link=[0, 1, 2, 3, 4, 5, 9, 1])
    (ev,) = run_source(DaqStubsSource, files=[str(tmp_path / "a.root")], link_map={0: 10, 1: 11, 2: 12, 3: 13, 4: 14, 5: 15}, run=4)
    # events in order of their first stub: (1,5) (1,6) (2,5) (0,9); stubs in file order
    assert ak.to_list(ak.num(ev.raw.stubs)) == [3, 2, 2, 1]
    assert ak.to_list(ev.raw.stubs.position) == [[0.0, 2.5, 10.0], [5.0, 12.5], [7.5, 17.5], [15.0]]
    assert ak.to_list(ev.raw.stubs.module) == [[10, 11, 14], [12, 15], [13, 11], [-1]]  # link 9 unmapped
    assert ak.to_list(ev.raw.stubs.superid) == [[1, 1, 1], [1, 1], [2, 2], [0]]
    assert ak.to_list(ev.bx) == [5, 6, 5, 9] and ak.all(ev.raw.stubs.bx == ev.bx)
    assert ak.to_list(ev.raw.stubs.sensor_half) == [[0, 1, 0], [0, 1], [1, 1], [0]]
    assert ak.to_list(ev.raw.stubs.bend) == [[-3, -2, 1], [-1, 2], [0, -3], [3]]
    assert ak.to_list(ev.event) == [0, 1, 2, 3] and ak.all(ev.run == 4)
    assert str(ak.type(ev.raw.stubs)) == "4 * var * {module: int32, sensor_half: int8, position: float64, bend: float64, bx: int64, superid: int64}"
    # strip units are converted to half-strips
    (ev2,) = run_source(DaqStubsSource, files=str(tmp_path / "a.root"), localx_units="strips", bend_units="strips")
    assert ak.to_list(ev2.raw.stubs.position[0]) == [0.0, 5.0, 20.0] and ak.to_list(ev2.raw.stubs.bend[0]) == [-6, -4, 2]
    assert ak.to_list(ev2.raw.stubs.module[0]) == [0, 1, 4]  # identity without link_map


def test_grouping_matches_a_reference_on_random_stubs():
    rng = np.random.default_rng(9)
    superid = rng.integers(0, 30, 5000)
    bx = rng.integers(0, 20, 5000)
    order, counts, first = group_stubs(superid, bx)
    reference: dict[tuple[int, int], list[int]] = {}
    for i, key in enumerate(zip(superid.tolist(), bx.tolist())):
        reference.setdefault(key, []).append(i)  # dicts keep first-insertion order
    expected = list(reference.values())
    assert counts.tolist() == [len(v) for v in expected]
    assert order.tolist() == [i for v in expected for i in v]
    assert first.tolist() == [v[0] for v in expected]


def test_daq_stubs_job_chunks_and_files(tmp_path):
    rng = np.random.default_rng(2)
    per_file = []
    for name, n in (("r1.root", 400), ("r2.root", 300)):
        sid = np.repeat(np.arange(n // 4), 4)
        bx = rng.integers(0, 2, n)
        write_stubs(tmp_path / name, sid, bx)
        per_file.append(len(set(zip(sid.tolist(), bx.tolist()))))
    expected = sum(per_file)
    res = muone.run({
        "job": {"chunk_size": 40, "output_dir": str(tmp_path / "job"), "save": ["run", "event", "bx", "raw"]},
        "source": {"plugin": "daq_stubs", "files": str(tmp_path / "r*.root"), "link_map": {"0": 6, "1": 7, "2": 8, "3": 9, "4": 10, "5": 11}},
    })
    ev = read_job(res)
    assert len(ev) == res.report["events"]["in"] == expected
    assert res.manifest["chunks_done"] == sum(-(-n // 40) for n in per_file)  # chunks never span files
    assert np.array_equal(ak.to_numpy(ev.event), np.arange(len(ev)))
    assert ak.sum(ak.num(ev.raw.stubs)) == 700 and ak.all(ev.raw.stubs.module >= 6)
    # every event holds stubs of a single (superid, bx)
    s = ev.raw.stubs
    assert ak.all(ak.min(s.superid, axis=1) == ak.max(s.superid, axis=1)) and ak.all(ak.min(s.bx, axis=1) == ak.max(s.bx, axis=1))
    # job.events limits the number of events
    chunks = run_source(DaqStubsSource, chunk_size=40, events=50, files=str(tmp_path / "r*.root"))
    assert [len(c) for c in chunks] == [40, 10]


def test_daq_stubs_bad_inputs(tmp_path):
    write_stubs(tmp_path / "good.root", [1, 1], [2, 2])
    write_stubs(tmp_path / "nobend.root", [1, 1], [2, 2], drop=("Bend",))
    write_stubs(tmp_path / "othertree.root", [1, 1], [2, 2], tree="stubs")
    with uproot.recreate(tmp_path / "vector.root") as f:
        f.mktree("cbmsim", {"Bx": ak.Array([[1, 2]]), "Link": np.zeros(1, np.int32), "LocalX": np.zeros(1), "LocalY": np.zeros(1), "Bend": np.zeros(1), "SuperID": np.zeros(1)})
    cases = [
        ({"files": [str(tmp_path / "missing.root")]}, "missing.root: no such file"),
        ({"files": [str(tmp_path / "none*.root")]}, "no file matches"),
        ({"files": [str(tmp_path / "nobend.root")]}, "nobend.root: tree 'cbmsim' has no branch 'Bend'"),
        ({"files": [str(tmp_path / "othertree.root")]}, r"othertree.root: no tree 'cbmsim' \(found: stubs\)"),
        ({"files": [str(tmp_path / "good.root")], "tree": "events"}, "good.root: no tree 'events'"),
        ({"files": [str(tmp_path / "vector.root")]}, "branch 'Bx' .* is not one number per entry"),
    ]
    for params, message in cases:
        with pytest.raises(InputError, match=message):
            run_source(DaqStubsSource, **params)
    (ev,) = run_source(DaqStubsSource, files=[str(tmp_path / "othertree.root")], tree="stubs")
    assert len(ev) == 1
    with pytest.raises(muone.SteeringError) as info:
        muone.run({"job": {"output_dir": str(tmp_path / "o")}, "source": {"plugin": "daq_stubs", "files": [str(tmp_path / "nobend.root")], "localx_units": "mm"}})
    assert "source.localx_units" in str(info.value)
    with pytest.raises(muone.SteeringError, match="nobend.root: tree 'cbmsim' has no branch 'Bend'"):
        muone.run({"job": {"output_dir": str(tmp_path / "o2")}, "source": {"plugin": "daq_stubs", "files": [str(tmp_path / "nobend.root")]}})
