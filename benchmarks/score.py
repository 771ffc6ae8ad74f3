"""Whole-genome scoring, end to end (parse + infer + write a TSV), in one run:

- chromaformer-score: the C++ reader streaming chunks + onnxruntime on the exported
  graph (grouped per-mark recurrence), parsing overlapped with inference, and the AUROC
  at the end (the simulated genome is labelled: scikit-learn is imported for it);
- the same with ``--no-metrics``: the same TSV (gene, probability, label) and no AUROC,
  so no scikit-learn import: the same work as the PyTorch eager pipeline below;
- the same with ``--no-labels``, as a genome without expression labels scores (no
  label column, no metrics);
- the same pipeline on a plain export (one ONNX LSTM node per mark);
- PyTorch eager on the same weights (read_bins + the nn.Module, batch 1024, the same
  TSV), and the same followed by scikit-learn's AUROC and AUPR, the same work as
  chromaformer-score's default;
- the reference implementation's pipeline: csv module + per-element tensor fill
  (AttentiveChrome's loader), then the PyTorch model.

Each method runs in its own process (peak RSS is its own), on a warm page cache, in
``--repeat`` rounds (default 3; the reference pipeline once): the median is reported,
with the range.
The weights are a seeded random hybrid: speed does not depend on their values.

    python benchmarks/score.py                    # 20k and 200k genes
    python benchmarks/score.py --genes 20000

The ratios at the end compare like with like: PyTorch eager against ``--no-metrics``,
and PyTorch eager + AUROC against chromaformer-score's default.
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
from record import median_run, save

METHODS = [
    "chromaformer-score (ORT, grouped graph)",
    "chromaformer-score --no-metrics",
    "chromaformer-score --no-labels",
    "ORT, plain export (LSTM nodes)",
    "PyTorch eager",
    "PyTorch eager + AUROC",
    "reference (csv module + torch)",
]
#: (slower, faster): the like-for-like ratios printed at the end
RATIOS = [
    ("PyTorch eager", "chromaformer-score --no-metrics"),
    ("PyTorch eager + AUROC", "chromaformer-score (ORT, grouped graph)"),
    ("PyTorch eager", "chromaformer-score --no-labels"),
]

CHILD = r"""
import json, resource, sys, time
method, genome, ckpt, grouped, plain, out = sys.argv[1:7]
import numpy as np

def peak_mb():
    # VmHWM: this process's own high-water mark (ru_maxrss would include the parent's
    # pages, inherited through fork before exec)
    with open("/proc/self/status") as fh:
        return next(int(l.split()[1]) for l in fh if l.startswith("VmHWM")) / 1024

def write_tsv(ids, probs, labels):
    with open(out, "w") as fh:
        fh.write("gene_id\tprobability\tlabel\n")
        fh.writelines(f"{g}\t{p:.7g}\t{l}\n" for g, p, l in zip(ids, probs, labels))

def ort_score(model, labels=True, metrics=True):
    from chromaformer.scoring import Scorer, score
    res = score(Scorer(model), genome, out, labels=labels, metrics=metrics)
    assert bool(res.metrics) == (labels and metrics)
    return res.genes

def eager(metrics=False):
    import torch, chromaformer as cf
    from chromaformer.models import load_model
    model = load_model(ckpt)
    b = cf.read_bins(genome)
    with torch.no_grad():
        probs = np.concatenate(
            [torch.sigmoid(model(torch.from_numpy(b.counts[i : i + 1024]))["logit"]).numpy()
             for i in range(0, b.n_genes, 1024)])
    write_tsv(b.gene_ids, probs, b.labels)
    if metrics:
        from chromaformer.metrics import auroc_aupr
        auroc_aupr(b.labels, probs)
    return b.n_genes

def reference():
    import csv, torch
    from chromaformer.models import load_model
    model = load_model(ckpt)
    with open(genome) as fh:
        data = list(csv.reader(fh))
    n_features = len(data[0]) - 3
    genes = {}
    for i in range(0, len(data), 100):
        hm = torch.zeros(100, n_features)
        for j in range(100):
            for k in range(n_features):
                hm[j][k] = int(data[i + j][k + 2])
        genes[data[i][0]] = (hm, int(data[i][-1]))
    ids = list(genes)
    x = torch.stack([genes[g][0] for g in ids])
    with torch.no_grad():
        probs = np.concatenate([torch.sigmoid(model(x[i:i + 1024])["logit"]).numpy()
                                for i in range(0, len(ids), 1024)])
    with open(out, "w", newline="") as fh:
        w = csv.writer(fh, delimiter="\t")
        w.writerow(["gene_id", "probability", "label"])
        for g, p in zip(ids, probs):
            w.writerow([g, f"{p:.7g}", genes[g][1]])
    return len(ids)

fn = {"chromaformer-score (ORT, grouped graph)": lambda: ort_score(grouped),
      "chromaformer-score --no-metrics": lambda: ort_score(grouped, metrics=False),
      "chromaformer-score --no-labels": lambda: ort_score(grouped, labels=False),
      "ORT, plain export (LSTM nodes)": lambda: ort_score(plain),
      "PyTorch eager": eager, "PyTorch eager + AUROC": lambda: eager(metrics=True),
      "reference (csv module + torch)": reference}[method]
t0 = time.perf_counter()
n = fn()
seconds = time.perf_counter() - t0
probs = np.loadtxt(out, delimiter="\t", skiprows=1, usecols=1)
print(json.dumps({"seconds": seconds, "genes": n, "peak_mb": peak_mb(),
                  "probs_head": probs[:2000].tolist()}))
"""


def run(method: str, genome: Path, ckpt: Path, grouped: Path, plain: Path, out: Path) -> dict:
    res = subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD,
            method,
            str(genome),
            str(ckpt),
            str(grouped),
            str(plain),
            str(out),
        ],
        capture_output=True,
        text=True,
    )
    if res.returncode != 0:
        return {"error": res.stderr.strip().splitlines()[-1] if res.stderr else "failed"}
    return json.loads(res.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--genes", type=int, nargs="+", default=[20000, 200000])
    ap.add_argument(
        "--reference-max-genes",
        type=int,
        default=20000,
        help="skip the (slow) reference pipeline above this size",
    )
    ap.add_argument("--dir", default=None, help="work folder (default: a temp dir)")
    ap.add_argument("--results", default=None, help="folder for the result JSON")
    ap.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="rounds of every method (the reference pipeline: one); the median is reported",
    )
    args = ap.parse_args()

    import numpy as np
    import torch

    import chromaformer as cf
    from chromaformer.export import export_onnx
    from chromaformer.models import ModelConfig, build_model, save_checkpoint

    tmp = Path(args.dir or tempfile.mkdtemp(prefix="cf-score-bench-"))
    ckpt = tmp / "hybrid.pt"
    torch.manual_seed(0)
    save_checkpoint(ckpt, build_model(ModelConfig(arch="hybrid")).eval(), cell_types=["SIM"])
    grouped, plain = tmp / "hybrid.onnx", tmp / "hybrid-plain.onnx"
    if not grouped.exists():
        export_onnx(ckpt, grouped)
    if not plain.exists():
        export_onnx(ckpt, plain, grouped=False)
    print(
        f"machine: {os.cpu_count()} cores; chromaformer {cf.__version__}; torch "
        f"{torch.__version__}; hybrid model; median of {args.repeat} rounds of every method "
        "(each in its own process), warm page cache"
    )
    table: list[dict] = []
    ratios: list[dict] = []
    for genes in args.genes:
        genome = tmp / f"genome_{genes}.csv"
        if not genome.exists():
            cf.write_simulated(genome, genes, seed=1)
        cf.read_bins(genome)  # warm the page cache
        print(f"\n{genes:,} genes ({genome.stat().st_size / 1e6:.0f} MB)")
        print(
            "| method | seconds (median) | range | genes/s | peak RSS (MB) | "
            "seconds vs chromaformer-score |"
        )
        print("|---|---:|---:|---:|---:|---:|")
        runs: dict[str, list[dict]] = {}
        for rnd in range(args.repeat):  # rounds, so that a slow spell hits every method
            for method in METHODS:
                if method.startswith("reference") and (genes > args.reference_max_genes or rnd > 0):
                    continue
                runs.setdefault(method, []).append(
                    run(method, genome, ckpt, grouped, plain, tmp / "out.tsv")
                )
        results = {m: median_run(r) for m, r in runs.items()}
        ours = results[METHODS[0]].get("seconds")
        head = np.array(results[METHODS[0]].get("probs_head", []))
        for method, r in results.items():
            if "error" in r:
                print(f"| {method} | failed: {r['error']} | | | | |")
                continue
            s = r["seconds"]
            ratio = "1.0x" if method == METHODS[0] else f"{s / ours:.2f}x"
            spread = f"{r['low']:.2f}-{r['high']:.2f}" if r["n"] > 1 else ""
            table.append(
                {
                    "genes": genes,
                    "method": method,
                    "seconds (median)": round(s, 2),
                    "range": spread,
                    "genes/s": round(r["genes"] / s),
                    "peak RSS (MB)": round(r["peak_mb"]),
                    "seconds vs chromaformer-score": ratio,
                }
            )
            print(
                f"| {method} | {s:.2f} | {spread} | {r['genes'] / s:,.0f} | "
                f"{r['peak_mb']:,.0f} | {ratio} |"
            )
            if len(head):
                diff = np.abs(np.array(r["probs_head"]) - head).max()
                assert diff < 1e-5, f"{method} disagrees with chromaformer-score by {diff}"
        print("all methods give the same probabilities (first 2,000 genes, within 1e-5)")
        for slow, fast in RATIOS:
            a, b = (results.get(m, {}).get("seconds") for m in (slow, fast))
            if a and b:
                print(f"{slow} / {fast}: {a / b:.2f}x")
                ratios.append(
                    {"genes": genes, "slower": slow, "faster": fast, "ratio": f"{a / b:.2f}x"}
                )
    save(
        "score",
        __doc__.split("\n\n    python")[0],
        {"tables": [table, ratios]},
        folder=args.results,
    )


if __name__ == "__main__":
    main()
