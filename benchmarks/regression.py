"""Regression (``--task reg``) of every bin architecture on GM12878 (E116): GC-MERGE's
continuous expression levels of the 11,689 training genes (``expression.tsv``, 21 x 10 kb
bins of the bundled tracks, prepared by ``chromaformer-prepare``), scored on the 2,506
validation genes, which pick nothing (``--keep last``: the schedule's last epoch). Each
row is ``chromaformer-train --model ARCH --task reg --seeds 3`` with the default recipe
beside ridge regression and HistGradientBoostingRegressor fitted on the same training
genes; each seed's gap in Pearson r to each comes with its paired-bootstrap 95% interval.
The last column ranks the validation genes' labels (expression at or above the median)
by the regression's prediction: what the continuous target is worth to the classifier.

    python benchmarks/regression.py --seeds 3
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accuracy_cv import ARCHS, data_root, gap_text, mean_sd
from record import save


def command(arch: str, root: Path, seeds: int, out: Path) -> list[str]:
    cmd = [sys.executable, "-m", "chromaformer.cli", "train", "--model", arch, "--task", "reg"]
    cmd += ["--data-root", str(root), "--cell-types", "E116", "--bin-size", "10000"]
    cmd += ["--seeds", str(seeds), "--keep", "last", "--threads", "1", "--quiet"]
    return cmd + ["--out", str(out)]


def row_tables(arch: str, out: Path, labels: dict[str, int]) -> tuple[dict, list[dict]]:
    import pandas as pd
    from sklearn.metrics import roc_auc_score

    r = json.loads((out / "cv.json").read_text())
    oof = pd.read_csv(out / "oof.tsv", sep="\t")
    s = r["summary"]
    runs = sorted(r["runs"], key=lambda x: x["seed"])
    aurocs = []
    seeds = []
    for run in runs:
        x = oof[oof["seed"] == run["seed"]]
        y = [labels[g] for g in x["gene_id"]]
        aurocs.append(roc_auc_score(y, x["model"]))
        gaps = r["gaps_per_seed"][str(run["seed"])]
        seeds.append(
            {
                "model": arch,
                "seed": run["seed"],
                "Pearson r": f"{run['model']['pearson_r']:.4f}",
                "minus ridge (paired 95% interval)": gap_text(gaps["linear"]),
                "minus HistGB (paired 95% interval)": gap_text(gaps["gradient_boosting"]),
            }
        )
    spread = {
        k: mean_sd([run["model"][k] for run in runs], signed=False)
        for k in ("pearson_r", "spearman")
    }
    summary = {
        "model": arch,
        "Pearson r, mean ± sd over seeds": spread["pearson_r"],
        "Spearman, mean ± sd": spread["spearman"],
        "ridge": f"{s['linear']['pearson_r']['mean']:.4f}",
        "HistGB": f"{s['gradient_boosting']['pearson_r']['mean']:.4f}",
        "seeds above / level / below ridge": _count(r, "linear"),
        "seeds above / level / below HistGB": _count(r, "gradient_boosting"),
        "seeds averaged: Pearson r": f"{r['ensemble']['pearson_r']:.4f}",
        "AUROC of the prediction on the labels": mean_sd(aurocs, signed=False),
    }
    return summary, seeds


def _count(r: dict, key: str) -> str:
    gaps = [g[key] for g in r["gaps_per_seed"].values()]
    above = sum(g["low"] > 0 for g in gaps)
    below = sum(g["high"] < 0 for g in gaps)
    return f"{above} / {len(gaps) - above - below} / {below}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--archs", nargs="+", default=ARCHS, choices=ARCHS)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--data-root", default=None, help="the E116 bin CSVs (default: prepared)")
    ap.add_argument("--dir", default="regression-bench", help="work folder (reruns reuse it)")
    ap.add_argument("--results", default=None, help="folder for the result JSON")
    args = ap.parse_args()
    from chromaformer import read_bins

    work = Path(args.dir)
    root = data_root(work, args.data_root)
    valid = read_bins(root / "E116" / "classification" / "valid.csv")
    labels = dict(zip(valid.gene_ids, (int(v) for v in valid.labels)))
    summary, per_seed = [], []
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for arch in args.archs:
        out = work / f"reg-{arch}"
        if not (out / "cv.json").exists():
            subprocess.run(command(arch, root, args.seeds, out), env=env, check=True)
        row, seeds = row_tables(arch, out, labels)
        summary.append(row)
        per_seed += seeds
    save(
        "accuracy",
        __doc__.split("\n\n    python")[0],
        {"tables": [summary, per_seed]},
        folder=args.results,
        file="regression",
    )


if __name__ == "__main__":
    main()
