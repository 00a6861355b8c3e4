"""Errors that muone reports to users without a traceback.

Each carries the exit code of the command line (DESIGN.md "Public surface"): 2 for invalid input
(steering, files, options), 1 for a job that failed while running.
"""

from __future__ import annotations

from dataclasses import dataclass


class MuoneError(Exception):
    """Base class of user-facing errors: the message is complete, no traceback is shown."""

    exit_code: int = 2


class InputError(MuoneError):
    """Invalid input: a missing or corrupt file, a bad option value."""

    exit_code = 2


@dataclass(frozen=True)
class Problem:
    """One problem found in a steering file: where (file and dotted key path) and what."""

    key: str
    message: str
    file: str = ""

    def __str__(self) -> str:
        where = f"{self.file}: " if self.file else ""
        return f"{where}{self.key or '<top level>'}: {self.message}"


class SteeringError(MuoneError):
    """A steering file (or its overrides) is invalid; carries every problem found."""

    exit_code = 2

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        n = len(self.problems)
        lines = [f"invalid steering ({n} problem{'s' if n != 1 else ''}):"]
        lines += [f"  - {p}" for p in self.problems]
        super().__init__("\n".join(lines))


class ResumeError(MuoneError):
    """The output directory holds a job with another steering; rerun with ``--force``."""

    exit_code = 2


class JobError(MuoneError):
    """The job failed while running (a processor raised on a chunk, a worker died)."""

    exit_code = 1


class ExpressionError(MuoneError):
    """An expression in a steering file is invalid or refers to a missing field."""

    exit_code = 2

    def __init__(self, expression: str, message: str) -> None:
        self.expression = expression
        self.reason = message
        super().__init__(f"expression {expression!r}: {message}")
