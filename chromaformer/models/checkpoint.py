"""Checkpoints carry the model config and the package version: enough to rebuild."""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any, Union

import torch
from torch import nn

from .._util.atomic import atomic_path
from .._version import __version__
from ..errors import DataError
from .config import AnyConfig, ChromoformerConfig, EnsembleConfig, config_from_dict, config_of

BEST = "best.pt"
LAST = "last.pt"


def build_network(cfg: AnyConfig) -> nn.Module:
    """A freshly initialised network for a config of either family."""
    if isinstance(cfg, ChromoformerConfig):
        from .chromoformer import Chromoformer

        return Chromoformer(cfg)
    if isinstance(cfg, EnsembleConfig):
        from .ensemble import Ensemble

        return Ensemble(cfg)
    from .architectures import build_model

    return build_model(cfg)


def save_checkpoint(path: Union[str, os.PathLike], model: nn.Module, **extra: Any) -> None:
    """Write config + weights (+ anything in ``extra``) atomically."""
    state = {
        "config": config_of(model).to_dict(),
        "state_dict": model.state_dict(),
        "chromaformer_version": __version__,
        **extra,
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def read_checkpoint(path: Union[str, os.PathLike]) -> dict[str, Any]:
    """The checkpoint dict of a file, or of a run folder's best model (tensors and plain
    containers only: nothing in the file is executed)."""
    p = Path(path)
    if p.is_dir():
        p = p / BEST
    if not p.exists():
        raise FileNotFoundError(f"{p}: no checkpoint (expected a run folder or a .pt file)")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        # weights_only refuses anything but tensors and plain values: a pickle payload
        # (code) ends here, unrun
        noise = ("Weights only load failed", "Please file an issue", "Check the documentation")
        lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
        why = [ln for ln in lines if not ln.startswith(noise)] or ["unpickling failed"]
        raise DataError(
            f"{p}: refused: not a checkpoint of tensors and plain values ({why[0]}); "
            "nothing in it was run"
        ) from None
    except (RuntimeError, EOFError, ValueError, zipfile.BadZipFile) as err:
        first = str(err).strip().splitlines()
        raise DataError(
            f"{p}: not a readable checkpoint ({first[0] if first else type(err).__name__})"
        ) from None
    if not isinstance(state, dict):
        raise DataError(f"{p}: not a checkpoint (it holds a {type(state).__name__}, not a dict)")
    return state


def load_model(path: Union[str, os.PathLike]) -> nn.Module:
    """Rebuild a trained model from a run folder or checkpoint, with no flags needed.

    Returns the model with its weights, in eval mode, on CPU. Bin models take raw counts
    ``(batch, bins, marks)``; Chromoformer takes the inputs of its ``input_names()``.
    """
    return model_from_checkpoint(read_checkpoint(path))


def model_from_checkpoint(ckpt: dict[str, Any]) -> nn.Module:
    """The model of a checkpoint dict (from :func:`read_checkpoint`), in eval mode.

    Also takes a checkpoint of the reference Chromoformer package (its ``net``
    state_dict): the task follows from the head's size (2 outputs: clf, 1: reg).
    """
    if "config" not in ckpt and isinstance(ckpt.get("net"), dict):
        from .chromoformer import Chromoformer, load_reference_state

        net = {k.removeprefix("module."): v for k, v in ckpt["net"].items()}
        head = net.get("fc_head.2.weight")
        if head is None:
            raise ValueError("not a Chromoformer checkpoint: its 'net' has no fc_head")
        ref = Chromoformer(ChromoformerConfig(task="clf" if head.shape[0] == 2 else "reg"))
        load_reference_state(ref, net)
        return ref.eval()
    model = build_network(config_from_dict(ckpt["config"]))
    model.load_state_dict(ckpt["state_dict"])
    return model.eval()
