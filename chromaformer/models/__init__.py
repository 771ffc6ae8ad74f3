"""The networks (PyTorch) and their configs.

The configs (:mod:`.config`) need no torch; the networks, checkpoints and everything
else here import torch on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from .config import (
    ALIASES,
    ARCHITECTURES,
    AnyConfig,
    ChromoformerConfig,
    ModelConfig,
    canonical_arch,
    config_from_dict,
    config_of,
)

_LAZY = {
    "BiLSTMAttention": "architectures",
    "BiLSTMTransformer": "architectures",
    "DeepChromeCNN": "architectures",
    "Hybrid": "architectures",
    "build_model": "architectures",
    "Chromoformer": "chromoformer",
    "load_reference_state": "chromoformer",
    "load_model": "checkpoint",
    "read_checkpoint": "checkpoint",
    "save_checkpoint": "checkpoint",
    "model_from_checkpoint": "checkpoint",
    "build_network": "checkpoint",
    "BEST": "checkpoint",
    "LAST": "checkpoint",
}

__all__ = [
    "ALIASES",
    "ARCHITECTURES",
    "AnyConfig",
    "ChromoformerConfig",
    "ModelConfig",
    "canonical_arch",
    "config_of",
    "config_from_dict",
    *sorted(_LAZY),
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
