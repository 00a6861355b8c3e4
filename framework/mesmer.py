"""Read MESMER plain-text event files (storage format version 2) into flat numpy arrays.

MESMER (github cm-cc/mesmer) is the NLO QED generator for mu e -> mu e (gamma) that the MUonE
collaboration uses. Its event files are plain ASCII, often xz-compressed:

- a ``<header>`` block of labelled values (sample tag, version, number of events, masses, cuts,
  normalisation cross section ``wnorm`` in microbarn...), parsed *by label*: a value may sit on the
  label line (``Running mode: NLO``, ``Eemin = 1.0``, ``IR separator 2.0E-005``) or on the line
  after it (``Muon mass (GeV)`` / ``0.1056...``);
- one ``<event>`` ... ``</event>`` block per event: sample tag, event number, number n of
  final-state particles, three weights (full running, no running, leptonic running), two weights
  (w_LO, w_NLO), eleven vacuum-polarisation coefficients (when the header says so), the incoming
  muon ``pdg px py pz`` and n lines ``pdg px py pz`` (muon, electron, then pairs and photons).
  MESMER's writer also knows placeholder records for rejected points (n = 0, zero weights, the
  coefficient line always present, the beam and two zero-momentum lines); they are read as events
  without particles;
- a ``<footer>`` block: cross section and error, number of points, true maximum weight, counts of
  weights above the maximum and negative, sums of weights and squared weights.

Public API
----------
:func:`read_header`, :func:`read_footer`, :func:`iter_chunks`, :func:`read_events` and
:func:`read_mesmer` (header, all events and footer in one pass). Events come as
:class:`MesmerChunk`: one numpy array per quantity, final-state particles flat with ``offsets``.

Derived quantities
------------------
Energies come from the momenta and the header masses (photons massless), the beam energy too.
``t24`` (electron line) and ``t13`` (muon line) are computed without cancellation (see
:func:`_momentum_transfers`); with them and a one-loop Delta_alpha of e, mu, tau and top the
stored vacuum-polarisation coefficients reproduce MESMER's leptonic-running weight to ~1e-12.

Speed and exactness
-------------------
The event blocks are parsed by one numba kernel (compiled once, cached on disk) that walks the
bytes, checks the layout line by line and converts numbers. Number conversion is correctly rounded
(bit-identical to Python's ``float``): exact Clinger fast path where possible, otherwise a
double-double product with a proof of correct rounding, and Python's ``float`` for the rare tokens
where that proof fails. Decompression (the dominant cost for xz) runs in a background thread so
that it overlaps the parsing: the 60,000-event NLO sample (7.7 MB xz, 42 MB of text) takes
~0.85 s, of which 0.75 s is xz decompression. The first call in a process also pays numba's
start-up (~1 s, shared with any other numba code); the first call after installing or editing
this file compiles the kernel (~4 s, then cached in ``__pycache__``).

Errors
------
Every problem with a file (missing, not MESMER, corrupt compressed stream, truncated, malformed
line) raises :class:`muone.errors.InputError` whose message names the file, the 1-based line
number where that applies, and what was expected there.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import lzma
import math
import queue
import re
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO, Self

import numba as nb
import numpy as np

from muone.errors import InputError

__all__ = [
    "MesmerChunk",
    "MesmerFooter",
    "MesmerHeader",
    "MesmerSample",
    "iter_chunks",
    "read_events",
    "read_footer",
    "read_header",
    "read_mesmer",
]

#: bytes of decompressed text handed to the parser at a time
BLOCK_SIZE = 4 << 20
#: the header must end within this many bytes
MAX_HEADER_BYTES = 1 << 20
#: read_footer keeps at least this many bytes of the end of the text
FOOTER_KEEP = 1 << 16

PDG_ELECTRON = 11
PDG_MUON = 13
PDG_PHOTON = 22

N_VP = 11  # vacuum-polarisation coefficients c0..c10

_XZ_MAGIC = b"\xfd7zXZ\x00"
_GZ_MAGIC = b"\x1f\x8b"
_BZ2_MAGIC = b"BZh"


# --------------------------------------------------------------------------------------------
# data classes
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MesmerHeader:
    """The ``<header>`` block. Values absent from the file are ``None``.

    ``raw`` maps every label (as written, stripped) to its value string; ``sections`` maps the
    titles of ``Title:`` blocks (``MC generation cuts``, ``Further inputs``) to their
    ``label = value`` entries; ``cuts`` is the ``MC generation cuts`` section with numeric values
    as written (energies in GeV, angles in mrad; a tuple of floats where a cut has several
    numbers, e.g. an on/off flag and a value). ``n_events`` is the number the header announces
    (``Storing N ...``); reading all events checks it.
    """

    path: str
    sample_tag: str | None
    program_version: str | None
    n_events: int | None
    unweighted: bool | None
    running_mode: str | None
    seeds: tuple[int, ...]
    beam_energy: float | None  # GeV
    energy_spread: float | None  # GeV
    muon_charge: float | None
    m_mu: float  # GeV
    m_e: float  # GeV
    alpha_inv: float | None  # 1/alpha(0)
    cuts: dict[str, float | tuple[float, ...]]
    wnorm: float | None  # microbarn
    wmax: float | None
    has_vp_coefficients: bool | None
    raw: dict[str, str] = field(default_factory=dict)
    sections: dict[str, dict[str, str]] = field(default_factory=dict)
    n_lines: int = 0  # line number of ``</header>``

    @property
    def beam_pdg(self) -> int:
        """PDG code of the beam muon: -13 (mu+) for a positive charge, 13 otherwise."""
        return -PDG_MUON if (self.muon_charge is None or self.muon_charge > 0) else PDG_MUON


@dataclass(frozen=True)
class MesmerFooter:
    """The ``<footer>`` block (cross sections in microbarn)."""

    path: str
    cross_section: float
    cross_section_error: float
    n_points: int | None
    wmax_true: float | None
    n_above_wmax: int | None
    n_negative: int | None
    sum_w: float | None
    sum_w2: float | None
    sum_w_negative: float | None = None
    sum_w2_negative: float | None = None
    bias_above_wmax: tuple[float, float] | None = None
    bias_negative: tuple[float, float] | None = None
    raw: dict[str, str] = field(default_factory=dict)
    line: int = 0  # line number of ``<footer>``


_EVENT_FIELDS = (
    "event_number", "n_particles", "line_of_event", "w_full", "w_norun", "w_lep", "w_lo",
    "w_nlo", "vp", "beam", "t24", "t13",
)
_PARTICLE_FIELDS = ("pdg", "px", "py", "pz", "E")


@dataclass
class MesmerChunk:
    """Events as flat numpy arrays.

    Per event (length ``n``): ``event_number`` (int64), ``n_particles`` (int32; 0 for the
    placeholder records MESMER writes for rejected points), ``line_of_event`` (int64, 1-based line
    of ``<event>``), the weights ``w_full``, ``w_norun``, ``w_lep`` (line 4) and ``w_lo``,
    ``w_nlo`` (line 5), ``vp`` (n, 11) coefficients c0..c10 (zeros when the file has none),
    ``beam`` (n, 4) incoming muon (px, py, pz, E) with E from the header muon mass, and the derived
    momentum transfers ``t24`` (electron line) and ``t13`` (muon line) in GeV^2 (NaN for events
    without particles).

    Final state, flat over all events (event i owns ``offsets[i]:offsets[i+1]``): ``pdg`` (int32),
    ``px``, ``py``, ``pz``, ``E`` (E from the PDG mass with the header masses; photons massless).

    ``start`` is the position of the first event in the file (0-based).
    """

    event_number: np.ndarray
    n_particles: np.ndarray
    line_of_event: np.ndarray
    w_full: np.ndarray
    w_norun: np.ndarray
    w_lep: np.ndarray
    w_lo: np.ndarray
    w_nlo: np.ndarray
    vp: np.ndarray
    beam: np.ndarray
    t24: np.ndarray
    t13: np.ndarray
    pdg: np.ndarray
    px: np.ndarray
    py: np.ndarray
    pz: np.ndarray
    E: np.ndarray
    offsets: np.ndarray
    start: int = 0

    def __len__(self) -> int:
        return int(self.event_number.shape[0])

    @property
    def momenta(self) -> np.ndarray:
        """Final-state four-momenta as an (m, 4) array (px, py, pz, E)."""
        return np.stack([self.px, self.py, self.pz, self.E], axis=1)

    def particle_index(self, j: int) -> np.ndarray:
        """Flat index of the j-th final-state particle of each event (-1 where it has fewer)."""
        idx = self.offsets[:-1] + j
        return np.where(self.n_particles > j, idx, -1)

    def __getitem__(self, item: slice) -> MesmerChunk:
        if not isinstance(item, slice):
            raise TypeError("MesmerChunk supports slicing only, e.g. chunk[10:20]")
        a, b, step = item.indices(len(self))
        if step != 1:
            raise ValueError("MesmerChunk slices must have step 1")
        b = max(a, b)
        pa, pb = int(self.offsets[a]), int(self.offsets[b])
        kw: dict[str, Any] = {f: getattr(self, f)[a:b] for f in _EVENT_FIELDS}
        kw.update({f: getattr(self, f)[pa:pb] for f in _PARTICLE_FIELDS})
        kw["offsets"] = self.offsets[a:b + 1] - pa
        return MesmerChunk(**kw, start=self.start + a)

    @staticmethod
    def concatenate(chunks: list[MesmerChunk]) -> MesmerChunk:
        """Join chunks (in order) into one."""
        if not chunks:
            return _empty_chunk()
        if len(chunks) == 1:
            return chunks[0]
        kw: dict[str, Any] = {f: np.concatenate([getattr(c, f) for c in chunks]) for f in
                              _EVENT_FIELDS + _PARTICLE_FIELDS}
        counts = np.concatenate([np.diff(c.offsets) for c in chunks])
        offsets = np.zeros(counts.size + 1, np.int64)
        np.cumsum(counts, out=offsets[1:])
        return MesmerChunk(**kw, offsets=offsets, start=chunks[0].start)


@dataclass(frozen=True)
class MesmerSample:
    """A whole file: header, all events, footer."""

    header: MesmerHeader
    events: MesmerChunk
    footer: MesmerFooter


def _empty_chunk(start: int = 0) -> MesmerChunk:
    f8 = np.zeros(0)
    return MesmerChunk(
        event_number=np.zeros(0, np.int64), n_particles=np.zeros(0, np.int32),
        line_of_event=np.zeros(0, np.int64), w_full=f8, w_norun=f8.copy(), w_lep=f8.copy(),
        w_lo=f8.copy(), w_nlo=f8.copy(), vp=np.zeros((0, N_VP)), beam=np.zeros((0, 4)),
        t24=f8.copy(), t13=f8.copy(), pdg=np.zeros(0, np.int32), px=f8.copy(), py=f8.copy(),
        pz=f8.copy(), E=f8.copy(), offsets=np.zeros(1, np.int64), start=start,
    )


# --------------------------------------------------------------------------------------------
# opening files: plain, xz (gzip, bzip2) detected by magic bytes
# --------------------------------------------------------------------------------------------


class _Source:
    """Decompressed bytes of a file, read in blocks; errors become InputError naming the file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.name = str(path)
        if not self.path.exists():
            raise InputError(f"{self.name}: no such file")
        if self.path.is_dir():
            raise InputError(f"{self.name}: is a directory, not a MESMER event file")
        try:
            with open(self.path, "rb") as fh:
                magic = fh.read(6)
            if magic.startswith(_XZ_MAGIC):
                self.kind = "xz"
                self._fh: BinaryIO = lzma.open(self.path, "rb")  # type: ignore  # noqa: SIM115
            elif magic.startswith(_GZ_MAGIC):
                self.kind = "gzip"
                self._fh = gzip.open(self.path, "rb")  # type: ignore  # noqa: SIM115
            elif magic.startswith(_BZ2_MAGIC):
                self.kind = "bzip2"
                self._fh = bz2.open(self.path, "rb")  # type: ignore  # noqa: SIM115
            else:
                self.kind = "plain"
                self._fh = open(self.path, "rb")  # noqa: SIM115
        except OSError as exc:
            raise InputError(f"{self.name}: cannot open: {exc.strerror or exc}") from exc

    def read(self, n: int) -> bytes:
        try:
            return self._fh.read(n)
        except EOFError as exc:
            raise InputError(
                f"{self.name}: truncated {self.kind} stream (the compressed data end before their "
                f"end-of-stream marker: {exc})"
            ) from exc
        except (lzma.LZMAError, zlib.error, OSError) as exc:
            raise InputError(f"{self.name}: corrupt {self.kind} stream: {exc}") from exc

    def close(self) -> None:
        # closing a broken stream must not mask the error that is being reported
        with contextlib.suppress(Exception):
            self._fh.close()


class _Prefetcher:
    """Reads blocks of a _Source in a background thread (decompression releases the GIL).

    ``read()`` returns the next block (``b""`` at the end) or raises what the source raised.
    """

    def __init__(self, src: _Source, block: int) -> None:
        self._src = src
        self._block = block
        self._q: queue.Queue[bytes | BaseException] = queue.Queue(maxsize=2)
        self._stop = threading.Event()
        self._done = False
        self._thread = threading.Thread(target=self._run, name="mesmer-reader", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data: bytes | BaseException = self._src.read(self._block)
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer
                data = exc
            while not self._stop.is_set():
                try:
                    self._q.put(data, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if not isinstance(data, bytes) or not data:
                return

    def read(self) -> bytes:
        if self._done:
            return b""
        item = self._q.get()
        if isinstance(item, BaseException):
            self._done = True
            raise item
        if not item:
            self._done = True
        return item

    def close(self) -> None:
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._q.get(timeout=0.05)
            except queue.Empty:
                pass
        self._src.close()


# --------------------------------------------------------------------------------------------
# header and footer: labelled values
# --------------------------------------------------------------------------------------------

_NUM_RE = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eEdD][+-]?\d+|[+-]\d{3,})?")
_FORTRAN_EXP_RE = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+))(?:[eEdD]([+-]?\d+)|([+-]\d{3,}))?$")


def _to_float(token: str) -> float:
    """A Fortran number (``1.0E-004``, ``1.0D+00``, ``1.0-100``) as a float; ValueError if not."""
    m = _FORTRAN_EXP_RE.match(token.strip())
    if not m:
        raise ValueError(f"not a number: {token!r}")
    exp = m.group(2) or m.group(3)
    return float(m.group(1) + ("e" + exp if exp else ""))


def _is_number(token: str) -> bool:
    return _NUM_RE.fullmatch(token) is not None


def _split_top(line: str, sep: str) -> tuple[str, str] | None:
    """Split at the first ``sep`` outside parentheses; None if there is none."""
    depth = 0
    for i, c in enumerate(line):
        if c in "([":
            depth += 1
        elif c in ")]":
            depth = max(0, depth - 1)
        elif c == sep and depth == 0:
            return line[:i].strip(), line[i + 1:].strip()
    return None


_SPECIAL_PREFIXES = ("started on", "process id", "storing")


def _parse_labelled(lines: list[tuple[int, str]]) -> tuple[dict[str, str], dict[str, int],
                                                           dict[str, dict[str, str]]]:
    """Labelled values of a header or footer block.

    ``lines`` are (line number, text) without the block markers. Returns ``raw`` (label -> value
    string), the line number of each value and the ``Title:`` sections.
    """
    raw: dict[str, str] = {}
    where: dict[str, int] = {}
    sections: dict[str, dict[str, str]] = {}
    pending: tuple[str, int] | None = None  # a label whose value is on the next line
    section: str | None = None

    def put(label: str, value: str, lineno: int) -> None:
        key = label
        k = 2
        while key in raw:
            key = f"{label} [{k}]"
            k += 1
        raw[key] = value
        where[key] = lineno
        if section is not None:
            sections.setdefault(section, {})[label] = value

    for lineno, text in lines:
        s = text.strip()
        if not s:
            continue
        if set(s) <= {"-", "=", "*"}:  # separator
            pending, section = None, None
            continue
        tokens = s.split()
        numeric = all(_is_number(t) or t == "+-" for t in tokens)
        if pending is not None and (numeric or len(tokens) == 1):
            label, _ = pending
            put(label, s, lineno)
            pending = None
            continue
        pending = None
        low = s.lower()
        special = next((p for p in _SPECIAL_PREFIXES if low.startswith(p)), None)
        if numeric:
            put(f"<unlabelled line {lineno}>", s, lineno)
        elif special is not None:
            put(s[:len(special)], s[len(special):].strip(), lineno)
        elif (kv := _split_top(s, "=")) is not None:
            label, value = kv
            if value:
                put(label, value, lineno)
            else:
                pending = (label, lineno)
        elif (kv := _split_top(s, ":")) is not None:
            label, value = kv
            if value:
                section = None
                put(label, value, lineno)
            else:  # "Title:" - a section of "k = v" lines, or a label with the value below
                section = label
                sections.setdefault(section, {})
                pending = (label, lineno)
        else:
            k = len(tokens)
            while k > 0 and _is_number(tokens[k - 1]):
                k -= 1
            if 0 < k < len(tokens):  # "IR separator   2.0E-005"
                section = None
                put(" ".join(tokens[:k]), " ".join(tokens[k:]), lineno)
            else:
                section = None
                pending = (s, lineno)
    return raw, where, sections


def _find(raw: dict[str, str], *prefixes: str) -> str | None:
    """Key of ``raw`` whose lower-cased label starts with one of ``prefixes`` (first match)."""
    for p in prefixes:
        for key in raw:
            if key.lower().startswith(p):
                return key
    return None


class _Values:
    """Typed access to labelled values with errors naming the file and line."""

    def __init__(self, name: str, raw: dict[str, str], where: dict[str, int], block: str,
                 end_line: int) -> None:
        self.name, self.raw, self.where, self.block, self.end_line = (
            name, raw, where, block, end_line)

    def _key(self, what: str, prefixes: tuple[str, ...], required: bool) -> str | None:
        key = _find(self.raw, *prefixes)
        if key is None and required:
            raise InputError(
                f"{self.name}: line {self.end_line}: the {self.block} has no '{what}' entry "
                f"(expected a label starting with {prefixes[0]!r})"
            )
        return key

    def numbers(self, what: str, *prefixes: str, count: int | None = None,
                required: bool = False) -> list[float] | None:
        key = self._key(what, prefixes, required)
        if key is None:
            return None
        tokens = [t for t in self.raw[key].split() if t != "+-"]
        try:
            vals = [_to_float(t) for t in tokens]
        except ValueError:
            vals = []
        if not vals or (count is not None and len(vals) != count):
            n = "numbers" if count is None else f"{count} number{'s' if count != 1 else ''}"
            raise InputError(
                f"{self.name}: line {self.where[key]}: expected {n} for '{key}' in the "
                f"{self.block}, found {self.raw[key]!r}"
            )
        return vals

    def number(self, what: str, *prefixes: str, required: bool = False) -> float | None:
        vals = self.numbers(what, *prefixes, count=1, required=required)
        return None if vals is None else vals[0]

    def integer(self, what: str, *prefixes: str, required: bool = False) -> int | None:
        key = self._key(what, prefixes, required)
        if key is None:
            return None
        v = self.number(what, *prefixes)
        assert v is not None
        if v != int(v):
            raise InputError(
                f"{self.name}: line {self.where[key]}: expected an integer for '{key}' in the "
                f"{self.block}, found {self.raw[key]!r}"
            )
        return int(v)

    def text(self, *prefixes: str) -> str | None:
        key = _find(self.raw, *prefixes)
        return None if key is None else self.raw[key]


def _block_lines(text: str, first_line: int) -> list[tuple[int, str]]:
    return [(first_line + i, s) for i, s in enumerate(text.split("\n"))]


def _build_header(name: str, text: str, first_line: int, end_line: int) -> MesmerHeader:
    """``text``: the lines strictly between ``<header>`` and ``</header>`` (line ``end_line``);
    its first line is line ``first_line`` of the file."""
    raw, where, sections = _parse_labelled(_block_lines(text, first_line))
    v = _Values(name, raw, where, "header", end_line)

    storing_key = _find(raw, "storing")
    n_events = None
    if storing_key is not None:
        m = re.match(r"\s*(\d+)", raw[storing_key])
        if not m:
            raise InputError(
                f"{name}: line {where[storing_key]}: expected 'Storing <number of events> ...' in "
                f"the header, found {raw[storing_key]!r}"
            )
        n_events = int(m.group(1))
    seeds_vals = v.numbers("External and internal seed for RNG", "external and internal seed",
                           "seed")
    seeds = tuple(int(x) for x in seeds_vals) if seeds_vals else ()
    unweighted = v.integer("Unweighted events", "unweighted events")
    vp_flag = v.integer("If coefficients for VP reweighting are present (0/1)",
                        "if coefficients for vp", "coefficients for vp")
    cuts: dict[str, float | tuple[float, ...]] = {}
    cut_section = next((s for s in sections if s.lower().startswith("mc generation cuts")), None)
    if cut_section is not None:
        for label, value in sections[cut_section].items():
            try:
                nums = tuple(_to_float(t) for t in value.split())
            except ValueError:
                raise InputError(
                    f"{name}: line {where.get(label, end_line)}: expected numbers for the cut "
                    f"'{label}' in the header, found {value!r}"
                ) from None
            cuts[label] = nums[0] if len(nums) == 1 else nums
    tag = v.text("sample tag")
    m_mu = v.number("Muon mass (GeV)", "muon mass", required=True)
    m_e = v.number("Electron mass (GeV)", "electron mass", required=True)
    assert m_mu is not None and m_e is not None
    return MesmerHeader(
        path=name,
        sample_tag=tag.split()[0] if tag else None,
        program_version=v.text("program version"),
        n_events=n_events,
        unweighted=None if unweighted is None else bool(unweighted),
        running_mode=v.text("running mode"),
        seeds=seeds,
        beam_energy=v.number("Nominal muon beam energy (GeV)", "nominal muon beam energy",
                             "muon beam energy"),
        energy_spread=v.number("RMS for gaussian energy spread (GeV)", "rms for gaussian energy"),
        muon_charge=v.number("Muon charge", "muon charge"),
        m_mu=m_mu,
        m_e=m_e,
        alpha_inv=v.number("1/alpha(0)", "1/alpha"),
        cuts=cuts,
        wnorm=v.number("Normalization cross section (mub)", "normalization cross section",
                       "normalisation cross section"),
        wmax=v.number("Maximum weight", "maximum weight"),
        has_vp_coefficients=None if vp_flag is None else bool(vp_flag),
        raw=raw,
        sections=sections,
        n_lines=end_line,
    )


def _build_footer(name: str, text: str, first_line: int, end_line: int) -> MesmerFooter:
    """``text``: the lines after ``<footer>`` (line ``first_line - 1``) up to ``</footer>``."""
    raw, where, _ = _parse_labelled(_block_lines(text, first_line))
    v = _Values(name, raw, where, "footer", end_line)
    xs = v.numbers("(sub-)sample weighted XS (mub)", "(sub-)sample weighted xs",
                   "sample weighted xs", count=2, required=True)
    assert xs is not None

    def pair(what: str, *prefixes: str) -> tuple[float, float] | None:
        vals = v.numbers(what, *prefixes, count=2)
        return None if vals is None else (vals[0], vals[1])

    sums = pair("Sum of weights and weights^2", "sum of weights and")
    sums_neg = pair("Sum of weights < 0 and (weights < 0)^2", "sum of weights <")
    return MesmerFooter(
        path=name,
        cross_section=xs[0],
        cross_section_error=xs[1],
        n_points=v.integer("total shut points (weighted events)", "total shut points",
                           "total points"),
        wmax_true=v.number("true wmax", "true wmax"),
        n_above_wmax=v.integer("N. points above guessed wmax", "n. points above"),
        n_negative=v.integer("N. points with negative weight", "n. points with negative"),
        sum_w=None if sums is None else sums[0],
        sum_w2=None if sums is None else sums[1],
        sum_w_negative=None if sums_neg is None else sums_neg[0],
        sum_w2_negative=None if sums_neg is None else sums_neg[1],
        bias_above_wmax=pair("Estimated XS bias for w > wmax", "estimated xs bias for w >"),
        bias_negative=pair("Estimated XS bias for w < 0", "estimated xs bias for w <"),
        raw=raw,
        line=first_line - 1,
    )


# --------------------------------------------------------------------------------------------
# the numba kernel: layout check and correctly rounded number conversion
# --------------------------------------------------------------------------------------------


def _dd_powers(lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    """10**e as a double-double (hi + lo, relative error < 2**-106) for e in [lo, hi]."""
    his = np.empty(hi - lo + 1)
    los = np.empty(hi - lo + 1)
    for i, e in enumerate(range(lo, hi + 1)):
        x = Fraction(10) ** e
        h = float(x)
        his[i] = h
        los[i] = float(x - Fraction(h))
    return his, los


_DD_MIN_EXP = -270
_DD_MAX_EXP = 270
_DD_HI, _DD_LO = _dd_powers(_DD_MIN_EXP, _DD_MAX_EXP)
_POW10 = np.array([10.0 ** k for k in range(23)])  # exact doubles

# kernel result codes
_OK = 0
_FOOTER = 1
_E_EXPECT_EVENT = 10
_E_BLANK = 11
_E_TEXT = 12
_E_COUNT = 13
_E_TAG = 14
_E_NPART = 15
_E_EARLY_END = 16
_E_EXPECT_END = 17
_E_UNTERMINATED = 18
_E_EOF_IN_EVENT = 19
_E_CAPACITY = 20
_E_FB_CAPACITY = 21

# line types inside an event
_T_TAG, _T_EVNO, _T_NPART, _T_W3, _T_W2, _T_VP, _T_BEAM, _T_PART, _T_END = range(9)
_EXPECTED = (1, 1, 1, 3, 2, 11, 4, 4, 0)
_TYPE_DESC = (
    "the sample tag (1 token)",
    "the event number (1 integer)",
    "the number of final-state particles (1 integer)",
    "3 weights (full running, no running, leptonic running)",
    "2 weights (w_LO, w_NLO)",
    "11 vacuum-polarisation coefficients c0..c10",
    "the incoming muon 'pdg px py pz' (4 numbers)",
    "a final-state particle 'pdg px py pz' (4 numbers)",
    "'</event>'",
)
# offsets in the per-event value record
_V_EVNO, _V_NPART, _V_W, _V_W2, _V_VP, _V_BEAM, _V_PART = 0, 1, 2, 5, 7, 18, 22

_MARKS = np.frombuffer(b"<event></event><footer>", np.uint8).copy()  # at 0, 7 and 15


@nb.njit(cache=True, nogil=True)
def _parse_number(b, s, e, pow10, ddhi, ddlo):  # pragma: no cover - compiled
    """Convert b[s:e] to a float. Returns (value, status): 0 correctly rounded, 1 undecided
    (use Python's float), 2 not a number. Accepts [+-]digits[.digits] or [+-].digits, then
    optionally an exponent: (E|e|D|d)[+-]digits, or Fortran's [+-]ddd (3+ digits, no letter)."""
    i = s
    neg = False
    c = b[i]
    if c == 45:
        neg = True
        i += 1
    elif c == 43:
        i += 1
    m = np.int64(0)
    nd = 0
    e10 = 0
    ndig = 0
    dropped = False
    while i < e:
        c = b[i]
        if c < 48 or c > 57:
            break
        d = np.int64(c - 48)
        ndig += 1
        if nd < 18:
            if m != 0 or d != 0:
                m = m * 10 + d
                nd += 1
        else:
            e10 += 1
            if d != 0:
                dropped = True
        i += 1
    if i < e and b[i] == 46:
        i += 1
        while i < e:
            c = b[i]
            if c < 48 or c > 57:
                break
            d = np.int64(c - 48)
            ndig += 1
            if nd < 18:
                if m != 0 or d != 0:
                    m = m * 10 + d
                    nd += 1
                e10 -= 1
            elif d != 0:
                dropped = True
            i += 1
    if ndig == 0:
        return 0.0, 2
    if i < e:
        c = b[i]
        letter = c == 69 or c == 101 or c == 68 or c == 100
        if letter:
            i += 1
        elif c != 43 and c != 45:
            return 0.0, 2
        eneg = False
        if i < e and (b[i] == 43 or b[i] == 45):
            eneg = b[i] == 45
            i += 1
        nexp = 0
        xe = 0
        while i < e:
            c = b[i]
            if c < 48 or c > 57:
                break
            if xe < 100000:
                xe = xe * 10 + (c - 48)
            nexp += 1
            i += 1
        if nexp == 0 or i != e or (not letter and nexp < 3):
            return 0.0, 2
        e10 += -xe if eneg else xe
    if m == 0:
        return (-0.0 if neg else 0.0), 0
    if dropped:
        return 0.0, 1
    while m % 10 == 0:
        m //= 10
        e10 += 1
    if m < 9007199254740992 and e10 >= -22 and e10 <= 22:
        v = float(m)
        if e10 >= 0:
            v = v * pow10[e10]
        else:
            v = v / pow10[-e10]
        return (-v if neg else v), 0
    if e10 < -270 or e10 > 270:
        return 0.0, 1
    # double-double product (m exact as mh + ml) * (10^e10 as ph + pl)
    mh = float(m)
    ml = float(m - np.int64(mh))
    ph = ddhi[e10 + 270]
    pl = ddlo[e10 + 270]
    p = mh * ph
    t = 134217729.0 * mh
    ah = t - (t - mh)
    al = mh - ah
    t = 134217729.0 * ph
    bh = t - (t - ph)
    bl = ph - bh
    err = ((ah * bh - p) + ah * bl + al * bh) + al * bl
    err += mh * pl + ml * ph
    rh = p + err
    rl = err - (rh - p)
    # The exact value lies within rh + rl +- 5e-32 rh. Rounding is monotonic, so if both ends of
    # the wider interval rh + rl +- 1e-28 rh round to rh, so does the value; otherwise undecided.
    d = rh * 1e-28
    if rh + (rl + d) != rh or rh + (rl - d) != rh:
        return 0.0, 1
    return (-rh if neg else rh), 0


@nb.njit(cache=True, nogil=True)
def _scan(b, tag, has_vp, final, values, ev_line, ev_vstart, fb_idx, fb_s, fb_e,
          pow10, ddhi, ddlo, marks):  # pragma: no cover - compiled
    """Parse complete events of the text b (starting at a line start).

    Returns (status, nev, nfb, consumed, consumed_lines, line, a, b2, c, d): ``consumed`` bytes
    (whole events and blank lines) hold ``consumed_lines`` newlines. For errors ``line`` is the
    0-based line in b and a..d give details (see _error_message).
    """
    n = b.size
    cap = values.size
    fbcap = fb_idx.size
    pos = 0
    line = 0
    nev = 0
    nfb = 0
    state = 0
    k = 0
    npart = 0
    nplines = 0
    vp_line = has_vp
    vstart = 0
    nval = 0
    ev_pos = 0
    ev_ln = 0
    consumed = 0
    consumed_lines = 0
    ntag = tag.size
    while pos < n:
        eol = pos
        while eol < n and b[eol] != 10:
            eol += 1
        i = pos
        while i < eol and (b[i] == 32 or (b[i] >= 9 and b[i] <= 13)):
            i += 1
        # t: the type of the line expected next in the event (k lines of it read so far)
        t = k
        if k >= 5:
            hdr = 6 if vp_line else 5  # tag, number, n, weights, weights, [coefficients]
            if k == 5 and vp_line:
                t = _T_VP
            elif k == hdr:
                t = _T_BEAM
            elif k < hdr + 1 + nplines:
                t = _T_PART
            else:
                t = _T_END
        if i == eol:  # blank line
            if state == 1:
                return (_E_BLANK, nev, nfb, consumed, consumed_lines, line, t, ev_ln, 0, 0)
            pos = eol + 1
            line += 1
            consumed = min(pos, n)
            consumed_lines = line
            continue
        if b[i] == 60:  # '<': a marker line
            j = i
            while j < eol and not (b[j] == 32 or (b[j] >= 9 and b[j] <= 13)):
                j += 1
            r = j
            while r < eol and (b[r] == 32 or (b[r] >= 9 and b[r] <= 13)):
                r += 1
            kind = 0  # 1 <event>, 2 </event>, 3 <footer>, 0 anything else
            if r == eol:
                for mk in range(3):
                    mo = 0 if mk == 0 else (7 if mk == 1 else 15)
                    ml = 7 if mk == 0 else 8
                    if j - i == ml:
                        same = True
                        for q in range(ml):
                            if b[i + q] != marks[mo + q]:
                                same = False
                                break
                        if same:
                            kind = mk + 1
                            break
            if state == 0:
                if kind == 1:
                    state = 1
                    k = 0
                    npart = 0
                    nplines = 0
                    vp_line = has_vp
                    vstart = nval
                    ev_pos = pos
                    ev_ln = line
                    if vstart + _V_PART > cap:
                        return (_E_CAPACITY, nev, nfb, consumed, consumed_lines, line, 0, 0, 0, 0)
                elif kind == 3:
                    return (_FOOTER, nev, nfb, consumed, consumed_lines, line, pos, 0, 0, 0)
                else:
                    return (_E_EXPECT_EVENT, nev, nfb, consumed, consumed_lines, line, i, eol,
                            0, 0)
            else:
                if kind == 2:
                    if t != _T_END:
                        return (_E_EARLY_END, nev, nfb, consumed, consumed_lines, line, t, ev_ln,
                                k, 0)
                    ev_line[nev] = ev_ln
                    ev_vstart[nev] = vstart
                    nev += 1
                    nval = vstart + _V_PART + 4 * nplines
                    state = 0
                    consumed = min(eol + 1, n)
                    consumed_lines = line + 1
                else:
                    return (_E_UNTERMINATED, nev, nfb, consumed, consumed_lines, line, ev_ln, i,
                            eol, 0)
            pos = eol + 1
            line += 1
            continue
        # a line of numbers (or the tag)
        if state == 0:
            return (_E_EXPECT_EVENT, nev, nfb, consumed, consumed_lines, line, i, eol, 0, 0)
        if t == _T_END:
            return (_E_EXPECT_END, nev, nfb, consumed, consumed_lines, line, ev_ln, npart, 0, 0)
        expected = 1
        off = vstart
        if t == _T_W3:
            expected = 3
            off = vstart + _V_W
        elif t == _T_W2:
            expected = 2
            off = vstart + _V_W2
        elif t == _T_VP:
            expected = 11
            off = vstart + _V_VP
        elif t == _T_BEAM:
            expected = 4
            off = vstart + _V_BEAM
        elif t == _T_PART:
            expected = 4
            off = vstart + _V_PART + 4 * (k - (7 if vp_line else 6))
        elif t == _T_NPART:
            off = vstart + _V_NPART
        if off + expected > cap:
            return (_E_CAPACITY, nev, nfb, consumed, consumed_lines, line, 0, 0, 0, 0)
        cnt = 0
        ts = i
        while ts < eol:
            te = ts
            while te < eol and not (b[te] == 32 or (b[te] >= 9 and b[te] <= 13)):
                te += 1
            if cnt < expected:
                if t == _T_TAG:
                    if ntag > 0:
                        ok = te - ts == ntag
                        if ok:
                            for q in range(ntag):
                                if b[ts + q] != tag[q]:
                                    ok = False
                                    break
                        if not ok:
                            return (_E_TAG, nev, nfb, consumed, consumed_lines, line, ts, te,
                                    0, 0)
                else:
                    v, st = _parse_number(b, ts, te, pow10, ddhi, ddlo)
                    if st == 2:
                        return (_E_TEXT, nev, nfb, consumed, consumed_lines, line, t, ts, te, cnt)
                    if st == 1:
                        if nfb >= fbcap:
                            return (_E_FB_CAPACITY, nev, nfb, consumed, consumed_lines, line, 0,
                                    0, 0, 0)
                        fb_idx[nfb] = off + cnt
                        fb_s[nfb] = ts
                        fb_e[nfb] = te
                        nfb += 1
                        v = np.nan
                    values[off + cnt] = v
            cnt += 1
            ts = te
            while ts < eol and (b[ts] == 32 or (b[ts] >= 9 and b[ts] <= 13)):
                ts += 1
        if cnt != expected:
            return (_E_COUNT, nev, nfb, consumed, consumed_lines, line, t, expected, cnt, ev_ln)
        if t == _T_NPART:
            x = values[vstart + _V_NPART]
            if not (x >= 0.0 and x <= 100000.0 and x == math.floor(x)):
                return (_E_NPART, nev, nfb, consumed, consumed_lines, line, i, eol, 0, 0)
            npart = int(x)
            nplines = npart if npart > 0 else 2
            vp_line = has_vp or npart == 0
            if not vp_line:
                for q in range(N_VP):
                    values[vstart + _V_VP + q] = 0.0
        k += 1
        pos = eol + 1
        line += 1
    if state == 1:
        if final:
            t = k
            if k >= 5:
                hdr = 6 if vp_line else 5
                if k == 5 and vp_line:
                    t = _T_VP
                elif k == hdr:
                    t = _T_BEAM
                elif k < hdr + 1 + nplines:
                    t = _T_PART
                else:
                    t = _T_END
            last = line - 1 if n > 0 and b[n - 1] == 10 else line  # the last line of b
            return (_E_EOF_IN_EVENT, nev, nfb, consumed, consumed_lines, last, ev_ln, t, 0, 0)
        # an incomplete event at the end of the block: leave it for the next block
        return (_OK, nev, nfb, ev_pos, ev_ln, line, 0, 0, 0, 0)
    return (_OK, nev, nfb, consumed, consumed_lines, line, 0, 0, 0, 0)


# --------------------------------------------------------------------------------------------
# python side of the event parsing
# --------------------------------------------------------------------------------------------


class _Context:
    """What the block parser needs to know about the file."""

    def __init__(self, name: str, header: MesmerHeader, has_vp: bool) -> None:
        self.name = name
        self.header = header
        self.has_vp = has_vp
        self.tag = np.frombuffer((header.sample_tag or "").encode("latin-1"), np.uint8)
        self.m_mu = float(header.m_mu)
        self.m_e = float(header.m_e)


def _line_text(data: bytes, rel_line: int) -> str:
    lines = data.split(b"\n", rel_line + 1)
    text = lines[rel_line] if rel_line < len(lines) else b""
    s = text.decode("latin-1").strip()
    return s if len(s) <= 120 else s[:117] + "..."


def _token(data: bytes, s: int, e: int) -> str:
    t = data[s:e].decode("latin-1")
    return t if len(t) <= 60 else t[:57] + "..."


def _error_message(ctx: _Context, data: bytes, line0: int, res: tuple[int, ...]) -> str:
    status, _, _, _, _, rel, a, b2, c, d = res
    line = line0 + rel
    where = f"{ctx.name}: line {line}"
    if status == _E_EXPECT_EVENT:
        return f"{where}: expected '<event>' (or '<footer>'), found {_token(data, a, b2)!r}"
    if status == _E_BLANK:
        return (f"{where}: expected {_TYPE_DESC[a]} in the event starting at line {line0 + b2}, "
                f"found an empty line")
    if status == _E_TEXT:
        return (f"{where}: expected {_TYPE_DESC[a]}, but number {d + 1} is not a number: "
                f"{_token(data, b2, c)!r} (line: {_line_text(data, rel)!r})")
    if status == _E_COUNT:
        return (f"{where}: expected {_TYPE_DESC[a]}: {b2} number{'s' if b2 != 1 else ''}, "
                f"found {c} (line: {_line_text(data, rel)!r})")
    if status == _E_TAG:
        return (f"{where}: expected the sample tag {ctx.header.sample_tag!r} of the header, found "
                f"{_token(data, a, b2)!r}")
    if status == _E_NPART:
        return (f"{where}: expected the number of final-state particles (a non-negative "
                f"integer), found {_line_text(data, rel)!r}")
    if status == _E_EARLY_END:
        return (f"{where}: expected {_TYPE_DESC[a]} in the event starting at line {line0 + b2}, "
                f"found '</event>'")
    if status == _E_EXPECT_END:
        return (f"{where}: expected '</event>' after the {b2} final-state particle(s) declared by "
                f"the event starting at line {line0 + a}, found {_line_text(data, rel)!r}")
    if status == _E_UNTERMINATED:
        return (f"{where}: the event starting at line {line0 + a} is not terminated: expected "
                f"'</event>', found {_token(data, b2, c)!r}")
    if status == _E_EOF_IN_EVENT:
        return (f"{ctx.name}: line {line}: the file ends inside the event starting at line "
                f"{line0 + a} (truncated?): expected {_TYPE_DESC[b2]} after line {line}")
    return f"{where}: internal parser error (status {status})"  # pragma: no cover


def _scan_block(ctx: _Context, data: bytes, line0: int, final: bool) -> tuple[
        tuple[int, ...], np.ndarray, np.ndarray, np.ndarray]:
    """Run the kernel on ``data``, growing its buffers when needed; fix undecided numbers."""
    buf = np.frombuffer(data, np.uint8)
    nlines = data.count(b"\n") + 1
    cap = 11 * nlines + 64
    nev_cap = data.count(b"<event>") + 1
    fbcap = 1024
    while True:
        values = np.empty(cap)
        ev_line = np.empty(nev_cap, np.int64)
        ev_vstart = np.empty(nev_cap, np.int64)
        fb_idx = np.empty(fbcap, np.int64)
        fb_s = np.empty(fbcap, np.int64)
        fb_e = np.empty(fbcap, np.int64)
        res = _scan(buf, ctx.tag, ctx.has_vp, final, values, ev_line, ev_vstart, fb_idx, fb_s,
                    fb_e, _POW10, _DD_HI, _DD_LO, _MARKS)
        status = res[0]
        if status == _E_FB_CAPACITY:
            fbcap *= 8
            continue
        if status == _E_CAPACITY:  # pragma: no cover - the capacity bound cannot be exceeded
            cap *= 2
            continue
        break
    for j in range(res[2]):  # numbers the kernel could not round with certainty
        tok = data[fb_s[j]:fb_e[j]].decode("latin-1")
        x = _to_float(tok)
        if not math.isfinite(x):
            line = line0 + data.count(b"\n", 0, int(fb_s[j]))
            raise InputError(f"{ctx.name}: line {line}: expected a finite number, found {tok!r} "
                             f"(out of the range of double precision)")
        values[fb_idx[j]] = x
    return res, values, ev_line[:res[1]], ev_vstart[:res[1]]


def _momentum_transfers(n: np.ndarray, offsets: np.ndarray, p3: np.ndarray, E: np.ndarray,
                        beam: np.ndarray, m_e: float, m_mu: float) -> tuple[np.ndarray,
                                                                              np.ndarray]:
    """t24 = (p_e,in - p_e,out)^2 and t13 = (p_mu,in - p_mu,out)^2 (electron at rest), GeV^2.

    t24 = -2 m_e (E_e' - m_e) with E_e' - m_e = |p_e'|^2 / (E_e' + m_e): no cancellation.

    t13 in light-cone components, p+- = E +- pz, of q = p - p' (the incoming and outgoing muon):
    t13 = q+ q- - |q_T|^2, with p- = (m^2 + p_T^2) / (E + pz) for pz > 0. For a beam along z both
    terms are negative (the outgoing muon has the larger p-), so nothing cancels even when
    |t13| is 1e-7 GeV^2 and the muon lost a GeV: the relative error stays ~1e-13, where
    q0^2 - |q|^2 loses 9 digits. The muon line is used rather than momentum conservation on the
    electron side because MESMER's stored final states are boosted with a rapidity that differs
    from the stored beam's by ~1e-11 (the totals miss the initial state by ~1.4e-9 GeV in E and
    pz): t13 from the muon line is the one MESMER's vacuum-polarisation coefficients use.
    """
    nev = n.size
    t24 = np.full(nev, np.nan)
    t13 = np.full(nev, np.nan)
    has = np.flatnonzero(n >= 2)
    imu = offsets[has]  # the muon is the first final-state particle, the electron the second
    ie = imu + 1
    pe2 = np.einsum("ij,ij->i", p3[ie], p3[ie])
    t24[has] = -2.0 * m_e * pe2 / (E[ie] + m_e)
    b = beam[has]
    mu = p3[imu]
    e_mu = E[imu]
    q_plus = (b[:, 3] + b[:, 2]) - (e_mu + mu[:, 2])
    q_minus = (_light_cone_minus(b[:, 3], b[:, :3], m_mu)
               - _light_cone_minus(e_mu, mu, m_mu))
    qt2 = (b[:, 0] - mu[:, 0]) ** 2 + (b[:, 1] - mu[:, 1]) ** 2
    t13[has] = q_plus * q_minus - qt2
    return t24, t13


def _light_cone_minus(E: np.ndarray, p: np.ndarray, m: float) -> np.ndarray:
    """E - pz, as (m^2 + pT^2) / (E + pz) where pz > 0."""
    pz = p[:, 2]
    pt2 = p[:, 0] ** 2 + p[:, 1] ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        stable = (m * m + pt2) / (E + pz)
    return np.where(pz > 0, stable, E - pz)


def _build_chunk(ctx: _Context, data: bytes, line0: int, values: np.ndarray,
                 ev_line: np.ndarray, ev_vstart: np.ndarray, start: int) -> MesmerChunk:
    """Turn the kernel's per-event value records into a MesmerChunk; check pdg codes."""
    nev = ev_vstart.size
    if nev == 0:
        return _empty_chunk(start)
    vs = ev_vstart
    line_of_event = ev_line + line0
    first_part_line = line_of_event + (8 if ctx.has_vp else 7)  # for events with particles

    evno_f = values[vs + _V_EVNO]
    bad = np.flatnonzero((evno_f != np.floor(evno_f)) | (np.abs(evno_f) > 2.0 ** 62))
    if bad.size:
        i = int(bad[0])
        raise InputError(f"{ctx.name}: line {line_of_event[i] + 2}: expected the event number "
                         f"(an integer), found {_line_text(data, int(ev_line[i]) + 2)!r}")
    n = values[vs + _V_NPART].astype(np.int32)
    w = values[vs[:, None] + (_V_W + np.arange(3))]
    w2 = values[vs[:, None] + (_V_W2 + np.arange(2))]
    vp = values[vs[:, None] + (_V_VP + np.arange(N_VP))]
    beam_v = values[vs[:, None] + (_V_BEAM + np.arange(4))]

    beam_pdg = beam_v[:, 0]
    bad = np.flatnonzero(np.abs(beam_pdg) != PDG_MUON)
    if bad.size:
        i = int(bad[0])
        k = 7 if (ctx.has_vp or n[i] == 0) else 6
        raise InputError(f"{ctx.name}: line {line_of_event[i] + k}: expected the incoming muon "
                         f"(pdg +-13), found pdg {_fmt_pdg(beam_pdg[i])}")
    beam = np.empty((nev, 4))
    beam[:, :3] = beam_v[:, 1:]
    bp2 = np.einsum("ij,ij->i", beam[:, :3], beam[:, :3])
    beam[:, 3] = np.sqrt(bp2 + ctx.m_mu ** 2)

    offsets = np.zeros(nev + 1, np.int64)
    np.cumsum(n, out=offsets[1:])
    total = int(offsets[-1])
    ev_of = np.repeat(np.arange(nev), n)
    j_in = np.arange(total) - offsets[:-1][ev_of]
    pidx = vs[ev_of] + _V_PART + 4 * j_in
    pdg_f = values[pidx]
    apdg = np.abs(pdg_f)
    known = ((apdg == PDG_MUON) | (apdg == PDG_ELECTRON) | (pdg_f == PDG_PHOTON))
    order_ok = np.where(j_in == 0, apdg == PDG_MUON, np.where(j_in == 1, apdg == PDG_ELECTRON,
                                                               True))
    bad = np.flatnonzero(~(known & order_ok))
    if bad.size:
        q = int(bad[0])
        i = int(ev_of[q])
        line = int(first_part_line[i] + j_in[q])
        if not known[q]:
            what = "a final-state particle with pdg 11, -11, 13, -13 or 22"
        elif j_in[q] == 0:
            what = "the outgoing muon (pdg +-13) as the first final-state particle"
        else:
            what = "the outgoing electron (pdg +-11) as the second final-state particle"
        raise InputError(f"{ctx.name}: line {line}: expected {what}, found pdg "
                         f"{_fmt_pdg(pdg_f[q])}")
    bad = np.flatnonzero(n == 1)
    if bad.size:
        i = int(bad[0])
        raise InputError(f"{ctx.name}: line {line_of_event[i] + 3}: expected at least 2 "
                         f"final-state particles (muon and electron), found 1")
    pdg = pdg_f.astype(np.int32)
    p3 = np.stack([values[pidx + 1], values[pidx + 2], values[pidx + 3]], axis=1)
    mass = np.where(apdg == PDG_MUON, ctx.m_mu, np.where(apdg == PDG_ELECTRON, ctx.m_e, 0.0))
    E = np.sqrt(np.einsum("ij,ij->i", p3, p3) + mass * mass)
    t24, t13 = _momentum_transfers(n, offsets, p3, E, beam, ctx.m_e, ctx.m_mu)
    return MesmerChunk(
        event_number=evno_f.astype(np.int64),
        n_particles=n,
        line_of_event=line_of_event.astype(np.int64),
        w_full=np.ascontiguousarray(w[:, 0]),
        w_norun=np.ascontiguousarray(w[:, 1]),
        w_lep=np.ascontiguousarray(w[:, 2]),
        w_lo=np.ascontiguousarray(w2[:, 0]),
        w_nlo=np.ascontiguousarray(w2[:, 1]),
        vp=vp,
        beam=beam,
        t24=t24,
        t13=t13,
        pdg=pdg,
        px=np.ascontiguousarray(p3[:, 0]),
        py=np.ascontiguousarray(p3[:, 1]),
        pz=np.ascontiguousarray(p3[:, 2]),
        E=E,
        offsets=offsets,
        start=start,
    )


def _last_line(buf: bytes, line0: int) -> int:
    """Number of the last line of ``buf``, whose first line is line ``line0``."""
    n = buf.count(b"\n")
    return max(line0, line0 + n - (1 if buf.endswith(b"\n") else 0))


def _fmt_pdg(x: float) -> str:
    return str(int(x)) if x == int(x) else repr(float(x))


# --------------------------------------------------------------------------------------------
# the streaming reader
# --------------------------------------------------------------------------------------------


class _Reader:
    """One pass over a file: header, then blocks of events, then footer."""

    def __init__(self, path: str | Path, block: int | None = None, prefetch: bool = True) -> None:
        self.name = str(path)
        self._block = block or BLOCK_SIZE
        self._src = _Source(path)
        self._io: _Prefetcher | _Source = (_Prefetcher(self._src, self._block) if prefetch
                                            else self._src)
        self.header: MesmerHeader | None = None
        self.footer: MesmerFooter | None = None
        self._buf = b""
        self._eof = False
        self._line0 = 1  # line number of the first line of _buf
        self.n_events = 0

    def close(self) -> None:
        self._io.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _more(self) -> bool:
        if self._eof:
            return False
        data = self._io.read() if isinstance(self._io, _Prefetcher) else self._io.read(self._block)
        if not data:
            self._eof = True
            return False
        self._buf = self._buf + data if self._buf else data
        return True

    # header ---------------------------------------------------------------------------------
    def read_header(self) -> MesmerHeader:
        while True:
            stripped = self._buf.lstrip()
            if len(stripped) >= 8 or self._eof:
                break
            self._more()
        if not stripped:
            raise InputError(f"{self.name}: empty file: expected a MESMER event file starting "
                             f"with '<header>'")
        if not stripped.startswith(b"<header>"):
            nl = len(self._buf) - len(stripped)
            line = self._buf[:nl].count(b"\n") + 1
            first = stripped.split(b"\n", 1)[0][:40]
            raise InputError(f"{self.name}: line {line}: not a MESMER event file: expected "
                             f"'<header>', found {first!r}")
        start = len(self._buf) - len(stripped)
        while True:
            k = self._buf.find(b"</header>", start)
            if k >= 0:
                break
            if len(self._buf) > MAX_HEADER_BYTES:
                raise InputError(f"{self.name}: no '</header>' within the first "
                                 f"{MAX_HEADER_BYTES} bytes: expected the header to end")
            if not self._more():
                n = _last_line(self._buf, 1)
                raise InputError(f"{self.name}: line {n}: the file ends inside the header "
                                 f"(truncated?): expected '</header>'")
        eol = self._buf.find(b"\n", k)
        while eol < 0 and self._more():
            eol = self._buf.find(b"\n", k)
        if eol < 0:
            eol = len(self._buf)
        end_line = self._buf[:k].count(b"\n") + 1
        open_end = self._buf.find(b"\n", start)
        body = self._buf[open_end + 1: self._buf.rfind(b"\n", 0, k) + 1] if open_end < k else b""
        first_body_line = self._buf[:open_end + 1].count(b"\n") + 1
        header = _build_header(self.name, body.decode("latin-1"), first_body_line, end_line)
        self.header = header
        self._buf = self._buf[eol + 1:]
        self._line0 = end_line + 1
        return header

    # events ---------------------------------------------------------------------------------
    def _context(self) -> _Context:
        assert self.header is not None
        has_vp = self.header.has_vp_coefficients
        if has_vp is None:
            has_vp = self._detect_vp()
        return _Context(self.name, self.header, bool(has_vp))

    def _detect_vp(self) -> bool:
        """Older headers lack the VP flag: look at the first event (11 numbers after line 5)."""
        while True:
            k = self._buf.find(b"<event>")
            if k >= 0:
                lines = self._buf[k:].split(b"\n", 8)
                if len(lines) >= 8:
                    nonblank = [ln for ln in lines[1:8] if ln.strip()]
                    return len(nonblank) >= 6 and len(nonblank[5].split()) == N_VP
            if not self._more():
                return False

    def blocks(self) -> Iterator[MesmerChunk]:
        """Chunks of events as they are parsed (sizes follow the blocks); sets ``footer``."""
        if self.header is None:
            self.read_header()
        ctx = self._context()
        while True:
            if not self._eof:
                self._more()
            if self._eof:
                work = self._buf
            else:
                cut = self._buf.rfind(b"\n") + 1
                if cut == 0:
                    continue
                work = self._buf[:cut]
            if not work:
                break
            res, values, ev_line, ev_vstart = _scan_block(ctx, work, self._line0, self._eof)
            status = res[0]
            if status not in (_OK, _FOOTER):
                raise InputError(_error_message(ctx, work, self._line0, res))
            chunk = _build_chunk(ctx, work, self._line0, values, ev_line, ev_vstart,
                                 self.n_events)
            self.n_events += len(chunk)
            if len(chunk):
                yield chunk
            if status == _FOOTER:
                footer_line = self._line0 + res[5]
                self._buf = self._buf[res[6]:]
                self._line0 = footer_line
                self._read_footer_block()
                return
            consumed, consumed_lines = res[3], res[4]
            self._buf = self._buf[consumed:]
            self._line0 += consumed_lines
            if self._eof and not self._buf.strip():
                break
        raise InputError(f"{self.name}: line {max(1, self._line0 - 1)}: the file ends without "
                         f"a footer (truncated?): expected '<event>' or '<footer>' after it")

    def _read_footer_block(self) -> None:
        while self._buf.find(b"</footer>") < 0 and self._more():
            pass
        k = self._buf.find(b"</footer>")
        if k < 0:
            n = _last_line(self._buf, self._line0)
            raise InputError(f"{self.name}: line {n}: the file ends inside the footer "
                             f"(truncated?): expected '</footer>'")
        open_end = self._buf.find(b"\n")
        body = self._buf[open_end + 1: self._buf.rfind(b"\n", 0, k) + 1]
        end_line = self._line0 + self._buf[:k].count(b"\n")
        self.footer = _build_footer(self.name, body.decode("latin-1"), self._line0 + 1, end_line)
        while self._more():  # anything after </footer> must be blank
            pass
        rest = self._buf[k + len(b"</footer>"):]
        if rest.strip():
            line = end_line + rest[: len(rest) - len(rest.lstrip())].count(b"\n")
            raise InputError(f"{self.name}: line {line}: expected the end of the file after "
                             f"'</footer>', found {rest.strip()[:40]!r}")

    def check_count(self) -> None:
        assert self.header is not None
        if self.header.n_events is not None and self.n_events != self.header.n_events:
            raise InputError(f"{self.name}: the header announces {self.header.n_events} events "
                             f"but the file holds {self.n_events} (truncated or damaged?)")


# --------------------------------------------------------------------------------------------
# public functions
# --------------------------------------------------------------------------------------------


def read_header(path: str | Path) -> MesmerHeader:
    """Parse the ``<header>`` block of a MESMER event file (plain or compressed)."""
    with _Reader(path, block=1 << 16, prefetch=False) as r:
        return r.read_header()


def read_footer(path: str | Path) -> MesmerFooter:
    """Parse the ``<footer>`` block (the whole file is read, the events are not parsed)."""
    with _Reader(path, prefetch=True) as r:
        r.read_header()
        assert isinstance(r._io, _Prefetcher)
        keep = FOOTER_KEEP
        tail, base = r._buf, r._line0  # the end of the text and the line number it starts at
        while data := r._io.read():
            tail += data
            if len(tail) > 4 * keep:
                cut = tail.find(b"\n", len(tail) - keep) + 1
                if cut > 0:
                    base += tail.count(b"\n", 0, cut)
                    tail = tail[cut:]
        k = tail.rfind(b"<footer>")
        if k < 0:
            n = _last_line(tail, base)
            raise InputError(f"{r.name}: line {n}: no footer: expected '<footer>' after the "
                             f"events (truncated file?)")
        start = tail.rfind(b"\n", 0, k) + 1
        r._buf = tail[start:]
        r._line0 = base + tail.count(b"\n", 0, start)
        r._eof = True
        r._read_footer_block()
        assert r.footer is not None
        return r.footer


def iter_chunks(path: str | Path, chunk_size: int = 100_000) -> Iterator[MesmerChunk]:
    """Events in chunks of ``chunk_size`` (the last one may be shorter).

    The whole file is checked as it is read: the last chunk is followed by a check of the footer
    and of the number of events the header announces (InputError if either fails).
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    with _Reader(path) as r:
        pending: list[MesmerChunk] = []
        npend = 0
        for block in r.blocks():
            pending.append(block)
            npend += len(block)
            while npend >= chunk_size:
                joined = MesmerChunk.concatenate(pending)
                yield joined[:chunk_size]
                rest = joined[chunk_size:]
                pending = [rest] if len(rest) else []
                npend = len(rest)
        r.check_count()
        if npend:
            yield MesmerChunk.concatenate(pending)


def read_events(path: str | Path, start: int = 0, stop: int | None = None) -> MesmerChunk:
    """Events ``start`` (0-based position in the file) up to ``stop`` (exclusive; ``None``: all).

    With ``stop=None`` the whole file is read and checked (footer and event count); otherwise
    reading ends as soon as ``stop`` events have been parsed.
    """
    if start < 0 or (stop is not None and stop < start):
        raise ValueError("read_events needs 0 <= start <= stop")
    parts: list[MesmerChunk] = []
    with _Reader(path) as r:
        for block in r.blocks():
            lo = block.start
            hi = lo + len(block)
            if hi > start and (stop is None or lo < stop):
                a = max(start, lo) - lo
                b = (hi if stop is None else min(stop, hi)) - lo
                parts.append(block[a:b])
            if stop is not None and hi >= stop:
                break
        else:
            r.check_count()
    out = MesmerChunk.concatenate(parts)
    if not parts:
        out = _empty_chunk(start)
    return out


def read_mesmer(path: str | Path) -> MesmerSample:
    """Header, all events and footer of a file in one pass (with all checks)."""
    with _Reader(path) as r:
        header = r.read_header()
        events = MesmerChunk.concatenate(list(r.blocks()))
        r.check_count()
        assert r.footer is not None
        return MesmerSample(header=header, events=events, footer=r.footer)
