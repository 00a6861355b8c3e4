"""Nuisance parameters from variation templates: per-bin vertical interpolation.

A systematic source j (beam energy scale, multiple-scattering scale, intrinsic resolution,
longitudinal alignment...) is described by templates made with the source shifted by +1 sigma and
-1 sigma (or only +1 sigma: the -1 sigma effect is then taken as the mirror image). Per bin b the
relative effects are

    d+_b = T+_b / T0_b - 1,     d-_b = T-_b / T0_b - 1

(T the template contents, each divided by its sample's equivalent luminosity when the variations
come from separate jobs), and the prediction is multiplied by 1 + sum_j f(theta_j; d+_jb, d-_jb),
with theta_j ~ N(0, 1) a constrained nuisance parameter and

    f(theta) = theta (d+ - d-)/2 + theta^2 (d+ + d-)/2                      |theta| <= 1
    f(theta) = d+ + (theta - 1) (3 d+ + d-)/2                                 theta > 1
    f(theta) = d- + (theta + 1) (-(d+ + 3 d-)/2)                              theta < -1

i.e. the parabola through (-1, d-), (0, 0), (1, d+), continued linearly with the same slope
beyond +-1 (continuous with a continuous first derivative, like HistFactory's quadratic
interpolation with linear extrapolation). The effects are relative, so they apply to the template
of any Delta_alpha_had model: the detector effects are assumed independent of the O(1e-3) change of
the t distribution that the fit parameters make.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Variation", "interpolate"]


def interpolate(theta: float, up: np.ndarray, down: np.ndarray) -> np.ndarray:
    """f(theta; d+, d-) of the module docstring, per bin."""
    if theta > 1.0:
        return up + (theta - 1.0) * 0.5 * (3.0 * up + down)
    if theta < -1.0:
        return down - (theta + 1.0) * 0.5 * (up + 3.0 * down)
    return theta * 0.5 * (up - down) + theta * theta * 0.5 * (up + down)


@dataclass
class Variation:
    """One nuisance parameter: its name and per-bin relative effects at +1 and -1 sigma."""

    name: str
    up: np.ndarray
    down: np.ndarray
    one_sided: bool = False

    @classmethod
    def from_contents(cls, name: str, nominal: np.ndarray, up: np.ndarray, down: np.ndarray | None = None) -> Variation:
        """From per-bin contents (already on a common luminosity); bins where the nominal is 0
        get no effect. Without ``down`` the effect is symmetrised: d- = -d+."""
        nominal = np.asarray(nominal, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            d_up = np.where(nominal > 0, np.asarray(up, dtype=np.float64) / nominal - 1.0, 0.0)
            d_down = -d_up if down is None else np.where(nominal > 0, np.asarray(down, dtype=np.float64) / nominal - 1.0, 0.0)
        return cls(name, d_up, d_down, down is None)

    def shift(self, theta: float) -> np.ndarray:
        """The relative change of every bin at theta."""
        return interpolate(float(theta), self.up, self.down)

    def restricted(self, mask: np.ndarray) -> Variation:
        """The same variation on a subset of bins."""
        return Variation(self.name, self.up[mask], self.down[mask], self.one_sided)
