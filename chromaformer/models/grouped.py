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
"""

from __future__ import annotations

import torch
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


def grouped_copy(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` whose bin level is the grouped form (for export)."""
    import copy

    out = copy.deepcopy(model).eval()
    for module in [out, *getattr(out, "members", [])]:  # an ensemble: each member
        bins = getattr(module, "bins", None)
        if isinstance(bins, PerMarkBiLSTM):
            module.bins = GroupedPerMarkBiLSTM(bins)
    return out
