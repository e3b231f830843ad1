r"""Glow's layers (Kingma & Dhariwal, 2018) on ``(batch, features)`` vectors.

* :class:`ActNorm`: a per-feature affine map :math:`z = x \odot e^{s} + b`,
  :math:`\log|\det| = \sum_j s_j`, whose ``s`` and ``b`` are set from the first batch
  so that its output has zero mean and unit variance per feature (data-dependent
  initialisation), and are ordinary parameters afterwards.
* :class:`LULinear`: an invertible linear mixing :math:`z = W x` (Glow's 1x1 convolution)
  with :math:`W = P L (U + \operatorname{diag}(s))` (``P`` a fixed permutation, ``L``
  unit lower-triangular, ``U`` strictly upper-triangular), so
  :math:`\log|\det W| = \sum_j \log|s_j|` in :math:`O(d)` and :math:`W^{-1}` is two
  triangular solves.

A Glow step is ActNorm, LULinear, then an affine coupling
(:class:`~coursekit.flows.coupling.AffineCoupling`).
"""

from __future__ import annotations

import torch
from torch import nn

from coursekit._validation import check_count
from coursekit.flows.base import Transform


class ActNorm(Transform):
    r""":math:`z = x \odot e^{s} + b` with a data-dependent initialisation.

    The first call of ``forward`` (data to noise) on a batch of at least 2 examples sets
    :math:`s_j = -\log \sigma_j`, :math:`b_j = -\mu_j e^{s_j}` from that batch's
    per-feature mean and standard deviation; until then the layer is the identity (so a
    model sampled before it has seen data samples through the identity here). The buffer
    ``initialized`` records it (and travels in ``state_dict``).
    """

    def __init__(self, features: int):
        super().__init__()
        self.features = check_count(features, "features")
        self.log_scale = nn.Parameter(torch.zeros(self.features))
        self.shift = nn.Parameter(torch.zeros(self.features))
        self.register_buffer("initialized", torch.tensor(False))

    @torch.no_grad()
    def _initialize(self, x: torch.Tensor) -> None:
        std = x.std(dim=0, unbiased=False).clamp_min(torch.finfo(x.dtype).eps)
        self.log_scale.copy_(-torch.log(std))
        self.shift.copy_(-x.mean(dim=0) / std)
        self.initialized.fill_(True)

    def forward(self, x):
        """Data to noise: ``x (batch, d)`` -> ``(z, sum(s) (batch,))``."""
        if not bool(self.initialized) and x.shape[0] > 1:
            self._initialize(x.detach())
        z = x * torch.exp(self.log_scale) + self.shift
        return z, self.log_scale.sum().expand(x.shape[0])

    def inverse(self, z):
        """Noise to data: ``z (batch, d)`` -> ``(x, -sum(s) (batch,))``."""
        x = (z - self.shift) * torch.exp(-self.log_scale)
        return x, -self.log_scale.sum().expand(z.shape[0])

    def extra_repr(self) -> str:
        return f"features={self.features}, initialized={bool(self.initialized)}"


class LULinear(Transform):
    r""":math:`z = W x`, :math:`W = P L (U + \operatorname{diag}(s))`, initialised at a random
    rotation (the LU factors of a random orthogonal matrix, as in Glow).

    Parameters: ``lower`` and ``upper`` (``(d, d)``, only their strict lower / upper
    triangles are used), ``log_abs_s`` ``(d,)``; buffers ``permutation`` (``P``) and
    ``sign_s`` (the fixed signs of ``s``, so ``s`` never crosses 0).
    """

    def __init__(self, features: int):
        super().__init__()
        self.features = d = check_count(features, "features")
        q = torch.linalg.qr(torch.randn(d, d))[0]
        p, lower, upper = torch.linalg.lu(q)
        s = torch.diagonal(upper)
        self.register_buffer("permutation", p)
        self.register_buffer("sign_s", torch.sign(s))
        self.lower = nn.Parameter(torch.tril(lower, -1))
        self.upper = nn.Parameter(torch.triu(upper, 1))
        self.log_abs_s = nn.Parameter(torch.log(torch.abs(s)))

    def _factors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``L`` (unit lower-triangular) and ``U + diag(s)`` (upper-triangular), ``(d, d)``."""
        eye = torch.eye(self.features, dtype=self.lower.dtype, device=self.lower.device)
        lower = torch.tril(self.lower, -1) + eye
        upper = torch.triu(self.upper, 1) + torch.diag(self.sign_s * torch.exp(self.log_abs_s))
        return lower, upper

    def weight(self) -> torch.Tensor:
        """``W = P L (U + diag(s))``: ``(d, d)``."""
        lower, upper = self._factors()
        return self.permutation @ lower @ upper

    def forward(self, x):
        r"""Data to noise: ``x (batch, d)`` -> ``(x W^T, \sum_j \log|s_j|)``."""
        return x @ self.weight().T, self.log_abs_s.sum().expand(x.shape[0])

    def inverse(self, z):
        r"""Noise to data by :math:`y = P^\top z`, :math:`L a = y`, :math:`(U + \operatorname
        {diag}(s)) x = a`: ``z (batch, d)`` -> ``(x, -\sum_j \log|s_j|)``."""
        lower, upper = self._factors()
        y = (z @ self.permutation).T  # (P^T z) for every column: (d, batch)
        a = torch.linalg.solve_triangular(lower, y, upper=False, unitriangular=True)
        x = torch.linalg.solve_triangular(upper, a, upper=True)
        return x.T, -self.log_abs_s.sum().expand(z.shape[0])

    def extra_repr(self) -> str:
        return f"features={self.features}"
