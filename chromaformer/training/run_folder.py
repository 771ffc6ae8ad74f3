"""A training run's folder, written atomically: config.json, log.csv (one row per epoch),
best.pt (the best validation metric so far), last.pt (everything a resume needs) and
metrics.json."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Optional

import torch

from .._util.atomic import atomic_path
from .._version import __version__
from ..models.checkpoint import BEST, LAST, save_checkpoint


def write_json(path: Path, obj: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=float) + "\n")


def write_config(out: Path, train: dict[str, Any], model: dict[str, Any]) -> None:
    """config.json: the training config and the model's, with the package version."""
    out.mkdir(parents=True, exist_ok=True)
    write_json(
        out / "config.json", {"train": train, "model": model, "chromaformer_version": __version__}
    )


def scalars(prefix: str, metrics: dict[str, Any]) -> dict[str, float]:
    """The numeric entries of ``metrics`` (not its gene count), each under ``prefix``."""
    return {
        f"{prefix}{k}": float(v)
        for k, v in metrics.items()
        if isinstance(v, (int, float)) and k != "genes"
    }


def write_epoch(
    out: Path,
    network: torch.nn.Module,
    history: list[dict[str, Any]],
    *,
    improved: bool,
    valid: dict[str, Any],
    resume: dict[str, Any],
    extra: dict[str, Any],
    judged: Optional[torch.nn.Module] = None,
) -> None:
    """After an epoch: best.pt when it ``improved`` (of ``judged``, the weights validation
    judged, when they are not ``network``'s: their moving average), last.pt of
    ``network`` (with ``resume``: optimiser, scheduler, rng ... state) and log.csv of
    ``history``."""
    epoch = history[-1]["epoch"]
    if improved:
        best = network if judged is None else judged
        save_checkpoint(out / BEST, best, epoch=epoch, valid=valid, **extra)
    save_checkpoint(
        out / LAST, network, epoch=epoch, history=history, valid=valid, **resume, **extra
    )
    with atomic_path(out / "log.csv") as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(history[-1]))
        writer.writeheader()
        writer.writerows(history)
