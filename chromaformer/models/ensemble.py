"""Several trained bin models as one network: the seeds of ``--seeds N`` (or several
architectures) averaged, exported as one graph with the same contract as one model."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .config import EnsembleConfig, ModelConfig, config_of
from .layers import mean_probability_logit


class Ensemble(nn.Module):
    """Raw counts (batch, bins, marks) in; ``logit`` = log-odds of the mean of the
    members' probabilities (a regression ensemble: the mean of their predictions);
    ``bin_attention``/``mark_attention`` = the members' mean, when every member has
    them."""

    def __init__(self, cfg: EnsembleConfig, members: Sequence[nn.Module] = ()) -> None:
        super().__init__()
        from .architectures import build_model

        self.config = cfg
        self.members = nn.ModuleList(members or [build_model(m) for m in cfg.members])

    def forward(self, counts: torch.Tensor) -> dict[str, torch.Tensor]:
        outs = [m(counts) for m in self.members]
        if self.config.task == "reg":  # the mean of the members' predictions
            scaled = [
                o["logit"].float() * c.target_std + c.target_mean
                for o, c in zip(outs, self.config.members)
            ]
            result = {"logit": torch.stack(scaled).mean(dim=0)}
        else:
            result = {"logit": mean_probability_logit(torch.stack([o["logit"] for o in outs]), 0)}
        if self.config.has_attention:
            for key in ("bin_attention", "mark_attention"):
                result[key] = torch.stack([o[key] for o in outs]).mean(dim=0)
        return result


def ensemble_of(models: Sequence[nn.Module]) -> Ensemble:
    """One :class:`Ensemble` of trained bin models (their weights, not copies)."""
    configs = tuple(config_of(m) for m in models)
    if not all(isinstance(c, ModelConfig) for c in configs):
        raise ValueError("only bin models (not Chromoformer) form ensembles")
    return Ensemble(EnsembleConfig(members=configs), models)  # type: ignore[arg-type]
