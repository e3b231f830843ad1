r"""Evaluating generative models: likelihood estimates and latent-space diagnostics.

* :func:`estimate_nll`: the importance-sampled negative log-likelihood of a
  latent-variable model (anything with ``log_weights(x, k)``, such as
  :class:`coursekit.vae.VAE`);
* :func:`bits_per_dim`: nats per example to bits per dimension;
* :func:`active_units`: which latent dimensions a VAE's encoder uses;
* :func:`mode_coverage`: how many modes of a Gaussian mixture a sampler covers, the
  share of its samples near a mode, and how unevenly it covers them (the GAN
  mode-collapse metric of VEEGAN and PacGAN);
* :func:`classifier_two_sample_test`: are two samples from the same distribution?
  A discriminator's held-out accuracy and its permutation p-value (C2ST).

The evaluation lecture adds sample-based metrics here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch

from coursekit import functional as F
from coursekit._validation import as_float_tensor, check_choice, check_count, check_number

__all__ = ["ModeCoverage", "TwoSampleTest", "active_units", "bits_per_dim",
           "classifier_two_sample_test", "estimate_nll", "mode_coverage"]


@torch.no_grad()
def estimate_nll(model, x: torch.Tensor, k: int = 1000, batch_size: int = 100,
                 reduction: str = "mean", chunk_size: int | None = None) -> torch.Tensor:
    r"""Importance-sampled negative log-likelihood with ``q(z|x)`` as proposal.

    .. math::
        -\log \hat p(x) = -\log \frac1k \sum_{i=1}^k \frac{p(x, z_i)}{q(z_i \mid x)},
        \qquad z_i \sim q(z \mid x)

    ``hat p(x)`` is unbiased, so ``-log hat p(x)`` over-estimates the NLL in
    expectation (its expectation is ``-L_k``, the negative IWAE bound) and
    approaches the true NLL as ``k`` grows.

    Args:
        model: a :class:`~coursekit.vae.VAE` or :class:`~coursekit.vae.GMVAE` (anything
            with ``log_weights(x, k, chunk_size) -> (k, batch)`` and ``_check_x``).
        x: ``(n, x_dim)``; k: importance samples per ``x``;
        batch_size: rows of ``x`` per pass; reduction: ``"mean"`` (nats per
        example, a scalar) or ``"none"`` (``(n,)``).
    """
    if not hasattr(model, "log_weights"):
        raise ValueError(f"model: expected a VAE with log_weights(x, k), "
                         f"got {type(model).__name__}")
    k = check_count(k, "k")
    batch_size = check_count(batch_size, "batch_size")
    check_choice(reduction, "reduction", ("mean", "none"))
    x = model._check_x(x)
    was_training = model.training
    model.eval()
    try:
        parts = [-F._log_mean_exp(model.log_weights(xb, k, chunk_size), 0)
                 for xb in x.split(batch_size)]
    finally:
        model.train(was_training)
    nll = torch.cat(parts)
    return nll.mean() if reduction == "mean" else nll


def bits_per_dim(nll_nats, n_dims: int, n_levels: int | None = None) -> torch.Tensor:
    r"""Negative log-likelihood in nats per example -> bits per dimension.

    .. math:: \mathrm{bpd} = \frac{\mathrm{NLL}}{D \log 2} + \log_2 (\text{levels})

    For binary data or a model of the data's own scale leave ``n_levels`` out. For
    a continuous density fitted to integer data rescaled to ``[0, 1)`` (uniform
    dequantisation of ``levels`` values, ``x = (k + u) / levels``), the density of
    the rescaled data is ``levels^D`` times that of the integers, so
    ``log2(levels)`` per dimension is added back to report bits of the discrete data.

    Args:
        nll_nats: a number or tensor of NLLs in nats per example.
        n_dims: ``D``, dimensions per example (64 for 8x8 digits).
        n_levels: optional number of discrete levels per dimension (17 for digits' 0..16).

    Returns:
        a tensor of the shape of ``nll_nats``.
    """
    nll = as_float_tensor(nll_nats, "nll_nats")
    D = check_count(n_dims, "n_dims")
    bpd = nll / (D * math.log(2.0))
    if n_levels is not None:
        bpd = bpd + math.log2(check_count(n_levels, "n_levels", 2))
    return bpd


@torch.no_grad()
def active_units(model, x: torch.Tensor, threshold: float = 1e-2
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Which latent dimensions carry information about ``x`` (Burda et al. 2016).

    .. math:: A_j = \mathrm{Cov}_x\big(\mathbb E_{q(z \mid x)}[z_j]\big) > \text{threshold}

    A unit is active when its posterior mean moves with the input; a collapsed
    unit has ``q(z_j|x) = p(z_j)`` for every ``x``, so its mean is constant.

    Args:
        model: anything with ``encode(x) -> (mean, var)``; x: ``(n, x_dim)``, ``n >= 2``.
        threshold: activity above which a unit counts as active.

    Returns:
        ``(activity, active)``: the variances ``(z_dim,)`` and a boolean mask.
    """
    threshold = check_number(threshold, "threshold", low=0.0)
    mean, _ = model.encode(x)
    if mean.shape[0] < 2:
        raise ValueError(f"x: expected at least 2 rows to measure activity, got {mean.shape[0]}")
    activity = mean.var(dim=0, unbiased=True)
    return activity, activity > threshold


@dataclass(frozen=True)
class ModeCoverage:
    """What :func:`mode_coverage` measured.

    Attributes:
        modes: modes with at least one high-quality sample.
        high_quality: share of samples within ``threshold`` standard deviations of
            their nearest mode.
        reverse_kl: ``KL(p_hat || uniform)`` of the high-quality samples' mode
            histogram ``p_hat`` (``log k`` when no sample is high-quality).
        counts: high-quality samples per mode, ``(k,)``.
    """

    modes: int
    high_quality: float
    reverse_kl: float
    counts: torch.Tensor


@torch.no_grad()
def mode_coverage(samples: torch.Tensor, centres: torch.Tensor, sigma: float,
                  threshold: float = 3.0) -> ModeCoverage:
    r"""Mode coverage of samples from an equal-weight isotropic Gaussian mixture's sampler.

    Each sample goes to its nearest centre; it is *high quality* when that distance is
    below ``threshold * sigma``. A mode is *captured* when at least one high-quality
    sample went to it. With ``c_j`` high-quality samples at mode ``j`` of ``k`` and
    ``p_j = c_j / Σ c``, the reverse KL to the true (uniform) mode weights is

    .. math:: \mathrm{KL}(p \,\|\, u) = \sum_{j: p_j > 0} p_j \log(k\, p_j),

    finite even when modes are missing (each missing mode raises it through the
    others' larger shares). This is the protocol of PacGAN's Table 1 (Lin et al.,
    2018; 2,500 samples per trial, threshold 3).

    Args:
        samples: ``(n, d)``; centres: ``(k, d)``; sigma: the components' standard
            deviation; threshold: in units of ``sigma``.
    """
    samples = as_float_tensor(samples, "samples")
    centres = as_float_tensor(centres, "centres")
    if samples.dim() != 2 or centres.dim() != 2 or samples.shape[1] != centres.shape[1]:
        raise ValueError(f"samples: expected shape (n, d) matching centres (k, d), got "
                         f"samples {tuple(samples.shape)}, centres {tuple(centres.shape)}")
    if len(samples) == 0 or len(centres) == 0:
        raise ValueError("samples, centres: expected at least one row each")
    sigma = check_number(sigma, "sigma", low=0.0, strict=True)
    threshold = check_number(threshold, "threshold", low=0.0, strict=True)
    distance, nearest = torch.cdist(samples.double(), centres.double().to(samples.device)).min(1)
    good = distance < threshold * sigma
    k = len(centres)
    counts = torch.bincount(nearest[good], minlength=k).cpu()
    total = int(counts.sum())
    if total == 0:
        reverse_kl = math.log(k)
    else:
        p = counts[counts > 0].double() / total
        reverse_kl = float((p * torch.log(k * p)).sum())
    return ModeCoverage(modes=int((counts > 0).sum()), high_quality=total / len(samples),
                        reverse_kl=reverse_kl, counts=counts)


class TwoSampleTest(NamedTuple):
    """The result of :func:`classifier_two_sample_test`."""

    accuracy: float         # the classifier's accuracy on the held-out halves
    p_value: float          # (1 + #{null >= accuracy}) / (1 + permutations)
    null: torch.Tensor      # (permutations,) accuracies with the labels shuffled
    n_test: int             # held-out examples (both samples together)


def classifier_two_sample_test(a: torch.Tensor, b: torch.Tensor, hidden=(64,), *,
                               steps: int = 300, lr: float = 1e-2, weight_decay: float = 1e-3,
                               permutations: int = 2000, seed: int = 0) -> TwoSampleTest:
    r"""Classifier two-sample test (Lopez-Paz and Oquab, 2017) of ``H0: a and b come from
    the same distribution``.

    Half of each sample (at random) trains a discriminator (:class:`coursekit.gan.
    Discriminator` with hidden sizes ``hidden``; ``()`` is logistic regression) to tell
    ``a`` (label 1) from ``b`` (label 0) with :func:`coursekit.gan.fit_discriminator`;
    its accuracy on the other halves is the test statistic. Under H0 no classifier beats
    chance on held-out data; the p-value compares the accuracy with ``permutations``
    accuracies of the same predictions against shuffled labels (the classifier fixed):

    .. math:: p = \frac{1 + \#\{\text{acc}_\pi \ge \text{acc}\}}{1 + \text{permutations}}.

    Args:
        a, b: ``(n_a, d)`` and ``(n_b, d)`` samples (at least 2 rows each).
        hidden: the discriminator's hidden sizes.
        steps, lr, weight_decay: its full-batch Adam fit on the training halves.
        permutations: shuffles of the labels for the null distribution.
        seed: the split, the initial weights and the shuffles (the global random
            state is left as it was).

    Returns:
        :class:`TwoSampleTest` ``(accuracy, p_value, null, n_test)``.
    """
    from coursekit.gan import Discriminator, fit_discriminator

    a, b = as_float_tensor(a, "a"), as_float_tensor(b, "b")
    if a.dim() != 2 or b.dim() != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ValueError(f"a, b: expected (n_a, d) and (n_b, d) with at least 2 rows each, got "
                         f"{tuple(a.shape)} and {tuple(b.shape)}")
    permutations = check_count(permutations, "permutations")
    g = torch.Generator().manual_seed(seed)
    ia, ib = torch.randperm(len(a), generator=g), torch.randperm(len(b), generator=g)
    a_fit, a_test = a[ia[: len(a) // 2]].float(), a[ia[len(a) // 2:]].float()
    b_fit, b_test = b[ib[: len(b) // 2]].float(), b[ib[len(b) // 2:]].float()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        disc = Discriminator(a.shape[1], hidden)
    fit_discriminator(disc, lambda: a_fit, lambda: b_fit, steps=steps, lr=lr,
                      weight_decay=weight_decay)
    with torch.no_grad():
        says_a = torch.cat([disc(a_test), disc(b_test)]) > 0
    label = torch.cat([torch.ones(len(a_test)), torch.zeros(len(b_test))]).bool()
    accuracy = (says_a == label).double().mean()
    shuffles = torch.rand(permutations, len(label), generator=g).argsort(1)
    null = (says_a[None] == label[shuffles]).double().mean(1)
    p_value = (1 + (null >= accuracy).sum()) / (1 + permutations)
    return TwoSampleTest(float(accuracy), float(p_value), null, len(label))
