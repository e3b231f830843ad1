r"""The basic maths every model family needs, implemented once and checked.

Each public function validates its arguments once (a ``TypeError``/``ValueError``
naming the argument) and then calls an unchecked kernel (the same name with a
leading underscore) that models use in their inner loops. Conventions:

* torch in, torch out; NumPy arrays, lists and numbers are accepted and become
  float64 tensors; mixed arguments are promoted to one floating dtype and moved
  to the device of the first torch tensor. Gradients flow through every function.
* The event dimension is the last one and is summed over; it is never broadcast
  (a mean of shape ``(..., 1)`` against ``x`` of shape ``(..., d)`` is refused,
  because that is how a transposed argument slips through); batch dimensions
  broadcast like torch's.
* Variances, not standard deviations or log-variances; logits, not
  probabilities; everything in log space.

Contents: :data:`LOG_2PI`; :func:`log_normal_diag`, :func:`log_standard_normal`,
:func:`log_normal_mixture`, :func:`log_bernoulli_logits`, :func:`kl_normal_diag`,
:func:`sample_normal_diag`, :func:`log_mean_exp` (the IWAE combination) and
:func:`kmeans_plusplus`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from coursekit._validation import (
    as_data,
    as_float_tensor,
    as_generator,
    check_count,
    check_event,
    check_positive,
    check_unit_interval,
    prepare,
)

LOG_2PI = math.log(2.0 * math.pi)
"""``log(2 pi)``, the constant of every Gaussian log-density."""

__all__ = [
    "LOG_2PI",
    "kl_normal_diag",
    "kmeans_plusplus",
    "log_bernoulli_logits",
    "log_mean_exp",
    "log_normal_diag",
    "log_normal_mixture",
    "log_standard_normal",
    "sample_normal_diag",
]


# --------------------------------------------------------------------------------------
# Gaussians
# --------------------------------------------------------------------------------------
def log_normal_diag(x, mean, var) -> torch.Tensor:
    r"""Log-density of a Gaussian with diagonal covariance, summed over the last dimension.

    .. math::
        \log N(x; m, \mathrm{diag}\, v) = -\frac12 \sum_{j=1}^d
        \Big[\log 2\pi + \log v_j + \frac{(x_j - m_j)^2}{v_j}\Big]

    Args:
        x, mean, var: ``(..., d)`` with broadcasting batch dimensions; ``var > 0``.

    Returns:
        ``(...)``: the broadcast batch shape.

    Example:
        >>> log_normal_diag(torch.zeros(2), torch.zeros(2), torch.ones(2))  # -log(2 pi)
        tensor(-1.8379)
    """
    x, mean, var = prepare(x=x, mean=mean, var=var)
    check_event({"x": x, "mean": mean, "var": var})
    check_positive(var, "var", "variances")
    return _log_normal_diag(x, mean, var)


def _log_normal_diag(x, mean, var):
    return -0.5 * (LOG_2PI + torch.log(var) + (x - mean) ** 2 / var).sum(-1)


def log_standard_normal(z) -> torch.Tensor:
    r"""``log N(z; 0, I) = -\frac12 \sum_j (\log 2\pi + z_j^2)``; ``(..., d) -> (...)``."""
    (z,) = prepare(z=z)
    check_event({"z": z})
    return _log_standard_normal(z)


def _log_standard_normal(z):
    return -0.5 * (LOG_2PI + z * z).sum(-1)


def log_normal_mixture(z, means, vars, log_weights=None) -> torch.Tensor:
    r"""Log-density of a mixture of ``k`` diagonal Gaussians (uniform weights by default).

    .. math::
        \log p(z) = \log \sum_{i=1}^k \pi_i\, N(z; m_i, \mathrm{diag}\, v_i)
        = \operatorname{logsumexp}_i \big(\log \pi_i + \log N(z; m_i, v_i)\big)

    with ``pi_i = 1/k`` unless ``log_weights`` are given.

    Args:
        z: ``(..., d)``.
        means, vars: ``(k, d)`` (one mixture for every ``z``) or ``(..., k, d)``
            broadcasting with ``z[..., None, :]``; ``vars > 0``.
        log_weights: optional ``(k,)`` or ``(..., k)`` log mixing weights (normalised).

    Returns:
        ``(...)``.
    """
    if log_weights is None:
        z, means, vars = prepare(z=z, means=means, vars=vars)
    else:
        z, means, vars, log_weights = prepare(z=z, means=means, vars=vars,
                                              log_weights=log_weights)
    if means.dim() < 2 or vars.dim() < 2:
        raise ValueError(f"means/vars: expected shape (k, d) or (..., k, d), got "
                         f"{tuple(means.shape)} and {tuple(vars.shape)}")
    check_event({"z": z.unsqueeze(-2), "means": means, "vars": vars})
    check_positive(vars, "vars", "variances")
    if log_weights is not None:
        if log_weights.dim() < 1 or log_weights.shape[-1] != means.shape[-2]:
            raise ValueError(f"log_weights: expected last dimension k={means.shape[-2]} like "
                             f"means, got shape {tuple(log_weights.shape)}")
        total = torch.logsumexp(log_weights, -1)
        if bool((total.abs() > 1e-5).any()):
            raise ValueError("log_weights: expected log-probabilities (logsumexp = 0), got "
                             f"logsumexp {float(total.flatten()[total.abs().argmax()]):.4g}")
    return _log_normal_mixture(z, means, vars, log_weights)


def _log_normal_mixture(z, means, vars, log_weights=None):
    per_component = _log_normal_diag(z.unsqueeze(-2), means, vars)  # (..., k)
    if log_weights is None:
        return torch.logsumexp(per_component, dim=-1) - math.log(means.shape[-2])
    return torch.logsumexp(per_component + log_weights, dim=-1)


def kl_normal_diag(q_mean, q_var, p_mean, p_var) -> torch.Tensor:
    r"""``KL(N(q_mean, diag q_var) || N(p_mean, diag p_var))``, summed over the last dimension.

    .. math::
        \mathrm{KL}(q \,\|\, p) = \frac12 \sum_{j=1}^d \Big[\log\frac{p_{v,j}}{q_{v,j}}
        + \frac{q_{v,j} + (q_{m,j} - p_{m,j})^2}{p_{v,j}} - 1\Big] \;\ge 0

    Args:
        q_mean, q_var, p_mean, p_var: ``(..., d)`` with broadcasting batch dimensions;
            variances ``> 0``.

    Returns:
        ``(...)``.
    """
    q_mean, q_var, p_mean, p_var = prepare(q_mean=q_mean, q_var=q_var, p_mean=p_mean,
                                           p_var=p_var)
    check_event({"q_mean": q_mean, "q_var": q_var, "p_mean": p_mean, "p_var": p_var})
    check_positive(q_var, "q_var", "variances")
    check_positive(p_var, "p_var", "variances")
    return _kl_normal_diag(q_mean, q_var, p_mean, p_var)


def _kl_normal_diag(qm, qv, pm, pv):
    return 0.5 * (torch.log(pv) - torch.log(qv) + (qv + (qm - pm) ** 2) / pv - 1.0).sum(-1)


def sample_normal_diag(mean, var, generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Reparameterised sample ``z = mean + sqrt(var) * eps``, ``eps ~ N(0, I)``.

    Gradients flow to ``mean`` and ``var`` (the noise carries none).

    Args:
        mean, var: ``(..., d)`` with broadcasting batch dimensions; ``var > 0``.
        generator: optional ``torch.Generator`` on the tensors' device.

    Returns:
        ``z`` with the broadcast shape.
    """
    mean, var = prepare(mean=mean, var=var)
    check_event({"mean": mean, "var": var})
    check_positive(var, "var", "variances")
    return _sample_normal_diag(mean, var, generator)


def _sample_normal_diag(mean, var, generator=None):
    shape = torch.broadcast_shapes(mean.shape, var.shape)
    eps = torch.randn(shape, dtype=mean.dtype, device=mean.device, generator=generator)
    return mean + var.sqrt() * eps


# --------------------------------------------------------------------------------------
# Bernoulli
# --------------------------------------------------------------------------------------
def log_bernoulli_logits(x, logits) -> torch.Tensor:
    r"""Log-probability of ``x`` under independent Bernoullis given by logits, summed.

    .. math::
        \log p(x) = \sum_j x_j \log \sigma(l_j) + (1 - x_j) \log(1 - \sigma(l_j))
        = \sum_j \big(x_j l_j - \mathrm{softplus}(l_j)\big)

    computed from the logits (never from probabilities), so it stays finite for
    any logit. For ``x`` in ``[0, 1]`` that is not binary this is the negative
    binary cross-entropy (not a normalised likelihood).

    Args:
        x: ``(..., d)`` with values in ``[0, 1]``; logits: ``(..., d)``, batch dimensions
            broadcast with ``x``'s.

    Returns:
        ``(...)``.
    """
    x, logits = prepare(x=x, logits=logits)
    check_event({"x": x, "logits": logits})
    check_unit_interval(x, "x")
    return _log_bernoulli_logits(x, logits)


def _log_bernoulli_logits(x, logits):
    x, logits = torch.broadcast_tensors(x, logits)
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)


# --------------------------------------------------------------------------------------
# log-mean-exp: Monte Carlo estimates of log p(x) and the IWAE bound
# --------------------------------------------------------------------------------------
def log_mean_exp(values, dim: int = 0) -> torch.Tensor:
    r"""``log((1/K) sum_i exp(v_i))`` along ``dim``, computed stably.

    .. math:: \mathrm{LME}(v) = \operatorname{logsumexp}_i v_i - \log K

    Applied to ``K`` log importance weights ``log w_i = log p(x, z_i) - log q(z_i)``,
    it is the ``K``-sample IWAE bound's integrand (and ``-LME`` the importance-sampled
    NLL): every IWAE computation in coursekit goes through here.

    Args:
        values: any shape with ``K = values.shape[dim] >= 1``.

    Returns:
        ``values`` with ``dim`` removed.
    """
    values = as_float_tensor(values, "values")
    if values.dim() == 0 or values.shape[dim] == 0:
        raise ValueError(f"values: expected at least one entry along dim={dim}, "
                         f"got shape {tuple(values.shape)}")
    return _log_mean_exp(values, dim)


def _log_mean_exp(values, dim=0):
    return torch.logsumexp(values, dim=dim) - math.log(values.shape[dim])


# --------------------------------------------------------------------------------------
# k-means++ seeding
# --------------------------------------------------------------------------------------
def kmeans_plusplus(X, n_clusters: int, generator=None) -> tuple[torch.Tensor, torch.Tensor]:
    r"""k-means++ seeding (Arthur & Vassilvitskii, 2007): ``K`` rows of ``X``, spread out.

    The first centre is a uniformly drawn row; each next one is row ``i`` with
    probability ``D(x_i)^2 / sum_j D(x_j)^2``, where ``D(x)`` is the distance to the
    nearest centre chosen so far (uniform again if every row already is a centre).
    Random numbers are drawn on the generator's device, so a seed gives the same
    centres on every device.

    Args:
        X: ``(n, d)``.
        n_clusters: ``1 <= K <= n``.
        generator: ``torch.Generator``, an int seed or ``None``.

    Returns:
        ``(centres, indices)`` of shapes ``(K, d)`` and ``(K,)`` (int64, rows of ``X``).
    """
    X = as_data(X, "X")
    n = X.shape[0]
    K = check_count(n_clusters, "n_clusters")
    if K > n:
        raise ValueError(f"n_clusters: expected at most n_samples={n} clusters, got {K}")
    gen = as_generator(generator, "generator")
    return _kmeans_plusplus(X, K, gen)


def _uniform(shape, gen: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    """Uniform [0, 1) numbers drawn with ``gen`` (on its device), moved next to ``like``."""
    return torch.rand(shape, generator=gen, device=gen.device, dtype=like.dtype).to(like.device)


def _sq_dist(X: torch.Tensor, C: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances ``(n, K)`` between rows of ``X (n, d)`` and ``C (K, d)``."""
    d2 = (X * X).sum(1, keepdim=True) - 2.0 * X @ C.T + (C * C).sum(1)
    return d2.clamp_min_(0.0)


def _sample_index(weights: torch.Tensor, gen: torch.Generator) -> int:
    """One index drawn with probability proportional to ``weights (n,)`` (inverse CDF)."""
    cdf = torch.cumsum(weights, 0)
    u = _uniform((1,), gen, cdf) * cdf[-1]
    return int(torch.searchsorted(cdf, u).clamp_max(len(cdf) - 1))


def _kmeans_plusplus(X: torch.Tensor, K: int, gen: torch.Generator):
    n = X.shape[0]
    indices = [int(_uniform((1,), gen, X) * n) % n]
    closest = _sq_dist(X, X[indices[0]:indices[0] + 1]).squeeze(1)
    for _ in range(1, K):
        if float(closest.sum()) > 0:
            i = _sample_index(closest, gen)
        else:
            i = int(_uniform((1,), gen, X) * n) % n
        indices.append(i)
        closest = torch.minimum(closest, _sq_dist(X, X[i:i + 1]).squeeze(1))
    idx = torch.tensor(indices, dtype=torch.long, device=X.device)
    return X[idx].clone(), idx

