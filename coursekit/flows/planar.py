r"""The planar flow (Rezende & Mohamed, 2015): one hyperplane's worth of bending.

The planar map is defined from noise to data,

.. math::
    x = z + \hat u\, h(w^\top z + b),\qquad h = \tanh,\qquad
    \det \frac{\partial x}{\partial z} = 1 + h'(w^\top z + b)\, \hat u^\top w ,

so it is this transform's ``inverse``. It is invertible when :math:`w^\top \hat u \ge -1`,
which the constraint :math:`\hat u = u + [m(w^\top u) - w^\top u]\, w / \|w\|^2`,
:math:`m(a) = -1 + \operatorname{softplus}(a)`, guarantees.

The data-to-noise ``forward`` has no closed form. Projecting the map on ``w`` gives a
scalar equation for :math:`\alpha = w^\top z`,

.. math:: w^\top x = \alpha + c \tanh(\alpha + b),\qquad c = w^\top \hat u \ge -1,

whose left side is increasing in :math:`\alpha` with its root in
:math:`[w^\top x - |c|, w^\top x + |c|]`; bisection finds it, and then
:math:`z = x - \hat u\, h(\alpha + b)`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from coursekit._validation import check_count
from coursekit.flows.base import Transform

_BISECTION_STEPS = 60  # halves a bracket of width 2|c| down to below float64's resolution


class PlanarTransform(Transform):
    r"""One planar layer on ``(batch, features)``; see the module doc for the equations.

    Args:
        features: the dimension ``d``.
        constrained: use :math:`\hat u` (invertible, the default); with ``False`` ``u`` is
            used as is, so the map folds the plane when :math:`w^\top u < -1`. ``inverse``
            (noise to data) is then still defined, but ``forward`` (data to noise) is not
            and raises ``ValueError``.

    Parameters ``u``, ``w`` (``(d,)``, drawn from :math:`N(0, 1/d)`) and ``b`` (scalar, 0).
    """

    def __init__(self, features: int, constrained: bool = True):
        super().__init__()
        self.features = check_count(features, "features")
        if not isinstance(constrained, bool):
            raise TypeError(f"constrained: expected a bool, got {constrained!r}")
        self.constrained = constrained
        std = 1.0 / math.sqrt(self.features)
        self.u = nn.Parameter(torch.randn(self.features) * std)
        self.w = nn.Parameter(torch.randn(self.features) * std)
        self.b = nn.Parameter(torch.zeros(()))

    def u_hat(self) -> torch.Tensor:
        r""":math:`\hat u` ``(d,)``, with :math:`w^\top \hat u = -1 + \operatorname{softplus}
        (w^\top u) > -1` (``u`` itself when ``constrained=False``)."""
        if not self.constrained:
            return self.u
        wu = self.w @ self.u
        return self.u + (F.softplus(wu) - 1.0 - wu) * self.w / (self.w @ self.w)

    def _logabsdet(self, a: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        r""":math:`\log|1 + h'(a)\, c|` with :math:`h' = 1 - \tanh^2`: ``(batch,)``."""
        return torch.log(torch.abs(1.0 + (1.0 - torch.tanh(a) ** 2) * c))

    def inverse(self, z):
        """Noise to data, the planar map itself: ``z (batch, d)`` -> ``(x, log|det dx/dz|)``."""
        u = self.u_hat()
        a = z @ self.w + self.b
        x = z + torch.tanh(a)[:, None] * u
        return x, self._logabsdet(a, self.w @ u)

    def forward(self, x):
        r"""Data to noise by the 1-D root find: ``x (batch, d)`` -> ``(z, log|det dz/dx|)``.

        The bisection runs without gradients; one Newton step from its root,
        :math:`\alpha = \alpha_0 - g(\alpha_0) / g'(\alpha_0)`, leaves the value unchanged
        and gives the gradients of the implicit function :math:`\alpha(x, u, w, b)`.
        """
        u = self.u_hat()
        c = self.w @ u
        if bool(c < -1.0):
            raise ValueError(f"x: cannot map data to noise: with constrained=False and "
                             f"w.u = {float(c.detach()):.4g} < -1 the planar map folds the "
                             "plane and has no inverse; use constrained=True")
        target = x @ self.w
        with torch.no_grad():
            lo, hi = target - c.abs(), target + c.abs()
            for _ in range(_BISECTION_STEPS):
                mid = 0.5 * (lo + hi)
                above = mid + c * torch.tanh(mid + self.b) > target
                lo, hi = torch.where(above, lo, mid), torch.where(above, mid, hi)
            alpha0 = 0.5 * (lo + hi)
        slope = 1.0 + c * (1.0 - torch.tanh(alpha0 + self.b) ** 2)
        residual = alpha0 + c * torch.tanh(alpha0 + self.b) - target
        alpha = alpha0 - residual / slope.clamp_min(torch.finfo(x.dtype).tiny)
        a = alpha + self.b
        z = x - torch.tanh(a)[:, None] * u
        return z, -self._logabsdet(a, c)

    def extra_repr(self) -> str:
        return f"features={self.features}, constrained={self.constrained}"
