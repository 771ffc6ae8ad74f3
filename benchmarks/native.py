"""The native scorer against the other ways to score a genome, end to end, in one run:

- ``chromaformer-score-native`` (the C++ reader + onnxruntime's C API, no Python);
- ``chromaformer-score --no-metrics`` (the Python scorer: the same TSV, no AUROC);
- the Node.js scorer (``export/node/score.js``: the JavaScript reader + onnxruntime-node);
- PyTorch eager on the same weights (read_bins + the nn.Module, batch 1024, the same TSV;
  the hybrid only: the shipped ensemble has no checkpoint in the package).

Every method is a whole command in its own process, timed from start to exit (start-up,
parsing, inference and writing), with its peak RSS (GNU time's maximum resident set size); the
median of ``--repeat`` rounds is reported. Start-up is each command on a one-gene file
(the process, the imports, the model's session). Two models: a seeded random hybrid,
exported once (speed does not depend on its weights), on simulated genomes of 100 bins of
100 bp; and the shipped ``e116`` ensemble (3 BiLSTM-attention + 3 CNN) on simulated
genomes of its layout, 21 bins of 10 kb.
The native scorer is built with CMake into the work folder.

    python benchmarks/native.py                     # 20k and 200k genes
    python benchmarks/native.py --genes 20000 --repeat 5
    python benchmarks/native.py --genes 200000 --repeat 1 --file native-200k
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
from record import median_run, save

ROOT = Path(__file__).resolve().parents[1]
NODE = ROOT / "export" / "node" / "score.js"

EAGER = r"""
import sys, numpy as np, torch, chromaformer as cf
from chromaformer.models import load_model
genome, ckpt, out = sys.argv[1:4]
torch.set_num_threads(int(sys.argv[4]))
model = load_model(ckpt)
b = cf.read_bins(genome)
with torch.no_grad():
    probs = np.concatenate(
        [torch.sigmoid(model(torch.from_numpy(b.counts[i : i + 1024]))["logit"]).numpy()
         for i in range(0, b.n_genes, 1024)])
with open(out, "w") as fh:
    fh.write("gene_id\tprobability\tlabel\n")
    fh.writelines(f"{g}\t{p:.7g}\t{l}\n" for g, p, l in zip(b.gene_ids, probs, b.labels))
"""


def build_native(work: Path) -> Path:
    """chromaformer-score-native, configured and built in ``work`` (Release)."""
    build = work / "native-build"
    headers = subprocess.run(
        ["bash", str(ROOT / ".ci" / "onnxruntime-headers")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    subprocess.run(
        [
            "cmake",
            "-S",
            str(ROOT),
            "-B",
            str(build),
            "-DCHROMAFORMER_PYTHON=OFF",
            "-DCHROMAFORMER_TESTS=OFF",
            f"-DONNXRUNTIME_INCLUDE_DIR={headers}",
            f"-DPython_EXECUTABLE={sys.executable}",
        ],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            "cmake",
            "--build",
            str(build),
            "-j",
            str(os.cpu_count() or 2),
            "--target",
            "chromaformer-score-native",
        ],
        check=True,
        capture_output=True,
    )
    return build / "chromaformer-score-native"


def timed(cmd: list[str]) -> dict:
    """Wall seconds and peak RSS (MB) of one command, from its start to its exit. The RSS
    is GNU time's (``/usr/bin/time``, Debian's ``time``): a child forked from this Python
    process would report this process's high-water mark, carried across exec."""
    with tempfile.NamedTemporaryFile(suffix=".rss") as rss:
        t0 = time.perf_counter()
        res = subprocess.run(
            ["/usr/bin/time", "-f", "%M", "-o", rss.name, *cmd],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        seconds = time.perf_counter() - t0
        if res.returncode != 0:
            err = res.stderr.decode(errors="replace").strip().splitlines()
            return {"error": (err or ["failed"])[-1]}
        peak_kb = int(Path(rss.name).read_text().split()[-1])
    return {"seconds": seconds, "peak_mb": peak_kb / 1024}


def commands(
    native: Path, model: Path, ckpt: Optional[Path], genome: Path, out: Path, threads: int
) -> dict[str, list[str]]:
    py = shutil.which("chromaformer-score") or "chromaformer-score"
    common = [str(genome), "--model", str(model), "-o", str(out), "--quiet"]
    common += ["--threads", str(threads)]
    cmds = {
        "chromaformer-score-native": [str(native), *common],
        "chromaformer-score --no-metrics": [py, *common, "--no-metrics"],
        "Node scorer (export/node)": ["node", str(NODE), *common],
    }
    if ckpt is not None:
        cmds["PyTorch eager"] = [
            sys.executable,
            "-c",
            EAGER,
            str(genome),
            str(ckpt),
            str(out),
            str(threads),
        ]
    return cmds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--genes", type=int, nargs="+", default=[20000, 200000])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--dir", default=None, help="work folder (default: a temp dir)")
    ap.add_argument("--results", default=None, help="folder for the result JSON")
    ap.add_argument("--file", default=None, help="the result's file name (default: native)")
    args = ap.parse_args()

    import numpy as np
    import pandas as pd
    import torch

    import chromaformer as cf
    from chromaformer.export import export_onnx
    from chromaformer.models import ModelConfig, build_model, save_checkpoint

    work = Path(args.dir or tempfile.mkdtemp(prefix="cf-native-bench-"))
    native = build_native(work)
    ckpt, model = work / "hybrid.pt", work / "hybrid.onnx"
    torch.manual_seed(0)
    save_checkpoint(ckpt, build_model(ModelConfig(arch="hybrid")).eval(), cell_types=["SIM"])
    if not model.exists():
        export_onnx(ckpt, model)
    from chromaformer.pretrained import resolve_model

    models = {
        "hybrid (100 bins)": (model, ckpt, {}),
        "e116 ensemble (21 bins)": (
            Path(resolve_model("e116")),
            None,
            {"bins": 21, "bin_size": 10000},
        ),
    }
    print(
        f"machine: {os.cpu_count()} cores, {args.threads} threads per method; chromaformer "
        f"{cf.__version__}; median of {args.repeat} rounds, warm page cache"
    )
    table: list[dict] = []
    for label, (onnx, weights, layout) in models.items():
        tag = "e116" if weights is None else "hybrid"
        one = work / f"one_gene_{tag}.csv"
        cf.write_simulated(one, 1, seed=2, **layout)
        startup = {
            m: median_run([timed(cmd) for _ in range(args.repeat)])
            for m, cmd in commands(native, onnx, weights, one, work / "o.tsv", args.threads).items()
        }
        methods = list(startup)
        for genes in args.genes:
            genome = work / f"genome_{tag}_{genes}.csv"
            if not genome.exists():
                cf.write_simulated(genome, genes, seed=1, **layout)
            cf.read_bins(genome)  # warm the page cache
            outs = {m: work / f"out_{i}.tsv" for i, m in enumerate(methods)}
            runs: dict[str, list[dict]] = {m: [] for m in methods}
            for _ in range(args.repeat):  # rounds, so that a slow spell hits every method
                for m in methods:
                    cmd = commands(native, onnx, weights, genome, outs[m], args.threads)[m]
                    runs[m].append(timed(cmd))
            res = {m: median_run(r) for m, r in runs.items()}
            ref = pd.read_csv(outs["chromaformer-score --no-metrics"], sep="\t")
            python_s = res["chromaformer-score --no-metrics"].get("seconds")
            python_mb = res["chromaformer-score --no-metrics"].get("peak_mb")
            print(f"\n{label}, {genes:,} genes ({genome.stat().st_size / 1e6:.0f} MB)")
            for m in methods:
                r, s0 = res[m], startup[m]
                if "error" in r:
                    print(f"| {m} | failed: {r['error']} |")
                    continue
                got = pd.read_csv(outs[m], sep="\t")
                same = got.gene_id.tolist() == ref.gene_id.tolist()
                diff = (
                    float(np.abs(got.probability - ref.probability).max()) if same else float("nan")
                )
                row = {
                    "model": label,
                    "genes": genes,
                    "method": m,
                    "seconds": round(r["seconds"], 3),
                    "range": f"{r['low']:.2f}-{r['high']:.2f}",
                    "genes/s": round(genes / r["seconds"]),
                    "peak RSS (MB)": round(r["peak_mb"]),
                    "start-up (s)": round(s0.get("seconds", float("nan")), 3),
                    "time vs Python scorer": f"{r['seconds'] / python_s:.2f}x",
                    "RSS vs Python scorer": f"{r['peak_mb'] / python_mb:.2f}x",
                    "max abs. difference from Python's": f"{diff:.1e}",
                }
                table.append(row)
                print("| " + " | ".join(str(v) for v in row.values()) + " |")
    save(
        "native",
        "Scoring a simulated genome end to end (start-up, parse, infer, write the TSV): "
        "chromaformer-score-native, chromaformer-score --no-metrics, the Node scorer and "
        "PyTorch eager, each a whole command in its own process; start-up = the same "
        "command on a one-gene file",
        {"tables": [table], "threads": args.threads, "repeat": args.repeat},
        folder=args.results,
        file=args.file,
    )
    if not args.dir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
