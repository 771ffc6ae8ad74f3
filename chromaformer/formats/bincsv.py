"""Reading and writing bin CSV files through the C++ core.

The format (DeepChrome/AttentiveChrome benchmark): no header, one row per bin,
``GeneID,BinID,<one count per mark>,Label``; BinIDs 1..bins consecutive per gene and
the 0/1 label repeated on every row of a gene. Plain or gzip (``.csv.gz``) files.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from typing import Any, Iterator, Optional, Sequence, Union

import numpy as np

from .. import _core
from .._util.atomic import atomic_path
from .._util.system import PathLike, bounded, env_threads
from ..errors import DataError
from ..layout import BENCHMARK_MARKS
from .sidecars import read_layout_record, write_layout_record

#: the most genes one streamed batch may hold (the C++ reader's bound)
MAX_GENES_PER_BATCH = 1 << 24

MarksArg = Union[None, int, Sequence[str]]


@dataclass(frozen=True)
class Bins:
    """Genes read from a bin CSV (or a deepTools matrix, or a DataFrame).

    counts: float32 ``(genes, bins, marks)``, C-contiguous raw counts.
    labels: uint8 ``(genes,)``, 0/1.
    gene_ids: str ``(genes,)``.
    marks: the mark names in column order.
    labelled: whether ``labels`` are known (a bin CSV always carries them).
    bin_size: the bins' width in bp where the source says it (else None).
    """

    counts: np.ndarray
    labels: np.ndarray
    gene_ids: np.ndarray
    marks: tuple[str, ...]
    path: str = ""
    labelled: bool = True
    bin_size: Optional[int] = None

    def to_frame(self) -> Any:
        """A long-format pandas DataFrame: a row per gene and bin, columns ``gene_id``,
        ``bin`` (1-based, as the bin CSV numbers them), one per mark, and ``label`` when
        the labels are known. :meth:`from_frame` reads it back."""
        import pandas as pd

        genes, bins, marks = self.counts.shape
        cols: dict[str, Any] = {
            "gene_id": np.repeat(self.gene_ids, bins),
            "bin": np.tile(np.arange(1, bins + 1, dtype=np.int64), genes),
        }
        flat = self.counts.reshape(genes * bins, marks)
        for k, mark in enumerate(self.marks):
            cols[mark] = flat[:, k]
        if self.labelled:
            cols["label"] = np.repeat(self.labels, bins)
        return pd.DataFrame(cols)

    @classmethod
    def from_frame(cls, frame: Any, marks: Optional[Sequence[str]] = None) -> Bins:
        """Genes from a long-format DataFrame (``gene_id`` or ``gene``, ``bin``, the
        marks, optionally ``label``): rows in any order, bins numbered 1..N for every
        gene. ``marks``: the mark columns wanted, in that order (default: every column
        but those). A one-line :class:`DataError` names the first row that is wrong."""
        return _from_frame(frame, marks)

    @property
    def n_genes(self) -> int:
        return int(self.counts.shape[0])

    @property
    def n_bins(self) -> int:
        return int(self.counts.shape[1])

    @property
    def n_marks(self) -> int:
        return int(self.counts.shape[2])


def _from_frame(frame: Any, marks: Optional[Sequence[str]]) -> Bins:
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"expected a pandas DataFrame, got {type(frame).__name__}")
    gene_col = next((c for c in ("gene_id", "gene") if c in frame.columns), None)
    if gene_col is None or "bin" not in frame.columns:
        raise DataError(
            "the DataFrame needs columns gene_id (or gene), bin and one per mark; it has "
            + ", ".join(map(str, frame.columns))
        )
    others = [str(c) for c in frame.columns if c not in (gene_col, "bin", "label")]
    wanted = list(marks) if marks is not None else others
    missing = [m for m in wanted if m not in frame.columns]
    if missing or not wanted:
        raise DataError(
            f"the DataFrame has no column {missing[0]} (expected the marks "
            f"{', '.join(wanted)}; it has {', '.join(map(str, frame.columns))})"
            if missing
            else "the DataFrame has no mark columns besides gene_id and bin"
        )
    if len(frame) == 0:
        raise DataError("the DataFrame has no rows")
    values = frame[wanted]
    bad_type = [m for m in wanted if not pd.api.types.is_numeric_dtype(values[m])]
    if bad_type:
        raise DataError(f"the DataFrame's column {bad_type[0]} is not numeric")
    arr = values.to_numpy(np.float64)
    bad = ~np.isfinite(arr) | (arr < 0)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise DataError(
            f"the DataFrame's row {frame.index[r]!r}: {wanted[c]} is {arr[r, c]}; expected a "
            "finite, non-negative count"
        )
    genes = frame[gene_col].astype(str).to_numpy()
    try:
        bin_no = frame["bin"].to_numpy(np.int64)
    except (TypeError, ValueError):
        raise DataError("the DataFrame's column bin is not whole numbers") from None
    ids, first, inverse = np.unique(genes, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")  # genes in the order they first appear
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    gene_no = rank[inverse]
    per_gene = np.bincount(gene_no)
    n_bins = int(per_gene[0])
    uneven = np.flatnonzero(per_gene != n_bins)
    if len(uneven):
        g = ids[order[uneven[0]]]
        raise DataError(
            f"the DataFrame's gene {g} has {per_gene[uneven[0]]} rows, the first gene "
            f"{ids[order[0]]} {n_bins}: every gene needs the same bins"
        )
    off = np.flatnonzero((bin_no < 1) | (bin_no > n_bins))
    slot = gene_no * n_bins + (bin_no - 1)
    # every gene has n_bins rows: with none out of range, a bin is missing iff one repeats
    held, first_at = np.unique(slot, return_index=True)
    repeats = np.setdiff1d(np.arange(len(slot)), first_at)  # rows an earlier row's bin holds
    if len(off) or len(repeats):
        r = int(off[0]) if len(off) else int(repeats[0])
        first = first_at[np.searchsorted(held, slot[r])]
        again = "" if len(off) else f" again (first at row {frame.index[first]!r})"
        raise DataError(
            f"the DataFrame's row {frame.index[r]!r}: gene {genes[r]} bin {bin_no[r]}{again}; "
            f"expected bins 1..{n_bins} once each per gene"
        )
    counts = np.empty((len(ids), n_bins, len(wanted)), np.float32)
    counts.reshape(-1, len(wanted))[slot] = arr
    labelled = "label" in frame.columns
    labels = np.zeros(len(ids), np.uint8)
    if labelled:
        lab = frame["label"].to_numpy()
        if not np.isin(lab, (0, 1)).all():
            r = int(np.flatnonzero(~np.isin(lab, (0, 1)))[0])
            raise DataError(
                f"the DataFrame's row {frame.index[r]!r}: label {lab[r]!r}; expected 0 or 1"
            )
        labels[gene_no] = lab.astype(np.uint8)
        mixed = np.flatnonzero(labels[gene_no] != lab)
        if len(mixed):
            r = int(mixed[0])
            raise DataError(
                f"the DataFrame's row {frame.index[r]!r}: gene {genes[r]} has label {lab[r]} "
                "here and another elsewhere: one label per gene"
            )
    return Bins(counts, labels, ids[order], tuple(wanted), "", labelled=labelled)


def _mark_spec(marks: MarksArg) -> tuple[int, list[str]]:
    if marks is None:
        return 0, []
    if isinstance(marks, (int, np.integer)):
        if marks < 1:
            raise ValueError(f"marks must be >= 1, got {marks}")
        return int(marks), []
    names = [str(m) for m in marks]
    if not names:
        raise ValueError("marks must name at least one mark")
    return len(names), names


def mark_names(n_marks: int, given: Sequence[str] = ()) -> tuple[str, ...]:
    """Names for ``n_marks`` columns: the caller's, the benchmark's for 5, else mark1..N."""
    if given:
        return tuple(given)
    if n_marks == len(BENCHMARK_MARKS):
        return BENCHMARK_MARKS
    return tuple(f"mark{i + 1}" for i in range(n_marks))


def _bins_arg(bins: Optional[int]) -> int:
    if bins is None:
        return 0
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    return int(bins)


def _threads_arg(threads: Optional[int]) -> int:
    if threads is None:
        return env_threads() or 0  # 0: the C++ reader's default, the cores available
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    return bounded(threads) or 1


def _make(raw: tuple, names: Sequence[str], path: str, record: Optional[dict]) -> Bins:
    counts, labels, ids = raw
    ids_arr = np.array(ids, dtype=str) if ids else np.empty(0, dtype=str)
    if record is None:
        return Bins(counts, labels, ids_arr, mark_names(counts.shape[2], names), path)
    # a prepared file: its layout record names the marks, the bin size, and whether the
    # label column means anything (prepare without --expression writes 0s)
    known = record.get("marks")
    if not names and known is not None and len(known) == counts.shape[2]:
        names = [str(m) for m in known]
    return Bins(
        counts,
        labels,
        ids_arr,
        mark_names(counts.shape[2], names),
        path,
        labelled=bool(record.get("labels", True)),
        bin_size=int(record["bin_size"]),
    )


def _record(path: str) -> Optional[dict]:
    return read_layout_record(path) if os.path.isfile(path) else None


def read_bins(
    path: PathLike,
    *,
    threads: Optional[int] = None,
    bins: Optional[int] = None,
    marks: MarksArg = None,
    integer_counts: bool = True,
) -> Bins:
    """Read a whole bin CSV (plain or gzip) into contiguous arrays.

    ``bins`` and ``marks`` (a count, or the mark names in column order) are required of
    the file when given, else taken from it (bins from the first gene, marks from the
    first line). ``threads`` defaults to ``OMP_NUM_THREADS``, else the cores available.
    ``integer_counts=False`` accepts non-negative decimals (mean-signal files).

    Raises :class:`chromaformer.FormatError` naming the file, line and what was expected
    on any deviation from the format; no arrays are returned then.
    """
    n_marks, names = _mark_spec(marks)
    p = os.fspath(path)
    raw = _core.read_bins(
        p,
        threads=_threads_arg(threads),
        bins=_bins_arg(bins),
        marks=n_marks,
        integer_counts=integer_counts,
        mark_names=names or list(BENCHMARK_MARKS),
    )
    return _make(raw, names, p, _record(p))


class BinStream:
    """A bin CSV opened for streaming. Iterating yields :class:`Bins` batches of
    ``genes_per_batch`` whole genes; ``bins`` and ``marks`` are the layout (given, or
    inferred from the file once the first batch has been read, 0 before).
    """

    def __init__(
        self,
        path: PathLike,
        genes_per_batch: int = 4096,
        *,
        threads: Optional[int] = None,
        bins: Optional[int] = None,
        marks: MarksArg = None,
        integer_counts: bool = True,
    ) -> None:
        if not 1 <= genes_per_batch <= MAX_GENES_PER_BATCH:
            raise DataError(
                f"genes per batch must be 1..{MAX_GENES_PER_BATCH:,}, got {genes_per_batch:,}"
            )
        n_marks, self._names = _mark_spec(marks)
        self.path = os.fspath(path)
        self._layout = _record(self.path)
        self._reader = _core.BatchReader(
            self.path,
            genes_per_batch,
            threads=_threads_arg(threads),
            bins=_bins_arg(bins),
            marks=n_marks,
            integer_counts=integer_counts,
            mark_names=self._names or list(BENCHMARK_MARKS),
        )

    @property
    def bins(self) -> int:
        return int(self._reader.bins)

    @property
    def marks(self) -> int:
        return int(self._reader.marks)

    @property
    def bytes_read(self) -> int:
        """Bytes of the file consumed so far (compressed bytes for gzip input)."""
        return int(self._reader.bytes_read)

    def __iter__(self) -> Iterator[Bins]:
        while True:
            raw = self._reader.next()
            if raw is None:
                return
            yield _make(raw, self._names, self.path, self._layout)


def iter_bins(
    path: PathLike,
    genes_per_batch: int = 4096,
    *,
    threads: Optional[int] = None,
    bins: Optional[int] = None,
    marks: MarksArg = None,
    integer_counts: bool = True,
) -> Iterator[Bins]:
    """Stream a bin CSV (plain or gzip) in batches of ``genes_per_batch`` whole genes.

    Memory stays bounded by about one batch plus a 4 MiB read block, whatever the file
    size; validation is the same as :func:`read_bins`, including gene ids repeated
    across batches. A :class:`FormatError` is raised when the bad line is reached.
    """
    yield from BinStream(
        path,
        genes_per_batch,
        threads=threads,
        bins=bins,
        marks=marks,
        integer_counts=integer_counts,
    )


def write_bins(
    path: PathLike,
    counts: np.ndarray,
    labels: np.ndarray,
    gene_ids: Union[Sequence[str], np.ndarray],
    *,
    compress: Optional[bool] = None,
    bin_size: Optional[int] = None,
    marks: Optional[Sequence[str]] = None,
    record: Optional[dict] = None,
) -> None:
    """Write ``(genes, bins, marks)`` counts in the benchmark format, atomically.

    ``compress`` defaults to whether ``path`` ends in ``.gz``. With ``bin_size``, a
    layout record (``<name>.layout.json``: bins, bin_size, window, marks and ``record``'s
    entries) is written beside the file, so training knows the bins' width.
    """
    counts = np.ascontiguousarray(counts, dtype=np.float32)
    if counts.ndim != 3:
        raise ValueError(f"counts must be (genes, bins, marks), got shape {counts.shape}")
    if not np.all(np.isfinite(counts)) or np.any(counts < 0):
        raise ValueError("counts must be finite and non-negative")
    labels = np.ascontiguousarray(labels, dtype=np.uint8)
    ids = [str(g) for g in gene_ids]
    for g in ids:
        if not g or "," in g or "\n" in g:
            raise ValueError(f"gene id {g!r} cannot be written: empty or holds ',' or a newline")
    data = _core.format_rows(counts, labels, ids)
    if compress is None:
        compress = os.fspath(path).endswith(".gz")
    with atomic_path(path) as tmp:
        if compress:
            with gzip.open(tmp, "wb", compresslevel=6) as fh:
                fh.write(data)
        else:
            tmp.write_bytes(data)
    if bin_size is not None:
        write_layout_record(
            os.fspath(path), int(counts.shape[1]), int(bin_size), marks, record or {}
        )
