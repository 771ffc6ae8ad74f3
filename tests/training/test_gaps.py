"""The gap between a model and a baseline on the same genes, with its paired bootstrap
95% interval (AUROC for classifiers, Pearson r for regression), equals a brute-force
computation over the same resamples, and the report's words follow from the interval."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from chromaformer.metrics import auroc_gap, describe_gap, pearson_gap
from chromaformer.training.report import format_metrics


def _data(n=300, seed=1):
    rng = np.random.default_rng(seed)
    y = rng.normal(size=n)
    return rng, y, y + rng.normal(size=n), y + 1.4 * rng.normal(size=n)


def test_pearson_gap_is_the_brute_force_paired_bootstrap():
    _, y, a, b = _data()
    got = pearson_gap(y, a, b, reps=250, seed=4)
    idx = np.random.default_rng(4).integers(0, len(y), (250, len(y)))
    diffs = [np.corrcoef(a[i], y[i])[0, 1] - np.corrcoef(b[i], y[i])[0, 1] for i in idx]
    np.testing.assert_allclose([got["low"], got["high"]], np.percentile(diffs, [2.5, 97.5]))
    assert got["gap"] == pytest.approx(np.corrcoef(a, y)[0, 1] - np.corrcoef(b, y)[0, 1])
    assert got["low"] > 0  # a is the better predictor by construction
    assert describe_gap("ridge", got).startswith("above ridge (+")
    same = pearson_gap(y, a, a + 1e-9 * np.arange(len(a)), reps=100)
    assert describe_gap("itself", same).startswith("level with itself")
    assert describe_gap("x", pearson_gap(y, b, a)).startswith("below x (-")


def _brute_force_auroc_diffs(labels, pairs, reps, seed):
    """Per resample (within each class, the same genes for every pair), the mean over the
    pairs of AUROC(a) - AUROC(b), one sklearn call at a time."""
    pos, neg = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    r = np.random.default_rng(seed)
    ip, ineg = r.choice(pos, (reps, len(pos))), r.choice(neg, (reps, len(neg)))
    diffs = []
    for p_idx, n_idx in zip(ip, ineg):
        i = np.concatenate([p_idx, n_idx])
        lab = labels[i]
        diffs.append(
            np.mean([roc_auc_score(lab, x[i]) - roc_auc_score(lab, z[i]) for x, z in pairs])
        )
    return diffs


def test_auroc_gap_is_the_brute_force_stratified_paired_bootstrap():
    rng, y, a, b = _data(240, 2)
    labels = (y > 0).astype(int)
    got = auroc_gap(labels, a, b, reps=120, seed=7)
    diffs = _brute_force_auroc_diffs(labels, [(a, b)], reps=120, seed=7)
    np.testing.assert_allclose([got["low"], got["high"]], np.percentile(diffs, [2.5, 97.5]))
    assert got["gap"] > 0 and got["low"] < 0 < got["high"]  # 240 genes: within the noise
    assert describe_gap("b", got).startswith("level with b (+")


def test_auroc_gap_of_several_pairs_is_their_mean_over_the_same_resamples():
    rng, y, a, b = _data(240, 3)
    labels = (y > 0).astype(int)
    a2, b2 = a + 0.5 * rng.normal(size=len(a)), b + 0.5 * rng.normal(size=len(b))
    got = auroc_gap(labels, np.stack([a, a2]), np.stack([b, b2]), reps=80, seed=5)
    diffs = _brute_force_auroc_diffs(labels, [(a, b), (a2, b2)], reps=80, seed=5)
    np.testing.assert_allclose([got["low"], got["high"]], np.percentile(diffs, [2.5, 97.5]))
    one, two = auroc_gap(labels, a, b)["gap"], auroc_gap(labels, a2, b2)["gap"]
    assert got["gap"] == pytest.approx((one + two) / 2)
    with pytest.raises(ValueError, match="scores of shape"):
        auroc_gap(labels, np.stack([a, a2]), b)


def test_the_run_report_prints_each_gap_with_its_verdict():
    _, y, a, b = _data()
    test = {"mse": 0.5, "pearson_r": 0.7, "spearman": 0.7, "r2": 0.4, "genes": 300}
    metrics = {
        "task": "reg",
        "test": test,
        "baseline": test,
        "baselines": {"linear": test},
        "baseline_names": {"linear": "ridge regression"},
        "gaps": {"linear": pearson_gap(y, a, b)},
        "gap_metric": "Pearson r",
    }
    text = format_metrics(metrics)
    assert "Pearson r of the model minus each baseline's, same genes (paired bootstrap):" in text
    assert "  above ridge regression (+" in text and "95% bootstrap interval" in text
