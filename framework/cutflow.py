"""Weighted cut flows: a mergeable result that selectors and filters fill per chunk."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class CutFlow:
    """Ordered cuts with the weighted and raw number of events passing each.

    ``sumw[i]`` is the sum of event weights passing cut ``i`` (and all before it), ``sumw2[i]``
    the sum of squared weights (for its uncertainty) and ``count[i]`` the raw number of events.
    Cut flows merge with ``+`` when their cut names agree.
    """

    cuts: list[str] = field(default_factory=list)
    sumw: list[float] = field(default_factory=list)
    sumw2: list[float] = field(default_factory=list)
    count: list[int] = field(default_factory=list)

    def fill(self, cut: str, passed: np.ndarray, weights: np.ndarray) -> None:
        """Append a cut: ``passed`` is the boolean mask of events passing it (and every earlier
        cut), ``weights`` the event weights."""
        passed = np.asarray(passed, dtype=bool)
        w = np.asarray(weights, dtype=np.float64)[passed]
        self.cuts.append(cut)
        self.sumw.append(float(np.sum(w)))
        self.sumw2.append(float(np.sum(w * w)))
        self.count.append(int(np.count_nonzero(passed)))

    def __add__(self, other: CutFlow) -> CutFlow:
        if not isinstance(other, CutFlow):
            return NotImplemented
        if self.cuts != other.cuts:
            raise ValueError(f"cannot merge cut flows with different cuts: {self.cuts} vs {other.cuts}")
        return CutFlow(
            list(self.cuts),
            [a + b for a, b in zip(self.sumw, other.sumw)],
            [a + b for a, b in zip(self.sumw2, other.sumw2)],
            [a + b for a, b in zip(self.count, other.count)],
        )

    def efficiencies(self) -> list[float]:
        """Weighted efficiency of each cut relative to the first entry."""
        first = self.sumw[0] if self.sumw and self.sumw[0] else float("nan")
        return [s / first for s in self.sumw]

    def to_dict(self) -> dict:
        """JSON-serialisable form (for report.json)."""
        return {
            "cuts": [
                {"cut": c, "sumw": w, "sumw_error": float(np.sqrt(w2)), "count": n}
                for c, w, w2, n in zip(self.cuts, self.sumw, self.sumw2, self.count)
            ]
        }
