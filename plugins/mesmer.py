"""Source ``mesmer``: events from MESMER plain-text event files (NLO QED mu e -> mu e (gamma)).

MESMER (github cm-cc/mesmer) is the field's standard generator; its event files (format:
``muone.mesmer``, ../shared/data/mesmer/README.md) are read into the same event record as muone's
own generators: the MESMER beam muon flies along +z, so each event is rotated to a beam direction
drawn from the beam divergence, placed at an interaction point among the job geometry's targets,
and given Poisson beam pile-up.

Weights: MESMER weights w are normalised to ``wnorm`` (sigma_sel = wnorm sum(w)/N). muone stores
``mc.weight = w * wnorm / sigma``, with sigma the combined cross section of the files' footers, so
the weights average 1 and the job's equivalent luminosity N/sigma gives dsigma = histogram * sigma/N
(the same convention as the unweighted generators). ``mc.weight_norun``, ``mc.weight_lep`` and the
11 vacuum-polarisation coefficients ``mc.vp`` carry the same factor, so any Delta_alpha reweights
the events exactly: w = c0 + c1 vp(t)^2 for two-body events and
w = c1 vp(t24)^2 + c2 vp(t24) vp(t13) + c5 vp(t13)^2 for radiative ones, vp = 1/(1 - Delta_alpha).
``mc.t`` is t24 (electron line) and ``mc.t_mu`` t13 (muon line). Placeholder records of rejected
points (no particles, weight 0) are kept so that the normalisation is exact.
"""

from __future__ import annotations

import glob
import math
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
from muone import hookimpl
from muone.errors import InputError
from muone.generators.beam import BeamModel, GeneratorParams
from muone.generators.frames import rotate_from_z
from muone.generators.record import HardProcess, build_events
from muone.generators.targets import choose_interaction_points
from muone.mc import ORIGIN_HARD, PROCESS
from muone.processor import Chunk, ChunkSpec, Context, Source, SourceInfo
from pydantic import Field


class MesmerParams(GeneratorParams):
    files: list[str] = Field(..., min_length=1, description="MESMER event files (plain or .xz; glob patterns allowed).")
    beam_energy_spread: float = Field(0.0, ge=0, le=0.0, description="Not applicable: the beam energy is fixed by the MESMER file.")


def _expand(patterns: list[str]) -> list[Path]:
    files: list[Path] = []
    for pattern in patterns:
        matches = sorted(glob.glob(pattern)) if any(c in pattern for c in "*?[") else [pattern]
        if not matches:
            raise InputError(f"no MESMER file matches {pattern!r}")
        files.extend(Path(m) for m in matches)
    return files


class MesmerSource(Source):
    """MESMER event files (weighted NLO mu e -> mu e (gamma)) with the beam, targets and pile-up of muone's generators.

    Writes the ``mc`` record with the file's weights, the vacuum-polarisation coefficients
    (``mc.vp``), ``mc.t`` (t24) and ``mc.t_mu`` (t13). ``job.events`` limits the events read.
    """

    name = "mesmer"
    Params = MesmerParams
    writes = ("run", "event", "bx", "mc")

    @classmethod
    def check(cls, params: MesmerParams, steering: Any) -> list[tuple[str, str]]:
        from muone import mesmer

        problems = []
        try:
            files = _expand(params.files)
        except InputError as exc:
            return [("files", str(exc))]
        energies = set()
        for i, f in enumerate(files):
            try:
                header = mesmer.read_header(f)
            except InputError as exc:
                problems.append((f"files[{i}]", str(exc)))
                continue
            energies.add(header.beam_energy)
        if len(energies) > 1:
            problems.append(("files", f"the files have different beam energies {sorted(energies)}: combine only samples of the same settings"))
        elif energies and params.beam_energy != next(iter(energies)):
            problems.append(("beam_energy", f"the MESMER files are at {next(iter(energies))} GeV: set beam_energy to it"))
        return problems

    def setup(self, context: Context) -> None:
        from muone import mesmer
        from muone.geometry import load_geometry

        self.files = _expand(self.params.files)
        self.headers = [mesmer.read_header(f) for f in self.files]
        self.footers = [mesmer.read_footer(f) for f in self.files]
        counts = np.array([h.n_events for h in self.headers], dtype=float)
        xs = np.array([f.cross_section for f in self.footers])
        err = np.array([f.cross_section_error for f in self.footers])
        # combined estimate of statistically independent samples of the same process, by events
        self.cross_section = float(np.sum(counts * xs) / counts.sum())
        self.cross_section_error = float(math.sqrt(np.sum((counts * err) ** 2)) / counts.sum())
        self.scale = [h.wnorm / self.cross_section for h in self.headers]
        self.beam = BeamModel(self.params)
        self.targets = list(load_geometry(context.geometry).targets)
        self.chunk_size = context.job.chunk_size
        self._open: dict[int, Any] = {}

    def plan(self, context: Context) -> list[ChunkSpec]:
        size, limit = context.job.chunk_size, context.job.events
        specs: list[ChunkSpec] = []
        taken = 0
        for i, header in enumerate(self.headers):
            for start in range(0, header.n_events, size):
                stop = min(header.n_events, start + size)
                if limit is not None:
                    stop = min(stop, start + limit - taken)
                if stop <= start:
                    break
                specs.append(ChunkSpec(len(specs), stop - start, {"file": i, "start": start, "stop": stop, "first_event": taken}))
                taken += stop - start
        return specs

    def info(self) -> SourceInfo:
        modes = sorted({h.running_mode or "?" for h in self.headers})
        return SourceInfo(self.cross_section, self.cross_section_error, True, f"MESMER {', '.join(modes)}: {', '.join(f.name for f in self.files)}")

    def _events(self, file_index: int, start: int, stop: int) -> Any:
        """Events [start, stop) of a file. An open reader is continued when chunks come in order
        (xz streams cannot seek); otherwise the file is reopened."""
        from muone import mesmer

        state = self._open.get(file_index)
        if state is None or state["position"] > start:
            state = {"iter": mesmer.iter_chunks(self.files[file_index], self.chunk_size), "position": 0, "buffer": None}
            self._open = {file_index: state}
        parts = []
        while state["position"] < stop:
            buf = state["buffer"] if state["buffer"] is not None else next(state["iter"], None)
            if buf is None:
                raise InputError(f"{self.files[file_index]}: fewer events than its header announces ({state['position']})")
            state["buffer"] = None
            lo, hi = state["position"], state["position"] + len(buf)
            a, b = max(start, lo) - lo, min(stop, hi) - lo
            if b > a:
                parts.append(buf[a:b])
            if hi > stop:
                state["buffer"], state["position"] = buf[stop - lo:], stop
            else:
                state["position"] = hi
        return mesmer.MesmerChunk.concatenate(parts)

    def read(self, spec: ChunkSpec, chunk: Chunk) -> ak.Array:
        d = spec.data
        ev = self._events(d["file"], d["start"], d["stop"])
        rng, n, scale = chunk.rng, len(ev), self.scale[d["file"]]
        tx, ty = self.beam.slopes(rng, n)
        norm = 1.0 / np.sqrt(1.0 + tx * tx + ty * ty)
        nx, ny, nz = tx * norm, ty * norm, norm
        counts = np.diff(ev.offsets)
        rep = lambda a: np.repeat(a, counts)  # noqa: E731  (per event -> per particle)
        px, py, pz = rotate_from_z(ev.px, ev.py, ev.pz, rep(nx), rep(ny), rep(nz))
        bpx, bpy, bpz = rotate_from_z(ev.beam[:, 0], ev.beam[:, 1], ev.beam[:, 2], nx, ny, nz)
        target, z = choose_interaction_points(rng, n, self.targets)
        x, y = self.beam.spots(rng, n)
        particles = {
            "pdg": ev.pdg, "px": px, "py": py, "pz": pz, "E": ev.E,
            "vx": rep(x), "vy": rep(y), "vz": rep(z), "origin": np.full(len(ev.pdg), ORIGIN_HARD, np.int8),
        }
        hard = HardProcess(
            process=np.full(n, PROCESS["mesmer"], np.int32), target=target, vertex=(x, y, z),
            t=ev.t24, t_mu=ev.t13, weight=ev.w_full * scale, weight_norun=ev.w_norun * scale,
            weight_lep=ev.w_lep * scale, vp=ev.vp * scale,
            beam={"px": bpx, "py": bpy, "pz": bpz, "E": ev.beam[:, 3]}, counts=counts.astype(np.int64), particles=particles,
        )
        pile_counts, pileup = self.beam.pileup(rng, n)
        return build_events(d["first_event"], self.params.run, hard, pile_counts, pileup)


@hookimpl
def muone_plugins() -> list[type]:
    return [MesmerSource]
