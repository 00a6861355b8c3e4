"""The geometry service: detector descriptions, presets and alignment conditions.

Units: mm, rad, GeV; z along the beam, z = 0 at the start of the first station. Conventions and the
file formats: docs/geometry.md (and the docstrings of :mod:`muone.geometry.detector`).

Typical use in a processor's ``setup``::

    from muone.geometry import load_geometry
    detector = load_geometry(context.geometry)     # the [geometry] steering table
    arrays = detector.module_arrays()              # flat arrays for numba kernels

Public API:

* :func:`load_geometry` (``[geometry]`` table -> :class:`Detector`), :func:`available_presets`,
  :func:`load_preset`, :func:`load_detector` (a description file), :func:`detector_from_dict`,
  :func:`write_detector`, :func:`default_detector`;
* :class:`Detector`, :class:`Station`, :class:`Module`, :class:`Target`, :class:`Calorimeter`,
  :class:`Material` and the built-in :data:`MATERIALS`;
* alignment: :class:`AlignmentConditions`, :class:`ModuleAlignment`, :func:`read_alignment`,
  :func:`write_alignment`, :func:`random_misalignment`;
* :class:`GeometryError` (an :class:`~muone.errors.InputError`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from muone.geometry.alignment import (
    AlignmentConditions,
    ModuleAlignment,
    random_misalignment,
    read_alignment,
    write_alignment,
)
from muone.geometry.description import (
    available_presets,
    default_detector,
    detector_from_dict,
    load_detector,
    load_preset,
    pydantic_problems,
    write_detector,
)
from muone.geometry.detector import KIND_CODES, KIND_DEFAULTS, KINDS, Calorimeter, Detector, Module, Station, Target
from muone.geometry.errors import GeometryError
from muone.geometry.materials import MATERIALS, N_AVOGADRO, Material

__all__ = [
    "load_geometry", "available_presets", "load_preset", "load_detector", "detector_from_dict",
    "write_detector", "default_detector", "Detector", "Station", "Module", "Target", "Calorimeter",
    "Material", "MATERIALS", "N_AVOGADRO", "KINDS", "KIND_CODES", "KIND_DEFAULTS",
    "AlignmentConditions", "ModuleAlignment", "read_alignment", "write_alignment",
    "random_misalignment", "GeometryError",
]


def load_geometry(config: Any = None, base_dir: str | os.PathLike[str] | None = None) -> Detector:
    """The detector of a ``[geometry]`` steering table, with its alignment applied.

    Args:
        config: the :class:`~muone.steering.GeometryConfig` model, or a dict with (some of) its keys
            ``preset``, ``file``, ``alignment``, or None. With neither ``preset`` nor ``file`` the
            result is :func:`default_detector` (one 1.5 cm Be target at z = 0, no modules, no
            calorimeter); giving both is an error.
        base_dir: folder that relative ``file`` and ``alignment`` paths are resolved against
            (e.g. the steering file's folder); default: the working directory.

    Raises:
        GeometryError (an InputError): unknown preset (the message lists the available ones),
        missing or invalid description or alignment file (named, with the key path), alignment
        constants for modules the detector does not have.
    """
    from muone.steering import GeometryConfig

    if config is None:
        config = GeometryConfig()
    elif isinstance(config, Mapping):
        try:
            config = GeometryConfig.model_validate(dict(config))
        except ValidationError as exc:
            problems = [(f"geometry.{k}" if k else "geometry", m) for k, m in pydantic_problems(exc, GeometryConfig)]
            raise GeometryError("[geometry]", problems, "geometry configuration") from None
    elif not isinstance(config, GeometryConfig):
        # any object with the three attributes (e.g. a copy of the model from another process)
        try:
            config = GeometryConfig(preset=config.preset, file=config.file, alignment=config.alignment)
        except (AttributeError, ValidationError):
            raise GeometryError("[geometry]", [("geometry", f"expected the [geometry] table, got {type(config).__name__}")],
                                "geometry configuration") from None

    def _path(p: str) -> Path:
        path = Path(p).expanduser()
        return path if path.is_absolute() or base_dir is None else Path(base_dir) / path

    if config.preset and config.file:
        raise GeometryError("[geometry]", [("geometry", f"give either preset ({config.preset!r}) or file "
                                            f"({config.file!r}), not both")], "geometry configuration")
    if config.preset:
        detector = load_preset(config.preset)
    elif config.file:
        detector = load_detector(_path(config.file))
    else:
        detector = default_detector()
    if config.alignment:
        detector = detector.with_alignment(read_alignment(_path(config.alignment)))
    return detector
