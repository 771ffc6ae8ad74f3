"""The int8 and fp16 export variants against fp32: size, onnxruntime speed on CPU and
how far they move probabilities and AUROC.

Trains a hybrid on the two bundled real cells (deepdiff Cell1 + Cell2; ``--epochs``,
default 20), exports fp32 and makes both variants of it, then scores the cells' 800
valid+test genes with each (best of 3 at batch 1,024, one process).

    python benchmarks/variants.py
    python benchmarks/variants.py --epochs 2      # quick
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--arch", default="hybrid")
    args = ap.parse_args()
    import onnxruntime as ort
    from sklearn.metrics import roc_auc_score

    from chromaformer.data.benchmark import PACKAGE_DATA, load_split
    from chromaformer.export import export_onnx
    from chromaformer.scoring import session_options
    from chromaformer.training import TrainConfig, train

    root = PACKAGE_DATA / "deepdiff_sample"
    sets = [load_split(root, ["Cell1", "Cell2"], split) for split in ("valid", "test")]
    x = np.concatenate([s.counts for s in sets])
    y = np.concatenate([s.labels for s in sets])
    with tempfile.TemporaryDirectory(prefix="cf-bench-variants-") as tmp:
        run = Path(tmp) / "run"
        train(
            TrainConfig(
                out=str(run),
                data_root=str(root),
                cell_types=["Cell1", "Cell2"],
                epochs=args.epochs,
                quiet=True,
                plots=False,
                seed=1,
            ),
            args.arch,
        )
        paths = {"fp32": export_onnx(run, Path(tmp) / "fp32.onnx").path}
        for variant in ("int8", "fp16"):
            paths[variant] = export_onnx(
                paths["fp32"], Path(tmp) / f"{variant}.onnx", variant=variant, force=True
            ).path
        probs, rows = {}, []
        for variant, path in paths.items():
            sess = ort.InferenceSession(
                str(path), session_options(), providers=["CPUExecutionProvider"]
            )
            best = float("inf")
            for _ in range(3):
                t = time.perf_counter()
                p = np.concatenate(
                    [
                        sess.run(["probability"], {"counts": x[i : i + 1024]})[0]
                        for i in range(0, len(x), 1024)
                    ]
                )
                best = min(best, time.perf_counter() - t)
            probs[variant] = p.astype(np.float64)
            diff = np.abs(probs[variant] - probs["fp32"])
            rows.append(
                (
                    variant,
                    path.stat().st_size,
                    len(x) / best,
                    diff.max(),
                    diff.mean(),
                    roc_auc_score(y, probs[variant]),
                )
            )
    print(f"{args.arch} trained {args.epochs} epochs on Cell1+Cell2; {len(x)} valid+test genes")
    print("| variant | size (kB) | genes/s (CPU) | max / mean \\|p - p_fp32\\| | AUROC |")
    print("|---|---:|---:|---:|---:|")
    for v, size, gps, mx, mean, auc in rows:
        print(f"| {v} | {size / 1e3:,.0f} | {gps:,.0f} | {mx:.4f} / {mean:.5f} | {auc:.4f} |")


if __name__ == "__main__":
    main()
