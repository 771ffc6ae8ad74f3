"""The models (PyTorch). Importing this package imports torch."""
from .architectures import BiLSTMAttention, BiLSTMTransformer, DeepChromeCNN, Hybrid, build_model
from .checkpoint import load_model, read_checkpoint, save_checkpoint
from .config import ALIASES, ARCHITECTURES, ModelConfig, canonical_arch

__all__ = ["ALIASES", "ARCHITECTURES", "BiLSTMAttention", "BiLSTMTransformer", "DeepChromeCNN",
           "Hybrid", "ModelConfig", "build_model", "canonical_arch", "load_model",
           "read_checkpoint", "save_checkpoint"]
