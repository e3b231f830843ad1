r"""NADE: the neural autoregressive density estimator (Larochelle & Murray, 2011).

Every conditional is a one-hidden-layer network, and the input weights ``W`` are
shared between them: under the ordering :math:`o`,

.. math::
    h_i = \sigma\big(c + W_{:, o_{<i}}\, x_{o_{<i}}\big), \qquad
    p(x_{o_i} = 1 \mid x_{o_{<i}}) = \sigma\big(b_{o_i} + V_{o_i} \cdot h_i\big),

with ``W (d, n)``, ``c (d,)``, ``V (n, d)``, ``b (n,)``: ``2nd + n + d`` parameters.

Sharing ``W`` makes the pre-activations a running sum,
:math:`a_1 = c,\ a_{i+1} = a_i + W_{:, o_i} x_{o_i}`, so all ``n`` conditionals cost
``O(nd)`` (:meth:`NADE.conditional_params`) instead of ``O(n^2 d)`` for recomputing
each :math:`h_i` from scratch (:meth:`NADE.conditional_params_naive`), and ancestral
sampling is one pass over the dimensions (:meth:`NADE.sample`).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from coursekit._validation import check_count
from coursekit.autoregressive.base import AutoregressiveModel


class NADE(AutoregressiveModel):
    r"""NADE over ``features`` binary dimensions with ``hidden`` shared hidden units.

    Args:
        features: ``n``, the number of binary dimensions.
        hidden: ``d``, the size of every :math:`h_i`.
        ordering: a permutation of ``range(n)`` (default: the identity).

    Train by maximum likelihood:
    ``fit(NADE(64, 100), nll_loss, x_train, epochs=40, lr=1e-2)`` (:func:`coursekit.train.fit`,
    :func:`~coursekit.autoregressive.base.nll_loss`).
    """

    def __init__(self, features: int, hidden: int = 100, ordering=None):
        super().__init__()
        self._init_autoregressive(features, "bernoulli", ordering)
        self.hidden = check_count(hidden, "hidden")
        n, d = self.features, self.hidden
        self.W = nn.Parameter(torch.randn(d, n) / math.sqrt(n))
        self.c = nn.Parameter(torch.zeros(d))
        self.V = nn.Parameter(torch.randn(n, d) / math.sqrt(d))
        self.b = nn.Parameter(torch.zeros(n))

    @staticmethod
    def n_parameters_formula(features: int, hidden: int) -> int:
        """``2nd + n + d``: ``W (d, n)``, ``V (n, d)``, ``b (n,)``, ``c (d,)``."""
        return 2 * features * hidden + features + hidden

    def _logits(self, pre: torch.Tensor) -> torch.Tensor:
        r"""Pre-activations ``a_i (batch, n, d)`` in the ordering -> logits ``(batch, n, 1)``
        in data order: ``b_{o_i} + V_{o_i} \cdot \sigma(a_i)``."""
        order = self.ordering
        logits_in_order = self.b[order] + (torch.sigmoid(pre) * self.V[order]).sum(-1)
        logits = torch.empty_like(logits_in_order)
        logits[:, order] = logits_in_order
        return logits.unsqueeze(-1)

    def conditional_params(self, x: torch.Tensor) -> torch.Tensor:
        r"""All logits in ``O(nd)``: ``x (batch, n)`` -> ``(batch, n, 1)``.

        :math:`a_i = c + \sum_{k<i} W_{:, o_k} x_{o_k}` is the cumulative sum of
        :math:`[c, W_{:, o_1} x_{o_1}, \dots, W_{:, o_{n-1}} x_{o_{n-1}}]` along the
        ordering: the recursion :math:`a_{i+1} = a_i + W_{:, o_i} x_{o_i}` in one call.
        """
        order = self.ordering
        terms = x[:, order[:-1]].unsqueeze(-1) * self.W[:, order[:-1]].T  # (batch, n-1, d)
        start = self.c.expand(x.shape[0], 1, -1)  # a_1 = c
        return self._logits(torch.cat([start, terms], dim=1).cumsum(1))

    def conditional_params_naive(self, x: torch.Tensor) -> torch.Tensor:
        r"""The same logits, each :math:`h_i` recomputed from scratch: ``O(n^2 d)``.

        For the ``i``-th conditional, :math:`a_i = c + W (x \odot m_i)` with
        :math:`m_i` the indicator of the dimensions before position ``i``.
        """
        order = self.ordering
        x_in_order, W_in_order = x[:, order], self.W[:, order]
        pre = [self.c + (x_in_order[:, :i]) @ W_in_order[:, :i].T
               for i in range(self.features)]
        return self._logits(torch.stack(pre, dim=1))

    @torch.no_grad()
    def sample(self, n: int, observed: torch.Tensor | None = None,
               observed_mask: torch.Tensor | None = None,
               generator: torch.Generator | int | None = None) -> torch.Tensor:
        r"""Ancestral sampling in one ``O(nd)`` pass with the running sum ``a_i``.

        Same arguments, checks and random draws as
        :meth:`AutoregressiveModel.sample`
        (so both give identical samples for one generator), without its ``n``
        network passes. Returns ``(n, features)``.
        """
        x, keep, gen = self._sampling_start(n, observed, observed_mask, generator)
        pre = self.c.expand(x.shape[0], -1)
        for j in self.ordering.tolist():
            logit = self.b[j] + torch.sigmoid(pre) @ self.V[j]
            draw = self.output.sample(logit[:, None, None], gen)[:, 0]
            x[:, j] = torch.where(keep[:, j], x[:, j], draw)
            pre = pre + x[:, j:j + 1] * self.W[:, j]
        return x

    def extra_repr(self) -> str:
        return f"features={self.features}, hidden={self.hidden}"
