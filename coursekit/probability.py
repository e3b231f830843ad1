"""Probability review in code: Gaussians, entropy, divergences, mutual information, Monte Carlo.

Lecture 01 (probability, information theory) and 02 (maximum likelihood) use
these functions; lecture notebooks derive each formula and then check it
against the function here.

Conventions (the same for every function):

* torch in, torch out. Arguments may also be NumPy arrays, Python lists or
  numbers; those are converted to float64. Integer tensors become float64.
  Mixed arguments are promoted to the common floating dtype of the torch
  tensors given (array-likes follow it, like Python scalars in torch) and are
  moved to the device of the first torch tensor (nothing hard-codes a device).
  Gradients flow through every function (autograd works on the outputs).
* The event dimension is the last one (``d`` for vectors, ``(d, d)`` for
  matrices); leading batch dimensions broadcast like ``torch`` broadcasting.
* Everything is computed in log space: log-densities through Cholesky factors
  and triangular solves (no explicit inverse or determinant), entropies with
  ``xlogy`` so that ``0 log 0 = 0``.
* Information quantities are in nats (divide by ``log 2`` for bits).
* Bad input raises ``ValueError``/``TypeError`` that names the argument.
* The exception: the 1-D numerical tools, :func:`grid_moments` and the fits of one
  Gaussian to a two-component mixture (:func:`bimodal_log_prob`,
  :func:`forward_fit`, :func:`reverse_fit`, :func:`forward_kl`,
  :func:`reverse_kl`, lecture 01's forward vs reverse KL) take Python numbers and
  NumPy arrays and return floats and NumPy arrays: they feed scipy's quadrature
  and optimiser and matplotlib.

Importing this module also registers with ``torch.distributions`` the KL
divergence between a ``MultivariateNormal`` and an ``Independent(Normal, 1)``
(both orders), which torch itself does not provide, so that
``torch.distributions.kl_divergence`` works for those pairs.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.distributions as D

from coursekit import functional as F
from coursekit._validation import (
    as_float_tensor,
    check_count,
    check_event,
    check_finite,
    check_number,
    check_probs,
    check_square,
    check_unit_interval,
    check_vector,
    prepare,
)
from coursekit.functional import LOG_2PI

__all__ = [
    "bernoulli_log_prob",
    "bimodal_log_prob",
    "bivariate_gaussian_cov",
    "conditional_entropy_table",
    "diag_gaussian_log_prob",
    "entropy_categorical",
    "entropy_gaussian",
    "forward_fit",
    "forward_kl",
    "gaussian_conditional",
    "gaussian_log_prob",
    "gaussian_marginal",
    "gaussian_mle",
    "grid_moments",
    "js_categorical",
    "kl_categorical",
    "kl_diag_gaussian",
    "kl_gaussian",
    "mc_estimate",
    "mc_kl",
    "mutual_information_gaussian",
    "mutual_information_table",
    "reverse_fit",
    "reverse_kl",
    "safe_cholesky",
    "tv_categorical",
]


def safe_cholesky(cov: torch.Tensor, name: str = "cov") -> torch.Tensor:
    """Lower Cholesky factor ``L`` with ``cov = L L^T``; ``cov: (..., d, d)`` -> ``(..., d, d)``.

    Raises ``ValueError`` naming ``name`` when ``cov`` is not square, not
    symmetric (relative tolerance ``1000 eps`` of its dtype) or not positive definite.
    """
    cov = as_float_tensor(cov, name)
    check_square(cov, name)
    check_finite(cov, name)
    c = cov.detach()
    scale = c.abs().amax(dim=(-2, -1), keepdim=True).clamp_min(torch.finfo(c.dtype).tiny)
    asym = ((c - c.mT).abs() / scale).amax()
    if float(asym) > 1e3 * torch.finfo(cov.dtype).eps:
        raise ValueError(f"{name}: expected a symmetric positive definite matrix, but it is "
                         f"not symmetric (max relative |cov - cov^T| = {float(asym):.3g})")
    L, info = torch.linalg.cholesky_ex(cov)
    if bool((info > 0).any()):
        raise ValueError(f"{name}: expected a symmetric positive definite matrix, but it is "
                         "not positive definite (the Cholesky factorisation failed)")
    return L


def _logdet_from_cholesky(L: torch.Tensor) -> torch.Tensor:
    """``log |L L^T| = 2 sum_i log L_ii``; ``L: (..., d, d)`` -> ``(...)``."""
    return 2.0 * torch.log(torch.diagonal(L, dim1=-2, dim2=-1)).sum(-1)


def _mahalanobis_sq(L: torch.Tensor, diff: torch.Tensor) -> torch.Tensor:
    """``diff^T (L L^T)^{-1} diff = ||L^{-1} diff||^2``; ``L: (..., d, d)``, ``diff: (..., d)``."""
    if L.dim() == 2:
        # one matrix for many vectors: a single triangular solve with d x n right-hand sides
        flat = diff.reshape(-1, diff.shape[-1]).mT
        z = torch.linalg.solve_triangular(L, flat, upper=False)
        return (z * z).sum(0).reshape(diff.shape[:-1])
    batch = torch.broadcast_shapes(L.shape[:-2], diff.shape[:-1])
    L = L.expand(*batch, *L.shape[-2:])
    diff = diff.expand(*batch, diff.shape[-1])
    z = torch.linalg.solve_triangular(L, diff.unsqueeze(-1), upper=False).squeeze(-1)
    return (z * z).sum(-1)


def _index(idx, d: int, name: str) -> torch.Tensor:
    """Validate a list/tensor of distinct indices into ``range(d)``; returns a long tensor."""
    if isinstance(idx, torch.Tensor):
        if idx.dtype == torch.bool or idx.is_floating_point():
            raise TypeError(f"{name}: expected integer indices, got a tensor of dtype {idx.dtype}")
        t = idx.detach().to("cpu", torch.long).reshape(-1)
    elif isinstance(idx, (int, np.integer)) and not isinstance(idx, bool):
        t = torch.tensor([int(idx)])
    elif isinstance(idx, (Sequence, np.ndarray, range)):
        values = list(np.asarray(idx).reshape(-1))
        if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
            raise TypeError(f"{name}: expected integer indices, got {idx!r}")
        t = torch.tensor([int(v) for v in values], dtype=torch.long)
    else:
        raise TypeError(f"{name}: expected a list or tensor of int indices, "
                        f"got {type(idx).__name__}")
    if t.numel() == 0:
        raise ValueError(f"{name}: expected at least one index, got none")
    if bool(((t < 0) | (t >= d)).any()):
        raise ValueError(f"{name}: expected indices in [0, {d}), got {t.tolist()}")
    if len(set(t.tolist())) != t.numel():
        raise ValueError(f"{name}: expected distinct indices, got {t.tolist()}")
    return t


def _complement(idx_a: torch.Tensor, d: int) -> torch.Tensor:
    mask = torch.ones(d, dtype=torch.bool)
    mask[idx_a] = False
    return torch.arange(d)[mask]


def _submatrix(cov: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    rows, cols = rows.to(cov.device), cols.to(cov.device)
    return cov.index_select(-2, rows).index_select(-1, cols)


# --------------------------------------------------------------------------------------
# Gaussian densities
# --------------------------------------------------------------------------------------
def gaussian_log_prob(x, mean, cov) -> torch.Tensor:
    r"""Log-density of a multivariate Gaussian with full covariance.

    .. math::
        \log N(x; \mu, \Sigma) = -\tfrac12\big(d \log 2\pi + \log|\Sigma|
        + (x-\mu)^T \Sigma^{-1} (x-\mu)\big)

    computed with the Cholesky factor ``Sigma = L L^T``: ``log|Sigma| = 2 sum log L_ii``
    and the quadratic form ``||L^{-1}(x - mu)||^2`` by a triangular solve.

    Args:
        x: ``(..., d)``.
        mean: ``(..., d)``, broadcasts with ``x``.
        cov: ``(..., d, d)`` symmetric positive definite.

    Returns:
        ``(...)``: the broadcast batch shape.
    """
    x, mean, cov = prepare(x=x, mean=mean, cov=cov)
    check_vector(mean, "mean")
    d = mean.shape[-1]
    check_vector(x, "x", d)
    check_square(cov, "cov", d)
    L = safe_cholesky(cov, "cov")
    diff = x - mean
    maha = _mahalanobis_sq(L, diff)
    return -0.5 * (d * LOG_2PI + _logdet_from_cholesky(L) + maha)


diag_gaussian_log_prob = F.log_normal_diag
"""Log-density of a diagonal Gaussian: :func:`coursekit.functional.log_normal_diag`."""


def bernoulli_log_prob(x, logits) -> torch.Tensor:
    r"""Log-probability of binary ``x`` under independent Bernoullis with ``logits``, summed.

    .. math::
        \log p(x) = \sum_j x_j \log\sigma(\eta_j) + (1 - x_j)\log\sigma(-\eta_j)
        = -\sum_j \mathrm{softplus}(-(2x_j - 1)\,\eta_j)

    Args:
        x: ``(..., d)`` with values in ``{0, 1}``; logits: ``(..., d)``.

    Returns:
        ``(...)``.
    """
    x, logits = prepare(x=x, logits=logits)
    check_event({"x": x, "logits": logits})
    check_unit_interval(x, "x", binary=True)
    return F._log_bernoulli_logits(x, logits)


def gaussian_marginal(mean, cov, idx) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Marginal of the coordinates ``idx`` of a Gaussian: ``p(x_a) = N(mu_a, Sigma_aa)``.

    Args:
        mean: ``(..., d)``; cov: ``(..., d, d)``.
        idx: list or 1-D tensor of ``k`` distinct indices in ``[0, d)``.

    Returns:
        ``(mean_a, cov_aa)`` of shapes ``(..., k)`` and ``(..., k, k)``.
    """
    mean, cov = prepare(mean=mean, cov=cov)
    check_vector(mean, "mean")
    d = mean.shape[-1]
    check_square(cov, "cov", d)
    a = _index(idx, d, "idx")
    return mean.index_select(-1, a.to(mean.device)), _submatrix(cov, a, a)


def gaussian_conditional(mean, cov, idx_a, x_b) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Conditional ``p(x_a | x_b)`` of a partitioned Gaussian (``b`` = the other indices).

    .. math::
        \mu_{a|b} = \mu_a + \Sigma_{ab}\Sigma_{bb}^{-1}(x_b - \mu_b), \qquad
        \Sigma_{a|b} = \Sigma_{aa} - \Sigma_{ab}\Sigma_{bb}^{-1}\Sigma_{ba}

    ``Sigma_bb^{-1}`` is applied by a Cholesky solve. The conditional covariance
    does not depend on ``x_b``.

    Args:
        mean: ``(d,)`` (or ``(..., d)``); cov: ``(d, d)`` (or ``(..., d, d)``).
        idx_a: list or 1-D tensor of the ``k`` indices of ``a`` (``k < d``); ``b`` is the rest,
            in increasing order.
        x_b: ``(..., d - k)`` observed values of ``x_b``, in the order of ``b``; batch
            dimensions broadcast with those of ``mean``/``cov``.

    Returns:
        ``(mean_a_given_b, cov_a_given_b)`` with shapes ``(..., k)`` and ``(..., k, k)``.
    """
    mean, cov, x_b = prepare(mean=mean, cov=cov, x_b=x_b)
    check_vector(mean, "mean")
    d = mean.shape[-1]
    check_square(cov, "cov", d)
    a = _index(idx_a, d, "idx_a")
    if a.numel() == d:
        raise ValueError(f"idx_a: expected a strict subset of the {d} indices so that b is "
                         f"not empty, got all of them")
    b = _complement(a, d)
    check_vector(x_b, "x_b", b.numel())
    dev = mean.device
    mu_a, mu_b = mean.index_select(-1, a.to(dev)), mean.index_select(-1, b.to(dev))
    s_aa, s_ab, s_bb = _submatrix(cov, a, a), _submatrix(cov, a, b), _submatrix(cov, b, b)
    L_b = safe_cholesky(s_bb, "cov")
    # W = Sigma_bb^{-1} Sigma_ba, shape (..., n_b, k)
    W = torch.cholesky_solve(s_ab.mT, L_b)
    cond_mean = mu_a + (W.mT @ (x_b - mu_b).unsqueeze(-1)).squeeze(-1)
    cond_cov = s_aa - s_ab @ W
    cond_cov = 0.5 * (cond_cov + cond_cov.mT)
    return cond_mean, cond_cov


def gaussian_mle(x) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Maximum-likelihood Gaussian fit: sample mean and the ``1/N`` covariance.

    .. math::
        \hat\mu = \frac1N \sum_i x_i, \qquad
        \hat\Sigma = \frac1N \sum_i (x_i - \hat\mu)(x_i - \hat\mu)^T

    Args:
        x: ``(n, d)`` (or ``(..., n, d)`` for several independent data sets).

    Returns:
        ``(mean, cov)`` of shapes ``(..., d)`` and ``(..., d, d)``.
    """
    (x,) = prepare(x=x)
    if x.dim() < 2:
        raise ValueError(f"x: expected data of shape (n, d), got shape {tuple(x.shape)}")
    n = x.shape[-2]
    if n < 1:
        raise ValueError("x: expected at least one sample, got n=0")
    check_finite(x, "x")
    mean = x.mean(-2)
    diff = x - mean.unsqueeze(-2)
    cov = diff.mT @ diff / n
    return mean, 0.5 * (cov + cov.mT)


# --------------------------------------------------------------------------------------
# entropy
# --------------------------------------------------------------------------------------
def entropy_categorical(p) -> torch.Tensor:
    r"""Entropy ``H(p) = -sum_k p_k log p_k`` in nats (``0 log 0 = 0``).

    Args:
        p: ``(..., k)`` probabilities summing to 1 over the last axis.

    Returns:
        ``(...)``.
    """
    (p,) = prepare(p=p)
    check_probs(p, "p")
    return -torch.special.xlogy(p, p).sum(-1)


def entropy_gaussian(cov) -> torch.Tensor:
    r"""Differential entropy of ``N(mu, Sigma)`` in nats (independent of ``mu``).

    .. math:: H = \tfrac12\big(d(1 + \log 2\pi) + \log|\Sigma|\big)

    Args:
        cov: ``(..., d, d)`` symmetric positive definite.

    Returns:
        ``(...)``.
    """
    (cov,) = prepare(cov=cov)
    L = safe_cholesky(cov, "cov")
    d = cov.shape[-1]
    return 0.5 * (d * (1.0 + LOG_2PI) + _logdet_from_cholesky(L))


def conditional_entropy_table(joint) -> torch.Tensor:
    r"""Conditional entropy ``H(X|Y) = H(X, Y) - H(Y)`` of a discrete joint table.

    Args:
        joint: ``(..., n_x, n_y)`` with ``joint[i, j] = p(X=i, Y=j)``, summing to 1.

    Returns:
        ``(...)`` in nats.
    """
    (joint,) = prepare(joint=joint)
    check_probs(joint, "joint", dims=2)
    p_y = joint.sum(-2)
    h_xy = -torch.special.xlogy(joint, joint).sum((-2, -1))
    h_y = -torch.special.xlogy(p_y, p_y).sum(-1)
    return h_xy - h_y


def mutual_information_table(joint) -> torch.Tensor:
    r"""Mutual information of a discrete joint table, ``I(X;Y) = H(X) - H(X|Y)``.

    Computed as ``sum_ij p_ij log(p_ij / (p_i. p_.j))`` (the same quantity, one pass).

    Args:
        joint: ``(..., n_x, n_y)`` with ``joint[i, j] = p(X=i, Y=j)``, summing to 1.

    Returns:
        ``(...)`` in nats; 0 exactly when the table is the product of its marginals.
    """
    (joint,) = prepare(joint=joint)
    check_probs(joint, "joint", dims=2)
    p_x = joint.sum(-1, keepdim=True)
    p_y = joint.sum(-2, keepdim=True)
    prod = p_x * p_y
    # where joint > 0 the product of marginals is > 0 too
    mi = (torch.special.xlogy(joint, joint) - torch.special.xlogy(joint, prod)).sum((-2, -1))
    return mi


def mutual_information_gaussian(cov, idx_a) -> torch.Tensor:
    r"""Mutual information between the blocks ``a`` and ``b`` (the rest) of a Gaussian.

    .. math:: I(x_a; x_b) = \tfrac12 \log \frac{|\Sigma_{aa}|\,|\Sigma_{bb}|}{|\Sigma|}

    Args:
        cov: ``(..., d, d)`` symmetric positive definite.
        idx_a: list or 1-D tensor of the indices of ``a`` (a strict subset).

    Returns:
        ``(...)`` in nats.
    """
    (cov,) = prepare(cov=cov)
    check_square(cov, "cov")
    d = cov.shape[-1]
    a = _index(idx_a, d, "idx_a")
    if a.numel() == d:
        raise ValueError(f"idx_a: expected a strict subset of the {d} indices, got all of them")
    b = _complement(a, d)
    L = safe_cholesky(cov, "cov")
    L_a = safe_cholesky(_submatrix(cov, a, a), "cov")
    L_b = safe_cholesky(_submatrix(cov, b, b), "cov")
    return 0.5 * (_logdet_from_cholesky(L_a) + _logdet_from_cholesky(L_b)
                  - _logdet_from_cholesky(L))


# --------------------------------------------------------------------------------------
# divergences
# --------------------------------------------------------------------------------------
def kl_categorical(p, q) -> torch.Tensor:
    r"""``KL(p || q) = sum_k p_k log(p_k / q_k)`` in nats.

    Terms with ``p_k = 0`` contribute 0; ``q_k = 0 < p_k`` gives ``+inf``.

    Args:
        p, q: ``(..., k)`` probabilities (broadcast).

    Returns:
        ``(...)``.
    """
    p, q = prepare(p=p, q=q)
    check_probs(p, "p")
    check_probs(q, "q", 1)
    if p.shape[-1] != q.shape[-1]:
        raise ValueError(f"q: expected {p.shape[-1]} categories like p, got shape "
                         f"{tuple(q.shape)}")
    return (torch.special.xlogy(p, p) - torch.special.xlogy(p, q)).sum(-1)


def _prepare_prob_pair(p, q):
    """Tensors of two probability tables over the same number of categories."""
    p, q = prepare(p=p, q=q)
    check_probs(p, "p")
    check_probs(q, "q")
    if p.shape[-1] != q.shape[-1]:
        raise ValueError(f"q: expected {p.shape[-1]} categories like p, got shape "
                         f"{tuple(q.shape)}")
    return p, q


def js_categorical(p, q) -> torch.Tensor:
    r"""Jensen-Shannon divergence ``JS = KL(p||m)/2 + KL(q||m)/2`` with ``m = (p + q)/2``.

    Symmetric, ``0 <= JS <= log 2`` (nats).

    Args:
        p, q: ``(..., k)`` probabilities.

    Returns:
        ``(...)``.
    """
    p, q = _prepare_prob_pair(p, q)
    m = 0.5 * (p + q)
    kl_pm = (torch.special.xlogy(p, p) - torch.special.xlogy(p, m)).sum(-1)
    kl_qm = (torch.special.xlogy(q, q) - torch.special.xlogy(q, m)).sum(-1)
    return 0.5 * (kl_pm + kl_qm)


def tv_categorical(p, q) -> torch.Tensor:
    r"""Total variation distance ``TV(p, q) = (1/2) sum_k |p_k - q_k|`` in ``[0, 1]``.

    Pinsker's inequality: ``TV <= sqrt(KL(p||q) / 2)``.

    Args:
        p, q: ``(..., k)`` probabilities.

    Returns:
        ``(...)``.
    """
    p, q = _prepare_prob_pair(p, q)
    return 0.5 * (p - q).abs().sum(-1)


kl_diag_gaussian = F.kl_normal_diag
"""KL between diagonal Gaussians: :func:`coursekit.functional.kl_normal_diag`."""


def kl_gaussian(mu1, cov1, mu2, cov2) -> torch.Tensor:
    r"""``KL(N(mu1, cov1) || N(mu2, cov2))`` for full covariances.

    .. math::
        \tfrac12\Big(\mathrm{tr}(\Sigma_2^{-1}\Sigma_1)
        + (\mu_2-\mu_1)^T\Sigma_2^{-1}(\mu_2-\mu_1) - d + \log\frac{|\Sigma_2|}{|\Sigma_1|}\Big)

    With ``Sigma_i = L_i L_i^T``: ``tr(Sigma_2^{-1} Sigma_1) = ||L_2^{-1} L_1||_F^2``.

    Args:
        mu1, mu2: ``(..., d)``; cov1, cov2: ``(..., d, d)`` symmetric positive definite.

    Returns:
        ``(...)``.
    """
    mu1, cov1, mu2, cov2 = prepare(mu1=mu1, cov1=cov1, mu2=mu2, cov2=cov2)
    check_vector(mu1, "mu1")
    d = mu1.shape[-1]
    check_vector(mu2, "mu2", d)
    check_square(cov1, "cov1", d)
    check_square(cov2, "cov2", d)
    L1 = safe_cholesky(cov1, "cov1")
    L2 = safe_cholesky(cov2, "cov2")
    batch = torch.broadcast_shapes(L1.shape[:-2], L2.shape[:-2])
    M = torch.linalg.solve_triangular(L2.expand(*batch, d, d), L1.expand(*batch, d, d),
                                      upper=False)
    trace = (M * M).sum((-2, -1))
    maha = _mahalanobis_sq(L2, mu2 - mu1)
    return 0.5 * (trace + maha - d + _logdet_from_cholesky(L2) - _logdet_from_cholesky(L1))


# --------------------------------------------------------------------------------------
# Monte Carlo
# --------------------------------------------------------------------------------------
def _draw(sampler, n: int, generator, name: str):
    if isinstance(sampler, D.Distribution):
        if generator is not None:
            raise ValueError(f"generator: a torch.distributions.Distribution given as {name} "
                             "draws from torch's global generator; pass a callable "
                             "sampler(n, generator=...) to use a generator, or seed with "
                             "coursekit.seed_everything")
        return sampler.sample((n,))
    if not callable(sampler):
        raise TypeError(f"{name}: expected a callable sampler(n) -> (n, ...) samples or a "
                        f"torch.distributions.Distribution, got {type(sampler).__name__}")
    return sampler(n) if generator is None else sampler(n, generator=generator)


def mc_estimate(f: Callable, sampler, n: int, generator: torch.Generator | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Monte Carlo estimate of ``E[f(X)]`` and its standard error.

    .. math::
        \hat\mu = \frac1n \sum_{i=1}^n f(x_i), \quad x_i \sim p; \qquad
        \mathrm{se} = \frac{s}{\sqrt n},\ s^2 = \frac{1}{n-1}\sum_i (f(x_i) - \hat\mu)^2

    The estimate is unbiased; its variance is ``Var[f(X)] / n``.

    Args:
        f: callable mapping samples ``(n, ...)`` to values ``(n,)`` or ``(n, m)``.
        sampler: callable ``sampler(n)`` (``sampler(n, generator=generator)`` when a
            generator is given) returning ``(n, ...)`` samples, or a
            ``torch.distributions.Distribution``.
        n: number of samples, ``>= 2``.
        generator: optional ``torch.Generator`` handed to ``sampler``.

    Returns:
        ``(estimate, stderr)``, each of shape ``()`` (or ``(m,)``).
    """
    n = check_count(n, "n", 2)  # the standard error needs two samples
    if not callable(f):
        raise TypeError(f"f: expected a callable, got {type(f).__name__}")
    x = _draw(sampler, n, generator, "sampler")
    values = f(x)
    if not isinstance(values, torch.Tensor):
        values = as_float_tensor(values, "f(x)")
    if values.dim() == 0 or values.shape[0] != n:
        raise ValueError(f"f: expected f(samples) of shape (n={n}, ...), "
                         f"got shape {tuple(values.shape)}")
    if not values.is_floating_point():
        values = values.to(torch.float64)
    estimate = values.mean(0)
    stderr = values.std(0, correction=1) / math.sqrt(n)
    return estimate, stderr


def mc_kl(log_p, log_q, sample_p, n: int, generator: torch.Generator | None = None
          ) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Unbiased Monte Carlo estimate of ``KL(p || q)`` with samples from ``p``.

    .. math::
        \widehat{KL} = \frac1n\sum_{i=1}^n \big(\log p(x_i) - \log q(x_i)\big),
        \quad x_i \sim p

    Args:
        log_p, log_q: callables mapping samples ``(n, ...)`` to log-densities ``(n,)``, or
            ``torch.distributions.Distribution`` objects (their ``log_prob`` is used).
        sample_p: sampler of ``p`` as in :func:`mc_estimate` (or a Distribution).
        n: number of samples, ``>= 2``.
        generator: optional ``torch.Generator`` handed to ``sample_p``.

    Returns:
        ``(estimate, stderr)``; a single estimate may be negative, its expectation is not.
    """
    lp = log_p.log_prob if isinstance(log_p, D.Distribution) else log_p
    lq = log_q.log_prob if isinstance(log_q, D.Distribution) else log_q
    if not callable(lp):
        raise TypeError(f"log_p: expected a callable or a Distribution, "
                        f"got {type(log_p).__name__}")
    if not callable(lq):
        raise TypeError(f"log_q: expected a callable or a Distribution, "
                        f"got {type(log_q).__name__}")
    return mc_estimate(lambda x: lp(x) - lq(x), sample_p, n, generator)


# --------------------------------------------------------------------------------------
# the bivariate Gaussian, and moments of a density tabulated on a 1-D grid
# --------------------------------------------------------------------------------------
def bivariate_gaussian_cov(sigma1: float, sigma2: float, rho: float) -> torch.Tensor:
    r"""Covariance of two variables with standard deviations ``s_1, s_2``, correlation ``rho``.

    .. math::
        \Sigma = \begin{pmatrix} s_1^2 & \rho s_1 s_2 \\ \rho s_1 s_2 & s_2^2 \end{pmatrix}

    Args:
        sigma1, sigma2: ``> 0``; rho: in ``(-1, 1)`` (so ``Sigma`` is positive definite).

    Returns:
        ``(2, 2)`` float64 tensor.
    """
    sigma1 = check_number(sigma1, "sigma1", low=0, strict=True)
    sigma2 = check_number(sigma2, "sigma2", low=0, strict=True)
    rho = check_number(rho, "rho")
    if not -1 < rho < 1:
        raise ValueError(f"rho: expected a correlation in (-1, 1), got {rho!r}")
    c = rho * sigma1 * sigma2
    return torch.tensor([[sigma1**2, c], [c, sigma2**2]], dtype=torch.float64)


def grid_moments(density, x) -> tuple[float, float, float]:
    r"""Mass, mean and variance of an unnormalised 1-D density tabulated on a grid.

    By the trapezoid rule on ``x``:

    .. math::
        Z = \int f(x)\, dx, \qquad p = f / Z, \qquad
        m = \int x\, p(x)\, dx, \qquad v = \int (x - m)^2 p(x)\, dx .

    Slicing a joint density along a line and renormalising this way is the
    definition of a conditional density (``Z`` is then the marginal at the slice).

    Args:
        density: ``(m,)`` non-negative values ``f(x)``; x: ``(m,)`` increasing grid.

    Returns:
        ``(Z, m, v)`` as floats.
    """
    from scipy.integrate import trapezoid

    density = np.asarray(density, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1 or x.size < 2 or not np.all(np.diff(x) > 0):
        raise ValueError(f"x: expected an increasing 1-D grid of at least 2 points, "
                         f"got shape {x.shape}")
    if density.shape != x.shape:
        raise ValueError(f"density: expected shape {x.shape} like x, got {density.shape}")
    if not (np.all(np.isfinite(density)) and np.all(density >= 0)):
        raise ValueError("density: expected finite non-negative values, got negative or "
                         "non-finite ones")
    mass = trapezoid(density, x)
    if not mass > 0:
        raise ValueError(f"density: expected a positive integral on the grid, got {mass!r}")
    p = density / mass
    mean = float(trapezoid(x * p, x))
    return float(mass), mean, float(trapezoid((x - mean) ** 2 * p, x))


# --------------------------------------------------------------------------------------
# one Gaussian fitted to a 1-D two-component mixture: forward vs reverse KL
# --------------------------------------------------------------------------------------
# The target is p(x) = w N(x; m_1, s^2) + (1 - w) N(x; m_2, s^2), the model
# q(x) = N(x; mu, sigma^2). These functions take the parameters as Python numbers
# and return floats or NumPy arrays: they feed scipy's optimiser and the plots of
# lecture 01 (KLExplorer).
_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(96)


def _check_bimodal(mode1, mode2, weight, sigma) -> tuple[float, float, float, float]:
    mode1, mode2 = check_number(mode1, "mode1"), check_number(mode2, "mode2")
    weight = check_number(weight, "weight")
    if not 0 < weight < 1:
        raise ValueError(f"weight: expected a mixture weight in (0, 1), got {weight!r}")
    return mode1, mode2, weight, check_number(sigma, "sigma", low=0, strict=True)


def _check_normal(mu, std) -> tuple[float, float]:
    return check_number(mu, "mu"), check_number(std, "std", low=0, strict=True)


def _normal_log_prob_1d(x: np.ndarray, mu: float, std: float) -> np.ndarray:
    """``log N(x; mu, std^2)`` elementwise: :func:`coursekit.functional.log_normal_diag`
    with ``d = 1``, written in NumPy because :func:`reverse_fit`'s optimiser evaluates
    it hundreds of times per fit (the tests check it against the functional one)."""
    return -0.5 * ((x - mu) / std) ** 2 - 0.5 * LOG_2PI - np.log(std)


def _bimodal_log_prob(x: np.ndarray, mode1, mode2, weight, sigma) -> np.ndarray:
    from scipy.special import logsumexp

    comps = np.stack([
        np.log(weight) - 0.5 * ((x - mode1) / sigma) ** 2,
        np.log1p(-weight) - 0.5 * ((x - mode2) / sigma) ** 2,
    ])
    return logsumexp(comps, axis=0) - 0.5 * LOG_2PI - np.log(sigma)


def bimodal_log_prob(x, mode1: float, mode2: float, weight: float, sigma: float
                     ) -> np.ndarray:
    r"""Log-density of the two-component mixture, elementwise.

    .. math::
        \log p(x) = \log\big(w\, N(x; m_1, s^2) + (1 - w)\, N(x; m_2, s^2)\big)

    Args:
        x: array-like of any shape.
        mode1, mode2: the component means ``m_1, m_2``; weight: ``w`` in ``(0, 1)``;
            sigma: the components' standard deviation ``s > 0``.

    Returns:
        NumPy float64 array of ``x``'s shape.
    """
    params = _check_bimodal(mode1, mode2, weight, sigma)
    return _bimodal_log_prob(np.asarray(x, dtype=np.float64), *params)


def forward_fit(mode1: float, mode2: float, weight: float, sigma: float
                ) -> tuple[float, float]:
    r"""The Gaussian minimising the forward KL ``KL(p || q)``: moment matching.

    Since ``KL(p || q) = -H(p) - E_p[log q]``, the minimiser has the mean and
    variance of ``p`` (it covers both modes):

    .. math::
        \mu = w m_1 + (1 - w) m_2, \qquad \sigma^2 = s^2 + w (1 - w) (m_1 - m_2)^2.

    Returns:
        ``(mean, std)`` of ``q``.
    """
    mode1, mode2, weight, sigma = _check_bimodal(mode1, mode2, weight, sigma)
    mean = weight * mode1 + (1 - weight) * mode2
    var = sigma**2 + weight * (1 - weight) * (mode1 - mode2) ** 2
    return float(mean), float(np.sqrt(var))


def _crossover(mode1, mode2, weight, sigma) -> float | None:
    """The x where ``w N(x; m1, s^2) = (1 - w) N(x; m2, s^2)`` (None if m1 = m2)."""
    if mode1 == mode2:
        return None
    return 0.5 * (mode1 + mode2) + sigma**2 * np.log((1 - weight) / weight) / (mode1 - mode2)


def reverse_kl(mu: float, std: float, mode1: float, mode2: float, weight: float,
               sigma: float) -> float:
    r"""``KL(q || p)`` for ``q = N(mu, std^2)``, by Gauss-Legendre quadrature.

    .. math::
        \mathrm{KL}(q \,\|\, p) = -H(q) - \mathbb E_q[\log p(x)], \qquad
        H(q) = \tfrac12 \log(2 \pi e\, \sigma^2)

    ``H(q)`` is exact; ``E_q[log p]`` uses 96 Gauss-Legendre nodes on
    ``mu +- 12 std``, split where the two weighted components are equal (``log p``
    bends sharply there when the modes are far apart), so the value is smooth and
    accurate in ``(mu, log std)``.

    Args:
        mu, std: the Gaussian ``q`` (``std > 0``); mode1, mode2, weight, sigma: ``p``.

    Returns:
        The divergence in nats (a float).
    """
    mu, std = _check_normal(mu, std)
    return _reverse_kl(mu, std, *_check_bimodal(mode1, mode2, weight, sigma))


def _reverse_kl(mu, std, mode1, mode2, weight, sigma) -> float:
    entropy_q = 0.5 * (1 + LOG_2PI) + np.log(std)
    lo, hi = mu - 12 * std, mu + 12 * std
    cut = _crossover(mode1, mode2, weight, sigma)
    edges = [lo, cut, hi] if cut is not None and lo < cut < hi else [lo, hi]
    cross = 0.0
    for a, b in zip(edges[:-1], edges[1:]):
        x = 0.5 * (b - a) * _GL_NODES + 0.5 * (a + b)
        f = np.exp(_normal_log_prob_1d(x, mu, std)) * _bimodal_log_prob(x, mode1, mode2,
                                                                        weight, sigma)
        cross += 0.5 * (b - a) * float(np.dot(_GL_WEIGHTS, f))
    return float(-entropy_q - cross)


def forward_kl(mu: float, std: float, mode1: float, mode2: float, weight: float,
               sigma: float, n_grid: int = 4001) -> float:
    r"""``KL(p || q)`` for ``q = N(mu, std^2)``, by the trapezoid rule.

    .. math::
        \mathrm{KL}(p \,\|\, q) = \int p(x) \big(\log p(x) - \log q(x)\big)\, dx

    on ``n_grid`` points covering ``p``: ``[min(m_1, m_2) - 10 s, max(m_1, m_2) + 10 s]``.

    Returns:
        The divergence in nats (a float).
    """
    from scipy.integrate import trapezoid

    mu, std = _check_normal(mu, std)
    mode1, mode2, weight, sigma = _check_bimodal(mode1, mode2, weight, sigma)
    n_grid = check_count(n_grid, "n_grid", 2)
    x = np.linspace(min(mode1, mode2) - 10 * sigma, max(mode1, mode2) + 10 * sigma, n_grid)
    logp = _bimodal_log_prob(x, mode1, mode2, weight, sigma)
    return float(trapezoid(np.exp(logp) * (logp - _normal_log_prob_1d(x, mu, std)), x))


def reverse_fit(mode1: float, mode2: float, weight: float, sigma: float
                ) -> tuple[float, float]:
    r"""The best Gaussian found for the reverse KL, ``min_q KL(q || p)``.

    There is no closed form and the objective is not convex in ``(mu, std)``:
    :func:`reverse_kl` is minimised over ``(mu, log std)`` with L-BFGS from three
    starts (each mode with std ``s``, and the moment match of :func:`forward_fit`)
    and the lowest local minimum is kept. When the modes are far apart it sits
    on one mode (mode seeking). Results are cached per setting.

    Returns:
        ``(mean, std)`` of ``q``.
    """
    return _reverse_fit(*_check_bimodal(mode1, mode2, weight, sigma))


@functools.lru_cache(maxsize=512)
def _reverse_fit(mode1, mode2, weight, sigma) -> tuple[float, float]:
    from scipy.optimize import minimize

    m_f, s_f = forward_fit(mode1, mode2, weight, sigma)
    starts = [(mode1, np.log(sigma)), (mode2, np.log(sigma)), (m_f, np.log(s_f))]

    def objective(theta):
        return _reverse_kl(theta[0], np.exp(theta[1]), mode1, mode2, weight, sigma)

    best = None
    for start in starts:
        res = minimize(objective, np.array(start, dtype=np.float64), method="L-BFGS-B")
        if best is None or res.fun < best.fun:
            best = res
    return float(best.x[0]), float(np.exp(best.x[1]))


# --------------------------------------------------------------------------------------
# torch.distributions registration
# --------------------------------------------------------------------------------------
def _diag_normal_params(dist: D.Independent):
    base = dist.base_dist
    if not isinstance(base, D.Normal) or dist.reinterpreted_batch_ndims != 1:
        raise NotImplementedError(
            "coursekit registers KL(MultivariateNormal, Independent(Normal, 1)) only; "
            f"got Independent({type(base).__name__}, {dist.reinterpreted_batch_ndims})")
    return base.loc, base.scale**2


@D.register_kl(D.MultivariateNormal, D.Independent)
def _kl_mvn_diag(p: D.MultivariateNormal, q: D.Independent) -> torch.Tensor:
    """KL(MultivariateNormal || Independent(Normal, 1)) via :func:`kl_gaussian`."""
    loc, var = _diag_normal_params(q)
    return kl_gaussian(p.loc, p.covariance_matrix, loc, torch.diag_embed(var))


@D.register_kl(D.Independent, D.MultivariateNormal)
def _kl_diag_mvn(p: D.Independent, q: D.MultivariateNormal) -> torch.Tensor:
    """KL(Independent(Normal, 1) || MultivariateNormal) via :func:`kl_gaussian`."""
    loc, var = _diag_normal_params(p)
    return kl_gaussian(loc, torch.diag_embed(var), q.loc, q.covariance_matrix)
