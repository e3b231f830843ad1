"""Homework 1: Gaussians, KL divergence, maximum likelihood and EM.

Write the body of every function below (the parts that raise
``NotImplementedError``). Everything is plain PyTorch on float64 tensors;
each docstring gives the shapes and the equation to implement.

Conventions used throughout:

* ``d`` is the dimension of one data point, ``n`` the number of points and
  ``K`` the number of mixture components.
* Covariance matrices are symmetric positive-definite ``(d, d)`` tensors.
* Logarithms are natural logarithms (nats).
* Work in log space: never form a density and then take its log, and combine
  log-terms with ``torch.logsumexp`` rather than ``log(sum(exp(...)))``.

Run ``coursekit check hw1`` (or the check cells in the notebook) to see your
public-check score.
"""

from __future__ import annotations

import math

import torch

LOG_2PI = math.log(2.0 * math.pi)


# --------------------------------------------------------------------------
# 1a  Gaussian log-density
# --------------------------------------------------------------------------


def gaussian_log_density(x: torch.Tensor, mean: torch.Tensor, cov: torch.Tensor) -> torch.Tensor:
    """Log-density of a multivariate Gaussian, evaluated at many points.

    log N(x; mu, S) = -1/2 [ d log(2 pi) + log det S + (x - mu)^T S^{-1} (x - mu) ]

    Compute it stably with the Cholesky factor S = L L^T (L lower-triangular):

    * log det S = 2 sum_i log L_ii
    * (x - mu)^T S^{-1} (x - mu) = ||z||^2 where z solves L z = x - mu

    Do not form S^{-1} or det S: both lose accuracy (or under/overflow) when
    S is nearly singular or the dimension is large.

    Args:
        x: (n, d) points.
        mean: (d,) mean vector mu.
        cov: (d, d) covariance matrix S, symmetric positive-definite.

    Returns:
        (n,) tensor, log N(x_i; mu, S) for every row x_i.
    """
    if x.ndim != 2 or mean.shape != x.shape[-1:] or cov.shape != (x.shape[-1], x.shape[-1]):
        raise ValueError(
            "gaussian_log_density: expected x (n, d), mean (d,), cov (d, d); got "
            f"x {tuple(x.shape)}, mean {tuple(mean.shape)}, cov {tuple(cov.shape)}"
        )
    raise NotImplementedError('use torch.linalg.cholesky and torch.linalg.solve_triangular')


# --------------------------------------------------------------------------
# 1b  Marginals and conditionals of a partitioned Gaussian
# --------------------------------------------------------------------------


def _as_index(idx, d: int, name: str) -> torch.Tensor:
    """Turn a sequence of coordinate indices into a LongTensor, checking the range."""
    idx = torch.as_tensor(idx, dtype=torch.long).reshape(-1)
    if idx.numel() == 0 or idx.min() < 0 or idx.max() >= d or idx.unique().numel() != idx.numel():
        raise ValueError(f"{name}: expected distinct indices in [0, {d}), got {idx.tolist()}")
    return idx


def gaussian_marginal(mean: torch.Tensor, cov: torch.Tensor, idx) -> tuple:
    """Marginal distribution p(x_a) of a Gaussian N(mu, S) over the coordinates ``idx``.

    If x = (x_a, x_b) ~ N(mu, S) then x_a ~ N(mu_a, S_aa): keep the entries of
    the mean and the rows *and* columns of the covariance that belong to ``a``.

    Args:
        mean: (d,) mean mu.
        cov: (d, d) covariance S.
        idx: sequence of d_a distinct ints (or a LongTensor) in [0, d), the
            coordinates ``a`` in the order they should appear in the output.

    Returns:
        (mean_a, cov_a) with shapes (d_a,) and (d_a, d_a).
    """
    idx = _as_index(idx, mean.shape[-1], "idx")
    raise NotImplementedError('careful, cov[idx, idx] picks the diagonal entries only')


def gaussian_conditional(mean: torch.Tensor, cov: torch.Tensor, idx_a, x_b: torch.Tensor) -> tuple:
    """Conditional distribution p(x_a | x_b) of a partitioned Gaussian.

    With ``b`` = the coordinates NOT in ``idx_a``, in increasing order:

        mu_{a|b}  = mu_a + S_ab S_bb^{-1} (x_b - mu_b)
        S_{a|b}   = S_aa - S_ab S_bb^{-1} S_ba            (S_ba = S_ab^T)

    Use a solve (``torch.linalg.solve`` or a Cholesky solve), not an explicit
    inverse.

    Args:
        mean: (d,) mean mu.
        cov: (d, d) covariance S.
        idx_a: sequence of d_a distinct ints (or a LongTensor) in [0, d), with
            d_a < d: the coordinates ``a`` (output order follows ``idx_a``).
        x_b: (d_b,) observed values of the other coordinates (in increasing
            index order), or (n, d_b) for n observations at once.

    Returns:
        (cond_mean, cond_cov): cond_mean (d_a,) (or (n, d_a) for a batch of
        x_b), cond_cov (d_a, d_a) (the same for every x_b).
    """
    d = mean.shape[-1]
    idx_a = _as_index(idx_a, d, "idx_a")
    in_a = torch.zeros(d, dtype=torch.bool)
    in_a[idx_a] = True
    idx_b = torch.nonzero(~in_a).reshape(-1)  # the other coordinates, increasing
    if idx_b.numel() == 0 or x_b.shape[-1] != idx_b.numel():
        raise ValueError(
            f"x_b: expected last dimension {idx_b.numel()} (d - len(idx_a), at least 1), "
            f"got shape {tuple(x_b.shape)}"
        )
    raise NotImplementedError('slice mu_a, mu_b, S_aa, S_ab, S_bb, then solve with S_bb')


# --------------------------------------------------------------------------
# 1c  KL divergences
# --------------------------------------------------------------------------


def kl_diag_gaussians(
    mu1: torch.Tensor, var1: torch.Tensor, mu2: torch.Tensor, var2: torch.Tensor
) -> torch.Tensor:
    """KL( N(mu1, diag var1) || N(mu2, diag var2) ) in closed form.

    KL = 1/2 sum_j [ log(var2_j / var1_j) + (var1_j + (mu1_j - mu2_j)^2) / var2_j - 1 ]

    The sum runs over the last dimension (a sum, not a mean: the coordinates
    are independent, so their KLs add up).

    Args:
        mu1, var1: (..., d) mean and variances (> 0) of the first Gaussian p.
        mu2, var2: (..., d) mean and variances (> 0) of the second Gaussian q.
            All four broadcast against each other.

    Returns:
        (...) tensor of KL(p || q) >= 0.
    """
    raise NotImplementedError('one line per term of the equation, then .sum(-1)')


def kl_categorical(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """KL( Cat(p) || Cat(q) ) = sum_k p_k (log p_k - log q_k).

    Use the convention 0 log 0 = 0: a category with p_k = 0 contributes
    nothing, even where q_k = 0 too (``torch.xlogy`` helps). Assume q_k > 0
    wherever p_k > 0.

    Args:
        p: (..., K) probabilities (non-negative, summing to 1 over the last dim).
        q: (..., K) probabilities, broadcastable against p.

    Returns:
        (...) tensor of KL(p || q) >= 0.
    """
    raise NotImplementedError('torch.xlogy(p, p) is p log p with 0 log 0 = 0')


def mc_kl_estimate(
    mu1: torch.Tensor,
    var1: torch.Tensor,
    mu2: torch.Tensor,
    var2: torch.Tensor,
    n_samples: int,
    seed: int,
) -> torch.Tensor:
    """Unbiased Monte Carlo estimate of KL(p || q) between diagonal Gaussians.

    p = N(mu1, diag var1), q = N(mu2, diag var2). Since
    KL(p || q) = E_{z ~ p}[ log p(z) - log q(z) ], the average

        KL_hat = (1/T) sum_{t=1}^T [ log p(z_t) - log q(z_t) ],   z_t ~ p i.i.d.,

    is unbiased, and its variance is Var_p[log p - log q] / T. Sample with the
    reparameterisation z = mu1 + sqrt(var1) * eps, eps ~ N(0, I), drawing eps
    from a ``torch.Generator`` seeded with ``seed`` so that the same seed gives
    the same estimate.

    Args:
        mu1, var1: (d,) mean and variances of p (the distribution to sample from).
        mu2, var2: (d,) mean and variances of q.
        n_samples: T >= 1, the number of samples.
        seed: seed of the random numbers.

    Returns:
        0-dim tensor, the estimate KL_hat.
    """
    if int(n_samples) < 1:
        raise ValueError(f"n_samples: expected an int >= 1, got {n_samples!r}")
    gen = torch.Generator(device=mu1.device).manual_seed(int(seed))  # noqa: F841 (draw from it)
    raise NotImplementedError('torch.randn(..., generator=gen, dtype=mu1.dtype) gives eps')


# --------------------------------------------------------------------------
# 1d  Maximum likelihood for a Gaussian
# --------------------------------------------------------------------------


def gaussian_mle(x: torch.Tensor) -> tuple:
    """Maximum-likelihood mean and covariance of a Gaussian fitted to data.

        mu_hat = (1/N) sum_i x_i
        S_hat  = (1/N) sum_i (x_i - mu_hat)(x_i - mu_hat)^T     (1/N, not 1/(N-1))

    Args:
        x: (N, d) data, one point per row.

    Returns:
        (mean, cov) with shapes (d,) and (d, d).
    """
    if x.ndim != 2:
        raise ValueError(f"x: expected shape (N, d), got {tuple(x.shape)}")
    raise NotImplementedError('centre the data first; the outer products sum to diff^T diff')


# --------------------------------------------------------------------------
# 1e  One EM step for a Gaussian mixture
# --------------------------------------------------------------------------


def em_step(
    x: torch.Tensor, weights: torch.Tensor, means: torch.Tensor, covs: torch.Tensor
) -> tuple:
    """One EM iteration for a mixture of K full-covariance Gaussians.

    Model: p(x) = sum_k pi_k N(x; mu_k, S_k).

    E-step (in log space):
        log r_ik = log pi_k + log N(x_i; mu_k, S_k) - logsumexp_j [log pi_j + log N(x_i; mu_j, S_j)]
        so that sum_k r_ik = 1 for every point i.
    M-step (closed form), with N_k = sum_i r_ik:
        pi_k = N_k / N
        mu_k = (1/N_k) sum_i r_ik x_i
        S_k  = (1/N_k) sum_i r_ik (x_i - mu_k)(x_i - mu_k)^T      (with the NEW mu_k)

    The log-likelihood of the parameters passed in,
        LL = sum_i logsumexp_k [log pi_k + log N(x_i; mu_k, S_k)],
    comes for free from the E-step; EM guarantees that the LL of the returned
    parameters is >= this value. (You may reuse your ``gaussian_log_density``:
    when graded, em_step runs with a correct one in its place, so a mistake in
    1a costs points in 1a only.)

    Args:
        x: (N, d) data.
        weights: (K,) mixing weights pi (positive, summing to 1).
        means: (K, d) component means.
        covs: (K, d, d) component covariances.

    Returns:
        (new_weights (K,), new_means (K, d), new_covs (K, d, d),
        log_likelihood_before: 0-dim tensor, LL of the parameters passed in,
        summed over the N points).
    """
    raise NotImplementedError('first build the (N, K) matrix log pi_k + log N(x_i; mu_k, S_k)')
