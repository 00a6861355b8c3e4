"""Atomic outputs and deterministic merging."""

from __future__ import annotations

import os
import stat

import hist
import numpy as np
import pytest

from muone import outputs
from muone.cutflow import CutFlow
from muone.merge import merge_in_order, merge_nested


def test_atomic_write_replaces_only_when_complete(tmp_path):
    target = tmp_path / "sub" / "file.json"
    outputs.write_json(target, {"a": 1})
    assert outputs.read_json(target) == {"a": 1}

    def failing_writer(tmp):
        tmp.write_text("half written")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        outputs.write_with(target, failing_writer)
    assert outputs.read_json(target) == {"a": 1}, "the old complete file must survive"
    assert [p.name for p in target.parent.iterdir()] == ["file.json"], "no temporary file left"


def test_output_files_get_normal_permissions(tmp_path):
    target = tmp_path / "x.txt"
    outputs.write_text(target, "x")
    mode = stat.S_IMODE(os.stat(target).st_mode)
    assert mode == outputs.FILE_MODE and mode & stat.S_IRGRP


def test_corrupt_inputs_name_the_file(tmp_path):
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(b"\x80\x05garbage")
    with pytest.raises(outputs.InputError, match="bad.pkl"):
        outputs.read_pickle(bad)
    with pytest.raises(outputs.InputError, match="missing.json: file not found"):
        outputs.read_json(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(outputs.InputError, match="bad.json"):
        outputs.read_json(tmp_path / "bad.json")


class Tagged:
    """Records the merge tree as a string."""

    def __init__(self, text):
        self.text = text

    def __add__(self, other):
        return Tagged(f"({self.text}+{other.text})")


def test_merge_tree_is_fixed_by_the_order():
    assert merge_in_order([]) is None
    assert merge_in_order([Tagged("0")]).text == "0"
    assert merge_in_order([Tagged(str(i)) for i in range(4)]).text == "((0+1)+(2+3))"
    assert merge_in_order([Tagged(str(i)) for i in range(5)]).text == "(((0+1)+(2+3))+4)"
    assert merge_in_order([Tagged(str(i)) for i in range(6)]).text == "(((0+1)+(2+3))+(4+5))"


def test_merge_nested_keeps_keys_present_on_one_side():
    h = hist.Hist.new.Reg(4, 0, 4).Weight()
    h.fill([1.5], weight=[2.0])
    a = {"p": {"h": h, "n": 1}}
    b = {"p": {"n": 2}, "q": {"c": CutFlow(["all"], [1.0], [1.0], [1])}}
    merged = merge_nested([a, b])
    assert merged["p"]["n"] == 3
    assert np.allclose(merged["p"]["h"].values(), [0, 2, 0, 0])
    assert merged["q"]["c"].count == [1]


def test_cutflow_merge_and_mismatch():
    a, b = CutFlow(), CutFlow()
    for flow, w in ((a, 1.0), (b, 2.0)):
        flow.fill("all", np.array([True, True]), np.array([w, w]))
        flow.fill("cut", np.array([True, False]), np.array([w, w]))
    total = a + b
    assert total.sumw == [6.0, 3.0] and total.count == [4, 2] and total.sumw2 == [10.0, 5.0]
    assert total.efficiencies() == [1.0, 0.5]
    with pytest.raises(ValueError, match="different cuts"):
        a + CutFlow(["other"], [0.0], [0.0], [0])
