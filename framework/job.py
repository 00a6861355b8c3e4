"""Running a job: validate, plan chunks, execute, merge in chunk order, finalize, write outputs.

This is what ``muone run`` and :func:`muone.run` call.
"""

from __future__ import annotations

import datetime as dt
import shutil
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from muone import outputs, provenance
from muone.errors import JobError, ResumeError
from muone.executors import RunnerFactory
from muone.merge import merge_nested
from muone.processor import ChunkSpec, Context, SourceInfo
from muone.registry import Registry, registry_with
from muone.report import build_report, print_report, progress_bar
from muone.results import MERGED, Results, histograms_of
from muone.steering import Steering, load_steering
from muone.worker import ChunkFailure, ChunkSummary, chunk_stem

#: Files and folders of a job's output directory that ``--force`` removes.
JOB_OUTPUTS = (
    "manifest.json", "report.json", "steering.resolved.toml", "histograms.root",
    "histograms.pkl", "fit.json", "results", "events", "plots",
)


def run(
    steering: str | Path | dict[str, Any],
    overrides: dict[str, Any] | list[str] | None = None,
    *,
    output: str | Path | None = None,
    force: bool = False,
    plugins: list[type] | None = None,
    console: Console | None = None,
) -> Results:
    """Run a job from a steering file (path) or dict and return its :class:`Results`.

    Args:
        steering: steering file path, or the steering as a dict.
        overrides: ``{"job.events": 1000}`` or ``["job.events=1000", ...]`` (as ``--set``).
        output: output directory (overrides ``[job] output_dir``).
        force: discard an earlier job in the output directory instead of resuming it.
        plugins: extra plugin classes (in addition to the ``muone`` entry points).
        console: a rich console for the progress bar and the final table; None runs quietly.

    Raises:
        SteeringError: invalid steering (nothing is run).
        ResumeError: the output directory holds a job with another steering and not ``force``.
        JobError: a chunk failed (with ``on_error = "fail"``) or a finalizer failed.
    """
    registry = registry_with(plugins)
    over = _as_dict(overrides)
    if output is not None:
        over["job.output_dir"] = str(output)
    config = load_steering(steering, over, registry)
    return Job(config, registry, console).run(force=force)


def _as_dict(overrides: dict[str, Any] | list[str] | None) -> dict[str, Any]:
    from muone.steering import parse_override

    if overrides is None:
        return {}
    if isinstance(overrides, dict):
        return dict(overrides)
    return dict(parse_override(o) for o in overrides)


class Job:
    """One run of a validated steering in its output directory."""

    def __init__(self, steering: Steering, registry: Registry, console: Console | None = None) -> None:
        self.steering = steering
        self.registry = registry
        self.console = console
        self.out = Path(steering.job.output_dir)
        self.hash = steering.physics_hash()

    # -- preparation -------------------------------------------------------------------------

    def _prepare_output(self, force: bool) -> None:
        manifest = self.out / "manifest.json"
        if manifest.exists():
            old = outputs.read_json(manifest)
            if force:
                for name in JOB_OUTPUTS:
                    path = self.out / name
                    if path.is_dir():
                        shutil.rmtree(path)
                    elif path.exists():
                        path.unlink()
            elif old.get("steering_hash") != self.hash:
                raise ResumeError(
                    f"{self.out} holds the outputs of a job with another steering "
                    f"(hash {str(old.get('steering_hash'))[:12]} vs {self.hash[:12]}); "
                    "rerun with --force to discard them, or choose another --output"
                )
        self.out.mkdir(parents=True, exist_ok=True)
        outputs.write_text(self.out / "steering.resolved.toml", self.steering.resolved_toml())

    def _completed(self, plan: list[ChunkSpec]) -> dict[int, ChunkSummary]:
        """Chunks of the plan already complete in the output directory (files present and
        matching their recorded sha256)."""
        done = {}
        for spec in plan:
            path = self.out / "results" / f"{chunk_stem(spec.index)}.json"
            if not path.exists():
                continue
            try:
                summary = ChunkSummary.from_dict(outputs.read_json(path))
            except Exception:
                continue
            if all((self.out / f).exists() and outputs.sha256_file(self.out / f) == sha for f, sha in summary.files.items()):
                done[spec.index] = summary
        return done

    # -- manifest ----------------------------------------------------------------------------

    def _manifest(self, status: str, plan: list[ChunkSpec], done: dict[int, ChunkSummary], failures: list[ChunkFailure], info: SourceInfo | None, files: dict[str, str] | None = None) -> dict[str, Any]:
        used = {s.cls.name for s in self.steering.all_specs()}
        schemas = [s.events_schema for _, s in sorted(done.items()) if s.events_schema]
        common = schemas[0] if schemas else None
        chunks = []
        for index, s in sorted(done.items()):
            entry = {"chunk": index, "events_in": s.events_in, "events_out": s.events_out, "files": s.files}
            if s.events_schema and s.events_schema != common:
                entry["events_schema"] = s.events_schema
            chunks.append(entry)
        return {
            "format": 1,
            "status": status,
            "updated": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "steering_hash": self.hash,
            "steering_file": str(self.steering.file) if self.steering.file else None,
            "versions": provenance.versions(),
            "git": provenance.git_revision(),
            "plugins": {n: vars(self.registry.origins[n]) for n in sorted(used) if n in self.registry.origins},
            "source": _source_dict(self.steering, info),
            "chunks_planned": len(plan),
            "events_planned": sum(s.n_events for s in plan),
            "chunks_done": len(done),
            "events": sum(s.events_out for s in done.values()),
            "saved_collections": list(self.steering.job.save),
            "events_schema": common,
            "chunks": chunks,
            "failed_chunks": [f.to_dict() for f in failures],
            "files": files or {},
        }

    # -- running -----------------------------------------------------------------------------

    def run(self, force: bool = False) -> Results:
        """Run (or resume) the job and write every output."""
        t_start = time.perf_counter()
        self._prepare_output(force)
        context = Context(self.steering.job, self.steering.geometry, self.out, self.steering.file)
        plan: list[ChunkSpec] = []
        info = None
        done: dict[int, ChunkSummary] = {}
        failures: list[ChunkFailure] = []
        ran_now = 0
        if self.steering.source is not None:
            source = self.steering.source.build()
            try:
                source.setup(context)
                plan = source.plan(context)
                info = source.info()
            except Exception as exc:
                raise JobError(f"source {source.instance!r} could not plan the job: {type(exc).__name__}: {exc}") from exc
            context.source_info = info
            done = self._completed(plan)
            pending = [s for s in plan if s.index not in done]
            outputs.write_json(self.out / "manifest.json", self._manifest("running", plan, done, [], info))
            ran_now = self._execute(pending, done, failures, plan, info)
        merged = merge_nested(outputs.read_pickle(self.out / "results" / f"{chunk_stem(i)}.pkl") for i in sorted(done))
        job_failed = bool(failures) and self.steering.job.on_error == "fail"
        if job_failed:
            outputs.write_json(self.out / "manifest.json", self._manifest("failed", plan, done, failures, info))
            first = failures[0]
            raise JobError(
                f"chunk {first.index} failed in {first.instance!r}: {first.message}\n"
                f"{len(done)} of {len(plan)} chunks are complete and kept in {self.out}; "
                "rerun the same command to resume, or set job.on_error = \"skip\""
            )
        finalizer_info = self._finalize(merged, context)
        files = self._write_outputs(merged)
        report = build_report(self.steering, plan, done, failures, info, ran_now, time.perf_counter() - t_start, merged, finalizer_info)
        outputs.write_json(self.out / "report.json", report)
        files["report.json"] = outputs.sha256_file(self.out / "report.json")
        manifest = self._manifest("complete", plan, done, failures, info, files)
        outputs.write_json(self.out / "manifest.json", manifest)
        if self.console is not None:
            print_report(report, self.console)
        return Results(self.out, merged, report, manifest)

    def _execute(self, pending: list[ChunkSpec], done: dict, failures: list, plan: list, info: Any) -> int:
        executor = self.registry.executors[self.steering.job.executor](self.steering.job)
        factory = RunnerFactory(_portable(self.steering), self.out)
        ran = 0
        with progress_bar(self.console, plan, done) as advance:
            try:
                for outcome in executor.run(factory, pending):
                    if isinstance(outcome, ChunkFailure):
                        failures.append(outcome)
                        if self.steering.job.on_error == "fail":
                            executor.cancel()
                        elif self.console is not None:
                            self.console.print(f"[yellow]chunk {outcome.index} skipped[/]: {outcome.instance}: {outcome.message}")
                        continue
                    done[outcome.index] = outcome
                    ran += 1
                    advance(outcome)
            finally:
                executor.close()
        return ran

    def _finalize(self, merged: dict, context: Context) -> list[dict[str, Any]]:
        if not self.steering.finalizers:
            return []
        context.inputs = {name: Results.load(d) for name, d in self.steering.job.inputs.items()}
        timing = []
        for spec in self.steering.finalizers:
            finalizer = spec.build()
            t0 = time.perf_counter()
            try:
                finalizer.setup(context)
                produced = finalizer.finalize(merged, context)
            except Exception as exc:
                raise JobError(f"finalizer {spec.instance!r} failed: {type(exc).__name__}: {exc}") from exc
            entry = {"name": spec.instance, "plugin": spec.cls.name, "seconds": time.perf_counter() - t0}
            if produced:
                produced = dict(produced)
                # a finalizer's "summary" (lines of text) goes to the report and the final table
                if "summary" in produced:
                    summary = produced.pop("summary")
                    entry["summary"] = [summary] if isinstance(summary, str) else list(summary)
                merged.setdefault(spec.instance, {}).update(produced)
            timing.append(entry)
        return timing

    def _write_outputs(self, merged: dict) -> dict[str, str]:
        hists = histograms_of(merged)
        outputs.write_pickle(self.out / MERGED, merged)
        outputs.write_pickle(self.out / "histograms.pkl", hists)
        outputs.write_histograms_root(self.out / "histograms.root", hists)
        return {name: outputs.sha256_file(self.out / name) for name in (MERGED, "histograms.pkl", "histograms.root")}


def _portable(steering: Steering) -> Steering:
    """The steering without its registry (workers need only the plugin classes)."""
    from dataclasses import replace

    return replace(steering, registry=None)


def _source_dict(steering: Steering, info: SourceInfo | None) -> dict[str, Any]:
    if steering.source is None:
        return {}
    return {
        "plugin": steering.source.cls.name,
        "cross_section_ub": info.cross_section if info else None,
        "cross_section_error_ub": info.cross_section_error if info else None,
        "weighted": info.weighted if info else None,
        "description": info.description if info else "",
    }
