"""Chromoformer (Lee, Yang & Kim, Nat. Commun. 2022) for clf, reg and diff, on CPU or GPU.

Module and parameter names follow the reference package (PyPI ``chromoformer==1.1.3``),
so a state_dict of its ``ChromoformerClassifier`` / ``ChromoformerRegressor`` loads as
is (:func:`load_reference_state`). What differs is the interface: ours takes compact,
export-friendly inputs and builds the attention masks itself, exactly as the
reference dataset would have built them:

* ``promoter_{r}``: ``(B, n_r, C)`` log1p mean depth of the TSS +- 20 kb window at bin
  size ``r`` (2000, 500, 100 -> n_r = 20, 80, 400), 5'->3' on the gene's strand;
* ``pcre_{r}``: ``(B, I, n_r, C)`` the same for up to ``I = 8`` interacting regions,
  each centred with zero padding (left pad = ceil of half the free bins);
* ``pcre_lengths``: ``(B, I)`` each region's length in bp (0 = no region);
* ``pcre_scores``: ``(B, I)`` each region's normalised interaction frequency.

The reference's pad masks (region bins x promoter bins) and interaction mask (promoter
+ present regions) follow from the lengths; the gated self-attention of the
regulation transformer adds ``gamma_f[head] * score`` to the promoter's logits.

``diff`` runs one shared encoder on both cells' inputs (``..._a`` and ``..._b``) and
predicts log2 fold change B/A as ``head(B) - head(A)``: swapping the cells flips the
sign exactly, and a ``reg`` model's weights are a valid starting point.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..contract import CHROMOFORMER_OUTPUTS, chromoformer_input_names
from .config import ChromoformerConfig

NEG_INF = -1e9  # the reference's fill value for masked logits


def sinusoid(n: int, dim: int) -> torch.Tensor:
    """The reference's positional encoding: sin on even, cos on odd channels."""
    pe = torch.zeros(n, dim)
    pos = torch.arange(0, n, 1).unsqueeze(1)
    k = torch.exp(-math.log(10000) * torch.arange(0, dim, 2) / dim)
    pe[:, 0::2] = torch.sin(pos * k)
    pe[:, 1::2] = torch.cos(pos * k)
    return pe


def _heads(x: torch.Tensor, n_heads: int, d_head: int) -> torch.Tensor:
    # d_head a constant, not read from x's shape: read from it, the exported reshape ran
    # in onnxruntime as (0, 400, heads, -1), which a batch of 0 rows (no pCRE present)
    # cannot resolve
    return x.reshape(x.shape[0], x.shape[1], n_heads, d_head).transpose(1, 2)  # (B, H, N, d)


def _attend(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: Optional[torch.Tensor],
    d_head: int,
    bias: Optional[torch.Tensor] = None,
    gamma: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    # float32 scores: the mask's -1e9 would overflow float16 under CUDA autocast
    scores = (torch.matmul(q, k.transpose(-1, -2)) / (d_head**0.5)).float()
    if bias is not None and gamma is not None:
        scores = scores + gamma.view(1, -1, 1, 1) * bias.unsqueeze(1)
    if mask is not None:  # None: nothing masked (a promoter's own bins)
        # = masked_fill(mask, NEG_INF), exactly, as a multiply and an add: onnxruntime's
        # broadcasting Where over (rows, heads, bins, bins) was a quarter of the graph's time
        scores = scores * (~mask).to(scores.dtype) + mask.to(scores.dtype) * NEG_INF
    return torch.matmul(torch.softmax(scores, dim=-1), v)


class MultiHeadAttention(nn.Module):
    """Post-LN self-attention; ``gate`` adds a sigmoid gate per head (regulation)."""

    def __init__(self, d_emb: int, n_heads: int, d_model: int, gate: bool = False) -> None:
        super().__init__()
        self.n_heads, self.d_head, self.gate = n_heads, d_model // n_heads, gate
        self.gamma_f = nn.Parameter(torch.ones([n_heads]))
        self.w_bias = nn.Linear(2, n_heads, bias=False)  # unused; kept for weight parity
        self.att = nn.Linear(d_emb, (4 if gate else 3) * d_model, bias=False)
        self.ff = nn.Linear(d_model, d_emb)
        self.ln = nn.LayerNorm(d_emb)

    def forward(
        self, x: torch.Tensor, mask: Optional[torch.Tensor], bias: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        parts = [
            _heads(p, self.n_heads, self.d_head)
            for p in self.att(x).chunk(4 if self.gate else 3, -1)
        ]
        out = _attend(parts[0], parts[1], parts[2], mask, self.d_head, bias, self.gamma_f)
        if self.gate:
            out = out * torch.sigmoid(parts[3])
        out = out.transpose(1, 2).reshape(x.shape[0], x.shape[1], self.ff.in_features)
        return self.ln(x + self.ff(out))


class PairwiseMultiHeadAttention(nn.Module):
    """Queries from the promoter's bins, keys and values from a pCRE's bins."""

    def __init__(self, d_emb: int, n_heads: int, d_model: int) -> None:
        super().__init__()
        self.n_heads, self.d_head = n_heads, d_model // n_heads
        self.gamma_f = nn.Parameter(torch.ones([n_heads]))  # unused; kept for weight parity
        self.p_att = nn.Linear(d_emb, d_model, bias=False)
        self.c_att = nn.Linear(d_emb, 2 * d_model, bias=False)
        self.ff = nn.Linear(d_model, d_emb)
        self.ln = nn.LayerNorm(d_emb)

    def forward(self, x_p: torch.Tensor, x_c: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        q = _heads(self.p_att(x_p), self.n_heads, self.d_head)
        k, v = (_heads(t, self.n_heads, self.d_head) for t in self.c_att(x_c).chunk(2, -1))
        out = _attend(q, k, v, mask, self.d_head)
        out = out.transpose(1, 2).reshape(x_p.shape[0], x_p.shape[1], self.ff.in_features)
        return self.ln(x_p + self.ff(out))


class FeedForward(nn.Module):
    def __init__(self, d_emb: int, d_ff: int) -> None:
        super().__init__()
        self.l1, self.l2, self.ln = (
            nn.Linear(d_emb, d_ff),
            nn.Linear(d_ff, d_emb),
            nn.LayerNorm(d_emb),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ln(x + self.l2(F.relu(self.l1(x))))


class AttentionBlock(nn.Module):
    def __init__(self, d_emb: int, n_heads: int, d_model: int, d_ff: int, gate: bool) -> None:
        super().__init__()
        self.self_att = MultiHeadAttention(d_emb, n_heads, d_model, gate)
        self.ff = FeedForward(d_emb, d_ff)

    def forward(self, x, mask, bias=None):
        return self.ff(self.self_att(x, mask, bias))


class PairwiseAttentionBlock(nn.Module):
    def __init__(self, d_emb: int, n_heads: int, d_model: int, d_ff: int) -> None:
        super().__init__()
        self.self_att = PairwiseMultiHeadAttention(d_emb, n_heads, d_model)
        self.ff = FeedForward(d_emb, d_ff)

    def forward(self, x_p, x_c, mask):
        return self.ff(self.self_att(x_p, x_c, mask))


class Transformer(nn.Module):
    def __init__(
        self, n_layers: int, n_heads: int, d_emb: int, d_model: int, d_ff: int, gate: bool = False
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            [AttentionBlock(d_emb, n_heads, d_model, d_ff, gate) for _ in range(n_layers)]
        )

    def forward(self, x, mask, bias=None):
        for layer in self.layers:
            x = layer(x, mask, bias)
        return x


class PairwiseTransformer(nn.Module):
    def __init__(self, n_layers: int, n_heads: int, d_emb: int, d_model: int, d_ff: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            [PairwiseAttentionBlock(d_emb, n_heads, d_model, d_ff) for _ in range(n_layers)]
        )

    def forward(self, x_p, x_c, mask):
        for layer in self.layers:
            x_p = layer(x_p, x_c, mask)
        return x_p


class EmbeddingTransformer(nn.Module):
    """Linear marks -> d, positions, self-attention over the promoter's bins."""

    def __init__(
        self, n_feats: int, n_bins: int, n_layers: int, n_heads: int, d_model: int, d_ff: int
    ) -> None:
        super().__init__()
        self.lin_proj = nn.Linear(n_feats, d_model, bias=False)
        self.transformer = Transformer(n_layers, n_heads, d_model, d_model, d_ff)
        self.register_buffer("pe", sinusoid(n_bins, d_model), persistent=False)

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.transformer(self.lin_proj(x) + self.pe, mask)


class PairwiseInteractionTransformer(nn.Module):
    """Each pCRE's bins seen from the promoter's bins; returns the centre bin per pCRE."""

    def __init__(
        self,
        n_feats_p: int,
        n_feats_pcre: int,
        n_bins: int,
        n_layers: int,
        n_heads: int,
        d_model: int,
        d_ff: int,
    ) -> None:
        super().__init__()
        self.ln = nn.LayerNorm(d_model)  # unused; kept for weight parity
        self.lin_proj_p = nn.Linear(n_feats_p, d_model, bias=False)
        self.lin_proj_pcre = nn.Linear(n_feats_pcre, d_model, bias=False)
        self.transformer = PairwiseTransformer(n_layers, n_heads, d_model, d_model, d_ff)
        self.register_buffer("pe", sinusoid(n_bins, d_model), persistent=False)

    def forward(
        self, p_full: torch.Tensor, gene: torch.Tensor, pcre: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """``p_full`` (B, n, d): promoter embeddings; ``gene`` (R,): the gene of each of
        R regions ``pcre`` (R, n, C); ``mask`` (R, 1, 1, n): region bins without data.
        Returns (R, d): each region's centre bin as seen from its promoter.

        Only the promoter's centre bin is computed: queries come from the promoter and
        keys/values from the region, which no layer updates, and everything else is per
        position, so each promoter bin's row goes through the layers on its own. The
        other n - 1 rows (n x the attention arithmetic) would be thrown away."""
        n = pcre.shape[1]
        x_p = self.lin_proj_p(p_full[:, n // 2 : n // 2 + 1])[gene]  # (R, 1, d)
        x_c = self.lin_proj_pcre(pcre) + self.pe
        return self.transformer(x_p, x_c, mask)[:, 0]


class RegulationTransformer(nn.Module):
    """Gated self-attention over the promoter and its pCREs, logits biased by contacts."""

    def __init__(self, d_emb: int, n_layers: int, n_heads: int, d_model: int, d_ff: int) -> None:
        super().__init__()
        self.transformer = Transformer(n_layers, n_heads, d_emb, d_model, d_ff, gate=True)


def region_valid(lengths: torch.Tensor, bin_size: int, n_bins: int) -> torch.Tensor:
    """``(B, I, n_bins)``: which bins of each centred, zero-padded region hold data."""
    n = torch.div(lengths + (bin_size - 1), bin_size, rounding_mode="floor").clamp(max=n_bins)
    left = torch.div(n_bins - n + 1, 2, rounding_mode="floor")
    pos = torch.arange(n_bins, device=lengths.device)
    return (pos >= left.unsqueeze(-1)) & (pos < (left + n).unsqueeze(-1))


class ChromoformerEncoder(nn.Module):
    """The three-resolution body: inputs -> the 3 x d_emb multi-scale embedding."""

    def __init__(self, cfg: ChromoformerConfig) -> None:
        super().__init__()
        self.config = cfg
        c, d = cfg.n_marks, cfg.d_emb
        nb = cfg.n_bins
        self.embed = nn.ModuleDict(
            {str(b): EmbeddingTransformer(c, nb[b], **cfg.embed) for b in cfg.bin_sizes}
        )
        self.pairwise_interaction = nn.ModuleDict(
            {
                str(b): PairwiseInteractionTransformer(d, c, nb[b], **cfg.pairwise)
                for b in cfg.bin_sizes
            }
        )
        reg = cfg.regulation
        self.regulation = nn.ModuleDict(
            {str(b): RegulationTransformer(d, **reg) for b in cfg.bin_sizes}
        )

    def encode(
        self,
        promoters: list[torch.Tensor],
        pcres: list[torch.Tensor],
        pcre_lengths: torch.Tensor,
        pcre_scores: torch.Tensor,
    ) -> torch.Tensor:
        cfg = self.config
        b = pcre_lengths.shape[0]
        present = pcre_lengths > 0  # (B, I)
        tokens = torch.cat([torch.ones_like(present[:, :1]), present], dim=1)  # (B, 1+I)
        inter_mask = ~(tokens.unsqueeze(2) & tokens.unsqueeze(1)).unsqueeze(1)
        freq = F.pad(pcre_scores, (1, 0)).unsqueeze(1)  # row 0: the promoter's contacts
        freq = F.pad(freq, (0, 0, 0, cfg.i_max))  # (B, 1+I, 1+I)
        # Only regions that exist go through the pairwise transformer: an absent one
        # is masked out of everything the promoter token sees, so its embedding (zero
        # here, garbage in the reference) cannot change the output.
        rows = torch.nonzero(present.reshape(-1)).squeeze(1)  # (R,) of B * I
        gene = torch.div(rows, cfg.i_max, rounding_mode="floor")
        emb, out = [], []
        for size, p, c in zip(cfg.bin_sizes, promoters, pcres):
            n = cfg.n_bins[size]
            # no mask: every promoter bin holds data (the reference's mask here is all
            # false; masking it cost about 4% of the exported graph's time)
            p_full = self.embed[str(size)](p)
            valid = region_valid(pcre_lengths, size, n).reshape(-1, n)[rows]  # (R, n)
            c_rows = c.reshape(-1, n, c.shape[-1])[rows]
            pw_rows = self.pairwise_interaction[str(size)](
                p_full, gene, c_rows, ~valid.unsqueeze(1).unsqueeze(1)
            )
            pw = torch.zeros(
                b * cfg.i_max, pw_rows.shape[-1], dtype=pw_rows.dtype, device=pw_rows.device
            ).index_copy(0, rows, pw_rows)
            x_in = torch.cat([p_full[:, n // 2].unsqueeze(1), pw.reshape(b, cfg.i_max, -1)], dim=1)
            regulation: RegulationTransformer = self.regulation[str(size)]  # type: ignore[assignment]
            x_out = regulation.transformer(x_in, inter_mask, freq)
            emb.append(x_in[:, 0])
            out.append(x_out[:, 0])
        return torch.cat(out, dim=1) + torch.cat(emb, dim=1)


class Chromoformer(ChromoformerEncoder):
    """Chromoformer for ``clf`` (2 logits, as the reference), ``reg`` (log2(RPKM+1)) or
    ``diff`` (log2 fold change B/A). ``forward`` takes the inputs in the order of
    :meth:`input_names` and returns a dict of outputs."""

    def __init__(self, cfg: ChromoformerConfig) -> None:
        super().__init__(cfg)
        out = 2 if cfg.task == "clf" else 1
        self.fc_head = nn.Sequential(
            nn.Linear(cfg.d_emb * len(cfg.bin_sizes), cfg.d_head),
            nn.ReLU(),
            nn.Linear(cfg.d_head, out),
        )

    def input_names(self) -> list[str]:
        return chromoformer_input_names(self.config.bin_sizes, self.config.task)

    def output_names(self) -> list[str]:
        return list(CHROMOFORMER_OUTPUTS[self.config.task])

    def _one(self, xs: tuple[torch.Tensor, ...]) -> torch.Tensor:
        k = len(self.config.bin_sizes)
        return self.fc_head(
            self.encode(list(xs[:k]), list(xs[k : 2 * k]), xs[2 * k], xs[2 * k + 1])
        )

    def forward(self, *xs: torch.Tensor) -> dict[str, torch.Tensor]:
        task = self.config.task
        if task == "diff":
            half = len(xs) // 2
            return {"log2fc": (self._one(xs[half:]) - self._one(xs[:half]))[:, 0]}
        out = self._one(xs)
        if task == "reg":
            return {"prediction": out[:, 0]}
        return {"logits": out, "probability": torch.softmax(out, dim=-1)[:, 1]}


def load_reference_state(model: Chromoformer, state: dict[str, torch.Tensor]) -> None:
    """Load a ``chromoformer==1.1.3`` state_dict (or its checkpoint's ``net``) as is."""
    if "net" in state and isinstance(state["net"], dict):
        state = state["net"]
    state = {k.removeprefix("module."): v for k, v in state.items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(
            f"not a Chromoformer state_dict for this config: missing "
            f"{missing[:3]}, unexpected {unexpected[:3]}"
        )
