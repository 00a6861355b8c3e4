"""pluggy hook specifications of the ``muone`` entry-point group.

A plugin distribution declares, in its pyproject.toml::

    [project.entry-points.muone]
    my_stage = "my_package.my_module"

and the module implements one or more of these hooks with ``@muone.hookimpl``. Built-in plugins
register the same way (see muone's own pyproject.toml).
"""

from __future__ import annotations

from typing import Any

import pluggy

PROJECT = "muone"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def muone_plugins() -> list[type]:
    """Return the Source, Processor and Finalizer classes this module provides."""


@hookspec
def muone_executors() -> dict[str, Any]:
    """Return executor factories by name (``{"dask": DaskExecutor}``); see muone.executors."""


@hookspec
def muone_histogram_presets() -> dict[str, dict[str, Any]]:
    """Return named histogram presets for the ``histograms`` processor: name -> a table of
    histogram definitions in the steering form (``{"hist_name": {"axes": [...], ...}}``)."""
