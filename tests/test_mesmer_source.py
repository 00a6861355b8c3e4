"""The ``mesmer`` source on the shipped MESMER samples, and against muone's own generator."""

from __future__ import annotations

import importlib.util

import awkward as ak
import muone
import numpy as np
import pytest
from conftest import ROOT, SHARED_DATA
from muone import physics as P
from scipy import stats

_spec = importlib.util.spec_from_file_location("compare_mesmer_lo", ROOT / "examples" / "compare_mesmer_lo.py")
compare = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(compare)

MESMER = SHARED_DATA / "mesmer"
LO = MESMER / "mesmer_lo_weighted_160GeV.dat.xz"
NLO = MESMER / "mesmer_nlo_weighted_160GeV.dat.xz"
pytestmark = pytest.mark.skipif(not LO.exists(), reason=f"MESMER samples not found in {MESMER} (../shared/data is absent)")


def mesmer_job(tmp_path, files, name="mes", **source):
    return {
        "job": {"output_dir": str(tmp_path / name), "chunk_size": 20_000, "save": ["mc"]},
        "source": {"plugin": "mesmer", "files": [str(f) for f in files], **source},
    }


@pytest.fixture(scope="module")
def nlo(tmp_path_factory):
    res = muone.run(mesmer_job(tmp_path_factory.mktemp("nlo"), [NLO], pileup_mean=1.25))
    return res, res.events()


def test_nlo_record_normalisation_and_weights(nlo):
    res, ev = nlo
    mc = ev.mc
    assert len(ev) == 60_000 and res.report["chunks"]["done"] == 3
    assert res.cross_section == pytest.approx(259.45, abs=0.01) and res.report["source"]["cross_section_error_ub"] == pytest.approx(0.90, abs=0.01)
    # weights average to one: sum(w) sigma / N = sigma
    assert ak.sum(mc.weight) == pytest.approx(60_000, rel=1e-4)
    # the coefficients sum to the no-running weight (README identity)
    assert np.allclose(ak.sum(mc.vp, axis=1), mc.weight_norun, rtol=1e-9, atol=1e-12)
    hard = mc.particles[mc.particles.origin == 0]
    n_hard = ak.to_numpy(ak.num(hard))
    assert set(np.unique(n_hard)) <= {0, 2, 3}
    assert np.count_nonzero(n_hard == 3) == 40_347
    # four-momentum conservation after the rotation to the beam direction
    has = n_hard > 0
    for c in ("px", "py", "pz"):
        assert np.allclose(ak.sum(hard[c], axis=1)[has], mc.beam[c][has], rtol=0, atol=1e-7)
    assert np.allclose(ak.sum(hard.E, axis=1)[has], (mc.beam.E + P.M_E)[has], rtol=1e-9)
    # t24 from the outgoing electron
    e = ak.firsts(hard[hard.pdg == 11])
    assert np.allclose(mc.t[has], (-2 * P.M_E * (e.E - P.M_E))[has], rtol=1e-6)
    # the beam direction carries the divergence, pile-up is there
    assert 2e-4 < np.std(ak.to_numpy(mc.beam.px / mc.beam.pz)) < 6e-4
    assert ak.mean(ak.num(mc.particles[mc.particles.origin == 1])) == pytest.approx(1.25, abs=0.03)


def test_lo_sample_agrees_with_muone_elastic_generator(tmp_path):
    """Same settings (160 GeV, no spread, no divergence, E_e > 1 GeV, leptonic running): the
    theta_e and theta_mu distributions and the cross sections agree within their errors."""
    mes = muone.run(mesmer_job(tmp_path, [LO], pileup_mean=0.0, beam_divergence=0.0))
    mev = mes.events()
    n_mes = len(mev)
    # MESMER's leptonic-running cross section of this sample: wnorm sum(w_lep)/N, in muone's units
    sigma_mes = mes.cross_section * ak.sum(mev.mc.weight_lep) / n_mes
    err_mes = mes.cross_section * np.sqrt(ak.sum(mev.mc.weight_lep**2) / n_mes - (ak.sum(mev.mc.weight_lep) / n_mes) ** 2) / np.sqrt(n_mes)
    own = muone.run({
        "job": {"events": 600_000, "chunk_size": 200_000, "output_dir": str(tmp_path / "own"), "save": ["mc"]},
        "source": {"plugin": "elastic", "running": "leptonic", "beam_energy_spread": 0.0, "beam_divergence": 0.0, "pileup_mean": 0.0},
    })
    assert own.cross_section == pytest.approx(sigma_mes, abs=3 * err_mes)
    oev = own.events()
    # scale both to dsigma per bin [microbarn]
    hm = compare.theta_hists(mev, mev.mc.weight_lep * mes.cross_section / n_mes)
    ho = compare.theta_hists(oev, oev.mc.weight * own.cross_section / len(oev))
    for a, b, name in zip(hm, ho, ("theta_e", "theta_mu")):
        chi2, ndf = compare.chi2(a, b)
        p = stats.chi2.sf(chi2, ndf)
        assert p > 1e-3, (name, chi2, ndf)


def test_bad_mesmer_inputs(tmp_path):
    with pytest.raises(muone.SteeringError, match="no MESMER file matches"):
        muone.run(mesmer_job(tmp_path, [tmp_path / "none*.dat"]))
    with pytest.raises(muone.SteeringError, match="beam_energy"):
        muone.run(mesmer_job(tmp_path, [LO], beam_energy=150.0))
    # a truncated file: an error with the line number, naming the chunk and the source
    import lzma

    text = lzma.open(LO, "rt").read()
    cut = text[: text.index("<event>", 200_000) + 60]
    bad = tmp_path / "cut.dat"
    bad.write_text(cut)
    with pytest.raises((muone.JobError, muone.InputError)) as info:
        muone.run(mesmer_job(tmp_path, [bad], name="cut"))
    assert "cut.dat" in str(info.value) and "line" in str(info.value)
