"""Scoring with exported models through onnxruntime, for every family. No torch: this
package runs on the base install (``pip install chromaformer``)."""

from .engine import (
    BATCH_SIZE,
    CHUNK_GENES,
    Scorer,
    ScoreResult,
    score,
)
from .frames import predict
from .session import open_session, session_options

__all__ = [
    "BATCH_SIZE",
    "CHUNK_GENES",
    "ScoreResult",
    "Scorer",
    "open_session",
    "predict",
    "score",
    "session_options",
]
