"""Working test plugins: a random smearing processor, a slow one, one that fails on a chosen
chunk, and a finalizer reading earlier jobs."""

from __future__ import annotations

import time

import awkward as ak
import hist
import numpy as np
from pydantic import Field

import muone
from muone import Finalizer, Output, Params, Processor


class SmearParams(Params):
    sigma: float = Field(0.01, ge=0, description="Relative Gaussian smearing of the beam energy.")


class Smear(Processor):
    """Smear the energy of the first beam muon (uses chunk.rng)."""

    name = "smear"
    Params = SmearParams
    reads = ("mc.beam",)
    writes = ("smeared.energy",)

    def process(self, events, chunk):
        energy = np.asarray(events.mc.beam.E)
        noise = chunk.rng.standard_normal(len(events))
        h = hist.Hist.new.Reg(50, 100, 220, name="e").Weight()
        smeared = energy * (1 + self.params.sigma * noise)
        h.fill(e=smeared[np.isfinite(smeared)])
        return Output(collections={"smeared.energy": smeared}, results={"smeared_energy": h, "n": len(events)})


class SleepyParams(Params):
    seconds: float = Field(0.2, ge=0, description="Seconds to sleep per chunk.")


class Sleepy(Processor):
    """Sleep per chunk (to interrupt a job in the middle)."""

    name = "sleepy"
    Params = SleepyParams

    def process(self, events, chunk):
        time.sleep(self.params.seconds)
        return None


class ExplodeParams(Params):
    on_chunk: int = Field(1, ge=0, description="Chunk index on which to raise.")


class Explode(Processor):
    """Raise ValueError on one chunk."""

    name = "explode"
    Params = ExplodeParams

    def process(self, events, chunk):
        if chunk.index == self.params.on_chunk:
            raise ValueError(f"boom on chunk {chunk.index}")
        return Output(results={"seen": len(events)})


class SumInputsParams(Params):
    histogram: str = Field("histograms/beam_energy", description="Histogram to sum over the inputs.")


class SumInputs(Finalizer):
    """Sum one histogram over every [job] input and write the total."""

    name = "sum_inputs"
    Params = SumInputsParams
    required_inputs = ("first",)

    def finalize(self, results, context):
        total = sum(r.histograms[self.params.histogram].sum().value for r in context.inputs.values())
        summed = None
        for r in context.inputs.values():
            h = r.histograms[self.params.histogram]
            summed = h if summed is None else summed + h
        return {"total": float(total), "summed": summed, "summary": f"sum over inputs: {total:.1f}"}


@muone.hookimpl
def muone_plugins():
    return [Smear, Sleepy, Explode, SumInputs]


@muone.hookimpl
def muone_histogram_presets():
    return {"testplugin_smeared": {"smeared_energy_hist": {"axes": [{"expr": "smeared.energy", "bins": 40, "start": 100.0, "stop": 220.0}]}}}
