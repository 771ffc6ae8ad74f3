"""Parse speed: chromaformer's C++ reader against pandas, pyarrow, polars and the
reference implementation's approach, in one run, on simulated genomes.

Every method delivers the same thing: float32 counts (genes, bins, marks), labels and
gene ids. Each runs in its own process (so peak memory is its own); the time is the
best of --repeat runs on a warm page cache.

    python benchmarks/parse.py                       # 20k and 200k genes
    python benchmarks/parse.py --genes 20000 --repeat 5
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from record import save

METHODS = [
    "chromaformer (all threads)",
    "chromaformer (1 thread)",
    "pandas (C engine)",
    "pyarrow.csv",
    "polars",
    "reference (csv module + loops)",
]

CHILD = r"""
import json, resource, sys, time
method, path, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3])
import numpy as np
BINS = 100

def chromaformer_all():
    import chromaformer as cf
    b = cf.read_bins(path)
    return b.counts, b.labels, b.gene_ids

def chromaformer_one():
    import chromaformer as cf
    b = cf.read_bins(path, threads=1)
    return b.counts, b.labels, b.gene_ids

def pandas_c():
    import pandas as pd
    df = pd.read_csv(path, header=None, engine="c", dtype={0: str})
    m = df.shape[1] - 3
    counts = df.iloc[:, 2:2 + m].to_numpy(np.float32).reshape(-1, BINS, m)
    return counts, df.iloc[::BINS, -1].to_numpy(np.uint8), df.iloc[::BINS, 0].to_numpy(str)

def pyarrow_csv():
    import pyarrow.csv as pc
    t = pc.read_csv(path, read_options=pc.ReadOptions(autogenerate_column_names=True),
                    convert_options=pc.ConvertOptions(column_types={"f0": "string"}))
    m = t.num_columns - 3
    counts = np.stack([t.column(i).to_numpy() for i in range(2, 2 + m)], axis=1)
    counts = counts.astype(np.float32).reshape(-1, BINS, m)
    labels = t.column(t.num_columns - 1).to_numpy()[::BINS].astype(np.uint8)
    return counts, labels, t.column(0).to_numpy()[::BINS]

def polars_csv():
    import polars as pl
    df = pl.read_csv(path, has_header=False, schema_overrides={"column_1": pl.Utf8})
    m = df.width - 3
    counts = df[:, 2:2 + m].to_numpy().astype(np.float32).reshape(-1, BINS, m)
    return counts, df[:, -1].to_numpy()[::BINS].astype(np.uint8), df[:, 0].to_numpy()[::BINS]

def reference():
    # AttentiveChrome v2PyTorch loadData: csv.reader into a list, then per gene a
    # zeros tensor filled element by element.
    import csv
    try:
        import torch
        zeros = lambda r, c: torch.zeros(r, c)
    except ImportError:
        zeros = lambda r, c: np.zeros((r, c), np.float32)
    with open(path) as fh:
        data = list(csv.reader(fh))
    n_features = len(data[0]) - 3
    genes = {}
    for i in range(0, len(data), BINS):
        hm = zeros(BINS, n_features)
        for j in range(BINS):
            for k in range(n_features):
                hm[j][k] = int(data[i + j][k + 2])
        genes[data[i][0]] = (hm, int(data[i][-1]))
    counts = np.stack([np.asarray(v[0], np.float32) for v in genes.values()])
    labels = np.array([v[1] for v in genes.values()], np.uint8)
    return counts, labels, np.array(list(genes))

fn = {"chromaformer (all threads)": chromaformer_all, "chromaformer (1 thread)": chromaformer_one,
      "pandas (C engine)": pandas_c, "pyarrow.csv": pyarrow_csv, "polars": polars_csv,
      "reference (csv module + loops)": reference}[method]
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
best = float("inf")
for _ in range(repeat):
    t0 = time.perf_counter()
    counts, labels, ids = fn()
    best = min(best, time.perf_counter() - t0)
    shape = counts.shape
    checksum = float(counts.sum(dtype=np.float64))
    del counts, labels, ids
# VmHWM: this process's own high-water mark (ru_maxrss would include the parent's
# pages, inherited through fork before exec)
with open("/proc/self/status") as fh:
    peak = next(int(l.split()[1]) for l in fh if l.startswith("VmHWM"))
print(json.dumps({"seconds": best, "peak_mb": peak / 1024, "shape": shape, "checksum": checksum}))
"""


def run(method: str, path: Path, repeat: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, method, str(path), str(repeat)],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr else "failed"}
    return json.loads(out.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--genes", type=int, nargs="+", default=[20000, 200000])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument(
        "--reference-max-genes",
        type=int,
        default=200000,
        help="skip the (slow) reference approach above this size",
    )
    ap.add_argument("--dir", default=None, help="where to write the genomes (default: a temp dir)")
    ap.add_argument("--results", default=None, help="folder for the result JSON")
    args = ap.parse_args()

    import chromaformer as cf

    print(
        f"machine: {os.cpu_count()} cores; chromaformer {cf.__version__}; "
        f"best of {args.repeat} runs each, warm page cache"
    )
    tmp = Path(args.dir or tempfile.mkdtemp(prefix="cf-bench-"))
    table: list[dict] = []
    summary: list[dict] = []
    for genes in args.genes:
        path = tmp / f"genome_{genes}.csv"
        if not path.exists():
            cf.write_simulated(path, genes, seed=1)
        size = path.stat().st_size
        rows = genes * 100
        print(f"\n{genes:,} genes = {rows:,} rows, {size / 1e6:.0f} MB ({path.name})")
        print("| method | seconds | MB/s | M rows/s | peak RSS (MB) | vs chromaformer |")
        print("|---|---:|---:|---:|---:|---:|")
        results = {}
        for method in METHODS:
            if method.startswith("reference") and genes > args.reference_max_genes:
                continue
            reps = 1 if method.startswith("reference") else args.repeat
            results[method] = run(method, path, reps)
        ours = results[METHODS[0]]["seconds"]
        checks = {r["checksum"] for r in results.values() if "checksum" in r}
        for method, r in results.items():
            if "error" in r:
                print(f"| {method} | failed: {r['error']} | | | | |")
                continue
            s = r["seconds"]
            table.append(
                {
                    "genes": genes,
                    "MB": round(size / 1e6),
                    "method": method,
                    "seconds": round(s, 3),
                    "MB/s": round(size / 1e6 / s),
                    "M rows/s": round(rows / 1e6 / s, 1),
                    "peak RSS (MB)": round(r["peak_mb"]),
                    "time vs chromaformer": f"{s / ours:.1f}x",
                }
            )
            print(
                f"| {method} | {s:.3f} | {size / 1e6 / s:,.0f} | {rows / 1e6 / s:.1f} | "
                f"{r['peak_mb']:,.0f} | {s / ours:.1f}x slower |"
                if method != METHODS[0]
                else f"| {method} | {s:.3f} | {size / 1e6 / s:,.0f} | {rows / 1e6 / s:.1f} | "
                f"{r['peak_mb']:,.0f} | 1.0x |"
            )
        fastest_other = min(
            r["seconds"]
            for m, r in results.items()
            if m in ("pandas (C engine)", "pyarrow.csv", "polars") and "seconds" in r
        )
        print(
            f"chromaformer vs the best of pandas/pyarrow/polars: {fastest_other / ours:.1f}x; "
            f"all methods read identical values: {len(checks) == 1}"
        )
        summary.append(
            {
                "genes": genes,
                "chromaformer vs the best of pandas/pyarrow/polars": f"{fastest_other / ours:.1f}x",
                "identical values": len(checks) == 1,
            }
        )
    save(
        "parse",
        __doc__.split("\n\n    python")[0],
        {"tables": [table, summary]},
        folder=args.results,
    )


if __name__ == "__main__":
    main()
