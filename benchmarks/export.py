"""ONNX export time with each tracer, and how fast onnxruntime runs what each wrote.

For every architecture (seeded random weights, 100 bins; Chromoformer at its defaults)
and each tracer of ``export_onnx(..., exporter=)`` (TorchScript's, the default, and
torch.export's "dynamo"), one fresh process times the export call alone (imports and
weights excluded) and then scores 4,096 simulated genes with onnxruntime on the file
(best of 3, batch 1,024; Chromoformer 256 genes in batches of 64). Both files are
checked to give the same probabilities.

    python benchmarks/export.py
    python benchmarks/export.py --archs cnn --genes 512     # quick
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ARCHS = ["bilstm_attention", "bilstm_transformer", "hybrid", "cnn", "chromoformer"]
EXPORTERS = ["torchscript", "dynamo"]

CHILD = r"""
import json, sys, time
import numpy as np
arch, exporter, folder, genes = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
import torch
from chromaformer.export import export_onnx
from chromaformer.families import family_for
from chromaformer.models import build_network, save_checkpoint
from chromaformer.models.config import ChromoformerConfig, ModelConfig
from chromaformer.scoring import session_options
import onnxruntime as ort

torch.manual_seed(0)
cfg = ChromoformerConfig() if arch == "chromoformer" else ModelConfig(arch=arch)
ckpt = f"{folder}/{arch}.pt"
save_checkpoint(ckpt, build_network(cfg).eval(), epoch=1, cell_types=["sim"], valid={})
out = f"{folder}/{arch}-{exporter}.onnx"
t = time.perf_counter()
report = export_onnx(ckpt, out, exporter=exporter)
seconds = time.perf_counter() - t
family = family_for(cfg)
batch = 64 if arch == "chromoformer" else 1024  # its pairwise attention is memory-hungry
genes = min(genes, 256) if arch == "chromoformer" else genes
feeds = dict(zip(family.input_names(cfg), family.example_inputs(cfg, genes)))
sess = ort.InferenceSession(out, session_options(), providers=["CPUExecutionProvider"])
key = family.output_names(cfg)[0]
best, probs = float("inf"), None
for _ in range(3):
    t = time.perf_counter()
    parts = [sess.run([key], {k: v[i : i + batch] for k, v in feeds.items()})[0]
             for i in range(0, genes, batch)]
    best = min(best, time.perf_counter() - t)
    probs = np.concatenate(parts)
np.save(f"{folder}/{arch}-{exporter}.npy", probs)
print(json.dumps({"export_s": seconds, "bytes": report.size_bytes, "genes_per_s": genes / best}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--archs", nargs="+", default=ARCHS, choices=ARCHS)
    ap.add_argument("--genes", type=int, default=4096, help="genes scored per file")
    args = ap.parse_args()
    import numpy as np

    rows = []
    with tempfile.TemporaryDirectory(prefix="cf-bench-export-") as tmp:
        for arch in args.archs:
            for exporter in EXPORTERS:
                res = subprocess.run(
                    [sys.executable, "-c", CHILD, arch, exporter, tmp, str(args.genes)],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                row = json.loads(res.stdout.strip().splitlines()[-1])
                rows.append({"arch": arch, "exporter": exporter, **row})
                print(json.dumps(rows[-1]), file=sys.stderr)
            a, b = (np.load(Path(tmp) / f"{arch}-{e}.npy") for e in EXPORTERS)
            diff = float(np.abs(a - b).max())
            assert diff < 1e-5, f"{arch}: the two exports differ by {diff}"
    print("| model | tracer | export (s) | file (kB) | onnxruntime genes/s | export vs dynamo |")
    print("|---|---|---:|---:|---:|---:|")
    for row in rows:
        ref = next(r for r in rows if r["arch"] == row["arch"] and r["exporter"] == "dynamo")
        print(
            f"| {row['arch']} | {row['exporter']} | {row['export_s']:.1f} | "
            f"{row['bytes'] / 1e3:,.0f} | {row['genes_per_s']:,.0f} | "
            f"{ref['export_s'] / row['export_s']:.1f}x faster |"
        )


if __name__ == "__main__":
    main()
