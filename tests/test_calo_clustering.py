"""Calorimeter clustering (processor ``calo_clustering``, kernel muone.reconstruction.calorimeter)."""

from __future__ import annotations

import math
from pathlib import Path

import awkward as ak
import muone
import numpy as np
import pytest
from muone.mc import particles_record
from muone.plugins.calo_clustering import CaloClustering, cluster
from muone.plugins.sim_calorimeter import SimCalorimeter
from muone.processor import Chunk, ChunkSpec, Context

PILOT = {"preset": "pilot2023"}
Z_CAL = 3557.7
CRYSTAL = 28.5
CTX = Context(job=None, geometry=PILOT, output_dir=Path("."))
CLUSTER_TYPE = "var * {energy: float64, x: float64, y: float64, n_cells: int32, seed: int32}"


def shower_events(pdg, energy, x, y, counts=None) -> ak.Array:
    """Events of particles from z = 1160 mm aimed at front-face points (x, y) [mm]."""
    energy, x, y = (np.atleast_1d(np.asarray(a, float)) for a in (energy, x, y))
    n = len(energy)
    mass = 0.1056583755 if abs(pdg) == 13 else 0.000511
    tx, ty = x / (Z_CAL - 1160.0), y / (Z_CAL - 1160.0)
    pz = np.sqrt(energy**2 - mass**2) / np.sqrt(1 + tx**2 + ty**2)
    counts = np.ones(n, np.int64) if counts is None else np.asarray(counts, np.int64)
    parts = particles_record(counts, np.full(n, pdg), tx * pz, ty * pz, pz, energy, np.zeros(n), np.zeros(n), np.full(n, 1160.0),
                             np.zeros(n, np.int8))
    m = len(counts)
    return ak.zip({"run": np.zeros(m, np.int64), "event": np.arange(m), "mc": ak.zip({"particles": parts}, depth_limit=1)}, depth_limit=1)


def reconstruct(events: ak.Array, seed: int = 1, **params) -> ak.Array:
    sim = SimCalorimeter(SimCalorimeter.Params())
    sim.setup(CTX)
    adc = sim.process(events, Chunk(ChunkSpec(0, len(events)), seed, "sim_calorimeter")).collections["raw.calo"]
    events = ak.with_field(events, ak.zip({"calo": adc}, depth_limit=1), "raw")
    proc = CaloClustering(CaloClustering.Params(**params))
    proc.setup(CTX)
    return proc.process(events, Chunk(ChunkSpec(0, len(events)), seed, "calo_clustering")).collections["calo_clusters"]


# ---- reference implementation ------------------------------------------------------------------


def reference_clusters(adc, n, pedestal, gain, seed_thr, cell_thr, size, log_w0, scale, cell_x, cell_y):
    """Pure-Python clustering following the documented rules."""
    out = []
    for row in adc:
        e = [(a - pedestal) / gain for a in row]

        def neighbours(c):
            ix, iy = c % n, c // n
            return [jy * n + jx for jy in range(iy - 1, iy + 2) for jx in range(ix - 1, ix + 2)
                    if (jx, jy) != (ix, iy) and 0 <= jx < n and 0 <= jy < n]

        seeds = [c for c in range(n * n) if e[c] > seed_thr
                 and all((e[c] > e[j]) if j < c else (e[c] >= e[j]) for j in neighbours(c))]
        seeds.sort(key=lambda c: (-e[c], c))
        owner = {s: k for k, s in enumerate(seeds)}
        clusters = []
        half = size // 2
        for k, s in enumerate(seeds):
            sx, sy = s % n, s // n
            cells = []
            for jy in range(max(0, sy - half), min(n, sy + half + 1)):
                for jx in range(max(0, sx - half), min(n, sx + half + 1)):
                    j = jy * n + jx
                    if j == s or (j not in owner and e[j] > cell_thr):
                        owner[j] = k
                        cells.append(j)
            total = sum(e[j] for j in cells)
            w = {j: max(0.0, log_w0 + math.log(e[j] / total)) if (log_w0 > 0 and e[j] > 0) else 0.0 for j in cells}
            if not sum(w.values()) > 0:
                w = {j: e[j] for j in cells}
            sw = sum(w.values())
            clusters.append((total * scale, sum(w[j] * cell_x[j] for j in cells) / sw, sum(w[j] * cell_y[j] for j in cells) / sw, len(cells), s))
        out.append(clusters)
    return out


@pytest.mark.parametrize("params", [{}, {"position": "linear", "cluster_size": 5}, {"seed_threshold": 0.0, "cell_threshold": 0.0, "cluster_size": 1}])
def test_kernel_matches_reference(params):
    rng = np.random.default_rng(7)
    n = 5
    adc = rng.normal(200, 40, (300, n * n)).round().astype(np.int32)
    for i in range(300):  # showers of a few GeV and exact ties between neighbours
        for _ in range(rng.integers(0, 4)):
            c = rng.integers(n * n)
            adc[i, c] += int(rng.exponential(3000))
        if i % 10 == 0:
            adc[i, 6] = adc[i, 7] = 2000
    proc = CaloClustering(CaloClustering.Params(**params))
    proc.setup(CTX)
    p = proc.params
    cols, counts = cluster(adc, n, proc.cell_x, proc.cell_y, p, proc.energy_scale)
    ref = reference_clusters(adc, n, p.pedestal, p.adc_per_gev, p.seed_threshold, p.cell_threshold, p.cluster_size,
                             p.log_w0 if p.position == "log" else 0.0, proc.energy_scale, proc.cell_x, proc.cell_y)
    assert list(counts) == [len(r) for r in ref] and counts.sum() > 300
    flat = [c for r in ref for c in r]
    np.testing.assert_allclose(cols["energy"], [c[0] for c in flat], rtol=1e-12)
    np.testing.assert_allclose(cols["x"], [c[1] for c in flat], rtol=0, atol=1e-9)
    np.testing.assert_allclose(cols["y"], [c[2] for c in flat], rtol=0, atol=1e-9)
    assert list(cols["n_cells"]) == [c[3] for c in flat] and list(cols["seed"]) == [c[4] for c in flat]


def test_hand_made_matrix():
    adc = np.full((1, 25), 200, np.int32)
    adc[0, 12] = 200 + 8000   # 8 GeV in the centre crystal
    adc[0, 13] = 200 + 1000   # 1 GeV right of it (not a seed: lower than its neighbour)
    adc[0, 7] = 200 + 30      # below the cell threshold (0.04 GeV)
    adc[0, 0] = 200 + 500     # a separate 0.5 GeV seed in the corner
    proc = CaloClustering(CaloClustering.Params(energy_scale=1.0))
    proc.setup(CTX)
    cols, counts = cluster(adc, 5, proc.cell_x, proc.cell_y, proc.params, 1.0)
    assert list(counts) == [2] and list(cols["seed"]) == [12, 0] and list(cols["n_cells"]) == [2, 1]
    assert cols["energy"] == pytest.approx([9.0, 0.5])
    w = 4.0 + math.log(1.0 / 9.0)
    assert cols["x"][0] == pytest.approx(w * CRYSTAL / (4.0 + math.log(8.0 / 9.0) + w)) and cols["y"][0] == pytest.approx(0.0)
    assert cols["x"][1] == pytest.approx(-2 * CRYSTAL) and cols["y"][1] == pytest.approx(-2 * CRYSTAL)


def test_shared_cells_go_to_the_more_energetic_seed():
    adc = np.full((1, 25), 200, np.int32)
    adc[0, 11] = 200 + 5000   # seeds two crystals apart: the middle one (12) lies in both windows
    adc[0, 13] = 200 + 3000
    adc[0, 12] = 200 + 1000
    cols, counts = cluster(adc, 5, np.zeros(25), np.zeros(25), CaloClustering.Params(), 1.0)
    assert list(counts) == [2]
    assert list(cols["seed"]) == [11, 13] and list(cols["n_cells"]) == [2, 1]
    assert cols["energy"] == pytest.approx([6.0, 3.0])  # no crystal counted twice


# ---- simulated showers --------------------------------------------------------------------------


@pytest.mark.parametrize("energy", [2.0, 5.0, 20.0, 80.0])
def test_single_electrons_energy_and_position(energy):
    rng = np.random.default_rng(int(energy))
    n = 4000
    x, y = rng.uniform(-1.5 * CRYSTAL, 1.5 * CRYSTAL, (2, n))  # impacts on the central 3 x 3 crystals
    cl = reconstruct(shower_events(11, np.full(n, energy), x, y))
    assert str(cl.type) == f"{n} * {CLUSTER_TYPE}"
    assert ak.all(ak.num(cl) == 1)
    lead = cl[:, 0]
    ratio = ak.to_numpy(lead.energy) / energy
    # the resolution of the simulation (2.8 %/sqrt(E) + 0.3 %), 40 MeV noise in up to 9 crystals and
    # the spread of the window containment with the impact point (0.25 %)
    sigma = math.sqrt(0.028**2 / energy + 0.003**2 + 9 * 0.040**2 / energy**2 + 0.0025**2)
    assert abs(ratio.mean() - 1.0) < 0.01
    assert 0.028 / math.sqrt(energy) < ratio.std() < 1.1 * sigma
    assert np.mean(np.abs(ratio - 1.0) < 3 * sigma) > 0.99
    dx = ak.to_numpy(lead.x) - x
    dy = ak.to_numpy(lead.y) - y
    limit = {2.0: 4.0, 5.0: 2.0, 20.0: 1.4, 80.0: 1.4}[energy]  # measured: 3.6, 1.7, 1.15, 1.12 mm
    assert dx.std() < limit and dy.std() < limit and abs(dx.mean()) < 0.2 and abs(dy.mean()) < 0.2


def test_two_separated_showers():
    n = 1000
    x = np.column_stack([np.full(n, -CRYSTAL), np.full(n, 2 * CRYSTAL)]).ravel()  # crystals ix = 1 and 4
    y = np.column_stack([np.full(n, 5.0), np.full(n, -20.0)]).ravel()
    energy = np.column_stack([np.full(n, 10.0), np.full(n, 4.0)]).ravel()
    cl = reconstruct(shower_events(11, energy, x, y, counts=np.full(n, 2)))
    assert ak.all(ak.num(cl) == 2)
    assert ak.all(cl.energy[:, 0] > cl.energy[:, 1])
    assert ak.mean(cl.energy[:, 0]) == pytest.approx(10.0, rel=0.01)
    assert ak.mean(cl.energy[:, 1]) == pytest.approx(4.0 * 0.95, rel=0.03)  # at the edge of the matrix: leakage
    assert abs(ak.mean(cl.x[:, 0]) + CRYSTAL) < 1.0 and abs(ak.mean(cl.y[:, 0]) - 5.0) < 1.0
    assert abs(ak.mean(cl.x[:, 1]) - 2 * CRYSTAL) < 3.0 and abs(ak.mean(cl.y[:, 1]) + 20.0) < 1.5
    assert ak.all(cl.seed[:, 0] == 11) and ak.all(cl.seed[:, 1] == 9)


def test_muons_and_noise_make_no_clusters():
    rng = np.random.default_rng(3)
    n = 5000
    x, y = rng.uniform(-60, 60, (2, n))
    cl = reconstruct(shower_events(-13, np.full(n, 150.0), x, y))
    assert ak.sum(ak.num(cl)) < 0.005 * n  # a MIP deposit (0.22 GeV) rarely passes the 0.35 GeV seed threshold
    empty = reconstruct(shower_events(-13, np.full(n, 150.0), np.full(n, 500.0), np.full(n, 500.0)))
    assert ak.sum(ak.num(empty)) == 0


def test_job_with_elastic_events(tmp_path):
    res = muone.run({
        "job": {"events": 2000, "chunk_size": 1000, "output_dir": str(tmp_path / "job"), "save": ["mc", "calo_clusters"]},
        "geometry": PILOT,
        "source": {"plugin": "elastic"},
        "processors": [{"plugin": "sim_calorimeter"}, {"plugin": "calo_clustering"}],
    })
    ev = res.events()
    assert str(ev.calo_clusters.type) == f"2000 * {CLUSTER_TYPE}"
    assert res.merged["calo_clustering"]["calo_clusters"] == ak.sum(ak.num(ev.calo_clusters))
    # a jagged raw.calo (as read back from a file) gives the same clusters
    proc = CaloClustering(CaloClustering.Params())
    proc.setup(CTX)
    adc = ak.Array(ak.to_list(ak.Array([[200] * 25, [200] * 24 + [5000]])))
    out = proc.process(ak.zip({"raw": ak.zip({"calo": adc}, depth_limit=1)}, depth_limit=1), Chunk(ChunkSpec(0, 2), 1, "c"))
    assert ak.num(out.collections["calo_clusters"]).tolist() == [0, 1]
    with pytest.raises(muone.errors.InputError, match="raw.calo"):
        proc.process(ak.zip({"raw": ak.zip({"calo": ak.Array([[200] * 24])}, depth_limit=1)}, depth_limit=1), Chunk(ChunkSpec(0, 1), 1, "c"))


def test_parameters_are_validated():
    with pytest.raises(ValueError, match="odd"):
        CaloClustering.Params(cluster_size=4)
    assert CaloClustering.Params().adc_per_gev == SimCalorimeter.Params().adc_per_gev
    assert CaloClustering.Params().pedestal == SimCalorimeter.Params().pedestal
    proc = CaloClustering(CaloClustering.Params())
    proc.setup(CTX)
    assert proc.energy_scale == pytest.approx(1 / 0.97164, rel=1e-4)
