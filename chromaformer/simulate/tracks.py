"""Simulated samples as a lab has them: one bigWig per mark per sample, a gene BED and an
expression table per sample, plus the sample sheet that ``workflow/`` reads. Counts sit
in 10 kb bins around each gene's TSS (the shipped ``e116`` model's layout), with the
benchmark marks' roles: H3K4me3 and H3K36me3 rise with expression, H3K27me3 and H3K9me3
fall, H3K4me1 is noise. Seeded; for the workflow's tests, docs and benchmarks."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Union

import numpy as np

from .._util.atomic import atomic_path
from ..layout import BENCHMARK_MARKS

CHROMS = {"chr1": 3_000_000, "chr2": 2_500_000}
BIN = 10_000

# per mark: background mean, the TSS-near effect of expression (+/-) and its reach in bins
_ROLES = {
    "H3K27me3": (20.0, -120.0, 3),
    "H3K36me3": (15.0, 150.0, 6),
    "H3K4me1": (25.0, 0.0, 2),
    "H3K4me3": (10.0, 300.0, 1),
    "H3K9me3": (20.0, -60.0, 4),
}


def simulate_samples(
    folder: Union[str, os.PathLike[str]], samples: int = 3, genes: int = 60, seed: int = 1
) -> Path:
    """Write ``samples`` samples under ``folder``; return the sample sheet's path.

    ``folder/genes.bed`` (BED6), ``folder/<sample>/<mark>.bw`` (every base of a 10 kb
    bin holds the bin's read count, so ``prepare --stat mean`` over a 10 kb bin reads
    counts back), ``folder/<sample>/expression.tsv`` and ``folder/samples.tsv`` (columns
    ``sample``, one per mark, ``expression``; paths relative to ``folder``)."""
    import pyBigWig

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    names = list(CHROMS)
    chrom_of = rng.choice(len(names), genes)
    gene_rows = []
    for i in range(genes):
        c = names[chrom_of[i]]
        tss = int(rng.integers(150_000, CHROMS[c] - 150_000))
        strand = "+" if rng.random() < 0.5 else "-"
        gene_rows.append((f"SIM{i + 1:05d}", c, tss, strand))
    with atomic_path(out / "genes.bed") as tmp, open(tmp, "w") as fh:
        for g, c, t, s in gene_rows:
            fh.write(f"{c}\t{t}\t{t + 1}\t{g}\t0\t{s}\n")
    base = rng.normal(size=genes)  # a gene's expression shared across samples
    sheet = ["\t".join(["sample", *BENCHMARK_MARKS, "expression"])]
    for k in range(samples):
        name = f"sample{k + 1}"
        d = out / name
        d.mkdir(exist_ok=True)
        z = 0.8 * base + 0.6 * rng.normal(size=genes)  # this sample's expression
        for mark in BENCHMARK_MARKS:
            mean, effect, reach = _ROLES[mark]
            with atomic_path(d / f"{mark}.bw") as tmp:
                bw = pyBigWig.open(os.fspath(tmp), "w")
                bw.addHeader(list(CHROMS.items()), maxZooms=0)
                for c, size in CHROMS.items():
                    n = -(-size // BIN)
                    lam = np.full(n, mean)
                    for (_, gc, t, s), zi in zip(gene_rows, z):
                        if gc != c:
                            continue
                        b = t // BIN
                        span = np.arange(b - reach, b + reach + 1)
                        if mark == "H3K36me3":  # the gene body: downstream only
                            span = np.arange(b, b + reach + 1) if s == "+" else span[: reach + 1]
                        span = span[(span >= 0) & (span < n)]
                        lam[span] += effect / (1 + np.exp(-2 * zi)) - min(effect, 0) / 2
                    counts = rng.poisson(np.maximum(lam, 0.5)).astype(np.float64)
                    bw.addEntries(c, 0, values=counts.tolist(), span=BIN, step=BIN)
                bw.close()
        with atomic_path(d / "expression.tsv") as tmp, open(tmp, "w") as fh:
            fh.write("gene\tlog_tpm\n")
            for (g, *_), zi in zip(gene_rows, z):
                fh.write(f"{g}\t{zi:.4f}\n")
        tracks = [f"{name}/{m}.bw" for m in BENCHMARK_MARKS]
        sheet.append("\t".join([name, *tracks, f"{name}/expression.tsv"]))
    with atomic_path(out / "samples.tsv") as tmp:
        Path(tmp).write_text("\n".join(sheet) + "\n")
    return out / "samples.tsv"
