"""The model families plugged into the one engine: ``bins`` (the bin-CSV models:
AttentiveChrome, BiLSTM+Transformer, hybrid, DeepChrome CNN) and ``chromoformer``."""

from __future__ import annotations

from typing import Any, Union

from ..errors import DataError
from ..models.config import ALIASES, ChromoformerConfig
from .base import Chunk, Family, Split, TrainData, check_options
from .bins import BinsFamily
from .chromoformer import ChromoformerFamily

FAMILIES: dict[str, Family] = {f.name: f for f in (BinsFamily(), ChromoformerFamily())}


def get_family(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        raise DataError(
            f"unknown model family {name!r}; expected one of {', '.join(FAMILIES)}"
        ) from None


def family_of(arch: str) -> Family:
    """The family of an architecture name (the reference work's spellings too)."""
    arch = ALIASES.get(arch, arch)
    for fam in FAMILIES.values():
        if arch in fam.architectures:
            return fam
    known = [a for f in FAMILIES.values() for a in f.architectures] + list(ALIASES)
    raise DataError(f"unknown model {arch!r}; expected one of {', '.join(known)}")


def family_for(model: Union[str, Any]) -> Family:
    """The family of an architecture name or a model config object."""
    if isinstance(model, str):
        return family_of(model)
    return FAMILIES["chromoformer" if isinstance(model, ChromoformerConfig) else "bins"]


__all__ = [
    "FAMILIES",
    "Chunk",
    "Family",
    "Split",
    "TrainData",
    "check_options",
    "family_for",
    "family_of",
    "get_family",
]
