"""What-if scoring: every gene scored on its input and on a changed input, through an
exported model (onnxruntime, no torch).

A change (``--set``) names a mark and what happens to it:

* ``H3K27me3=0``: the mark removed (no reads);
* ``H3K27me3*0.5``: the mark's counts scaled;
* ``H3K27me3=other``: the mark taken from ``other``, a second file of the same genes in
  the same order (another cell, a treatment); ``all=other`` takes every mark from it:
  the two-cell comparison (DeepDiff's question: how much more likely is the gene
  expressed in the other cell?).

Changes apply in the order given. The output TSV has per gene the model's output
before and after, their difference (after - before) and the gene's rank by the size of
the difference (1: the largest effect), sorted by that rank.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

from .._util.atomic import atomic_path, check_outputs, staged
from .._util.prefetch import prefetch
from .._util.system import PathLike
from ..errors import DataError
from ..scoring.engine import Scorer, check_values

#: the largest input a model's float32 graph can hold
FLOAT32_MAX = float(np.finfo(np.float32).max)

_SPEC = re.compile(r"^\s*([^=*\s]+)\s*(?:=\s*(0|other)|\*\s*([0-9.eE+-]+))\s*$")


@dataclass(frozen=True)
class Change:
    """One change of the input: ``mark`` (or ``all``) set to 0, scaled, or taken from
    the other file."""

    mark: str
    kind: str  # "remove", "scale", "other"
    factor: float = 1.0

    def __str__(self) -> str:
        if self.kind == "scale":
            return f"{self.mark}*{self.factor:g}"
        return f"{self.mark}={'0' if self.kind == 'remove' else 'other'}"


def parse_change(spec: str, marks: Sequence[str]) -> Change:
    """``MARK=0``, ``MARK*FACTOR``, ``MARK=other`` or ``all=...`` -> :class:`Change`."""
    m = _SPEC.match(spec)
    if not m:
        raise DataError(
            f"--set {spec!r}: expected MARK=0, MARK*FACTOR (e.g. H3K27me3*0.5) or MARK=other"
        )
    mark, target, factor = m.groups()
    if mark != "all" and mark not in marks:
        raise DataError(f"--set {spec!r}: no mark {mark!r}; the model's marks: {', '.join(marks)}")
    if factor is not None:
        try:
            value = float(factor)
        except ValueError:
            raise DataError(f"--set {spec!r}: {factor!r} is not a number") from None
        if not np.isfinite(value) or value < 0:
            raise DataError(f"--set {spec!r}: expected a factor >= 0")
        if value > FLOAT32_MAX:
            raise DataError(
                f"--set {spec!r}: {factor} overflows the model's float32 inputs "
                f"(at most {FLOAT32_MAX:.3g})"
            )
        return Change(mark, "scale", value)
    return Change(mark, "remove" if target == "0" else "other")


@dataclass
class PerturbResult:
    """What :func:`perturb` wrote."""

    output: Path
    genes: int
    seconds: float
    changes: tuple[Change, ...]
    column: str
    before: np.ndarray
    after: np.ndarray
    gene_ids: np.ndarray
    files: tuple[Path, ...] = ()

    @property
    def difference(self) -> np.ndarray:
        return self.after - self.before

    @property
    def genes_per_second(self) -> float:
        return self.genes / self.seconds if self.seconds > 0 else float("inf")


def _apply(
    feeds: dict[str, np.ndarray],
    names: Sequence[str],
    changes: Sequence[Change],
    marks: Sequence[str],
    other: Optional[dict[str, np.ndarray]],
) -> dict[str, np.ndarray]:
    out = {k: (v.copy() if k in names else v) for k, v in feeds.items()}
    for ch in changes:
        idx = list(range(len(marks))) if ch.mark == "all" else [marks.index(ch.mark)]
        for name in names:
            arr = out[name]
            if ch.kind == "remove":
                arr[..., idx] = 0
            elif ch.kind == "scale":
                with np.errstate(over="ignore"):
                    arr[..., idx] *= ch.factor
                if not np.isfinite(arr[..., idx]).all():
                    raise DataError(
                        f"--set {ch}: the scaled counts overflow float32 (at most "
                        f"{FLOAT32_MAX:.3g}); give a smaller factor"
                    )
            else:
                assert other is not None
                arr[..., idx] = other[name][..., idx]
    return out


@staged()
def perturb(
    model: PathLike,
    source: Any,
    output: PathLike,
    changes: Sequence[str] = (),
    *,
    other: Optional[PathLike] = None,
    tracks: Optional[str] = None,
    gene_positions: Optional[PathLike] = None,
    plot: bool = False,
    batch_size: Optional[int] = None,
    threads: Optional[int] = None,
    device: str = "cpu",
    progress: Optional[Callable[[int], None]] = None,
) -> PerturbResult:
    """Score ``source`` before and after ``changes`` (see the module doc) into the TSV
    ``output``; with ``other`` and no changes, every mark is taken from ``other``.
    ``tracks`` (bed, bedGraph, bw): also the differences as a genome-browser track
    beside the TSV; ``plot``: the distribution of the differences as a PNG beside it."""
    scorer = Scorer(model, device=device, threads=threads)
    info, family = scorer.info, scorer.family
    marks = list(info.marks)
    if not changes and other is None:
        raise DataError("nothing to change: give --set MARK=0|MARK*FACTOR|MARK=other, or --other")
    parsed = [parse_change(c, marks) for c in changes] or [Change("all", "other")]
    uses_other = any(c.kind == "other" for c in parsed)
    if uses_other and other is None:
        raise DataError("--set MARK=other needs --other FILE (the same genes, another sample)")
    if other is not None and not uses_other:
        raise DataError("--other is given but no --set takes a mark from it (MARK=other)")
    if isinstance(source, tuple) and uses_other:
        raise DataError("MARK=other is for bin CSV inputs (Chromoformer: score each cell)")
    src = source if isinstance(source, tuple) else os.fspath(source)
    out = Path(output)
    stem = out.name[: -len(".tsv")] if out.name.endswith(".tsv") else out.name
    reads = list(src[0]) + list(src[1]) if isinstance(src, tuple) else [src]
    check_outputs(
        [
            out,
            out.with_name(f"{stem}.{tracks}") if tracks else None,
            out.with_name(f"{stem}.effects.png") if plot else None,
        ],
        [*reads, other, gene_positions],
    )
    positions = None
    if tracks is not None:
        from ..formats.gene_tracks import check_track_format
        from ..formats.gene_tracks import gene_positions as read_positions

        check_track_format(tracks)
        positions = read_positions(None if isinstance(src, tuple) else src, gene_positions)
    names = family.mark_inputs(info)
    key = info.primary_output
    chunk = scorer.chunk_genes
    t0 = time.perf_counter()
    parts = family.chunks(info, src, chunk_genes=chunk, threads=threads)
    others = (
        family.chunks(info, os.fspath(other), chunk_genes=chunk, threads=threads)
        if other is not None
        else None
    )
    ids, before, after = [], [], []
    n = 0
    for part in prefetch(parts):
        alt = None
        if others is not None:
            o = next(others, None)
            same = o is not None and np.array_equal(o.gene_ids, part.gene_ids)
            if not same:
                theirs = [] if o is None else list(o.gene_ids)
                k = next(
                    (i for i, g in enumerate(part.gene_ids) if i >= len(theirs) or theirs[i] != g),
                    len(theirs),
                )
                mine = part.gene_ids[min(k, len(part.gene_ids) - 1)]
                raise DataError(
                    f"{other}: gene {n + k + 1} is not {src}'s ({mine}) or the file ends "
                    "early: expected the same genes in the same order"
                )
            assert o is not None
            alt = o.feeds
        b = scorer.run(part.feeds, [key], batch_size=batch_size)[key]
        a = scorer.run(_apply(part.feeds, names, parsed, marks, alt), [key], batch_size=batch_size)[
            key
        ]
        check_values(info, key, b, len(part.gene_ids))
        check_values(info, key, a, len(part.gene_ids))
        ids.append(part.gene_ids)
        before.append(np.asarray(b, np.float64))
        after.append(np.asarray(a, np.float64))
        n += len(b)
        if progress is not None:
            progress(len(b))
    if others is not None and next(others, None) is not None:
        raise DataError(f"{other}: has more genes than {src}: expected the same genes")
    if n == 0:
        raise DataError(f"{src}: no genes to score")
    gene_ids = np.concatenate(ids)
    bv, av = np.concatenate(before), np.concatenate(after)
    diff = av - bv
    order = np.argsort(-np.abs(diff), kind="stable")
    with atomic_path(out) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(f"gene_id\t{key}_before\t{key}_after\tdifference\trank\n")
        for r, i in enumerate(order, 1):
            fh.write(f"{gene_ids[i]}\t{bv[i]:.7g}\t{av[i]:.7g}\t{diff[i]:.7g}\t{r}\n")
    files = [out]
    what = ", ".join(str(c) for c in parsed)
    if positions is not None and tracks is not None:
        from ..formats.gene_tracks import tss_half_width, write_track

        half = tss_half_width(info)
        files.append(
            write_track(
                out.with_name(f"{stem}.{tracks}"),
                [str(g) for g in gene_ids],
                diff,
                positions,
                half_width=half,
                window=info.window,
                name=f"what-if {what}",
            )
        )
    if plot:
        from .plots import plot_effects

        files.append(plot_effects(out, diff, key, what))
    return PerturbResult(
        out, n, time.perf_counter() - t0, tuple(parsed), key, bv, av, gene_ids, tuple(files)
    )
