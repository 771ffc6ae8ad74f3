"""Explain and perturb exported models (onnxruntime, no torch): which marks and positions
drive each gene's prediction (:func:`explain`), what a change of the input does
(:func:`perturb`), and the results as genome-browser tracks
(:mod:`chromaformer.formats.gene_tracks`).
"""

from .._util.callable_module import make_callable
from .attribution import Attribution, attribute, default_window
from .perturb import Change, PerturbResult, parse_change, perturb
from .run import ExplainResult, explain

make_callable(__name__, "explain")  # chromaformer.explain(...) once this is imported

__all__ = [
    "Attribution",
    "Change",
    "ExplainResult",
    "PerturbResult",
    "attribute",
    "default_window",
    "explain",
    "parse_change",
    "perturb",
]
