"""The raw-word decoder (processor ``unpack``, kernel muone.reconstruction.unpack)."""

from __future__ import annotations

from pathlib import Path

import awkward as ak
import muone
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from muone import rawformat as rf
from muone.plugins.unpack import Unpack, unpack
from muone.processor import Chunk, ChunkSpec, Context
from muone.reconstruction.unpack import (
    FLAG_DUPLICATE,
    FLAG_OUT_OF_RANGE,
    FLAG_RESERVED,
    FLAG_UNKNOWN_MODULE,
)

PILOT = {"preset": "pilot2023"}


def reference_unpack(events: list[list[int]], n_strips: list[int], n_rows: list[int]) -> tuple[list[list[tuple]], list[int]]:
    """Pure-Python decoder following the documented rules: per event a list of
    (module, sensor, row, strip, flags) and the number of flagged words."""
    out, bad = [], []
    for words in events:
        seen: set[int] = set()
        digis = []
        for w in words:
            module, sensor, row, strip = (w >> 12) & 0xFFF, (w >> 11) & 1, (w >> 10) & 1, w & 0x3FF
            flags = 0
            if w >> 24:
                flags |= FLAG_RESERVED
            if module >= len(n_strips):
                flags |= FLAG_UNKNOWN_MODULE
            elif strip >= n_strips[module] or row >= n_rows[module]:
                flags |= FLAG_OUT_OF_RANGE
            if w in seen:
                flags |= FLAG_DUPLICATE
            seen.add(w)
            digis.append((module, sensor, row, strip, flags))
        out.append(digis)
        bad.append(sum(1 for d in digis if d[4]))
    return out, bad


def run_kernel(events: list[list[int]], n_strips, n_rows):
    counts = np.array([len(e) for e in events], np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    words = np.array([w for e in events for w in e], np.uint32)
    return unpack(words, offsets, np.asarray(n_strips, np.int32), np.asarray(n_rows, np.int32)), offsets


def check_against_reference(events, n_strips, n_rows):
    (digis, n_bad), _ = run_kernel(events, n_strips, n_rows)
    ref, ref_bad = reference_unpack(events, list(n_strips), list(n_rows))
    assert n_bad.dtype == np.int32 and list(n_bad) == ref_bad
    flat = [d for e in ref for d in e]
    for k, name in enumerate(("module", "sensor", "row", "strip", "flags")):
        assert list(digis[name]) == [d[k] for d in flat], name
    # good words round-trip through the packer
    good = digis["flags"] == 0
    words = np.array([w for e in events for w in e], np.uint32)
    repacked = rf.pack_strip_words(digis["module"][good], digis["sensor"][good], digis["row"][good], digis["strip"][good])
    np.testing.assert_array_equal(repacked, words[good])
    return digis, n_bad


# ---- fuzzing ---------------------------------------------------------------------------------

N_MODULES = 18
valid_word = st.builds(lambda m, s, r, k: int(rf.pack_strip_words(m, s, r, k)), st.integers(0, N_MODULES - 1),
                       st.integers(0, 1), st.integers(0, 1), st.integers(0, 1015))
edge_word = st.builds(lambda m, s, r, k, res: int(rf.pack_strip_words(m, s, r, k)) | (res << 24),
                      st.sampled_from([0, N_MODULES - 1, N_MODULES, 4095]), st.integers(0, 1), st.integers(0, 1),
                      st.sampled_from([0, 1014, 1015, 1016, 1023]), st.sampled_from([0, 0, 0, 1, 0x80, 0xFF]))
any_word = st.integers(0, 2**32 - 1)
word = st.one_of(valid_word, edge_word, any_word)


@st.composite
def event_lists(draw):
    """Events of random words, some with repeats, some sorted as sim_tracker writes them."""
    events = []
    for _ in range(draw(st.integers(0, 6))):
        words = draw(st.lists(word, max_size=30))
        if words and draw(st.booleans()):
            words += draw(st.lists(st.sampled_from(words), max_size=5))  # repeats
        if draw(st.booleans()):
            words.sort()
        else:
            words = draw(st.permutations(words))
        events.append(list(words))
    return events


@given(event_lists())
@settings(max_examples=150, deadline=None)
def test_fuzz_pilot_geometry(events):
    check_against_reference(events, [1016] * N_MODULES, [2] * N_MODULES)


@given(event_lists(), st.lists(st.tuples(st.integers(1, 1024), st.integers(1, 2)), min_size=0, max_size=25))
@settings(max_examples=100, deadline=None)
def test_fuzz_random_detector_tables(events, modules):
    """Modules with other strip and row counts (and detectors with no or more modules)."""
    n_strips = [m[0] for m in modules]
    n_rows = [m[1] for m in modules]
    check_against_reference(events, n_strips, n_rows)


def test_flags_by_hand():
    good = int(rf.pack_strip_words(3, 1, 0, 500))
    events = [
        [good, good | (1 << 24), int(rf.pack_strip_words(18, 0, 0, 0)), int(rf.pack_strip_words(2, 0, 1, 1016)), good],
        [],
        [5, 3, 5, 5, 3],  # unsorted repeats: the first occurrence stays good
    ]
    digis, n_bad = check_against_reference(events, [1016] * 18, [2] * 18)
    assert list(digis["flags"][:5]) == [0, FLAG_RESERVED, FLAG_UNKNOWN_MODULE, FLAG_OUT_OF_RANGE, FLAG_DUPLICATE]
    assert list(digis["flags"][5:]) == [0, 0, FLAG_DUPLICATE, FLAG_DUPLICATE, FLAG_DUPLICATE]
    assert list(n_bad) == [4, 0, 3]
    # a row beyond a one-row module
    digis, _ = check_against_reference([[int(rf.pack_strip_words(0, 0, 1, 3))]], [1016], [1])
    assert digis["flags"][0] == FLAG_OUT_OF_RANGE


# ---- the processor --------------------------------------------------------------------------


def test_processor_record_layout_and_bad_words_never_stop():
    words = [[int(rf.pack_strip_words(0, 0, 0, 7)), 0xFFFFFFFF], [], [int(rf.pack_strip_words(17, 1, 1, 1015))] * 2]
    events = ak.zip({"raw": ak.zip({"strips": ak.values_astype(ak.Array(words), np.uint32)}, depth_limit=1)}, depth_limit=1)
    proc = Unpack(Unpack.Params())
    proc.setup(Context(job=None, geometry=PILOT, output_dir=Path(".")))
    out = proc.process(events, Chunk(ChunkSpec(0, 3), 1, "unpack"))
    digis = out.collections["digis"]
    assert str(digis.type) == "3 * var * {module: int32, sensor: int8, row: int8, strip: int16, flags: uint8}"
    assert digis.tolist()[0] == [{"module": 0, "sensor": 0, "row": 0, "strip": 7, "flags": 0},
                                 {"module": 4095, "sensor": 1, "row": 1, "strip": 1023, "flags": FLAG_RESERVED | FLAG_UNKNOWN_MODULE}]
    assert list(out.collections["digis_bad"]) == [1, 0, 1] and out.collections["digis_bad"].dtype == np.int32
    assert out.results == {"words": 4, "flagged_words": 2}


def test_job_on_simulated_events(tmp_path):
    res = muone.run({
        "job": {"events": 2000, "chunk_size": 1000, "output_dir": str(tmp_path / "job"), "save": ["raw", "digis", "digis_bad"]},
        "geometry": PILOT,
        "source": {"plugin": "elastic"},
        "processors": [{"plugin": "sim_tracker", "sim_hits": False}, {"plugin": "unpack"}],
    })
    ev = res.events()
    assert ak.all(ev.digis_bad == 0) and ak.all(ev.digis.flags == 0)
    assert ak.all(ak.num(ev.digis) == ak.num(ev.raw.strips))
    d = ak.flatten(ev.digis)
    words = rf.pack_strip_words(ak.to_numpy(d.module), ak.to_numpy(d.sensor), ak.to_numpy(d.row), ak.to_numpy(d.strip))
    np.testing.assert_array_equal(words, ak.to_numpy(ak.flatten(ev.raw.strips)))
    assert res.merged["unpack"]["flagged_words"] == 0 and res.merged["unpack"]["words"] == len(words)


def test_reads_are_checked(tmp_path):
    with pytest.raises(muone.errors.SteeringError, match="raw.strips"):
        muone.run({"job": {"events": 10, "output_dir": str(tmp_path / "x")}, "geometry": PILOT,
                   "source": {"plugin": "elastic"}, "processors": [{"plugin": "unpack"}]})
