"""Data in: the bin CSV (C++ reader), the benchmark layout, Chromoformer's layout.

No torch here: what these return feeds training (torch) and scoring (onnxruntime)
alike. The real samples shipped with the package live beside these modules
(``attentivechrome_toy/``, ``deepdiff_sample/``).
"""

from .benchmark import PACKAGE_DATA, CellDataset, list_cell_types, load_benchmark, load_split
from .bins import Bins, BinStream, iter_bins, read_bins, write_bins
from .chromoformer import ChromoformerSet, joint_inputs, load_chromoformer, read_meta

__all__ = [
    "PACKAGE_DATA",
    "Bins",
    "BinStream",
    "CellDataset",
    "ChromoformerSet",
    "iter_bins",
    "joint_inputs",
    "list_cell_types",
    "load_benchmark",
    "load_chromoformer",
    "load_split",
    "read_bins",
    "read_meta",
    "write_bins",
]
