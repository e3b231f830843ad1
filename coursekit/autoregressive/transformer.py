r"""A small decoder-only (causal) transformer over the pixel sequence.

The ``n = features`` pixels in raster order form a sequence. Position ``i`` must predict
``x_i`` from ``x_{<i}``, so the input is the sequence *shifted right by one* behind a learned
start token,

.. math:: t_0 = s + P_0, \qquad t_i = e(x_{i-1}) + P_i \quad (i = 1, \dots, n - 1),

with ``e`` the embedding of a pixel value and ``P`` learned position embeddings. Causal
self-attention (position ``i`` attends to positions ``\le i``) keeps every output a function
of ``t_{\le i}``, that is of ``x_{<i}``:

.. math:: \mathrm{Attn}(Q, K, V) = \mathrm{softmax}\big(QK^\top/\sqrt{d_h} + M\big) V,
    \qquad M_{ij} = -\infty \text{ for } j > i, \; 0 \text{ otherwise}.

A linear head maps each position's final state to the parameters of ``p(x_i | x_{<i})``.
"""

from __future__ import annotations

import torch
from torch import nn

from coursekit._validation import check_count, check_number
from coursekit.autoregressive.base import AutoregressiveModel, count_parameters


class CausalTransformer(AutoregressiveModel):
    r"""Decoder-only transformer: ``p(x) = \prod_i p(x_i | x_{<i})`` over raster order.

    The pixel embedding is affine, ``e(x) = x\,w_1 + (1 - x)\,w_0``, which is a lookup table
    for ``x \in \{0, 1\}`` and stays differentiable in ``x`` (receptive fields, Jacobians).
    Blocks are pre-norm ``nn.TransformerEncoderLayer``\ s with a causal mask.

    Args:
        features: sequence length ``n`` (``H * W`` for an image).
        d_model: width of the token states.
        heads: attention heads (must divide ``d_model``).
        layers: transformer blocks.
        dim_feedforward: hidden width of each block's MLP (default ``2 * d_model``).
        dropout: dropout in the blocks (training only; off by default: in a short training
            the model underfits, and early stopping on a validation split is the cheaper guard).
        output: output head (default Bernoulli: one logit per position).
    """

    def __init__(self, features: int = 64, d_model: int = 32, heads: int = 4, layers: int = 2,
                 dim_feedforward: int | None = None, dropout: float = 0.0, output="bernoulli"):
        super().__init__()
        self._init_autoregressive(features, output)
        d_model, heads = check_count(d_model, "d_model"), check_count(heads, "heads")
        layers = check_count(layers, "layers")
        if d_model % heads:
            raise ValueError(f"heads: expected a divisor of d_model={d_model}, got {heads}")
        dim_feedforward = check_count(2 * d_model if dim_feedforward is None
                                      else dim_feedforward, "dim_feedforward")
        dropout = check_number(dropout, "dropout", low=0.0, high=1.0)
        self.value_embedding = nn.Linear(1, d_model)
        # unit-scale start and positions (as nn.Embedding): small ones are drowned by the
        # pixel embedding in the first LayerNorm, and training then stalls near 26 nats
        self.start = nn.Parameter(torch.randn(d_model))
        self.position = nn.Parameter(torch.randn(self.features, d_model))
        self.blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(d_model, heads, dim_feedforward, dropout,
                                       batch_first=True, norm_first=True)
            for _ in range(layers))
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, self.output.n_params)
        future = torch.ones(self.features, self.features, dtype=torch.bool).triu(1)
        self.register_buffer("causal_mask", future, persistent=False)

    @property
    def n_parameters(self) -> int:
        return count_parameters(self)

    def conditional_params(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (batch, n)`` -> ``(batch, n, output.n_params)``; entry ``i`` sees ``x_{<i}``."""
        shifted = self.value_embedding(x[:, :-1, None])
        start = self.start.expand(x.shape[0], 1, -1)
        h = torch.cat([start, shifted], dim=1) + self.position
        for block in self.blocks:
            h = block(h, src_mask=self.causal_mask, is_causal=True)
        return self.head(self.norm(h))
