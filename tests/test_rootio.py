"""Tests of muone.rootio: event collections to ROOT TTrees and back."""

from __future__ import annotations

import json
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot
import vector

from muone.errors import InputError, MuoneError
from muone.rootio import num_entries, read_events, write_events

vector.register_awkward()

COLLECTIONS = ["run", "event", "bx", "mc", "vertices", "sel", "cov"]


def make_events(n: int = 6, seed: int = 1) -> ak.Array:
    """A realistic event record (DESIGN.md "Event record") with ``n`` events."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 4, n)
    total = int(counts.sum())

    def jagged(values: np.ndarray) -> ak.Array:
        return ak.unflatten(values, counts)

    particles = ak.zip(
        {
            "pdg": jagged(rng.choice([11, -11, 13, -13, 22], total).astype(np.int32)),
            "px": jagged(rng.normal(0, 0.1, total)),
            "py": jagged(rng.normal(0, 0.1, total)),
            "pz": jagged(rng.uniform(1, 150, total)),
            "E": jagged(rng.uniform(150, 160, total)),
            "vx": jagged(rng.normal(size=total)),
            "vy": jagged(rng.normal(size=total)),
            "vz": jagged(rng.uniform(0, 1000, total)),
            "origin": jagged(rng.integers(0, 3, total).astype(np.int8)),
        },
        with_name="Momentum4D",
    )
    mc = ak.zip(
        {
            "process": rng.integers(0, 4, n).astype(np.int32),
            "target": rng.integers(0, 2, n).astype(np.int32),
            "vertex": ak.zip(
                {"x": rng.normal(size=n), "y": rng.normal(size=n), "z": rng.uniform(0, 1000, n)},
                with_name="Vector3D",
            ),
            "t": -rng.uniform(0.001, 0.1, n),
            "t_mu": -rng.uniform(0.001, 0.1, n),
            "weight": rng.normal(1, 0.1, n),
            "beam": ak.zip(
                {
                    "px": rng.normal(0, 0.01, n),
                    "py": rng.normal(0, 0.01, n),
                    "pz": rng.normal(160, 1, n),
                    "E": rng.normal(160, 1, n),
                },
                with_name="Momentum4D",
            ),
            "particles": particles,
        },
        depth_limit=1,
    )
    nv = rng.integers(0, 3, n)
    nvt = int(nv.sum())
    vertices = ak.zip(
        {
            "x": ak.unflatten(rng.normal(size=nvt), nv),
            "z": ak.unflatten(rng.uniform(0, 1000, nvt), nv),
            "chi2": ak.unflatten(rng.chisquare(3, nvt), nv),
            "ndf": ak.unflatten(rng.integers(1, 5, nvt).astype(np.int32), nv),
            "theta_mu": ak.unflatten(rng.uniform(0, 0.005, nvt), nv),
        }
    )
    sel = ak.zip({"elastic": rng.random(n) > 0.5, "displaced": rng.random(n) > 0.5})
    return ak.zip(
        {
            "run": np.full(n, 7, dtype=np.int64),
            "event": np.arange(n, dtype=np.int64),
            "bx": rng.integers(0, 3564, n).astype(np.int32),
            "mc": mc,
            "vertices": vertices,
            "sel": sel,
            "cov": rng.normal(size=(n, 3, 3)),
        },
        depth_limit=1,
    )


def assert_same(a: ak.Array, b: ak.Array) -> None:
    """Same values, types and record names."""
    assert str(a.type) == str(b.type)
    assert a.fields == b.fields
    assert ak.to_list(a) == ak.to_list(b)
    assert ak.array_equal(a, b)


@pytest.fixture
def events() -> ak.Array:
    return make_events()


def test_round_trip(tmp_path: Path, events: ak.Array) -> None:
    path = tmp_path / "chunk.root"
    schema = write_events(path, events, COLLECTIONS)
    json.loads(json.dumps(schema))  # JSON-serialisable
    back = read_events(path, json.loads(json.dumps(schema)))
    assert_same(back, events[COLLECTIONS])
    assert num_entries(path) == len(events)
    # vector behaviours are restored
    assert np.allclose(ak.to_numpy(back.mc.beam.pt), ak.to_numpy(events.mc.beam.pt))
    assert ak.to_list(back.mc.particles.theta) == ak.to_list(events.mc.particles.theta)
    rho = np.hypot(events.mc.vertex.x, events.mc.vertex.y)
    assert np.allclose(ak.to_numpy(back.mc.vertex.rho), rho)
    assert back.mc.particles.origin.type.content.content.primitive == "int8"


def test_schema_describes_structure(tmp_path: Path, events: ak.Array) -> None:
    schema = write_events(tmp_path / "c.root", events, COLLECTIONS)
    assert schema["format"] == "muone.rootio" and schema["version"] == 1
    assert [c["name"] for c in schema["collections"]] == COLLECTIONS
    mc = schema["collections"][3]["node"]
    fields = {f["name"]: f["node"] for f in mc["fields"]}
    assert fields["beam"]["record"] == "Momentum4D"
    assert fields["vertex"]["record"] == "Vector3D"
    assert fields["particles"]["kind"] == "list"
    assert fields["particles"]["counts"] == "nmc_particles"
    groups = {g["name"]: g for g in schema["groups"]}
    assert groups["mc_particles"]["counter"] == "nmc_particles"
    assert "mc_particles_px" in groups["mc_particles"]["branches"]
    # the schema depends on the types only: an empty chunk gives the same one
    assert write_events(tmp_path / "e.root", events[:0], COLLECTIONS) == schema


def test_plain_uproot_sees_branches(tmp_path: Path, events: ak.Array) -> None:
    path = tmp_path / "c.root"
    schema = write_events(path, events, COLLECTIONS)
    with uproot.open(path) as f:
        tree = f["events"]
        keys = set(tree.keys())
        assert {"run", "mc_t", "mc_beam_E", "mc_vertex_z", "sel_elastic", "cov"} <= keys
        assert {"nmc_particles", "mc_particles_px", "mc_particles_pdg", "nvertices"} <= keys
        assert keys == set(schema["branches"])
        px = tree["mc_particles_px"].array()
        assert ak.to_list(px) == ak.to_list(events.mc.particles.px)
        assert tree["nmc_particles"].array().tolist() == ak.num(events.mc.particles).tolist()
        assert tree["cov"].array(library="np").shape == (len(events), 3, 3)


def test_empty_chunk(tmp_path: Path, events: ak.Array) -> None:
    path = tmp_path / "empty.root"
    schema = write_events(path, events[:0], COLLECTIONS)
    assert num_entries(path) == 0
    back = read_events(path, schema)
    assert len(back) == 0
    assert_same(back, events[COLLECTIONS][:0])


def test_partial_range_and_subset(tmp_path: Path, events: ak.Array) -> None:
    path = tmp_path / "c.root"
    schema = write_events(path, events, COLLECTIONS)
    part = read_events(path, schema, collections=["sel", "mc"], entry_start=2, entry_stop=5)
    assert part.fields == ["sel", "mc"]
    assert_same(part, events[["sel", "mc"]][2:5])
    assert ak.to_list(read_events(path, schema, entry_start=4).event) == [4, 5]
    with pytest.raises(InputError, match="'nope'.*available: run"):
        read_events(path, schema, collections=["nope"])


def test_other_structures(tmp_path: Path) -> None:
    """Options, nested lists, lists in records in lists, tuples, regular arrays, unsigned."""
    first = ak.firsts(make_events().mc.particles)
    n = len(first)
    events = ak.zip(
        {
            "opt": ak.Array([1.5, None, 3.0, None, 5.0, 6.0]),
            "first": first,  # ?Momentum4D
            "hits": ak.Array([[[1.0, 2.0], []], [], [[3.0]], [[], []], [], [[4.0]]]),
            "tracks": ak.Array(
                [[{"x": 1.0, "stubs": [1, 2]}], [], [{"x": 2.0, "stubs": []}, None], [], [], []]
            ),
            "maybe": ak.Array([[1, None], [], None, [2], [], [None]]),
            "pair": ak.Array([(i, float(i) / 2) for i in range(n)]),
            "reg": ak.to_regular(ak.Array([[[i], [i, i]] for i in range(n)]), axis=1),
            "u": np.arange(n, dtype=np.uint16),
            "flag": ak.Array([[True, False]] * n),
        },
        depth_limit=1,
    )
    path = tmp_path / "o.root"
    schema = write_events(path, events, events.fields)
    back = read_events(path, schema)
    assert_same(back, events)
    assert ak.to_list(back.first.pt) == ak.to_list(first.pt)
    with uproot.open(path) as f:  # documented fill values where None
        assert np.isnan(f["events"]["opt"].array(library="np")[1])
        assert not f["events"]["opt_valid"].array(library="np")[1]


def test_unsupported_structures(tmp_path: Path) -> None:
    base = {"run": np.arange(2)}
    bad = {
        "name": ak.Array(["a", "b"]),
        "mixed": ak.Array([1, "x"]),
        "unknown": ak.Array([[], []]),
        "none": ak.Array([None, None]),
    }
    for key, value in bad.items():
        events = ak.zip({**base, key: value}, depth_limit=1)
        with pytest.raises(MuoneError, match=f"collection '{key}' .*type") as info:
            write_events(tmp_path / "u.root", events, ["run", key])
        assert not isinstance(info.value, InputError)
        assert not (tmp_path / "u.root").exists()
    events = ak.zip(base, depth_limit=1)
    with pytest.raises(MuoneError, match="'mc'.*available: run"):
        write_events(tmp_path / "u.root", events, ["run", "mc"])
    assert list(tmp_path.iterdir()) == []


def test_missing_garbage_truncated(tmp_path: Path, events: ak.Array) -> None:
    path = tmp_path / "c.root"
    schema = write_events(path, events, COLLECTIONS)
    missing = tmp_path / "missing.root"
    with pytest.raises(InputError, match="missing.root: no such file"):
        read_events(missing, schema)
    with pytest.raises(InputError, match="missing.root"):
        num_entries(missing)

    garbage = tmp_path / "garbage.root"
    garbage.write_bytes(b"this is not a ROOT file" * 100)
    with pytest.raises(InputError, match="garbage.root: not a readable ROOT file"):
        read_events(garbage, schema)
    with pytest.raises(InputError, match="garbage.root"):
        num_entries(garbage)

    data = path.read_bytes()
    for size in (len(data) // 2, 200, 10):
        truncated = tmp_path / f"truncated{size}.root"
        truncated.write_bytes(data[:size])
        with pytest.raises(InputError, match=f"truncated{size}.root"):
            read_events(truncated, schema)


def test_missing_tree_and_branch(tmp_path: Path, events: ak.Array) -> None:
    path = tmp_path / "c.root"
    schema = write_events(path, events, COLLECTIONS)
    with pytest.raises(InputError, match="no tree 'other'.*found: events"):
        read_events(path, schema, tree="other")
    with pytest.raises(InputError, match="no tree 'other'"):
        num_entries(path, tree="other")
    other = tmp_path / "other.root"
    schema_run = write_events(other, events, ["run"])
    message = "other.root: tree 'events' has no branch 'event' .*collection 'event'"
    with pytest.raises(InputError, match=message):
        read_events(other, schema)
    assert_same(read_events(other, schema_run), events[["run"]])
    with pytest.raises(InputError, match="schema"):
        read_events(path, {"format": "something else"})


def test_atomic_write(tmp_path: Path, events: ak.Array, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "c.root"
    write_events(path, events, COLLECTIONS)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.root"]
    before = path.read_bytes()

    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(uproot.writing.writable.WritableTree, "extend", explode)
    with pytest.raises(RuntimeError, match="disk on fire"):
        write_events(path, events[:2], ["run"])
    assert path.read_bytes() == before  # the old file is untouched
    new = tmp_path / "new.root"
    with pytest.raises(RuntimeError):
        write_events(new, events, COLLECTIONS)
    assert not new.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.root"]  # no temporary left


def test_unwritable_path(tmp_path: Path, events: ak.Array) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(MuoneError, match="cannot write"):
        write_events(blocker / "c.root", events, ["run"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]
