"""``chromaformer-prepare``: a lab's signal tracks (bigWig/bedGraph) and a gene annotation
(GTF/BED) into model inputs: the benchmark bin CSV or Chromoformer's layout."""

from .annotation import Gene, GeneSet, read_genes, read_interactions
from .build import PrepareResult, order_marks, prepare
from .tracks import open_track, write_bigwig

__all__ = [
    "Gene",
    "GeneSet",
    "PrepareResult",
    "open_track",
    "order_marks",
    "prepare",
    "read_genes",
    "read_interactions",
    "write_bigwig",
]
