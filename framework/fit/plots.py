"""Plots of the template fit (matplotlib + mplhep, PNG and PDF): the POI contours, the likelihood
scans, data vs best-fit projection with a ratio panel, and the optional grid scan.

Figures are built with :class:`matplotlib.figure.Figure` (no pyplot state, no GUI backend) and
written atomically. Angles (axes in rad) are shown in mrad.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from muone import outputs

__all__ = ["POI_LABELS", "contour_plot", "grid_plot", "projection_plot", "scan_plots"]

#: Axis labels of the parameters of interest.
POI_LABELS = {"K": r"$K$ [GeV$^{-2}$]", "M": r"$M$ [GeV$^{2}$]", "c1": r"$c_1$ [GeV$^{-2}$]", "c2": r"$c_2$ [GeV$^{-4}$]", "norm": "normalisation"}
_FORMATS = ("png", "pdf")


def _figure(figsize: tuple[float, float], right: float = 0.95):
    # fixed margins: matplotlib's constrained layout costs ~0.5 s per file
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    fig.subplots_adjust(left=0.18, right=right, bottom=0.14, top=0.91)
    return fig


def _save(fig: Any, stem: Path) -> list[str]:
    written = []
    for fmt in _FORMATS:
        path = stem.with_suffix(f".{fmt}")
        outputs.write_with(path, lambda tmp, fmt=fmt: fig.savefig(tmp, format=fmt, dpi=100 if fmt == "png" else None))
        written.append(str(path))
    return written


def _style():
    import matplotlib.style
    import mplhep

    return matplotlib.style.context(mplhep.style.ROOT)


def contour_plot(stem: Path, poi: Sequence[str], best: Sequence[float], contours: dict[str, np.ndarray], truth: Sequence[float] | None = None, title: str = "") -> list[str]:
    """Confidence regions of the two POIs (``contours``: label -> (n, 2) points)."""
    with _style():
        fig = _figure((7, 6))
        ax = fig.subplots()
        styles = ["-", "--", ":", "-."]
        for (label, pts), ls in zip(contours.items(), styles):
            closed = np.vstack([pts, pts[:1]])
            ax.plot(closed[:, 0], closed[:, 1], ls, color="C0", label=label)
        if truth is not None:
            ax.plot([truth[0]], [truth[1]], "*", color="C3", markersize=14, label="input")
        ax.plot([best[0]], [best[1]], "o", color="C0", markersize=5, label="best fit")
        ax.set_xlabel(POI_LABELS.get(poi[0], poi[0]))
        ax.set_ylabel(POI_LABELS.get(poi[1], poi[1]))
        ax.ticklabel_format(style="sci", axis="both", scilimits=(-3, 3), useOffset=False)
        ax.legend(fontsize="x-small", loc="best", frameon=True)
        if title:
            ax.set_title(title, fontsize=13)
        return _save(fig, stem)


def scan_plots(stem_prefix: Path, scans: dict[str, dict[str, list[float]]], title: str = "") -> list[str]:
    """One profile-likelihood scan per parameter: Delta deviance with the 1 and 4 lines."""
    written = []
    for name, scan in scans.items():
        with _style():
            fig = _figure((7, 5))
            ax = fig.subplots()
            x, y = np.asarray(scan["values"]), np.asarray(scan["delta_deviance"])
            ax.plot(x, y, "o-", color="C0", markersize=3)
            for level in (1.0, 4.0):
                ax.axhline(level, color="gray", ls="--", lw=0.8)
            ax.set_xlabel(POI_LABELS.get(name, name))
            ax.set_ylabel(r"$\Delta$ deviance ($-2\Delta\ln L$)")
            ax.ticklabel_format(style="sci", axis="x", scilimits=(-3, 3), useOffset=False)
            ax.set_ylim(bottom=0)
            if title:
                ax.set_title(title, fontsize=13)
            written += _save(fig, Path(f"{stem_prefix}_{name}"))
    return written


def _display(edges: np.ndarray, label: str, name: str) -> tuple[np.ndarray, str]:
    if name.startswith("theta") or "[rad]" in label:
        base = label.replace("[rad]", "").strip() or name
        pretty = {"theta_e": r"$\theta_e$", "theta_mu": r"$\theta_\mu$"}.get(base, base)
        return edges * 1e3, f"{pretty} [mrad]"
    return edges, label or name


def projection_plot(stem: Path, axes: Sequence[Any], axis: str, data: np.ndarray, expected: np.ndarray, norm_mask: np.ndarray | None = None, title: str = "") -> list[str]:
    """Data (points) and best-fit prediction (line) projected on one axis, with data/fit below.
    The normalisation region's share is shaded."""
    import mplhep

    names = [a.name for a in axes]
    k = names.index(axis) if axis in names else 0
    shape = tuple(a.n_bins for a in axes)
    other = tuple(i for i in range(len(shape)) if i != k)
    d = np.asarray(data).reshape(shape).sum(axis=other)
    e = np.asarray(expected).reshape(shape).sum(axis=other)
    edges, xlabel = _display(np.asarray(axes[k].edges), axes[k].label, axes[k].name)
    widths = np.diff(edges)
    with _style():
        fig = _figure((8, 7))
        top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1], "hspace": 0.05})
        mplhep.histplot(e / widths, edges, ax=top, label="best fit", color="C0")
        mplhep.histplot(d / widths, edges, yerr=np.sqrt(d) / widths, histtype="errorbar", ax=top, label="data", color="k", markersize=3)
        if norm_mask is not None and np.any(norm_mask):
            nm = np.asarray(norm_mask).reshape(shape).any(axis=other)
            for lo, hi, on in zip(edges[:-1], edges[1:], nm):
                if on:
                    top.axvspan(lo, hi, color="C2", alpha=0.08, lw=0)
            top.plot([], [], color="C2", alpha=0.3, lw=6, label="normalisation region")
        top.set_yscale("log")
        top.set_ylabel(f"events / {'mrad' if 'mrad' in xlabel else 'unit'}")
        top.legend(fontsize="small")
        if title:
            top.set_title(title, fontsize=13)
        with np.errstate(divide="ignore", invalid="ignore"):
            residual = np.where(e > 0, d / e - 1.0, np.nan)
            err = np.where(e > 0, np.sqrt(d) / e, np.nan)
        centres = 0.5 * (edges[1:] + edges[:-1])
        finite = np.isfinite(residual) & np.isfinite(err)
        span = 1e-12
        if finite.any():
            span = max(1.2 * float(np.max(np.abs(residual[finite]))), 3.0 * float(np.median(err[finite])), 1e-12)
        power = int(np.floor(np.log10(span)))
        unit = 10.0**power if power <= -2 else 1.0  # the residuals are ~1e-5 at MUonE's luminosity
        bottom.errorbar(centres, residual / unit, yerr=err / unit, fmt="o", color="k", markersize=3)
        bottom.axhline(0.0, color="C0", lw=1)
        bottom.set_ylabel("data/fit - 1" + (f"\n[$10^{{{power}}}$]" if unit != 1.0 else ""), fontsize=13)
        bottom.set_xlabel(xlabel)
        bottom.set_ylim(-span / unit, span / unit)
        return _save(fig, stem)


def grid_plot(stem: Path, grid: dict[str, Any], title: str = "") -> list[str]:
    """The grid scan: Delta deviance map with the 1 and 2 sigma (2 d.o.f.) levels."""
    x, y = np.asarray(grid["x"]), np.asarray(grid["y"])
    dev = np.asarray(grid["delta_deviance"], dtype=float)
    px, py = grid["parameters"]
    with _style():
        fig = _figure((8, 6), right=0.97)
        ax = fig.subplots()
        finite = dev[np.isfinite(dev)]
        vmax = min(float(finite.max()), 50.0) if finite.size else 1.0
        mesh = ax.pcolormesh(x, y, dev.T, shading="nearest", cmap="viridis", vmin=0.0, vmax=vmax)
        fig.colorbar(mesh, ax=ax, label=r"$\Delta$ deviance", extend="max" if finite.size and finite.max() > vmax else "neither")
        if np.isfinite(dev).sum() > 4:
            ax.contour(x, y, dev.T, levels=[2.30, 6.18], colors=["w", "w"], linestyles=["-", "--"])
        ax.set_xlabel(POI_LABELS.get(px, px))
        ax.set_ylabel(POI_LABELS.get(py, py))
        ax.ticklabel_format(style="sci", axis="both", scilimits=(-3, 3), useOffset=False)
        if title:
            ax.set_title(title, fontsize=13)
        return _save(fig, stem)
