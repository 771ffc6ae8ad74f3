"""One table across samples: the TSVs that :func:`chromaformer.scoring.score` wrote, one
per sample, joined on gene id (genes x samples), and per sample the metrics of its
labels when it has them. What ``chromaformer summarize`` and the workflow's last step
write."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .._util.atomic import atomic_path, check_outputs, staged
from .._util.system import PathLike
from ..errors import DataError
from ..formats.scores import read_scores


@dataclass
class Summary:
    table: Path  # genes x samples
    metrics: Path  # one row per sample
    samples: int
    genes: int


def summarize(samples: Sequence[tuple[str, PathLike]], output: PathLike) -> Summary:
    """Join the scored TSVs of ``samples`` (``(name, path)``, in that column order) into
    ``output`` (``gene_id`` then one column per sample, genes in first-seen order, empty
    where a sample lacks a gene) and ``<output stem>.metrics.tsv`` (``sample, genes,
    auroc, aupr`` for clf; ``mse, pearson_r, spearman, r2`` for reg/diff; empty without labels).
    Both written atomically."""
    from ..metrics import auroc_aupr, regression_metrics

    if not samples:
        raise DataError("no samples to summarize")
    out = Path(output)
    stem = out.name.removesuffix(".tsv")
    metrics_path = out.with_name(f"{stem}.metrics.tsv")
    check_outputs([out, metrics_path], [p for _, p in samples])
    for name, tsv in samples:
        if not os.path.isfile(tsv):
            raise DataError(f"{tsv}: no such scores file (sample {name})")
    names = [n for n, _ in samples]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise DataError(f"sample {dup!r} is named twice")
    read = [read_scores(n, os.fspath(p)) for n, p in samples]
    columns = {c for c, _, _ in read}
    if len(columns) > 1:
        raise DataError(
            "the TSVs hold different outputs ("
            + ", ".join(f"{n}: {c}" for (n, _), (c, _, _) in zip(samples, read))
            + "): summarize the scores of one model kind at a time"
        )
    column = columns.pop()
    genes = list(dict.fromkeys(g for _, v, _ in read for g in v))
    clf = column == "probability"
    keys = ("auroc", "aupr") if clf else ("mse", "pearson_r", "spearman", "r2")
    rows = []
    for name, (_, values, truth) in zip(names, read):
        found: dict[str, float] = {}
        if truth:
            ids = list(truth)
            y = np.array([float(truth[g]) for g in ids])
            p = np.array([float(values[g]) for g in ids])
            found = auroc_aupr(y, p) if clf else regression_metrics(y, p)
        cells = [
            ("" if k not in found or math.isnan(found[k]) else f"{found[k]:.4f}") for k in keys
        ]
        rows.append("\t".join([name, str(len(values)), *cells]))
    with staged():  # both or neither, once the metrics are known
        with atomic_path(out) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as fh:
            fh.write("\t".join(["gene_id", *names]) + "\n")
            for g in genes:
                fh.write("\t".join([g, *(v.get(g, "") for _, v, _ in read)]) + "\n")
        with atomic_path(metrics_path) as tmp:
            Path(tmp).write_text(
                "\t".join(["sample", "genes", *keys]) + "\n" + "\n".join(rows) + "\n"
            )
    return Summary(out, metrics_path, len(samples), len(genes))
