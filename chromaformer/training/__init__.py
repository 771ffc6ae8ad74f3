"""Training and evaluation, one engine for every model family (torch)."""

from .config import RECIPES, TrainConfig
from .cv import cross_validate, format_cv
from .engine import evaluate_run, predict, resolve_device, train
from .ensemble import ensemble_run
from .report import format_metrics, format_run

__all__ = [
    "RECIPES",
    "TrainConfig",
    "cross_validate",
    "ensemble_run",
    "evaluate_run",
    "format_cv",
    "format_metrics",
    "format_run",
    "predict",
    "resolve_device",
    "train",
]
