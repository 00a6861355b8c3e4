"""Provenance for manifest.json: versions of muone and its dependencies, the git revision."""

from __future__ import annotations

import importlib.metadata as md
import platform
import subprocess
from pathlib import Path
from typing import Any

DEPENDENCIES = (
    "numpy", "scipy", "awkward", "vector", "numba", "uproot", "hist", "mplhep", "pluggy",
    "iminuit", "pydantic", "rich", "dask",
)


def versions() -> dict[str, str]:
    """Installed versions of muone, Python and the dependencies (missing ones omitted)."""
    out = {"python": platform.python_version()}
    for name in ("muone", *DEPENDENCIES):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            continue
    return out


def git_revision() -> dict[str, Any] | None:
    """The git revision of the muone source tree (and whether it has local changes), if any."""
    here = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if rev.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, timeout=10)
        return {"revision": rev.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return None
