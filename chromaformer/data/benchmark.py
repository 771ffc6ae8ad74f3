"""The benchmark layout ``{root}/{EID}/classification/{train,valid,test}.csv`` as data sets.

Several cell types load into one set that keeps each gene's cell type, so that metrics
can be reported per cell type (the field reports the mean of per-cell AUCs).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from .._util.system import PathLike
from ..errors import DataError
from ..formats.bincsv import Bins, MarksArg, read_bins
from ..layout import SPLITS

#: The real samples shipped with the package (see README, "Data").
PACKAGE_DATA = Path(__file__).resolve().parent


@dataclass(frozen=True)
class CellDataset:
    """Genes of one split over one or more cell types.

    counts: float32 ``(genes, bins, marks)``; labels: uint8 ``(genes,)``;
    gene_ids: str ``(genes,)``; cell: int16 ``(genes,)`` index into ``cell_types``.
    """

    counts: np.ndarray
    labels: np.ndarray
    gene_ids: np.ndarray
    cell: np.ndarray
    cell_types: tuple[str, ...]
    marks: tuple[str, ...]
    split: str

    def __len__(self) -> int:
        return int(self.counts.shape[0])

    def of_cell(self, cell_type: str) -> np.ndarray:
        """Boolean mask of the genes of ``cell_type``."""
        return self.cell == self.cell_types.index(cell_type)


def split_path(root: PathLike, cell_type: str, split: str) -> Path:
    """Path of one split file: plain ``.csv`` or, failing that, ``.csv.gz``."""
    base = Path(root) / cell_type / "classification" / f"{split}.csv"
    gz = base.with_name(base.name + ".gz")
    return gz if not base.exists() and gz.exists() else base


def list_cell_types(root: PathLike) -> list[str]:
    """Cell types (folders with a ``classification`` subfolder) under ``root``, sorted."""
    r = Path(root)
    if not r.is_dir():
        return []
    return sorted(p.name for p in r.iterdir() if (p / "classification").is_dir())


def load_split(
    root: PathLike,
    cell_types: Sequence[str],
    split: str,
    *,
    threads: Optional[int] = None,
    bins: Optional[int] = None,
    marks: MarksArg = None,
) -> CellDataset:
    """Load ``split`` of each cell type and concatenate them (one copy for >1 cell type).

    Raises :class:`DataError` for an unknown cell type (listing those under ``root``), a
    missing split file, or cell types whose bins or marks disagree;
    :class:`FormatError` for a malformed file.
    """
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    if not cell_types:
        raise DataError("no cell types given")
    available = list_cell_types(root)
    parts: list[Bins] = []
    for ct in cell_types:
        if ct not in available:
            listing = ", ".join(available) if available else "none"
            raise DataError(
                f"unknown cell type {ct!r} under {os.fspath(root)} "
                f"(expected {ct}/classification/); available: {listing}"
            )
        path = split_path(root, ct, split)
        if not path.exists():
            raise DataError(f"{path}: missing split file for cell type {ct!r}")
        part = read_bins(path, threads=threads, bins=bins, marks=marks, integer_counts=False)
        if parts and part.counts.shape[1:] != parts[0].counts.shape[1:]:
            raise DataError(
                f"{path}: {part.n_bins} bins x {part.n_marks} marks, but "
                f"{cell_types[0]} has {parts[0].n_bins} x {parts[0].n_marks}"
            )
        parts.append(part)
    cell = np.concatenate([np.full(p.n_genes, i, dtype=np.int16) for i, p in enumerate(parts)])
    if len(parts) == 1:
        counts, labels, ids = parts[0].counts, parts[0].labels, parts[0].gene_ids
    else:
        counts = np.concatenate([p.counts for p in parts])
        labels = np.concatenate([p.labels for p in parts])
        ids = np.concatenate([p.gene_ids for p in parts])
    return CellDataset(counts, labels, ids, cell, tuple(cell_types), parts[0].marks, split)


def load_benchmark(
    root: PathLike,
    cell_types: Sequence[str],
    *,
    splits: Sequence[str] = SPLITS,
    threads: Optional[int] = None,
    bins: Optional[int] = None,
    marks: MarksArg = None,
) -> dict[str, CellDataset]:
    """Load several splits: ``{"train": CellDataset, "valid": ..., "test": ...}``."""
    return {
        s: load_split(root, cell_types, s, threads=threads, bins=bins, marks=marks) for s in splits
    }
