"""Export (Python side): a trained model of any family -> one self-describing .onnx and
its model card. The runtimes outside Python live in the repository's ``export/``."""

from .onnx import MAX_AUROC_DROP, MAX_PROB_DIFF, ExportReport, export_onnx

__all__ = ["ExportReport", "MAX_AUROC_DROP", "MAX_PROB_DIFF", "export_onnx"]
