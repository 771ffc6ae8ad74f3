"""Where a run's network starts: random weights, the shipped starting weights, or a
checkpoint's (fine-tuning).

The shipped starting weights (``chromaformer/pretrained/start/<arch>.pt``) are bin
architectures trained by the ``bins`` recipe on simulated genes of the benchmark layout
(100 bins of 100 bp, the five benchmark marks; :data:`START_GENES`). The ``bins``
recipe starts from them when the training genes are fewer than one batch (``init``
``auto``), where a random start learns little from a few real genes (measured in
docs/guide/training.md). The input normalisation is not part of them: it lives in the model
config and is always learned from the run's own training genes.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, Optional

from torch import nn

from ..errors import DataError
from ..models.checkpoint import BEST, read_checkpoint
from ..models.config import DATA_STATS, AnyConfig, config_from_dict
from ..pretrained import PRETRAINED

#: The folder of the shipped starting weights.
START_DIR = PRETRAINED / "start"
#: ``init`` values besides a checkpoint path.
INIT_CHOICES = ("auto", "none")
#: What the shipped starting weights learn from: simulated genes (train, valid, test)
#: and the seed of each split's ``chromaformer simulate``.
START_GENES = {"train": (4000, 11), "valid": (1000, 12), "test": (1000, 13)}
#: The config fields whose difference makes another network's weights mean something
#: else: a checkpoint to start from must agree on these (and on the weights' shapes).
MEANING = ("arch", "marks", "bins", "bin_size", "input_transform", "task")


def _complete(cfg: dict[str, Any]) -> dict[str, Any]:
    """``cfg`` with the defaults of fields newer than the file filled in (a file saved
    before a field existed means that field's default)."""
    return config_from_dict(cfg).to_dict()


def _architecture(cfg: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in _complete(cfg).items() if k not in DATA_STATS}


@functools.cache
def _shipped() -> tuple[tuple[Path, dict[str, Any]], ...]:
    """Each shipped file with its model config, the input statistics aside (read once per
    process: cross-validation asks once per fold and seed)."""
    return tuple(
        (path, _architecture(read_checkpoint(path)["config"]))
        for path in sorted(START_DIR.glob("*.pt"))
    )


def shipped_start(mc: AnyConfig) -> Optional[Path]:
    """The shipped starting weights made for exactly ``mc``'s architecture, hyperparameters
    and layout (the input normalisation aside), or None."""
    want = _architecture(mc.to_dict())
    return next((path for path, cfg in _shipped() if cfg == want), None)


def resolve_start(init: str, mc: AnyConfig, few_genes: bool) -> Optional[Path]:
    """The checkpoint a run starts from, or None for random weights. ``init``: ``auto``
    (the shipped starting weights when the training genes are fewer than one batch and
    some match ``mc``), ``none``, or a checkpoint file or run folder."""
    if init == "none":
        return None
    if init == "auto":
        return shipped_start(mc) if few_genes else None
    path = Path(init)
    path = path / BEST if path.is_dir() else path
    if not path.is_file():
        raise DataError(
            f"{path}: no such checkpoint (init takes {', '.join(INIT_CHOICES)}, or a "
            "checkpoint file or run folder)"
        )
    return path


def load_start(network: nn.Module, path: os.PathLike, mc: AnyConfig) -> None:
    """Load ``path``'s weights into ``network`` (built from ``mc``); a one-line DataError
    when they are of another model or layout."""
    state = read_checkpoint(path)
    theirs, ours = state.get("config"), mc.to_dict()
    if not isinstance(theirs, dict) or "state_dict" not in state:
        raise DataError(f"{path}: not a model checkpoint (no config and weights)")
    try:
        theirs = _complete(theirs)
    except (TypeError, ValueError) as err:
        raise DataError(f"{path}: not a model checkpoint of this version ({err})") from None
    differ = [k for k in MEANING if theirs.get(k) != ours.get(k)]
    if differ:
        k = differ[0]
        raise DataError(
            f"{path}: cannot start from this checkpoint: its {k} is {theirs.get(k)!r}, "
            f"this run's is {ours.get(k)!r}"
        )
    try:
        network.load_state_dict(state["state_dict"])
    except RuntimeError as err:
        first = str(err).strip().splitlines()
        detail = " ".join(ln.strip() for ln in first[1:3]) or first[0]
        raise DataError(
            f"{path}: cannot start from this checkpoint: its weights do not fit this run's "
            f"model ({detail})"
        ) from None


__all__ = [
    "START_GENES",
    "INIT_CHOICES",
    "START_DIR",
    "load_start",
    "resolve_start",
    "shipped_start",
]
