"""The export form of the bin level: all per-mark BiLSTM recurrences in one loop.

:class:`~chromaformer.models.layers.PerMarkBiLSTM` trains as ``marks`` separate
``nn.LSTM`` modules (cuDNN on a GPU). Exported as-is that is ``marks`` ONNX ``LSTM``
nodes, each a hidden-32 recurrence that onnxruntime runs at about a quarter of the
CPU's arithmetic peak. :class:`GroupedPerMarkBiLSTM` computes the same function with
the ``2 x marks`` recurrences (both directions of every mark) stacked on a leading
*group* axis, so each time step is one batched ``MatMul`` per gate plus a few
element-wise ops over all groups. Exported, the loop unrolls into plain opset-17
operators (MatMul, Sigmoid, Tanh, Mul, Add, Concat) that any ONNX runtime runs.

Weights are copied from the trained module, gate by gate, with the input weight and
both biases folded into the recurrent matrix (the step's input is ``[h, x_t, 1]``).

:class:`ExportEncoderLayer` is the same for the Transformer over the marks: it computes
``nn.TransformerEncoderLayer``'s function with the attention scale on the queries, so
that the exported keys' transpose feeds the MatMul directly, which onnxruntime fuses
into one MatMul over transposed keys (PyTorch's math path scales the transposed keys,
and onnxruntime then runs that transpose, of a 5-wide last axis, on its own).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .layers import PerMarkBiLSTM

# PyTorch packs LSTM gates as rows [input, forget, cell (g), output]
_GATES = ("i", "f", "g", "o")


class GroupedPerMarkBiLSTM(nn.Module):
    """Same inputs, outputs and numbers as the ``PerMarkBiLSTM`` it is built from.

    in:  (batch, bins, marks) transformed counts
    out: mark embeddings (batch, marks, 2*hidden), alpha (batch, marks, bins)
    """

    def __init__(self, source: PerMarkBiLSTM) -> None:
        super().__init__()
        lstm0: nn.LSTM = source.lstms[0]  # type: ignore[assignment]
        hidden = int(lstm0.hidden_size)
        if lstm0.input_size != 1 or lstm0.num_layers != 1 or not lstm0.bidirectional:
            raise ValueError(
                "the grouped form needs single-layer bidirectional LSTMs over one mark"
            )
        self.hidden: int = hidden
        self.n_marks = len(source.lstms)
        self.w_i: torch.Tensor  # (G, H+2, H) per gate, G = 2 x marks; buffers below
        self.w_f: torch.Tensor
        self.w_g: torch.Tensor
        self.w_o: torch.Tensor
        self.context: torch.Tensor  # (G, H, 1)
        per_gate: list[list[torch.Tensor]] = [[] for _ in _GATES]
        with torch.no_grad():
            for suffix in ("", "_reverse"):  # groups: forward of every mark, then backward
                for lstm in source.lstms:
                    w_ih: torch.Tensor = getattr(lstm, "weight_ih_l0" + suffix)  # (4H, 1)
                    w_hh = getattr(lstm, "weight_hh_l0" + suffix)  # (4H, H)
                    bias = getattr(lstm, "bias_ih_l0" + suffix) + getattr(
                        lstm, "bias_hh_l0" + suffix
                    )
                    for k in range(len(_GATES)):
                        rows = slice(k * hidden, (k + 1) * hidden)
                        # [h, x, 1] @ W -> gate pre-activation: W is (H + 2, H)
                        per_gate[k].append(
                            torch.cat([w_hh[rows].t(), w_ih[rows].t(), bias[rows][None]], dim=0)
                        )
            for k, name in enumerate(_GATES):
                self.register_buffer(f"w_{name}", torch.stack(per_gate[k]).clone())  # (G, H+2, H)
            ctx = source.context.detach()  # (marks, 2H): forward half, backward half
            ctx_g = torch.cat([ctx[:, :hidden], ctx[:, hidden:]], dim=0)  # (G, H)
            self.register_buffer("context", ctx_g[:, :, None].clone())  # (G, H, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        batch, bins, marks = x.shape
        hidden = self.hidden
        xs = x.permute(1, 2, 0)  # (bins, marks, batch)
        # group g < marks reads bin t at step t; group marks + m reads bin bins-1-t
        xg = torch.cat([xs, xs.flip(0)], dim=1).unsqueeze(-1)  # (bins, G, batch, 1)
        ones = torch.ones_like(xg[0])  # (G, batch, 1)
        h = torch.zeros(2 * marks, batch, hidden, dtype=x.dtype, device=x.device)
        c = h
        steps = []
        for t in range(bins):
            a = torch.cat([h, xg[t], ones], dim=-1)  # (G, batch, H+2)
            i = torch.sigmoid(torch.matmul(a, self.w_i))
            f = torch.sigmoid(torch.matmul(a, self.w_f))
            g = torch.tanh(torch.matmul(a, self.w_g))
            o = torch.sigmoid(torch.matmul(a, self.w_o))
            c = f * c + i * g
            h = o * torch.tanh(c)
            steps.append(h.unsqueeze(2))
        # (G, batch, steps, H): each gene's states in a row, so that both reductions over
        # the steps below are batched MatMuls that read the stack once each (an
        # element-wise Mul + ReduceSum reads it twice and writes it once more)
        hs = torch.cat(steps, dim=2)
        # bin attention: score(bin t) = ctx_fwd . h_fwd(t) + ctx_bwd . h_bwd(t), where the
        # backward recurrence reached bin t at step bins-1-t
        s = torch.matmul(hs, self.context.unsqueeze(1)).squeeze(-1)  # (G, batch, steps)
        scores = s[:marks] + s[marks:].flip(-1)  # (marks, batch, bins)
        alpha = torch.softmax(scores, dim=-1)
        weights = torch.cat([alpha, alpha.flip(-1)], dim=0).unsqueeze(2)  # (G, batch, 1, steps)
        emb = torch.matmul(weights, hs).squeeze(2)  # (G, batch, H)
        emb = torch.cat([emb[:marks], emb[marks:]], dim=-1)  # (marks, batch, 2H)
        return emb.transpose(0, 1), alpha.transpose(0, 1)


def is_recurrent_weight(name: str) -> bool:
    """Whether an exported initializer is one of a grouped recurrence's gate matrices
    (``...bins.w_i`` ...): int8 leaves them in float, since a rounding error in them is
    fed back through every step."""
    return name.rsplit(".", 1)[-1] in {f"w_{g}" for g in _GATES}


class ExportEncoderLayer(nn.Module):
    """Same inputs, outputs and numbers as the post-norm, ReLU, batch-first
    ``nn.TransformerEncoderLayer`` it is built from, in inference (no dropout)."""

    def __init__(self, source: nn.TransformerEncoderLayer) -> None:
        super().__init__()
        attn = source.self_attn
        if (
            source.norm_first
            or source.activation_relu_or_gelu != 1
            or not attn.batch_first
            or not attn._qkv_same_embed_dim
            or attn.in_proj_bias is None
        ):
            raise ValueError("the export form needs a post-norm ReLU batch-first layer")
        self.heads: int = int(attn.num_heads)
        self.scale: float = 1.0 / math.sqrt(attn.embed_dim // attn.num_heads)
        self.in_proj = nn.Linear(attn.embed_dim, 3 * attn.embed_dim)
        self.in_proj.weight, self.in_proj.bias = attn.in_proj_weight, attn.in_proj_bias
        self.out_proj = attn.out_proj
        self.linear1, self.linear2 = source.linear1, source.linear2
        self.norm1, self.norm2 = source.norm1, source.norm2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, seq, dim = x.shape
        q, k, v = (
            t.reshape(batch, seq, self.heads, dim // self.heads).transpose(1, 2)
            for t in self.in_proj(x).chunk(3, dim=-1)
        )  # (batch, heads, seq, head dim)
        att = torch.softmax(torch.matmul(q * self.scale, k.transpose(-1, -2)), dim=-1)
        o = torch.matmul(att, v).transpose(1, 2).reshape(batch, seq, dim)
        x = self.norm1(x + self.out_proj(o))
        return self.norm2(x + self.linear2(F.relu(self.linear1(x))))


def _export_encoder(encoder: nn.TransformerEncoder) -> nn.Module:
    """The encoder's layers in their export form, in order (it is left as it is if one
    of them does not qualify). In inference, without a mask, that is all
    ``nn.TransformerEncoder.forward`` does."""
    try:
        layers: list[nn.Module] = [ExportEncoderLayer(la) for la in encoder.layers]
    except ValueError:
        return encoder
    return nn.Sequential(*layers, *([encoder.norm] if encoder.norm is not None else []))


def grouped_copy(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` in its export form: the bin level grouped, and the
    Transformer's layers as :class:`ExportEncoderLayer` (where they qualify)."""
    import copy

    out = copy.deepcopy(model).eval()
    for parent in list(out.modules()):  # an ensemble's members among them
        for name, child in list(parent.named_children()):
            if isinstance(child, PerMarkBiLSTM):
                setattr(parent, name, GroupedPerMarkBiLSTM(child))
            elif isinstance(child, nn.TransformerEncoder):
                setattr(parent, name, _export_encoder(child))
    return out
