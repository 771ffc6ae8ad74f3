"""Models trained by the project and shipped with it, found by name.

Each is an ``<name>.onnx`` from ``chromaformer-export`` with its model card
(``<name>.model.json``: what it was trained on, its split, its validation metrics and the
baselines on the same genes). ``chromaformer models`` lists them; ``--model NAME`` (or
:func:`resolve_model`) finds one wherever a model path is taken. No torch here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Union

from ..errors import DataError
from ..metrics import HEADLINE_METRIC

PRETRAINED = Path(__file__).resolve().parent


def pretrained_names() -> list[str]:
    """Names of the shipped models, sorted."""
    return sorted(p.stem for p in PRETRAINED.glob("*.onnx"))


def list_models() -> list[dict[str, Any]]:
    """One summary per shipped model: name, path, and its card's facts."""
    out = []
    for name in pretrained_names():
        path = PRETRAINED / f"{name}.onnx"
        card = json.loads((PRETRAINED / f"{name}.model.json").read_text())
        info = card["info"]
        key, label = HEADLINE_METRIC[info["task"]]
        out.append(
            {
                "name": name,
                "path": str(path),
                "architecture": card["metadata_props"].get("ensemble", info["architecture"]),
                "task": info["task"],
                "trained_on": info.get("trained_on", ""),
                "validation": info.get("validation_metrics", {}),
                "metric": key,
                "metric_name": label,
                "baselines": info.get("baselines", {}),
                "layout": card["schema"]["inputs"],
            }
        )
    return out


def resolve_model(model: Union[str, os.PathLike]) -> str:
    """A model file's path: ``model`` itself when it is a file, else the shipped model of
    that name; a clear error naming both otherwise."""
    path = os.fspath(model)
    if os.path.isfile(path) or path.endswith(".onnx") or os.sep in path:
        return path
    shipped = PRETRAINED / f"{path}.onnx"
    if shipped.is_file():
        return str(shipped)
    raise DataError(
        f"{path}: no such model file, and no shipped model of that name "
        f"(shipped: {', '.join(pretrained_names()) or 'none'}; see chromaformer models)"
    )


__all__ = ["PRETRAINED", "list_models", "pretrained_names", "resolve_model"]
