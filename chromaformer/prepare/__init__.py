"""``chromaformer-prepare``: a lab's signal tracks (bigWig/bedGraph) and a gene annotation
(GTF/BED) into model inputs: the benchmark bin CSV or Chromoformer's layout."""

from .._util.callable_module import make_callable
from .build import PrepareResult, order_marks, prepare

make_callable(__name__, "prepare")  # chromaformer.prepare(...) once this is imported

__all__ = [
    "PrepareResult",
    "order_marks",
    "prepare",
]
