"""``muone physics``: tables, JSON, exit codes and error messages (direct calls and a subprocess)."""

import json
import subprocess
import sys

import pytest

from muone.physics import LeptonLike, amu_hlo, sigma
from muone.physics.command import physics_command


def run_json(capsys, *argv):
    code = physics_command([*argv, "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    return json.loads(out.out)


def test_xsec_json_values(capsys):
    tree = run_json(capsys, "xsec", "--running", "none")
    assert tree["sigma_ub"] == pytest.approx(245.60, abs=0.005)
    assert tree["model"] is None and tree["running"] == "none"
    lep = run_json(capsys, "xsec", "--running", "lep")
    assert lep["sigma_ub"] == pytest.approx(sigma(160.0, 1.0), rel=1e-15)
    full = run_json(capsys, "xsec", "--energy", "160", "--ee-min", "1", "--model", "LeptonLike", "--K", "0.13724", "--M", "0.0525")
    assert full["sigma_ub"] == pytest.approx(sigma(160.0, 1.0, had=LeptonLike()), rel=1e-15)
    assert full["model"] == {"model": "LeptonLike", "K": 0.13724, "M": 0.0525}
    assert full["t_range"][0] == pytest.approx(-0.15307, abs=5e-6)
    assert full["x_range"][1] == pytest.approx(0.936, abs=5e-4)
    assert full["sigma_tree_ub"] == pytest.approx(tree["sigma_ub"], rel=1e-15)
    cut = run_json(capsys, "xsec", "--theta-e-max", "20", "--theta-mu-min", "0.2", "--ee-max", "100")
    assert 0 < cut["sigma_ub"] < full["sigma_ub"]


def test_xsec_table(capsys):
    assert physics_command(["xsec", "--running", "none"]) == 0
    out = capsys.readouterr().out
    assert "sigma tree level [microbarn]" in out
    assert "245.59628" in out


def test_kinematics_json_and_table(capsys):
    res = run_json(capsys, "kinematics", "--energy", "160", "--ee", "1", "80")
    assert res["sqrt_s"] == pytest.approx(0.41795, abs=5e-6)
    assert res["t_min"] == pytest.approx(-0.15307, abs=5e-6)
    assert res["theta_mu_max_mrad"] == pytest.approx(4.836, abs=5e-4)
    assert res["equal_angle"]["theta_mrad"] == pytest.approx(2.44, abs=5e-3)
    row = res["rows"][0]
    assert row["E_e"] == 1.0
    assert row["theta_e_mrad"] == pytest.approx(31.86, abs=5e-3)
    assert row["theta_mu_mrad"] == pytest.approx(0.2003, abs=5e-5)
    assert res["rows"][1]["theta_e_mrad"] == pytest.approx(res["rows"][1]["theta_mu_mrad"], rel=1e-4)
    by_angle = run_json(capsys, "kinematics", "--theta-e-range", "1", "30", "5", "--log")
    angles = [r["theta_e_mrad"] for r in by_angle["rows"]]
    assert angles[0] == pytest.approx(1.0, rel=1e-12) and angles[-1] == pytest.approx(30.0, rel=1e-12)
    assert physics_command(["kinematics", "--ee-range", "1", "10", "4"]) == 0
    out = capsys.readouterr().out
    assert "theta_mu [mrad]" in out and "31.8591" in out and "9.766" in out and "-0.00715346" in out


def test_amu_json(capsys):
    res = run_json(capsys, "amu")
    assert res["amu_hlo"] == pytest.approx(689.0e-10, abs=0.05e-10)
    res = run_json(capsys, "amu", "--energy", "160")
    assert res["x_max"] == pytest.approx(0.936, abs=5e-4)
    assert res["fraction_of_full"] == pytest.approx(0.88, abs=0.005)
    pol2 = run_json(capsys, "amu", "--model", "Pol2", "--x-max", "0.936")
    assert pol2["amu_hlo"] == pytest.approx(amu_hlo({"model": "Pol2"}, 0.936), rel=1e-15)
    disp = run_json(capsys, "amu", "--model", "Dispersive", "--param", "alpha_s=0.2")
    assert disp["amu_hlo"] == pytest.approx(disp["amu_hlo_timelike"], rel=1e-4)


def test_amu_table(capsys):
    assert physics_command(["amu", "--x-max", "0.936"]) == 0
    out = capsys.readouterr().out
    assert "688.98" in out and "0.8812" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["xsec", "--model", "Foo"], "'model'"),
        (["xsec", "--energy", "-160"], "--energy"),
        (["kinematics", "--energy", "0.05"], "--energy"),
        (["xsec", "--ee-min", "0"], "--ee-min"),
        (["xsec", "--ee-min", "nan"], "finite"),
        (["xsec", "--running", "none", "--model", "LeptonLike"], "--running full"),
        (["amu", "--model", "Pol2"], "--x-max"),
        (["amu", "--model", "Pol2", "--K", "1"], "'K'"),
        (["amu", "--model", "none"], "needs a hadronic model"),
        (["amu", "--x-max", "2"], "--x-max"),
        (["kinematics", "--ee", "200"], "149.775"),
        (["kinematics", "--ee-range", "1", "10", "zero"], "N"),
        (["xsec", "--bogus"], "unrecognized"),
        (["nothing"], "invalid choice"),
        ([], "subcommand"),
    ],
)
def test_bad_input_exits_2_with_message(capsys, argv, message):
    assert physics_command(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_help_returns_0(capsys):
    assert physics_command(["xsec", "--help"]) == 0
    assert "--ee-min" in capsys.readouterr().out


def _subprocess(argv):
    code = f"import sys; from muone.physics.command import physics_command; sys.exit(physics_command({argv!r}))"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_subprocess_json_and_errors():
    ok = _subprocess(["xsec", "--running", "none", "--json"])
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["sigma_ub"] == pytest.approx(245.60, abs=0.005)
    bad = _subprocess(["amu", "--model", "Pol2"])
    assert bad.returncode == 2
    assert "diverges" in bad.stderr and "Traceback" not in bad.stderr
    table = _subprocess(["kinematics", "--ee", "1"])
    assert table.returncode == 0 and "31.8591" in table.stdout
