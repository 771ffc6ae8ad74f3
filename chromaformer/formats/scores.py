"""The scored TSV: where each input's goes, how it is written, and how it is read back
(``gene_id``, the model's output, and the input's label or observed value)."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from .._util.atomic import check_outputs
from .._util.system import PathLike
from ..contract import OBSERVED_COLUMN
from ..errors import DataError, FormatError
from ..layout import name_problem
from .text import open_text


class ScoresWriter:
    """Writes a scored TSV (``gene_id``, the model's ``key`` output, and the input's
    label or observed value as ``column`` when one is given) chunk by chunk to ``fh``."""

    def __init__(self, fh: Any, key: str, task: str) -> None:
        self.fh, self.key, self.task = fh, key, task
        self.column: Optional[str] = None

    def header(self, observed: bool) -> None:
        """The header row; ``observed``: with the label/observed column."""
        self.column = OBSERVED_COLUMN[self.task] if observed else ""
        self.fh.write(f"gene_id\t{self.key}" + (f"\t{self.column}" if self.column else "") + "\n")

    def add(self, gene_ids: np.ndarray, values: np.ndarray, observed: Optional[np.ndarray]) -> None:
        """One chunk's rows (values as ``%.7g``; clf labels as integers)."""
        cols = [gene_ids, np.char.mod("%.7g", values)]
        if self.column and observed is not None:
            obs = observed
            cols.append(obs.astype(str) if self.task == "clf" else np.char.mod("%.7g", obs))
        self.fh.write("".join("\t".join(row) + "\n" for row in zip(*cols)))


def both_classes(chunk: np.ndarray, earlier: Sequence[np.ndarray]) -> bool:
    """Whether 0/1 labels so far hold both classes (``earlier``: all one class)."""
    seen = set(np.unique(chunk).tolist()) | {int(e[0]) for e in earlier[:1] if len(e)}
    return len(seen) > 1


def read_scores(name: str, path: str) -> tuple[str, dict[str, str], dict[str, str]]:
    """(value column, gene -> value text, gene -> label text) of one scored TSV."""
    with open_text(path, "a scored TSV (chromaformer-score)") as fh:
        header = fh.readline().rstrip("\n").split("\t")
        if len(header) < 2 or header[0] != "gene_id":
            raise FormatError(
                f"{path}:1: expected the header of a chromaformer-score TSV "
                f"(gene_id, the model's output[, label]), found {header[:3]}",
                path,
                1,
            )
        values: dict[str, str] = {}
        truth: dict[str, str] = {}
        observed = len(header) > 2 and header[2] in OBSERVED_COLUMN.values()
        for no, line in enumerate(fh, start=2):
            f = line.rstrip("\n").split("\t")
            if len(f) != len(header):
                raise FormatError(
                    f"{path}:{no}: expected {len(header)} tab-separated fields, found {len(f)}",
                    path,
                    no,
                )
            why = name_problem(f[0], "gene id")
            if why:
                raise FormatError(f"{path}:{no}: {why}", path, no)
            if f[0] in values:
                raise FormatError(f"{path}:{no}: gene {f[0]!r} appears twice", path, no)
            try:
                value = float(f[1])
            except ValueError:
                value = math.nan
            if not math.isfinite(value) or (header[1] == "probability" and not 0.0 <= value <= 1.0):
                want = "a probability in [0, 1]" if header[1] == "probability" else "a number"
                raise FormatError(
                    f"{path}:{no}: {header[1]}: expected {want}, found {f[1]!r}", path, no
                )
            values[f[0]] = f[1]
            if observed:
                if header[2] == OBSERVED_COLUMN["clf"] and f[2] not in ("0", "1"):
                    raise FormatError(
                        f"{path}:{no}: {header[2]}: expected 0 or 1, found {f[2]!r}", path, no
                    )
                if header[2] != OBSERVED_COLUMN["clf"] and f[2] not in ("", "nan"):
                    try:
                        ok = math.isfinite(float(f[2]))
                    except ValueError:
                        ok = False
                    if not ok:
                        raise FormatError(
                            f"{path}:{no}: {header[2]}: expected a number, found {f[2]!r}",
                            path,
                            no,
                        )
                truth[f[0]] = f[2]
    if not values:
        raise DataError(f"{path}: no genes (sample {name})")
    return header[1], values, truth if observed else {}


def default_output(source: PathLike, suffix: str = ".scores.tsv") -> Path:
    """``sample.csv`` / ``sample.csv.gz`` -> ``sample.scores.tsv`` beside it."""
    p = Path(source)
    name = p.name
    for ext in (".csv.gz", ".csv", ".gz"):
        if name.endswith(ext):
            name = name[: -len(ext)]
            break
    return p.with_name(name + suffix)


def output_names(sources: Sequence[PathLike]) -> list[str]:
    """Distinct output stems for several inputs: the shortest trailing path parts that
    tell them apart (``E003/classification/test.csv`` -> ``E003_classification_test``);
    two files of one stem in one folder (``s.csv``, ``s.csv.gz``) keep their whole
    names (``s.csv``, ``s.csv.gz``)."""
    check_inputs(sources)
    for parts in (
        [list(Path(default_output(s, "")).parts) for s in sources],
        [list(Path(s).parts) for s in sources],  # s.csv and s.csv.gz: whole names
    ):
        for depth in range(1, max(len(p) for p in parts) + 1):
            names = ["_".join(p[-depth:]).lstrip("_/") for p in parts]
            if len(set(names)) == len(names):
                return names
    raise DataError(f"{sources[0]}: the same input is named twice")


def check_inputs(inputs: Sequence[PathLike]) -> None:
    """Every input is a file this reader can open (a regular file, plain or gzip), and
    none is given twice (by any name)."""
    for src in inputs:
        name = os.fspath(src)
        if name == "-":
            raise DataError(
                "-: reading standard input is not supported; give the path of a bin CSV "
                "(plain or .gz), or save the stream to a file first"
            )
        if not os.path.exists(name):
            raise DataError(f"{name}: no such input file")
        if os.path.isdir(name):
            raise DataError(f"{name}: a folder, not an input file")
        if not os.path.isfile(name):
            raise DataError(
                f"{name}: not a regular file (a FIFO or device); the scorer reads files "
                "(plain or .gz): save the stream to a file first"
            )
    for i, a in enumerate(inputs):
        for b in inputs[:i]:
            if os.path.samefile(a, b):
                raise DataError(f"{a}: the same input as {b}, given twice")


def output_paths(inputs: Sequence[PathLike], output: Optional[PathLike]) -> list[Path]:
    """Where each input's TSV goes: beside it, the -o file, or in the -o folder (a name
    that is a folder or ends in a slash). Two inputs whose default names collide
    (``s.csv`` and ``s.csv.gz``) keep their whole names (``s.csv.scores.tsv``). None is
    an input."""
    check_inputs(inputs)
    if output is None:
        stems = [default_output(s) for s in inputs]
        targets = [
            Path(s).with_name(Path(s).name + ".scores.tsv") if stems.count(t) > 1 else t
            for s, t in zip(inputs, stems)
        ]
    else:
        out = Path(output)
        folder = os.fspath(output).endswith(("/", os.sep)) or out.is_dir()
        if len(inputs) == 1 and not folder:
            targets = [out]
        else:
            if out.exists() and not out.is_dir():
                raise DataError(f"{out}: several inputs need -o to be a folder, not a file")
            out.mkdir(parents=True, exist_ok=True)
            targets = [out / f"{name}.scores.tsv" for name in output_names(inputs)]
    check_outputs(targets, inputs)
    return targets
