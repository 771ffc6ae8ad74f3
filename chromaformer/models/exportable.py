"""Wrappers that give a network the tuple outputs of its graph, in the contract's order."""

from __future__ import annotations

import torch
from torch import nn

from .config import config_of
from .grouped import grouped_copy


class BinsExportable(nn.Module):
    """A bin-CSV model with outputs (probability, logit) for clf or (prediction,) for reg,
    then (bin_attention, mark_attention) where it has them. ``grouped`` exports the
    per-mark LSTMs as one batched recurrence (faster graphs)."""

    def __init__(self, model: nn.Module, grouped: bool = True) -> None:
        super().__init__()
        self.model = grouped_copy(model) if grouped else model
        cfg = config_of(model)
        self.attention = cfg.has_attention
        self.task = cfg.task  # an ensemble (of classifiers) has no target scale
        self.mean = float(getattr(cfg, "target_mean", 0.0))
        self.std = float(getattr(cfg, "target_std", 1.0))

    def forward(self, *xs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(*xs)  # xs: (counts,), (batch, bins, marks)
        logit = out["logit"]
        head: tuple[torch.Tensor, ...]
        if self.task == "reg":
            head = (logit * self.std + self.mean,)
        else:
            head = (torch.sigmoid(logit), logit)
        if self.attention:
            return (*head, out["bin_attention"], out["mark_attention"])
        return head


class DictExportable(nn.Module):
    """A model returning a dict, with the named outputs as a tuple."""

    def __init__(self, model: nn.Module, names: list[str]) -> None:
        super().__init__()
        self.model = model
        self.names = names

    def forward(self, *xs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(*xs)
        return tuple(out[n] for n in self.names)
