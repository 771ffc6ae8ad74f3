"""Simulated genomes: exact format, seeded, realistic and learnable but not trivial."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

import chromaformer as cf


def test_seeded_and_shaped():
    a = cf.simulate_genome(300, seed=5)
    b = cf.simulate_genome(300, seed=5)
    c = cf.simulate_genome(300, seed=6)
    np.testing.assert_array_equal(a.counts, b.counts)
    assert not np.array_equal(a.counts, c.counts)
    assert a.counts.shape == (300, 100, 5) and a.marks == cf.BENCHMARK_MARKS
    assert len(set(a.gene_ids)) == 300 and a.gene_ids[0].startswith("ENSG")
    assert np.all(a.counts == np.round(a.counts)) and a.counts.min() >= 0
    assert a.labels.mean() == 0.5


def test_counts_look_like_the_real_samples():
    sim = cf.simulate_genome(4000, seed=1)
    real = cf.read_bins(cf.data.PACKAGE_DATA / "deepdiff_sample/Cell1/classification/train.csv")
    for m in range(5):
        s, r = sim.counts[..., m], real.counts[..., m]
        assert 0.15 < (s == 0).mean() < 0.5 and 0.15 < (r == 0).mean() < 0.5
        assert np.median(s) <= 2 and np.percentile(s, 90) < 30
    # heavy tail: a few bins far above the bulk
    assert sim.counts.max() > 20 * np.percentile(sim.counts, 90)


def test_biology_of_expressed_and_silent_genes():
    sim = cf.simulate_genome(4000, seed=2)
    on, off = sim.counts[sim.labels == 1], sim.counts[sim.labels == 0]
    k27, k36, _, k4me3, k9 = range(5)
    tss, down = slice(45, 55), slice(60, 100)
    assert on[:, tss, k4me3].mean() > 2.5 * off[:, tss, k4me3].mean()
    assert on[:, tss, k4me3].mean() > 3 * on[:, :20, k4me3].mean()  # a peak, not a plateau
    assert on[:, down, k36].mean() > 1.5 * off[:, down, k36].mean()
    assert on[:, down, k36].mean() > 1.5 * on[:, :20, k36].mean()  # downstream gene body
    assert off[..., k27].mean() > 1.5 * on[..., k27].mean()
    assert off[..., k9].mean() > on[..., k9].mean()


def test_learnable_but_not_trivial():
    sim = cf.simulate_genome(4000, seed=3)
    x = np.log1p(sim.counts).reshape(len(sim.counts), -1)
    model = LogisticRegression(max_iter=2000).fit(x[:3000], sim.labels[:3000])
    auc = roc_auc_score(sim.labels[3000:], model.predict_proba(x[3000:])[:, 1])
    assert 0.75 < auc < 0.95
    easy = cf.simulate_genome(4000, seed=3, noise=0.0)
    x = np.log1p(easy.counts).reshape(len(easy.counts), -1)
    model = LogisticRegression(max_iter=2000).fit(x[:3000], easy.labels[:3000])
    assert roc_auc_score(easy.labels[3000:], model.predict_proba(x[3000:])[:, 1]) > auc


def test_other_marks_bins_and_numeric_ids():
    sim = cf.simulate_genome(10, bins=40, marks=("H3K4me3", "H3K27ac"), id_style="numeric")
    assert sim.counts.shape == (10, 40, 2) and list(sim.gene_ids[:2]) == ["000001", "000002"]


def test_the_layout_record_says_the_bins_simulated(tmp_path):
    """A genome simulated with 21 bins of 10 kb is recorded as such, so training reads
    its bin size from the record rather than taking the benchmark's 100 bp."""
    from chromaformer.formats.sidecars import read_layout_record

    cf.write_simulated(tmp_path / "wide.csv", 5, bins=21, bin_size=10_000)
    record = read_layout_record(tmp_path / "wide.csv")
    assert (record["bins"], record["bin_size"], record["window"]) == (21, 10_000, 105_000)
    cf.write_simulated(tmp_path / "default.csv", 5)
    assert read_layout_record(tmp_path / "default.csv")["bin_size"] == 100
