"""The browser page against the Node and Python scorers, on one simulated genome, in one
run: genes/s of export/web (onnxruntime-web, WASM, in a Web Worker of headless Chromium)
with one thread and with every core, beside ``node export/node/score.js`` and
``chromaformer-score`` on the same exported model and the same .csv.gz.

- page: from the click on Score to the table (reading the file through
  DecompressionStream, parsing in JavaScript, creating the session, scoring); the page's
  own scoring-loop time is given too;
- Node and Python: the whole command (process start, imports, session, parse, score,
  write the TSV).

Needs node, export/web/node_modules (npm ci) and Chromium.

    python benchmarks/web.py --genes 20000 [--arch hybrid]
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WEB = ROOT / "export" / "web"


def _serve():
    spec = importlib.util.spec_from_file_location("serve", WEB / "serve.py")
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(mod)
    httpd = mod.server(str(WEB))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def _page(url: str, out: Path, genome: Path, model: Path, threads: int) -> dict:
    plan = {
        "url": url,
        "query": f"?threads={threads}",
        "out": str(out),
        "chromium": os.environ.get("CHROMIUM", "/usr/bin/chromium"),
        "playwright": str(WEB / "node_modules" / "playwright-core"),
        "timeout_ms": 1_800_000,
        "jobs": [{"name": f"page{threads}", "csv": str(genome), "model": str(model)}],
    }
    (out / "plan.json").write_text(json.dumps(plan))
    subprocess.run(
        ["node", str(ROOT / "tests" / "web" / "drive.mjs"), str(out / "plan.json")], check=True
    )
    job = json.loads((out / "report.json").read_text())["jobs"][0]
    assert job["state"] == "scored", job.get("error")
    return job


def _timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--genes", type=int, default=20000)
    ap.add_argument("--arch", default="hybrid")
    ap.add_argument("--dir", default=None, help="work folder (default: a temp dir)")
    args = ap.parse_args()

    import numpy as np
    import pandas as pd
    import torch

    import chromaformer as cf
    from chromaformer.export import export_onnx
    from chromaformer.models import ModelConfig, build_model, save_checkpoint

    tmp = Path(args.dir or tempfile.mkdtemp(prefix="cf-web-bench-"))
    tmp.mkdir(parents=True, exist_ok=True)
    model = tmp / f"{args.arch}.onnx"
    if not model.exists():
        torch.manual_seed(0)
        ckpt = tmp / f"{args.arch}.pt"
        save_checkpoint(ckpt, build_model(ModelConfig(arch=args.arch)).eval(), cell_types=["SIM"])
        export_onnx(ckpt, model)
    genome = tmp / f"genome_{args.genes}.csv.gz"
    if not genome.exists():
        plain = tmp / f"genome_{args.genes}.csv"
        cf.write_simulated(plain, args.genes, seed=1)
        genome.write_bytes(gzip.compress(plain.read_bytes(), 6))
        plain.unlink()
    cores = os.cpu_count() or 1
    chromium = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    version = subprocess.run([chromium, "--version"], capture_output=True, text=True).stdout
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout
    print(
        f"machine: {cores} cores; {args.genes:,} simulated genes "
        f"({genome.stat().st_size / 1e6:.1f} MB gzip); {args.arch} model; "
        f"{version.strip()}; node {node.strip()}"
    )
    rows = []
    httpd = _serve()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/"
        for threads in (1, cores):
            job = _page(url, tmp, genome, model, threads)
            t = job["timing"]
            rows.append(
                (f"page, WASM, {t['threads']} thread(s)", job["wall_seconds"], t["seconds"])
            )
            shutil.move(tmp / f"page{threads}.tsv", tmp / f"page{threads}.scores.tsv")
    finally:
        httpd.shutdown()
    node_out = tmp / "node.scores.tsv"
    s = _timed(
        [
            "node",
            str(ROOT / "export" / "node" / "score.js"),
            str(genome),
            "--model",
            str(model),
            "-o",
            str(node_out),
            "--quiet",
        ]
    )
    rows.append(("node export/node/score.js", s, None))
    py_out = tmp / "python.scores.tsv"
    s = _timed(
        [
            sys.executable,
            "-m",
            "chromaformer.cli",
            "score",
            str(genome),
            "--model",
            str(model),
            "-o",
            str(py_out),
            "--quiet",
        ]
    )
    rows.append(("chromaformer-score (Python, C++ reader)", s, None))

    ref = pd.read_csv(py_out, sep="\t")
    for f in (tmp / "page1.scores.tsv", tmp / f"page{cores}.scores.tsv", node_out):
        diff = float(np.abs(pd.read_csv(f, sep="\t").probability - ref.probability).max())
        assert diff <= 1e-5, f"{f.name} differs from chromaformer-score by {diff}"
    base = rows[-1][1]
    print("\n| scorer | seconds | genes/s | scoring loop genes/s | vs chromaformer-score |")
    print("|---|---:|---:|---:|---:|")
    for name, s, loop in rows:
        loop_s = f"{args.genes / loop:,.0f}" if loop else ""
        print(f"| {name} | {s:.2f} | {args.genes / s:,.0f} | {loop_s} | {s / base:.2f}x the time |")
    print("all four TSVs give the same probabilities within 1e-5")


if __name__ == "__main__":
    main()
