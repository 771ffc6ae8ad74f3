"""Facts about the public benchmark, defined once."""
from __future__ import annotations

#: Mark columns of the DeepChrome/AttentiveChrome benchmark, in file order.
BENCHMARK_MARKS: tuple[str, ...] = ("H3K27me3", "H3K36me3", "H3K4me1", "H3K4me3", "H3K9me3")
#: Bins per gene in the benchmark (100 bins of 100 bp, TSS +- 5 kb).
BENCHMARK_BINS: int = 100
BIN_SIZE: int = 100
#: Splits of the benchmark layout ``{root}/{EID}/classification/{split}.csv``.
SPLITS: tuple[str, ...] = ("train", "valid", "test")
#: Genes per split per cell type in the real benchmark.
BENCHMARK_SPLIT_GENES = {"train": 6601, "valid": 6601, "test": 6600}

# Chromoformer's reference layout (Lee et al. 2022; dohlee/chromoformer).
#: Chromoformer's marks, in the order of its (7, L) arrays.
CHROMOFORMER_MARKS: tuple[str, ...] = (
    "H3K4me1", "H3K4me3", "H3K9me3", "H3K27me3", "H3K36me3", "H3K27ac", "H3K9ac")
CHROMOFORMER_HALF_WINDOW = 20000  # promoter arrays span TSS +- 20 kb
CHROMOFORMER_MAX_REGION = 40000  # the reference ignores longer pCREs (w_max)
CHROMOFORMER_I_MAX = 8  # at most 8 pCREs per gene, the strongest first
CHROMOFORMER_FOLDS = 4
