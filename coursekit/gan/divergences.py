r"""The divergences GANs estimate, with independent ways to compute them.

f-divergences ``D_f(P || Q) = E_Q[f(p(x)/q(x))]`` for a convex ``f`` with ``f(1) = 0``.
f-GAN (Nowozin et al., 2016) bounds them from below with the convex (Fenchel)
conjugate ``f*(t) = sup_u [t u - f(u)]``:

.. math:: D_f(P \| Q) \ge \sup_T \; E_P[T(x)] - E_Q[f^*(T(x))],

with equality at ``T = f'(p/q)``. A critic's raw output ``V`` is mapped into the
domain of ``f*`` by an output activation ``g_f``:

=============  ===============================  ==================  =====================
name           ``f(u)``                         ``g_f(v)``          ``f*(t)``
=============  ===============================  ==================  =====================
``kl``         ``u log u``                      ``v``               ``exp(t - 1)``
``reverse_kl`` ``-log u``                       ``-exp(-v)``        ``-1 - log(-t)``
``js``         ``u log u - (u+1) log((u+1)/2)`` ``log 2 - sp(-v)``  ``-log(2 - exp(t))``
``pearson``    ``(u - 1)^2``                    ``v``               ``t^2/4 + t``
=============  ===============================  ==================  =====================

(``sp`` is softplus.) With this ``f``, ``js`` is ``2 JSD(P || Q)``, the convention of
the f-GAN paper; :func:`jensen_shannon` gives JSD itself.

Independent references for the checks: :func:`f_divergence` integrates ``q f(p/q)``
on a 1-D grid, :func:`jensen_shannon` likewise, :func:`optimal_discriminator` is
``p/(p + q)``, and :func:`wasserstein1_1d` is ``W_1`` between two 1-D samples of equal
size (the mean distance between their sorted values).
"""

from __future__ import annotations

import math

import torch
from torch.nn.functional import softplus

from coursekit._validation import check_choice

__all__ = [
    "F_DIVERGENCES",
    "f_conjugate",
    "f_divergence",
    "f_divergence_terms",
    "f_generator",
    "jensen_shannon",
    "optimal_discriminator",
    "wasserstein1_1d",
]

F_DIVERGENCES = ("kl", "reverse_kl", "js", "pearson")
_LOG2 = math.log(2.0)


def _name(divergence) -> str:
    return check_choice(divergence, "divergence", F_DIVERGENCES)


def f_generator(divergence: str, u: torch.Tensor) -> torch.Tensor:
    """The convex generator ``f(u)`` of the divergence, for ``u > 0``."""
    name = _name(divergence)
    if name == "kl":
        return torch.xlogy(u, u)
    if name == "reverse_kl":
        return -torch.log(u)
    if name == "js":
        return torch.xlogy(u, u) - (u + 1) * torch.log((u + 1) / 2)
    return (u - 1) ** 2


def f_conjugate(divergence: str, t: torch.Tensor) -> torch.Tensor:
    r"""The convex conjugate ``f*(t) = sup_u [t u - f(u)]`` inside its domain.

    Domains: all ``t`` (``kl``, ``pearson``), ``t < 0`` (``reverse_kl``), ``t < log 2``
    (``js``); outside them ``f*`` is ``+inf``, returned as ``inf`` (or NaN from the log).
    """
    name = _name(divergence)
    if name == "kl":
        return torch.exp(t - 1)
    if name == "reverse_kl":
        return -1 - torch.log(-t)
    if name == "js":
        return -torch.log(2 - torch.exp(t))
    return t * t / 4 + t


def f_divergence_terms(divergence: str, real_raw: torch.Tensor,
                       fake_raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""``(T(x_P), f*(T(x_Q)))`` with ``T = g_f(V)``, elementwise and numerically stable.

    The compositions are simplified by hand so no ``exp`` can overflow:
    ``reverse_kl``: ``f*(-exp(-v)) = v - 1``; ``js``: ``f*(log 2 - sp(-v)) = sp(v) - log 2``.
    """
    name = _name(divergence)
    if name in ("kl", "pearson"):
        return real_raw, f_conjugate(name, fake_raw)
    if name == "reverse_kl":
        return -torch.exp(-real_raw), fake_raw - 1
    return _LOG2 - softplus(-real_raw), softplus(fake_raw) - _LOG2


def _grid_logs(log_p, log_q, grid):
    grid = torch.as_tensor(grid, dtype=torch.float64)
    if grid.dim() != 1 or len(grid) < 3 or not bool((grid.diff() > 0).all()):
        raise ValueError(f"grid: expected an increasing 1-D grid of at least 3 points, "
                         f"got shape {tuple(grid.shape)}")
    return log_p(grid).double(), log_q(grid).double(), grid


def f_divergence(divergence: str, log_p, log_q, grid) -> float:
    r"""``D_f(P || Q) = \int q(x) f(p(x)/q(x)) dx`` by the trapezoidal rule on ``grid``.

    Args:
        log_p, log_q: callables ``(m,) -> (m,)`` giving the 1-D log-densities.
        grid: increasing points covering both densities' mass.
    """
    lp, lq, grid = _grid_logs(log_p, log_q, grid)
    name = _name(divergence)
    if name == "kl":
        integrand = torch.exp(lp) * (lp - lq)
    elif name == "reverse_kl":
        integrand = torch.exp(lq) * (lq - lp)
    elif name == "js":
        integrand = 2 * _jsd_integrand(lp, lq)
    else:
        integrand = torch.exp(2 * lp - lq) - 2 * torch.exp(lp) + torch.exp(lq)
    return float(torch.trapezoid(integrand, grid))


def _jsd_integrand(lp, lq):
    lm = torch.logaddexp(lp, lq) - _LOG2
    return 0.5 * (torch.exp(lp) * (lp - lm) + torch.exp(lq) * (lq - lm))


def jensen_shannon(log_p, log_q, grid) -> float:
    r"""``JSD(P || Q) = ½ KL(P || M) + ½ KL(Q || M)``, ``M = (P + Q)/2``, by quadrature.

    Lies in ``[0, log 2]``; symmetric; zero only for ``P = Q``.
    """
    lp, lq, grid = _grid_logs(log_p, log_q, grid)
    return float(torch.trapezoid(_jsd_integrand(lp, lq), grid))


def optimal_discriminator(log_p_data: torch.Tensor, log_p_model: torch.Tensor) -> torch.Tensor:
    r"""``D*(x) = p_data(x) / (p_data(x) + p_G(x)) = sigmoid(log p_data - log p_G)``."""
    return torch.sigmoid(log_p_data - log_p_model)


def wasserstein1_1d(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    r"""``W_1`` between the empirical distributions of two 1-D samples of equal size.

    In one dimension the optimal coupling pairs sorted values:
    ``W_1 = (1/n) Σ_i |x_(i) - y_(i)|``.
    """
    x, y = torch.as_tensor(x).flatten(), torch.as_tensor(y).flatten()
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"y: expected as many values as x ({len(x)}), got {len(y)}")
    return (torch.sort(x).values - torch.sort(y).values).abs().mean()
