r"""FVSBN: the fully visible sigmoid belief network, a logistic regression per dimension.

Under the ordering :math:`o`, the ``i``-th conditional is a logistic regression on
every earlier dimension:

.. math::
    p(x_{o_i} = 1 \mid x_{o_{<i}}) = \sigma\Big(\alpha^{(i)}_0
        + \sum_{j < i} \alpha^{(i)}_j x_{o_j}\Big).

All ``n`` regressions together are one linear map whose matrix is strictly
lower-triangular once rows and columns are put in the ordering, plus a bias:
``n(n-1)/2`` weights and ``n`` biases, ``n(n+1)/2`` parameters in all.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from coursekit.autoregressive.base import AutoregressiveModel


class FVSBN(AutoregressiveModel):
    r"""Fully visible sigmoid belief network over ``features`` binary dimensions.

    Args:
        features: ``n``, the number of binary dimensions.
        ordering: a permutation of ``range(n)`` (default: the identity).

    Only the active weights are parameters: ``weight`` holds the ``n(n-1)/2``
    coefficients :math:`\alpha^{(i)}_j, j < i` (row by row of the strictly lower
    triangle, in the ordering) and ``bias[d]`` is :math:`\alpha^{(i)}_0` of data
    dimension ``d = o_i``.

    Train by maximum likelihood:
    ``fit(FVSBN(64), nll_loss, x_train, epochs=60, lr=1e-2)`` (:func:`coursekit.train.fit`,
    :func:`~coursekit.autoregressive.base.nll_loss`).
    """

    def __init__(self, features: int, ordering=None):
        super().__init__()
        self._init_autoregressive(features, "bernoulli", ordering)
        n = self.features
        rows, cols = torch.tril_indices(n, n, offset=-1)  # positions i > j in the ordering
        self.register_buffer("rows", self.ordering[rows])  # data dimension o_i
        self.register_buffer("cols", self.ordering[cols])  # data dimension o_j
        bound = 1.0 / math.sqrt(max(n - 1, 1))
        self.weight = nn.Parameter(torch.empty(len(rows)).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.zeros(n))

    @staticmethod
    def n_parameters_formula(features: int) -> int:
        """``n(n+1)/2``: one bias and ``i - 1`` weights for the ``i``-th conditional."""
        return features * (features + 1) // 2

    def weight_matrix(self) -> torch.Tensor:
        r"""``A (n, n)`` in data order: ``A[o_i, o_j] = \alpha^{(i)}_j`` for ``j < i``, else 0."""
        n = self.features
        A = self.weight.new_zeros(n, n)
        return A.index_put((self.rows, self.cols), self.weight)

    def conditional_params(self, x: torch.Tensor) -> torch.Tensor:
        r"""Logits ``x A^T + \alpha_0``: ``x (batch, n)`` -> ``(batch, n, 1)``."""
        return (x @ self.weight_matrix().T + self.bias).unsqueeze(-1)

    def extra_repr(self) -> str:
        return f"features={self.features}"

