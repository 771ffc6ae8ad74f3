"""Training and scoring on one device (cuda or cpu), through the product's own commands:

- train: a 20k-gene simulated cell (14k train / 3k valid / 3k test genes, seeds 1-3),
  each bin architecture trained with ``chromaformer-train --device D`` for ``--epochs``
  epochs (no early stopping) and each ``--seeds`` seed: seconds per epoch (the first,
  which holds CUDA's warm-up, and the median of the rest) and test AUROC beside the
  logistic-regression and gradient-boosting baselines on the same split;
- chromoformer: the same for Chromoformer on a simulated set of ``--chromoformer-genes``
  genes (fold 1 validates);
- profile (not run by default): one epoch of the training engine per model under
  torch.profiler, its operators by time;
- score: the seed-1 hybrid exported, then a 20k-gene simulated genome scored end to end
  by ``chromaformer-score --device cuda`` and ``--device cpu`` (each its own process),
  and in one process the steps apart (import, session, parse, first and steady-state
  inference) for onnxruntime's CUDA and CPU providers and PyTorch eager on the device.

Run it once with ``--device cuda`` and once with ``--device cpu`` on the same seeds to
compare AUROCs; the simulated files are seeded, so both runs see the same genes (their
checksums are printed).

    python benchmarks/gpu.py --device cuda --dir bench --json gpu.json
    python benchmarks/gpu.py --device cpu --parts train --models cnn --epochs 2 --genes 2000
    python benchmarks/gpu.py --device cuda --parts train --train-batch-size 512
    python benchmarks/gpu.py --device cuda --parts profile --models hybrid   # where a step goes
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from record import save

ARCHS = ["bilstm_attention", "bilstm_transformer", "hybrid", "cnn"]
PARTS = ["train", "chromoformer", "score", "profile"]


def cli(*args: str) -> float:
    """Runs ``python -m chromaformer.cli ARGS`` and returns its wall-clock seconds."""
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "chromaformer.cli", *args], check=True, stdout=subprocess.DEVNULL
    )
    return time.perf_counter() - t0


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()[:12]


def simulate_cell(root: Path, genes: int) -> Path:
    """``root/SIM/classification/{train,valid,test}.csv``: 70/15/15 of ``genes``."""
    cell = root / "SIM" / "classification"
    sizes = {"train": genes * 70 // 100, "valid": genes * 15 // 100}
    sizes["test"] = genes - sizes["train"] - sizes["valid"]
    for seed, (split, n) in enumerate(sizes.items(), start=1):
        f = cell / f"{split}.csv"
        if not f.exists():
            cli("simulate", "-o", str(f), "--genes", str(n), "--seed", str(seed), "-q")
        print(f"  {split}: {n} genes, md5 {md5(f)}")
    return root


def epoch_stats(metrics: dict) -> dict:
    secs = metrics["epoch_seconds"]
    rest = secs[1:] or secs
    return {
        "first_epoch_s": secs[0],
        "epoch_s": statistics.median(rest),
        "auroc": metrics["test"]["mean_auroc"],
        "baselines": {k: v["mean_auroc"] for k, v in metrics["baselines"].items()},
        "train_genes": metrics["genes"]["train"],
        "device": metrics["device"],
    }


def batch_option(args: argparse.Namespace) -> list[str]:
    return ["--batch-size", str(args.train_batch_size)] if args.train_batch_size else []


def train_runs(args: argparse.Namespace, work: Path) -> list[dict]:
    print(f"\n## train: {args.genes:,} simulated genes, {args.epochs} epochs, {args.device}")
    data = simulate_cell(work / "data", args.genes)
    rows = []
    for arch in args.models:
        for seed in args.seeds:
            batch = f"-b{args.train_batch_size}" if args.train_batch_size else ""
            out = work / "runs" / f"{arch}-{args.device}{batch}-s{seed}"
            if not (out / "metrics.json").exists():  # a rerun keeps finished runs
                cli(
                    "train", "--model", arch, "--data-root", str(data), "--cell-types", "SIM",
                    "--epochs", str(args.epochs), "--patience", "0", "--seed", str(seed),
                    "--device", args.device, "--out", str(out), "--quiet", *batch_option(args),
                )  # fmt: skip
            r = {
                "model": arch,
                "seed": seed,
                **epoch_stats(json.loads((out / "metrics.json").read_text())),
            }
            rows.append(r)
            print(
                f"  {arch} seed {seed}: epoch {r['epoch_s']:.2f} s (first "
                f"{r['first_epoch_s']:.2f} s), AUROC {r['auroc']:.4f}; baselines {r['baselines']}",
                flush=True,
            )
    return rows


def chromoformer_runs(args: argparse.Namespace, work: Path) -> list[dict]:
    n = args.chromoformer_genes
    print(f"\n## chromoformer: {n:,} simulated genes, {args.epochs} epochs, {args.device}")
    sim = work / f"cf{n}"
    if not (sim / "meta.csv").exists():
        cli(
            "simulate",
            "--layout",
            "chromoformer",
            "-o",
            str(sim),
            "--genes",
            str(n),
            "--seed",
            "1",
            "-q",
        )
    print(f"  meta.csv md5 {md5(sim / 'meta.csv')}")
    rows = []
    for seed in args.seeds:
        out = work / "runs" / f"chromoformer-{args.device}-s{seed}"
        if not (out / "metrics.json").exists():
            cli(
                "train", "--model", "chromoformer", "--meta", str(sim / "meta.csv"),
                "--npy-dir", str(sim / "npy"), "--fold", "1", "--cache-dir", str(work / "cf-cache"),
                "--epochs", str(args.epochs), "--seed", str(seed), "--device", args.device,
                "--out", str(out), "--quiet",
            )  # fmt: skip
        r = {
            "model": "chromoformer",
            "seed": seed,
            **epoch_stats(json.loads((out / "metrics.json").read_text())),
        }
        rows.append(r)
        print(
            f"  chromoformer seed {seed}: epoch {r['epoch_s']:.2f} s (first "
            f"{r['first_epoch_s']:.2f} s) on {r['train_genes']} genes, AUROC {r['auroc']:.4f}; "
            f"baselines {r['baselines']}",
            flush=True,
        )
    onnx = work / "chromoformer.onnx"
    cli(
        "export",
        str(work / "runs" / f"chromoformer-{args.device}-s{args.seeds[0]}"),
        "-o",
        str(onnx),
        "-q",
    )
    for dev in ["cpu"] if args.device == "cpu" else ["cuda", "cpu"]:
        secs = min(
            cli(
                "score",
                "--model",
                str(onnx),
                "--meta",
                str(sim / "meta.csv"),
                "--npy-dir",
                str(sim / "npy"),
                "--device",
                dev,
                "-o",
                str(work / f"cf-{dev}.tsv"),
                "-q",
            )  # fmt: skip
            for _ in range(2)
        )
        rows.append({"model": "chromoformer", "score_device": dev, "score_s": secs, "genes": n})
        print(
            f"  chromaformer-score --device {dev}: {n} genes in {secs:.2f} s end to end "
            f"= {n / secs:,.0f} genes/s"
        )
    return rows


def profile_runs(args: argparse.Namespace, work: Path) -> dict:
    """One epoch of the real training engine per architecture under torch.profiler: the
    operators that take the time, on the host and on the device."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    from chromaformer.training import TrainConfig, train

    print(f"\n## profile: one training epoch per model, {args.device}")
    data = simulate_cell(work / "data", args.genes)
    activities = [ProfilerActivity.CPU]
    if args.device == "cuda":
        activities.append(ProfilerActivity.CUDA)
    sort = "self_cuda_time_total" if args.device == "cuda" else "self_cpu_time_total"
    tables = {}
    for arch in args.models:
        tc = TrainConfig(
            out=str(work / "profile" / arch), data_root=str(data), cell_types=["SIM"],
            epochs=1, patience=0, device=args.device, quiet=True,
            batch_size=args.train_batch_size,
        )  # fmt: skip
        with profile(activities=activities) as prof:
            metrics = train(tc, arch)
            if args.device == "cuda":
                torch.cuda.synchronize()
        tables[arch] = table = prof.key_averages().table(sort_by=sort, row_limit=15)
        print(f"{arch}: epoch {metrics['epoch_seconds'][0]:.2f} s under the profiler\n{table}")
    return tables


STEPS = r"""
import json, sys, time
t0 = time.perf_counter()
method, model, ckpt, genome = sys.argv[1:5]
batch = int(sys.argv[5])
out = {}
import numpy as np
import chromaformer as cf
if method == "eager":
    import torch
    from chromaformer.models import load_model
    dev = torch.device(sys.argv[6])
    out["import_s"] = time.perf_counter() - t0
    t = time.perf_counter(); net = load_model(ckpt).eval().to(dev)
    x = torch.zeros(batch, 100, 5, device=dev); net(x); out["session_s"] = time.perf_counter() - t
    def infer(counts):
        with torch.inference_mode():
            starts = range(0, len(counts), batch)
            xs = (torch.from_numpy(counts[i:i + batch]).to(dev) for i in starts)
            parts = [torch.sigmoid(net(x)["logit"]).float().cpu().numpy() for x in xs]
        return np.concatenate(parts)
else:
    from chromaformer.scoring import Scorer
    out["import_s"] = time.perf_counter() - t0
    t = time.perf_counter(); scorer = Scorer(model, device=method)
    out["session_s"] = time.perf_counter() - t
    out["providers"] = scorer.session.get_providers()
    def infer(counts):
        return scorer.predict(counts, batch_size=batch)["probability"]
t = time.perf_counter(); b = cf.read_bins(genome); out["parse_s"] = time.perf_counter() - t
t = time.perf_counter(); p = infer(b.counts); out["first_infer_s"] = time.perf_counter() - t
reps = []
for _ in range(3):
    t = time.perf_counter(); p = infer(b.counts); reps.append(time.perf_counter() - t)
out["infer_s"] = min(reps)
out["genes"] = int(b.n_genes)
out["total_s"] = time.perf_counter() - t0
np.save(sys.argv[-1], p)
print(json.dumps(out))
"""


def score_runs(args: argparse.Namespace, work: Path) -> dict:
    print(f"\n## score: {args.score_genes:,}-gene genome, hybrid")
    runs = sorted((work / "runs").glob(f"hybrid-{args.device}-s*"))
    if not runs:
        raise SystemExit("score needs a trained hybrid: run --parts train first")
    onnx = work / "hybrid.onnx"
    if not onnx.exists():
        cli("export", str(runs[0]), "-o", str(onnx), "-q")
    genome = work / f"genome{args.score_genes}.csv"
    if not genome.exists():
        cli("simulate", "-o", str(genome), "--genes", str(args.score_genes), "--seed", "11", "-q")
    ckpt = runs[0] / "best.pt"
    res: dict = {"end_to_end": {}, "steps": {}}
    devices = ["cpu"] if args.device == "cpu" else ["cuda", "cpu"]
    for dev in devices:
        run = ["score", str(genome), "--model", str(onnx), "--device", dev, "-q", "-o"]
        cli(*run, str(work / "warm.tsv"))  # the first run warms the page cache and CUDA's
        secs = [cli(*run, str(work / f"{dev}.tsv")) for _ in range(3)]
        res["end_to_end"][dev] = min(secs)
        print(
            f"  chromaformer-score --device {dev}: {min(secs):.2f} s end to end (best of 3)",
            flush=True,
        )
    probs = {}
    methods = [(d, d) for d in devices] + [("eager", d) for d in devices]
    for method, dev in methods:
        for batch in args.batch_sizes:
            key = f"{method}:{dev}:{batch}"
            npy = work / f"p-{method}-{dev}-{batch}.npy"
            cmd = [
                sys.executable,
                "-c",
                STEPS,
                method,
                str(onnx),
                str(ckpt),
                str(genome),
                str(batch),
                dev,
                str(npy),
            ]
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                print(f"  {key}: failed: {r.stderr.strip().splitlines()[-1:]}", flush=True)
                continue
            res["steps"][key] = s = json.loads(r.stdout.strip().splitlines()[-1])
            probs[key] = npy
            print(
                f"  {key}: import {s['import_s']:.2f} s, session {s['session_s']:.2f} s, parse "
                f"{s['parse_s']:.2f} s, first pass {s['first_infer_s']:.3f} s, steady "
                f"{s['infer_s']:.3f} s = {s['genes'] / s['infer_s']:,.0f} genes/s "
                f"{s.get('providers', '')}",
                flush=True,
            )
    import numpy as np

    ref = next((k for k in probs if k.startswith("cpu:")), None)
    if ref:
        base = np.load(probs[ref])
        res["max_abs_diff_vs_cpu"] = {
            k: float(np.abs(np.load(v) - base).max()) for k, v in probs.items()
        }
        print(f"  max |p - p(ORT cpu)|: {res['max_abs_diff_vs_cpu']}")
    return res


def train_table(rows: list[dict]) -> list[list[dict]]:
    """The training runs (and Chromoformer's scoring runs) as page tables."""
    runs = [
        {
            "model": r["model"],
            "seed": r["seed"],
            "device": r["device"],
            "train genes": r["train_genes"],
            "first epoch (s)": round(r["first_epoch_s"], 2),
            "epoch (s, median of the rest)": round(r["epoch_s"], 2),
            "test AUROC": round(r["auroc"], 4),
            "logistic regression": round(r["baselines"]["linear"], 4),
            "gradient boosting": round(r["baselines"]["gradient_boosting"], 4),
        }
        for r in rows
        if "seed" in r
    ]
    scored = [
        {
            "model": r["model"],
            "device": r["score_device"],
            "genes scored": r["genes"],
            "seconds": round(r["score_s"], 2),
        }
        for r in rows
        if "score_s" in r
    ]
    return [runs] + ([scored] if scored else [])


def score_table(res: dict) -> list[list[dict]]:
    """End-to-end seconds per device, and the steps apart per runtime."""
    ends = [{"device": k, "end to end (s)": round(v, 2)} for k, v in res["end_to_end"].items()]
    steps = []
    for key, v in res["steps"].items():
        row: dict = {"runtime:device:batch": key}
        for f in ("import_s", "session_s", "parse_s", "first_infer_s", "infer_s", "total_s"):
            if f in v:
                row[f.replace("_s", " (s)")] = round(v[f], 3)
        steps.append(row)
    return [ends, steps]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--parts", nargs="+", default=PARTS[:3], choices=PARTS)
    ap.add_argument("--genes", type=int, default=20000, help="genes of the training cell")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--models", nargs="+", default=ARCHS, choices=ARCHS)
    ap.add_argument("--train-batch-size", type=int, default=None, help="default: the recipe's (64)")
    ap.add_argument("--chromoformer-genes", type=int, default=2000)
    ap.add_argument("--score-genes", type=int, default=20000)
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1024, 4096])
    ap.add_argument("--dir", default="gpu-bench", help="work folder (kept: reruns reuse its data)")
    ap.add_argument("--json", default=None, help="also write every figure here")
    ap.add_argument("--results", default=None, help="folder for the result JSON")
    args = ap.parse_args()
    work = Path(args.dir)
    work.mkdir(parents=True, exist_ok=True)
    import torch

    import chromaformer as cf

    name = torch.cuda.get_device_name() if args.device == "cuda" else f"{os.cpu_count()} CPU cores"
    print(f"chromaformer {cf.__version__}, torch {torch.__version__}, device: {name}")
    result: dict = {"device": name, "args": vars(args)}
    if "train" in args.parts:
        result["train"] = train_runs(args, work)
    if "chromoformer" in args.parts:
        result["chromoformer"] = chromoformer_runs(args, work)
    if "score" in args.parts:
        result["score"] = score_runs(args, work)
    if "profile" in args.parts:
        result["profile"] = profile_runs(args, work)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    tables: list[list[dict]] = []
    for part in ("train", "chromoformer"):
        if part in result:
            tables += train_table(result[part])
    if "score" in result:
        tables += score_table(result["score"])
    what = __doc__.split("\n\n    python")[0]
    part_names = "-".join(p for p in ("train", "chromoformer", "score") if p in result)
    save(
        "gpu",
        what,
        {"tables": tables, "raw": result},
        gpu_used=args.device == "cuda",
        folder=args.results,
        file=f"gpu-{args.device}-{part_names or 'profile'}",
    )


if __name__ == "__main__":
    main()
