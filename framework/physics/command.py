"""``muone physics ...``: cross sections, kinematics and a_mu^HLO from the command line.

A thin layer over :mod:`muone.physics` (DESIGN.md "Public surface"): ``physics_command(argv)``
parses ``argv`` (the words after ``muone physics``), prints a rich table (or JSON with ``--json``)
and returns the exit code: 0 on success, 2 with a one-line message (no traceback) on bad input.

    muone physics xsec --energy 160 --ee-min 1 --running full --model LeptonLike --K 0.13724 --M 0.0525
    muone physics kinematics --energy 160 --ee 1 10 80
    muone physics kinematics --theta-e-range 1 30 10
    muone physics amu --model LeptonLike --x-max 0.936
    muone physics amu --model Pol2 --energy 160 --json

Angles on the command line and in the tables are in mrad; energies in GeV, t in GeV^2,
cross sections in microbarn.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

import numpy as np

from muone.errors import MuoneError
from muone.physics.amu import amu_hlo
from muone.physics.constants import E_BEAM_DEFAULT, M_E, M_MU
from muone.physics.cross_section import sigma
from muone.physics.dispersive import Dispersive
from muone.physics.errors import PhysicsInputError
from muone.physics.kinematics import (
    electron_energy_from_theta,
    electron_energy_max,
    equal_angle_point,
    s_mandelstam,
    t_from_electron_energy,
    t_min,
    theta_e_from_electron_energy,
    theta_mu_from_electron_energy,
    theta_mu_max,
    x_from_t,
)
from muone.physics.model_table import MODELS, hadronic_model

__all__ = ["build_parser", "physics_command"]

PROG = "muone physics"
_DEFAULT_EE = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 80.0, 100.0, 140.0)


class _UsageError(Exception):
    """A command-line usage error (argparse's message), reported with exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse would print and sys.exit(2); we return 2 instead
        raise _UsageError(f"{self.prog}: error: {message}")


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be finite: {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def _key_value(text: str) -> tuple[str, float]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), _finite_float(value)


def _add_model_options(p: argparse.ArgumentParser, default_help: str) -> None:
    g = p.add_argument_group("hadronic model")
    g.add_argument("--model", help=f"one of {', '.join([*MODELS, 'none'])} ({default_help})")
    g.add_argument("--K", type=_finite_float, help="LeptonLike K [GeV^-2] (default 0.13724)")
    g.add_argument("--M", type=_finite_float, help="LeptonLike M [GeV^2] (default 0.0525)")
    g.add_argument("--c1", type=_finite_float, help="Pol2 c1 [GeV^-2] (default -0.009057)")
    g.add_argument("--c2", type=_finite_float, help="Pol2 c2 [GeV^-4] (default -0.01364)")
    g.add_argument(
        "--param", type=_key_value, action="append", default=[], metavar="KEY=VALUE",
        help="any other model parameter, e.g. alpha_s=0.2 for Dispersive (repeatable)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of ``muone physics`` (subcommands xsec, kinematics, amu)."""
    parser = _Parser(prog=PROG, description="Elastic mu e cross sections, kinematics and a_mu^HLO (PHYSICS.md).")
    sub = parser.add_subparsers(dest="command", metavar="{xsec,kinematics,amu}", parser_class=_Parser)

    x = sub.add_parser("xsec", help="elastic cross section for cuts [microbarn]",
                       description="Elastic mu e -> mu e cross section [microbarn] for cuts on the electron energy and angles.")
    x.add_argument("--energy", type=_finite_float, default=E_BEAM_DEFAULT, help="muon beam energy [GeV] (default 160)")
    x.add_argument("--ee-min", type=_finite_float, default=1.0, help="minimum electron energy [GeV] (default 1)")
    x.add_argument("--ee-max", type=_finite_float, default=None, help="maximum electron energy [GeV] (default: kinematic limit)")
    x.add_argument("--theta-e-max", type=_finite_float, default=None, help="maximum electron angle [mrad]")
    x.add_argument("--theta-mu-min", type=_finite_float, default=None, help="minimum muon angle [mrad]")
    x.add_argument("--running", choices=("none", "lep", "full"), default="full",
                   help="none: tree level; lep: leptonic running; full: leptonic + hadronic (default)")
    _add_model_options(x, "default LeptonLike with the reference K, M; used with --running full")
    x.add_argument("--json", action="store_true", help="print JSON instead of a table")

    k = sub.add_parser("kinematics", help="table of E_e, t, x, theta_e, theta_mu on the elastic curve",
                       description="Elastic-curve table: E_e [GeV], t [GeV^2], x, theta_e and theta_mu [mrad].")
    k.add_argument("--energy", type=_finite_float, default=E_BEAM_DEFAULT, help="muon beam energy [GeV] (default 160)")
    which = k.add_mutually_exclusive_group()
    which.add_argument("--ee", type=_finite_float, nargs="+", metavar="E_E", help="electron energies [GeV]")
    which.add_argument("--ee-range", type=str, nargs=3, metavar=("START", "STOP", "N"),
                       help="N electron energies [GeV] from START to STOP")
    which.add_argument("--theta-e", type=_finite_float, nargs="+", metavar="THETA", help="electron angles [mrad]")
    which.add_argument("--theta-e-range", type=str, nargs=3, metavar=("START", "STOP", "N"),
                       help="N electron angles [mrad] from START to STOP")
    k.add_argument("--log", action="store_true", help="space the --*-range points logarithmically")
    k.add_argument("--json", action="store_true", help="print JSON instead of a table")

    a = sub.add_parser("amu", help="a_mu^HLO of a hadronic model (space-like master integral)",
                       description="a_mu^HLO = (alpha/pi) int_0^x_max dx (1 - x) Delta_alpha_had(t(x)).")
    lim = a.add_mutually_exclusive_group()
    lim.add_argument("--x-max", type=_finite_float, default=None,
                     help="upper limit of the x integral (default 1: the full integral)")
    lim.add_argument("--energy", type=_finite_float, default=None, help="use x_max = x(t_min(E)) for this beam energy [GeV]")
    _add_model_options(a, "default LeptonLike")
    a.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return parser


def _check_energy(E: float) -> float:
    if not E > M_MU:
        raise PhysicsInputError(f"--energy must be larger than m_mu = {M_MU} GeV, got {E}")
    return E


def _model_from_args(args, default: str | None):
    table: dict[str, Any] = {"model": args.model if args.model is not None else default}
    for key in ("K", "M", "c1", "c2"):
        if getattr(args, key) is not None:
            table[key] = getattr(args, key)
    for key, value in args.param:
        table[key] = value
    if table["model"] is None:
        extra = [k for k in table if k != "model"]
        if extra:
            raise PhysicsInputError(f"model parameter {extra[0]!r} given without a hadronic model (--model)")
        return None
    return hadronic_model(table)


def _range(spec: list[str], name: str, log: bool) -> np.ndarray:
    start, stop = (_parse_number(v, name) for v in spec[:2])
    try:
        n = _positive_int(spec[2])
    except argparse.ArgumentTypeError as exc:
        raise PhysicsInputError(f"{name}: N {exc}") from None
    if log:
        if start <= 0 or stop <= 0:
            raise PhysicsInputError(f"{name} with --log needs positive START and STOP")
        return np.geomspace(start, stop, n)
    return np.linspace(start, stop, n)


def _parse_number(text: str, name: str) -> float:
    try:
        return _finite_float(text)
    except argparse.ArgumentTypeError as exc:
        raise PhysicsInputError(f"{name}: {exc}") from None


# --------------------------------------------------------------------------- subcommands
def _xsec(args) -> dict[str, Any]:
    E = _check_energy(args.energy)
    if args.running == "full":
        model = _model_from_args(args, "LeptonLike")
    else:
        if args.model is not None and args.model.lower() != "none":
            raise PhysicsInputError(f"--model {args.model} needs --running full (got --running {args.running})")
        model = _model_from_args(args, None)
    ee_max_kin = float(electron_energy_max(E))
    if not args.ee_min > M_E:
        raise PhysicsInputError(f"--ee-min must be larger than m_e = {M_E} GeV, got {args.ee_min}")
    if args.ee_min >= ee_max_kin:
        raise PhysicsInputError(
            f"--ee-min {args.ee_min} GeV is above the largest electron energy {ee_max_kin:.6g} GeV at {E} GeV"
        )
    ee_max = ee_max_kin if args.ee_max is None else min(args.ee_max, ee_max_kin)
    if ee_max <= args.ee_min:
        raise PhysicsInputError(f"--ee-max must be larger than --ee-min, got {args.ee_max} <= {args.ee_min}")
    cuts = {
        "theta_e_max": None if args.theta_e_max is None else args.theta_e_max * 1e-3,
        "theta_mu_min": None if args.theta_mu_min is None else args.theta_mu_min * 1e-3,
    }
    running = args.running != "none"
    value = float(sigma(E, args.ee_min, ee_max, model, running, **cuts))
    tree = float(sigma(E, args.ee_min, ee_max, None, False, **cuts))
    t_hi, t_lo = float(t_from_electron_energy(args.ee_min)), float(t_from_electron_energy(ee_max))
    return {
        "energy": E,
        "ee_min": args.ee_min,
        "ee_max": ee_max,
        "theta_e_max_mrad": args.theta_e_max,
        "theta_mu_min_mrad": args.theta_mu_min,
        "t_range": [t_lo, t_hi],
        "x_range": [float(x_from_t(t_hi)), float(x_from_t(t_lo))],
        "running": args.running,
        "model": None if model is None else model.to_table(),
        "sigma_ub": value,
        "sigma_tree_ub": tree,
        "running_effect": value / tree - 1.0 if tree > 0 else 0.0,
    }


def _kinematics(args) -> dict[str, Any]:
    E = _check_energy(args.energy)
    ee_max = float(electron_energy_max(E))
    if args.theta_e is not None or args.theta_e_range is not None:
        theta = np.array(args.theta_e) if args.theta_e is not None else _range(args.theta_e_range, "--theta-e-range", args.log)
        bad = theta[(theta < 0) | (theta > 1e3 * math.pi / 2)]
        if bad.size:
            raise PhysicsInputError(f"electron angles must be in [0, {1e3 * math.pi / 2:.6g}] mrad, got {bad[0]}")
        ee = np.asarray(electron_energy_from_theta(theta * 1e-3, E))
        ee = np.atleast_1d(ee)
    else:
        if args.ee is not None:
            ee = np.array(args.ee)
        elif args.ee_range is not None:
            ee = _range(args.ee_range, "--ee-range", args.log)
        else:
            ee = np.array([v for v in _DEFAULT_EE if v <= ee_max])
        bad = ee[(ee < M_E) | (ee > ee_max)]
        if bad.size:
            raise PhysicsInputError(f"electron energies must be in [m_e, {ee_max:.6g}] GeV at {E} GeV, got {bad[0]}")
    t = np.atleast_1d(np.asarray(t_from_electron_energy(ee)))
    ee_eq, theta_eq = equal_angle_point(E)
    rows = [
        {
            "E_e": float(e),
            "t": float(tt),
            "x": float(x_from_t(tt)),
            "theta_e_mrad": 1e3 * float(theta_e_from_electron_energy(e, E)),
            "theta_mu_mrad": 1e3 * float(theta_mu_from_electron_energy(e, E)),
        }
        for e, tt in zip(ee, t)
    ]
    return {
        "energy": E,
        "sqrt_s": float(np.sqrt(s_mandelstam(E))),
        "t_min": float(t_min(E)),
        "x_max": float(x_from_t(t_min(E))),
        "ee_max": ee_max,
        "theta_mu_max_mrad": 1e3 * float(theta_mu_max()),
        "equal_angle": {"E_e": float(ee_eq), "theta_mrad": 1e3 * float(theta_eq)},
        "rows": rows,
    }


def _amu(args) -> dict[str, Any]:
    model = _model_from_args(args, "LeptonLike")
    if model is None:
        raise PhysicsInputError("amu needs a hadronic model: --model LeptonLike, Pol2 or Dispersive")
    x_max = args.x_max
    if args.energy is not None:
        x_max = float(x_from_t(t_min(_check_energy(args.energy))))
    if x_max is not None and not 0.0 <= x_max <= 1.0:
        raise PhysicsInputError(f"--x-max must be in [0, 1], got {x_max}")
    if model.requires_x_max and (x_max is None or x_max >= 1.0):
        raise PhysicsInputError(
            f"model {model.name} diverges as x -> 1: give --x-max X < 1 (or --energy E for x_max = x(t_min(E)))"
        )
    value = amu_hlo(model, x_max)
    out: dict[str, Any] = {"model": model.to_table(), "x_max": 1.0 if x_max is None else x_max, "amu_hlo": value}
    if not model.requires_x_max:
        full = value if x_max is None else amu_hlo(model)
        out["amu_hlo_full"] = full
        out["fraction_of_full"] = value / full if full else float("nan")
    if isinstance(model, Dispersive):
        out["amu_hlo_timelike"] = model.amu_hlo_timelike()
    return out


# --------------------------------------------------------------------------- output
def _print_table(command: str, result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(file=sys.stdout, highlight=False, markup=False)  # "[GeV]" is a unit, not markup
    if command == "xsec":
        table = Table(title="mu e -> mu e elastic cross section", show_header=False)
        table.add_column("quantity")
        table.add_column("value", justify="right")
        table.add_row("beam energy [GeV]", f"{result['energy']:g}")
        table.add_row("E_e cut [GeV]", f"{result['ee_min']:.6g} .. {result['ee_max']:.6g}")
        if result["theta_e_max_mrad"] is not None:
            table.add_row("theta_e max [mrad]", f"{result['theta_e_max_mrad']:g}")
        if result["theta_mu_min_mrad"] is not None:
            table.add_row("theta_mu min [mrad]", f"{result['theta_mu_min_mrad']:g}")
        table.add_row("t range of the E_e cut [GeV^2]", f"{result['t_range'][0]:.6g} .. {result['t_range'][1]:.6g}")
        table.add_row("x range of the E_e cut", f"{result['x_range'][0]:.6g} .. {result['x_range'][1]:.6g}")
        table.add_row("running", result["running"])
        table.add_row("hadronic model", _model_text(result["model"]))
        table.add_row("sigma [microbarn]", f"{result['sigma_ub']:.8g}")
        table.add_row("sigma tree level [microbarn]", f"{result['sigma_tree_ub']:.8g}")
        table.add_row("sigma/sigma_tree - 1", f"{result['running_effect']:.6e}")
        console.print(table)
    elif command == "kinematics":
        eq = result["equal_angle"]
        title = (
            f"elastic mu e at E = {result['energy']:g} GeV: sqrt(s) = {result['sqrt_s']:.5f} GeV, "
            f"t_min = {result['t_min']:.5f} GeV^2, x_max = {result['x_max']:.4f}, "
            f"theta_mu max = {result['theta_mu_max_mrad']:.4f} mrad, "
            f"equal angles {eq['theta_mrad']:.4f} mrad at E_e = {eq['E_e']:.4f} GeV"
        )
        table = Table(title=title)
        for name in ("E_e [GeV]", "t [GeV^2]", "x", "theta_e [mrad]", "theta_mu [mrad]"):
            table.add_column(name, justify="right")
        for r in result["rows"]:
            table.add_row(
                f"{r['E_e']:.6g}", f"{r['t']:.6g}", f"{r['x']:.6f}", f"{r['theta_e_mrad']:.6g}", f"{r['theta_mu_mrad']:.6g}"
            )
        console.print(table)
    else:
        table = Table(title="a_mu^HLO (space-like master integral)", show_header=False)
        table.add_column("quantity")
        table.add_column("value", justify="right")
        table.add_row("hadronic model", _model_text(result["model"]))
        table.add_row("x_max", f"{result['x_max']:.6g}")
        table.add_row("a_mu^HLO [1e-10]", f"{1e10 * result['amu_hlo']:.4f}")
        if "amu_hlo_full" in result and result["x_max"] < 1.0:
            table.add_row("a_mu^HLO, x < 1 [1e-10]", f"{1e10 * result['amu_hlo_full']:.4f}")
            table.add_row("fraction below x_max", f"{result['fraction_of_full']:.4f}")
        if "amu_hlo_timelike" in result:
            table.add_row("a_mu^HLO time-like [1e-10]", f"{1e10 * result['amu_hlo_timelike']:.4f}")
        console.print(table)


def _model_text(table: dict[str, Any] | None) -> str:
    if table is None:
        return "none"
    params = ", ".join(f"{k}={v:g}" for k, v in table.items() if k != "model")
    return f"{table['model']}({params})"


def physics_command(argv: list[str]) -> int:
    """Run ``muone physics ARGV...``; returns the exit code (0 ok, 2 bad input; never raises on user error)."""
    parser = build_parser()
    try:
        args = parser.parse_args(list(argv))
    except _UsageError as exc:
        print(exc, file=sys.stderr)
        return 2
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    if args.command is None:
        parser.print_usage(sys.stderr)
        print(f"{PROG}: error: choose a subcommand: xsec, kinematics or amu", file=sys.stderr)
        return 2
    handlers = {"xsec": _xsec, "kinematics": _kinematics, "amu": _amu}
    try:
        result = handlers[args.command](args)
    except (MuoneError, ValueError) as exc:
        print(f"{PROG} {args.command}: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, indent=2, allow_nan=False))
    else:
        _print_table(args.command, result)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(physics_command(sys.argv[1:]))
