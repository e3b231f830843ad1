r"""Autoregressive flows: MAF (Papamakarios et al., 2017) and IAF (Kingma et al., 2016).

A Gaussian MADE (:class:`~coursekit.autoregressive.MADE` with ``output="gaussian"``) gives,
in one masked pass, a shift :math:`\mu_i` and a log-scale :math:`\alpha_i` for every
dimension, each a function of the dimensions before ``i`` in the ordering. The MAF
transform reads them as a map from data to noise,

.. math::
    z_i = (x_i - \mu_i(x_{<i}))\, e^{-\alpha_i(x_{<i})},\qquad
    \log\Big|\det \frac{\partial z}{\partial x}\Big| = -\sum_i \alpha_i ,

whose Jacobian is triangular in the ordering. Data to noise (the density) takes **one**
pass; noise to data, :math:`x_i = \mu_i(x_{<i}) + z_i e^{\alpha_i(x_{<i})}`, needs
``features`` passes, each fixing one more dimension. IAF swaps the roles: its one-pass
direction is noise to data (fast sampling), and its density needs ``features`` passes.
"""

from __future__ import annotations

import torch

from coursekit.autoregressive.made import MADE
from coursekit.flows.base import InverseTransform, Transform

_SCALE_BOUND = 3.0  # log-scales are soft-clamped to (-3, 3)


class MAFTransform(Transform):
    r"""One MAF block: ``forward`` (data to noise) in one MADE pass, ``inverse`` in ``d``.

    Args:
        features: the dimension ``d``.
        hidden_sizes: the MADE's hidden widths.
        ordering: the autoregressive ordering (default: the identity).

    The MADE's raw log-scale is soft-clamped, :math:`\alpha = 3\tanh(\tilde\alpha / 3)`.
    Attribute ``made``: the masked network (``made.conditional_params``).
    """

    def __init__(self, features: int, hidden_sizes=(64, 64), ordering=None):
        super().__init__()
        self.made = MADE(features, hidden_sizes=hidden_sizes, output="gaussian",
                         ordering=ordering)
        self.features = self.made.features

    def _shift_log_scale(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r"""One pass: ``x (batch, d)`` -> :math:`\mu, \alpha` each ``(batch, d)``."""
        params = self.made.conditional_params(x)
        return params[..., 0], _SCALE_BOUND * torch.tanh(params[..., 1] / _SCALE_BOUND)

    def forward(self, x):
        """Data to noise, one pass: ``x (batch, d)`` -> ``(z, -sum(alpha) (batch,))``."""
        mu, alpha = self._shift_log_scale(x)
        return (x - mu) * torch.exp(-alpha), -alpha.sum(-1)

    def inverse(self, z):
        """Noise to data, ``d`` passes: ``z (batch, d)`` -> ``(x, sum(alpha) (batch,))``.

        Pass ``k`` recomputes every ``x_i`` from the current ``x``; the ``k`` first
        dimensions in the ordering are then exact, so after ``d`` passes all are, and so
        are the last pass's log-scales (``alpha_i`` depends only on ``x_{<i}``).
        """
        x = torch.zeros_like(z)
        for _ in range(self.features):
            mu, alpha = self._shift_log_scale(x)
            x = mu + z * torch.exp(alpha)
        return x, alpha.sum(-1)

    def extra_repr(self) -> str:
        return f"features={self.features}, ordering={self.made.ordering.tolist()}"


class IAFTransform(InverseTransform):
    r"""One IAF block: a :class:`MAFTransform` with its directions swapped.

    ``inverse`` (noise to data, sampling) is one pass with shifts and scales computed from
    the noise, :math:`x_i = (z_i - \mu_i(z_{<i}))\, e^{-\alpha_i(z_{<i})}`; ``forward``
    (data to noise, the density) needs ``d`` passes. Arguments as
    :class:`MAFTransform`; attribute ``transform`` is that MAF block.
    """

    def __init__(self, features: int, hidden_sizes=(64, 64), ordering=None):
        super().__init__(MAFTransform(features, hidden_sizes, ordering))
        self.features = self.transform.features
