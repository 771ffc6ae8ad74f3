"""chromaformer: learn the histone code from histone-mark signal around the TSS.

Importing the package is light (numpy and the C++ core); torch-based parts (training,
export, the networks) load on first use, and scoring never needs torch.

The layout of the package follows its layers, lowest first: ``_util`` (torch-free
helpers: the machine, atomic outputs, figures, progress), ``layout`` and ``contract``
(facts), ``formats`` (every file format, read and written), ``data`` (data sets),
``models`` (networks and configs), ``families`` (what each model family tells the
engines), ``training`` / ``export`` / ``scoring`` (one engine each), ``explain``
(attributions, what-if), ``prepare`` (a lab's tracks -> inputs), ``simulate``, ``demo``,
``cli``.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._version import __version__
from .contract import ModelInfo
from .data import (
    CellDataset,
    ChromoformerSet,
    list_cell_types,
    load_benchmark,
    load_chromoformer,
    load_split,
)
from .errors import DataError, FormatError
from .formats import Bins, iter_bins, read_bins, write_bins
from .layout import BENCHMARK_BINS, BENCHMARK_MARKS, BIN_SIZE

# Public names that import torch, onnx or the simulator load on first use.
_LAZY = {
    "train": "training",
    "TrainConfig": "training",
    "evaluate_run": "training",
    "load_model": "models",
    "export_onnx": "export",
    "Scorer": "scoring",
    "score": "scoring",
    "predict": "scoring",
    "explain": "explain",
    "perturb": "explain",
    "prepare": "prepare",
    "simulate_genome": "simulate",
    "write_simulated": "simulate",
    "simulate_chromoformer": "simulate",
    "simulate_samples": "simulate",
    "summarize": "scoring.summary",
    "run_demo": "demo",
}

__all__ = [
    "__version__",
    "BENCHMARK_BINS",
    "BENCHMARK_MARKS",
    "BIN_SIZE",
    "Bins",
    "CellDataset",
    "ChromoformerSet",
    "DataError",
    "FormatError",
    "ModelInfo",
    "iter_bins",
    "list_cell_types",
    "load_benchmark",
    "load_chromoformer",
    "load_split",
    "read_bins",
    "write_bins",
    *sorted(_LAZY),
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
