"""Accuracy of every bin architecture beside the baselines, seed by seed, on the real data
at hand: GM12878 (E116, the bundled tracks prepared into 11,689 training and 2,506
validation genes of 21 x 10 kb; the validation genes also pick each run's epoch, as
GC-MERGE's test labels are held out) and the two deepdiff cells (200 training, 200
validation and 200 test genes of 100 x 100 bp, scored on the test genes).

Each run is ``chromaformer-train --model ARCH --seed S`` with the default recipe
(nothing tuned per set); logistic regression and gradient boosting are fitted on the
same training genes, and the gap to each comes with its paired-bootstrap 95% interval.

    python benchmarks/accuracy.py                                   # the whole grid
    python benchmarks/accuracy.py --sets deepdiff-Cell1 --archs cnn --seeds 1
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from record import save

ARCHS = ["bilstm_attention", "bilstm_transformer", "hybrid", "cnn"]
SETS = ["e116", "deepdiff-Cell1", "deepdiff-Cell2"]


def data_root(name: str, work: Path) -> tuple[Path, str]:
    from chromaformer.data import PACKAGE_DATA
    from chromaformer.prepare.real import prepare_e116

    if name == "e116":
        root = work / "e116"
        if not (root / "E116" / "classification" / "valid.csv").exists():
            prepare_e116(root)
        return root, "E116"
    cell = name.split("-", 1)[1]
    return PACKAGE_DATA / "deepdiff_sample", cell


def run(arch: str, root: Path, cell: str, seed: int, out: Path) -> dict:
    if not (out / "metrics.json").exists():  # a rerun keeps finished runs
        cmd = [sys.executable, "-m", "chromaformer.cli", "train", "--model", arch]
        cmd += ["--data-root", str(root), "--cell-types", cell, "--seed", str(seed)]
        cmd += ["--out", str(out), "--quiet"]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        (out / "seconds").write_text(f"{time.perf_counter() - t0:.1f}\n")
    m = json.loads((out / "metrics.json").read_text())
    split = "test"  # the evaluation split's metrics, whichever split it was
    return {
        "seed": seed,
        "evaluated_on": m["evaluated_on"],
        "genes": m["genes"],
        "auroc": m[split]["mean_auroc"],
        "aupr": m[split]["mean_aupr"],
        "baselines": {k: v["mean_auroc"] for k, v in m["baselines"].items()},
        "gaps": m["gaps"],
        "best_epoch": m["best_epoch"],
        "epochs_run": m["epochs_run"],
        "seconds": float((out / "seconds").read_text()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sets", nargs="+", default=SETS, choices=SETS)
    ap.add_argument("--archs", nargs="+", default=ARCHS, choices=ARCHS)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--dir", default="accuracy-bench", help="work folder (reruns reuse its runs)")
    ap.add_argument("--results", default=None, help="folder for the result JSON")
    ap.add_argument("--file", default="accuracy", help="the result file's name (no .json)")
    args = ap.parse_args()
    work = Path(args.dir)
    rows = []
    for name in args.sets:
        root, cell = data_root(name, work)
        for arch in args.archs:
            for seed in args.seeds:
                r = run(arch, root, cell, seed, work / "runs" / name / arch / f"seed{seed}")
                rows.append({"set": name, "model": arch, **r})
                print(json.dumps(rows[-1]), file=sys.stderr)
    save(
        "accuracy",
        __doc__.split("\n\n    python")[0],
        {"runs": rows},
        folder=args.results,
        file=args.file,
    )


if __name__ == "__main__":
    main()
