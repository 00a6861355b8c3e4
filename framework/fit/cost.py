"""Cost functions of the template fit, built by adding terms (iminuit style: ``data + constraints``).

Every cost is a callable of named parameters (``_parameters``, the protocol iminuit's ``describe``
reads) returning a deviance, -2 ln(L / L_saturated) up to constants, so ``errordef = 1``:

* :class:`PoissonDeviance`: the binned Poisson likelihood written as a deviance,
  D = 2 sum_b [nu_b - n_b + n_b ln(n_b / nu_b)], whose minimum is O(number of bins) and which is
  chi2-distributed asymptotically. With ``mc_stat`` each bin's prediction gets a factor beta_b
  with a Gaussian constraint (beta_b - 1)^2 / s_b, s_b the relative MC variance of the template bin
  (sumw2 / sumw^2), and beta_b is profiled analytically (Barlow-Beeston-lite, Conway 2011,
  arXiv:1103.0354): dD/dbeta = 0 gives beta^2 + beta (nu s - 1) - n s = 0, i.e.
  beta = [(1 - nu s) + sqrt((1 - nu s)^2 + 4 n s)] / 2.
* :class:`GaussianConstraint`: ((x - mean) / sigma)^2 for a nuisance parameter.
* ``a + b``: :class:`CostSum`, the sum over the union of the parameters (matched by name).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

__all__ = ["Cost", "CostSum", "GaussianConstraint", "PoissonDeviance", "poisson_deviance_terms"]


class Cost:
    """A deviance-like function of named parameters; costs add with ``+``."""

    errordef = 1.0

    def __init__(self, parameters: Sequence[str]) -> None:
        self._parameters = {name: None for name in parameters}

    @property
    def parameters(self) -> tuple[str, ...]:
        """Names of the parameters, in call order."""
        return tuple(self._parameters)

    @property
    def ndata(self) -> int:
        """Number of data points (bins) the cost sums over (0 for constraints)."""
        return 0

    def __call__(self, *args: float) -> float:
        raise NotImplementedError

    def __add__(self, other: Cost) -> CostSum:
        return CostSum([self, other])


class CostSum(Cost):
    """The sum of costs; parameters are the union of theirs, in order of first appearance."""

    def __init__(self, components: Sequence[Cost]) -> None:
        flat: list[Cost] = []
        for c in components:
            flat.extend(c.components if isinstance(c, CostSum) else [c])
        self.components = flat
        names = list(dict.fromkeys(n for c in flat for n in c.parameters))
        super().__init__(names)
        self._index = [np.array([names.index(n) for n in c.parameters], dtype=np.intp) for c in flat]

    @property
    def ndata(self) -> int:
        return sum(c.ndata for c in self.components)

    def __call__(self, *args: float) -> float:
        a = np.asarray(args, dtype=np.float64)
        return float(sum(c(*a[i]) for c, i in zip(self.components, self._index)))

    def __add__(self, other: Cost) -> CostSum:
        return CostSum([*self.components, other])


def poisson_deviance_terms(n: np.ndarray, nu: np.ndarray) -> np.ndarray:
    """Per-bin 2 [nu - n + n ln(n / nu)] (n = 0: 2 nu), written as 2 n [r - ln(1 + r)] with
    r = (nu - n)/n so that it keeps its precision when nu ~ n (counts up to ~1e12 per bin)."""
    out = 2.0 * nu.copy()
    pos = n > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        r = (nu[pos] - n[pos]) / n[pos]
        out[pos] = 2.0 * n[pos] * (r - np.log1p(r))
    return out


class PoissonDeviance(Cost):
    """Data term: D = 2 sum_b [beta nu - n + n ln(n / (beta nu))] + sum_b (beta - 1)^2 / s_b.

    Args:
        n: observed counts per fitted bin.
        predict: ``predict(args) -> nu`` (expected counts of the same bins) for the parameter values
            ``args`` in the order of ``parameters``.
        parameters: parameter names.
        relative_mc_variance: s_b per bin for the Barlow-Beeston-lite treatment (None: off).
    """

    def __init__(self, n: np.ndarray, predict: Callable[[np.ndarray], np.ndarray], parameters: Sequence[str], relative_mc_variance: np.ndarray | None = None) -> None:
        super().__init__(parameters)
        self.n = np.asarray(n, dtype=np.float64)
        self.predict = predict
        self.relative_mc_variance = None if relative_mc_variance is None else np.asarray(relative_mc_variance, dtype=np.float64)
        self.mc_stat = relative_mc_variance is not None

    @property
    def ndata(self) -> int:
        return len(self.n)

    def beta(self, nu: np.ndarray) -> np.ndarray:
        """The profiled Barlow-Beeston-lite factors for predictions nu (ones when off)."""
        if not self.mc_stat or self.relative_mc_variance is None:
            return np.ones_like(nu)
        s = self.relative_mc_variance
        a = 1.0 - nu * s
        return 0.5 * (a + np.sqrt(a * a + 4.0 * self.n * s))

    def terms(self, nu: np.ndarray) -> np.ndarray:
        """Per-bin deviance contributions (with the profiled beta when mc_stat)."""
        if not self.mc_stat or self.relative_mc_variance is None:
            return poisson_deviance_terms(self.n, nu)
        s = self.relative_mc_variance
        beta = self.beta(nu)
        with np.errstate(divide="ignore", invalid="ignore"):
            penalty = np.where(s > 0, (beta - 1.0) ** 2 / s, 0.0)
        return poisson_deviance_terms(self.n, beta * nu) + penalty

    def __call__(self, *args: float) -> float:
        nu = self.predict(np.asarray(args, dtype=np.float64))
        if not np.all(np.isfinite(nu)) or np.any(nu < 0):
            return 1e300
        return float(np.sum(self.terms(nu)))


class GaussianConstraint(Cost):
    """((x - mean) / sigma)^2: the Gaussian prior of a nuisance parameter as a deviance term."""

    def __init__(self, name: str, mean: float = 0.0, sigma: float = 1.0) -> None:
        if not sigma > 0:
            raise ValueError(f"constraint on {name!r}: sigma must be positive, got {sigma}")
        super().__init__([name])
        self.mean, self.sigma = float(mean), float(sigma)

    def __call__(self, x: float) -> float:
        return ((x - self.mean) / self.sigma) ** 2
