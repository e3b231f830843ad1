r"""Latent variable models and variational inference (lecture 03).

A latent variable model draws an unobserved ``z ~ p(z)`` and then ``x | z ~ p(x|z)``;
its likelihood needs the integral (or sum)

.. math::
    p(x) = \int p(x \mid z)\, p(z)\, dz ,

which is rarely tractable. This module holds the pieces the lecture builds on:

* Monte Carlo estimators of ``log p(x)``: naive (``z`` from the prior) and
  importance sampling (``z`` from a proposal ``q``), both returned in log space as
  a log-mean-exp of log weights; the ``k``-sample IWAE bound; an ELBO estimator.
* Gradient estimators of ``grad_params E_{q_params}[f(z)]``: the score function
  (REINFORCE, optionally with a leave-one-out or constant baseline) and the
  reparameterisation trick.
* :class:`LinearGaussianModel`: ``z ~ N(0, I_k)``, ``x | z ~ N(W z + b, s^2 I_d)``,
  whose marginal, posterior and ELBO are all available in closed form, so every
  estimator can be checked against the truth.
* :class:`PPCA` (closed-form maximum likelihood and EM, Tipping & Bishop 1999) and
  :class:`MixturePPCA` (EM), with scikit-learn style methods.

Conventions: torch in, torch out; NumPy arrays are accepted by the ``fit``
methods and converted to float64; the latent/event dimension is the last one;
log-densities are summed over it. Bad input raises ``ValueError`` naming the
argument.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.distributions as D

LOG_2PI = math.log(2.0 * math.pi)

__all__ = [
    "LinearGaussianModel",
    "MixturePPCA",
    "PPCA",
    "elbo",
    "importance_log_weights",
    "is_log_marginal",
    "iwae_bound",
    "log_mean_exp",
    "naive_mc_log_marginal",
    "reparam_gradient",
    "score_function_gradient",
]


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------
def _check_count(n, name: str, minimum: int = 1) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {n!r}")
    return int(n)


def _as_float_tensor(x, name: str, dtype=None) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        t = x
    elif isinstance(x, (np.ndarray, list, tuple, float, int)) and not isinstance(x, bool):
        t = torch.as_tensor(np.asarray(x, dtype=np.float64))
    else:
        raise TypeError(f"{name}: expected a torch.Tensor or an array of numbers, "
                        f"got {type(x).__name__}")
    if not t.is_floating_point():
        t = t.to(torch.float64)
    if dtype is not None:
        t = t.to(dtype)
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name}: expected finite values, got NaN or inf")
    return t


def _check_2d(X: torch.Tensor, name: str = "X") -> None:
    if X.dim() != 2:
        raise ValueError(f"{name}: expected shape (n_samples, n_features), "
                         f"got shape {tuple(X.shape)}")


def log_mean_exp(values: torch.Tensor, dim: int = 0) -> torch.Tensor:
    r"""``log((1/K) sum_i exp(v_i))`` along ``dim``, computed stably.

    .. math:: \mathrm{LME}(v) = \mathrm{logsumexp}(v) - \log K

    Args:
        values: any shape with ``K = values.shape[dim] >= 1``.

    Returns:
        ``values`` with ``dim`` removed.
    """
    if not isinstance(values, torch.Tensor):
        raise TypeError(f"values: expected a torch.Tensor, got {type(values).__name__}")
    if values.dim() == 0 or values.shape[dim] == 0:
        raise ValueError(f"values: expected at least one entry along dim={dim}, "
                         f"got shape {tuple(values.shape)}")
    return torch.logsumexp(values, dim=dim) - math.log(values.shape[dim])


def _sample(q: D.Distribution, shape: tuple[int, ...]) -> torch.Tensor:
    if not isinstance(q, D.Distribution):
        raise TypeError(f"q: expected a torch.distributions.Distribution, "
                        f"got {type(q).__name__}")
    return q.rsample(shape) if q.has_rsample else q.sample(shape)


# --------------------------------------------------------------------------------------
# Monte Carlo estimators of log p(x)
# --------------------------------------------------------------------------------------
def importance_log_weights(log_joint: Callable, q: D.Distribution, n_samples: int
                           ) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Draw ``z_i ~ q`` and return the log importance weights and the samples.

    .. math:: \log w_i = \log p(x, z_i) - \log q(z_i), \qquad z_i \sim q

    ``E_q[w] = p(x)`` for any ``q`` whose support covers the posterior.

    Args:
        log_joint: callable ``z -> log p(x, z)``; ``z`` has shape
            ``(n_samples, *q.batch_shape, *q.event_shape)`` and the result
            ``(n_samples, *q.batch_shape)`` (one ``x`` per batch entry of ``q``).
        q: the proposal, a ``torch.distributions.Distribution``; reparameterised
            samples are drawn when it supports them (so the weights carry gradients).
        n_samples: ``K >= 1``.

    Returns:
        ``(log_w, z)`` with ``log_w: (K, *q.batch_shape)``.
    """
    k = _check_count(n_samples, "n_samples")
    z = _sample(q, (k,))
    log_p = log_joint(z)
    log_q = q.log_prob(z)
    if not isinstance(log_p, torch.Tensor) or log_p.shape != log_q.shape:
        got = tuple(log_p.shape) if isinstance(log_p, torch.Tensor) else type(log_p).__name__
        raise ValueError(f"log_joint: expected log p(x, z) of shape {tuple(log_q.shape)} "
                         f"(n_samples, *q.batch_shape), got {got}")
    return log_p - log_q, z


def is_log_marginal(log_joint: Callable, q: D.Distribution, n_samples: int) -> torch.Tensor:
    r"""Importance-sampling estimate of ``log p(x)`` from ``K`` samples of ``q``.

    .. math::
        \log \hat p(x) = \log \frac1K \sum_{i=1}^K \frac{p(x, z_i)}{q(z_i)},
        \qquad z_i \sim q

    ``hat p(x)`` is unbiased for ``p(x)``; its log is biased low (Jensen:
    ``E[log hat p] <= log p(x)``), by less as ``K`` grows. Its expectation is
    the ``K``-sample IWAE bound (:func:`iwae_bound`).

    Args: as :func:`importance_log_weights`.

    Returns:
        ``(*q.batch_shape)``.
    """
    log_w, _ = importance_log_weights(log_joint, q, n_samples)
    return log_mean_exp(log_w, dim=0)


def naive_mc_log_marginal(log_likelihood: Callable, prior: D.Distribution,
                          n_samples: int) -> torch.Tensor:
    r"""Naive Monte Carlo estimate of ``log p(x)`` with ``z`` drawn from the prior.

    .. math::
        \log \hat p(x) = \log \frac1K \sum_{i=1}^K p(x \mid z_i), \qquad z_i \sim p(z)

    This is importance sampling with ``q = p(z)``: unbiased for ``p(x)`` but
    with a huge variance when the posterior is much narrower than the prior
    (almost every ``z_i`` explains ``x`` badly).

    Args:
        log_likelihood: callable ``z -> log p(x | z)``, ``(K, *batch, k) -> (K, *batch)``.
        prior: ``p(z)``; its batch shape may be ``()`` (one prior for every ``x``).
        n_samples: ``K >= 1``.

    Returns:
        ``(*batch)``.
    """
    k = _check_count(n_samples, "n_samples")
    z = _sample(prior, (k,))
    log_lik = log_likelihood(z)
    if not isinstance(log_lik, torch.Tensor) or log_lik.dim() < 1 or log_lik.shape[0] != k:
        got = tuple(log_lik.shape) if isinstance(log_lik, torch.Tensor) else type(
            log_lik).__name__
        raise ValueError(f"log_likelihood: expected log p(x|z) of shape (n_samples={k}, ...), "
                         f"got {got}")
    return log_mean_exp(log_lik, dim=0)


def iwae_bound(log_joint: Callable, q: D.Distribution, k: int, n_repeats: int = 1
               ) -> torch.Tensor:
    r"""Monte Carlo estimate of the ``k``-sample importance weighted bound.

    .. math::
        \mathcal L_k = \mathbb E_{z_{1:k} \sim q}\Big[\log \frac1k \sum_{i=1}^k
        \frac{p(x, z_i)}{q(z_i)}\Big] \le \log p(x)

    ``L_1`` is the ELBO; ``L_k`` is non-decreasing in ``k`` and tends to
    ``log p(x)``; with ``q = p(z|x)`` every weight equals ``p(x)`` and
    ``L_k = log p(x)`` exactly. The estimate averages ``n_repeats`` independent
    ``k``-sample log-mean-exps.

    Args:
        log_joint, q: as :func:`importance_log_weights`.
        k: samples inside the log, ``>= 1``.
        n_repeats: independent repetitions averaged outside the log, ``>= 1``.

    Returns:
        ``(*q.batch_shape)``.
    """
    k = _check_count(k, "k")
    r = _check_count(n_repeats, "n_repeats")
    log_w, _ = importance_log_weights(log_joint, q, k * r)
    log_w = log_w.reshape(r, k, *log_w.shape[1:])
    return log_mean_exp(log_w, dim=1).mean(0)


def elbo(log_joint: Callable, q: D.Distribution, n_samples: int = 1,
         analytic_entropy: bool = True) -> torch.Tensor:
    r"""Monte Carlo estimate of the evidence lower bound.

    .. math::
        \mathrm{ELBO}(q) = \mathbb E_q[\log p(x, z)] + H(q)
        = \log p(x) - \mathrm{KL}(q \,\|\, p(z \mid x)) \le \log p(x)

    With ``analytic_entropy`` (and ``q.entropy()`` available) the entropy is
    exact and only ``E_q[log p(x, z)]`` is estimated; otherwise the estimate is
    the mean of ``log p(x, z_i) - log q(z_i)``. Samples are reparameterised
    when ``q`` allows it, so the result can be differentiated.

    Args:
        log_joint, q: as :func:`importance_log_weights`.
        n_samples: ``>= 1``.

    Returns:
        ``(*q.batch_shape)``.
    """
    k = _check_count(n_samples, "n_samples")
    z = _sample(q, (k,))
    log_p = log_joint(z)
    if not isinstance(log_p, torch.Tensor) or log_p.dim() < 1 or log_p.shape[0] != k:
        raise ValueError(f"log_joint: expected log p(x, z) of shape (n_samples={k}, "
                         f"*q.batch_shape), got {getattr(log_p, 'shape', type(log_p))}")
    if analytic_entropy:
        try:
            return log_p.mean(0) + q.entropy()
        except NotImplementedError:
            pass
    return (log_p - q.log_prob(z)).mean(0)


# --------------------------------------------------------------------------------------
# gradient estimators
# --------------------------------------------------------------------------------------
def _prepare_params(params: Sequence[torch.Tensor], n_repeats: int | None):
    if isinstance(params, torch.Tensor) or not isinstance(params, Sequence) or not params:
        raise TypeError("params: expected a non-empty list/tuple of tensors")
    for i, p in enumerate(params):
        if not isinstance(p, torch.Tensor) or not p.is_floating_point():
            raise TypeError(f"params[{i}]: expected a floating torch.Tensor, "
                            f"got {type(p).__name__}")
    if n_repeats is None:
        leaves = [p.detach().clone().requires_grad_(True) for p in params]
    else:
        r = _check_count(n_repeats, "n_repeats")
        leaves = [p.detach().unsqueeze(0).expand(r, *p.shape).clone().requires_grad_(True)
                  for p in params]
    return leaves


def _f_values(f, z, expected_shape, name="f"):
    values = f(z)
    if not isinstance(values, torch.Tensor) or tuple(values.shape) != tuple(expected_shape):
        got = tuple(values.shape) if isinstance(values, torch.Tensor) else type(values).__name__
        raise ValueError(f"{name}: expected f(z) of shape {tuple(expected_shape)} "
                         f"(n_samples, *batch), got {got}")
    return values


def score_function_gradient(f: Callable, make_dist: Callable, params: Sequence[torch.Tensor],
                            n_samples: int, baseline: str | float | None = None,
                            n_repeats: int | None = None) -> list[torch.Tensor]:
    r"""Score-function (REINFORCE) estimate of ``grad_params E_{q_params}[f(z)]``.

    .. math::
        \nabla_\lambda \mathbb E_{q_\lambda}[f(z)]
        = \mathbb E_{q_\lambda}\big[(f(z) - b)\, \nabla_\lambda \log q_\lambda(z)\big]
        \approx \frac1n \sum_{i=1}^n (f(z_i) - b_i)\, \nabla_\lambda \log q_\lambda(z_i)

    valid for any ``b`` that does not depend on ``z_i`` because
    ``E_q[grad log q] = 0``. It needs only ``log q`` to be differentiable, so it
    works for discrete ``z``; ``f`` is treated as a constant of ``lambda`` (for the
    ELBO, pass ``f = log p(x, z) - log q(z)``: the extra term ``E_q[grad log q]`` is 0).

    Args:
        f: callable ``z -> values`` of shape ``(n_samples, *batch)``.
        make_dist: callable ``(*params) -> torch.distributions.Distribution`` with
            ``log_prob`` summed over the event (use ``Independent``).
        params: the tensors ``lambda`` to differentiate with respect to (not modified).
        n_samples: ``n >= 1`` (``>= 2`` with ``baseline="loo"``).
        baseline: ``None``; a number (a constant ``b``); or ``"loo"``: for sample
            ``i`` the mean of ``f`` over the other ``n - 1`` samples (unbiased).
        n_repeats: if given, ``R`` independent estimates are computed at once:
            every parameter gets a leading dimension ``R`` before ``make_dist`` is
            called (so ``make_dist`` must broadcast it) and each returned gradient
            has shape ``(R, *param.shape)``.

    Returns:
        one gradient per parameter, ``param.shape`` (or ``(R, *param.shape)``).
    """
    n = _check_count(n_samples, "n_samples")
    if baseline == "loo" and n < 2:
        raise ValueError(f"n_samples: the leave-one-out baseline needs n_samples >= 2, got {n}")
    if not (baseline is None or baseline == "loo" or isinstance(baseline, (int, float))):
        raise ValueError(f"baseline: expected None, a number or 'loo', got {baseline!r}")
    leaves = _prepare_params(params, n_repeats)
    dist = make_dist(*leaves)
    with torch.no_grad():
        z = dist.sample((n,))
    log_q = dist.log_prob(z)
    with torch.no_grad():
        values = _f_values(f, z, log_q.shape)
        if baseline == "loo":
            b = (values.sum(0, keepdim=True) - values) / (n - 1)
        elif baseline is None:
            b = 0.0
        else:
            b = float(baseline)
        weight = values - b
    surrogate = (weight * log_q).mean(0).sum()
    return list(torch.autograd.grad(surrogate, leaves))


def reparam_gradient(f: Callable, make_dist: Callable, params: Sequence[torch.Tensor],
                     n_samples: int, n_repeats: int | None = None) -> list[torch.Tensor]:
    r"""Reparameterisation estimate of ``grad_params E_{q_params}[f(z)]``.

    Write ``z = g_\lambda(\epsilon)`` with ``\epsilon`` from a fixed distribution
    (for a Gaussian ``z = mu + sigma * eps``, ``eps ~ N(0, I)``); then

    .. math::
        \nabla_\lambda \mathbb E_{q_\lambda}[f(z)]
        = \mathbb E_\epsilon[\nabla_\lambda f(g_\lambda(\epsilon))]
        \approx \frac1n \sum_i \nabla_z f(z_i)\, \nabla_\lambda g_\lambda(\epsilon_i)

    It needs a differentiable ``f`` and a distribution with ``rsample``.

    Args: as :func:`score_function_gradient` (``f`` must be differentiable).

    Returns:
        one gradient per parameter, ``param.shape`` (or ``(R, *param.shape)``).
    """
    n = _check_count(n_samples, "n_samples")
    leaves = _prepare_params(params, n_repeats)
    dist = make_dist(*leaves)
    if not dist.has_rsample:
        raise ValueError(f"make_dist: the reparameterisation estimator needs a distribution "
                         f"with rsample, got {type(dist).__name__}")
    z = dist.rsample((n,))
    values = _f_values(f, z, z.shape[: 1 + len(dist.batch_shape)])
    return list(torch.autograd.grad(values.mean(0).sum(), leaves))


# --------------------------------------------------------------------------------------
# the linear-Gaussian model
# --------------------------------------------------------------------------------------
class LinearGaussianModel:
    r"""``z ~ N(0, I_k)``, ``x | z ~ N(W z + b, sigma^2 I_d)``: everything in closed form.

    .. math::
        p(x) &= N(x; b, W W^T + \sigma^2 I_d) \\
        p(z \mid x) &= N(z; M^{-1} W^T (x - b),\ \sigma^2 M^{-1}),
        \qquad M = W^T W + \sigma^2 I_k

    Args:
        W: ``(d, k)``; b: ``(d,)``; noise_variance: ``sigma^2 > 0``.
    """

    def __init__(self, W, b, noise_variance: float):
        W = _as_float_tensor(W, "W")
        if W.dim() != 2:
            raise ValueError(f"W: expected shape (d, k), got shape {tuple(W.shape)}")
        b = _as_float_tensor(b, "b", W.dtype).to(W.device)
        if b.shape != (W.shape[0],):
            raise ValueError(f"b: expected shape ({W.shape[0]},) to match W's d, "
                             f"got shape {tuple(b.shape)}")
        s2 = float(noise_variance)
        if not (math.isfinite(s2) and s2 > 0):
            raise ValueError(f"noise_variance: expected a positive number, got {noise_variance!r}")
        self.W, self.b, self.noise_variance = W, b, s2
        self.d, self.k = W.shape

    def _x(self, x) -> torch.Tensor:
        x = _as_float_tensor(x, "x", self.W.dtype).to(self.W.device)
        if x.dim() < 1 or x.shape[-1] != self.d:
            raise ValueError(f"x: expected shape (..., d={self.d}), got shape {tuple(x.shape)}")
        return x

    def _z(self, z) -> torch.Tensor:
        z = _as_float_tensor(z, "z", self.W.dtype).to(self.W.device)
        if z.dim() < 1 or z.shape[-1] != self.k:
            raise ValueError(f"z: expected shape (..., k={self.k}), got shape {tuple(z.shape)}")
        return z

    @property
    def covariance(self) -> torch.Tensor:
        """Marginal covariance ``W W^T + sigma^2 I``, ``(d, d)``."""
        eye = torch.eye(self.d, dtype=self.W.dtype, device=self.W.device)
        return self.W @ self.W.T + self.noise_variance * eye

    def prior(self) -> D.Distribution:
        """``p(z) = N(0, I_k)`` as an ``Independent(Normal)`` with event shape ``(k,)``."""
        zero = torch.zeros(self.k, dtype=self.W.dtype, device=self.W.device)
        return D.Independent(D.Normal(zero, torch.ones_like(zero)), 1)

    def marginal(self) -> D.MultivariateNormal:
        """``p(x) = N(b, W W^T + sigma^2 I)``."""
        return D.MultivariateNormal(self.b, covariance_matrix=self.covariance)

    def log_marginal(self, x) -> torch.Tensor:
        """Exact ``log p(x)``; ``x: (..., d) -> (...)``."""
        return self.marginal().log_prob(self._x(x))

    def log_likelihood(self, x, z) -> torch.Tensor:
        r"""``log p(x|z) = log N(x; W z + b, sigma^2 I)``; ``x: (..., d)``, ``z: (..., k)``
        broadcast to ``(...)``."""
        x, z = self._x(x), self._z(z)
        diff = x - (z @ self.W.T + self.b)
        return -0.5 * (self.d * (LOG_2PI + math.log(self.noise_variance))
                       + (diff * diff).sum(-1) / self.noise_variance)

    def log_prior(self, z) -> torch.Tensor:
        """``log N(z; 0, I)``, ``(..., k) -> (...)``."""
        z = self._z(z)
        return -0.5 * (self.k * LOG_2PI + (z * z).sum(-1))

    def log_joint(self, x, z) -> torch.Tensor:
        """``log p(x, z) = log p(x|z) + log p(z)``; broadcast like :meth:`log_likelihood`."""
        return self.log_likelihood(x, z) + self.log_prior(z)

    def posterior(self, x) -> tuple[torch.Tensor, torch.Tensor]:
        """Exact posterior ``p(z|x)``: mean ``(..., k)`` and covariance ``(k, k)``
        (the same for every ``x``)."""
        x = self._x(x)
        eye = torch.eye(self.k, dtype=self.W.dtype, device=self.W.device)
        M = self.W.T @ self.W + self.noise_variance * eye
        L = torch.linalg.cholesky(M)
        cov = self.noise_variance * torch.cholesky_inverse(L)
        mean = torch.cholesky_solve(((x - self.b) @ self.W).unsqueeze(-1), L).squeeze(-1)
        return mean, 0.5 * (cov + cov.T)

    def posterior_distribution(self, x) -> D.MultivariateNormal:
        """``p(z|x)`` as a ``MultivariateNormal`` with batch shape ``x.shape[:-1]``."""
        mean, cov = self.posterior(x)
        return D.MultivariateNormal(mean, covariance_matrix=cov)

    def elbo(self, x, q_mean, q_cov) -> torch.Tensor:
        r"""Exact ELBO of a Gaussian ``q(z) = N(m, S)``.

        .. math::
            \mathrm{ELBO} = \mathbb E_q[\log p(x|z)] - \mathrm{KL}(q \,\|\, N(0, I)),\quad
            \mathbb E_q[\log p(x|z)] = -\tfrac d2 \log(2\pi\sigma^2)
            - \frac{\|x - b - W m\|^2 + \mathrm{tr}(W^T W S)}{2\sigma^2}

        Args:
            x: ``(..., d)``; q_mean: ``(..., k)``; q_cov: ``(..., k, k)`` (or ``(k, k)``).

        Returns:
            ``(...)``.
        """
        x, m = self._x(x), self._z(q_mean)
        S = _as_float_tensor(q_cov, "q_cov", self.W.dtype).to(self.W.device)
        if S.dim() < 2 or S.shape[-2:] != (self.k, self.k):
            raise ValueError(f"q_cov: expected shape (..., {self.k}, {self.k}), "
                             f"got shape {tuple(S.shape)}")
        diff = x - self.b - m @ self.W.T
        WtW = self.W.T @ self.W
        trace = (WtW * S).sum((-2, -1))
        expected_ll = -0.5 * (self.d * (LOG_2PI + math.log(self.noise_variance))
                              + ((diff * diff).sum(-1) + trace) / self.noise_variance)
        L = torch.linalg.cholesky(S)
        logdet = 2.0 * torch.log(torch.diagonal(L, dim1=-2, dim2=-1)).sum(-1)
        kl = 0.5 * (torch.diagonal(S, dim1=-2, dim2=-1).sum(-1) + (m * m).sum(-1)
                    - self.k - logdet)
        return expected_ll - kl

    def sample(self, n: int, generator: torch.Generator | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Ancestral sampling: ``(x, z)`` of shapes ``(n, d)`` and ``(n, k)``."""
        n = _check_count(n, "n")
        kw = {"dtype": self.W.dtype, "device": self.W.device, "generator": generator}
        z = torch.randn(n, self.k, **kw)
        x = z @ self.W.T + self.b + math.sqrt(self.noise_variance) * torch.randn(n, self.d, **kw)
        return x, z


# --------------------------------------------------------------------------------------
# probabilistic PCA
# --------------------------------------------------------------------------------------
def _ppca_closed_form(S: torch.Tensor, q: int) -> tuple[torch.Tensor, float]:
    """ML ``W`` (``(d, q)``, orthogonal columns) and ``sigma^2`` from a covariance ``S``."""
    d = S.shape[0]
    evals, evecs = torch.linalg.eigh(S)
    evals, evecs = evals.flip(0), evecs.flip(1)
    noise = float(evals[q:].mean()) if q < d else 0.0
    noise = max(noise, 1e-8 * max(float(evals[0]), 1e-300))
    scale = torch.sqrt(torch.clamp(evals[:q] - noise, min=0.0))
    W = evecs[:, :q] * scale
    # a deterministic sign: the largest-magnitude entry of each column is positive
    idx = W.abs().argmax(0)
    signs = torch.sign(W[idx, torch.arange(q)])
    signs[signs == 0] = 1.0
    return W * signs, noise


class PPCA:
    r"""Probabilistic PCA (Tipping & Bishop, 1999).

    .. math::
        z \sim N(0, I_q),\quad x \mid z \sim N(W z + \mu, \sigma^2 I_d),\quad
        p(x) = N(x; \mu, W W^T + \sigma^2 I_d)

    ``fit(X, method="closed_form")`` uses the maximum-likelihood solution: with
    the sample covariance ``S = U Lambda U^T`` (``1/N`` normalisation, eigenvalues
    in decreasing order), ``sigma^2`` is the mean of the ``d - q`` discarded
    eigenvalues and ``W = U_q (Lambda_q - sigma^2 I)^{1/2}``.
    ``method="em"`` runs EM: the E-step computes the exact posterior
    ``q(z_n) = N(M^{-1} W^T (x_n - mu), sigma^2 M^{-1})`` (so the ELBO touches the
    log-likelihood), the M-step maximises the ELBO over ``W`` and ``sigma^2``:

    .. math::
        W \leftarrow \Big[\sum_n (x_n-\mu) E[z_n]^T\Big]\Big[\sum_n E[z_n z_n^T]\Big]^{-1},
        \quad
        \sigma^2 \leftarrow \frac{1}{Nd}\sum_n \big(\|x_n-\mu\|^2
        - 2 E[z_n]^T W^T (x_n-\mu) + \mathrm{tr}(E[z_n z_n^T] W^T W)\big)

    Attributes after ``fit``: ``W_`` ``(d, q)``, ``noise_variance_``, ``mean_`` ``(d,)``,
    ``n_iter_``, ``converged_``; for EM also ``lower_bounds_`` (mean ELBO per sample
    after each M-step, with the ``q`` of the preceding E-step) and
    ``log_likelihoods_`` (mean log-likelihood after each M-step). Coordinate ascent
    gives ``log_likelihoods_[t-1] <= lower_bounds_[t] <= log_likelihoods_[t]``.

    Args:
        n_components: latent dimension ``q`` with ``1 <= q < d``.
        max_iter, tol: EM stops when the mean log-likelihood improves by less than ``tol``.
        seed: seeds EM's random initial ``W``.
    """

    def __init__(self, n_components: int, max_iter: int = 1000, tol: float = 1e-8,
                 seed: int | None = 0):
        self.n_components = _check_count(n_components, "n_components")
        self.max_iter = _check_count(max_iter, "max_iter")
        if not tol >= 0:
            raise ValueError(f"tol: expected a non-negative number, got {tol!r}")
        self.tol = float(tol)
        self.seed = seed

    # -- fitting -----------------------------------------------------------
    def _check_X(self, X, fitting=False) -> torch.Tensor:
        dtype = None if fitting else self.W_.dtype
        X = _as_float_tensor(X, "X", dtype)
        _check_2d(X)
        if fitting:
            if X.shape[1] <= self.n_components:
                raise ValueError(f"n_components: expected fewer than n_features="
                                 f"{X.shape[1]}, got {self.n_components}")
            if X.shape[0] < 2:
                raise ValueError(f"X: expected at least 2 samples, got {X.shape[0]}")
        elif X.shape[1] != self.W_.shape[0]:
            raise ValueError(f"X: expected {self.W_.shape[0]} features (as in fit), "
                             f"got {X.shape[1]}")
        return X

    def fit(self, X, method: str = "closed_form") -> PPCA:
        """Fit to ``X`` ``(n, d)`` by ``"closed_form"`` maximum likelihood or ``"em"``."""
        if method not in ("closed_form", "em"):
            raise ValueError(f"method: expected 'closed_form' or 'em', got {method!r}")
        X = self._check_X(X, fitting=True)
        if X.dtype != torch.float64:
            X = X.to(torch.float64)
        n, d = X.shape
        q = self.n_components
        self.mean_ = X.mean(0)
        Xc = X - self.mean_
        S = Xc.T @ Xc / n
        if method == "closed_form":
            self.W_, self.noise_variance_ = _ppca_closed_form(S, q)
            self.n_iter_, self.converged_ = 0, True
            # with the exact posterior as q the ELBO equals the log-likelihood
            self.log_likelihoods_ = [self.score(X)]
            self.lower_bounds_ = list(self.log_likelihoods_)
            return self
        gen = torch.Generator(device=X.device).manual_seed(0 if self.seed is None else
                                                           int(self.seed))
        scale = math.sqrt(float(torch.diagonal(S).mean()))
        self.W_ = scale * torch.randn(d, q, generator=gen, dtype=X.dtype, device=X.device)
        self.noise_variance_ = float(torch.diagonal(S).mean())
        self.lower_bounds_, self.log_likelihoods_ = [], []
        self.converged_ = False
        eye = torch.eye(q, dtype=X.dtype, device=X.device)
        for it in range(self.max_iter):
            # E-step: exact posterior N(Ez, s2 M^-1) for every point
            M = self.W_.T @ self.W_ + self.noise_variance_ * eye
            Minv = torch.linalg.inv(M)
            Ez = Xc @ self.W_ @ Minv                    # (n, q)
            cov = self.noise_variance_ * Minv          # (q, q), shared
            sum_Ezz = n * cov + Ez.T @ Ez              # sum_n E[z z^T]
            # M-step
            W = (Xc.T @ Ez) @ torch.linalg.inv(sum_Ezz)
            s2 = float(((Xc * Xc).sum() - 2.0 * (Ez * (Xc @ W)).sum()
                        + (sum_Ezz * (W.T @ W)).sum()) / (n * d))
            self.W_, self.noise_variance_ = W, s2
            self.lower_bounds_.append(float(self.elbo(X, Ez, cov).mean()))
            self.log_likelihoods_.append(self.score(X))
            self.n_iter_ = it + 1
            if it > 0 and abs(self.log_likelihoods_[-1] - self.log_likelihoods_[-2]) < self.tol:
                self.converged_ = True
                break
        return self

    # -- the fitted model ----------------------------------------------------
    def _model(self) -> LinearGaussianModel:
        if not hasattr(self, "W_"):
            raise RuntimeError("PPCA: call fit(X) before using the model")
        return LinearGaussianModel(self.W_, self.mean_, self.noise_variance_)

    @property
    def lower_bound_(self) -> float:
        """The last entry of ``lower_bounds_``."""
        return self.lower_bounds_[-1]

    @property
    def covariance_(self) -> torch.Tensor:
        """``W W^T + sigma^2 I``, ``(d, d)``."""
        return self._model().covariance

    def score_samples(self, X) -> torch.Tensor:
        """``log p(x_n)`` for each row, ``(n, d) -> (n,)``."""
        return self._model().log_marginal(self._check_X(X))

    def score(self, X) -> float:
        """Mean log-likelihood per sample."""
        return float(self.score_samples(X).mean())

    def posterior(self, X) -> tuple[torch.Tensor, torch.Tensor]:
        """Exact ``p(z|x)``: means ``(n, q)`` and the shared covariance ``(q, q)``."""
        return self._model().posterior(self._check_X(X))

    def transform(self, X) -> torch.Tensor:
        """Posterior means ``E[z|x] = M^{-1} W^T (x - mu)``, ``(n, d) -> (n, q)``."""
        return self.posterior(X)[0]

    def elbo(self, X, q_mean, q_cov) -> torch.Tensor:
        """ELBO of Gaussian ``q(z_n) = N(q_mean[n], q_cov)`` per row (see
        :meth:`LinearGaussianModel.elbo`), ``(n,)``."""
        return self._model().elbo(self._check_X(X), q_mean, q_cov)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` samples ``(n, d)``."""
        return self._model().sample(n, generator)[0]


# --------------------------------------------------------------------------------------
# mixture of PPCA
# --------------------------------------------------------------------------------------
def _kmeanspp(X: torch.Tensor, K: int, gen: torch.Generator) -> torch.Tensor:
    """k-means++ seeding: ``K`` rows of ``X`` ``(n, d)``, spread out, ``(K, d)``."""
    n = X.shape[0]
    first = int(torch.randint(n, (1,), generator=gen))
    centres = [X[first]]
    d2 = ((X - X[first]) ** 2).sum(1)
    for _ in range(1, K):
        probs = (d2 / d2.sum()).cpu() if float(d2.sum()) > 0 else torch.full((n,), 1.0 / n)
        nxt = int(torch.multinomial(probs.float(), 1, generator=gen))
        centres.append(X[nxt])
        d2 = torch.minimum(d2, ((X - X[nxt]) ** 2).sum(1))
    return torch.stack(centres).clone()


class MixturePPCA:
    r"""Mixture of probabilistic PCA models fitted by EM (Tipping & Bishop, 1999).

    .. math::
        p(x) = \sum_{j=1}^K \pi_j\, N(x; \mu_j, W_j W_j^T + \sigma_j^2 I)

    E-step: responsibilities ``r_nj`` (computed with log-sum-exp). M-step:
    ``pi_j = mean_n r_nj``, ``mu_j`` the responsibility-weighted mean, and
    ``(W_j, sigma_j^2)`` the closed-form PPCA solution for the weighted
    covariance ``S_j = sum_n r_nj (x_n - mu_j)(x_n - mu_j)^T / sum_n r_nj``, which is
    the exact maximiser of the expected complete log-likelihood over the PPCA
    family, so the log-likelihood never decreases.

    Attributes after ``fit``: ``weights_`` ``(K,)``, ``means_`` ``(K, d)``, ``W_``
    ``(K, d, q)``, ``noise_variance_`` ``(K,)``, ``lower_bounds_`` (mean
    log-likelihood per sample after each iteration), ``lower_bound_``, ``n_iter_``,
    ``converged_``.

    Args:
        n_components: ``K``; n_latent: ``q < d``; max_iter, tol: stopping rule;
        reg: added to every ``sigma_j^2`` (times the data's mean variance) so that
        a component collapsing onto few points stays proper; seed: initial means
        are ``K`` data points chosen by k-means++ seeding (each new one drawn with
        probability proportional to its squared distance to the nearest chosen one)
        with this seed. EM finds a local optimum: try several seeds.
    """

    def __init__(self, n_components: int, n_latent: int, max_iter: int = 200,
                 tol: float = 1e-6, reg: float = 1e-6, seed: int | None = 0):
        self.n_components = _check_count(n_components, "n_components")
        self.n_latent = _check_count(n_latent, "n_latent")
        self.max_iter = _check_count(max_iter, "max_iter")
        if not tol >= 0:
            raise ValueError(f"tol: expected a non-negative number, got {tol!r}")
        if not reg >= 0:
            raise ValueError(f"reg: expected a non-negative number, got {reg!r}")
        self.tol, self.reg, self.seed = float(tol), float(reg), seed

    def _check_X(self, X, fitting=False) -> torch.Tensor:
        X = _as_float_tensor(X, "X", torch.float64)
        _check_2d(X)
        if fitting:
            if X.shape[1] <= self.n_latent:
                raise ValueError(f"n_latent: expected fewer than n_features={X.shape[1]}, "
                                 f"got {self.n_latent}")
            if X.shape[0] < self.n_components:
                raise ValueError(f"X: expected at least n_components={self.n_components} "
                                 f"samples, got {X.shape[0]}")
        else:
            if not hasattr(self, "W_"):
                raise RuntimeError("MixturePPCA: call fit(X) before using the model")
            if X.shape[1] != self.means_.shape[1]:
                raise ValueError(f"X: expected {self.means_.shape[1]} features (as in fit), "
                                 f"got {X.shape[1]}")
            X = X.to(self.means_.device)
        return X

    def _component_log_prob(self, X: torch.Tensor) -> torch.Tensor:
        """``log pi_j + log N(x_n; mu_j, C_j)``, ``(n, K)``."""
        d = X.shape[1]
        eye = torch.eye(d, dtype=X.dtype, device=X.device)
        C = self.W_ @ self.W_.mT + self.noise_variance_[:, None, None] * eye
        mvn = D.MultivariateNormal(self.means_, covariance_matrix=C)
        return mvn.log_prob(X[:, None, :]) + torch.log(self.weights_)

    def fit(self, X) -> MixturePPCA:
        """Fit by EM to ``X`` ``(n, d)``."""
        X = self._check_X(X, fitting=True)
        n, d = X.shape
        K, q = self.n_components, self.n_latent
        gen = torch.Generator().manual_seed(0 if self.seed is None else int(self.seed))
        var = float(X.var(0, correction=0).mean())
        self.means_ = _kmeanspp(X, K, gen)
        self.weights_ = torch.full((K,), 1.0 / K, dtype=X.dtype, device=X.device)
        self.W_ = torch.zeros(K, d, q, dtype=X.dtype, device=X.device)
        self.noise_variance_ = torch.full((K,), var, dtype=X.dtype, device=X.device)
        self.lower_bounds_ = []
        self.converged_ = False
        floor = self.reg * var
        for it in range(self.max_iter):
            logp = self._component_log_prob(X)
            log_norm = torch.logsumexp(logp, dim=1, keepdim=True)
            resp = torch.exp(logp - log_norm)
            self.lower_bounds_.append(float(log_norm.mean()))
            if it > 0 and abs(self.lower_bounds_[-1] - self.lower_bounds_[-2]) < self.tol:
                self.converged_ = True
                break
            nk = resp.sum(0) + 10 * torch.finfo(X.dtype).eps
            self.weights_ = nk / n
            self.means_ = (resp.T @ X) / nk[:, None]
            Ws, s2s = [], []
            for j in range(K):
                Xc = X - self.means_[j]
                Sj = (Xc * resp[:, j:j + 1]).T @ Xc / nk[j]
                W, s2 = _ppca_closed_form(Sj, q)
                Ws.append(W)
                s2s.append(s2 + floor)
            self.W_ = torch.stack(Ws)
            self.noise_variance_ = torch.tensor(s2s, dtype=X.dtype, device=X.device)
        self.n_iter_ = len(self.lower_bounds_)
        return self

    @property
    def lower_bound_(self) -> float:
        return self.lower_bounds_[-1]

    def score_samples(self, X) -> torch.Tensor:
        """``log p(x_n)``, ``(n, d) -> (n,)``."""
        return torch.logsumexp(self._component_log_prob(self._check_X(X)), dim=1)

    def score(self, X) -> float:
        """Mean log-likelihood per sample."""
        return float(self.score_samples(X).mean())

    def predict_proba(self, X) -> torch.Tensor:
        """Responsibilities ``p(j | x_n)``, ``(n, K)``."""
        logp = self._component_log_prob(self._check_X(X))
        return torch.softmax(logp, dim=1)

    def predict(self, X) -> torch.Tensor:
        """Most responsible component per row, ``(n,)``."""
        return self.predict_proba(X).argmax(1)

    def sample(self, n: int, generator: torch.Generator | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, component)`` with shapes ``(n, d)`` and ``(n,)``."""
        n = _check_count(n, "n")
        if not hasattr(self, "W_"):
            raise RuntimeError("MixturePPCA: call fit(X) before using the model")
        kw = {"dtype": self.means_.dtype, "device": self.means_.device, "generator": generator}
        comp = torch.multinomial(self.weights_, n, replacement=True, generator=generator)
        z = torch.randn(n, self.n_latent, **kw)
        eps = torch.randn(n, self.means_.shape[1], **kw)
        x = (self.means_[comp] + (self.W_[comp] @ z.unsqueeze(-1)).squeeze(-1)
             + torch.sqrt(self.noise_variance_[comp])[:, None] * eps)
        return x, comp
