"""Per-file summaries of bin data (what ``chromaformer inspect`` prints)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..formats.bincsv import Bins


def summarize(bins: Bins) -> dict[str, Any]:
    """Genes, bins, marks, label balance and per-mark count statistics of ``bins``."""
    counts = bins.counts
    positives = int(bins.labels.sum())
    per_mark = {}
    for m, name in enumerate(bins.marks):
        x = counts[:, :, m]
        q50, q99 = np.percentile(x, [50, 99]) if x.size else (0.0, 0.0)
        per_mark[name] = {
            "mean": float(x.mean()) if x.size else 0.0,
            "median": float(q50),
            "p99": float(q99),
            "max": float(x.max()) if x.size else 0.0,
            "zero_fraction": float((x == 0).mean()) if x.size else 0.0,
        }
    return {
        "path": bins.path,
        "genes": bins.n_genes,
        "bins": bins.n_bins,
        "marks": list(bins.marks),
        "expressed": positives,
        "silent": bins.n_genes - positives,
        "expressed_fraction": positives / bins.n_genes if bins.n_genes else 0.0,
        "labelled": bins.labelled,
        "per_mark": per_mark,
    }


def format_summary(s: dict[str, Any]) -> str:
    """Human-readable lines for :func:`summarize`'s result."""
    labels = (
        f"labels: {s['expressed']} expressed (1), {s['silent']} silent (0), "
        f"{100 * s['expressed_fraction']:.1f}% expressed"
        if s.get("labelled", True)
        else "no labels (its layout record says the label column is a placeholder)"
    )
    lines = [
        f"{s['path']}: {s['genes']} genes x {s['bins']} bins x {len(s['marks'])} marks; {labels}",
        f"  {'mark':<12}{'mean':>9}{'median':>9}{'p99':>9}{'max':>10}{'zeros':>9}",
    ]
    for name, st in s["per_mark"].items():
        lines.append(
            f"  {name:<12}{st['mean']:>9.2f}{st['median']:>9.1f}{st['p99']:>9.1f}"
            f"{st['max']:>10.0f}{100 * st['zero_fraction']:>8.1f}%"
        )
    return "\n".join(lines)
