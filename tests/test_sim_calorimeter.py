"""The calorimeter fast simulation (``sim_calorimeter``) against its model (PHYSICS.md section 9).

Single particles are made directly as events with the ``mc.particles`` layout; the processor is
run through its plugin interface (setup/process) with a fixed chunk seed.
"""

from __future__ import annotations

import math
from pathlib import Path

import awkward as ak
import muone
import numpy as np
import pytest
from muone.mc import particles_record
from muone.plugins.sim_calorimeter import SimCalorimeter
from muone.processor import Chunk, ChunkSpec, Context
from muone.simulation.calorimeter import (
    CaloModel,
    adc_to_energy,
    containment_radius_fraction,
    quadrant_integral,
)
from scipy import integrate

PRESET = {"preset": "pilot2023"}
Z_CAL = 3557.7  # pilot2023 calorimeter front face [mm]
HALF = 14.25  # half crystal [mm]
RM = 20.0


def make_events(pdg, energy, x=0.0, y=0.0, tx=0.0, ty=0.0, vz=1160.0, counts=None, origin=0) -> ak.Array:
    """Events with one particle each (or ``counts`` per event) of the given kinds, aimed at the
    front-face point (x, y) with slopes (tx, ty) from a vertex at z = vz."""
    energy = np.atleast_1d(np.asarray(energy, float))
    n = len(energy)
    pdg = np.broadcast_to(np.asarray(pdg), (n,)).astype(np.int32)
    tx = np.broadcast_to(np.asarray(tx, float), (n,))
    ty = np.broadcast_to(np.asarray(ty, float), (n,))
    mass = np.where(np.abs(pdg) == 13, 0.1056583755, np.where(np.abs(pdg) == 11, 0.000510999, 0.0))
    p = np.sqrt(np.maximum(energy**2 - mass**2, 0.0))
    pz = p / np.sqrt(1 + tx**2 + ty**2)
    dz = Z_CAL - vz
    vx = np.broadcast_to(np.asarray(x, float), (n,)) - tx * dz
    vy = np.broadcast_to(np.asarray(y, float), (n,)) - ty * dz
    counts = np.ones(n, np.int64) if counts is None else np.asarray(counts)
    particles = particles_record(counts, pdg, tx * pz, ty * pz, pz, energy, vx, vy, np.full(n, vz), np.full(n, origin, np.int8))
    n_ev = len(counts)
    mc = ak.zip({"particles": particles}, depth_limit=1)
    return ak.zip({"run": np.zeros(n_ev, np.int64), "event": np.arange(n_ev), "mc": mc}, depth_limit=1)


def empty_events(n: int) -> ak.Array:
    """``n`` events without particles."""
    particles = particles_record(np.zeros(n, np.int64), np.zeros(0, np.int32), *([np.zeros(0)] * 7), np.zeros(0, np.int8))
    return ak.zip({"run": np.zeros(n, np.int64), "event": np.arange(n), "mc": ak.zip({"particles": particles}, depth_limit=1)}, depth_limit=1)


def simulate(events: ak.Array, seed: int = 1, instance: str = "sim_calorimeter", **params) -> tuple[np.ndarray, np.ndarray, SimCalorimeter]:
    proc = SimCalorimeter(SimCalorimeter.Params(**params), instance)
    proc.setup(Context(job=None, geometry=PRESET, output_dir=Path(".")))
    out = proc.process(events, Chunk(ChunkSpec(0, len(events)), seed, instance))
    adc = out.collections["raw.calo"]
    truth = out.collections["mc.calo_truth"]
    return ak.to_numpy(adc), ak.to_numpy(truth), proc


# --- the lateral profile -------------------------------------------------------------------


def profile_density(x, y, p=0.8, rc=0.15 * RM, rt=0.84 * RM):
    r2 = x * x + y * y
    return p * rc**2 / (math.pi * (r2 + rc**2) ** 2) + (1 - p) * rt**2 / (math.pi * (r2 + rt**2) ** 2)


def test_rectangle_integral_is_exact_and_normalised():
    for a, b, r in [(14.25, 14.25, 3.0), (5.0, 30.0, 16.8), (100.0, 2.0, 1.0)]:
        num, _ = integrate.dblquad(lambda yy, xx, r=r: r**2 / (math.pi * (xx * xx + yy * yy + r * r) ** 2), 0, a, 0, b, epsabs=1e-13)
        assert quadrant_integral(a, b, r) == pytest.approx(num, rel=1e-8)
        # odd in each edge: signed rectangles
        assert quadrant_integral(-a, b, r) == -quadrant_integral(a, b, r) == quadrant_integral(a, -b, r)
    assert 4 * quadrant_integral(1e9, 1e9, 3.0) == pytest.approx(1.0, abs=1e-8)
    # ~90 % within one Moliere radius (default profile)
    f = containment_radius_fraction(np.array([1.0, 2.0, 3.5]) * RM, 0.8, 0.15 * RM, 0.84 * RM)
    assert f[0] == pytest.approx(0.90, abs=0.002) and 0.95 < f[1] < 0.98 and f[2] > 0.985


def test_central_crystal_fraction_matches_the_profile_integral():
    _, truth, _ = simulate(make_events(11, [10.0]), noise_per_crystal=0.0)
    central = truth[0, 12] / 10.0
    expected, _ = integrate.dblquad(lambda yy, xx: profile_density(xx, yy), -HALF, HALF, -HALF, HALF, epsabs=1e-12)
    assert central == pytest.approx(expected, rel=1e-7)
    assert central == pytest.approx(0.8666, abs=1e-4)
    # the 5 x 5 matrix: the rest is lateral leakage
    total, _ = integrate.dblquad(lambda yy, xx: profile_density(xx, yy), -5 * HALF, 5 * HALF, -5 * HALF, 5 * HALF, epsabs=1e-12)
    assert truth[0].sum() / 10.0 == pytest.approx(total, rel=1e-7)
    assert truth[0].sum() / 10.0 == pytest.approx(0.9902, abs=1e-4)
    # symmetric: the four direct neighbours get the same
    assert np.allclose(truth[0, [7, 11, 13, 17]], truth[0, 7], rtol=1e-12)


def test_off_centre_and_edge_showers_leak_more():
    e = make_events(11, [20.0, 20.0, 20.0], x=[0.0, 57.0, 70.0], y=[0.0, 57.0, 0.0])
    _, truth, proc = simulate(e, noise_per_crystal=0.0)
    frac = proc.model.cell_fractions([0.0, 57.0, 70.0], [0.0, 57.0, 0.0])
    assert np.allclose(truth / 20.0, frac, rtol=1e-12)
    sums = truth.sum(axis=1) / 20.0
    assert sums[0] > sums[1] + 0.05 > sums[2] + 0.05  # the corner crystal leaks on two sides, the edge more
    assert np.argmax(truth[1]) == 24 and np.argmax(truth[2]) == 14
    assert 0.55 < sums[2] < 0.75


@pytest.mark.parametrize("energy", [2.0, 10.0, 50.0])
def test_energy_resolution(energy):
    """sum of the 25 crystals (ADC - pedestal) vs the true energy: mean = containment (leakage),
    RMS = f sqrt(a^2/E + b^2) (+) sqrt(25) sigma_noise (+) ADC rounding, all relative to E."""
    n = 20_000
    adc, truth, proc = simulate(make_events(11, np.full(n, energy)), seed=int(energy))
    m = proc.model
    e_sum = adc_to_energy(adc, m.adc_per_gev, m.pedestal).sum(axis=1)
    rel = (e_sum - energy) / energy
    f = truth[0].sum() / energy
    model = math.sqrt(f**2 * (0.028**2 / energy + 0.003**2) + 25 * (0.040**2 + 1 / 12 / m.adc_per_gev**2) / energy**2)
    err = model / math.sqrt(2 * n)
    assert rel.std() == pytest.approx(model, abs=4 * err)
    assert rel.mean() == pytest.approx(f - 1, abs=4 * model / math.sqrt(n))
    # the truth has no fluctuation
    assert np.allclose(truth.sum(axis=1), f * energy, rtol=1e-12)


def test_photons_shower_like_electrons_and_other_particles_are_ignored():
    e = make_events([22, -11, 11, 211, 12], [10.0] * 5)
    _, truth, _ = simulate(e, noise_per_crystal=0.0)
    assert np.allclose(truth[0], truth[1]) and np.allclose(truth[0], truth[2])
    assert np.all(truth[3] == 0) and np.all(truth[4] == 0)


def test_muon_mip_deposit():
    e = make_events([-13, 13, -13], [160.0, 50.0, 160.0], x=[0.0, 40.0, 0.0], y=[0.0, -40.0, 0.0], tx=[0.0, 0.0, 0.03])
    adc, truth, proc = simulate(e, noise_per_crystal=0.0)
    mip = 0.0102 * 22.0  # 10.2 MeV/cm x 22 cm
    assert truth[0, 12] == pytest.approx(mip, rel=1e-12) and truth[0].sum() == pytest.approx(mip, rel=1e-12)
    cell = proc.model  # (40, -40) is in the crystal ix = 3, iy = 1
    assert truth[1, 1 * 5 + 3] == pytest.approx(mip, rel=1e-12) and cell.n == 5
    assert truth[2].sum() == pytest.approx(mip * math.sqrt(1 + 0.03**2), rel=1e-9)  # longer path at an angle
    assert adc[0, 12] == 200 + round(mip * 1000) and np.all(np.delete(adc[0], 12) == 200)


def test_acceptance():
    # outside the front face (71.25 mm half width), backwards, produced behind the front face
    outside = make_events([11, 11], [10.0, 10.0], x=[80.0, 0.0], y=[0.0, -75.0])
    _, truth, _ = simulate(outside, noise_per_crystal=0.0)
    assert np.all(truth == 0)
    e = make_events([11, 11], [10.0, 10.0])
    backwards = ak.with_field(e, ak.with_field(e.mc.particles, -e.mc.particles.pz, "pz"), ["mc", "particles"])
    behind = ak.with_field(e, e.mc.particles.vz + 3000.0, ["mc", "particles", "vz"])
    for ev in (backwards, behind):
        _, truth, _ = simulate(ev, noise_per_crystal=0.0)
        assert np.all(truth == 0)
    # every origin counts (pile-up muons, decay products)
    _, truth, _ = simulate(make_events([11], [5.0], origin=1), noise_per_crystal=0.0)
    assert truth.sum() > 4.9


def test_several_particles_add_up():
    e = make_events([11, 22, -13], [10.0, 5.0, 160.0], x=[-30.0, 30.0, 0.0], counts=[3])
    _, truth, _ = simulate(e, noise_per_crystal=0.0)
    parts = [simulate(make_events([p], [en], x=[xx]), noise_per_crystal=0.0)[1] for p, en, xx in [(11, 10.0, -30.0), (22, 5.0, 30.0), (-13, 160.0, 0.0)]]
    assert np.allclose(truth, sum(parts), rtol=1e-12)


def test_noise_only_events():
    n = 4000
    adc, truth, _ = simulate(empty_events(n), seed=5)
    assert adc.shape == (n, 25) and adc.dtype == np.int32 and truth.dtype == np.float64
    assert np.all(truth == 0)
    e = adc_to_energy(adc)
    assert e.std() == pytest.approx(0.040, rel=0.01)
    assert abs(e.mean()) < 0.040 * 4 / math.sqrt(e.size)
    assert e.sum(axis=1).std() == pytest.approx(0.2, rel=0.04)  # independent crystals
    adc, _, _ = simulate(empty_events(100), noise_per_crystal=0.0)
    assert np.all(adc == 200)


def test_reproducible_with_the_same_seed():
    e = make_events(np.tile([11, 22, -13], 100), np.tile([5.0, 20.0, 160.0], 100), x=np.linspace(-60, 60, 300), y=np.linspace(30, -30, 300))
    a1, t1, _ = simulate(e, seed=3)
    a2, t2, _ = simulate(e, seed=3)
    assert np.array_equal(a1, a2) and np.array_equal(t1, t2)
    a3, t3, _ = simulate(e, seed=4)
    assert not np.array_equal(a1, a3) and np.array_equal(t1, t3)
    a4, _, _ = simulate(e, seed=3, instance="calo2")  # another instance: another random stream
    assert not np.array_equal(a1, a4)


def test_adc_scale_pedestal_and_saturation():
    e = make_events([11], [100.0])
    adc, truth, _ = simulate(e, noise_per_crystal=0.0, stochastic=0.0, constant=0.0, adc_per_gev=100.0, pedestal=10, saturation=5000)
    expected = np.clip(np.rint(10 + truth[0] * 100.0), 0, 5000)
    assert np.array_equal(adc[0], expected) and adc[0, 12] == 5000
    # noise below the pedestal is clipped at 0
    adc, _, _ = simulate(empty_events(500), pedestal=0)
    assert adc.min() == 0 and (adc == 0).mean() > 0.4


def test_model_cell_numbering_follows_the_geometry():
    from muone.geometry import load_geometry

    cal = load_geometry(PRESET).calorimeter
    m = CaloModel(z=cal.z, x=cal.x, y=cal.y, crystal_size=cal.crystal_size, n=cal.n, crystal_length=cal.crystal_length, moliere_radius=cal.moliere_radius)
    xs = np.array([-57.0, 0.0, 28.0, 57.0])
    ys = np.array([-57.0, 0.0, -28.0, 30.0])
    frac = m.cell_fractions(xs, ys)
    assert np.array_equal(np.argmax(frac, axis=1), cal.cell_of(xs, ys))


def test_job_with_elastic_events(tmp_path):
    res = muone.run({
        "job": {"events": 3000, "chunk_size": 1500, "seed": 11, "output_dir": str(tmp_path / "sim"), "save": ["raw", "mc"]},
        "geometry": PRESET,
        "source": {"plugin": "elastic", "ee_min": 5.0},
        "processors": [{"plugin": "sim_calorimeter"}],
    })
    from muone import rootio

    ev = ak.concatenate([rootio.read_events(res.output_dir / f, res.manifest["events_schema"]) for entry in res.manifest["chunks"] for f in entry["files"] if f.startswith("events/")])
    assert str(ak.type(ev.raw.calo)).endswith("25 * int32") and str(ak.type(ev.mc.calo_truth)).endswith("25 * float64")
    # electrons hitting the central crystal: nearly all their energy is in the matrix
    hard = ev.mc.particles[(ev.mc.particles.origin == 0) & (ev.mc.particles.pdg == 11)][:, 0]
    tx, ty = hard.px / hard.pz, hard.py / hard.pz
    x = hard.vx + tx * (Z_CAL - hard.vz)
    y = hard.vy + ty * (Z_CAL - hard.vz)
    central = ak.to_numpy((abs(x) < 10) & (abs(y) < 10))
    assert central.sum() > 20
    e_sum = adc_to_energy(ak.to_numpy(ev.raw.calo)).sum(axis=1)[central]
    e_true = ak.to_numpy(hard.E)[central]
    muons = ak.to_numpy(ak.sum(ev.mc.calo_truth, axis=1))[central] - 0.985 * e_true  # muon MIPs and leakage
    assert np.all(np.abs(e_sum - e_true) < 0.1 * e_true + 1.0) and np.all(muons > -0.1)


def test_geometry_without_calorimeter_is_rejected(tmp_path):
    with pytest.raises(muone.SteeringError) as info:
        muone.run({
            "job": {"events": 10, "output_dir": str(tmp_path / "x")},
            "source": {"plugin": "elastic"},
            "processors": [{"plugin": "sim_calorimeter", "pedestal": 300, "saturation": 100}],
        })
    text = str(info.value)
    assert "processors.sim_calorimeter" in text and "saturation" in text
    with pytest.raises(muone.SteeringError, match="no calorimeter"):
        muone.run({"job": {"events": 10, "output_dir": str(tmp_path / "y")}, "source": {"plugin": "elastic"}, "processors": [{"plugin": "sim_calorimeter"}]})
