"""Data sets as the engines take them: the benchmark layout, Chromoformer's layout
(the files themselves are read by ``chromaformer.formats``).

No torch here: what these return feeds training (torch) and scoring (onnxruntime)
alike. The real samples shipped with the package live beside these modules
(``attentivechrome_toy/``, ``deepdiff_sample/``).
"""

from .benchmark import PACKAGE_DATA, CellDataset, list_cell_types, load_benchmark, load_split
from .chromoformer import ChromoformerSet, joint_inputs, load_chromoformer, read_meta

__all__ = [
    "PACKAGE_DATA",
    "CellDataset",
    "ChromoformerSet",
    "joint_inputs",
    "list_cell_types",
    "load_benchmark",
    "load_chromoformer",
    "load_split",
    "read_meta",
]
