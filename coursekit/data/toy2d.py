"""Two-dimensional toy densities with known log-density and entropy.

Every data set here is a *known* distribution, so a lecture can compare a
model's test negative log-likelihood with the best value any model can reach:
the entropy H(p) = -E_p[log p(x)] (in nats).

Two kinds of density appear:

* exact: ``8gaussians`` (a mixture of 8 isotropic Gaussians) and
  ``checkerboard`` (uniform on 8 unit squares), whose log-density has a closed
  form;
* noisy manifolds: ``moons``, ``circles``, ``rings``, ``swissroll``,
  ``pinwheel`` and ``2spirals``. A point is drawn as
  ``x = m_c(u) + sigma * eps`` with a branch ``c ~ Cat(w)``, ``u ~ U(0, 1)``
  and ``eps ~ N(0, I)``, so

      p(x) = sum_c w_c * int_0^1 N(x; m_c(u), sigma^2 I) du,

  which we evaluate by the midpoint rule on a fine grid of ``u`` (the grid
  spacing along the curve is far below ``sigma``, so the quadrature error is
  negligible next to Monte Carlo error in any experiment).

The entropy is computed once per data set by integrating ``-p log p`` on a
fine grid (exact for ``checkerboard``: log 8) and cached.

:data:`MODE_COLLAPSE` adds the two mode-collapse benchmarks of the GAN literature,
``ring8`` (8 Gaussians on a circle of radius 1, sigma 0.01) and ``grid25`` (25
Gaussians on {-4, -2, 0, 2, 4}^2, sigma 0.05): exact densities whose entropy is
log k + log(2 pi e sigma^2); :func:`mode_centres` gives their centres and sigma.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cache, partial

import numpy as np
import torch
from scipy.spatial import cKDTree

from coursekit._validation import check_count
from coursekit.functional import LOG_2PI
from coursekit.runtime import make_generator

TOY2D = (
    "moons",
    "circles",
    "8gaussians",
    "checkerboard",
    "swissroll",
    "pinwheel",
    "rings",
    "2spirals",
)
# The two mode-collapse benchmarks of the GAN literature (VEEGAN, PacGAN): modes so
# narrow that a model either covers one or misses it. Kept out of TOY2D, which the
# density-estimation lectures and benchmarks sweep.
MODE_COLLAPSE = ("ring8", "grid25")


@dataclass(frozen=True)
class ToyDensity:
    """A named 2-D distribution: ``sample``, ``log_prob``, ``entropy``.

    Attributes:
        name: one of :data:`TOY2D`.
        description: one sentence on how a sample is drawn and its parameters.
        extent: ``(xmin, xmax, ymin, ymax)`` that holds essentially all the mass,
            used for plots and grid integration.
        exact: True where ``log_prob`` is a closed form, False where it is a
            quadrature over the latent curve parameter.
    """

    name: str
    description: str
    extent: tuple[float, float, float, float]
    exact: bool
    _sampler: object = field(repr=False)
    _log_prob: object = field(repr=False)
    _entropy: object = field(repr=False, default=None)

    def sample(self, n: int, seed: int | torch.Generator | None = None) -> torch.Tensor:
        """Draw ``n`` points, a float32 tensor of shape ``(n, 2)``."""
        n = check_count(n, "n")
        gen = make_generator(seed)
        return self._sampler(n, gen).to(torch.float32)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x) for ``x`` of shape ``(..., 2)``; returns shape ``(...)``.

        A point with an infinite coordinate has density 0 (``-inf``); a NaN
        coordinate raises ``ValueError``. Computed in float64 and returned in
        ``x``'s floating dtype and device.
        """
        x = _check_points(x)
        flat = x.detach().to("cpu", torch.float64).reshape(-1, 2)
        finite = torch.isfinite(flat).all(dim=1)
        out = torch.full((flat.shape[0],), -math.inf, dtype=torch.float64)
        if bool(finite.any()):
            out[finite] = self._log_prob(flat[finite])
        dtype = x.dtype if x.dtype.is_floating_point else torch.float32
        return out.reshape(x.shape[:-1]).to(device=x.device, dtype=dtype)

    def entropy(self) -> float:
        """Differential entropy H(p) = -E_p[log p(x)] in nats (cached)."""
        if self._entropy is not None:
            return float(self._entropy)
        return _grid_entropy(self.name)


def _check_points(x) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        x = torch.as_tensor(np.asarray(x, dtype=np.float64))
    if x.ndim == 0 or x.shape[-1] != 2:
        raise ValueError(f"x: expected points of shape (..., 2), got shape {tuple(x.shape)}")
    nan = torch.isnan(x) if x.dtype.is_floating_point else None
    if nan is not None and bool(nan.any()):
        row = tuple(int(i) for i in nan.nonzero()[0][:-1])
        raise ValueError(f"x: expected numbers, got NaN in the point at index {row} "
                         f"({nan.any(dim=-1).sum().item()} point(s) in all)")
    return x


# ---------------------------------------------------------------------------
# exact densities

def _gaussian_ring_centres(k: int = 8, radius: float = 2.0) -> torch.Tensor:
    angles = torch.arange(k, dtype=torch.float64) * (2 * math.pi / k)
    return radius * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)


def _isotropic_mixture_log_prob(x, centres, sigma, log_weights):
    """log sum_j w_j N(x; centres_j, sigma^2 I); x (n, 2), centres (m, 2)."""
    d2 = torch.cdist(x, centres).pow(2)  # (n, m)
    log_kernel = -0.5 * d2 / sigma**2 - LOG_2PI - 2 * math.log(sigma)
    return torch.logsumexp(log_kernel + log_weights, dim=1)


# equal-weight isotropic Gaussian mixtures: (centres (k, 2), sigma)
_MIXTURES = {
    "8gaussians": (_gaussian_ring_centres(8, radius=2.0), 0.2),
    # the mode-collapse benchmarks: modes 40 sigma or more apart
    "ring8": (_gaussian_ring_centres(8, radius=1.0), 0.01),
    "grid25": (torch.tensor([(float(i), float(j)) for i in range(-4, 5, 2)
                             for j in range(-4, 5, 2)], dtype=torch.float64), 0.05),
}


def mode_centres(name: str) -> tuple[torch.Tensor, float]:
    """``(centres (k, 2) float64, sigma)`` of an equal-weight Gaussian-mixture data set
    (``8gaussians``, ``ring8``, ``grid25``): what mode-coverage metrics compare with."""
    if name not in _MIXTURES:
        raise ValueError(f"name: expected 8gaussians or one of {', '.join(MODE_COLLAPSE)}, "
                         f"got {name!r}")
    centres, sigma = _MIXTURES[name]
    return centres.clone(), sigma


def _mixture_sample(name):
    centres, sigma = _MIXTURES[name]

    def sample(n, gen):
        idx = torch.randint(0, len(centres), (n,), generator=gen)
        return centres[idx] + sigma * torch.randn(n, 2, generator=gen, dtype=torch.float64)

    return sample


def _mixture_log_prob(name):
    centres, sigma = _MIXTURES[name]
    log_w = torch.full((len(centres),), -math.log(len(centres)), dtype=torch.float64)
    return partial(_isotropic_mixture_log_prob, centres=centres, sigma=sigma, log_weights=log_w)


def _separated_mixture_entropy(name) -> float:
    """log k + log(2 pi e sigma^2): exact up to the overlap of the components, below
    exp(-700) for ring8 and grid25 (not for 8gaussians, whose entropy is integrated)."""
    centres, sigma = _MIXTURES[name]
    return math.log(len(centres)) + math.log(2 * math.pi * math.e * sigma**2)


# the 8 "black" unit squares of a 4x4 board on [-2, 2]^2 (lower-left corners)
_CHECKER_CORNERS = torch.tensor(
    [(i, j) for i in range(-2, 2) for j in range(-2, 2) if (i + j) % 2 == 0],
    dtype=torch.float64,
)


def _checker_sample(n, gen):
    idx = torch.randint(0, 8, (n,), generator=gen)
    return _CHECKER_CORNERS[idx] + torch.rand(n, 2, generator=gen, dtype=torch.float64)


def _checker_log_prob(x):
    cell = torch.floor(x)
    inside = (x.abs() <= 2).all(dim=1) & ((cell.sum(dim=1) % 2) == 0)
    # points exactly on x = 2 or y = 2 belong to the closed board
    out = torch.full((x.shape[0],), -math.inf, dtype=torch.float64)
    out[inside] = -math.log(8.0)
    return out


# ---------------------------------------------------------------------------
# noisy manifolds: branch c ~ Cat(w), u ~ U(0, 1), x = m_c(u) + sigma * eps


@dataclass(frozen=True)
class _NoisyManifold:
    curves: tuple  # callables u -> (m, 2)
    weights: tuple  # branch probabilities
    sigma: float
    nodes: int  # quadrature nodes per branch: curve spacing well below sigma

    def sample(self, n, gen):
        w = torch.tensor(self.weights, dtype=torch.float64)
        branch = torch.multinomial(w, n, replacement=True, generator=gen)
        u = torch.rand(n, generator=gen, dtype=torch.float64)
        eps = torch.randn(n, 2, generator=gen, dtype=torch.float64)
        centres = torch.empty(n, 2, dtype=torch.float64)
        for c, curve in enumerate(self.curves):
            mask = branch == c
            if mask.any():
                centres[mask] = curve(u[mask])
        return centres + self.sigma * eps

    @property
    def quadrature(self):
        """All quadrature centres (M, 2), their log-weights (M,) and a KD-tree of the centres."""
        return _manifold_quadrature(self)

    def log_prob(self, x, far_exact: bool = True):
        """Quadrature of the module doc's integral.

        A point within ``_NEAR`` sigma of its nearest node (at distance ``d``) sums
        over the nodes within ``_CUTOFF`` sigma (a sparse ball): a node further out
        has a term below ``exp(-(_CUTOFF^2 - _NEAR^2) / 2)`` times the nearest one's,
        so the sum is off by less than ``M exp(-27.5) ~ 5e-9`` relative for the
        ``M <= 4000`` nodes here. Every other point sums over all nodes, in chunks.
        With ``far_exact=False`` points further than ``_CUTOFF`` sigma from every node
        get -inf instead (their density is below exp(-_CUTOFF^2 / 2) / (2 pi sigma^2),
        which is all the entropy integral needs).
        """
        centres, log_w, tree = self.quadrature
        pts, sigma = x.numpy(), self.sigma
        out = np.full(len(pts), -np.inf)
        if len(pts) == 0:
            return torch.from_numpy(out)
        nearest, _ = tree.query(pts, k=1)
        close = np.flatnonzero(nearest <= _NEAR * sigma)
        pairs = tree.sparse_distance_matrix(cKDTree(pts[close]), _CUTOFF * sigma,
                                            output_type="ndarray")
        _log_sum_kernels(out, close[pairs["j"]], pairs["i"], pairs["v"], log_w.numpy(), sigma)
        out -= LOG_2PI + 2 * math.log(sigma)
        rest = nearest > _NEAR * sigma
        if not far_exact:
            rest &= nearest <= _CUTOFF * sigma
        rest = torch.from_numpy(np.flatnonzero(rest))
        for chunk in rest.split(max(1, 2 ** 22 // len(log_w))):  # (chunk, M) <= 32 MB
            out[chunk.numpy()] = _isotropic_mixture_log_prob(x[chunk], centres, sigma,
                                                             log_w).numpy()
        return torch.from_numpy(out)


def _log_sum_kernels(out, row, node, dist, log_w, sigma) -> None:
    """``out[r] = log sum_j w_j exp(-dist_rj^2 / 2 sigma^2)`` over the given (row, node)
    pairs, a log-sum-exp per row (rows without pairs keep their value)."""
    if not len(row):
        return
    log_k = log_w[node] - 0.5 * (dist / sigma) ** 2
    order = np.argsort(row, kind="stable")
    row, log_k = row[order], log_k[order]
    starts = np.flatnonzero(np.r_[True, row[1:] != row[:-1]])
    peak = np.maximum.reduceat(log_k, starts)
    counts = np.diff(np.r_[starts, len(row)])
    total = np.add.reduceat(np.exp(log_k - np.repeat(peak, counts)), starts)
    out[row[starts]] = peak + np.log(total)


_CUTOFF = 8.0
_NEAR = 3.0


@cache
def _manifold_quadrature(manifold: _NoisyManifold):
    u = (torch.arange(manifold.nodes, dtype=torch.float64) + 0.5) / manifold.nodes
    centres = torch.cat([curve(u) for curve in manifold.curves])
    log_w = torch.cat(
        [torch.full((manifold.nodes,), math.log(w / manifold.nodes), dtype=torch.float64)
         for w in manifold.weights]
    )
    return centres, log_w, cKDTree(centres.numpy())


def _moon_upper(u):
    t = math.pi * u
    return 2.0 * torch.stack([torch.cos(t) - 0.5, torch.sin(t) - 0.25], dim=1)


def _moon_lower(u):
    return -_moon_upper(u)


def _circle(radius):
    def curve(u):
        t = 2 * math.pi * u
        return radius * torch.stack([torch.cos(t), torch.sin(t)], dim=1)

    return curve


def _swissroll(u):
    t = 1.5 * math.pi + 3.0 * math.pi * u  # t in [1.5 pi, 4.5 pi]
    return (t / 5.0).unsqueeze(1) * torch.stack([torch.cos(t), torch.sin(t)], dim=1)


def _pinwheel_arm(k, arms=5, radial_mean=1.0, radial_std=0.3, rate=0.25):
    def curve(u):
        # radius s ~ N(radial_mean, radial_std^2) through its inverse CDF, so u ~ U(0, 1)
        s = radial_mean + radial_std * math.sqrt(2) * torch.erfinv(2 * u - 1)
        angle = 2 * math.pi * k / arms + rate * torch.exp(s) * math.pi
        return (1.5 * s).unsqueeze(1) * torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)

    return curve


def _spiral(sign):
    def curve(u):
        a = 3 * math.pi * torch.sqrt(u)  # more mass far out, as in the classic data set
        return sign * (a / (3 * math.pi) * 3.0).unsqueeze(1) * torch.stack(
            [-torch.cos(a), torch.sin(a)], dim=1
        )

    return curve


_RING_RADII = (0.75, 1.5, 2.25, 3.0)

_MANIFOLDS = {
    "moons": _NoisyManifold((_moon_upper, _moon_lower), (0.5, 0.5), 0.15, 400),
    "circles": _NoisyManifold((_circle(1.0), _circle(2.0)), (0.5, 0.5), 0.1, 600),
    "rings": _NoisyManifold(
        tuple(_circle(r) for r in _RING_RADII),
        tuple(r / sum(_RING_RADII) for r in _RING_RADII),
        0.08,
        1000,
    ),
    "swissroll": _NoisyManifold((_swissroll,), (1.0,), 0.1, 1200),
    "pinwheel": _NoisyManifold(tuple(_pinwheel_arm(k) for k in range(5)), (0.2,) * 5, 0.1, 800),
    "2spirals": _NoisyManifold((_spiral(1.0), _spiral(-1.0)), (0.5, 0.5), 0.1, 800),
}

_DESCRIPTIONS = {
    "moons": "two interleaved half circles (radius 2, centred), branch p=1/2, angle ~ U(0, pi), "
    "Gaussian noise sigma=0.15",
    "circles": "two concentric circles of radius 1 and 2, branch p=1/2, angle ~ U(0, 2 pi), "
    "Gaussian noise sigma=0.1",
    "8gaussians": "mixture of 8 equally weighted Gaussians with centres on a circle of radius 2 "
    "and standard deviation 0.2",
    "checkerboard": "uniform on the 8 'black' unit squares of a 4x4 board on [-2, 2]^2 "
    "(entropy log 8)",
    "swissroll": "spiral r = t/5 for t ~ U(1.5 pi, 4.5 pi), Gaussian noise sigma=0.1",
    "pinwheel": "5 arms; radius s ~ N(1, 0.3^2) scaled by 1.5, angle 2 pi k/5 + 0.25 pi exp(s), "
    "Gaussian noise sigma=0.1",
    "rings": "4 concentric circles of radius 0.75, 1.5, 2.25, 3 chosen with probability "
    "proportional to radius (uniform along the arc), Gaussian noise sigma=0.08",
    "2spirals": "two interleaved spirals of 1.5 turns, radius proportional to angle a = 3 pi "
    "sqrt(u), Gaussian noise sigma=0.1",
    "ring8": "mixture of 8 equally weighted Gaussians with centres on a circle of radius 1 "
    "and standard deviation 0.01 (a mode-collapse benchmark)",
    "grid25": "mixture of 25 equally weighted Gaussians centred on {-4, -2, 0, 2, 4}^2 with "
    "standard deviation 0.05 (a mode-collapse benchmark)",
}

_EXTENTS = {
    "moons": (-3.8, 3.8, -2.4, 2.4),
    "circles": (-2.6, 2.6, -2.6, 2.6),
    "8gaussians": (-3.0, 3.0, -3.0, 3.0),
    "checkerboard": (-2.2, 2.2, -2.2, 2.2),
    "swissroll": (-3.4, 3.4, -3.4, 3.4),
    "pinwheel": (-4.0, 4.0, -4.0, 4.0),
    "rings": (-3.5, 3.5, -3.5, 3.5),
    "2spirals": (-3.6, 3.6, -3.6, 3.6),
    "ring8": (-1.2, 1.2, -1.2, 1.2),
    "grid25": (-4.6, 4.6, -4.6, 4.6),
}


def _build(name: str) -> ToyDensity:
    if name == "checkerboard":
        return ToyDensity(name, _DESCRIPTIONS[name], _EXTENTS[name], True,
                          _checker_sample, _checker_log_prob, math.log(8.0))
    if name in _MIXTURES:
        entropy = None if name == "8gaussians" else _separated_mixture_entropy(name)
        return ToyDensity(name, _DESCRIPTIONS[name], _EXTENTS[name], True,
                          _mixture_sample(name), _mixture_log_prob(name), entropy)
    m = _MANIFOLDS[name]
    return ToyDensity(name, _DESCRIPTIONS[name], _EXTENTS[name], False, m.sample, m.log_prob)


def _check_name(name) -> str:
    if not isinstance(name, str) or name not in TOY2D + MODE_COLLAPSE:
        raise ValueError(f"name: expected one of {', '.join(TOY2D + MODE_COLLAPSE)}, "
                         f"got {name!r}")
    return name


@cache
def get_toy2d(name: str) -> ToyDensity:
    """The :class:`ToyDensity` called ``name`` (one of :data:`TOY2D` or
    :data:`MODE_COLLAPSE`)."""
    return _build(_check_name(name))


@cache
def _grid_entropy(name: str, resolution: int = 250) -> float:
    """-sum p log p dA on a ``resolution``^2 grid over the data set's extent (nats)."""
    dist = get_toy2d(name)
    log_prob = (partial(_MANIFOLDS[name].log_prob, far_exact=False) if name in _MANIFOLDS
                else dist.log_prob)
    x0, x1, y0, y1 = dist.extent
    xs = torch.linspace(x0, x1, resolution, dtype=torch.float64)
    ys = torch.linspace(y0, y1, resolution, dtype=torch.float64)
    grid = torch.cartesian_prod(xs, ys)
    logp = log_prob(grid)
    cell = (xs[1] - xs[0]) * (ys[1] - ys[0])
    p = logp.exp()
    return float(-(p * torch.where(p > 0, logp, torch.zeros_like(logp))).sum() * cell)


def toy2d(name: str, n: int, seed: int | torch.Generator | None = None) -> torch.Tensor:
    """Sample ``n`` points from the toy data set ``name``: float32 tensor ``(n, 2)``.

    The same ``seed`` (an int or a ``torch.Generator``) gives the same points;
    ``seed=None`` draws fresh ones. See :data:`TOY2D` for the names and
    ``get_toy2d(name).description`` for each one's parameters.
    """
    return get_toy2d(name).sample(n, seed)


def toy2d_log_prob(name: str, x: torch.Tensor) -> torch.Tensor:
    """True log-density of data set ``name`` at ``x`` ``(..., 2)`` -> ``(...)``."""
    return get_toy2d(name).log_prob(x)


def toy2d_entropy(name: str) -> float:
    """True entropy (nats) of data set ``name``: the lowest reachable test NLL."""
    return get_toy2d(name).entropy()
