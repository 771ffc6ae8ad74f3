"""The bundled real data set, prepared the way a lab prepares its own.

GM12878 (Roadmap E116) read counts of the five benchmark marks in 10 kb bins (bedGraph,
hg19), 16,699 gene positions and the expression labels of 14,195 genes in GC-MERGE's
train/valid split; derived from rsinghlab/GC-MERGE (MIT, Singh Lab, Brown; Bigness et
al., J Comput Biol 2022). See ``chromaformer/data/gcmerge_e116/README.md``.

:func:`prepare_e116` runs :func:`~chromaformer.prepare.prepare` on the bundled tracks
(21 bins of 10 kb per gene, the gene's own bin in the middle, strand unknown so bins in
genomic order, the bedGraph's count per bin) and writes the benchmark layout
``{root}/E116/classification/{train,valid}.csv`` with their layout records.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Union

from ..data.benchmark import PACKAGE_DATA
from ..formats.sidecars import write_expression_sidecar
from ..layout import BENCHMARK_MARKS
from .build import PrepareResult, prepare

E116 = PACKAGE_DATA / "gcmerge_e116"
#: The layout of the E116 bin files: 21 bins of 10 kb, TSS bin +- 10 bins.
E116_BIN_SIZE = 10_000
E116_WINDOW = 105_000
E116_SPLITS = ("train", "valid")


def e116_tracks(folder: Union[str, Path] = E116) -> list[tuple[str, str]]:
    """``(mark, bedGraph path)`` for the five marks, in the benchmark's order."""
    return [(m, str(Path(folder) / "tracks" / f"{m}.bedgraph.gz")) for m in BENCHMARK_MARKS]


def prepare_e116(
    root: Union[str, Path],
    *,
    splits: tuple[str, ...] = E116_SPLITS,
    folder: Union[str, Path] = E116,
    jobs: int = 1,
) -> dict[str, PrepareResult]:
    """Write ``{root}/E116/classification/{split}.csv`` for each split from the bundled
    tracks, genes and labels (``folder``: the same files elsewhere, e.g. ../shared), and
    beside each the genes' continuous expression (``{split}.expression.tsv``, the targets
    of ``--task reg``)."""
    folder = Path(folder)
    genes = _read_tsv(folder / "genes.bed.gz", folder / "genes.bed", header=False)
    where = {row[3]: row for row in genes}
    labels = _read_tsv(folder / "labels.tsv.gz", folder / "labels.tsv", header=True)
    levels = _levels(folder)
    out: dict[str, PrepareResult] = {}
    with tempfile.TemporaryDirectory(prefix="chromaformer-e116-") as tmp:
        for split in splits:
            rows = [r for r in labels if r[3] == split]
            bed = Path(tmp) / f"{split}.bed"
            bed.write_text("".join("\t".join(where[r[0]]) + "\n" for r in rows))
            expression = Path(tmp) / f"{split}.labels.tsv"
            expression.write_text("".join(f"{r[0]}\t{r[2]}\n" for r in rows))
            target = Path(root) / "E116" / "classification" / f"{split}.csv"
            out[split] = prepare(
                e116_tracks(folder),
                str(bed),
                str(target),
                window=E116_WINDOW,
                bin_size=E116_BIN_SIZE,
                stat="mean",  # the bedGraph holds one count per 10 kb bin: its mean is it
                expression=str(expression),
                label_threshold="0.5",  # the labels are 0/1 already
                decimals=0,
                jobs=jobs,
            )
            if levels:  # the regression targets beside the labels: GC-MERGE's levels
                ids = [r[0] for r in rows]
                write_expression_sidecar(str(target), ids, [levels[g] for g in ids])
    return out


def _levels(folder: Path) -> dict[str, float]:
    """GC-MERGE's continuous expression of the labelled genes (``expression.tsv``), or
    an empty dict where the folder has none."""
    if not (folder / "expression.tsv.gz").exists() and not (folder / "expression.tsv").exists():
        return {}
    rows = _read_tsv(folder / "expression.tsv.gz", folder / "expression.tsv", header=True)
    return {r[0]: float(r[2]) for r in rows}


def _read_tsv(gz: Path, plain: Path, header: bool) -> list[list[str]]:
    from ..formats.text import data_lines

    path = gz if gz.exists() else plain
    rows = [line.split("\t") for _, line in data_lines(str(path))]
    return rows[1:] if header else rows
