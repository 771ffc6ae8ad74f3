"""The files beside a prepared bin CSV: its layout record (``<name>.layout.json``: bins,
bin size, window, marks, how genes were placed) and its TSS sidecar (``<name>.tss.bed``),
their paths, and how each is read and written."""

from __future__ import annotations

import json
import os
from typing import Any, Iterable, Optional, Sequence

from .._util.atomic import atomic_path
from .._util.system import PathLike
from ..errors import DataError
from ..layout import window_of

#: The record a prepared bin CSV carries beside it (``<name>.layout.json``): bins,
#: bin_size, window, marks, and how genes were placed. Training reads the bin size from it.
LAYOUT_RECORD_SUFFIX = ".layout.json"


def layout_record_path(csv_path: str) -> str:
    """``x/train.csv`` or ``x/train.csv.gz`` -> ``x/train.layout.json``."""
    for ext in (".csv.gz", ".csv", ".gz"):
        if csv_path.endswith(ext):
            return csv_path[: -len(ext)] + LAYOUT_RECORD_SUFFIX
    return csv_path + LAYOUT_RECORD_SUFFIX


#: The TSS of each gene of a prepared bin CSV (BED6, one base per gene), beside it: what
#: genome-browser tracks of its genes are placed by.
TSS_SIDECAR_SUFFIX = ".tss.bed"


def tss_sidecar_path(csv_path: str) -> str:
    """``x/genes.csv`` or ``x/genes.csv.gz`` -> ``x/genes.tss.bed``."""
    return layout_record_path(csv_path)[: -len(LAYOUT_RECORD_SUFFIX)] + TSS_SIDECAR_SUFFIX


#: The continuous expression of each gene of a prepared bin CSV (``gene_id<TAB>
#: expression``, a header), beside it: the regression target (the CSV's Label column
#: holds 0/1 only).
EXPRESSION_SIDECAR_SUFFIX = ".expression.tsv"


def expression_sidecar_path(csv_path: str) -> str:
    """``x/train.csv`` or ``x/train.csv.gz`` -> ``x/train.expression.tsv``."""
    return layout_record_path(csv_path)[: -len(LAYOUT_RECORD_SUFFIX)] + EXPRESSION_SIDECAR_SUFFIX


def write_expression_sidecar(csv_path: str, gene_ids: Sequence[str], values: Any) -> str:
    """The genes' expression beside ``csv_path``, atomically; returns its path."""
    path = expression_sidecar_path(csv_path)
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as fh:
        fh.write("gene_id\texpression\n")
        for g, v in zip(gene_ids, values):
            fh.write(f"{g}\t{float(v):.9g}\n")
    return path


#: The ``format`` of the layout record :func:`write_bins` writes beside a file.
LAYOUT_RECORD_FORMAT = "chromaformer-bins-layout/1"


def write_layout_record(
    csv_path: str,
    bins: int,
    bin_size: int,
    marks: Optional[Sequence[str]],
    extra: dict,
) -> str:
    """Write the layout record beside ``csv_path`` (bins, bin_size, window, marks and
    ``extra``'s entries), atomically; returns its path."""
    info = {
        "format": LAYOUT_RECORD_FORMAT,
        "bins": bins,
        "bin_size": bin_size,
        "window": window_of(bins, bin_size),
        "marks": list(marks) if marks is not None else None,
        **extra,
    }
    path = layout_record_path(csv_path)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(info, indent=2) + "\n")
    return path


#: A layout record's ``orientation``: ``transcript`` (bins run 5'->3' on each gene's
#: strand) or ``genomic`` (lower coordinates first: the strand of most genes unknown).
ORIENTATIONS = ("transcript", "genomic")


def read_layout_record(csv_path: PathLike) -> Optional[dict]:
    """The layout record written beside a prepared bin CSV (``<name>.layout.json``:
    bins, bin_size, window, marks ...), or None when there is none."""
    path = layout_record_path(os.fspath(csv_path))
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as fh:
            record = json.load(fh)
    except (ValueError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: not a layout record (not JSON: {err})") from None
    if not isinstance(record, dict):
        raise DataError(f"{path}: not a layout record: expected a JSON object")
    check_layout_record(record, path)
    return dict(record)


def _positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def check_layout_record(record: dict, path: str) -> None:
    """Raise a one-line :class:`DataError` unless ``record`` holds a positive integer
    ``bin_size`` and, where present, positive integer ``bins``, ``marks`` as a list of
    names, an ``orientation`` of :data:`ORIENTATIONS`, a boolean ``labels`` and
    ``chrom_sizes`` as a mapping of names to positive integer lengths."""
    for key in ("bin_size", "bins"):
        if (key == "bin_size" or key in record) and not _positive_int(record.get(key)):
            raise DataError(
                f"{path}: {key}: expected a positive integer, found {record.get(key)!r}"
            )
    marks = record.get("marks")
    if marks is not None and not (
        isinstance(marks, list) and marks and all(isinstance(m, str) and m for m in marks)
    ):
        raise DataError(f"{path}: marks: expected a list of mark names, found {marks!r}")
    if "orientation" in record and record["orientation"] not in ORIENTATIONS:
        raise DataError(
            f"{path}: orientation: expected one of {', '.join(ORIENTATIONS)}, "
            f"found {record['orientation']!r}"
        )
    if "labels" in record and not isinstance(record["labels"], bool):
        raise DataError(f"{path}: labels: expected true or false, found {record['labels']!r}")
    sizes = record.get("chrom_sizes")
    if sizes is not None:
        if not isinstance(sizes, dict):
            raise DataError(
                f"{path}: chrom_sizes: expected an object of chromosome: length, "
                f"found {type(sizes).__name__}"
            )
        for name, size in sizes.items():
            if not _positive_int(size):
                raise DataError(
                    f"{path}: chrom_sizes: {name}: expected a positive integer length, "
                    f"found {size!r}"
                )


def write_tss_sidecar(csv_path: str, genes: Iterable[Any]) -> str:
    """The TSS of each gene beside a prepared CSV (BED6, one base per gene); ``genes``
    have ``chrom``, ``tss``, ``gene_id`` and ``strand``."""
    path = tss_sidecar_path(csv_path)
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as fh:
        for g in genes:
            fh.write(f"{g.chrom}\t{g.tss}\t{g.tss + 1}\t{g.gene_id}\t0\t{g.strand}\n")
    return path
