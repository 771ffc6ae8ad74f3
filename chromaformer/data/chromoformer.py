"""Chromoformer's reference layout (``meta.csv`` + ``{chrom}:{start}-{end}.npy``) read into
contiguous, binned arrays, once: the C++ core bins each per-base array at every
resolution in one call (log of the mean + 1, as the reference), threads overlap the
file reads, and the result can be cached on disk so later runs skip the npy files.

No torch here: the arrays feed training (torch) and scoring (onnxruntime) alike.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

from .. import _core
from .._util.atomic import atomic_path
from .._util.system import env_threads
from ..errors import DataError, FormatError
from ..layout import (
    CHROMOFORMER_BIN_SIZES,
    CHROMOFORMER_I_MAX,
    CHROMOFORMER_MAX_REGION,
    CHROMOFORMER_WINDOW,
    META_COLUMNS,
    parse_region,
    promoter_region,
)

BIN_SIZES = CHROMOFORMER_BIN_SIZES
WINDOW = CHROMOFORMER_WINDOW


@dataclass
class ChromoformerSet:
    """Binned inputs of genes, in the order of :attr:`gene_ids`."""

    gene_ids: list[str]
    promoters: dict[int, np.ndarray]  # bin size -> (G, n, C) float32, 5'->3'
    pcres: dict[int, np.ndarray]  # bin size -> (G, I, n, C) float32, centred, zero-padded
    lengths: np.ndarray  # (G, I) int64, bp; 0 = no region
    scores: np.ndarray  # (G, I) float32
    labels: np.ndarray  # (G,) int64 (0 when the meta has none)
    expression: np.ndarray  # (G,) float64 (NaN when the meta has none)
    split: np.ndarray  # (G,) int64 fold (0 when the meta has none)
    chroms: np.ndarray  # (G,) str chromosome of each gene
    has_labels: bool = True  # whether the meta has a label column
    bin_sizes: tuple[int, ...] = BIN_SIZES

    def __len__(self) -> int:
        return len(self.gene_ids)

    def inputs(self, idx=slice(None)) -> list[np.ndarray]:
        """The model's inputs for genes ``idx``, in the order of ``input_names``."""
        return (
            [self.promoters[b][idx] for b in self.bin_sizes]
            + [self.pcres[b][idx] for b in self.bin_sizes]
            + [self.lengths[idx], self.scores[idx]]
        )

    def subset(self, idx: np.ndarray) -> ChromoformerSet:
        return ChromoformerSet(
            [self.gene_ids[i] for i in idx],
            {b: a[idx] for b, a in self.promoters.items()},
            {b: a[idx] for b, a in self.pcres.items()},
            self.lengths[idx],
            self.scores[idx],
            self.labels[idx],
            self.expression[idx],
            self.split[idx],
            self.chroms[idx],
            self.has_labels,
            self.bin_sizes,
        )


def joint_inputs(sets: Sequence[ChromoformerSet], idx) -> list[np.ndarray]:
    """Inputs of genes ``idx`` for a model of ``len(sets)`` cells (2 for diff: a, then b)."""
    return [x for s in sets for x in s.inputs(idx)]


def read_meta(path: str):
    """The metadata table, checked: one-line errors name the file and the line."""
    import pandas as pd

    if not os.path.isfile(path):
        raise DataError(f"{path}: no such metadata file (expected Chromoformer's meta.csv)")
    meta = pd.read_csv(
        path, dtype={"gene_id": str, "chrom": str, "strand": str, "neighbors": str, "scores": str}
    )
    missing = [c for c in META_COLUMNS if c not in meta.columns]
    if missing:
        raise FormatError(
            f"{path}:1: expected columns {', '.join(META_COLUMNS)} (and "
            f"label, expression, split, neighbors, scores); missing "
            f"{', '.join(missing)}",
            path,
            1,
        )
    for col in ("neighbors", "scores"):  # promoter-only tables may leave them out
        if col not in meta.columns:
            meta[col] = np.nan
    for i, r in enumerate(meta.itertuples(index=False)):
        line = i + 2
        if r.strand not in ("+", "-"):
            raise FormatError(
                f"{path}:{line}: expected strand + or -, found {r.strand!r}", path, line
            )
        for col in ("start", "end"):
            v = getattr(r, col, 0)
            integer = isinstance(v, (int, np.integer)) and v >= 0
            if not (integer or (isinstance(v, str) and v.isdigit())):
                raise FormatError(
                    f"{path}:{line}: {col}: expected a non-negative integer, found {str(v)[:24]!r}",
                    path,
                    line,
                )
        n = r.neighbors if isinstance(r.neighbors, str) else ""
        s = r.scores if isinstance(r.scores, str) else ""
        for x in s.split(";") if s else []:
            try:
                ok = math.isfinite(float(x))
            except ValueError:
                ok = False
            if not ok:
                raise FormatError(
                    f"{path}:{line}: scores: expected finite numbers, found {x[:24]!r}",
                    path,
                    line,
                )
        if (n or s) and len(n.split(";")) != len(s.split(";")):
            raise FormatError(
                f"{path}:{line}: expected as many scores as neighbors "
                f"(';'-separated), found {len(n.split(';'))} and "
                f"{len(s.split(';'))}",
                path,
                line,
            )
    if meta.gene_id.duplicated().any():
        g = meta.gene_id[meta.gene_id.duplicated()].iloc[0]
        raise FormatError(f"{path}: gene {g} appears twice", path)
    return meta


def _region(text: str, where: str) -> tuple[str, int, int]:
    try:
        return parse_region(text)
    except ValueError as err:
        raise FormatError(f"{where}: {err}") from None


def _load(npy_dir: str, name: str, channels: Optional[int], where: str) -> np.ndarray:
    path = os.path.join(npy_dir, name + ".npy")
    try:
        arr = np.load(path, mmap_mode=None, allow_pickle=False)  # never unpickle
    except FileNotFoundError:
        raise DataError(
            f"{where}: no array {path} (expected the reference layout "
            "{chrom}:{start}-{end}.npy)"
        ) from None
    except (ValueError, EOFError, OSError) as err:  # truncated, pickled, not .npy
        first = str(err).strip().splitlines()
        raise DataError(
            f"{path}: not a readable .npy array ({first[0] if first else type(err).__name__})"
        ) from None
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "fiu":
        raise DataError(f"{path}: expected numbers (read depth), found dtype {arr.dtype}")
    if arr.ndim != 2 or (channels is not None and arr.shape[0] != channels):
        raise DataError(
            f"{path}: expected a (marks, length) array"
            + (f" with {channels} marks" if channels else "")
            + f", found shape {arr.shape}"
        )
    if not arr.dtype.isnative:  # e.g. big-endian float16: the C++ binning reads native
        arr = arr.astype(arr.dtype.newbyteorder("="))
    if arr.dtype == np.float16:
        # exact, and the binning sums in double either way; numpy's float16 arithmetic is
        # emulated, so checking and binning float32 is faster (2,000 simulated genes:
        # 21.5-23.7 s -> 9.2-9.7 s to load and bin on 2 cores, the same arrays)
        arr = arr.astype(np.float32)
    finite = arr.dtype.kind != "f" or bool(np.isfinite(arr).all())
    if not (finite and bool((arr >= 0).all())):
        bad = ~np.isfinite(arr) | (arr < 0) if arr.dtype.kind == "f" else arr < 0
        m, pos = np.argwhere(bad)[0]
        raise DataError(
            f"{path}: mark {m + 1}, base {pos + 1}: expected a finite, non-negative read "
            f"depth, found {arr[m, pos]}"
        )
    return arr


def _gene(task: tuple) -> tuple:
    npy_dir, r, line, meta_path, bin_sizes, i_max, channels = task
    where = f"{meta_path}:{line}"
    try:
        start = int(r["start"])
    except (TypeError, ValueError):
        raise FormatError(
            f"{where}: start: expected an integer, got {str(r['start'])[:24]!r}"
        ) from None
    name = promoter_region(r["chrom"], start)
    prom = _load(npy_dir, name, channels, where)
    if prom.shape[1] != WINDOW:
        raise DataError(
            f"{npy_dir}/{name}.npy: expected {WINDOW} bases (TSS +- 20 kb), found {prom.shape[1]}"
        )
    c = prom.shape[0]
    p_binned = _core.bin_depth(prom, list(bin_sizes))
    flip = r["strand"] == "-"
    promoters = [(b[:, ::-1] if flip else b).T for b in p_binned]  # np.stack copies
    pcres = [np.zeros((i_max, WINDOW // b, c), dtype=np.float32) for b in bin_sizes]
    lengths = np.zeros(i_max, dtype=np.int64)
    scores = np.zeros(i_max, dtype=np.float32)
    neigh = r["neighbors"] if isinstance(r["neighbors"], str) else ""
    sc = r["scores"] if isinstance(r["scores"], str) else ""
    skipped = 0
    k = 0
    for text, s in zip(neigh.split(";") if neigh else [], sc.split(";") if sc else []):
        chrom, start, end = _region(text, where)
        if end - start > CHROMOFORMER_MAX_REGION or end <= start:
            skipped += 1
            continue
        if k == i_max:
            break
        arr = _load(npy_dir, text, c, where)
        if arr.shape[1] > CHROMOFORMER_MAX_REGION:
            raise DataError(
                f"{npy_dir}/{text}.npy: {arr.shape[1]} bases; a region holds at most "
                f"{CHROMOFORMER_MAX_REGION} ({end - start} for {text})"
            )
        for j, (b, binned) in enumerate(zip(bin_sizes, _core.bin_depth(arr, list(bin_sizes)))):
            n, width = binned.shape[1], WINDOW // b
            left = (width - n + 1) // 2
            pcres[j][k, left : left + n] = binned.T
        lengths[k] = end - start
        scores[k] = float(s)
        k += 1
    return promoters, pcres, lengths, scores, skipped


def _cache_key(meta_path: str, npy_dir: str, bin_sizes, i_max, genes) -> str:
    h = hashlib.sha256()
    h.update(Path(meta_path).read_bytes())
    h.update(
        json.dumps(
            [
                os.path.abspath(npy_dir),
                list(bin_sizes),
                i_max,
                list(genes) if genes is not None else None,
                2,
            ]
        ).encode()
    )
    st = os.stat(npy_dir)
    h.update(f"{st.st_mtime_ns}".encode())
    return h.hexdigest()[:20]


def load_chromoformer(
    meta_path: str,
    npy_dir: str,
    *,
    genes: Optional[Sequence[str]] = None,
    bin_sizes: Sequence[int] = BIN_SIZES,
    i_max: int = CHROMOFORMER_I_MAX,
    channels: Optional[int] = None,
    threads: Optional[int] = None,
    cache_dir: Optional[str] = None,
    progress: Optional[Callable[[int], None]] = None,
    meta_table: Any = None,
) -> ChromoformerSet:
    """Read and bin every gene of ``meta_path`` (or ``genes``, in that order).

    ``cache_dir``: keep the binned arrays there (one .npz per meta/npy/bins combination)
    and reuse them when nothing changed. ``meta_table``: ``read_meta(meta_path)`` already
    read (a caller that loads the genes in chunks reads the table once).
    """
    bin_sizes = tuple(int(b) for b in bin_sizes)
    cache = None
    if cache_dir is not None:
        cache = (
            Path(cache_dir)
            / f"chromoformer-{_cache_key(meta_path, npy_dir, bin_sizes, i_max, genes)}.npz"
        )
        if cache.exists():
            return _from_npz(cache, bin_sizes)
    meta = read_meta(meta_path) if meta_table is None else meta_table
    lines = {g: i + 2 for i, g in enumerate(meta.gene_id)}
    if genes is not None:
        unknown = [g for g in genes if g not in lines]
        if unknown:
            raise DataError(f"{meta_path}: no gene {unknown[0]} ({len(unknown)} unknown)")
        meta = meta.set_index("gene_id", drop=False).loc[list(genes)]
    records = meta.to_dict("records")
    tasks = [
        (npy_dir, r, lines[r["gene_id"]], meta_path, bin_sizes, i_max, channels) for r in records
    ]
    results = []
    workers = threads or env_threads() or _core.default_threads()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for res in pool.map(_gene, tasks):
            results.append(res)
            if progress is not None:
                progress(1)
    if not results:
        raise DataError(f"{meta_path}: no genes")
    g = len(results)
    out = ChromoformerSet(
        gene_ids=[r["gene_id"] for r in records],
        promoters={b: np.stack([r[0][j] for r in results]) for j, b in enumerate(bin_sizes)},
        pcres={b: np.stack([r[1][j] for r in results]) for j, b in enumerate(bin_sizes)},
        lengths=np.stack([r[2] for r in results]),
        scores=np.stack([r[3] for r in results]),
        labels=(
            meta["label"].to_numpy(np.int64) if "label" in meta else np.zeros(g, dtype=np.int64)
        ),
        expression=(
            meta["expression"].to_numpy(np.float64) if "expression" in meta else np.full(g, np.nan)
        ),
        split=(
            meta["split"].to_numpy(np.int64) if "split" in meta else np.zeros(g, dtype=np.int64)
        ),
        chroms=meta["chrom"].to_numpy(str),
        has_labels="label" in meta,
        bin_sizes=bin_sizes,
    )
    if cache is not None:
        _to_npz(cache, out)
    return out


def _to_npz(path: Path, s: ChromoformerSet) -> None:
    arrays: dict[str, Any] = {f"promoter_{b}": a for b, a in s.promoters.items()}
    arrays.update({f"pcre_{b}": a for b, a in s.pcres.items()})
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(
                fh,
                gene_ids=np.array(s.gene_ids),
                lengths=s.lengths,
                scores=s.scores,
                labels=s.labels,
                expression=s.expression,
                split=s.split,
                chroms=s.chroms,
                has_labels=np.array(s.has_labels),
                **arrays,
            )


def _from_npz(path: Path, bin_sizes: tuple[int, ...]) -> ChromoformerSet:
    z = np.load(path, allow_pickle=False)
    return ChromoformerSet(
        [str(g) for g in z["gene_ids"]],
        {b: z[f"promoter_{b}"] for b in bin_sizes},
        {b: z[f"pcre_{b}"] for b in bin_sizes},
        z["lengths"],
        z["scores"],
        z["labels"],
        z["expression"],
        z["split"],
        z["chroms"],
        bool(z["has_labels"]),
        bin_sizes,
    )
