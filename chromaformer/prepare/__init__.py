"""``chromaformer-prepare``: a lab's signal tracks (bigWig/bedGraph) and a gene annotation
(GTF/BED) into model inputs: the benchmark bin CSV or Chromoformer's layout."""

from .build import PrepareResult, order_marks, prepare

__all__ = [
    "PrepareResult",
    "order_marks",
    "prepare",
]
