"""The figures of ``chromaformer explain`` (PNG at 100 dpi, atomic)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from .._util.figures import figure, save_png

GROUPS = (("expressed", 1, "tab:red"), ("silent", 0, "tab:blue"))


def _positions_kb(bins: int, bin_size: int) -> np.ndarray:
    """Bin centres relative to the TSS, in kb (the TSS sits between the two middle bins)."""
    return (np.arange(bins) - bins / 2 + 0.5) * bin_size / 1000


def plot_importance(
    out: Path,
    marks: Sequence[str],
    importance: dict[str, dict[str, float]],
    n: np.ndarray,
    title: str,
) -> Path:
    """Mean Shapley value per mark, expressed vs silent genes, as grouped bars."""
    # wider for more marks: Chromoformer's seven names overlap at 6.5 inches
    fig = figure(figsize=(max(6.5, 0.95 * len(marks) + 1.5), 4))
    ax = fig.subplots()
    x = np.arange(len(marks))
    for k, (name, g, color) in enumerate(GROUPS):
        vals = [importance[name][m] for m in marks]
        ax.bar(x + (k - 0.5) * 0.38, vals, 0.38, color=color, label=f"{name} ({int(n[g])} genes)")
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xticks(x, list(marks))
    ax.set_ylabel("mean Shapley value (logit)")
    ax.set_title(f"{title}: mark importance", fontsize=10)
    ax.legend(fontsize=8)
    return save_png(fig, out / "mark_importance.png")


def plot_profiles(
    out: Path, marks: Sequence[str], profile: np.ndarray, n: np.ndarray, bin_size: int, title: str
) -> Path:
    """Mean occlusion attribution per bin, one panel per mark, expressed vs silent;
    the TSS marked."""
    bins = profile.shape[1]
    x = _positions_kb(bins, bin_size)
    fig = figure(figsize=(2.6 * len(marks), 3.2))
    axes = fig.subplots(1, len(marks), sharey=True)
    for k, (ax, mark) in enumerate(zip(np.atleast_1d(axes), marks)):
        for name, g, color in GROUPS:
            ax.plot(x, profile[g, :, k], color=color, label=f"{name} ({int(n[g])})")
        ax.axvline(0, color="k", ls="--", lw=0.8)
        ax.axhline(0, color="grey", lw=0.5)
        ax.set_title(mark, fontsize=10)
        ax.set_xlabel("kb from TSS")
        if k == 0:
            ax.set_ylabel("logit drop when removed")
            ax.legend(fontsize=7)
    fig.suptitle(f"{title}: where each mark matters (dashed: TSS)", fontsize=10)
    return save_png(fig, out / "profiles.png")


def plot_heatmap(
    out: Path, gene: str, marks: Sequence[str], amap: np.ndarray, bin_size: int, title: str
) -> Path:
    """One gene's (bins x marks) occlusion map, marks as rows, diverging colours."""
    bins = amap.shape[0]
    x = _positions_kb(bins, bin_size)
    lim = float(np.abs(amap).max()) or 1.0
    fig = figure(figsize=(8, 0.45 * len(marks) + 1.6))
    ax = fig.subplots()
    step = (x[1] - x[0]) if bins > 1 else bin_size / 1000
    extent = (x[0] - step / 2, x[-1] + step / 2, len(marks) - 0.5, -0.5)
    im = ax.imshow(amap.T, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim, extent=extent)
    ax.set_yticks(range(len(marks)), list(marks))
    ax.axvline(0, color="k", ls="--", lw=0.8)
    ax.set_xlabel("kb from TSS (dashed)")
    ax.set_title(f"{title}: {gene}", fontsize=10)
    fig.colorbar(im, ax=ax, label="logit drop when removed")
    return save_png(fig, out / heatmap_name(gene))


def heatmap_name(gene: str) -> str:
    """The file name of ``gene``'s heatmap (characters other than letters, digits and
    ``-_.`` become ``_``)."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in gene)
    return f"heatmap_{safe}.png"


def plot_effects(out_tsv: Path, diff: np.ndarray, column: str, what: str) -> Path:
    """The distribution of the what-if differences (after - before) over genes."""
    fig = figure(figsize=(6, 4))
    ax = fig.subplots()
    ax.hist(diff, bins=60, color="tab:purple")
    ax.axvline(0, color="k", lw=0.8)
    ax.set_xlabel(f"{column} after - before")
    ax.set_ylabel("genes")
    mean = float(np.mean(diff)) if len(diff) else float("nan")
    ax.set_title(f"what if {what}: {len(diff)} genes, mean {mean:+.3f}", fontsize=10)
    name = out_tsv.name[: -len(".tsv")] if out_tsv.name.endswith(".tsv") else out_tsv.name
    return save_png(fig, out_tsv.with_name(f"{name}.effects.png"))
