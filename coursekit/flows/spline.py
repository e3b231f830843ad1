r"""Rational-quadratic splines (Durkan et al. 2019, *Neural Spline Flows*).

A monotone map of ``[-B, B]`` onto itself made of ``K`` bins. Bin ``k`` runs from knot
``(x_k, y_k)`` to knot ``(x_{k+1}, y_{k+1})`` with width ``w_k``, height ``h_k``, slope
``s_k = h_k / w_k`` and derivatives ``d_k, d_{k+1}`` at its ends. With
``\xi = (x - x_k) / w_k \in [0, 1]``

.. math::
    y = y_k + \frac{h_k\,[s_k \xi^2 + d_k \xi(1-\xi)]}
                   {s_k + (d_{k+1} + d_k - 2 s_k)\,\xi(1-\xi)},
    \qquad
    \frac{dy}{dx} = \frac{s_k^2\,[d_{k+1}\xi^2 + 2 s_k \xi(1-\xi) + d_k (1-\xi)^2]}
                         {[s_k + (d_{k+1} + d_k - 2 s_k)\,\xi(1-\xi)]^2} > 0 .

Outside ``[-B, B]`` the map is the identity (linear tails), so the boundary knots have
derivative 1 and the whole map is continuously differentiable. The inverse solves the
quadratic ``a \xi^2 + b \xi + c = 0`` in closed form with the root
``\xi = 2c / (-b - \sqrt{b^2 - 4ac})``, which has no cancellation.

* :func:`rational_quadratic_spline`: the map itself, from unnormalised parameters;
  :func:`spline_knots`: the knots ``(x_k, y_k, d_k)`` those parameters give.
* :class:`Spline`: an elementwise spline with free parameters (one per feature; 1-D demos).
* :class:`SplineCoupling`: a neural-spline coupling layer, the conditioned half through a
  spline whose parameters an MLP computes from the other half.
* :class:`NSF`: a ready :class:`~coursekit.flows.base.Flow` of spline couplings with
  alternating masks.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from coursekit._validation import as_float_tensor, check_choice, check_count, check_number
from coursekit.flows.base import Compose, Flow, Transform

MIN_WIDTH = 1e-3
MIN_HEIGHT = 1e-3
MIN_DERIVATIVE = 1e-3

__all__ = ["NSF", "Spline", "SplineCoupling", "rational_quadratic_spline", "spline_knots"]


# --------------------------------------------------------------------------------------
# the spline
# --------------------------------------------------------------------------------------
def _knots(widths, heights, derivatives, bound, min_width, min_height, min_derivative):
    r"""Unnormalised ``(..., K), (..., K), (..., K-1)`` -> knots ``x, y (..., K+1)`` on
    ``[-B, B]`` and derivatives ``d (..., K+1)``:

    .. math:: w = m_w + (1 - K m_w)\,\mathrm{softmax}(\tilde w),\quad
              d_k = m_d + \mathrm{softplus}(\tilde d_k + c),\ \ d_0 = d_K = 1,

    with ``c`` such that ``m_d + softplus(c) = 1``: all-zero parameters give the identity.
    """
    k = widths.shape[-1]

    def edges(unnormalised, minimum):
        sizes = minimum + (1 - minimum * k) * torch.softmax(unnormalised, dim=-1)
        cum = F.pad(torch.cumsum(sizes, dim=-1), (1, 0))
        inner = 2 * bound * cum[..., 1:-1] - bound
        lo = torch.full_like(cum[..., :1], -bound)  # exact ends: no rounding past the bound
        return torch.cat([lo, inner, -lo], dim=-1)

    shift = math.log(math.expm1(1 - min_derivative))
    inner = min_derivative + F.softplus(derivatives + shift)
    one = torch.ones_like(inner[..., :1])
    return edges(widths, min_width), edges(heights, min_height), torch.cat([one, inner, one], -1)


def _gather(t, idx):
    return t.gather(-1, idx[..., None])[..., 0]


def _rq_spline(x, widths, heights, derivatives, inverse, bound, min_width=MIN_WIDTH,
               min_height=MIN_HEIGHT, min_derivative=MIN_DERIVATIVE):
    """The unchecked kernel of :func:`rational_quadratic_spline` (same arguments, broadcast
    parameters of shape ``x.shape + (K,)``)."""
    xk, yk, dk = _knots(widths, heights, derivatives, bound, min_width, min_height,
                        min_derivative)
    inside = (x >= -bound) & (x <= bound)
    u = x.clamp(-bound, bound)  # keeps the tails' (discarded) branch finite for autograd
    knots = yk if inverse else xk
    idx = (torch.searchsorted(knots[..., 1:-1].contiguous(), u[..., None].contiguous(),
                              right=True)[..., 0])
    x0, y0 = _gather(xk, idx), _gather(yk, idx)
    w = _gather(xk, idx + 1) - x0
    h = _gather(yk, idx + 1) - y0
    d0, d1 = _gather(dk, idx), _gather(dk, idx + 1)
    s = h / w
    curvature = d1 + d0 - 2 * s
    if inverse:
        dy = u - y0
        a = h * (s - d0) + dy * curvature
        b = h * d0 - dy * curvature
        c = -s * dy
        disc = (b * b - 4 * a * c).clamp_min(0)
        xi = (2 * c / (-b - torch.sqrt(disc))).clamp(0, 1)
        out = x0 + xi * w
    else:
        xi = (u - x0) / w
        mix = xi * (1 - xi)
        out = y0 + h * (s * xi * xi + d0 * mix) / (s + curvature * mix)
    mix = xi * (1 - xi)
    denom = s + curvature * mix
    log_deriv = (2 * torch.log(s) + torch.log(d1 * xi * xi + 2 * s * mix + d0 * (1 - xi) ** 2)
                 - 2 * torch.log(denom))
    if inverse:
        log_deriv = -log_deriv
    return torch.where(inside, out, x), torch.where(inside, log_deriv, torch.zeros_like(x))


def _check_params(x, widths, heights, derivatives, bound, min_width, min_height,
                  min_derivative):
    x = as_float_tensor(x, "x")
    named = {"widths": widths, "heights": heights, "derivatives": derivatives}
    named = {k: as_float_tensor(v, k).to(device=x.device) for k, v in named.items()}
    dtype = x.dtype
    for v in named.values():
        dtype = torch.promote_types(dtype, v.dtype)
    x = x.to(dtype)
    named = {k: v.to(dtype) for k, v in named.items()}
    for k, v in named.items():
        if v.dim() < 1:
            raise ValueError(f"{k}: expected shape (..., bins), got a scalar")
    bins = named["widths"].shape[-1]
    if bins < 2:
        raise ValueError(f"widths: expected at least 2 bins in the last dimension, "
                         f"got shape {tuple(named['widths'].shape)}")
    if named["heights"].shape[-1] != bins:
        raise ValueError(f"heights: expected last dimension {bins} like widths, "
                         f"got shape {tuple(named['heights'].shape)}")
    if named["derivatives"].shape[-1] != bins - 1:
        raise ValueError(f"derivatives: expected last dimension {bins - 1} (bins - 1 interior "
                         f"knots), got shape {tuple(named['derivatives'].shape)}")
    try:
        batch = torch.broadcast_shapes(x.shape, *(v.shape[:-1] for v in named.values()))
    except RuntimeError as err:
        raise ValueError(f"widths/heights/derivatives: expected batch shapes that broadcast "
                         f"with x {tuple(x.shape)}, got "
                         f"{', '.join(str(tuple(v.shape)) for v in named.values())}") from err
    for k, v in named.items():
        if not bool(torch.isfinite(v).all()):
            raise ValueError(f"{k}: expected finite values, got NaN or inf")
    if not bool(torch.isfinite(x).all()):
        raise ValueError("x: expected finite values, got NaN or inf")
    bound = check_number(bound, "bound", low=0, strict=True)
    check_number(min_width, "min_width", low=0, strict=True, high=1 / bins)
    check_number(min_height, "min_height", low=0, strict=True, high=1 / bins)
    check_number(min_derivative, "min_derivative", low=0, strict=True, high=0.5)
    params = [v.expand(*batch, v.shape[-1]) for v in named.values()]
    return x.expand(batch), params, bound


def rational_quadratic_spline(x, widths, heights, derivatives, inverse: bool = False,
                              bound: float = 5.0, min_width: float = MIN_WIDTH,
                              min_height: float = MIN_HEIGHT,
                              min_derivative: float = MIN_DERIVATIVE
                              ) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The monotone rational-quadratic spline on ``[-bound, bound]``, identity outside.

    Args:
        x: ``(...)`` points (``y`` points with ``inverse=True``).
        widths, heights: ``(..., K)`` unnormalised bin widths and heights (softmax, then at
            least ``min_width`` / ``min_height`` of the interval each).
        derivatives: ``(..., K-1)`` unnormalised derivatives at the interior knots
            (``min_derivative + softplus(. + c)``, all zeros give derivative 1; the two
            boundary knots have derivative 1 to match the identity tails).
        inverse: evaluate ``x = spline^{-1}(y)`` (closed-form root of the quadratic).
        bound: ``B``, half the width of the spline's interval.
        min_width, min_height: the smallest bin, as a fraction of ``2B`` (at most ``1/K``);
            min_derivative: the smallest interior derivative, in ``(0, 0.5]``.

    Batch shapes of ``x`` and the parameters broadcast.

    Returns:
        ``(y, logabsdet)``, both of the broadcast shape: the map and ``log|dy/dx|``
        elementwise (``log|dx/dy|`` with ``inverse=True``).
    """
    x, params, bound = _check_params(x, widths, heights, derivatives, bound, min_width,
                                     min_height, min_derivative)
    return _rq_spline(x, *params, inverse=bool(inverse), bound=bound, min_width=min_width,
                      min_height=min_height, min_derivative=min_derivative)


def spline_knots(widths, heights, derivatives, bound: float = 5.0,
                 min_width: float = MIN_WIDTH, min_height: float = MIN_HEIGHT,
                 min_derivative: float = MIN_DERIVATIVE
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The knots the unnormalised parameters give: ``x_k, y_k, d_k``, each ``(..., K+1)``,
    with ``x_0 = y_0 = -bound``, ``x_K = y_K = bound`` and ``d_0 = d_K = 1``."""
    anchor = as_float_tensor(widths, "widths").new_zeros(())
    _, (w, h, d), bound = _check_params(anchor, widths, heights, derivatives, bound,
                                        min_width, min_height, min_derivative)
    return _knots(w, h, d, bound, min_width, min_height, min_derivative)


# --------------------------------------------------------------------------------------
# transforms
# --------------------------------------------------------------------------------------
def _check_bins_bound(bins, bound) -> tuple[int, float]:
    return check_count(bins, "bins", minimum=2), check_number(bound, "bound", low=0, strict=True)


class Spline(Transform):
    """An elementwise spline with its own parameters per feature (no conditioner):
    ``x (batch, features) -> z``, ``logabsdet = sum_i log|dz_i/dx_i|``. Starts as the
    identity (all parameters zero)."""

    def __init__(self, features: int, bins: int = 8, bound: float = 5.0):
        super().__init__()
        self.features = check_count(features, "features")
        self.bins, self.bound = _check_bins_bound(bins, bound)
        self.widths = nn.Parameter(torch.zeros(self.features, self.bins))
        self.heights = nn.Parameter(torch.zeros(self.features, self.bins))
        self.derivatives = nn.Parameter(torch.zeros(self.features, self.bins - 1))

    def _spline(self, x, inverse):
        y, ld = _rq_spline(x, self.widths.expand(x.shape[0], -1, -1),
                           self.heights.expand(x.shape[0], -1, -1),
                           self.derivatives.expand(x.shape[0], -1, -1), inverse, self.bound)
        return y, ld.sum(-1)

    def forward(self, x):
        return self._spline(x, False)

    def inverse(self, z):
        return self._spline(z, True)


def _mlp(n_in: int, hidden: tuple[int, ...], n_out: int, activation=nn.ReLU) -> nn.Sequential:
    """``n_in -> hidden... -> n_out``; the last layer starts at zero (the flow starts as
    the identity)."""
    sizes = (n_in, *hidden)
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), activation()]
    last = nn.Linear(sizes[-1], n_out)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return nn.Sequential(*layers, last)


def _check_hidden(hidden) -> tuple[int, ...]:
    if not isinstance(hidden, (tuple, list)):
        raise TypeError(f"hidden: expected a tuple of layer widths, got {type(hidden).__name__}")
    return tuple(check_count(h, f"hidden[{i}]") for i, h in enumerate(hidden))


class SplineCoupling(Transform):
    r"""A neural-spline coupling layer: ``x = (x_A, x_B)``,

    .. math:: z_A = x_A,\qquad z_B = \mathrm{RQS}\big(x_B;\ \theta = \mathrm{MLP}(x_A)\big),
              \qquad \log|\det J| = \sum_{i \in B} \log \partial z_i/\partial x_i .

    Args:
        features: dimension ``D >= 2``.
        mask: ``"even"`` transforms the coordinates 0, 2, 4, ... given the others,
            ``"odd"`` transforms 1, 3, 5, ...
        bins, bound: the spline's ``K`` bins on ``[-bound, bound]``.
        hidden: the conditioner MLP's hidden widths (ReLU); its last layer starts at zero,
            so the layer starts as the identity.
    """

    def __init__(self, features: int, mask: str = "even", bins: int = 8, bound: float = 5.0,
                 hidden: tuple[int, ...] = (64, 64)):
        super().__init__()
        self.features = check_count(features, "features", minimum=2)
        check_choice(mask, "mask", ("even", "odd"))
        self.bins, self.bound = _check_bins_bound(bins, bound)
        transformed = torch.arange(self.features) % 2 == (0 if mask == "even" else 1)
        self.register_buffer("transformed", transformed.nonzero()[:, 0])
        self.register_buffer("identity", (~transformed).nonzero()[:, 0])
        self.conditioner = _mlp(len(self.identity), _check_hidden(hidden),
                                len(self.transformed) * (3 * self.bins - 1))

    def _spline(self, x, inverse):
        params = self.conditioner(x[:, self.identity])
        params = params.view(x.shape[0], len(self.transformed), 3 * self.bins - 1)
        w, h, d = params.split([self.bins, self.bins, self.bins - 1], dim=-1)
        y, ld = _rq_spline(x[:, self.transformed], w, h, d, inverse, self.bound)
        out = x.clone()
        out[:, self.transformed] = y
        return out, ld.sum(-1)

    def forward(self, x):
        return self._spline(x, False)

    def inverse(self, z):
        return self._spline(z, True)


class NSF(Flow):
    """A neural spline flow: ``layers`` :class:`SplineCoupling` layers with alternating
    masks (``even``, ``odd``, ...) and a standard normal base. For ``features=2`` each layer
    transforms one coordinate given the other.

    Args:
        features: data dimension ``D >= 2``.
        layers: number of coupling layers.
        bins, bound, hidden: as in :class:`SplineCoupling` (data should lie mostly inside
            ``[-bound, bound]``; outside it the layers are the identity).
    """

    def __init__(self, features: int = 2, layers: int = 4, bins: int = 8,
                 hidden: tuple[int, ...] = (64, 64), bound: float = 5.0):
        features = check_count(features, "features", minimum=2)
        layers = check_count(layers, "layers")
        transform = Compose(*(SplineCoupling(features, ("even", "odd")[i % 2], bins, bound,
                                             hidden) for i in range(layers)))
        super().__init__(transform, features)
