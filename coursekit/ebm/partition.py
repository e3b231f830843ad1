r"""The normaliser :math:`\log Z = \log\int e^{-E(x)}\,dx`: on a grid in 1-D and 2-D, and by
annealed importance sampling (AIS, Neal 2001) in any dimension.

* :func:`grid_log_partition`: the midpoint rule on ``r^d`` cells of a box. Exact up to the
  mass outside the box and the rule's error; the cost ``r^d`` is why it stops at 2-D (at
  ``r = 100`` points per axis, 64 dimensions would need :math:`10^{128}` evaluations).
* :func:`estimate_log_partition`: AIS from :math:`q = \mathcal N(0, s^2 I)` to
  :math:`e^{-E}` along :math:`f_\beta = q^{1-\beta} e^{-\beta E}`,
  :math:`0=\beta_0<\dots<\beta_T=1`, with MALA moves that leave each :math:`f_\beta`
  invariant. Each chain's weight
  :math:`\log w = \sum_t (\beta_t - \beta_{t-1})\,(-E(x_{t-1}) - \log q(x_{t-1}))`
  has :math:`\mathbb E[w] = Z`, so :math:`\hat Z = \overline{w}` is unbiased and
  :math:`\log\hat Z` is a stochastic lower bound (Jensen). The standard error comes from
  the spread of the weights (delta method).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from coursekit._validation import check_count, check_number
from coursekit.ebm.sampling import _check_bounds
from coursekit.mcmc import batch_values, langevin_proposal_log_prob
from coursekit.runtime import make_generator

__all__ = ["LogPartition", "estimate_log_partition", "grid_log_partition"]

Energy = Callable[[torch.Tensor], torch.Tensor]


@torch.no_grad()
def grid_log_partition(energy: Energy, extent: float = 4.0, resolution: int = 300, *,
                       dim: int = 2, dtype=torch.float64, device="cpu",
                       chunk: int = 65_536) -> float:
    r""":math:`\log\sum_{cells} e^{-E(c)}\,h^d` over ``resolution^dim`` cells of width
    :math:`h = 2\,\mathrm{extent}/\mathrm{resolution}` covering ``[-extent, extent]^dim``,
    ``c`` the cells' midpoints (``dim`` 1 or 2). ``energy`` receives ``(m, dim)`` points in
    ``dtype`` on ``device`` (a module is evaluated in its own dtype and cast back).
    """
    dim = check_count(dim, "dim")
    if dim > 2:
        raise ValueError(f"dim: expected 1 or 2 (a grid in {dim}-D needs resolution**{dim} "
                         f"evaluations; use estimate_log_partition), got {dim}")
    extent = check_number(extent, "extent", low=0.0, strict=True)
    resolution = check_count(resolution, "resolution", minimum=2)
    h = 2 * extent / resolution
    axis = torch.linspace(-extent + h / 2, extent - h / 2, resolution, dtype=dtype,
                          device=device)
    points = (torch.cartesian_prod(axis, axis) if dim == 2 else axis[:, None])
    log_terms = torch.cat([-batch_values(energy, part, "energy").to(dtype)
                           for part in points.split(check_count(chunk, "chunk"))])
    return float(torch.logsumexp(log_terms, 0)) + dim * math.log(h)


class LogPartition(tuple):
    """``(log_z, stderr)``, the AIS estimate and its standard error, as a named pair."""

    __slots__ = ()

    def __new__(cls, log_z: float, stderr: float):
        return super().__new__(cls, (log_z, stderr))

    def __getnewargs__(self):  # pickle and copy call __new__ with these
        return tuple(self)

    @property
    def log_z(self) -> float:
        return self[0]

    @property
    def stderr(self) -> float:
        return self[1]

    def __repr__(self) -> str:
        return f"LogPartition(log_z={self[0]:.4f}, stderr={self[1]:.4f})"


def _betas(n_steps: int, dtype) -> torch.Tensor:
    """A sigmoid-shaped path from 0 to 1 (small steps at both ends, where f_beta moves
    fastest), as in Grosse et al. (2013)."""
    s = torch.sigmoid(torch.linspace(-4.0, 4.0, n_steps + 1, dtype=torch.float64))
    return ((s - s[0]) / (s[-1] - s[0])).to(dtype)


def estimate_log_partition(energy: Energy, dim: int, n_samples: int = 512, n_steps: int = 500,
                           *, init_std: float = 1.0, init_mean=0.0,
                           bounds: tuple[float, float] | None = None, step_size: float = 0.1,
                           target_accept: float = 0.65, seed=0, device="cpu",
                           dtype=torch.float32) -> LogPartition:
    r"""Annealed importance sampling estimate of :math:`\log Z = \log\int e^{-E(x)}dx`.

    ``n_samples`` chains start from :math:`q = \mathcal N(m, s^2 I)` (``init_mean``,
    ``init_std``) and go through ``n_steps`` intermediate densities
    :math:`q^{1-\beta}e^{-\beta E}`, one MALA move at each. The MALA step size starts at
    ``step_size`` and is multiplied by 1.1 or divided by 1.1 after each move, whichever
    brings the chains' mean acceptance toward ``target_accept``.

    With ``bounds = (low, high)`` the density lives on the box ``[low, high]^dim`` (an image
    model's support): :math:`Z = \int_{box} e^{-E}`, the chains start uniform in the box
    (:math:`q` = 1 / volume) and proposals that leave it are rejected.

    Returns:
        :class:`LogPartition` ``(log_z, stderr)`` with
        ``stderr`` :math:`\approx \operatorname{sd}(w)/(\bar w\sqrt n)`, the delta-method
        standard error of :math:`\log\hat Z`. A large stderr (say above 0.5) says the
        weights are dominated by a few chains: use more steps.
    """
    dim = check_count(dim, "dim")
    n = check_count(n_samples, "n_samples", minimum=2)
    n_steps = check_count(n_steps, "n_steps")
    s = check_number(init_std, "init_std", low=0.0, strict=True)
    h = check_number(step_size, "step_size", low=0.0, strict=True)
    target = check_number(target_accept, "target_accept", low=0.0, strict=True, high=1.0)
    gen = make_generator(seed, device)
    mean = torch.as_tensor(init_mean, dtype=dtype, device=device).expand(dim)
    if bounds is not None:
        low, high = _check_bounds(bounds)
        log_volume = dim * math.log(high - low)

    def log_q(x):
        if bounds is not None:
            return torch.full(x.shape[:1], -log_volume, dtype=x.dtype, device=x.device)
        return (-0.5 * (((x - mean) / s) ** 2).sum(-1) - dim * math.log(s)
                - 0.5 * dim * math.log(2 * math.pi))

    def log_f(x, beta):  # and its gradient
        with torch.enable_grad():
            xg = x.detach().requires_grad_(True)
            value = (1 - beta) * log_q(xg) - beta * batch_values(energy, xg, "energy").to(dtype)
            (grad,) = torch.autograd.grad(value.sum(), xg)
        return value.detach(), grad

    betas = _betas(n_steps, dtype)
    if bounds is None:
        x = mean + s * torch.randn(n, dim, generator=gen, dtype=dtype, device=device)
    else:
        x = low + (high - low) * torch.rand(n, dim, generator=gen, dtype=dtype, device=device)
    log_w = torch.zeros(n, dtype=torch.float64, device=device)
    for t in range(1, n_steps + 1):
        beta = float(betas[t])
        with torch.no_grad():
            gap = -batch_values(energy, x, "energy").to(dtype) - log_q(x)
        log_w += (beta - float(betas[t - 1])) * gap.double()
        lp, g = log_f(x, beta)
        y = x + h * g + math.sqrt(2 * h) * torch.randn(x.shape, generator=gen, dtype=dtype,
                                                       device=device)
        lp_y, g_y = log_f(y, beta)
        log_ratio = (lp_y + langevin_proposal_log_prob(x, y, g_y, h)
                     - lp - langevin_proposal_log_prob(y, x, g, h))
        u = torch.rand(n, generator=gen, dtype=dtype, device=device)
        accept = torch.log(u) < log_ratio
        if bounds is not None:
            accept &= ((y >= low) & (y <= high)).all(-1)
        x = torch.where(accept[:, None], y, x)
        h = h * 1.1 if accept.to(dtype).mean() > target else h / 1.1
    log_z = torch.logsumexp(log_w, 0) - math.log(n)
    w = torch.exp(log_w - log_w.max())
    stderr = float(w.std() / (w.mean() * math.sqrt(n)))
    return LogPartition(float(log_z), stderr)
