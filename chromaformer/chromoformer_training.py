"""Training Chromoformer (clf / reg / diff) with cross-validation by chromosome.

Folds follow the reference: genes carry a ``split`` (1-4, whole chromosomes); fold k
trains on the other three splits and validates on split k. The optimiser, learning
rate and schedule are the reference's (AdamW 3e-5, StepLR gamma 0.87 per epoch, batch
64). Inputs are binned once (and cached on disk when asked), so epochs never touch
the npy files.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from torch import nn

from .chromoformer_data import ChromoformerSet, joint_inputs, load_chromoformer
from .errors import DataError
from .models.checkpoint import BEST, LAST, save_checkpoint
from .models.chromoformer import Chromoformer, ChromoformerConfig


@dataclass
class ChromoformerTrainConfig:
    meta: list[str]
    npy_dir: list[str]
    out: str
    task: str = "clf"
    fold: int = 1
    epochs: int = 10
    batch_size: int = 64
    lr: float = 3e-5
    gamma: float = 0.87
    seed: int = 123
    device: str = "auto"
    quiet: bool = False
    threads: Optional[int] = None
    cache_dir: Optional[str] = None
    model: dict = field(default_factory=dict)  # ChromoformerConfig overrides


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DataError("--device cuda: torch sees no CUDA GPU")
    return torch.device(name)


def load_task_data(tc: ChromoformerTrainConfig) -> tuple[list[ChromoformerSet], np.ndarray]:
    """The binned sets (one, or two cells for diff) and the regression/class target."""
    want = 2 if tc.task == "diff" else 1
    if len(tc.meta) != want or len(tc.npy_dir) != want:
        raise DataError(f"task {tc.task} takes {want} --meta and {want} --npy-dir "
                        f"(got {len(tc.meta)} and {len(tc.npy_dir)})")
    first = load_chromoformer(tc.meta[0], tc.npy_dir[0], threads=tc.threads,
                              cache_dir=tc.cache_dir)
    if tc.task != "diff":
        return [first], first.target(tc.task)
    import pandas as pd

    other_ids = set(pd.read_csv(tc.meta[1], usecols=["gene_id"], dtype=str).gene_id)
    keep = np.array([i for i, g in enumerate(first.gene_ids) if g in other_ids])
    if not len(keep):
        raise DataError(f"{tc.meta[0]} and {tc.meta[1]} share no gene id")
    a = first.subset(keep)
    b = load_chromoformer(tc.meta[1], tc.npy_dir[1], genes=a.gene_ids, threads=tc.threads,
                          cache_dir=tc.cache_dir)
    return [a, b], b.target("reg") - a.target("reg")


def batches(sets: list[ChromoformerSet], idx: np.ndarray, size: int, device: torch.device):
    for k in range(0, len(idx), size):
        part = idx[k:k + size]
        yield part, [torch.from_numpy(np.ascontiguousarray(x)).to(device)
                     for x in joint_inputs(sets, part)]


def predict(model: Chromoformer, sets: list[ChromoformerSet], idx: np.ndarray,
            batch_size: int, device: torch.device) -> np.ndarray:
    """clf: P(class 1); reg: log2(expression + 1); diff: log2 fold change B/A."""
    key = {"clf": "probability", "reg": "prediction", "diff": "log2fc"}[model.config.task]
    model.eval()
    out = []
    with torch.no_grad():
        for _, xs in batches(sets, idx, batch_size, device):
            out.append(model(*xs)[key].float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)


def task_metrics(task: str, target: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    if task == "clf":
        from .metrics import auroc_aupr

        m = auroc_aupr(target, pred)
        return {"auroc": m["auroc"], "aupr": m["aupr"]}
    mse = float(np.mean((pred - target) ** 2))
    r = float(np.corrcoef(pred, target)[0, 1]) if len(target) > 1 and np.std(pred) > 0 \
        else float("nan")
    ss = float(np.sum((target - target.mean()) ** 2))
    r2 = 1 - float(np.sum((target - pred) ** 2)) / ss if ss > 0 else float("nan")
    return {"mse": mse, "pearson_r": r, "r2": r2}


def _better(task: str, new: dict[str, float], best: Optional[dict[str, float]]) -> bool:
    if best is None:
        return True
    if task == "clf":
        return np.nan_to_num(new["auroc"], nan=-1) > np.nan_to_num(best["auroc"], nan=-1)
    return new["mse"] < best["mse"]


def train_chromoformer(tc: ChromoformerTrainConfig) -> dict[str, Any]:
    if tc.task not in ("clf", "reg", "diff"):
        raise DataError(f"--task must be clf, reg or diff, got {tc.task!r}")
    if not 1 <= tc.fold <= 4:
        raise DataError(f"--fold must be 1-4 (the reference's 4 chromosome folds), got {tc.fold}")
    torch.manual_seed(tc.seed)
    np.random.seed(tc.seed)
    device = _device(tc.device)
    t_load = time.perf_counter()
    sets, target = load_task_data(tc)
    load_s = time.perf_counter() - t_load
    split = sets[0].split
    val = np.flatnonzero(split == tc.fold)
    train = np.flatnonzero((split != tc.fold) & (split >= 1) & (split <= 4))
    if not len(val) or not len(train):
        raise DataError(f"fold {tc.fold}: {len(train)} training and {len(val)} validation "
                        "genes (the meta's split column assigns genes to folds 1-4)")
    cfg = ChromoformerConfig(task=tc.task, **tc.model)
    if sets[0].promoters[cfg.bin_sizes[0]].shape[-1] != cfg.n_marks:
        cfg.marks = tuple(f"mark{i + 1}" for i in range(sets[0].promoters[cfg.bin_sizes[0]]
                                                        .shape[-1]))
    model = Chromoformer(cfg).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=tc.lr)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=tc.gamma)
    loss_fn = nn.CrossEntropyLoss() if tc.task == "clf" else nn.MSELoss()
    key = "logits" if tc.task == "clf" else ("prediction" if tc.task == "reg" else "log2fc")
    y_all = torch.from_numpy(target.astype(np.int64 if tc.task == "clf" else np.float32))
    out = Path(tc.out)
    out.mkdir(parents=True, exist_ok=True)
    history, best = [], None
    rng = np.random.default_rng(tc.seed)
    bar = None
    if not tc.quiet:
        import sys

        from tqdm import tqdm

        bar = tqdm(total=tc.epochs * len(train), unit="gene", file=sys.stderr, leave=False)
    for epoch in range(1, tc.epochs + 1):
        t0 = time.perf_counter()
        model.train()
        order = rng.permutation(train)
        total, seen = 0.0, 0
        for part, xs in batches(sets, order, tc.batch_size, device):
            opt.zero_grad()
            loss = loss_fn(model(*xs)[key], y_all[part].to(device))
            loss.backward()
            opt.step()
            total += loss.item() * len(part)
            seen += len(part)
            if bar is not None:
                bar.update(len(part))
                bar.set_description(f"epoch {epoch} loss {total / seen:.4f}")
        sched.step()
        epoch_s = time.perf_counter() - t0
        pred = predict(model, sets, val, 256, device)
        valid = task_metrics(tc.task, target[val], pred)
        row = {"epoch": epoch, "train_loss": total / max(seen, 1), "seconds": epoch_s, **valid}
        history.append(row)
        extra = dict(epoch=epoch, valid=valid, fold=tc.fold, task=tc.task,
                     train_config=asdict(tc), cell_types=[Path(m).parent.name for m in tc.meta])
        save_checkpoint(out / LAST, model, **extra)
        if _better(tc.task, valid, best):
            best = valid
            save_checkpoint(out / BEST, model, **extra)
    if bar is not None:
        bar.close()
    result = {"task": tc.task, "fold": tc.fold, "device": str(device),
              "genes": {"train": int(len(train)), "valid": int(len(val))},
              "load_seconds": load_s, "history": history, "best_valid": best}
    (out / "metrics.json").write_text(json.dumps(result, indent=2, default=float) + "\n")
    return result
