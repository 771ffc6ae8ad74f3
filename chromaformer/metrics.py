"""Metrics of every task, and the simple baselines reported beside every model.

``clf``: AUROC/AUPR per cell type, their mean (as the field reports) and pooled;
``reg``/``diff``: MSE, Pearson r and R². Two baselines stand beside every model, fitted
on the same training genes' flat features (log1p counts): a linear model (logistic
regression for clf, ridge regression for reg/diff) and scikit-learn's
HistGradientBoosting.
"""

from __future__ import annotations

import importlib
import threading
from typing import Any, Optional, Sequence

import numpy as np

#: The figure a model card and ``chromaformer models`` give per task: (key, its name).
HEADLINE_METRIC = {
    "clf": ("mean_auroc", "AUROC"),
    "reg": ("pearson_r", "Pearson r"),
    "diff": ("pearson_r", "Pearson r"),
}
#: The validation metric that picks the best checkpoint, per task, and whether higher wins.
SELECTION = {"clf": ("mean_auroc", True), "reg": ("mse", False), "diff": ("mse", False)}
#: Between validation metrics tied on the selection metric, the lower of this wins.
TIE_BREAK = "log_loss"
#: The selection when the training genes are fewer than one batch (the recipe's
#: ``few_genes_epoch_steps``): a handful of validation genes tie or saturate AUROC before
#: the model has learned a scale, so the lowest validation log loss picks the checkpoint
#: Tasks absent here keep :data:`SELECTION`.
FEW_GENES_SELECTION = {"clf": ("log_loss", False)}
BASELINE_NAME = {
    "clf": "logistic regression",
    "reg": "ridge regression",
    "diff": "ridge regression",
}
#: Every baseline reported beside a model, per task: (key, name), the linear one first.
BASELINES = {
    task: (("linear", name), ("gradient_boosting", "gradient boosting"))
    for task, name in BASELINE_NAME.items()
}


_METRICS_IMPORT: list[threading.Thread] = []


def _import_metrics() -> None:
    try:
        importlib.import_module("sklearn.metrics")
    except Exception:  # the caller's own import, in its thread, reports it
        pass


def import_in_background() -> None:
    """Start importing scikit-learn's metrics in a thread (1.5 s on an H100 machine's
    CPU, 2.5 s on the 2-core development machine), so that a scoring run which reports
    AUROC at its end pays for the import while it reads and infers. Idempotent.

    Not a daemon thread: a run stopped early (an error, SIGTERM) waits for the import
    to finish before the interpreter shuts down; a daemon thread still importing then
    aborts the process (SIGABRT, "terminate called without an active exception") in
    about one run in four under load."""
    if not _METRICS_IMPORT:
        thread = threading.Thread(target=_import_metrics, name="import-sklearn")
        _METRICS_IMPORT.append(thread)
        thread.start()


def log_loss(labels: np.ndarray, probs: np.ndarray) -> float:
    """Mean binary cross-entropy of probabilities (clipped to [1e-7, 1 - 1e-7]); NaN
    for no genes."""
    if not len(labels):
        return float("nan")
    p = np.clip(np.asarray(probs, np.float64), 1e-7, 1 - 1e-7)
    y = np.asarray(labels, np.float64)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def auroc_aupr(labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """AUROC, AUPR (NaN when only one class occurs) and the number of genes."""
    # scikit-learn loads here, not with the module: scoring pays for it only when the
    # input has labels (about a second of start-up otherwise)
    from sklearn.metrics import average_precision_score, roc_auc_score

    if len(np.unique(labels)) < 2:
        return {"auroc": float("nan"), "aupr": float("nan"), "genes": int(len(labels))}
    return {
        "auroc": float(roc_auc_score(labels, scores)),
        "aupr": float(average_precision_score(labels, scores)),
        "genes": int(len(labels)),
    }


#: resamples of :func:`auroc_gap`'s bootstrap
GAP_RESAMPLES = 400


def auroc_gap(
    labels: np.ndarray, a: np.ndarray, b: np.ndarray, *, reps: int = GAP_RESAMPLES, seed: int = 0
) -> dict[str, float]:
    """The AUROC of scores ``a`` minus that of ``b`` on the same genes, with the 2.5 and
    97.5 percentiles of a paired bootstrap over the genes (resampled within each class,
    the same genes for both: ``reps`` resamples, ``seed``). A gap whose interval holds 0
    is within the noise of which genes were drawn. Each resample's AUROC is the
    Mann-Whitney U statistic (scipy, vectorised over the resamples) over n1 x n0.

    ``a`` and ``b`` may also be ``(k, genes)``: k pairs of scores of the same genes (say
    k seeds' single models, each beside the baseline fitted on its folds); the gap is
    then the mean of the k pairs' gaps, each resample the same genes for all of them."""
    from scipy.stats import mannwhitneyu
    from sklearn.metrics import roc_auc_score

    y = np.asarray(labels).astype(int)
    a2, b2 = (np.atleast_2d(np.asarray(v, np.float64)) for v in (a, b))
    if a2.shape != b2.shape or a2.shape[1] != len(y):
        raise ValueError(f"scores of shape {a2.shape} and {b2.shape} for {len(y)} labels")
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    if not len(pos) or not len(neg):
        return {"gap": float("nan"), "low": float("nan"), "high": float("nan")}
    rng = np.random.default_rng(seed)
    ip = rng.choice(pos, (reps, len(pos)))
    ineg = rng.choice(neg, (reps, len(neg)))

    def aucs(s: np.ndarray) -> np.ndarray:
        u = mannwhitneyu(s[ip], s[ineg], axis=1, method="asymptotic").statistic
        return np.asarray(u) / (len(pos) * len(neg))

    diff = np.mean([aucs(x) - aucs(z) for x, z in zip(a2, b2)], axis=0)
    low, high = np.percentile(diff, [2.5, 97.5])
    gap = float(np.mean([roc_auc_score(y, x) - roc_auc_score(y, z) for x, z in zip(a2, b2)]))
    return {"gap": gap, "low": float(low), "high": float(high)}


def _rowwise_pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    xc = x - x.mean(axis=1, keepdims=True)
    yc = y - y.mean(axis=1, keepdims=True)
    den = np.sqrt((xc * xc).sum(axis=1) * (yc * yc).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return (xc * yc).sum(axis=1) / den


def pearson_gap(
    target: np.ndarray, a: np.ndarray, b: np.ndarray, *, reps: int = GAP_RESAMPLES, seed: int = 0
) -> dict[str, float]:
    """Pearson r of predictions ``a`` minus that of ``b`` with the observed ``target``,
    with the 2.5 and 97.5 percentiles of a paired bootstrap over the genes (the same
    resampled genes for both; ``reps`` resamples, ``seed``)."""
    y, a, b = (np.asarray(v, np.float64) for v in (target, a, b))
    n = len(y)
    if n < 3:
        return {"gap": float("nan"), "low": float("nan"), "high": float("nan")}
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, (reps, n))
    diff = np.concatenate(
        [
            _rowwise_pearson(a[part], y[part]) - _rowwise_pearson(b[part], y[part])
            for part in np.array_split(idx, max(1, reps * n // 2_000_000))
        ]
    )
    if np.isnan(diff).all():  # constant predictions: no correlation to compare
        return {"gap": float("nan"), "low": float("nan"), "high": float("nan")}
    low, high = np.nanpercentile(diff, [2.5, 97.5])
    gap = float(_rowwise_pearson(a[None], y[None])[0] - _rowwise_pearson(b[None], y[None])[0])
    return {"gap": gap, "low": float(low), "high": float(high)}


def metric_gap(task: str, target: np.ndarray, a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """The gap a report shows between a model and a baseline on the same genes, with its
    paired bootstrap interval: AUROC for classifiers, Pearson r for regression."""
    return (auroc_gap if task == "clf" else pearson_gap)(target, a, b)


#: What :func:`metric_gap` compares, by task: the headline metric.
GAP_METRIC = {task: name for task, (_, name) in HEADLINE_METRIC.items()}


def gap_verdict(gap: dict[str, float]) -> str:
    """``above``, ``below``, or ``level with`` when the gap's interval holds 0."""
    if gap["low"] <= 0 <= gap["high"]:
        return "level with"
    return "above" if gap["gap"] > 0 else "below"


def describe_gap(name: str, gap: dict[str, float]) -> str:
    """``above NAME (+0.0123; 95% interval +0.004 to +0.020)`` or ``level with NAME``
    when the interval holds 0."""
    g, lo, hi = gap["gap"], gap["low"], gap["high"]
    if not np.isfinite(g):
        return f"no comparison with {name}"
    where = gap_verdict(gap)
    return f"{where} {name} ({g:+.4f}; 95% bootstrap interval {lo:+.4f} to {hi:+.4f})"


def evaluate(
    labels: np.ndarray, scores: np.ndarray, cell: np.ndarray, cell_types: Sequence[str]
) -> dict[str, Any]:
    """Per-cell AUROC/AUPR, their means, pooled over all genes, and the log loss of the
    probabilities (``scores`` are P(class 1))."""
    per_cell = {
        ct: auroc_aupr(labels[cell == i], scores[cell == i]) for i, ct in enumerate(cell_types)
    }
    aurocs = [m["auroc"] for m in per_cell.values()]
    auprs = [m["aupr"] for m in per_cell.values()]
    return {
        "per_cell": per_cell,
        "mean_auroc": float(np.nanmean(aurocs)) if not np.all(np.isnan(aurocs)) else float("nan"),
        "mean_aupr": float(np.nanmean(auprs)) if not np.all(np.isnan(auprs)) else float("nan"),
        "pooled": auroc_aupr(labels, scores),
        "log_loss": log_loss(labels, scores),
    }


def regression_metrics(target: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """MSE, Pearson r, Spearman's rho and R² (NaN where undefined) and the number of
    genes."""
    target, pred = np.asarray(target, np.float64), np.asarray(pred, np.float64)
    mse = float(np.mean((pred - target) ** 2)) if len(target) else float("nan")
    r = (
        float(np.corrcoef(pred, target)[0, 1])
        if len(target) > 1 and np.std(pred) > 0 and np.std(target) > 0
        else float("nan")
    )
    rho = float("nan")
    if not np.isnan(r):
        from scipy.stats import spearmanr

        rho = float(spearmanr(pred, target).statistic)
    ss = float(np.sum((target - target.mean()) ** 2)) if len(target) else 0.0
    r2 = 1 - float(np.sum((target - pred) ** 2)) / ss if ss > 0 else float("nan")
    return {"mse": mse, "pearson_r": r, "spearman": rho, "r2": r2, "genes": int(len(target))}


def task_metrics(
    task: str,
    target: np.ndarray,
    pred: np.ndarray,
    groups: Optional[np.ndarray] = None,
    group_names: Sequence[str] = ("all",),
) -> dict[str, Any]:
    """The metrics of ``task`` (clf: per group as :func:`evaluate`)."""
    if task == "clf":
        if groups is None:
            groups = np.zeros(len(target), dtype=np.int16)
        return evaluate(np.asarray(target), pred, groups, group_names)
    return regression_metrics(target, pred)


def is_better(
    task: str,
    new: dict[str, Any],
    best: Optional[dict[str, Any]],
    selection: Optional[tuple[str, bool]] = None,
) -> bool:
    """Whether ``new`` validation metrics beat ``best`` (NaN never wins) on ``selection``
    (metric, higher wins; default: the task's :data:`SELECTION`). A tie on the
    selection metric, common with few validation genes (AUROC moves in steps of
    1 / (positives x negatives)), goes to the lower :data:`TIE_BREAK` metric when both
    have it: else a barely trained first epoch would win every tie."""
    if best is None:
        return True
    key, higher = selection or SELECTION[task]
    a, b = new.get(key, float("nan")), best.get(key, float("nan"))
    if np.isnan(a):
        return False
    if np.isnan(b):
        return True
    if a == b and TIE_BREAK in new and TIE_BREAK in best:
        return bool(new[TIE_BREAK] < best[TIE_BREAK])
    return bool(a > b if higher else a < b)


def fit_baseline(
    task: str,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    seed: int = 0,
    kind: str = "linear",
) -> np.ndarray:
    """Predictions of one of the task's baselines (scikit-learn) on flat features
    ``(genes, f)``: P(class 1) for clf, values for reg/diff. ``kind``: ``linear``
    (logistic / ridge regression) or ``gradient_boosting`` (HistGradientBoosting)."""
    if kind == "gradient_boosting":
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

        if task == "clf":
            clf = HistGradientBoostingClassifier(random_state=seed).fit(x_train, y_train)
            return clf.predict_proba(x_test)[:, 1]
        reg = HistGradientBoostingRegressor(random_state=seed).fit(x_train, y_train)
        return reg.predict(x_test)
    if kind != "linear":
        raise ValueError(f"unknown baseline {kind!r}")
    if task == "clf":
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(max_iter=5000, random_state=seed).fit(x_train, y_train)
        return model.predict_proba(x_test)[:, 1]
    from sklearn.linear_model import Ridge

    return Ridge(alpha=1.0).fit(x_train, y_train).predict(x_test)


def fit_baselines(
    task: str, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, seed: int = 0
) -> dict[str, np.ndarray]:
    """Every baseline's predictions (see :data:`BASELINES`), by key."""
    return {
        key: fit_baseline(task, x_train, y_train, x_test, seed, kind=key)
        for key, _ in BASELINES[task]
    }


def beaten_by(task: str, model: dict[str, Any], baselines: dict[str, dict[str, Any]]) -> list:
    """Names of the baselines whose selection metric beats the model's."""
    key, higher = SELECTION[task]
    names = dict(BASELINES[task])
    out = []
    for k, m in baselines.items():
        a, b = m.get(key, float("nan")), model.get(key, float("nan"))
        if not np.isnan(a) and not np.isnan(b) and (a > b if higher else a < b):
            out.append(names.get(k, k))
    return out


def logistic_baseline(
    train_counts: np.ndarray, train_labels: np.ndarray, test_counts: np.ndarray, seed: int = 0
) -> np.ndarray:
    """Probabilities of a logistic regression on flattened log1p counts (scikit-learn)."""
    flat = [np.log1p(c.reshape(len(c), -1)) for c in (train_counts, test_counts)]
    return fit_baseline("clf", flat[0], train_labels, flat[1], seed)
