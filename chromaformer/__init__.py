"""chromaformer: learn the histone code from histone-mark bins around the TSS.

Importing the package is light (numpy and the C++ core); torch-based parts load on
first use.
"""
from __future__ import annotations

__version__ = "0.1.0"

from .constants import BENCHMARK_BINS, BENCHMARK_MARKS, BIN_SIZE
from .datasets import CellDataset, list_cell_types, load_benchmark, load_split
from .errors import DataError, FormatError
from .io import Bins, iter_bins, read_bins, write_bins
from .simulate import simulate_genome, write_simulated

__all__ = [
    "__version__",
    "BENCHMARK_BINS",
    "BENCHMARK_MARKS",
    "BIN_SIZE",
    "Bins",
    "CellDataset",
    "DataError",
    "FormatError",
    "iter_bins",
    "list_cell_types",
    "load_benchmark",
    "load_split",
    "read_bins",
    "simulate_genome",
    "write_bins",
    "write_simulated",
]
