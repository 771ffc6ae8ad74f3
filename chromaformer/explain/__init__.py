"""Explain and perturb exported models (onnxruntime, no torch): which marks and positions
drive each gene's prediction (:func:`explain`), what a change of the input does
(:func:`perturb`), and the results as genome-browser tracks
(:mod:`chromaformer.formats.gene_tracks`).
"""

from .attribution import Attribution, attribute, default_window
from .perturb import Change, PerturbResult, parse_change, perturb
from .run import ExplainResult, explain

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
