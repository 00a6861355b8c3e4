"""Reweightable templates (muone.fit.Template) and the ``templates`` / ``truth_angles`` processors."""

from __future__ import annotations

import pickle

import awkward as ak
import muone
import numpy as np
import pytest
from muone import physics as P
from muone.errors import SteeringError
from muone.fit import Axis, Template
from muone.fit.truth import AngleModel, truth_angles
from muone.processor import Chunk, ChunkSpec

LL = P.LeptonLike(P.LL_K_REF, P.LL_M_REF)
MODELS = [None, LL, P.LeptonLike(0.2, 0.02), P.Pol2(P.POL2_C1_REF, P.POL2_C2_REF), P.Dispersive()]


def exact_weights(model, t, t_mu, c0, c1, c2, c5):
    """Per-event reweighting: w = c0 + c1 vp(t)^2 + c2 vp(t) vp(t_mu) + c5 vp(t_mu)^2."""
    had = (lambda x: 0.0) if model is None else model
    vp = 1.0 / (1.0 - P.delta_alpha_lep(t) - had(t))
    vpm = 1.0 / (1.0 - P.delta_alpha_lep(t_mu) - had(t_mu))
    return c0 + c1 * vp**2 + c2 * vp * vpm + c5 * vpm**2


def synthetic(n, seed=1, radiative=True):
    """Events with t over the MUonE range, t_mu != t, all four coefficients (as MESMER gives)."""
    rng = np.random.default_rng(seed)
    t = -np.exp(rng.uniform(np.log(2e-4), np.log(0.16), n))
    t_mu = np.maximum(t * np.exp(rng.normal(0.0, 0.2, n)), -0.2) if radiative else t
    c1 = rng.uniform(0.9, 1.1, n)
    zero = np.zeros(n)
    c0 = rng.normal(0.0, 0.01, n) if radiative else zero
    c2 = rng.normal(0.0, 0.1, n) if radiative else zero
    c5 = rng.uniform(0.0, 0.1, n) if radiative else zero
    x, y = rng.uniform(0, 1, n), rng.uniform(0, 1, n)
    return {"x": x, "y": y, "t": t, "t_mu": t_mu, "c0": c0, "c1": c1, "c2": c2, "c5": c5, "w": rng.uniform(0.5, 1.5, n)}


AXES = [Axis("x", tuple(np.linspace(0, 1, 11))), Axis("y", tuple(np.linspace(0, 1, 6)))]


def filled(ev, sl=slice(None)):
    return Template(AXES).fill([ev["x"][sl], ev["y"][sl]], weight=ev["w"][sl], t=ev["t"][sl], t_mu=ev["t_mu"][sl],
                               c0=ev["c0"][sl], c1=ev["c1"][sl], c2=ev["c2"][sl], c5=ev["c5"][sl])


@pytest.fixture(scope="module")
def radiative_template():
    ev = synthetic(100_000)
    chunks = [filled(ev, slice(i, i + 25_000)) for i in range(0, 100_000, 25_000)]
    return ev, (chunks[0] + chunks[1]) + (chunks[2] + chunks[3])


@pytest.mark.parametrize("model", MODELS, ids=lambda m: type(m).__name__)
def test_expected_equals_exact_per_event_reweighting(radiative_template, model):
    ev, tp = radiative_template
    w = exact_weights(model, ev["t"], ev["t_mu"], ev["c0"], ev["c1"], ev["c2"], ev["c5"])
    exact = np.bincount(tp.bin_index([ev["x"], ev["y"]]), weights=w, minlength=tp.n_bins)
    got = tp.expected(model)
    rel = np.abs(got - exact) / np.abs(exact)
    assert rel.max() < 1e-9, rel.max()
    # the documented bound holds and is itself far below 1e-6
    bound = tp.error_bound(model)
    assert np.all(np.abs(got - exact) <= bound + 1e-12 * np.abs(exact))
    assert (bound / np.abs(exact)).max() < 1e-8


def test_two_body_events_use_only_c1_and_match_exactly():
    ev = synthetic(100_000, seed=4, radiative=False)
    tp = Template(AXES).fill([ev["x"], ev["y"]], t=ev["t"], c1=ev["c1"])
    assert set(tp.terms) == {"c1"}
    for model in (LL, P.Pol2(-0.01, -0.02)):
        w = exact_weights(model, ev["t"], ev["t"], 0.0, ev["c1"], 0.0, 0.0)
        exact = np.bincount(tp.bin_index([ev["x"], ev["y"]]), weights=w, minlength=tp.n_bins)
        assert np.abs(tp.expected(model) / exact - 1).max() < 1e-10


def test_sums_of_weights_and_entries(radiative_template):
    ev, tp = radiative_template
    h, _, _ = np.histogram2d(ev["x"], ev["y"], bins=[AXES[0].edges_array, AXES[1].edges_array], weights=ev["w"])
    h2, _, _ = np.histogram2d(ev["x"], ev["y"], bins=[AXES[0].edges_array, AXES[1].edges_array], weights=ev["w"] ** 2)
    n, _, _ = np.histogram2d(ev["x"], ev["y"], bins=[AXES[0].edges_array, AXES[1].edges_array])
    assert np.allclose(tp.sumw, h.ravel(), rtol=1e-12)
    assert np.allclose(tp.sumw2, h2.ravel(), rtol=1e-12)
    assert np.array_equal(tp.entries, n.ravel().astype(np.int64))
    assert np.allclose(tp.mc_relative_variance(), h2.ravel() / h.ravel() ** 2)


def test_merging_is_deterministic_and_equals_one_fill(radiative_template):
    ev, merged = radiative_template
    again = [filled(ev, slice(i, i + 25_000)) for i in range(0, 100_000, 25_000)]
    same_tree = (again[0] + again[1]) + (again[2] + again[3])
    for model in (None, LL):
        assert np.array_equal(merged.expected(model), same_tree.expected(model))  # bit for bit
    other_tree = ((again[0] + again[1]) + again[2]) + again[3]
    whole = filled(ev)
    for tp in (other_tree, whole):
        assert np.allclose(tp.expected(LL), merged.expected(LL), rtol=1e-12, atol=0)
        for name in merged.terms:
            assert np.array_equal(tp.terms[name].bins, merged.terms[name].bins)
    assert merged.entries.sum() == 100_000


def test_pickle_round_trip(radiative_template):
    _, tp = radiative_template
    tp.expected(LL)  # builds the cached evaluator, which is not pickled
    back = pickle.loads(pickle.dumps(tp))
    assert back._evaluator is None
    assert np.array_equal(back.expected(LL), tp.expected(LL))
    assert np.array_equal(back.sumw2, tp.sumw2)


def test_cross_term_structure(radiative_template):
    _, tp = radiative_template
    cross = tp.terms["c2"]
    assert cross.moments.shape == (len(cross), 3, 3)
    assert len(cross.cells) == len(cross.cells_mu) == len(cross.abs_sum) == len(cross)


def test_outside_and_non_finite_entries_are_not_filled():
    tp = Template([Axis("x", (0.0, 1.0, 2.0))])
    tp.fill([np.array([0.5, 1.5, 2.0, -0.1, np.nan])], t=np.full(5, -0.01), c1=np.ones(5))
    assert tp.entries.tolist() == [1, 1] and tp.outside == 3


def test_bad_inputs_are_reported():
    tp = Template([Axis("x", (0.0, 1.0))])
    with pytest.raises(ValueError, match="t >= 0"):
        tp.fill([np.array([0.5])], t=np.array([0.01]), c1=np.array([1.0]))
    with pytest.raises(ValueError, match="entries"):
        tp.fill([np.array([0.5, 0.6])], t=np.array([-0.01]), c1=np.array([1.0, 1.0]))
    with pytest.raises(ValueError, match="strictly increasing"):
        Axis("x", (0.0, 0.0))
    other = Template([Axis("x", (0.0, 2.0))])
    with pytest.raises(ValueError, match="different axes"):
        tp + other
    data = Template([Axis("x", (0.0, 1.0))], has_truth=False)
    with pytest.raises(ValueError, match="no truth"):
        data.fill([np.array([0.5])], t=np.array([-0.01]))


# ---------------------------------------------------------------------------------------------
# truth angles


def test_truth_angles_lie_on_the_elastic_curve_and_smear_as_configured(tmp_path):
    res = muone.run({"job": {"events": 20_000, "chunk_size": 20_000, "seed": 5, "output_dir": str(tmp_path / "g"), "save": ["mc"]},
                     "source": {"plugin": "elastic", "beam_energy_spread": 0.0}})
    ev = res.events()
    normals = np.random.default_rng(1).standard_normal((len(ev), 4))
    a = truth_angles(ev, AngleModel(), normals)
    E_e = P.electron_energy_from_t(ak.to_numpy(ev.mc.t))
    assert np.allclose(a["theta_e"], P.theta_e_from_electron_energy(E_e, 160.0), rtol=1e-7, atol=1e-12)
    assert np.allclose(a["theta_mu"], P.theta_mu_from_electron_energy(E_e, 160.0), rtol=1e-6, atol=1e-12)
    shifted = truth_angles(ev, AngleModel(beam_energy_shift=1.6), normals)
    assert np.allclose(shifted["theta_e"], P.theta_e_from_electron_energy(E_e, 161.6), rtol=1e-6, atol=1e-12)
    scaled = truth_angles(ev, AngleModel(angle_scale=1.001), normals)
    assert np.allclose(scaled["theta_mu"], 1.001 * a["theta_mu"], rtol=1e-12)
    # large resolution on angles much larger than it: theta' - theta ~ N(0, sigma)
    sigma = 1e-5
    smeared = truth_angles(ev, AngleModel(resolution=sigma), normals)
    big = a["theta_e"] > 3e-3
    d = (smeared["theta_e"] - a["theta_e"])[big]
    assert abs(d.std() / sigma - 1) < 0.05 and abs(d.mean()) < 5 * sigma / np.sqrt(big.sum()) + 1e-7
    ms = truth_angles(ev, AngleModel(ms_radiation_lengths=0.03), normals)
    low = E_e < 2.0
    assert ((ms["theta_e"] - a["theta_e"])[low]).std() > 5e-4  # ~2 mrad Highland width at 1-2 GeV


TRUTH_STEP = {"plugin": "truth_angles", "resolution": 2e-5, "ms_radiation_lengths": 0.028}


def template_job(out, events=60_000, **extra):
    job = {"job": {"events": events, "chunk_size": 20_000, "seed": 11, "output_dir": str(out), **extra},
           "source": {"plugin": "elastic"},
           "processors": [dict(TRUTH_STEP), {"plugin": "templates", "preset": "muone2d"}]}
    return job


def test_templates_processor_reweights_saved_events_exactly(tmp_path):
    res = muone.run(template_job(tmp_path / "t", save=["mc", "truth"]))
    tp = res.merged["templates"]["template"]
    assert [a.name for a in tp.axes] == ["theta_e", "theta_mu"] and tp.shape == (86, 60)
    assert tp.axes[0].edges[60] == pytest.approx(6e-3) and tp.axes[0].edges[-1] == pytest.approx(32e-3)
    ev = res.events()
    values = [ak.to_numpy(ev.truth.theta_e), ak.to_numpy(ev.truth.theta_mu)]
    bins = tp.bin_index(values)
    inside = bins >= 0
    assert tp.entries.sum() == inside.sum() and tp.outside == (~inside).sum()
    t, c1 = ak.to_numpy(ev.mc.t), ak.to_numpy(ev.mc.vp[:, 1])
    for model in (LL, P.Pol2(-0.01, -0.02)):
        w = exact_weights(model, t, t, 0.0, c1, 0.0, 0.0)
        exact = np.bincount(bins[inside], weights=w[inside], minlength=tp.n_bins)
        got = tp.expected(model)
        nz = exact > 0
        assert np.abs(got[nz] / exact[nz] - 1).max() < 1e-9
        assert np.all(got[~nz] == 0)
    # generated with the reference model: reweighting to it gives back the unit weights
    assert np.allclose(tp.expected(LL), tp.sumw, rtol=1e-10)
    assert res.hist("templates/counts").sum().value == pytest.approx(tp.sumw.sum())


def test_templates_identical_across_executors(tmp_path):
    serial = muone.run(template_job(tmp_path / "s", events=40_000))
    parallel = muone.run(template_job(tmp_path / "p", events=40_000, executor="processes", workers=2))
    a, b = serial.merged["templates"]["template"], parallel.merged["templates"]["template"]
    assert np.array_equal(a.expected(LL), b.expected(LL))
    assert np.array_equal(a.sumw2, b.sumw2)


def test_variations_share_the_smearing_through_random_stream(tmp_path):
    job = template_job(tmp_path / "v", events=20_000)
    job["processors"] += [
        {**TRUTH_STEP, "name": "angles_copy", "output": "truth_copy", "random_stream": "truth_angles"},
        {"plugin": "templates", "name": "copy", "preset": "muone2d", "observables": ["truth_copy.theta_e", "truth_copy.theta_mu"]},
        {**TRUTH_STEP, "name": "angles_own", "output": "truth_own"},
        {"plugin": "templates", "name": "own", "preset": "muone2d", "observables": ["truth_own.theta_e", "truth_own.theta_mu"]},
    ]
    res = muone.run(job)
    nominal = res.merged["templates"]["template"]
    assert np.array_equal(res.merged["copy"]["template"].sumw, nominal.sumw)
    assert not np.array_equal(res.merged["own"]["template"].sumw, nominal.sumw)


def events_with_objects():
    """Two events: per-object candidate angles (jagged), per-event truth."""
    cand = ak.Array([[0.5, 1.5, 7.0], [0.2]])
    best = ak.Array([[False, True, False], [True]])
    return ak.Array({"cand": ak.zip({"theta": cand, "best": best}), "mc": ak.zip({"t": np.array([-0.01, -0.02]), "vp": np.array([[0.0, 2.0], [0.0, 3.0]]),
                                                                                   "weight": np.array([1.0, 1.0])}, depth_limit=1)})


def test_object_axes_broadcast_the_event_truth():
    from muone.plugins.templates import Templates, TemplatesParams

    params = TemplatesParams(axes=[{"expr": "cand.theta", "edges": [0.0, 1.0, 2.0], "name": "theta"}], selection="cand.best", t_mu="", c0="", c2="", c5="")
    proc = Templates(params)
    proc.setup(None)
    out = proc.process(events_with_objects(), Chunk(ChunkSpec(0, 2), 1, "templates"))
    tp = out.results["template"]
    assert tp.entries.tolist() == [1, 1]  # event 0: the best candidate (1.5); event 1: 0.2
    vp2 = lambda t: 1 / (1 - P.delta_alpha_lep(t)) ** 2
    assert np.allclose(tp.expected(None), [3.0 * vp2(-0.02), 2.0 * vp2(-0.01)], rtol=1e-10)


def test_data_mode_without_truth(tmp_path):
    job = template_job(tmp_path / "d", events=20_000)
    job["processors"][1].update(t="", weight="")
    tp = muone.run(job).merged["templates"]["template"]
    assert not tp.has_truth and not tp.terms and tp.sumw.sum() == tp.entries.sum()


@pytest.mark.parametrize("change, message", [
    ({"axes": [{"expr": "truth.theta_e", "bins": 10, "start": 0.0, "stop": 0.03}]}, "either a preset or axes"),
    ({"observables": ["truth.theta_e"]}, "observables has 1 expressions for the 2 axes"),
    ({"selection": "truth.theta_e >"}, "syntax error"),
    ({"smear": [1e-5]}, "1 values for 2 axes"),
])
def test_bad_templates_steering_is_rejected(tmp_path, change, message):
    job = template_job(tmp_path / "x")
    job["processors"][1].update(change)
    with pytest.raises(SteeringError, match=message):
        muone.run(job)


def test_missing_truth_angles_is_named(tmp_path):
    job = template_job(tmp_path / "x")
    del job["processors"][0]
    with pytest.raises(SteeringError, match="truth_angles"):
        muone.run(job)


def test_steering_templates_file_validates():
    from muone.registry import registry_with
    from muone.steering import load_steering

    steering = load_steering("steering/templates.toml", {}, registry_with(None))
    names = [s.instance for s in steering.processors if s.cls.name == "templates"]
    assert len(names) == 9 and "templates_beam_up" in names
