"""The four architectures. Each takes raw counts (batch, bins, marks) and returns a dict
with ``logit`` (batch,) and, where the architecture has them, ``bin_attention``
(batch, marks, bins) and ``mark_attention`` (batch, marks); a network of several towers
(:class:`Towers`) adds ``tower_logits`` (batch, towers), what training's loss reads."""

from __future__ import annotations

import torch
from torch import nn

from .config import ModelConfig
from .layers import (
    InputTransform,
    MarkAttention,
    MarkTransformer,
    PerMarkBiLSTM,
    mean_probability_logit,
)

Output = dict[str, torch.Tensor]


def _transform(cfg: ModelConfig) -> InputTransform:
    return InputTransform(cfg.input_transform, cfg.n_marks, cfg.input_mean, cfg.input_std)


def _mark_transformer(cfg: ModelConfig) -> MarkTransformer:
    return MarkTransformer(
        cfg.n_marks, cfg.d_model, cfg.n_heads, cfg.dim_feedforward, cfg.n_layers, cfg.dropout
    )


class _BinModel(nn.Module):
    """What every architecture shares: ``forward`` runs ``_forward``, and with
    ``cfg.mirror`` averages it over the bins as given and reversed (the logit, the
    attention maps with the reversed pass's bins put back in order)."""

    config: ModelConfig

    def _forward(self, counts: torch.Tensor) -> Output:
        raise NotImplementedError

    def forward(self, counts: torch.Tensor) -> Output:
        out = self._forward(counts)
        if not self.config.mirror:
            return out
        back = self._forward(counts.flip(1))
        if "bin_attention" in back:
            back["bin_attention"] = back["bin_attention"].flip(-1)
        return {k: (v + back[k]) / 2 for k, v in out.items()}


class BiLSTMAttention(_BinModel):
    """AttentiveChrome: per-mark BiLSTM + bin attention, mark BiLSTM + mark attention."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.config = cfg
        self.transform = _transform(cfg)
        self.bins = PerMarkBiLSTM(cfg.n_marks, cfg.bin_hidden)
        self.marks = MarkAttention(cfg.d_model, cfg.mark_hidden)
        self.head = nn.Linear(2 * cfg.mark_hidden, 1)

    def _forward(self, counts: torch.Tensor) -> Output:
        emb, alpha = self.bins(self.transform(counts))  # (B, M, 64), (B, M, bins)
        gene, beta = self.marks(emb)  # (B, 32), (B, M)
        return {
            "logit": self.head(self._gene_vector(gene, emb)).squeeze(-1),
            "bin_attention": alpha,
            "mark_attention": beta,
        }

    def _gene_vector(self, gene: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        """What the head sees: the mark-attention vector (B, 32)."""
        return gene


class BiLSTMTransformer(_BinModel):
    """Per-mark BiLSTM + bin attention, then a Transformer encoder over the marks."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.config = cfg
        self.transform = _transform(cfg)
        self.bins = PerMarkBiLSTM(cfg.n_marks, cfg.bin_hidden)
        self.encoder = _mark_transformer(cfg)
        self.head = nn.Linear(cfg.d_model, 1)

    def _forward(self, counts: torch.Tensor) -> Output:
        emb, _ = self.bins(self.transform(counts))  # (B, M, 64)
        return {"logit": self.head(self.encoder(emb)).squeeze(-1)}


class Hybrid(BiLSTMAttention):
    """Both branches over one shared bin level, concatenated (32 + 64) -> logit."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg)
        self.encoder = _mark_transformer(cfg)
        self.head = nn.Linear(2 * cfg.mark_hidden + cfg.d_model, 1)

    def _gene_vector(self, gene: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        return torch.cat([gene, self.encoder(emb)], dim=-1)  # (B, 32 + 64)


class DeepChromeCNN(_BinModel):
    """DeepChrome: Conv1d(marks -> 50, k 10), ReLU, MaxPool 5, dropout, MLP 625-125 (kernel
    and pool by the bins: see :func:`~chromaformer.models.config.cnn_geometry`)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.config = cfg
        self.transform = _transform(cfg)
        self.conv = nn.Conv1d(cfg.n_marks, cfg.cnn_filters, cfg.cnn_kernel)
        self.pool = nn.MaxPool1d(cfg.cnn_pool)
        flat = cfg.cnn_filters * ((cfg.bins - cfg.cnn_kernel + 1) // cfg.cnn_pool)
        layers: list[nn.Module] = [nn.Dropout(cfg.dropout)]
        for width in cfg.cnn_hidden:
            layers += [nn.Linear(flat, width), nn.ReLU()]
            flat = width
        layers.append(nn.Linear(flat, 1))
        self.mlp = nn.Sequential(*layers)

    def _forward(self, counts: torch.Tensor) -> Output:
        x = self.transform(counts).transpose(1, 2)  # (B, marks, bins)
        x = self.pool(torch.relu(self.conv(x)))  # (B, filters, pooled bins)
        return {"logit": self.mlp(x.flatten(1)).squeeze(-1)}


_CLASSES = {
    "bilstm_attention": BiLSTMAttention,
    "bilstm_transformer": BiLSTMTransformer,
    "hybrid": Hybrid,
    "cnn": DeepChromeCNN,
}


class Towers(nn.Module):
    """``cfg.towers`` networks of ``cfg.arch`` in one, each from its own random start:
    ``tower_logits`` (batch, towers) are theirs, each learning from its own loss, and
    ``logit`` is their average (a classifier: the log-odds of the mean probability; a
    regression: the mean output, all on the one target scale), the attention maps their
    mean."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.config = cfg
        self.towers = nn.ModuleList(_CLASSES[cfg.arch](cfg) for _ in range(cfg.towers))

    def forward(self, counts: torch.Tensor) -> Output:
        outs = [tower(counts) for tower in self.towers]
        logits = torch.stack([o["logit"] for o in outs], dim=-1)  # (batch, towers)
        mean = logits.mean(dim=-1) if self.config.task == "reg" else None
        result = {
            "logit": mean if mean is not None else mean_probability_logit(logits, -1),
            "tower_logits": logits,
        }
        for key in ("bin_attention", "mark_attention"):
            if key in outs[0]:
                result[key] = torch.stack([o[key] for o in outs]).mean(dim=0)
        return result


def build_model(cfg: ModelConfig) -> nn.Module:
    """A freshly initialised model for ``cfg`` (its towers in one, where it has several)."""
    return Towers(cfg) if cfg.towers > 1 else _CLASSES[cfg.arch](cfg)
