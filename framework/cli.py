"""The ``muone`` command line: a thin layer over library functions.

Exit codes: 0 success, 2 invalid input (bad steering, options, files), 1 failed job.
User errors print a message, never a Python traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from muone import __version__
from muone.errors import MuoneError


def _cmd_run(args: argparse.Namespace, console: Console) -> int:
    from muone.job import run

    results = run(args.steering, args.set or [], output=args.output, force=args.force, console=None if args.quiet else console)
    console.print(f"[green]done[/]: outputs in {results.output_dir}")
    return 0


def _cmd_check(args: argparse.Namespace, console: Console) -> int:
    from muone.steering import load_steering

    steering = load_steering(args.steering, args.set or [])
    chain = [s.instance for s in steering.all_specs()]
    console.print(f"[green]{args.steering}: valid[/] ({' -> '.join(chain)})")
    return 0


def _cmd_plugins(args: argparse.Namespace, console: Console) -> int:
    from muone.plugin_docs import plugin_listing
    from muone.registry import default_registry

    listing = plugin_listing(default_registry())
    if args.json:
        print(json.dumps(listing, indent=2, default=str))
        return 0
    for kind in ("sources", "processors", "finalizers"):
        table = Table(title=kind, title_justify="left")
        for col in ("name", "summary", "parameters", "origin"):
            table.add_column(col)
        for name, d in listing[kind].items():
            params = ", ".join(p["name"] for p in d["parameters"])
            origin = f"{d['origin']['distribution']} {d['origin']['version']} ({d['origin']['module']})"
            table.add_row(name, d["summary"], params, origin)
        console.print(table)
    console.print(f"executors: {', '.join(listing['executors'])}")
    console.print(f"histogram presets: {', '.join(listing['histogram_presets']) or 'none'}")
    for ep, why in listing["failures"].items():
        console.print(f"[red]failed to load[/] {ep}: {why}")
    return 0


def _cmd_template(args: argparse.Namespace, console: Console) -> int:
    from muone.errors import InputError
    from muone.plugin_docs import steering_template
    from muone.registry import default_registry

    registry = default_registry()
    try:
        text = steering_template(registry, args.names)
    except KeyError as exc:
        raise InputError(f"unknown plugin(s): {exc.args[0]}; available: {', '.join(sorted(registry.plugins))}") from None
    print(text)
    return 0


def _cmd_physics(argv: list[str], console: Console) -> int:
    from muone.physics.command import physics_command

    return physics_command(argv)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``muone``."""
    parser = argparse.ArgumentParser(prog="muone", description="MUonE event-data framework")
    parser.add_argument("--version", action="version", version=f"muone {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("run", help="run a job from a steering file")
    p.add_argument("steering")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a steering value (repeatable)")
    p.add_argument("--output", help="output directory (overrides [job] output_dir)")
    p.add_argument("--force", action="store_true", help="discard an earlier job in the output directory")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary table")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("check", help="validate a steering file and print every problem")
    p.add_argument("steering")
    p.add_argument("--set", action="append", metavar="KEY=VALUE")
    p.set_defaults(func=_cmd_check)

    p = sub.add_parser("plugins", help="list sources, processors, finalizers and load failures")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_cmd_plugins)

    p = sub.add_parser("steering-template", help="print a commented steering file for the named plugins")
    p.add_argument("names", nargs="+", metavar="NAME")
    p.set_defaults(func=_cmd_template)

    sub.add_parser("physics", help="cross sections, kinematics and a_mu^HLO (muone physics --help)", add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``muone`` console script; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    console = Console(stderr=True)
    runner: Callable[[], int]
    if argv and argv[0] == "physics":
        def runner() -> int:
            return _cmd_physics(argv[1:], console)
    else:
        args = build_parser().parse_args(argv)

        def runner() -> int:
            return args.func(args, console)
    try:
        return runner()
    except MuoneError as exc:
        console.print("[red]error:[/]", escape(str(exc)), highlight=False)
        return exc.exit_code
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]: completed chunks are kept; rerun the same command to resume")
        return 130


if __name__ == "__main__":
    sys.exit(main())
