"""The raw strip word layout (muone.rawformat)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from muone import rawformat as rf
from numba import njit

fields = st.tuples(st.integers(0, 4095), st.integers(0, 1), st.integers(0, 1), st.integers(0, 1023))


@njit
def _roundtrip_scalar(module, sensor, row, strip):
    w = rf.pack_strip_word(module, sensor, row, strip)
    return w, rf.unpack_strip_word(w)


@given(st.lists(fields, min_size=0, max_size=50))
@settings(max_examples=200, deadline=None)
def test_roundtrip_vectorised_and_scalar(items):
    a = np.array(items, dtype=np.int64).reshape(-1, 4)
    words = rf.pack_strip_words(a[:, 0], a[:, 1], a[:, 2], a[:, 3])
    assert words.dtype == np.uint32 and words.shape == (len(a),)
    assert np.all(rf.reserved_bits(words) == 0)
    module, sensor, row, strip = rf.unpack_strip_words(words)
    for got, want in zip((module, sensor, row, strip), a.T):
        assert got.dtype == np.int32
        np.testing.assert_array_equal(got, want)
    for (m, s, r, k), w in zip(items, words):
        w2, back = _roundtrip_scalar(m, s, r, k)
        assert w2 == w and tuple(back) == (m, s, r, k)


def test_documented_bit_positions():
    assert rf.pack_strip_words(0, 0, 0, 1015)[()] == 1015
    assert rf.pack_strip_words(0, 0, 1, 0)[()] == 1 << 10
    assert rf.pack_strip_words(0, 1, 0, 0)[()] == 1 << 11
    assert rf.pack_strip_words(1, 0, 0, 0)[()] == 1 << 12
    assert rf.pack_strip_words(4095, 1, 1, 1023)[()] == 0x00FFFFFF
    # the order of the sorted words is module, sensor, row, strip
    w = rf.pack_strip_words([2, 1, 1, 1], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 5])
    assert list(np.argsort(w)) == [3, 2, 1, 0]


@pytest.mark.parametrize("bad", [(4096, 0, 0, 0), (-1, 0, 0, 0), (0, 2, 0, 0), (0, 0, 2, 0), (0, 0, 0, 1024)])
def test_pack_rejects_out_of_range(bad):
    with pytest.raises(ValueError, match="out of range"):
        rf.pack_strip_words(*bad)


def test_pack_rejects_floats():
    with pytest.raises(ValueError, match="integers"):
        rf.pack_strip_words(1.5, 0, 0, 0)


def test_valid_words_flags_impossible_ones():
    words = np.array([rf.pack_strip_words(1, 1, 1, 1015)[()], rf.pack_strip_words(1, 0, 0, 1016)[()],
                      rf.pack_strip_words(2, 0, 0, 3)[()], rf.pack_strip_words(0, 0, 0, 3)[()] | (1 << 24)], np.uint32)
    ok = rf.valid_strip_words(words, np.array([1016, 1016]), np.array([2, 2]))
    assert ok.tolist() == [True, False, False, False]
    assert rf.reserved_bits(words).tolist() == [0, 0, 0, 1]
    assert rf.valid_strip_words(words, np.zeros(0, int), np.zeros(0, int)).tolist() == [False] * 4
