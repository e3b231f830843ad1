"""Homework 2: variational autoencoders (ELBO, IWAE bound, mixture prior, semi-supervised).

Write the body of every function below (the parts that raise
``NotImplementedError``). Everything is plain PyTorch and must work for any
floating dtype, any device and any batch size; each docstring gives the shapes
and the equation to implement.

Conventions used throughout:

* ``x`` is a batch of binary images ``(batch, x_dim)``; ``z`` a batch of latent
  codes ``(..., z_dim)``.
* Gaussians are diagonal and described by their mean ``m`` and their VARIANCE
  ``v`` (not the standard deviation, not the log-variance).
* Per-sample quantities are SUMMED over the last dimension (the data or latent
  dimensions); losses are AVERAGED over the batch.
* ``encoder(x) -> (qm, qv)``: mean and variance of q(z|x), each ``(batch, z_dim)``.
  ``decoder(z) -> logits``: Bernoulli logits of p(x|z), ``(..., x_dim)`` for
  ``z`` of shape ``(..., z_dim)`` (any number of leading dimensions).
* Work in log space: combine log-terms with ``torch.logsumexp``, never with
  ``log(sum(exp(...)))``.

Every task is graded on its own: when graded, the bounds of 2d-2g run with
correct versions of the helpers (``sample_gaussian``, ``log_normal``,
``log_normal_mixture``, ``kl_normal``, ``log_bernoulli_with_logits``) in place
of yours, so a mistake in 2a-2c costs points only there. Call the helpers by
these names (they are looked up when your bound runs). ``coursekit check``
cannot do that (the correct helpers are not released): there your bounds use
your own helpers, so fix 2a-2c first.

Run ``coursekit check hw2`` (or the check cells in the notebook) to see your
public-check score.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LOG_2PI = math.log(2.0 * math.pi)


def log_bernoulli_with_logits(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """Given helper (not a task): Bernoulli log-likelihood summed over the last dimension.

    log p(x) = sum_j [x_j log sigmoid(l_j) + (1 - x_j) log(1 - sigmoid(l_j))]

    computed from the logits so that it never takes the log of 0.

    Args:
        x: (..., d) values in {0, 1}.
        logits: broadcastable with ``x``.

    Returns:
        (...) tensor.
    """
    x, logits = torch.broadcast_tensors(x, logits)
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)


# --------------------------------------------------------------------------
# 2a  Reparameterised sampling
# --------------------------------------------------------------------------


def sample_gaussian(m: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """One reparameterised sample of N(m, diag v) per entry.

    z = m + sqrt(v) * eps,   eps ~ N(0, I)

    The noise ``eps`` is drawn from torch's global generator; the randomness does
    not depend on ``m`` or ``v``, so gradients flow from ``z`` to both.

    Args:
        m: (..., d) means.
        v: (..., d) variances (> 0), same shape as ``m``.

    Returns:
        (..., d) sample with the shape of ``m``.
    """
    raise NotImplementedError('eps = torch.randn_like(m); the std is sqrt(v), not v')


# --------------------------------------------------------------------------
# 2b  Log-densities
# --------------------------------------------------------------------------


def log_normal(x: torch.Tensor, m: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Log-density of a diagonal Gaussian, summed over the last dimension.

    log N(x; m, diag v) = -1/2 sum_j [ log(2 pi) + log v_j + (x_j - m_j)^2 / v_j ]

    Args:
        x, m, v: broadcastable tensors (..., d); ``v > 0``.

    Returns:
        (...) tensor: the broadcast shape without its last dimension.
    """
    raise NotImplementedError('one line; LOG_2PI is defined at the top of this file')


def log_normal_mixture(z: torch.Tensor, m: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Log-density of a UNIFORM mixture of k diagonal Gaussians.

    log p(z) = log (1/k) sum_i N(z; m_i, diag v_i)
             = logsumexp_i log N(z; m_i, v_i) - log k

    Args:
        z: (..., d) points.
        m, v: (k, d) means and variances of the k components (the same mixture
            for every point).

    Returns:
        (...) tensor, one log-density per point.
    """
    raise NotImplementedError('log_normal(z.unsqueeze(-2), m, v), then torch.logsumexp')


# --------------------------------------------------------------------------
# 2c  KL divergence
# --------------------------------------------------------------------------


def kl_normal(
    qm: torch.Tensor, qv: torch.Tensor, pm: torch.Tensor, pv: torch.Tensor
) -> torch.Tensor:
    """KL(N(qm, diag qv) || N(pm, diag pv)), summed over the last dimension.

    KL = 1/2 sum_j [ log(pv_j / qv_j) + (qv_j + (qm_j - pm_j)^2) / pv_j - 1 ]

    Args:
        qm, qv, pm, pv: broadcastable tensors (..., d); variances > 0.

    Returns:
        (...) tensor (>= 0).
    """
    raise NotImplementedError('one line, term by term from the equation above')


# --------------------------------------------------------------------------
# 2d  Negative ELBO of a VAE
# --------------------------------------------------------------------------


def negative_elbo_bound(x: torch.Tensor, encoder, decoder):
    """Negative ELBO of a VAE with prior N(0, I) and a Bernoulli decoder.

    For every x_b of the batch, with one reparameterised sample z_b ~ q(z|x_b):

        rec_b  = -log p(x_b | z_b)                 (Bernoulli with decoder(z_b) logits)
        kl_b   = KL(q(z|x_b) || N(0, I))           (closed form, 2c)
        nelbo_b = rec_b + kl_b  >=  -log p(x_b)

    Args:
        x: (batch, x_dim) binary data.
        encoder: callable, ``encoder(x) -> (qm, qv)``, each (batch, z_dim).
        decoder: callable, ``decoder(z) -> logits`` (batch, x_dim).

    Returns:
        (nelbo, kl, rec): three scalar tensors, the batch AVERAGES of nelbo_b,
        kl_b and rec_b (so nelbo == kl + rec).
    """
    raise NotImplementedError('sample_gaussian, log_bernoulli_with_logits, kl_normal')


# --------------------------------------------------------------------------
# 2e  Negative IWAE bound
# --------------------------------------------------------------------------


def negative_iwae_bound(x: torch.Tensor, encoder, decoder, k: int) -> torch.Tensor:
    """Negative k-sample importance-weighted bound, averaged over the batch.

    With z_1..z_k ~ q(z|x) drawn independently and the log-weights

        log w_i = log p(x | z_i) + log N(z_i; 0, I) - log q(z_i | x),

    the bound is  L_k(x) = log (1/k) sum_i w_i  (<= log p(x)); return -L_k(x)
    averaged over the batch. L_1 is a (Monte Carlo) ELBO and L_k grows with k.

    Args:
        x: (batch, x_dim) binary data.
        encoder, decoder: as in ``negative_elbo_bound``; the decoder accepts
            z of shape (k, batch, z_dim).
        k: number of importance samples per data point (int >= 1).

    Returns:
        Scalar tensor.
    """
    raise NotImplementedError('z of shape (k, batch, z_dim); torch.logsumexp over k')


# --------------------------------------------------------------------------
# 2f  Negative ELBO of a GMVAE
# --------------------------------------------------------------------------


def gmvae_negative_elbo_bound(
    x: torch.Tensor, encoder, decoder, prior_m: torch.Tensor, prior_v: torch.Tensor
):
    """Negative ELBO of a VAE whose prior is a uniform mixture of Gaussians.

    p(z) = (1/k) sum_i N(z; prior_m_i, diag prior_v_i) has no closed-form KL
    with q(z|x), so use the single-sample Monte Carlo estimate at the same
    reparameterised z_b ~ q(z|x_b) that gives the reconstruction term:

        rec_b = -log p(x_b | z_b)
        kl_b  = log q(z_b | x_b) - log p(z_b)     (log p via 2b's log-sum-exp)

    Args:
        x: (batch, x_dim) binary data.
        encoder, decoder: as in ``negative_elbo_bound``.
        prior_m, prior_v: (k, z_dim) means and variances of the prior's components.

    Returns:
        (nelbo, kl, rec): three scalar tensors, batch averages, nelbo == kl + rec.
    """
    raise NotImplementedError('as in 2d; KL = log_normal(z, ...) - log_normal_mixture')


# --------------------------------------------------------------------------
# 2g  Semi-supervised VAE (M2) loss
# --------------------------------------------------------------------------


def ssvae_loss(x_u, x_l, y_l, classifier, encoder, decoder, alpha: float):
    """Training loss of the semi-supervised VAE p(y) p(z) p(x|y,z) (Kingma et al., "M2").

    Model: p(y) uniform over C classes, p(z) = N(0, I), p(x|y,z) Bernoulli with
    logits ``decoder(z, y)``; inference: q(y|x) = softmax(``classifier(x)``),
    q(z|x,y) = N(``encoder(x, y)``). Labels enter the networks one-hot.

    * labelled pair (x, y), one reparameterised z ~ q(z|x,y):
        nelbo_l(x, y) = -log p(x|y,z) + KL(q(z|x,y) || N(0, I)) + log C
    * unlabelled x: y is summed out under q(y|x) (every class decoded, one z each):
        nelbo_u(x) = sum_y q(y|x) nelbo_l(x, y) + sum_y q(y|x) log q(y|x)
      (the last sum is minus the entropy of q(y|x); together with the log C
      inside nelbo_l it is KL(q(y|x) || p(y)))
    * classification: ce = mean over the labelled batch of -log q(y_l | x_l)

        loss = mean_u nelbo_u + mean_l nelbo_l + alpha * ce

    Args:
        x_u: (n_u, x_dim) unlabelled binary data.
        x_l: (n_l, x_dim) labelled binary data; y_l: (n_l,) int64 labels in [0, C).
        classifier: ``classifier(x) -> logits`` (batch, C).
        encoder: ``encoder(x, y_onehot) -> (qm, qv)``, each (..., z_dim) for
            x (..., x_dim) and y_onehot (..., C) with the same leading shape.
        decoder: ``decoder(z, y_onehot) -> logits`` (..., x_dim).
        alpha: weight of the classification term (float >= 0).

    Returns:
        (loss, nelbo_u, nelbo_l, ce): four scalar tensors (batch averages).
    """
    raise NotImplementedError('one-hot labels (C, n_u, C) via torch.eye; F.log_softmax')
