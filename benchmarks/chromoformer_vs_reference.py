"""Chromoformer, measured in one run against the reference package (chromoformer==1.1.3,
its .cuda() calls made no-ops so it runs on this machine's CPU):

1. loading and binning the real E003 sample (../shared, 30 genes, 219 arrays): our
   loader (C++ binning, threads) vs the reference ``ChromoformerDataset`` (all items);
2. one training epoch (clf, fold 1) on a simulated set of ``--genes`` genes, on CPU
   (and CUDA when torch sees a GPU): our model vs the reference model on the same
   batches (forward + backward + AdamW step), same weights;
3. scoring: onnxruntime on the exported graph vs PyTorch eager (ours, the reference).

    python benchmarks/chromoformer_vs_reference.py [--genes 2000] [--workdir DIR] [--no-train]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from chromaformer.data.chromoformer import load_chromoformer
from chromaformer.models import Chromoformer, ChromoformerConfig
from chromaformer.simulate import simulate_chromoformer

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "chromoformer_e003_sample"


def reference():
    torch.Tensor.cuda = lambda self, *a, **k: self  # the reference hard-codes .cuda()
    import chromoformer

    return chromoformer


def ref_batch(data, idx):
    """Our arrays in the reference's input structure (dicts by bin size, dense masks)."""
    from chromaformer.models.chromoformer import region_valid

    b = len(idx)
    pf, pm, cf, cm, im = {}, {}, {}, {}, {}
    lengths = torch.from_numpy(data.lengths[idx])
    present = lengths > 0
    tokens = torch.cat([torch.ones(b, 1, dtype=torch.bool), present], 1)
    for size in data.bin_sizes:
        n = 40000 // size
        pf[size] = torch.from_numpy(data.promoters[size][idx]).unsqueeze(1)
        pm[size] = torch.zeros(b, 1, 1, n, n, dtype=torch.bool)
        cf[size] = torch.from_numpy(data.pcres[size][idx])
        valid = region_valid(lengths, size, n)
        cm[size] = (~valid).unsqueeze(2).unsqueeze(2).expand(b, 8, 1, n, n).contiguous()
        im[size] = (~(tokens.unsqueeze(2) & tokens.unsqueeze(1))).unsqueeze(1)
    freq = torch.zeros(b, 9, 9)
    freq[:, 0, 1:] = torch.from_numpy(data.scores[idx])
    return pf, pm, cf, cm, im, freq


def time_epoch(step, batches) -> float:
    t0 = time.perf_counter()
    for bt in batches:
        step(bt)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--genes", type=int, default=2000)
    ap.add_argument("--workdir")
    ap.add_argument(
        "--ref-batches",
        type=int,
        default=6,
        help="reference training batches timed (then extrapolated to the epoch)",
    )
    ap.add_argument("--no-train", action="store_true", help="skip the training epochs")
    a = ap.parse_args()
    cf = reference()
    rows = []
    # 1. load + bin the real sample
    if (SHARED / "meta.csv").exists():
        import pandas as pd

        genes = list(pd.read_csv(SHARED / "meta.csv").gene_id)
        t0 = time.perf_counter()
        ds = cf.ChromoformerDataset(
            str(SHARED / "meta.csv"), str(SHARED / "npy"), genes, regression=True
        )
        _ = [ds[i] for i in range(len(ds))]
        t_ref = time.perf_counter() - t0
        best = min(
            _timed(lambda: load_chromoformer(str(SHARED / "meta.csv"), str(SHARED / "npy")))
            for _ in range(3)
        )
        rows.append(("load + bin E003 sample (30 genes)", "chromaformer", best, None))
        rows.append(
            ("load + bin E003 sample (30 genes)", "reference ChromoformerDataset", t_ref, None)
        )
    # 2. an epoch
    work = Path(a.workdir or tempfile.mkdtemp(prefix="cf-bench-"))
    if not (work / "meta.csv").exists():
        t0 = time.perf_counter()
        simulate_chromoformer(str(work), a.genes, seed=1)
        print(f"simulated {a.genes} genes in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    t0 = time.perf_counter()
    data = load_chromoformer(str(work / "meta.csv"), str(work / "npy"))
    rows.append(
        (
            f"load + bin simulated ({len(data)} genes)",
            "chromaformer",
            time.perf_counter() - t0,
            None,
        )
    )
    train = np.flatnonzero(data.split != 1)
    order = np.random.default_rng(0).permutation(train)
    batches = [order[k : k + 64] for k in range(0, len(order), 64)]
    devices = [] if a.no_train else ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for dev in devices:
        torch.manual_seed(0)
        ours = Chromoformer(ChromoformerConfig()).to(dev).train()
        ref = cf.ChromoformerClassifier().to(dev).train()
        y = torch.from_numpy(data.labels)
        for name, model, make in (
            (
                "chromaformer",
                ours,
                lambda idx, dev=dev: (
                    [torch.from_numpy(np.ascontiguousarray(x)).to(dev) for x in data.inputs(idx)],
                    None,
                ),
            ),
            (
                "reference",
                ref,
                lambda idx, dev=dev: (
                    None,
                    [
                        ({k: v.to(dev) for k, v in t.items()} if isinstance(t, dict) else t.to(dev))
                        for t in ref_batch(data, idx)
                    ],
                ),
            ),
        ):
            opt = torch.optim.AdamW(model.parameters(), lr=3e-5)
            loss_fn = torch.nn.CrossEntropyLoss()

            def step(idx, model=model, make=make, opt=opt, loss_fn=loss_fn, y=y, dev=dev):
                xs, rx = make(idx)
                opt.zero_grad()
                out = model(*xs)["logits"] if xs is not None else model(*rx)
                loss_fn(out, y[idx].to(dev)).backward()
                opt.step()
                if dev == "cuda":
                    torch.cuda.synchronize()

            step(batches[0])  # warm-up
            use = batches if name == "chromaformer" else batches[: a.ref_batches]
            secs = time_epoch(step, use)
            per_gene = secs / sum(len(b) for b in use)
            rows.append(
                (
                    f"train epoch, {len(train)} genes, {dev}",
                    name,
                    per_gene * len(train),
                    None if name == "chromaformer" else f"from {len(use)} batches",
                )
            )
    # 3. scoring
    import onnxruntime as ort

    from chromaformer.export import export_onnx
    from chromaformer.models import save_checkpoint
    from chromaformer.scoring import session_options

    model = Chromoformer(ChromoformerConfig()).eval()
    onnx_path = work / "bench.onnx"
    save_checkpoint(work / "bench.pt", model)
    export_onnx(work / "bench.pt", onnx_path)
    sess = ort.InferenceSession(
        str(onnx_path), session_options(None), providers=["CPUExecutionProvider"]
    )
    names = [i.name for i in sess.get_inputs()]
    idx_all = np.arange(min(len(data), 512))
    chunks = [idx_all[k : k + 64] for k in range(0, len(idx_all), 64)]
    sess.run(None, dict(zip(names, data.inputs(chunks[0]))))
    t_ort = time_epoch(lambda i: sess.run(None, dict(zip(names, data.inputs(i)))), chunks)
    with torch.no_grad():
        t_eager = time_epoch(
            lambda i: model(*[torch.from_numpy(np.ascontiguousarray(x)) for x in data.inputs(i)]),
            chunks,
        )
        ref = cf.ChromoformerClassifier().eval()
        t_ref = time_epoch(lambda i: ref(*ref_batch(data, i)), chunks[:2])
    n = len(idx_all)
    rows.append(
        (
            f"score {n} genes, cpu",
            "onnxruntime (chromaformer-score's engine)",
            t_ort,
            f"{n / t_ort:.1f} genes/s",
        )
    )
    rows.append(
        (f"score {n} genes, cpu", "PyTorch eager, ours", t_eager, f"{n / t_eager:.1f} genes/s")
    )
    per = t_ref / sum(len(c) for c in chunks[:2])
    rows.append(
        (
            f"score {n} genes, cpu",
            "PyTorch eager, reference",
            per * n,
            f"{1 / per:.1f} genes/s, from 2 batches",
        )
    )
    print("\n| what | method | seconds | note |\n|---|---|---:|---|")
    for what, method, s, note in rows:
        print(f"| {what} | {method} | {s:.2f} | {note or ''} |")


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


if __name__ == "__main__":
    main()
