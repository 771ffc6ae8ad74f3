"""A subpackage that shares its name with the function it exists for (``prepare``,
``explain``): once imported, Python makes the package's attribute of that name the
subpackage, so ``chromaformer.prepare(...)`` must work on the module too."""

from __future__ import annotations

import sys
import types
from typing import Any


def make_callable(module_name: str, function_name: str) -> None:
    """Calling the module ``module_name`` calls its ``function_name``."""

    class _CallableModule(types.ModuleType):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            return getattr(self, function_name)(*args, **kwargs)

    sys.modules[module_name].__class__ = _CallableModule


__all__ = ["make_callable"]
