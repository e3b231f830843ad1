r"""The contract every normalizing flow in coursekit follows.

A flow is an invertible map ``f`` between data ``x`` and noise ``z`` of the same
dimension. With ``z = f(x)`` and a base density ``p_Z``, the change of variables gives

.. math::
    \log p_X(x) = \log p_Z\big(f(x)\big) + \log\Big|\det \frac{\partial f(x)}{\partial x}\Big| .

One direction is fixed for the whole library (as in nflows): a :class:`Transform`'s

* ``forward(x) -> (z, logabsdet)`` maps **data to noise**, ``logabsdet = log|det df/dx|``;
* ``inverse(z) -> (x, logabsdet)`` maps **noise to data**, ``logabsdet = log|det df^{-1}/dz|``,

both ``(batch,)`` log-determinants, so ``forward(inverse(z))`` returns ``z`` and
log-determinants that are each other's negatives. :class:`Compose` chains transforms
(data to noise in the order given) and sums their log-determinants;
:class:`InverseTransform` swaps the two directions (an IAF is an inverted MAF).
:class:`Flow` pairs a transform with a base distribution (:class:`StandardNormal` by
default) and exposes ``log_prob(x)`` and ``sample(n)``, and the transform's two
directions as ``forward(x)`` and ``inverse(z)``.
"""

from __future__ import annotations

import torch
from torch import nn

from coursekit._validation import as_generator, check_count, check_rows
from coursekit.functional import _log_standard_normal
from coursekit.runtime import module_dtype_device


class Transform(nn.Module):
    """An invertible map between data and noise (see the module doc for the directions)."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Data to noise: ``x (batch, ...)`` -> ``(z (batch, ...), logabsdet (batch,))``."""
        raise NotImplementedError

    def inverse(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Noise to data: ``z (batch, ...)`` -> ``(x (batch, ...), logabsdet (batch,))``."""
        raise NotImplementedError


class Compose(Transform):
    r"""``f = f_K \circ \dots \circ f_1``: ``forward`` applies the transforms in the order
    given (data to noise) and sums their log-determinants; ``inverse`` runs them
    backwards. The chain rule makes the Jacobian a product, so
    :math:`\log|\det J_f| = \sum_k \log|\det J_{f_k}|`."""

    def __init__(self, *transforms: Transform):
        super().__init__()
        if len(transforms) == 1 and isinstance(transforms[0], (list, tuple)):
            transforms = tuple(transforms[0])
        for i, t in enumerate(transforms):
            if not isinstance(t, Transform):
                raise TypeError(f"transforms[{i}]: expected a coursekit.flows.Transform, "
                                f"got {type(t).__name__}")
        self.transforms = nn.ModuleList(transforms)

    def forward(self, x):
        total = x.new_zeros(x.shape[0])
        for t in self.transforms:
            x, logabsdet = t(x)
            total = total + logabsdet
        return x, total

    def inverse(self, z):
        total = z.new_zeros(z.shape[0])
        for t in reversed(self.transforms):
            z, logabsdet = t.inverse(z)
            total = total + logabsdet
        return z, total


class InverseTransform(Transform):
    """``transform`` with its two directions swapped."""

    def __init__(self, transform: Transform):
        super().__init__()
        if not isinstance(transform, Transform):
            raise TypeError(f"transform: expected a coursekit.flows.Transform, "
                            f"got {type(transform).__name__}")
        self.transform = transform

    def forward(self, x):
        return self.transform.inverse(x)

    def inverse(self, z):
        return self.transform(z)


class StandardNormal(nn.Module):
    r"""``N(0, I)`` on ``features`` dimensions: ``log_prob(z) -> (batch,)``, ``sample(n)``.

    A module (with a zero-size buffer) so it follows the flow's ``.to(device, dtype)``.
    """

    def __init__(self, features: int):
        super().__init__()
        self.features = check_count(features, "features")
        self.register_buffer("_anchor", torch.zeros(0))

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return _log_standard_normal(z)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        a = self._anchor
        return torch.randn(n, self.features, generator=generator, device=a.device, dtype=a.dtype)


class Flow(nn.Module):
    r"""A normalizing flow: a :class:`Transform` (data to noise) and a base density.

    .. math:: \log p(x) = \log p_Z(f(x)) + \log|\det \partial f / \partial x|,\qquad
              x = f^{-1}(z),\ z \sim p_Z .

    Args:
        transform: the data-to-noise map.
        features: the dimension of ``x`` (and ``z``).
        base: a module with ``log_prob(z) -> (batch,)`` and ``sample(n, generator)``;
            default :class:`StandardNormal`.
    """

    def __init__(self, transform: Transform, features: int, base: nn.Module | None = None):
        super().__init__()
        if not isinstance(transform, Transform):
            raise TypeError(f"transform: expected a coursekit.flows.Transform, "
                            f"got {type(transform).__name__}")
        self.features = check_count(features, "features")
        if base is not None and not all(callable(getattr(base, m, None))
                                        for m in ("log_prob", "sample")):
            raise TypeError(f"base: expected a module with log_prob(z) and sample(n, generator), "
                            f"got {type(base).__name__}")
        self.transform = transform
        self.base = base if base is not None else StandardNormal(self.features)

    @property
    def event_shape(self) -> tuple[int, ...]:
        return (self.features,)

    def _check_x(self, x, name: str = "x") -> torch.Tensor:
        check_rows(x, name, self.features)
        dtype, device = module_dtype_device(self)
        return x.to(device=device, dtype=dtype)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Data to noise: ``(z, log|det df/dx|)``, shapes ``(batch, features)``, ``(batch,)``."""
        return self.transform(self._check_x(x))

    def inverse(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Noise to data: ``(x, log|det df^{-1}/dz|)``."""
        return self.transform.inverse(self._check_x(z, "z"))

    def transform_to_noise(self, x: torch.Tensor) -> torch.Tensor:
        """``z = f(x)``: ``(batch, features)``."""
        return self.forward(x)[0]

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact ``log p(x)``: ``(batch, features)`` -> ``(batch,)``."""
        z, logabsdet = self.transform(self._check_x(x))
        return self.base.log_prob(z) + logabsdet

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | int | None = None) -> torch.Tensor:
        """``x = f^{-1}(z)``, ``z ~ p_Z``: ``(n, features)``, without a gradient graph
        (use :meth:`sample_and_log_prob` to train through the samples)."""
        return self.sample_and_log_prob(n, generator)[0]

    def sample_and_log_prob(self, n: int, generator: torch.Generator | int | None = None
                            ) -> tuple[torch.Tensor, torch.Tensor]:
        r"""Samples and their log-density in one pass through the inverse:
        :math:`\log p(x) = \log p_Z(z) - \log|\det \partial f^{-1}/\partial z|`.
        Differentiable (reparameterised): what a flow trained by reverse KL needs."""
        n = check_count(n, "n")
        _, device = module_dtype_device(self)
        gen = None if generator is None else as_generator(generator, "generator", device)
        z = self.base.sample(n, generator=gen)
        x, logabsdet = self.transform.inverse(z)
        return x, self.base.log_prob(z) - logabsdet
