"""The error of the geometry service: an :class:`~muone.errors.InputError` naming file and key path."""

from __future__ import annotations

from muone.errors import InputError


class GeometryError(InputError):
    """A detector description, preset or alignment file is invalid (or missing).

    Attributes:
        file: the file (or preset, or ``<dict>``) the problems are in.
        problems: ``(key path, message)`` pairs, every problem found; the key path is dotted with
            list indices in brackets (``stations[1].target.thickness``), empty for the whole file.
    """

    def __init__(self, file: str, problems: list[tuple[str, str]], what: str = "detector description") -> None:
        self.file = str(file)
        self.problems = list(problems)
        n = len(self.problems)
        lines = [f"invalid {what} {self.file} ({n} problem{'s' if n != 1 else ''}):"]
        lines += [f"  - {self.file}: {key + ': ' if key else ''}{msg}" for key, msg in self.problems]
        super().__init__("\n".join(lines))
