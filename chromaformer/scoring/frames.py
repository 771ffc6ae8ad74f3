"""In-memory scoring for notebooks: counts as a numpy array, :class:`Bins`, a long-format
DataFrame or a file in, a DataFrame indexed by gene id out (no torch)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np

from ..contract import ModelInfo
from ..errors import DataError
from ..formats.bincsv import Bins, read_bins
from .engine import Scorer

#: What :func:`predict` takes as data.
Data = Union[np.ndarray, Bins, Any, str, os.PathLike]


def _layout(info: ModelInfo) -> str:
    return (
        f"(genes, {info.bins}, {len(info.marks)}): {info.bins} bins of {info.bin_size} bp x "
        f"the marks {','.join(info.marks)}"
    )


def _from_array(counts: np.ndarray, info: ModelInfo, name: str) -> np.ndarray:
    want = (info.bins, len(info.marks))
    if counts.ndim != 3 or counts.shape[1:] != want:
        raise DataError(f"counts of shape {counts.shape}; {name} takes {_layout(info)}")
    arr = np.asarray(counts, dtype=np.float64)
    bad = ~np.isfinite(arr) | (arr < 0)
    if bad.any():
        g, b, m = np.argwhere(bad)[0]
        raise DataError(
            f"counts[{g}, {b}, {m}] is {arr[g, b, m]}; expected finite, non-negative counts"
        )
    return np.ascontiguousarray(counts, dtype=np.float32)


def _placeholders(marks: Sequence[str]) -> bool:
    """Whether ``marks`` are the names a bin CSV's reader gives columns it cannot name."""
    return all(m == f"mark{i + 1}" for i, m in enumerate(marks))


def _from_bins(bins: Bins, info: ModelInfo, name: str) -> np.ndarray:
    where = bins.path or "the genes"
    if bins.bin_size is not None and bins.bin_size != info.bin_size:
        raise DataError(f"{where}: bins of {bins.bin_size} bp; {name} takes {_layout(info)}")
    if bins.n_bins != info.bins:
        raise DataError(f"{where}: {bins.n_bins} bins per gene; {name} takes {_layout(info)}")
    if set(bins.marks) == set(info.marks):
        order = [bins.marks.index(m) for m in info.marks]
        return np.ascontiguousarray(bins.counts[:, :, order])
    # a bin CSV has no header: its columns are the model's in order when they count right
    from_csv = bool(bins.path) and bins.labelled
    if (from_csv or _placeholders(bins.marks)) and bins.n_marks == len(info.marks):
        return bins.counts
    raise DataError(f"{where}: marks {','.join(bins.marks)}; {name} takes {_layout(info)}")


def _read_file(path: str, info: ModelInfo) -> Bins:
    from ..formats.deeptools import is_matrix, read_matrix

    if not os.path.isfile(path):
        raise DataError(f"{path}: no such file")
    if is_matrix(path):
        return read_matrix(path, marks=info.marks)
    return read_bins(path, integer_counts=False)


def predict(
    model: Union[Scorer, str, os.PathLike],
    data: Data,
    *,
    gene_ids: Optional[Sequence[str]] = None,
    device: str = "cpu",
    threads: Optional[int] = None,
    batch_size: Optional[int] = None,
) -> Any:
    """A bin model's output for each gene, as a pandas DataFrame indexed by ``gene_id``:
    ``probability`` (a classifier) or ``prediction`` (a regression model), and ``label``
    when the data carries labels.

    ``model``: a :class:`Scorer`, an ``.onnx`` path or a shipped model's name (``e116``).
    ``data``: counts ``(genes, bins, marks)`` in the model's mark order (``gene_ids``
    name them, else 0..N-1); a :class:`Bins`; a long-format DataFrame (``gene_id``,
    ``bin``, a column per mark by name, optionally ``label``, as
    :meth:`Bins.to_frame` makes); or a path to a bin CSV or a deepTools ``matrix.gz``.
    Marks given by name are put in the model's order. Data that does not fit the model
    is a one-line :class:`DataError` naming the model's layout.
    """
    import pandas as pd

    scorer = model if isinstance(model, Scorer) else Scorer(model, device=device, threads=threads)
    info = scorer.info
    name = Path(info.path).name
    if info.family != "bins":
        raise DataError(f"{name}: a {info.family} model; predict takes bin models")
    labels: Optional[np.ndarray] = None
    if isinstance(data, (str, os.PathLike)):
        data = _read_file(os.fspath(data), info)
    if isinstance(data, pd.DataFrame):
        missing = [m for m in info.marks if m not in data.columns]
        if missing:
            raise DataError(
                f"the DataFrame has no column {missing[0]}; {name} takes {_layout(info)} "
                f"(columns gene_id, bin and one per mark)"
            )
        data = Bins.from_frame(data, marks=info.marks)
    if isinstance(data, Bins):
        counts = _from_bins(data, info, name)
        ids = data.gene_ids
        labels = data.labels if data.labelled else None
    elif isinstance(data, np.ndarray):
        counts = _from_array(data, info, name)
        ids = np.arange(len(counts)) if gene_ids is None else np.asarray(gene_ids)
        if len(ids) != len(counts):
            raise DataError(f"{len(ids)} gene ids for {len(counts)} genes of counts")
    else:
        raise DataError(
            f"predict takes a numpy array, Bins, a DataFrame or a file path, not "
            f"{type(data).__name__}"
        )
    key = info.primary_output
    values = scorer.predict(counts, batch_size=batch_size)[key].reshape(-1)
    out = pd.DataFrame({key: values.astype(np.float64)}, index=pd.Index(ids, name="gene_id"))
    if labels is not None and info.task == "clf":
        out["label"] = labels.astype(np.int64)
    return out


__all__ = ["predict"]
