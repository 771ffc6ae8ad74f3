"""AUROC/AUPR per cell type, their mean (as the field reports), pooled; and the
logistic-regression baseline reported beside every model."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score


def auroc_aupr(labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """AUROC, AUPR (NaN when only one class occurs) and the number of genes."""
    if len(np.unique(labels)) < 2:
        return {"auroc": float("nan"), "aupr": float("nan"), "genes": int(len(labels))}
    return {"auroc": float(roc_auc_score(labels, scores)),
            "aupr": float(average_precision_score(labels, scores)),
            "genes": int(len(labels))}


def evaluate(labels: np.ndarray, scores: np.ndarray, cell: np.ndarray,
             cell_types: Sequence[str]) -> dict[str, Any]:
    """Per-cell AUROC/AUPR, their means, and pooled over all genes."""
    per_cell = {ct: auroc_aupr(labels[cell == i], scores[cell == i]) for i, ct in enumerate(cell_types)}
    aurocs = [m["auroc"] for m in per_cell.values()]
    auprs = [m["aupr"] for m in per_cell.values()]
    return {"per_cell": per_cell,
            "mean_auroc": float(np.nanmean(aurocs)) if not np.all(np.isnan(aurocs)) else float("nan"),
            "mean_aupr": float(np.nanmean(auprs)) if not np.all(np.isnan(auprs)) else float("nan"),
            "pooled": auroc_aupr(labels, scores)}


def logistic_baseline(train_counts: np.ndarray, train_labels: np.ndarray,
                      test_counts: np.ndarray, seed: int = 0) -> np.ndarray:
    """Probabilities of a logistic regression on flattened log1p counts (scikit-learn)."""
    from sklearn.linear_model import LogisticRegression

    x = np.log1p(train_counts.reshape(len(train_counts), -1))
    model = LogisticRegression(max_iter=5000, random_state=seed).fit(x, train_labels)
    return model.predict_proba(np.log1p(test_counts.reshape(len(test_counts), -1)))[:, 1]
