"""Building blocks shared by the architectures. Shapes are written beside the code."""

from __future__ import annotations

import math

import torch
from torch import nn


class InputTransform(nn.Module):
    """Raw counts in, what the network sees out: log1p and per-mark standardisation,
    log1p alone, or identity (``input_transform`` of the config, which owns the
    statistics; they are buffers here, not saved in the state dict).

    in: (batch, bins, marks) raw counts; out: the same shape
    """

    def __init__(self, kind: str, n_marks: int, mean=(), std=()) -> None:
        super().__init__()
        self.kind = kind
        self.mean: torch.Tensor
        self.scale: torch.Tensor
        m = torch.tensor(mean or [0.0] * n_marks, dtype=torch.float32)
        s = torch.tensor(std or [1.0] * n_marks, dtype=torch.float32)
        self.register_buffer("mean", m, persistent=False)
        self.register_buffer("scale", 1.0 / s, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "none":
            return x
        x = torch.log1p(x)
        return (x - self.mean) * self.scale if self.kind == "standardize" else x


def mean_probability_logit(logits: torch.Tensor, dim: int) -> torch.Tensor:
    """The log-odds of the mean over ``dim`` of the probabilities ``sigmoid(logits)``:
    how averaged classifiers (an ensemble's members, a model's towers) give one logit."""
    p = torch.sigmoid(logits.float()).mean(dim=dim).clamp(1e-7, 1 - 1e-7)
    return torch.log(p) - torch.log1p(-p)


class PerMarkBiLSTM(nn.Module):
    """One BiLSTM per mark over the bins (AttentiveChrome's bin level), with learned
    bin attention per mark.

    in:  (batch, bins, marks) transformed counts
    out: mark embeddings (batch, marks, 2*hidden), alpha (batch, marks, bins)
    """

    def __init__(self, n_marks: int, hidden: int) -> None:
        super().__init__()
        self.lstms = nn.ModuleList(
            nn.LSTM(1, hidden, batch_first=True, bidirectional=True) for _ in range(n_marks)
        )
        # bin attention (as AttentiveChrome): a context vector per mark scores each
        # bin's hidden state by a dot product
        self.context = nn.Parameter(torch.empty(n_marks, 2 * hidden))
        nn.init.normal_(self.context, std=0.1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # Each LSTM runs over the whole batch at once; the 5 marks are 5 fused calls.
        h = torch.stack(
            [lstm(x[:, :, m : m + 1])[0] for m, lstm in enumerate(self.lstms)], dim=1
        )  # (batch, marks, bins, 2*hidden)
        scores = torch.einsum("bmtd,md->bmt", h, self.context)  # (batch, marks, bins)
        alpha = torch.softmax(scores, dim=-1)  # (batch, marks, bins)
        emb = torch.einsum("bmt,bmtd->bmd", alpha, h)  # (batch, marks, 2*hidden)
        return emb, alpha


class MarkAttention(nn.Module):
    """AttentiveChrome's mark level: a BiLSTM over the mark embeddings, then attention.

    in:  (batch, marks, d_in)
    out: gene vector (batch, 2*hidden), beta (batch, marks)
    """

    def __init__(self, d_in: int, hidden: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(d_in, hidden, batch_first=True, bidirectional=True)
        self.context = nn.Parameter(torch.empty(2 * hidden))
        nn.init.normal_(self.context, std=0.1)

    def forward(self, emb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h, _ = self.lstm(emb)  # (batch, marks, 2*hidden)
        scores = h @ self.context  # (batch, marks)
        beta = torch.softmax(scores, dim=-1)  # (batch, marks)
        return torch.einsum("bm,bmd->bd", beta, h), beta


class SinusoidalPositions(nn.Module):
    """Fixed sinusoidal encoding, sized to the positions actually used (the marks)."""

    def __init__(self, length: int, d_model: int) -> None:
        super().__init__()
        pos = torch.arange(length, dtype=torch.float32)[:, None]
        div = torch.exp(
            torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model)
        )
        pe = torch.zeros(length, d_model)
        pe[:, 0::2] = torch.sin(pos * div)
        pe[:, 1::2] = torch.cos(pos * div)
        self.pe: torch.Tensor
        self.register_buffer("pe", pe, persistent=False)  # (length, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.pe[None, : x.shape[1]]


class MarkTransformer(nn.Module):
    """Positional encoding + TransformerEncoder over mark embeddings, mean-pooled.

    in: (batch, marks, d_model); out: (batch, d_model)
    """

    def __init__(
        self, n_marks: int, d_model: int, n_heads: int, ff: int, layers: int, dropout: float
    ) -> None:
        super().__init__()
        self.pos = SinusoidalPositions(n_marks, d_model)
        layer = nn.TransformerEncoderLayer(d_model, n_heads, ff, dropout, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)

    def forward(self, emb: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.pos(emb)).mean(dim=1)
