"""The outputs of a job as Python objects: :class:`Results`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from muone import outputs
from muone.errors import InputError

MERGED = "results/merged.pkl"


def histograms_of(merged: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The hist objects among merged results, keyed ``"instance/name"``."""
    import hist

    return {
        f"{inst}/{name}": obj
        for inst, items in merged.items()
        for name, obj in items.items()
        if isinstance(obj, hist.Hist)
    }


@dataclass
class Results:
    """What a job produced: merged results, histograms, report, manifest and fit.

    Attributes:
        output_dir: the job's output directory.
        merged: merged per-chunk results (and finalizer results) by instance, then name.
        report: the content of report.json.
        manifest: the content of manifest.json.
    """

    output_dir: Path
    merged: dict[str, dict[str, Any]] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def histograms(self) -> dict[str, Any]:
        """Histograms keyed ``"instance/name"`` (e.g. ``"histograms/beam_energy"``)."""
        return histograms_of(self.merged)

    def hist(self, name: str) -> Any:
        """A histogram by full key or by its unique short name."""
        hists = self.histograms
        if name in hists:
            return hists[name]
        matches = [k for k in hists if k.split("/", 1)[-1] == name]
        if len(matches) == 1:
            return hists[matches[0]]
        why = "ambiguous, use one of " + ", ".join(matches) if matches else "not found; histograms: " + ", ".join(hists)
        raise KeyError(f"histogram {name!r} {why}")

    @property
    def fit(self) -> dict[str, Any] | None:
        """The content of fit.json when a fit ran, else None."""
        path = self.output_dir / "fit.json"
        return outputs.read_json(path) if path.exists() else None

    @property
    def cross_section(self) -> float | None:
        """The source's cross section in microbarn (None when it has none)."""
        return self.report.get("source", {}).get("cross_section_ub")

    def events(self, collections: list[str] | None = None) -> Any:
        """The saved collections of every chunk (``[job] save``), concatenated in chunk order as
        one awkward array with vector behaviours (fine for small jobs; large ones should use the
        ``events`` source)."""
        import awkward as ak

        from muone import rootio

        parts = []
        for entry in self.manifest.get("chunks", []):
            files = [f for f in entry["files"] if f.startswith("events/")]
            if files:
                schema = entry.get("events_schema") or self.manifest["events_schema"]
                parts.append(rootio.read_events(self.output_dir / files[0], schema, collections))
        if not parts:
            raise InputError(f"{self.output_dir}: the job saved no events ([job] save is empty)")
        return ak.concatenate(parts)

    @classmethod
    def load(cls, output_dir: str | Path) -> Results:
        """Read the outputs of a finished job from its directory."""
        out = Path(output_dir)
        if not (out / "manifest.json").is_file():
            raise InputError(f"{out}: not the output directory of a muone job (no manifest.json)")
        manifest = outputs.read_json(out / "manifest.json")
        if manifest.get("status") not in ("complete",):
            raise InputError(f"{out}: the job is not complete (status {manifest.get('status')!r}); rerun it to finish")
        report = outputs.read_json(out / "report.json") if (out / "report.json").exists() else {}
        merged = outputs.read_pickle(out / MERGED) if (out / MERGED).exists() else {}
        return cls(out, merged, report, manifest)
