r"""GAN objectives as plain functions of the discriminator's raw outputs.

Every function takes the discriminator's (critic's) outputs on real and/or generated
data, ``(batch,)`` or ``(batch, 1)``, and returns a scalar loss to *minimise*; each
loss is a mean over the batch. With ``D(x) = sigmoid(l(x))`` for the logit ``l``:

* :func:`discriminator_loss`: ``-E_data log D(x) - E_G log(1 - D(G(z)))``, the binary
  cross-entropy of real (label 1) against generated (label 0);
* :func:`minimax_generator_loss`: ``E log(1 - D(G(z)))`` (saturates when ``D`` wins);
* :func:`nonsaturating_generator_loss`: ``-E log D(G(z))`` (same fixed point, strong
  gradients early on);
* :func:`wgan_critic_loss`, :func:`wgan_generator_loss`: the Wasserstein critic
  ``E_G f - E_data f`` and ``-E_G f``;
* :func:`gradient_penalty`: WGAN-GP's ``E (||grad f(x_hat)|| - 1)^2`` on random
  interpolates; :func:`r1_penalty`: ``E_data ||grad D(x)||^2`` (Mescheder et al., 2018),
  which keeps a classic discriminator flat on the data;
* :func:`f_gan_bound`, :func:`f_gan_critic_loss`, :func:`f_gan_generator_loss`: the
  variational lower bound of an f-divergence (see :mod:`coursekit.gan.divergences`).

``log D = -softplus(-l)`` and ``log(1 - D) = -softplus(l)`` are computed from the logit,
never from ``sigmoid(l)``, so a confident discriminator gives finite losses.
Class-conditional GANs use the same losses: the condition enters the networks, not
the objective.
"""

from __future__ import annotations

import torch
from torch.nn.functional import softplus

from coursekit.gan.divergences import f_divergence_terms

__all__ = [
    "discriminator_loss",
    "f_gan_bound",
    "f_gan_critic_loss",
    "f_gan_generator_loss",
    "gradient_penalty",
    "minimax_generator_loss",
    "nonsaturating_generator_loss",
    "r1_penalty",
    "wgan_critic_loss",
    "wgan_generator_loss",
]


def _scores(t, name: str) -> torch.Tensor:
    """Discriminator outputs as ``(batch,)``: accepts ``(batch,)`` or ``(batch, 1)``."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name}: expected a tensor of discriminator outputs, "
                        f"got {type(t).__name__}")
    if t.dim() == 2 and t.shape[1] == 1:
        t = t[:, 0]
    if t.dim() != 1 or len(t) == 0:
        raise ValueError(f"{name}: expected shape (batch,) or (batch, 1) with batch >= 1, "
                         f"got {tuple(t.shape)}")
    return t


def discriminator_loss(real_logits, fake_logits) -> torch.Tensor:
    r"""``-E_data[log D(x)] - E_G[log(1 - D(x~))]`` with ``D = sigmoid(logit)``.

    Args:
        real_logits: ``(batch,)`` logits on data; fake_logits: ``(batch',)`` on samples.

    Minimised by ``D*(x) = p_data(x) / (p_data(x) + p_G(x))``; at ``D*`` the loss is
    ``log 4 - 2 JSD(p_data || p_G)``.
    """
    real, fake = _scores(real_logits, "real_logits"), _scores(fake_logits, "fake_logits")
    return softplus(-real).mean() + softplus(fake).mean()


def minimax_generator_loss(fake_logits) -> torch.Tensor:
    r"""``E_z[log(1 - D(G(z)))]``: the generator's side of the original minimax game.

    Its gradient with respect to the logit is ``-sigmoid(l)``, which vanishes when the
    discriminator confidently rejects the samples (``l -> -inf``): the loss saturates.
    """
    return -softplus(_scores(fake_logits, "fake_logits")).mean()


def nonsaturating_generator_loss(fake_logits) -> torch.Tensor:
    r"""``-E_z[log D(G(z))]``: the heuristic generator loss of Goodfellow et al. (2014).

    Same stationary point as the minimax loss; its logit gradient ``sigmoid(l) - 1``
    is close to -1 exactly where the minimax one vanishes.
    """
    return softplus(-_scores(fake_logits, "fake_logits")).mean()


def wgan_critic_loss(real_scores, fake_scores) -> torch.Tensor:
    r"""``E_G[f(x~)] - E_data[f(x)]``: minus the critic's Kantorovich-Rubinstein estimate.

    For a 1-Lipschitz critic ``f``, ``-min loss = W_1(p_data, p_G)``.
    """
    real, fake = _scores(real_scores, "real_scores"), _scores(fake_scores, "fake_scores")
    return fake.mean() - real.mean()


def wgan_generator_loss(fake_scores) -> torch.Tensor:
    """``-E_z[f(G(z))]``: the generator moves its samples up the critic."""
    return -_scores(fake_scores, "fake_scores").mean()


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor, *,
                     generator: torch.Generator | None = None, condition=None) -> torch.Tensor:
    r"""WGAN-GP's penalty ``E[(||grad_x f(x_hat)||_2 - 1)^2]`` (Gulrajani et al., 2017).

    ``x_hat = eps x + (1 - eps) x~`` with one ``eps ~ U(0, 1)`` per pair, so the norm is
    pushed towards 1 on the straight lines between data and samples, where an optimal
    critic has unit gradient. For a packed critic (``critic.pack = m``, PacGAN) one
    point is a pack of ``m`` rows: one ``eps`` per pack, and the norm is taken over the
    pack's whole input.

    Args:
        critic: a module ``(batch, *event) -> (batch,)`` or ``(batch, 1)`` (called as
            ``critic(x_hat, condition)`` when ``condition`` is given).
        real, fake: ``(batch, *event)`` with equal shapes; ``fake`` need not be detached.
        generator: the RNG of ``eps``.

    Returns the scalar penalty, differentiable with respect to the critic's parameters.
    """
    for name, t in (("real", real), ("fake", fake)):
        if not isinstance(t, torch.Tensor) or t.dim() < 2:
            raise ValueError(f"{name}: expected a tensor (batch, *event), "
                             f"got {getattr(t, 'shape', type(t).__name__)}")
    if real.shape != fake.shape:
        raise ValueError(f"fake: expected the shape of real {tuple(real.shape)}, "
                         f"got {tuple(fake.shape)}")
    pack = _pack_of(critic, len(real))
    eps_shape = (len(real) // pack,) + (1,) * (real.dim() - 1)
    eps = torch.rand(eps_shape, generator=generator, device=real.device, dtype=real.dtype)
    eps = eps.repeat_interleave(pack, dim=0)
    x_hat = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    scores = critic(x_hat) if condition is None else critic(x_hat, condition)
    (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
    return ((grad.reshape(len(real) // pack, -1).norm(dim=1) - 1) ** 2).mean()


def _pack_of(critic, batch: int) -> int:
    """A PacGAN critic scores ``pack`` rows at once: its input point is the whole pack."""
    pack = getattr(critic, "pack", 1)
    if batch % pack:
        raise ValueError(f"real: expected a batch that is a multiple of the critic's "
                         f"pack={pack}, got {batch} rows")
    return pack


def r1_penalty(discriminator, real: torch.Tensor, condition=None) -> torch.Tensor:
    r"""``E_data[||grad_x D(x)||^2]``, the R1 regulariser of Mescheder et al. (2018).

    Added to the discriminator's loss with weight ``γ/2``, it penalises a discriminator
    whose logit changes on the data itself. Without it, a non-saturating GAN can
    circle its equilibrium instead of settling; with it, training converges locally
    (their Theorem 4.1), which on mixtures of narrow Gaussians means tight modes.

    Args:
        discriminator: ``(batch, *event) -> (batch // pack,)`` (``(x, condition)`` if
            given); a packed discriminator's gradient is taken per pack.
        real: ``(batch, *event)`` data.
    """
    if not isinstance(real, torch.Tensor) or real.dim() < 2:
        raise ValueError(f"real: expected a tensor (batch, *event), "
                         f"got {getattr(real, 'shape', type(real).__name__)}")
    pack = _pack_of(discriminator, len(real))
    x = real.detach().requires_grad_(True)
    scores = discriminator(x) if condition is None else discriminator(x, condition)
    (grad,) = torch.autograd.grad(scores.sum(), x, create_graph=True)
    return grad.reshape(len(real) // pack, -1).pow(2).sum(1).mean()


def f_gan_bound(divergence: str, real_raw, fake_raw) -> torch.Tensor:
    r"""The variational lower bound ``E_P[T(x)] - E_Q[f*(T(x))]`` of ``D_f(P || Q)``.

    ``P`` is the data, ``Q`` the generator, ``T = g_f(V)`` the critic's raw output
    ``V`` through the divergence's output activation, which keeps ``T`` inside the
    domain of the convex conjugate ``f*`` (Nowozin et al., 2016). The bound is tight
    for ``T = f'(p/q)``.

    Args:
        divergence: one of ``"kl"``, ``"reverse_kl"``, ``"js"``, ``"pearson"``.
        real_raw, fake_raw: the critic's raw outputs ``V``, ``(batch,)``.
    """
    real, fake = _scores(real_raw, "real_raw"), _scores(fake_raw, "fake_raw")
    t_real, conj_fake = f_divergence_terms(divergence, real, fake)
    return t_real.mean() - conj_fake.mean()


def f_gan_critic_loss(divergence: str, real_raw, fake_raw) -> torch.Tensor:
    """Minus :func:`f_gan_bound`: the critic maximises the bound."""
    return -f_gan_bound(divergence, real_raw, fake_raw)


def f_gan_generator_loss(divergence: str, fake_raw) -> torch.Tensor:
    r"""``-E_Q[f*(g_f(V(G(z))))]``: the part of the bound the generator controls.

    The generator minimises the bound; ``E_P[T]`` does not depend on it.
    """
    fake = _scores(fake_raw, "fake_raw")
    _, conj_fake = f_divergence_terms(divergence, fake[:1], fake)
    return -conj_fake.mean()

