"""A simulated data set in Chromoformer's reference layout (genes, pCREs, scores), seeded.

Each gene has a latent expression level. Its promoter carries H3K4me3, H3K27ac and
H3K9ac at the TSS and H3K36me3 downstream when expressed, H3K27me3 when silent; its
interacting regions carry enhancer marks (H3K27ac, H3K4me1) that also follow the
latent level, more strongly for higher contact scores, so the 3D part carries signal of
its own. Per-base depth is Poisson around smooth 100-bp profiles, stored as float16
``(7, L)`` arrays exactly as the reference's ``npy`` files.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import numpy as np

from .._util.atomic import atomic_path
from ..layout import (
    CHROMOFORMER_HALF_WINDOW,
    CHROMOFORMER_I_MAX,
    CHROMOFORMER_MARKS,
    assign_folds,
    promoter_region,
    region_name,
)

_M = {m: i for i, m in enumerate(CHROMOFORMER_MARKS)}


def _profile(rng: np.random.Generator, bins: int, strand: str, z: float) -> np.ndarray:
    """(7, bins) mean depth of a promoter at 100 bp, TSS at bin bins // 2 (genome order)."""
    x = np.arange(bins) - bins // 2
    down = x if strand == "+" else -x  # bins downstream of the TSS are > 0
    on = 1 / (1 + np.exp(-(z + rng.normal(0, 0.9))))
    prof = np.full((7, bins), 0.3) + rng.gamma(2.0, 0.1, (7, bins))
    peak = np.exp(-0.5 * (down - 2) ** 2 / 6.0**2)
    prof[_M["H3K4me3"]] += 12 * on * peak
    prof[_M["H3K27ac"]] += 8 * on * peak
    prof[_M["H3K9ac"]] += 6 * on * peak
    prof[_M["H3K4me1"]] += 3 * np.exp(-0.5 * (np.abs(down) - 15) ** 2 / 8.0**2)
    prof[_M["H3K36me3"]] += 4 * on * (down > 5) * np.minimum(1, down / 80)
    prof[_M["H3K27me3"]] += 5 * (1 - on) * np.exp(-0.5 * down**2 / 60.0**2)
    prof[_M["H3K9me3"]] += 0.5 * rng.random()
    return prof


def _depth(rng: np.random.Generator, prof: np.ndarray, length: int) -> np.ndarray:
    per_base = np.repeat(prof, 100, axis=1)[:, :length]
    return rng.poisson(per_base).astype(np.float16)


def simulate_chromoformer(
    out_dir: str,
    genes: int = 200,
    *,
    seed: int = 1,
    layout_seed: Optional[int] = None,
    chromosomes: int = 4,
    noise: float = 0.8,
):
    """Write ``out_dir/meta.csv`` and ``out_dir/npy/*.npy``; returns the meta table.

    ``layout_seed`` fixes the genes, their positions, regions, contact scores and a
    shared expression level; ``seed`` the cell: its expression departs from the shared
    level and its reads are drawn anew. Two cells of one layout suit the diff task.
    """
    import pandas as pd

    lay = np.random.default_rng(seed if layout_seed is None else layout_seed)
    rng = np.random.default_rng([seed, 7])
    out = Path(out_dir)
    npy = out / "npy"
    npy.mkdir(parents=True, exist_ok=True)
    half = CHROMOFORMER_HALF_WINDOW
    z = lay.normal(0, 1, genes)
    if layout_seed is not None:
        z = z + rng.normal(0, 0.6, genes)
    expression = np.round(np.exp(1.6 * z + 1.0), 3)
    rows = []
    for g in range(genes):
        chrom = f"chr{1 + g % chromosomes}"
        tss = 1_000_000 + (g // chromosomes) * 1_000_000 + int(lay.integers(0, 1000))
        strand = "+" if lay.random() < 0.5 else "-"
        zg = z[g] + rng.normal(0, noise)
        np.save(
            npy / f"{promoter_region(chrom, tss)}.npy",
            _depth(rng, _profile(rng, 2 * half // 100, strand, zg), 2 * half),
        )
        n = int(min(CHROMOFORMER_I_MAX, lay.poisson(3.0)))
        scores = np.sort(np.round(1.5 + lay.exponential(0.5, n), 4))[::-1]
        regions = []
        for k in range(n):
            length = int(lay.integers(1500, 15000))
            start = tss + int(lay.choice([-1, 1])) * int(lay.integers(60_000, 400_000))
            name = region_name(chrom, start, start + length)
            on = 1 / (1 + np.exp(-(zg + rng.normal(0, 0.5))))
            bins = -(-length // 100)
            prof = 0.3 + rng.gamma(2.0, 0.1, (7, bins))
            w = (scores[k] - 1.0) * on
            prof[_M["H3K27ac"]] += 6 * w
            prof[_M["H3K4me1"]] += 4 * w
            prof[_M["H3K27me3"]] += 2 * (1 - on)
            np.save(npy / f"{name}.npy", _depth(rng, prof, length))
            regions.append(name)
        gene_id = f"ENSGSIM{g:07d}"
        rows.append(
            {
                "gene_id": gene_id,
                "expression": expression[g],
                "chrom": chrom,
                "start": tss,
                "end": tss + 1,
                "strand": strand,
                "neighbors": ";".join(regions) or np.nan,
                "scores": ";".join(f"{s:g}" for s in scores) or np.nan,
            }
        )
    meta = pd.DataFrame(rows)
    meta.insert(2, "label", (meta.expression >= meta.expression.median()).astype(int))
    folds = assign_folds(meta.chrom)
    meta.insert(7, "split", [folds[c] for c in meta.chrom])
    with atomic_path(out / "meta.csv") as tmp:
        meta.to_csv(tmp, index=False)
    return meta


def npy_bytes(out_dir: str) -> int:
    return sum(e.stat().st_size for e in os.scandir(Path(out_dir) / "npy"))
