r"""Objectives that train an energy :math:`E_\theta` without ever computing :math:`Z(\theta)`.

* :func:`cd_loss`: maximum likelihood by contrastive divergence. Since
  :math:`\nabla_\theta \log Z = -\mathbb E_{p_\theta}[\nabla_\theta E]`,
  :math:`\nabla_\theta\,\mathrm{NLL} = \mathbb E_{data}[\nabla_\theta E]
  - \mathbb E_{p_\theta}[\nabla_\theta E]`, estimated with samples from a sampler.
* :func:`score_matching_loss`: Hyvärinen's objective
  :math:`\mathbb E_{data}\big[\tfrac12\|s(x)\|^2 + \operatorname{tr}\nabla_x s(x)\big]`,
  :math:`s = -\nabla_x E`, which equals :math:`\tfrac12\mathbb E\|s - \nabla\log p_{data}\|^2`
  up to a constant. ``"exact"`` takes the trace with ``d`` backward passes; ``"sliced"``
  estimates it with random projections :math:`v^\top(\nabla_x s)v`, :math:`v\sim\mathcal N(0, I)`.
* :func:`dsm_loss`: denoising score matching (Vincent, 2011),
  :math:`\tfrac12\mathbb E\|s(\tilde x) + (\tilde x - x)/\sigma^2\|^2` with
  :math:`\tilde x = x + \sigma\varepsilon`: score matching against the noised data
  :math:`q_\sigma = p_{data} * \mathcal N(0, \sigma^2 I)`, up to a constant.
* :func:`nce_loss`: noise-contrastive estimation (Gutmann & Hyvärinen, 2010): logistic
  regression of data against samples of a known noise density :math:`q`, with the logit
  :math:`\log p_\theta(x) - \log(\nu q(x))`; :math:`\log Z` is a learned parameter.

The score-based objectives take the energy callable and the data; the other two take
numbers the caller computed (energies, log-densities), like :mod:`coursekit.gan.losses`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from coursekit._validation import as_generator, check_choice, check_count, check_number

__all__ = ["cd_loss", "dsm_loss", "nce_loss", "score_matching_loss"]

Energy = Callable[[torch.Tensor], torch.Tensor]
METHODS = ("exact", "sliced")


def _scalar_batch(t, name: str) -> torch.Tensor:
    if not isinstance(t, torch.Tensor) or t.dim() != 1 or not len(t):
        shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
        raise ValueError(f"{name}: expected a non-empty tensor of shape (batch,), got {shape}")
    return t


def _points(x) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.dim() != 2 or not x.is_floating_point():
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x: expected a floating tensor of shape (batch, d), got {shape}")
    return x


def cd_loss(energy_data: torch.Tensor, energy_samples: torch.Tensor, *,
            l2: float = 0.0) -> torch.Tensor:
    r""":math:`\overline{E(x_{data})} - \overline{E(x_{model})}
    + \alpha\,(\overline{E(x_{data})^2} + \overline{E(x_{model})^2})`.

    Its gradient in :math:`\theta` (with the model's samples held fixed, as a sampler
    returns them) estimates the gradient of the negative log-likelihood. The optional
    :math:`\alpha` = ``l2`` term keeps the energies near zero (without it only their
    differences are pinned and they can drift).

    Args:
        energy_data: ``(batch,)`` energies of data points.
        energy_samples: ``(batch',)`` energies of the sampler's points.
        l2: :math:`\alpha \ge 0`.
    """
    ed = _scalar_batch(energy_data, "energy_data")
    es = _scalar_batch(energy_samples, "energy_samples")
    alpha = check_number(l2, "l2", low=0.0)
    loss = ed.mean() - es.mean()
    if alpha:
        loss = loss + alpha * ((ed ** 2).mean() + (es ** 2).mean())
    return loss


def score_matching_loss(energy: Energy, x: torch.Tensor, *, method: str = "exact",
                        n_projections: int = 1, generator=None) -> torch.Tensor:
    r"""Hyvärinen's score-matching objective of ``energy`` on data ``x: (batch, d)``.

    .. math:: J(\theta) = \frac1n\sum_i \Big[\tfrac12\|s(x_i)\|^2
              + \operatorname{tr}\nabla_x s(x_i)\Big], \qquad s = -\nabla_x E_\theta

    ``method="exact"``: the trace as :math:`\sum_j \partial s_j/\partial x_j` (``d`` extra
    backward passes: fine in 2-D). ``"sliced"``: :math:`\tfrac12\|s\|^2 + v^\top(\nabla_x s)v`
    averaged over ``n_projections`` Gaussian :math:`v` per point (one backward pass each;
    unbiased for :math:`J`, since :math:`\mathbb E[v v^\top] = I`).

    Returns a scalar with a graph to the energy's parameters.
    """
    x = _points(x)
    check_choice(method, "method", METHODS)
    n_projections = check_count(n_projections, "n_projections")
    xg = x.detach().requires_grad_(True)
    with torch.enable_grad():
        e = energy(xg)
        score = -torch.autograd.grad(e.sum(), xg, create_graph=True)[0]
        half_norm = 0.5 * (score ** 2).sum(-1)
        if method == "exact":
            trace = torch.zeros_like(half_norm)
            for j in range(x.shape[1]):
                trace = trace + torch.autograd.grad(score[:, j].sum(), xg,
                                                    create_graph=True)[0][:, j]
        else:
            gen = as_generator(generator, "generator", device=x.device)
            trace = torch.zeros_like(half_norm)
            for _ in range(n_projections):
                v = torch.randn(x.shape, generator=gen, dtype=x.dtype, device=x.device)
                jv = torch.autograd.grad((score * v).sum(), xg, create_graph=True)[0]
                trace = trace + (jv * v).sum(-1) / n_projections
    return (half_norm + trace).mean()


def dsm_loss(energy: Energy, x: torch.Tensor, sigma: float, *, generator=None) -> torch.Tensor:
    r"""Denoising score matching at noise level ``sigma``:

    .. math:: \frac1n\sum_i \tfrac12\big\|s(\tilde x_i) + (\tilde x_i - x_i)/\sigma^2\big\|^2,
              \qquad \tilde x_i = x_i + \sigma\varepsilon_i,\ s = -\nabla_x E_\theta

    The target :math:`-(\tilde x - x)/\sigma^2 = -\varepsilon/\sigma` is the score of the
    noising kernel :math:`q(\tilde x\mid x)`; the minimiser is the score of the noised data
    :math:`q_\sigma`. Returns a scalar with a graph to the energy's parameters.
    """
    x = _points(x)
    sigma = check_number(sigma, "sigma", low=0.0, strict=True)
    gen = as_generator(generator, "generator", device=x.device)
    eps = torch.randn(x.shape, generator=gen, dtype=x.dtype, device=x.device)
    noisy = (x.detach() + sigma * eps).requires_grad_(True)
    with torch.enable_grad():
        score = -torch.autograd.grad(energy(noisy).sum(), noisy, create_graph=True)[0]
    return 0.5 * ((score + eps / sigma) ** 2).sum(-1).mean()


def nce_loss(log_model_data: torch.Tensor, log_noise_data: torch.Tensor,
             log_model_noise: torch.Tensor, log_noise_noise: torch.Tensor) -> torch.Tensor:
    r"""Noise-contrastive estimation's loss (to minimise), with :math:`\nu = m / n` noise
    points per data point:

    .. math:: -\frac1n\sum_{i=1}^n \log\sigma(G(x_i))
              - \frac{\nu}{m}\sum_{j=1}^m \log\sigma(-G(y_j)),
              \qquad G(u) = \log p_\theta(u) - \log q(u) - \log\nu

    with :math:`p_\theta = e^{-E_\theta - c}` (``c``, the model's ``log_z``, learned
    with :math:`\theta`). At the optimum over all :math:`p_\theta` (not only normalised
    ones) :math:`p_\theta = p_{data}`, so ``c`` becomes :math:`\log Z`.

    Args:
        log_model_data, log_noise_data: ``(n,)``, :math:`\log p_\theta` and :math:`\log q`
            at the data points.
        log_model_noise, log_noise_noise: ``(m,)``, the same at the noise samples.
    """
    lmd = _scalar_batch(log_model_data, "log_model_data")
    lnd = _scalar_batch(log_noise_data, "log_noise_data")
    lmn = _scalar_batch(log_model_noise, "log_model_noise")
    lnn = _scalar_batch(log_noise_noise, "log_noise_noise")
    if lmd.shape != lnd.shape or lmn.shape != lnn.shape:
        raise ValueError(f"log_noise_data, log_noise_noise: expected the shapes of the model's "
                         f"values {tuple(lmd.shape)} and {tuple(lmn.shape)}, got "
                         f"{tuple(lnd.shape)} and {tuple(lnn.shape)}")
    log_nu = math.log(len(lmn) / len(lmd))
    g_data = lmd - lnd - log_nu
    g_noise = lmn - lnn - log_nu
    return -F.logsigmoid(g_data).mean() - math.exp(log_nu) * F.logsigmoid(-g_noise).mean()
