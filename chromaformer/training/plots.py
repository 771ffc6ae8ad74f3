"""ROC and PR curves of a run's evaluation split (PNG, atomic)."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Optional, Sequence

import numpy as np

from .._util.figures import figure, save_png


def plot_curves(
    out: Path,
    labels: np.ndarray,
    scores: np.ndarray,
    cell: np.ndarray,
    cell_types: Sequence[str],
    title: str,
    split: str = "test",
    baselines: Optional[Mapping[str, np.ndarray]] = None,
) -> None:
    """Write ``out/roc.png`` and ``out/pr.png``: one curve per cell type (+ pooled), and
    each baseline's pooled curve dashed; every legend entry carries its AUROC or AUPR."""
    from sklearn.metrics import (
        average_precision_score,
        precision_recall_curve,
        roc_auc_score,
        roc_curve,
    )

    for kind in ("roc", "pr"):
        fig = figure(figsize=(5.5, 5.5))
        ax = fig.subplots()
        groups = [(ct, cell == i) for i, ct in enumerate(cell_types)]
        if len(cell_types) > 1:
            groups.append(("pooled", np.ones_like(labels, dtype=bool)))
        curves = [(f"{title}, {name}", mask, scores, "-") for name, mask in groups]
        everyone = np.ones_like(labels, dtype=bool)
        curves += [(name, everyone, pred, "--") for name, pred in (baselines or {}).items()]
        for name, mask, s_all, style in curves:
            y, s = labels[mask], np.asarray(s_all)[mask]
            if len(np.unique(y)) < 2:
                continue
            if kind == "roc":
                fpr, tpr, _ = roc_curve(y, s)
                ax.plot(fpr, tpr, style, label=f"{name} (AUROC {roc_auc_score(y, s):.4f})")
            else:
                prec, rec, _ = precision_recall_curve(y, s)
                aupr = average_precision_score(y, s)
                ax.plot(rec, prec, style, label=f"{name} (AUPR {aupr:.4f})")
        if kind == "roc":
            ax.plot([0, 1], [0, 1], "k:", lw=0.8)
            ax.set(xlabel="false positive rate", ylabel="true positive rate")
        else:
            ax.set(xlabel="recall", ylabel="precision")
        ax.set_title(f"{title}: {kind.upper()} ({split})")
        ax.legend(loc="lower right" if kind == "roc" else "lower left", fontsize=7)
        save_png(fig, out / f"{kind}.png")
