"""Scoring a collection of files: ``chromaformer score FILES --jobs N`` (N worker
processes, one onnxruntime session each, the cores shared out) against one process that
scores them in turn with every core (``--jobs 1``), in one run, on the same files and
model. Outputs are checked to hold the same genes in the same order and probabilities
within 1e-5 (the table says whether the bytes are the same).

    python benchmarks/score_many.py                       # 8 files of 5,000 genes
    python benchmarks/score_many.py --files 8 --genes 20000 --jobs 1 2 4 8
"""

from __future__ import annotations

import argparse
import filecmp
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np
from record import save

from chromaformer._util.system import cores


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--files", type=int, default=8)
    ap.add_argument("--genes", type=int, default=5000)
    ap.add_argument("--model", default="e116", help="an .onnx or a shipped model's name")
    ap.add_argument("--jobs", type=int, nargs="+", default=None, help="default: 1, 2, 4 ... cores")
    ap.add_argument("--dir", default=None, help="work folder (default: a temp dir)")
    ap.add_argument("--results", default=None, help="folder for the result JSON")
    args = ap.parse_args()
    n = cores()
    jobs = args.jobs or sorted({1, *(j for j in (2, 4, 8, 16, 32) if j <= n), n})
    work = Path(args.dir or tempfile.mkdtemp(prefix="cf-many-"))
    files = []
    for i in range(args.files):
        f = work / f"sample{i + 1}.csv.gz"
        if not f.exists():
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "chromaformer.cli",
                    "simulate",
                    "-o",
                    str(f),
                    "--genes",
                    str(args.genes),
                    "--bins",
                    "21",
                    "--bin-size",
                    "10000",
                    "--seed",
                    str(i + 1),
                    "-q",
                ],
                check=True,
            )
        files.append(str(f))
    print(f"{args.files} files x {args.genes:,} genes, model {args.model}, {n} cores")
    print("| --jobs | seconds | genes/s | vs --jobs 1 | outputs vs --jobs 1 |")
    print("|---:|---:|---:|---:|---|")
    base = None
    table = []
    for j in jobs:
        out = work / f"out-j{j}"
        cmd = [sys.executable, "-m", "chromaformer.cli", "score", *files, "--model", args.model]
        t0 = time.perf_counter()
        subprocess.run(
            cmd + ["-o", str(out), "--jobs", str(j), "--quiet"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        s = time.perf_counter() - t0
        base = base or s
        first = work / f"out-j{jobs[0]}"
        same = all(filecmp.cmp(p, first / p.name, shallow=False) for p in out.iterdir())
        diff = max(compare(p, first / p.name) for p in out.iterdir())
        assert diff <= 1e-5, f"--jobs {j}: probabilities differ by {diff:g}"
        agree = "same bytes" if same else f"max |dp| {diff:.1e}"
        print(f"| {j} | {s:.2f} | {args.files * args.genes / s:,.0f} | {base / s:.2f}x | {agree} |")
        table.append(
            {
                "--jobs": j,
                "seconds": round(s, 2),
                "genes/s": round(args.files * args.genes / s),
                "speed vs --jobs 1": f"{base / s:.2f}x",
                "outputs vs --jobs 1": agree,
            }
        )
    what = __doc__.split("\n\n    python")[0]
    what += f" Here: {args.files} files of {args.genes:,} genes, model {args.model}."
    save("many-files", what, {"tables": [table]}, folder=args.results)


def compare(path: Path, base: Path) -> float:
    """The largest probability difference between two scores TSVs of the same genes."""
    a, b = (
        np.loadtxt(f, delimiter="\t", skiprows=1, usecols=(0, 1), dtype=str) for f in (path, base)
    )
    assert (a[:, 0] == b[:, 0]).all(), f"{path}: other genes, or another order"
    return float(np.abs(a[:, 1].astype(np.float64) - b[:, 1].astype(np.float64)).max())


if __name__ == "__main__":
    main()
