r"""Fixed transforms that put bounded data where a flow can model it.

Dequantised images live in the unit cube, a Gaussian base lives on all of
:math:`\mathbb R^D`: a flow must then squeeze the whole real line into ``[0, 1)``
with its own layers. RealNVP (Dinh et al., 2017, section 4.1) maps the pixels to
the real line first, with a fixed logit:

.. math::
    s = \alpha + (1 - 2\alpha)\, y, \qquad x = \operatorname{logit}(s) = \log s - \log(1 - s),

:math:`\alpha` keeping :math:`s` away from 0 and 1, where the logit blows up. It is
one more layer of the flow, so its log-determinant enters the likelihood of
``y`` (the numbers stay comparable with a flow on ``y`` directly):

.. math:: \log\Big|\det\frac{\partial x}{\partial y}\Big|
    = \sum_j \big[\log(1 - 2\alpha) - \log s_j - \log(1 - s_j)\big].
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from coursekit.flows.base import Transform


class LogitTransform(Transform):
    r"""Data ``y`` in ``[0, 1]`` to the real line: ``x = logit(alpha + (1 - 2 alpha) y)``.

    ``forward(y) -> (x, logabsdet)`` (data to noise, as every coursekit transform),
    ``inverse(x) -> (y, logabsdet)`` with ``y = (sigmoid(x) - alpha) / (1 - 2 alpha)``.
    No parameters.

    Args:
        alpha: margin in ``[0, 0.5)``; 0.05 as in RealNVP.
    """

    def __init__(self, alpha: float = 0.05):
        super().__init__()
        if not 0.0 <= float(alpha) < 0.5:
            raise ValueError(f"alpha: expected a number in [0, 0.5), got {alpha!r}")
        self.alpha = float(alpha)

    def forward(self, y):
        s = self.alpha + (1.0 - 2.0 * self.alpha) * y
        x = torch.log(s) - torch.log1p(-s)
        # log s + log(1 - s) = -softplus(-x) - softplus(x), stable for large |x|
        logabsdet = (math.log1p(-2.0 * self.alpha) + F.softplus(-x) + F.softplus(x)).sum(-1)
        return x, logabsdet

    def inverse(self, x):
        y = (torch.sigmoid(x) - self.alpha) / (1.0 - 2.0 * self.alpha)
        logabsdet = -(math.log1p(-2.0 * self.alpha) + F.softplus(-x) + F.softplus(x)).sum(-1)
        return y, logabsdet

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"
