"""Layout facts of the inputs, defined once: marks, bins, windows, folds, region names.

Everything that says how genes are laid out on disk or in a tensor reads these names;
nothing else spells them.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import TYPE_CHECKING, Iterable

if TYPE_CHECKING:
    import numpy as np

# --- The DeepChrome/AttentiveChrome benchmark (bin CSV) -------------------------------
#: Mark columns of the benchmark, in file order.
BENCHMARK_MARKS: tuple[str, ...] = ("H3K27me3", "H3K36me3", "H3K4me1", "H3K4me3", "H3K9me3")
#: Bins per gene in the benchmark (100 bins of 100 bp, TSS +- 5 kb).
BENCHMARK_BINS: int = 100
BIN_SIZE: int = 100
#: Splits of the benchmark layout ``{root}/{EID}/classification/{split}.csv``.
SPLITS: tuple[str, ...] = ("train", "valid", "test")
#: Genes per split per cell type in the real benchmark.
BENCHMARK_SPLIT_GENES = {"train": 6601, "valid": 6601, "test": 6600}


# --- Names that reach the outputs (TSV, BED, bedGraph) ---------------------------------
#: What a gene id may not start with: a spreadsheet opening a TSV runs such a cell as a
#: formula (``=HYPERLINK(...)``, ``+cmd``, ``-2+3``, ``@SUM``).
FORMULA_STARTS = ("=", "+", "-", "@")


def name_problem(name: str, what: str) -> str:
    """Why ``name`` (a gene id, ``what="gene id"``; a mark or chromosome name) cannot be
    written into the TSV, CSV and track files, or ``""`` when it can: empty, holding a
    comma or whitespace (fields are comma-, tab- or space-separated), or, for a gene id,
    starting like a spreadsheet formula."""
    if not name:
        return f"an empty {what}"
    if "," in name or any(c.isspace() for c in name) or '"' in name:
        return f"{what} {name!r} holds a comma, quote or whitespace (they separate fields)"
    if what == "gene id" and name.startswith(FORMULA_STARTS):
        return f"gene id {name!r} starts with {name[0]!r}: a spreadsheet would run it as a formula"
    return ""


def formula_like(ids: np.ndarray) -> int:
    """The index of the first gene id (a numpy string array) that starts like a
    spreadsheet formula or holds whitespace, or -1."""
    import numpy as np

    arr = np.asarray(ids, dtype=str)
    if not len(arr):
        return -1
    bad = np.zeros(len(arr), dtype=bool)
    for start in FORMULA_STARTS:
        bad |= np.char.startswith(arr, start)
    for space in ("\t", " ", "\r", "\x0b", "\x0c"):
        bad |= np.char.find(arr, space) >= 0
    hit = np.flatnonzero(bad)
    return int(hit[0]) if len(hit) else -1


def window_of(bins: int, bin_size: int) -> int:
    """bp on each side of the TSS covered by ``bins`` bins of ``bin_size`` bp."""
    return bins * bin_size // 2


# --- Chromoformer's reference layout (Lee et al. 2022; dohlee/chromoformer) -----------
#: Chromoformer's marks, in the order of its (7, L) arrays.
CHROMOFORMER_MARKS: tuple[str, ...] = (
    "H3K4me1",
    "H3K4me3",
    "H3K9me3",
    "H3K27me3",
    "H3K36me3",
    "H3K27ac",
    "H3K9ac",
)
CHROMOFORMER_HALF_WINDOW = 20000  # promoter arrays span TSS +- 20 kb
CHROMOFORMER_WINDOW = 2 * CHROMOFORMER_HALF_WINDOW
#: The three resolutions (bp per bin) of the multi-scale model, coarsest first.
CHROMOFORMER_BIN_SIZES: tuple[int, ...] = (2000, 500, 100)
CHROMOFORMER_MAX_REGION = 40000  # the reference ignores longer pCREs (w_max)
CHROMOFORMER_I_MAX = 8  # at most 8 pCREs per gene, the strongest first
CHROMOFORMER_FOLDS = 4
#: Columns a Chromoformer ``meta.csv`` must have (besides label/expression/split/...).
META_COLUMNS: tuple[str, ...] = ("gene_id", "chrom", "start", "end", "strand")

_REGION = re.compile(r"^(\S+):(\d+)-(\d+)$")


def region_name(chrom: str, start: int, end: int) -> str:
    """``chrom:start-end``: the name of a region and of its ``.npy`` file (without suffix)."""
    return f"{chrom}:{start}-{end}"


def promoter_region(chrom: str, tss: int) -> str:
    """The name of a gene's promoter array (TSS +- 20 kb)."""
    return region_name(chrom, tss - CHROMOFORMER_HALF_WINDOW, tss + CHROMOFORMER_HALF_WINDOW)


def parse_region(text: str) -> tuple[str, int, int]:
    """``chrom:start-end`` -> ``(chrom, start, end)``; ValueError if it is not one."""
    m = _REGION.match(text.strip())
    if m is None:
        raise ValueError(f"expected a region chrom:start-end, found {text!r}")
    return m.group(1), int(m.group(2)), int(m.group(3))


def assign_folds(chroms: Iterable[str], folds: int = CHROMOFORMER_FOLDS) -> dict[str, int]:
    """Chromosome -> fold 1..folds, whole chromosomes, balancing gene counts (greedy).

    ``chroms`` holds one chromosome name per gene.
    """
    sizes = Counter(chroms)
    load = [0] * folds
    out: dict[str, int] = {}
    for chrom, n in sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0])):
        k = min(range(folds), key=lambda i: (load[i], i))
        out[chrom] = k + 1
        load[k] += n
    return out
