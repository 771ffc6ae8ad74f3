"""Module paths of earlier releases, kept importable with a one-line deprecation warning
naming the new spelling (``import chromaformer.onnx_export`` -> ``chromaformer.export``)."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings
from typing import Any, Optional, Sequence

#: old module -> the module that holds its names now
MOVED = {
    "chromaformer.constants": "chromaformer.layout",
    "chromaformer.io": "chromaformer.data.bins",
    "chromaformer.datasets": "chromaformer.data.benchmark",
    "chromaformer.summary": "chromaformer.data.summary",
    "chromaformer.chromoformer_data": "chromaformer.data.chromoformer",
    "chromaformer.chromoformer_training": "chromaformer.families.chromoformer",
    "chromaformer.chromoformer_scoring": "chromaformer.scoring",
    "chromaformer.chromoformer_sim": "chromaformer.simulate.chromoformer",
    "chromaformer.onnx_export": "chromaformer.export.onnx",
    "chromaformer.annotation": "chromaformer.prepare.annotation",
    "chromaformer.tracks": "chromaformer.prepare.tracks",
}


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(
        self, name: str, path: Optional[Sequence[str]] = None, target: Any = None
    ) -> Optional[importlib.machinery.ModuleSpec]:
        if name in MOVED:
            return importlib.util.spec_from_loader(name, self)
        return None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> Any:
        return None  # the default: a fresh module, filled below

    def exec_module(self, module: Any) -> None:
        new = MOVED[module.__name__]
        warnings.warn(f"{module.__name__} is now {new}", DeprecationWarning, stacklevel=2)
        target = importlib.import_module(new)
        module.__dict__.update({k: v for k, v in vars(target).items() if not k.startswith("__")})


def install() -> None:
    if not any(isinstance(f, _Alias) for f in sys.meta_path):
        sys.meta_path.insert(0, _Alias())
