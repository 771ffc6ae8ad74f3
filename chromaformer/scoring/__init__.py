"""Scoring with exported models through onnxruntime, for every family. No torch: this
package runs on the base install (``pip install chromaformer``)."""

from .engine import (
    BATCH_SIZE,
    CHUNK_GENES,
    Scorer,
    ScoreResult,
    default_output,
    output_names,
    output_paths,
    score,
)
from .session import open_session, read_model_info, session_options

#: The earlier name of :func:`score` (bin CSV files were its only input).
score_file = score

__all__ = [
    "BATCH_SIZE",
    "CHUNK_GENES",
    "ScoreResult",
    "Scorer",
    "default_output",
    "open_session",
    "read_model_info",
    "output_names",
    "output_paths",
    "score",
    "score_file",
    "session_options",
]
