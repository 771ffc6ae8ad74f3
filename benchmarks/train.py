"""Training speed: chromaformer's loop (contiguous tensors on the device, index-slice
batches) against the reference implementation's approach (Python csv reader, per-gene
Python lists of tensors, a DataLoader collating them), in one run, same model and batch.

    python benchmarks/train.py [--genes 6601] [--epoch-genes 1000] [--models hybrid cnn]
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import chromaformer as cf
from chromaformer.models import ModelConfig, build_model


def reference_load(path: Path, bins: int = 100) -> list[dict]:
    """AttentiveChrome's loadData: csv rows into per-gene tensors filled element-wise."""
    with open(path) as fh:
        data = list(csv.reader(fh))
    n_marks = len(data[0]) - 3
    genes = []
    for i in range(0, len(data), bins):
        hm = torch.zeros(bins, n_marks)
        for j in range(bins):
            for k in range(n_marks):
                hm[j][k] = int(data[i + j][k + 2])
        genes.append({"geneID": data[i][0], "input": hm, "label": int(data[i][-1])})
    return genes


def step(model, opt, x, y):
    loss = F.binary_cross_entropy_with_logits(model(x)["logit"], y)
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()


def epoch_ours(model, opt, x, y, bs, seed=0):
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    for i in range(0, len(x), bs):
        idx = perm[i : i + bs]
        step(model, opt, x[idx], y[idx])


def epoch_reference(model, opt, genes, bs):
    loader = torch.utils.data.DataLoader(genes, batch_size=bs, shuffle=True)
    for batch in loader:
        step(model, opt, batch["input"], batch["label"].float())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument(
        "--genes", type=int, default=6601, help="genes in the split file (benchmark: 6601)"
    )
    ap.add_argument("--epoch-genes", type=int, default=1000, help="genes per timed epoch")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument(
        "--models", nargs="+", default=["bilstm_attention", "bilstm_transformer", "hybrid", "cnn"]
    )
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="cf-train-bench-"))
    path = tmp / "train.csv"
    cf.write_simulated(path, args.genes, seed=1)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.genes} genes "
        f"({path.stat().st_size / 1e6:.0f} MB); batch {args.batch_size}"
    )

    t0 = time.perf_counter()
    ours = cf.read_bins(path)
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref = reference_load(path)
    t_ref = time.perf_counter() - t0
    assert np.array_equal(np.stack([g["input"].numpy() for g in ref]), ours.counts)
    print("\ndata loading (same tensors)")
    print("| method | seconds | ratio |\n|---|---:|---:|")
    print(f"| chromaformer.read_bins | {t_ours:.3f} | 1.0x |")
    print(
        f"| reference (csv module + per-element loops) | {t_ref:.2f} | "
        f"{t_ref / t_ours:,.0f}x slower |"
    )

    n = args.epoch_genes
    x = torch.from_numpy(ours.counts[:n])
    y = torch.from_numpy(ours.labels[:n].astype(np.float32))
    print(f"\nepoch time on {n} genes (CPU; seconds per epoch scaled to {args.genes} genes)")
    print("| model | chromaformer loop (s) | reference loop (s) | ratio | genes/s (ours) |")
    print("|---|---:|---:|---:|---:|")
    for arch in args.models:
        times = {}
        for name in ("ours", "reference"):
            torch.manual_seed(0)
            model = build_model(ModelConfig(arch=arch))
            opt = torch.optim.Adam(model.parameters(), lr=2e-4)
            t0 = time.perf_counter()
            if name == "ours":
                epoch_ours(model, opt, x, y, args.batch_size)
            else:
                epoch_reference(model, opt, ref[:n], args.batch_size)
            times[name] = (time.perf_counter() - t0) * args.genes / n
        print(
            f"| {arch} | {times['ours']:.1f} | {times['reference']:.1f} | "
            f"{times['reference'] / times['ours']:.2f}x | {args.genes / times['ours']:,.0f} |"
        )


if __name__ == "__main__":
    main()
