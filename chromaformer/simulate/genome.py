"""Simulated genomes in the benchmark format, with the biology that makes the task learnable.

Each gene has a latent expression level ``z``; its label is ``z >= median`` (as the
benchmark labels genes by median expression). The marks see a noisy copy of ``z``
(so the label cannot be read off perfectly) through position-dependent profiles over
TSS +- 5 kb, fitted by eye to the real ``deepdiff_sample`` cells:

- H3K4me3: a sharp peak just downstream of the TSS, far higher in expressed genes.
- H3K36me3: rises over the gene body downstream of the TSS in expressed genes.
- H3K4me1: broad, flanking the TSS, modestly higher in expressed genes.
- H3K27me3: broad Polycomb repression, higher in silent genes.
- H3K9me3: low heterochromatin background, slightly higher in silent genes.

Counts are gamma-Poisson (negative binomial) around these means, times a per-gene
depth factor, with rare 5x spikes: mostly 0-20 with a heavy tail, as in the real data.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from .._util.system import PathLike
from ..formats.bincsv import Bins, write_bins
from ..layout import BENCHMARK_BINS, BENCHMARK_MARKS, BIN_SIZE


def _profiles(t: np.ndarray, a: np.ndarray, shift: np.ndarray) -> list[np.ndarray]:
    """Mean count per (gene, bin) for each benchmark mark.

    t: (bins,) bin centre relative to the TSS in kb; a: (genes, 1) observed activity;
    shift: (genes, 1) per-gene jitter of the TSS peak in kb.
    """
    tt = t[None, :] - shift  # (genes, bins)
    peak = np.exp(-0.5 * (tt - 0.3) ** 2 / 0.6**2)
    body = 1.0 / (1.0 + np.exp(-(tt - 0.8) / 0.7))
    flank = np.exp(-0.5 * (np.abs(tt) - 1.8) ** 2 / 1.2**2)
    k27 = np.exp(0.45 - 0.65 * a) * (0.8 + 0.4 * np.exp(-0.5 * tt**2 / 2.0**2))
    k36 = 0.7 + np.exp(0.5 + 0.75 * a) * body
    k4me1 = 1.2 + np.exp(0.9 + 0.35 * a) * flank
    k4me3 = 1.0 + np.exp(2.0 + 0.95 * a) * peak
    k9 = np.exp(0.25 - 0.15 * a) * np.ones_like(tt)
    return [k27, k36, k4me1, k4me3, k9]


def simulate_genome(
    genes: int = 20000,
    *,
    bins: int = BENCHMARK_BINS,
    marks: Sequence[str] = BENCHMARK_MARKS,
    seed: int = 1,
    id_style: str = "ensembl",
    noise: float = 0.8,
    bin_size: int = BIN_SIZE,
) -> Bins:
    """Simulate ``genes`` genes of ``bins`` bins for ``marks``; returns :class:`Bins`.

    Marks named like the benchmark's get that mark's biology; other names cycle through
    the five profiles. ``noise`` is the standard deviation of what the marks see of the
    latent expression (0 = perfectly readable labels). ``id_style`` is ``ensembl``
    (``ENSG00000123456``) or ``numeric`` (zero-padded, ``000123``).
    """
    if genes < 1 or bins < 1 or not marks:
        raise ValueError("genes, bins and marks must be positive")
    if id_style not in ("ensembl", "numeric"):
        raise ValueError(f"id_style must be 'ensembl' or 'numeric', got {id_style!r}")
    rng = np.random.default_rng(seed)
    z = rng.standard_normal(genes)
    labels = (z >= np.median(z)).astype(np.uint8)
    # Marks saturate: the activity they see is clipped to +-2.5 standard deviations.
    a = np.clip(z + noise * rng.standard_normal(genes), -2.5, 2.5)[:, None]
    shift = rng.normal(0.0, 0.25, size=(genes, 1))
    t = ((np.arange(bins) + 0.5) - bins / 2) * bin_size / 1000.0
    profiles = _profiles(t, a, shift)
    depth = rng.lognormal(0.0, 0.3, size=(genes, 1))

    counts = np.empty((genes, bins, len(marks)), dtype=np.float32)
    for m, name in enumerate(marks):
        idx = BENCHMARK_MARKS.index(name) if name in BENCHMARK_MARKS else m % len(profiles)
        mean = profiles[idx] * depth * rng.lognormal(0.0, 0.3, size=(genes, 1))
        lam = mean * rng.gamma(2.0, 0.5, size=mean.shape)
        lam *= np.where(rng.random(mean.shape) < 0.002, 5.0, 1.0)
        counts[:, :, m] = rng.poisson(lam)

    if id_style == "ensembl":
        nums = rng.choice(np.arange(100_000, 100_000 + 10 * genes), size=genes, replace=False)
        nums.sort()
        ids = [f"ENSG{n:011d}" for n in nums]
    else:
        ids = [f"{i + 1:06d}" for i in range(genes)]
    return Bins(counts, labels, np.array(ids, dtype=str), tuple(marks), "")


def write_simulated(
    path: PathLike,
    genes: int = 20000,
    *,
    compress: Optional[bool] = None,
    **kwargs,
) -> Bins:
    """Simulate a genome (see :func:`simulate_genome`) and write it atomically."""
    sim = simulate_genome(genes, **kwargs)
    write_bins(
        path,
        sim.counts,
        sim.labels,
        sim.gene_ids,
        compress=compress,
        bin_size=kwargs.get("bin_size", BIN_SIZE),
        marks=sim.marks,
        record={"source": "chromaformer simulate"},
    )
    return sim
