"""Cross-validated accuracy of the bin architectures beside the baselines on GM12878
(E116): the 14,195 train+valid genes of 21 x 10 kb cut into 5 folds (stratified by
label), each fold scored by a model trained on the other four with ``--keep last`` (the
schedule's last epoch: no gene of the scored fold picks anything), and by logistic
regression and gradient boosting fitted on the same four folds. Each row is one recipe
(the default, or the default with one lever changed); the gap to gradient boosting is
pooled over all 14,195 out-of-fold predictions with its paired-bootstrap 95% interval,
for each seed's single model; each seed is a run of its own with its own fold cut
(repeated 5-fold CV), and a row gives the mean ± sd over seeds, and over folds and seeds.
The last table averages the default rows' seeds per gene: what an ensemble of them earns.

    python benchmarks/accuracy_cv.py --archs cnn --levers default "dropout 0.3" --seeds 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from record import save

from chromaformer.metrics import gap_verdict

ARCHS = ["bilstm_attention", "bilstm_transformer", "hybrid", "cnn"]
#: one change to the default recipe each (``chromaformer-train`` options)
LEVERS: dict[str, list[str]] = {
    "default": [],
    # the default on bins in genomic order (strand unknown, as here) is a model that
    # scores the bins as given and reversed alike; this turns it off
    "mirror off": ["--model-config", '{"mirror": false}'],
    # the CNN's geometry: DeepChrome's kernel 10 and pool 5, made for 100 bins (the
    # default below 50 bins is kernel 5, pool 2)
    "mirror off, kernel 10, pool 5": [
        "--model-config",
        '{"mirror": false, "cnn_kernel": 10, "cnn_pool": 5}',
    ],
    # bilstm_attention's default is three towers averaged in one network; this is one
    "1 tower": ["--model-config", '{"towers": 1}'],
    "dropout 0.3": ["--dropout", "0.3"],
    "40 epochs": ["--epochs", "40"],
    "batch 32": ["--batch-size", "32"],
    "lr 1e-3": ["--lr", "1e-3"],
    "weight decay 0.1": ["--weight-decay", "0.1"],
    "ema 0.999": ["--ema", "0.999"],
    "log1p inputs": ["--input-transform", "log1p"],
}


def slug(lever: str) -> str:
    return "".join(c if c.isalnum() or c == "." else "-" for c in lever)


def data_root(work: Path, given: str | None) -> Path:
    if given:
        return Path(given)
    from chromaformer.prepare.real import prepare_e116

    root = work / "e116"
    if not (root / "E116" / "classification" / "valid.csv").exists():
        prepare_e116(root)
    return root


def command(arch: str, lever: str, root: Path, seed: int, out: Path) -> list[str]:
    cmd = [sys.executable, "-m", "chromaformer.cli", "train", "--model", arch]
    cmd += ["--data-root", str(root), "--cell-types", "E116", "--bin-size", "10000"]
    cmd += ["--cv", "5", "--keep", "last", "--seed", str(seed), "--out", str(out)]
    return cmd + ["--threads", "1", "--quiet", *LEVERS[lever]]


def run_all(jobs: list[tuple[list[str], Path]], parallel: int) -> None:
    """Each job's command, ``parallel`` at a time, one thread each; a folder with its
    cv.json is kept (a rerun goes on where it stopped)."""
    todo = [(cmd, out) for cmd, out in jobs if not (out / "cv.json").exists()]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    running: list[tuple[subprocess.Popen, Path, float]] = []
    while todo or running:
        while todo and len(running) < parallel:
            cmd, out = todo.pop(0)
            out.parent.mkdir(parents=True, exist_ok=True)
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)
            running.append((proc, out, time.perf_counter()))
        time.sleep(1)
        for item in list(running):
            proc, out, t0 = item
            if proc.poll() is None:
                continue
            running.remove(item)
            if proc.returncode:
                raise SystemExit(f"{' '.join(proc.args)}: exit {proc.returncode}")
            (out / "seconds").write_text(f"{time.perf_counter() - t0:.1f}\n")


def collect(folders: list[Path]) -> dict:
    """One row: each seed's 5-fold CV (its own fold cut) read back from its cv.json."""
    seeds, per_fold, genes = [], [], 0
    for out in folders:
        r = json.loads((out / "cv.json").read_text())
        genes = genes or sum(row["scored"] for row in r["runs"])
        s = r["summary"]
        seeds.append(
            {
                "seed": r["runs"][0]["seed"],
                "pooled_auroc": s["model"]["pooled_auroc"]["mean"],
                "baselines": {k: s[k]["pooled_auroc"]["mean"] for k in r["baseline_names"]},
                "gaps": r["gaps"],
                "seconds": float((out / "seconds").read_text())
                if (out / "seconds").exists()
                else None,
            }
        )
        for row in r["runs"]:
            per_fold.append(
                row["model"]["pooled"]["auroc"]
                - row["baselines"]["gradient_boosting"]["pooled"]["auroc"]
            )
    return {
        "single_model_mean_gaps": mean_gaps(folders),
        "genes": genes,
        "seeds": seeds,
        "fold_gaps_to_gradient_boosting": per_fold,
    }


def mean_gaps(folders: list[Path]) -> dict[str, dict[str, float]]:
    """Each baseline's gap to the single model, the mean over the seeds (each seed's
    model beside the baselines of its own folds), with the paired bootstrap interval of
    that mean: the same resampled genes for every seed."""
    from chromaformer.metrics import auroc_gap

    y, tables = oof_tables(folders)
    model = [t["model"].to_numpy() for t in tables]
    return {
        name: auroc_gap(y, model, [t[name].to_numpy() for t in tables])
        for name in ("linear", "gradient_boosting")
    }


def oof_tables(folders: list[Path]) -> tuple[Any, list[Any]]:
    """The labels and each run's oof.tsv, its genes in the order of the first run's."""
    import pandas as pd

    tables = [pd.read_csv(out / "oof.tsv", sep="\t").set_index("gene_id") for out in folders]
    tables = [t.loc[tables[0].index] for t in tables]
    return tables[0]["observed"].to_numpy(), tables


def ensembles(plan: list[tuple[str, str, list[Path]]]) -> list[dict]:
    """The default rows' seeds averaged per gene (each gene's out-of-fold probabilities
    from models that never saw it), per architecture and, with several, all together:
    what an ensemble of those runs earns, beside each seed's HistGB."""
    import numpy as np
    from sklearn.metrics import roc_auc_score

    from chromaformer.metrics import auroc_gap

    groups = {arch: fs for arch, lever, fs in plan if lever == "default" and len(fs) > 1}
    if len(groups) > 1:
        groups[" + ".join(groups)] = [f for fs in list(groups.values()) for f in fs]
    out = []
    for name, folders in groups.items():
        y, tables = oof_tables(folders)
        mean = np.mean([t["model"].to_numpy() for t in tables], axis=0)
        gb = [t["gradient_boosting"].to_numpy() for t in tables]
        gap = auroc_gap(y, np.stack([mean] * len(gb)), np.stack(gb))
        out.append(
            {
                "seeds averaged per gene": f"{name} (default, {len(folders)} runs)",
                "pooled out-of-fold AUROC": f"{roc_auc_score(y, mean):.4f}",
                "minus each seed's HistGB, mean (paired 95% interval)": gap_text(gap),
            }
        )
    return out


def mean_sd(values: list[float], signed: bool = True) -> str:
    """``+0.0062 ± 0.0024 (n=15)`` (``signed``: a gap), or ``0.9232 ± 0.0001 (n=3)``."""
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    sign = "+" if signed else ""
    return f"{statistics.mean(values):{sign}.4f} ± {sd:.4f} (n={len(values)})"


def gap_text(g: dict[str, float]) -> str:
    return f"{g['gap']:+.4f} ({g['low']:+.4f} to {g['high']:+.4f}) {gap_verdict(g)}"


def tables(rows: list[dict]) -> list[list[dict]]:
    summary, per_seed = [], []
    for r in rows:
        seeds = r["seeds"]
        single = [sd["gaps"]["gradient_boosting"] for sd in seeds]
        above = sum(g["low"] > 0 for g in single)
        below = sum(g["high"] < 0 for g in single)
        aurocs = [sd["pooled_auroc"] for sd in seeds]
        lr, gb = ([sd["baselines"][k] for sd in seeds] for k in ("linear", "gradient_boosting"))
        summary.append(
            {
                "model": r["model"],
                "recipe": r["lever"],
                "pooled out-of-fold AUROC, mean ± sd over seeds": mean_sd(aurocs, signed=False),
                "logistic regression": f"{statistics.mean(lr):.4f}",
                "HistGB": f"{statistics.mean(gb):.4f}",
                "minus HistGB, pooled, mean ± sd over seeds": mean_sd([g["gap"] for g in single]),
                "the mean over seeds minus HistGB (paired 95% interval)": gap_text(
                    r["single_model_mean_gaps"]["gradient_boosting"]
                ),
                "minus HistGB per fold, mean ± sd over folds and seeds": mean_sd(
                    r["fold_gaps_to_gradient_boosting"]
                ),
                "seeds above / level / below HistGB": (
                    f"{above} / {len(single) - above - below} / {below}"
                ),
            }
        )
        for sd in seeds:
            per_seed.append(
                {
                    "model": r["model"],
                    "recipe": r["lever"],
                    "seed (its own fold cut)": sd["seed"],
                    "pooled out-of-fold AUROC": f"{sd['pooled_auroc']:.4f}",
                    "HistGB": f"{sd['baselines']['gradient_boosting']:.4f}",
                    "minus HistGB (paired 95% interval)": gap_text(sd["gaps"]["gradient_boosting"]),
                    "minus logistic regression": gap_text(sd["gaps"]["linear"]),
                    "minutes (1 thread)": (
                        f"{sd['seconds'] / 60:.0f}" if sd["seconds"] is not None else "-"
                    ),
                }
            )
    return [summary, per_seed]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--archs", nargs="+", default=ARCHS, choices=ARCHS)
    ap.add_argument("--levers", nargs="+", default=["default"], choices=list(LEVERS))
    ap.add_argument("--seeds", type=int, default=3, help="seeds 1..N, each its own fold cut")
    ap.add_argument("--jobs", type=int, default=2, help="runs at a time (one thread each)")
    ap.add_argument("--data-root", default=None, help="the E116 bin CSVs (default: prepared)")
    ap.add_argument("--dir", default="accuracy-cv-bench", help="work folder (reruns reuse it)")
    ap.add_argument("--results", default=None, help="folder for the result JSON")
    ap.add_argument("--file", default="accuracy-cv", help="the result file's name (no .json)")
    args = ap.parse_args()
    seeds = list(range(1, args.seeds + 1))
    work = Path(args.dir)
    root = data_root(work, args.data_root)
    plan = [
        (arch, lever, [work / "runs" / arch / slug(lever) / f"seed{s}" for s in seeds])
        for arch in args.archs
        for lever in args.levers
    ]
    run_all(
        [
            (command(arch, lever, root, s, out), out)
            for arch, lever, folders in plan
            for s, out in zip(seeds, folders)
        ],
        args.jobs,
    )
    rows = []
    for arch, lever, folders in plan:
        rows.append({"model": arch, "lever": lever, **collect(folders)})
        print(json.dumps(rows[-1]), file=sys.stderr)
    save(
        "accuracy",
        __doc__.split("\n\n    python")[0],
        {"cv": rows, "tables": [*tables(rows), *filter(None, [ensembles(plan)])]},
        folder=args.results,
        file=args.file,
    )


if __name__ == "__main__":
    main()
