"""Cross-validated accuracy of the bin architectures beside the baselines on GM12878
(E116): the 14,195 train+valid genes of 21 x 10 kb cut into 5 folds (stratified by
label), each fold scored by a model trained on the other four with ``--keep last`` (the
schedule's last epoch: no gene of the scored fold picks anything), and by logistic
regression and gradient boosting fitted on the same four folds. Each row is one recipe
(the default, or the default with one lever changed); the gap to gradient boosting is
pooled over all 14,195 out-of-fold predictions with its paired-bootstrap 95% interval,
for each seed's single model and for the seeds averaged per gene.

    python benchmarks/accuracy_cv.py --archs cnn --levers default "dropout 0.3" --seeds 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from record import save

from chromaformer.metrics import gap_verdict

ARCHS = ["bilstm_attention", "bilstm_transformer", "hybrid", "cnn"]
#: one change to the default recipe each (``chromaformer-train`` options)
LEVERS: dict[str, list[str]] = {
    "default": [],
    "dropout 0.3": ["--dropout", "0.3"],
    "40 epochs": ["--epochs", "40"],
    "lr 1e-3": ["--lr", "1e-3"],
    "weight decay 0.1": ["--weight-decay", "0.1"],
    "ema 0.999": ["--ema", "0.999"],
    "log1p inputs": ["--input-transform", "log1p"],
    # the CNN's geometry: DeepChrome's kernel 10 and pool 5 were made for 100 bins
    "kernel 5, pool 2": ["--model-config", '{"cnn_kernel": 5, "cnn_pool": 2}'],
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


def run(arch: str, lever: str, root: Path, seeds: int, out: Path) -> dict:
    if not (out / "cv.json").exists():  # a rerun keeps finished runs
        cmd = [sys.executable, "-m", "chromaformer.cli", "train", "--model", arch]
        cmd += ["--data-root", str(root), "--cell-types", "E116", "--bin-size", "10000"]
        cmd += ["--cv", "5", "--keep", "last", "--seeds", str(seeds), "--out", str(out)]
        cmd += ["--quiet", *LEVERS[lever]]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        (out / "seconds").write_text(f"{time.perf_counter() - t0:.1f}\n")
    r = json.loads((out / "cv.json").read_text())
    s = r["summary"]
    # one seed: the report's gap is that seed's own
    per_seed = r.get("gaps_per_seed") or {str(r["runs"][0]["seed"]): r["gaps"]}
    return {
        "seeds": r["seeds"],
        "genes": sum(row["scored"] for row in r["runs"] if row["seed"] == r["runs"][0]["seed"]),
        "pooled_auroc": s["model"]["pooled_auroc"],
        "seeds_averaged": s["model"].get("pooled_auroc_seeds_averaged"),
        "baselines": {k: s[k]["pooled_auroc"]["mean"] for k in r["baseline_names"]},
        "gaps_per_seed": per_seed,
        "gaps_seeds_averaged": r["gaps"],
        "seconds": float((out / "seconds").read_text()) if (out / "seconds").exists() else None,
    }


def _gap(g: dict[str, float]) -> str:
    return f"{g['gap']:+.4f} ({g['low']:+.4f} to {g['high']:+.4f}) {gap_verdict(g)}"


def tables(rows: list[dict]) -> list[list[dict]]:
    out = []
    for r in rows:
        p = r["pooled_auroc"]
        single = [g["gradient_boosting"] for g in r["gaps_per_seed"].values()]
        above = sum(g["low"] > 0 for g in single)
        below = sum(g["high"] < 0 for g in single)
        out.append(
            {
                "model": r["model"],
                "recipe": r["lever"],
                "pooled out-of-fold AUROC, mean ± sd over seeds": f"{p['mean']:.4f} ± "
                f"{p['sd']:.4f} (n={p['n']})",
                "logistic regression": f"{r['baselines']['linear']:.4f}",
                "HistGB": f"{r['baselines']['gradient_boosting']:.4f}",
                "single model minus HistGB (one seed: its 95% interval; else the mean)": (
                    _gap(single[0])
                    if len(single) == 1
                    else f"{statistics.mean(g['gap'] for g in single):+.4f}"
                ),
                "seeds above / level / below HistGB": (
                    f"{above} / {len(single) - above - below} / {below}"
                ),
                "seeds averaged: AUROC, minus HistGB (95% interval)": (
                    f"{r['seeds_averaged']:.4f}, "
                    + _gap(r["gaps_seeds_averaged"]["gradient_boosting"])
                    if r["seeds_averaged"] is not None
                    else "-"
                ),
            }
        )
    return [out]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--archs", nargs="+", default=ARCHS, choices=ARCHS)
    ap.add_argument("--levers", nargs="+", default=["default"], choices=list(LEVERS))
    ap.add_argument("--seeds", type=int, default=3, help="seeds per fold, from 1")
    ap.add_argument("--data-root", default=None, help="the E116 bin CSVs (default: prepared)")
    ap.add_argument("--dir", default="accuracy-cv-bench", help="work folder (reruns reuse it)")
    ap.add_argument("--results", default=None, help="folder for the result JSON")
    ap.add_argument("--file", default="accuracy-cv", help="the result file's name (no .json)")
    args = ap.parse_args()
    work = Path(args.dir)
    root = data_root(work, args.data_root)
    rows = []
    for arch in args.archs:
        for lever in args.levers:
            folder = work / "runs" / arch / slug(lever)
            result = run(arch, lever, root, args.seeds, folder)
            rows.append({"model": arch, "lever": lever, **result})
            print(json.dumps(rows[-1]), file=sys.stderr)
    save(
        "accuracy",
        __doc__.split("\n\n    python")[0],
        {"cv": rows, "tables": tables(rows)},
        folder=args.results,
        file=args.file,
    )


if __name__ == "__main__":
    main()
