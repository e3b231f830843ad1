r"""Monte Carlo estimators of ``log p(x)`` for a latent variable model, and the ELBO.

.. math:: p(x) = \int p(x \mid z)\, p(z)\, dz = \mathbb E_{q(z)}\Big[\frac{p(x, z)}{q(z)}\Big]

Naive Monte Carlo (``z`` from the prior) and importance sampling (``z`` from a
proposal ``q``) return estimates in log space, as a log-mean-exp of log weights
(:func:`coursekit.functional.log_mean_exp`, the IWAE combination); :func:`iwae_bound`
and :func:`elbo` estimate the two lower bounds.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.distributions as D

from coursekit import functional as F
from coursekit._validation import check_count

__all__ = ["elbo", "importance_log_weights", "is_log_marginal", "iwae_bound",
           "naive_mc_log_marginal"]


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
    k = check_count(n_samples, "n_samples")
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
    return F._log_mean_exp(log_w, dim=0)


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
    k = check_count(n_samples, "n_samples")
    z = _sample(prior, (k,))
    log_lik = log_likelihood(z)
    if not isinstance(log_lik, torch.Tensor) or log_lik.dim() < 1 or log_lik.shape[0] != k:
        got = tuple(log_lik.shape) if isinstance(log_lik, torch.Tensor) else type(
            log_lik).__name__
        raise ValueError(f"log_likelihood: expected log p(x|z) of shape (n_samples={k}, ...), "
                         f"got {got}")
    return F._log_mean_exp(log_lik, dim=0)


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
    k = check_count(k, "k")
    r = check_count(n_repeats, "n_repeats")
    log_w, _ = importance_log_weights(log_joint, q, k * r)
    log_w = log_w.reshape(r, k, *log_w.shape[1:])
    return F._log_mean_exp(log_w, dim=1).mean(0)


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
    k = check_count(n_samples, "n_samples")
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
