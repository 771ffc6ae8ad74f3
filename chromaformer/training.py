"""Training and evaluation of the bin models, on one process or under torchrun (DDP).

Data live on the device as contiguous tensors; batches are index slices of a seeded
permutation (no per-sample Python). The best checkpoint is the one with the best mean
per-cell validation AUROC; ``last.pt`` holds everything needed to resume.
"""
from __future__ import annotations

import csv
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from . import __version__
from ._atomic import atomic_path
from .datasets import CellDataset, load_benchmark, load_split
from .errors import DataError
from .metrics import evaluate, logistic_baseline
from .models import ModelConfig, build_model, read_checkpoint, save_checkpoint
from .models.checkpoint import model_from_checkpoint
from .models.checkpoint import BEST, LAST


@dataclass
class TrainConfig:
    """Everything a run needs besides the model config; saved in ``config.json``."""

    data_root: str
    cell_types: Sequence[str]
    out: str
    epochs: int = 30
    batch_size: int = 16
    lr: float = 2e-4
    clip: float = 1.0
    seed: int = 1
    device: str = "auto"
    patience: Optional[int] = None
    resume: bool = False
    quiet: bool = False
    threads: Optional[int] = None
    amp: bool = True
    eval_batch_size: int = 2048
    extra: dict[str, Any] = field(default_factory=dict)


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda when available, else cpu; a clear error for missing CUDA."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DataError(f"--device {name}: CUDA is not available here (torch {torch.__version__}, "
                        f"cuda build: {torch.version.cuda or 'none'}); use --device cpu")
    if name != "cpu" and not name.startswith("cuda"):
        raise DataError(f"unknown device {name!r}; expected auto, cpu or cuda")
    return torch.device(name)


class _Dist:
    """Process group facts; a single process when not launched by torchrun."""

    def __init__(self, device: torch.device) -> None:
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.active = self.world > 1
        if self.active and not torch.distributed.is_initialized():
            backend = "nccl" if device.type == "cuda" else "gloo"
            torch.distributed.init_process_group(backend)

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.active:
            torch.distributed.barrier()


@torch.no_grad()
def predict(model: torch.nn.Module, counts: torch.Tensor, batch_size: int = 2048) -> np.ndarray:
    """Probabilities for ``counts`` (genes, bins, marks), in eval mode, batched."""
    was_training = model.training
    model.eval()
    out = [torch.sigmoid(model(counts[i:i + batch_size])["logit"].float()).cpu()
           for i in range(0, len(counts), batch_size)]
    model.train(was_training)
    return torch.cat(out).numpy() if out else np.empty(0, np.float32)


def _check_layout(ds: CellDataset, cfg: ModelConfig, where: str) -> None:
    bins, marks = ds.counts.shape[1], ds.counts.shape[2]
    if bins != cfg.bins or marks != cfg.n_marks:
        raise DataError(f"{where}: the data have {bins} bins x {marks} marks but the model "
                        f"expects {cfg.bins} bins x {cfg.n_marks} marks ({', '.join(cfg.marks)})")


def _write_json(path: Path, obj: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=float) + "\n")


def _plot_curves(out: Path, labels: np.ndarray, scores: np.ndarray, cell: np.ndarray,
                 cell_types: Sequence[str], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import precision_recall_curve, roc_curve

    for kind in ("roc", "pr"):
        fig, ax = plt.subplots(figsize=(5, 5))
        groups = [(ct, cell == i) for i, ct in enumerate(cell_types)]
        if len(cell_types) > 1:
            groups.append(("pooled", np.ones_like(labels, dtype=bool)))
        for name, mask in groups:
            y, s = labels[mask], scores[mask]
            if len(np.unique(y)) < 2:
                continue
            if kind == "roc":
                fpr, tpr, _ = roc_curve(y, s)
                ax.plot(fpr, tpr, label=name)
            else:
                prec, rec, _ = precision_recall_curve(y, s)
                ax.plot(rec, prec, label=name)
        if kind == "roc":
            ax.plot([0, 1], [0, 1], "k--", lw=0.8)
            ax.set(xlabel="false positive rate", ylabel="true positive rate")
        else:
            ax.set(xlabel="recall", ylabel="precision")
        ax.set_title(f"{title}: {kind.upper()} (test)")
        ax.legend(loc="lower right" if kind == "roc" else "lower left", fontsize=8)
        fig.tight_layout()
        with atomic_path(out / f"{kind}.png") as tmp:
            fig.savefig(tmp, format="png", dpi=100)
        plt.close(fig)


def train(tc: TrainConfig, mc: ModelConfig) -> dict[str, Any]:
    """Train ``mc`` on ``tc``'s data; returns (and writes) the run's metrics.

    Writes into ``tc.out``: best.pt, last.pt, config.json, log.csv, metrics.json,
    roc.png, pr.png. Raises DataError/FormatError on bad data or options.
    """
    device = resolve_device(tc.device)
    if tc.threads:
        torch.set_num_threads(tc.threads)
    out = Path(tc.out)
    dist = _Dist(device)
    sets = load_benchmark(tc.data_root, tc.cell_types)
    last_path = out / LAST
    state: Optional[dict[str, Any]] = None
    if tc.resume:
        if not last_path.exists():
            raise DataError(f"{last_path}: nothing to resume (no last.pt in {out})")
        state = torch.load(last_path, map_location="cpu", weights_only=False)
        mc = ModelConfig.from_dict(state["config"])
    for split, ds in sets.items():
        _check_layout(ds, mc, f"{tc.data_root} ({split})")
    train_set, valid_set = sets["train"], sets["valid"]

    torch.manual_seed(tc.seed)
    np.random.seed(tc.seed)
    model = build_model(mc).to(device)
    if state is not None:
        model.load_state_dict(state["state_dict"])
    net: torch.nn.Module = model
    if dist.active:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    opt = torch.optim.Adam(model.parameters(), lr=tc.lr)
    use_amp = tc.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    start_epoch, best_auc, best_epoch, history, stale = 0, -math.inf, -1, [], 0
    if state is not None:
        opt.load_state_dict(state["optimizer"])
        start_epoch, best_auc, best_epoch = state["epoch"], state["best_auc"], state["best_epoch"]
        history, stale = state["history"], state["stale"]
        torch.set_rng_state(state["rng"])
        if use_amp and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])

    x_train = torch.from_numpy(train_set.counts).to(device)
    y_train = torch.from_numpy(train_set.labels.astype(np.float32)).to(device)
    x_valid = torch.from_numpy(valid_set.counts).to(device)
    n = len(train_set)
    if dist.main:
        out.mkdir(parents=True, exist_ok=True)
        _write_json(out / "config.json", {"train": {**asdict(tc), "cell_types": list(tc.cell_types)},
                                          "model": mc.to_dict(), "chromaformer_version": __version__})

    for epoch in range(start_epoch, tc.epochs):
        t0 = time.perf_counter()
        net.train()
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(tc.seed * 100_003 + epoch))
        total, seen = 0.0, 0
        bar = tqdm(range(0, n, tc.batch_size), desc=f"epoch {epoch + 1}/{tc.epochs}",
                   file=sys.stderr, disable=tc.quiet or not dist.main, leave=False, unit="batch")
        for start in bar:
            idx = perm[start:start + tc.batch_size]
            global_n = len(idx)
            if dist.active:
                idx = idx.tensor_split(dist.world)[dist.rank]
            idx = idx.to(device)
            with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
                logits = net(x_train[idx])["logit"].float()
            # sum / global batch * world: DDP's mean over ranks gives the global mean
            loss = F.binary_cross_entropy_with_logits(logits, y_train[idx], reduction="sum")
            loss = loss * (dist.world / global_n)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
            if tc.clip and tc.clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), tc.clip)
            scaler.step(opt)
            scaler.update()
            total += float(loss.detach()) * global_n / dist.world
            seen += global_n
            bar.set_postfix(loss=f"{total / seen:.4f}", refresh=False)
        train_seconds = time.perf_counter() - t0
        valid = evaluate(valid_set.labels, predict(model, x_valid, tc.eval_batch_size),
                         valid_set.cell, valid_set.cell_types)
        improved = best_epoch < 0 or valid["mean_auroc"] > best_auc
        if improved:
            best_auc, best_epoch, stale = valid["mean_auroc"], epoch + 1, 0
        else:
            stale += 1
        row = {"epoch": epoch + 1, "train_loss": total / max(seen, 1),
               "valid_mean_auroc": valid["mean_auroc"], "valid_mean_aupr": valid["mean_aupr"],
               "epoch_seconds": train_seconds}
        history.append(row)
        if dist.main:
            if improved:
                save_checkpoint(out / BEST, model, epoch=epoch + 1, valid=valid,
                                cell_types=list(tc.cell_types))
            save_checkpoint(last_path, model, epoch=epoch + 1, optimizer=opt.state_dict(),
                            best_auc=best_auc, best_epoch=best_epoch, history=history,
                            stale=stale, rng=torch.get_rng_state(),
                            scaler=scaler.state_dict() if use_amp else None)
            with atomic_path(out / "log.csv") as tmp, open(tmp, "w", newline="") as fh:
                writer = csv.DictWriter(fh, fieldnames=list(row))
                writer.writeheader()
                writer.writerows(history)
            if not tc.quiet:
                print(f"epoch {epoch + 1}/{tc.epochs}: loss {row['train_loss']:.4f}, valid mean "
                      f"AUROC {valid['mean_auroc']:.4f}{' *' if improved else ''} "
                      f"({train_seconds:.1f} s)", file=sys.stderr)
        dist.barrier()
        if tc.patience is not None and stale >= tc.patience:
            if dist.main and not tc.quiet:
                print(f"early stop: no improvement for {tc.patience} epochs", file=sys.stderr)
            break

    if not dist.main:
        return {}
    metrics = evaluate_run(out, tc.data_root, tc.cell_types, sets=sets, device=device,
                           batch_size=tc.eval_batch_size)
    metrics.update({"best_epoch": best_epoch, "epochs_run": len(history),
                    "epoch_seconds": [h["epoch_seconds"] for h in history],
                    "device": str(device), "world_size": dist.world})
    _write_json(out / "metrics.json", metrics)
    return metrics


def evaluate_run(run: os.PathLike | str, data_root: str, cell_types: Sequence[str], *,
                 sets: Optional[dict[str, CellDataset]] = None, device: str | torch.device = "cpu",
                 batch_size: int = 2048, plots: bool = True) -> dict[str, Any]:
    """Test metrics of a saved model beside the logistic-regression baseline."""
    run = Path(run)
    device = resolve_device(device) if isinstance(device, str) else device
    ckpt = read_checkpoint(run)
    model = model_from_checkpoint(ckpt).to(device)
    cfg: ModelConfig = model.config
    if sets is None:
        sets = {"train": load_split(data_root, cell_types, "train"),
                "test": load_split(data_root, cell_types, "test")}
    test = sets["test"]
    _check_layout(test, cfg, f"{data_root} (test)")
    scores = predict(model, torch.from_numpy(test.counts).to(device), batch_size)
    base = logistic_baseline(sets["train"].counts, sets["train"].labels, test.counts)
    result = {"model": cfg.arch, "cell_types": list(test.cell_types),
              "test": evaluate(test.labels, scores, test.cell, test.cell_types),
              "baseline_logreg": evaluate(test.labels, base, test.cell, test.cell_types),
              "best_valid": ckpt.get("valid")}
    if plots and run.is_dir():
        _plot_curves(run, test.labels, scores, test.cell, test.cell_types, cfg.arch)
    return result
