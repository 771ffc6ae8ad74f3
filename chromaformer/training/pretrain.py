"""Making the shipped starting weights (``chromaformer/pretrained/start/``): simulated
genes, the ``bins`` recipe, one file per architecture. It trains, so it imports the
engine; nothing in the package imports it back (the engine reads the weights through
:mod:`chromaformer.training.start`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Sequence

from ..models.checkpoint import model_from_checkpoint, read_checkpoint, save_checkpoint
from ..models.config import ARCHITECTURES
from ..simulate import write_simulated
from .config import RECIPES, TrainConfig
from .engine import train
from .start import START_GENES


def build_starting_weights(
    out_dir: os.PathLike,
    work_dir: os.PathLike,
    archs: Sequence[str] = ARCHITECTURES,
    *,
    genes: Optional[dict[str, tuple[int, int]]] = None,
    epochs: Optional[int] = None,
    threads: Optional[int] = 1,
    quiet: bool = False,
) -> list[Path]:
    """Make the starting weights that ``init`` ``auto`` finds: simulate ``genes`` (split
    -> (genes, seed); default :data:`START_GENES`) in ``work_dir``, train each of
    ``archs`` on them with the ``bins`` recipe and the model options it uses on a few
    genes (so that a few-genes run's model is theirs), and write ``<arch>.pt`` into
    ``out_dir`` (weights, config, and what they were trained on and scored).
    ``epochs``: the recipe's unless given. ``chromaformer/pretrained/start/`` holds this
    function's output with the defaults."""
    work, out = Path(work_dir), Path(out_dir)
    splits = genes or START_GENES
    root = work / "sim"
    for split, (n, seed) in splits.items():
        write_simulated(root / "SIM" / "classification" / f"{split}.csv", n, seed=seed)
    trained_on = "simulated genes (chromaformer simulate, benchmark layout): " + ", ".join(
        f"{split} {n} (--seed {seed})" for split, (n, seed) in splits.items()
    )
    made = []
    for arch in archs:
        opts = dict(RECIPES["bins"]["few_genes_options"].get(arch, {}))
        tc = TrainConfig(
            out=str(work / arch),
            data_root=str(root),
            cell_types=["SIM"],
            init="none",
            epochs=epochs,
            threads=threads,
            quiet=quiet,
            plots=False,
        )
        metrics = train(tc, arch, options=opts)
        best = read_checkpoint(work / arch)
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"{arch}.pt"
        save_checkpoint(
            path,
            model_from_checkpoint(best),
            trained_on=trained_on,
            valid=best["valid"],
            test={
                "auroc": metrics["test"]["mean_auroc"],
                "linear": metrics["baseline"]["mean_auroc"],
            },
        )
        made.append(path)
    return made


__all__ = ["build_starting_weights"]
