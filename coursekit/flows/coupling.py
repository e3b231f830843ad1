r"""Coupling layers (NICE, RealNVP), NICE's diagonal rescaling and fixed permutations.

A coupling layer splits ``x`` by a binary mask into a part ``x_A`` it passes through and
a part ``x_B`` it changes with parameters computed from ``x_A`` by any network:

.. math::
    \text{additive (NICE):}\quad z_B = x_B + t(x_A),\qquad \log|\det| = 0;

    \text{affine (RealNVP):}\quad z_B = x_B \odot e^{s(x_A)} + t(x_A),\qquad
    \log|\det| = \textstyle\sum_j s_j(x_A).

The Jacobian is block-triangular (``z_A = x_A``), so its determinant is the product of
the diagonal, and the inverse needs one pass of the same network. Alternating the mask
(or permuting between layers) lets every feature be changed.
"""

from __future__ import annotations

import torch
from torch import nn

from coursekit._validation import as_generator, check_count
from coursekit.autoregressive.base import check_ordering
from coursekit.flows.base import Transform

_SCALE_BOUND = 2.0  # affine log-scales are soft-clamped to (-2, 2)


def _coupling_mask(features: int, mask) -> torch.Tensor:
    """A bool ``(features,)`` mask, True where a feature is transformed."""
    if isinstance(mask, str):
        if mask not in ("even", "odd"):
            raise ValueError(f"mask: expected 'even', 'odd' or a 0/1 vector, got {mask!r}")
        out = torch.arange(features) % 2 == (0 if mask == "even" else 1)
    else:
        out = torch.as_tensor(mask).flatten()
        if out.numel() != features or not bool(((out == 0) | (out == 1)).all()):
            raise ValueError(f"mask: expected 'even', 'odd' or a 0/1 vector of length "
                             f"{features}, got {mask!r}")
        out = out.to(torch.bool)
    if not bool(out.any()):
        raise ValueError(f"mask: expected at least one transformed feature (a 1), "
                         f"got {out.int().tolist()}")
    return out


def _mlp(n_in: int, n_out: int, hidden) -> nn.Sequential:
    """``n_in -> hidden... -> n_out`` with ReLU between the linear layers."""
    sizes = tuple(hidden) if isinstance(hidden, (list, tuple)) else None
    if not sizes:
        raise ValueError(f"hidden: expected a non-empty list of ints, got {hidden!r}")
    widths = (n_in,) + tuple(check_count(h, "hidden") for h in sizes)
    layers: list[nn.Module] = []
    for a, b in zip(widths, widths[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(widths[-1], n_out))


class _Coupling(Transform):
    """The split and the conditioner network shared by the two coupling layers."""

    n_params = 1  # parameters per transformed feature

    def __init__(self, features: int, mask="even", hidden=(64, 64)):
        super().__init__()
        self.features = check_count(features, "features")
        m = _coupling_mask(self.features, mask)
        self.register_buffer("transformed", m.nonzero().flatten())
        self.register_buffer("identity", (~m).nonzero().flatten())
        self.net = _mlp(len(self.identity), self.n_params * len(self.transformed), hidden)

    def _params(self, x_a: torch.Tensor) -> torch.Tensor:
        """``x_A (batch, |A|)`` -> ``(batch, |B|, n_params)``."""
        return self.net(x_a).reshape(x_a.shape[0], len(self.transformed), self.n_params)

    def _couple(self, x: torch.Tensor, inverse: bool) -> tuple[torch.Tensor, torch.Tensor]:
        params = self._params(x[:, self.identity])
        y_b, logabsdet = self._transform_b(x[:, self.transformed], params, inverse)
        return x.index_copy(1, self.transformed, y_b), logabsdet

    def forward(self, x):
        """Data to noise: ``x (batch, d)`` -> ``(z, logabsdet (batch,))``."""
        return self._couple(x, inverse=False)

    def inverse(self, z):
        """Noise to data: ``z (batch, d)`` -> ``(x, logabsdet (batch,))``."""
        return self._couple(z, inverse=True)

    def extra_repr(self) -> str:
        return f"features={self.features}, transformed={self.transformed.tolist()}"


class AdditiveCoupling(_Coupling):
    r"""NICE's coupling: :math:`z_B = x_B + t(x_A)`, volume-preserving (log|det| = 0).

    Args:
        features: the dimension ``d``.
        mask: ``"even"`` (transform features 0, 2, ...), ``"odd"`` (1, 3, ...) or a 0/1
            vector of length ``d`` with 1 where a feature is transformed.
        hidden: the widths of ``t``'s hidden layers (ReLU MLP).
    """

    def _transform_b(self, x_b, params, inverse):
        t = params[..., 0]
        return (x_b - t if inverse else x_b + t), x_b.new_zeros(x_b.shape[0])


class AffineCoupling(_Coupling):
    r"""RealNVP's coupling: :math:`z_B = x_B \odot e^{s(x_A)} + t(x_A)`,
    :math:`\log|\det| = \sum_j s_j`, with :math:`s = 2\tanh(\tilde s / 2)` soft-clamped to
    ``(-2, 2)`` so a layer cannot blow a direction up or collapse it.

    Arguments as :class:`AdditiveCoupling`; the network outputs ``(t, \tilde s)`` per
    transformed feature.
    """

    n_params = 2

    def _transform_b(self, x_b, params, inverse):
        t = params[..., 0]
        s = _SCALE_BOUND * torch.tanh(params[..., 1] / _SCALE_BOUND)
        if inverse:
            return (x_b - t) * torch.exp(-s), -s.sum(-1)
        return x_b * torch.exp(s) + t, s.sum(-1)


class Rescale(Transform):
    r"""NICE's final diagonal scaling: :math:`z = x \odot e^{s}`, :math:`\log|\det| = \sum_j s_j`.

    Parameter ``log_scale`` ``(d,)``, initialised to 0 (the identity).
    """

    def __init__(self, features: int):
        super().__init__()
        self.features = check_count(features, "features")
        self.log_scale = nn.Parameter(torch.zeros(self.features))

    def forward(self, x):
        return x * torch.exp(self.log_scale), self.log_scale.sum().expand(x.shape[0])

    def inverse(self, z):
        return z * torch.exp(-self.log_scale), -self.log_scale.sum().expand(z.shape[0])

    def extra_repr(self) -> str:
        return f"features={self.features}"


class Permutation(Transform):
    """``z = x[:, perm]`` (log|det| = 0): reorders the features between layers.

    Args:
        perm: a permutation of ``0..d-1`` (list or LongTensor).
    """

    def __init__(self, perm):
        super().__init__()
        n = torch.as_tensor(perm).numel()
        perm = check_ordering(perm, check_count(n, "perm"), "perm")
        self.features = n
        self.register_buffer("perm", perm)
        self.register_buffer("inverse_perm", torch.argsort(perm))

    def forward(self, x):
        return x[:, self.perm], x.new_zeros(x.shape[0])

    def inverse(self, z):
        return z[:, self.inverse_perm], z.new_zeros(z.shape[0])

    def extra_repr(self) -> str:
        return f"perm={self.perm.tolist()}"


class ReversePermutation(Permutation):
    """``z = x[:, ::-1]``: the permutation between MAF blocks."""

    def __init__(self, features: int):
        super().__init__(torch.arange(check_count(features, "features") - 1, -1, -1))


class RandomPermutation(Permutation):
    """A fixed permutation drawn with ``seed`` (an int or ``torch.Generator``)."""

    def __init__(self, features: int, seed=0):
        features = check_count(features, "features")
        super().__init__(torch.randperm(features, generator=as_generator(seed, "seed")))
