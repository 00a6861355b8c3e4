"""The end-of-job report (report.json and the table printed after every run) and the progress bar."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from muone.cutflow import CutFlow


def build_report(steering: Any, plan: list, done: dict, failures: list, info: Any, ran_now: int, wall: float, merged: dict, finalizers: list) -> dict[str, Any]:
    """Summarise a job: events, per-processor statistics, cut flows, source, luminosity."""
    stats: dict[str, dict[str, float]] = {}
    for index in sorted(done):
        for inst, s in done[index].stats.items():
            acc = stats.setdefault(inst, {"events_in": 0, "events_out": 0, "seconds": 0.0})
            for k in acc:
                acc[k] += s[k]
    plugin_of = {s.instance: s.cls.name for s in ([steering.source] if steering.source else []) + steering.processors}
    rows = []
    for inst, s in stats.items():
        n = s["events_out"] if s["events_in"] == 0 else s["events_in"]
        rows.append({
            "name": inst, "plugin": plugin_of.get(inst, inst), "events_in": int(s["events_in"]),
            "events_out": int(s["events_out"]), "seconds": s["seconds"],
            "seconds_per_event": s["seconds"] / n if n else None,
        })
    events_in = sum(d.events_in for d in done.values())
    source: dict[str, Any] = {}
    if steering.source is not None:
        xs = info.cross_section if info else None
        source = {
            "plugin": steering.source.cls.name,
            "cross_section_ub": xs,
            "cross_section_error_ub": info.cross_section_error if info else None,
            "events": events_in,
            # L = N / sigma; 1 nb^-1 = 1e3 microbarn^-1
            "equivalent_luminosity_nb": events_in / xs / 1e3 if xs else None,
        }
    cutflows = {
        f"{inst}/{name}": obj.to_dict()
        for inst, items in merged.items() for name, obj in items.items() if isinstance(obj, CutFlow)
    }
    return {
        "status": "complete" if not failures else "complete with skipped chunks",
        "wall_seconds": wall,
        "chunks": {"planned": len(plan), "done": len(done), "run_now": ran_now, "resumed": len(done) - ran_now,
                   "failed": [f.to_dict() for f in failures]},
        "events": {"in": events_in, "out": sum(d.events_out for d in done.values())},
        "processors": rows,
        "finalizers": finalizers,
        "cutflows": cutflows,
        "source": source,
    }


def print_report(report: dict[str, Any], console: Console) -> None:
    """Print the per-processor table, the cut flows and the source summary."""
    table = Table(title="muone job summary", title_justify="left")
    for col, just in (("processor", "left"), ("plugin", "left"), ("events in", "right"), ("events out", "right"), ("time \\[s]", "right"), ("per event \\[us]", "right")):
        table.add_column(col, justify=just)
    plugin_source = report["source"].get("plugin")
    for r in report["processors"]:
        per = f"{r['seconds_per_event'] * 1e6:.2f}" if r["seconds_per_event"] is not None else "-"
        n_in = f"{r['events_in']:,}" if r["events_in"] or r["plugin"] != plugin_source else "-"
        table.add_row(r["name"], r["plugin"], n_in, f"{r['events_out']:,}", f"{r['seconds']:.3f}", per)
    for f in report["finalizers"]:
        table.add_row(f["name"], f["plugin"], "-", "-", f"{f['seconds']:.3f}", "-")
    console.print(table)
    for name, flow in report["cutflows"].items():
        cf = Table(title=f"cut flow {name}", title_justify="left")
        for col in ("cut", "weighted", "error", "events", "efficiency"):
            cf.add_column(col, justify="left" if col == "cut" else "right")
        first = flow["cuts"][0]["sumw"] if flow["cuts"] else 0.0
        for c in flow["cuts"]:
            eff = f"{c['sumw'] / first:.4f}" if first else "-"
            cf.add_row(c["cut"], f"{c['sumw']:.6g}", f"{c['sumw_error']:.3g}", f"{c['count']:,}", eff)
        console.print(cf)
    for f in report["finalizers"]:
        for line in f.get("summary", []):
            console.print(line, highlight=False, markup=False)
    ch = report["chunks"]
    line = f"chunks: {ch['done']}/{ch['planned']} done ({ch['run_now']} now, {ch['resumed']} resumed)"
    if ch["failed"]:
        line += f", [yellow]{len(ch['failed'])} skipped[/]"
    console.print(line + f"; events in {report['events']['in']:,}, out {report['events']['out']:,}; wall {report['wall_seconds']:.2f} s")
    src = report["source"]
    if src.get("cross_section_ub"):
        console.print(f"source {src['plugin']}: cross section {src['cross_section_ub']:.6g} ub, equivalent luminosity {src['equivalent_luminosity_nb']:.4g} nb^-1")


@contextlib.contextmanager
def progress_bar(console: Console | None, plan: list, done: dict) -> Iterator[Callable[[Any], None]]:
    """A rich progress bar over the planned events; yields ``advance(summary)``."""
    if console is None:
        yield lambda summary: None
        return
    total = sum(s.n_events for s in plan) or len(plan)
    already = sum(d.events_in for d in done.values())
    columns = (TextColumn("[bold]events"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[chunks]}"), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("events", total=total, completed=already, chunks=f"chunks {len(done)}/{len(plan)}")
        state = {"chunks": len(done)}

        def advance(summary: Any) -> None:
            state["chunks"] += 1
            progress.update(task, advance=summary.events_in, chunks=f"chunks {state['chunks']}/{len(plan)}")

        yield advance
