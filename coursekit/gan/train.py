r"""Adversarial training through the general loop (:class:`coursekit.train.Trainer`).

:func:`gan_step` builds the step function for any of :data:`LOSSES`: every trainer step
updates the discriminator (critic) on one batch of data and as many generated samples;
every ``n_critic``-th step also updates the generator on fresh samples.
:func:`train_gan` wires two Adam optimisers and a :class:`~coursekit.train.Trainer`
around it and returns the trainer (its ``history`` holds ``d_loss`` and ``g_loss``).

=================  ============================================  ===========================
loss               discriminator / critic minimises              generator minimises
=================  ============================================  ===========================
``minimax``        :func:`~coursekit.gan.losses.discriminator_loss`  ``E log(1 - D(G(z)))``
``nonsaturating``  the same                                      ``-E log D(G(z))``
``wgan``           ``E_G f - E_data f``, weights clipped          ``-E_G f``
``wgan-gp``        ``E_G f - E_data f + λ GP``                    ``-E_G f``
``f-<name>``       ``-(E_P T - E_Q f*(T))`` (f-GAN)               ``-E_Q f*(T)``
=================  ============================================  ===========================
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

import torch

from coursekit._validation import check_choice, check_count, check_number
from coursekit.gan import losses as L
from coursekit.gan.divergences import F_DIVERGENCES
from coursekit.train import EMA, Trainer, optimizer_step

__all__ = ["LOSSES", "critic_and_generator_losses", "fit_discriminator", "frozen", "gan_step",
           "train_gan"]

LOSSES = ("minimax", "nonsaturating", "wgan", "wgan-gp") + tuple(f"f-{d}" for d in F_DIVERGENCES)


def critic_and_generator_losses(loss: str):
    """The pair ``(critic_loss(real, fake), generator_loss(fake))`` of a loss name."""
    check_choice(loss, "loss", LOSSES)
    if loss.startswith("f-"):
        name = loss[2:]
        return (lambda r, f: L.f_gan_critic_loss(name, r, f),
                lambda f: L.f_gan_generator_loss(name, f))
    if loss in ("wgan", "wgan-gp"):
        return L.wgan_critic_loss, L.wgan_generator_loss
    generator_loss = (L.minimax_generator_loss if loss == "minimax"
                      else L.nonsaturating_generator_loss)
    return L.discriminator_loss, generator_loss


@contextlib.contextmanager
def frozen(*modules: torch.nn.Module):
    """Within the block the parameters of ``modules`` do not require gradients: the
    generator's update backpropagates through the discriminator to the generator
    without computing, or leaving behind, gradients for the discriminator's parameters
    (the generator's own gradients are the same)."""
    params = [p for m in modules for p in m.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def _cross_entropy(discriminator, real, fake) -> torch.Tensor:
    return L.discriminator_loss(discriminator(real), discriminator(fake))


def fit_discriminator(discriminator, sample_real, sample_fake, steps: int, *, lr: float = 3e-3,
                      loss=None, weight_decay: float = 0.0, clip: float | None = None,
                      betas: tuple[float, float] = (0.5, 0.9)):
    """Fit a discriminator (or critic) between two FIXED distributions, no generator.

    Every step draws a fresh batch from each sampler and takes one Adam step on
    ``loss(discriminator, real, fake)``: by default the GAN's cross-entropy
    :func:`~coursekit.gan.losses.discriminator_loss`, whose minimiser is
    ``D* = p_real / (p_real + p_fake)``; pass a WGAN or f-GAN critic loss to estimate
    those divergences instead.

    Args:
        discriminator: a module ``(batch, d) -> (batch,)``.
        sample_real, sample_fake: callables returning a batch ``(batch, d)`` each.
        steps: Adam steps.
        lr, betas, weight_decay: Adam's settings.
        loss: ``(discriminator, real, fake) -> scalar`` to minimise.
        clip: WGAN's weight clipping: every parameter clamped to ``[-clip, clip]``
            after every step (``None``: off).

    Returns:
        ``discriminator``, trained in place.
    """
    steps = check_count(steps, "steps")
    if clip is not None:
        clip = check_number(clip, "clip", low=0.0, strict=True)
    loss = _cross_entropy if loss is None else loss
    opt = torch.optim.Adam(discriminator.parameters(), lr, betas=betas, weight_decay=weight_decay)
    for _ in range(steps):
        optimizer_step(opt, loss(discriminator, sample_real(), sample_fake()))
        if clip is not None:
            with torch.no_grad():
                for p in discriminator.parameters():
                    p.clamp_(-clip, clip)
    return discriminator


def _split(batch):
    """A batch is ``x`` or ``(x, y)`` (class-conditional)."""
    if isinstance(batch, (tuple, list)):
        if len(batch) != 2:
            raise ValueError(f"batch: expected x or (x, y), got a sequence of {len(batch)}")
        return batch[0], batch[1]
    return batch, None


def gan_step(generator, discriminator, loss: str = "nonsaturating", *, n_critic: int = 1,
             gp_weight: float = 10.0, clip_value: float = 0.01, r1_weight: float = 0.0,
             rng: torch.Generator | None = None):
    r"""The :class:`~coursekit.train.Trainer` step function of one adversarial game.

    Args:
        generator: a :class:`~coursekit.gan.Generator` (anything with
            ``sample(n, y, generator=)``).
        discriminator: a :class:`~coursekit.gan.Discriminator` (``pack`` is honoured:
            the batch is trimmed to a multiple of it; a remainder smaller than one pack
            is skipped).
        loss: one of :data:`LOSSES`.
        n_critic: discriminator steps per generator step.
        gp_weight: ``λ`` of WGAN-GP's gradient penalty.
        clip_value: WGAN's weight clipping ``[-c, c]`` (``loss="wgan"`` only).
        r1_weight: ``γ`` of the R1 penalty ``γ/2 E_data ||grad D||^2`` (any loss; 0: off).
        rng: the generator of ``z`` and of the penalty's interpolation weights.

    The trainer must hold optimisers named ``"discriminator"`` and ``"generator"``.
    """
    critic_loss, generator_loss = critic_and_generator_losses(loss)
    n_critic = check_count(n_critic, "n_critic")
    gp_weight = check_number(gp_weight, "gp_weight", low=0.0)
    clip_value = check_number(clip_value, "clip_value", low=0.0, strict=True)
    r1_weight = check_number(r1_weight, "r1_weight", low=0.0)
    pack = getattr(discriminator, "pack", 1)

    def step(trainer, batch) -> Mapping[str, torch.Tensor]:
        x, y = _split(batch)
        n = len(x) // pack * pack
        if n == 0:  # an epoch's last few rows, fewer than one pack: nothing to judge
            return {}
        x, y = x[:n], None if y is None else y[:n]
        fake = generator.sample(n, y, generator=rng).detach()
        d_loss = critic_loss(discriminator(x, y), discriminator(fake, y))
        logged = {"d_loss": d_loss.detach()}
        if loss == "wgan-gp":
            penalty = L.gradient_penalty(discriminator, x, fake, generator=rng, condition=y)
            d_loss = d_loss + gp_weight * penalty
            logged["penalty"] = penalty.detach()
        if r1_weight:
            r1 = L.r1_penalty(discriminator, x, condition=y)
            d_loss = d_loss + r1_weight / 2 * r1
            logged["r1"] = r1.detach()
        optimizer_step(trainer.optimizers["discriminator"], d_loss)
        if loss == "wgan":
            with torch.no_grad():
                for p in discriminator.parameters():
                    p.clamp_(-clip_value, clip_value)
        if trainer.step % n_critic == n_critic - 1:
            with frozen(discriminator):
                g_loss = generator_loss(discriminator(generator.sample(n, y, generator=rng), y))
                optimizer_step(trainer.optimizers["generator"], g_loss)
            logged["g_loss"] = g_loss.detach()
        return logged

    return step


def train_gan(generator, discriminator, data, *, loss: str = "nonsaturating",
              steps: int = 2000, batch_size: int = 256, lr: float = 1e-3,
              betas: tuple[float, float] = (0.5, 0.999), n_critic: int = 1,
              gp_weight: float = 10.0, clip_value: float = 0.01, r1_weight: float = 0.0,
              ema_decay: float | None = None, lr_drops: tuple[float, ...] = (),
              seed: int | None = 0, evaluate=None, evaluate_every: int = 100,
              progress: bool = True, desc: str = "GAN") -> Trainer:
    r"""Train ``generator`` against ``discriminator`` on ``data`` for ``steps`` trainer steps.

    Args:
        data: ``x (n, features)`` or ``(x, y)`` with integer labels, or anything
            :class:`~coursekit.train.Trainer` batches.
        loss, n_critic, gp_weight, clip_value, r1_weight: see :func:`gan_step`.
        ema_decay: if given, ``trainer.ema["generator"]`` keeps an exponential moving
            average of the generator's weights (sample with
            ``with trainer.ema["generator"].applied(): ...``), which smooths out the
            generator's oscillation around the equilibrium (Yazıcı et al., 2019).
        lr_drops: fractions of ``steps`` at which both learning rates are divided by 10
            (``(0.8,)``: the last 20 % of the steps refine the modes the generator has
            found instead of moving between them).
        steps: discriminator steps (the generator takes ``steps // n_critic``).
        batch_size, lr, betas: the data batches and both Adam optimisers
            (WGAN-GP's authors use ``lr=1e-4, betas=(0.5, 0.9), n_critic=5``).
        seed: seeds the shuffling, ``z`` and the penalty (``None``: global RNG).
        evaluate: ``(trainer) -> {"name": value, ...}``, called after every
            ``evaluate_every``-th step; its values go to ``trainer.history.val`` (a GAN's
            losses do not say how good its samples are: track a sample metric, e.g.
            :func:`coursekit.metrics.mode_coverage`). It keeps being called by later
            ``trainer.run`` calls.

    Returns the :class:`~coursekit.train.Trainer`; ``trainer.history.train`` holds
    ``d_loss``, ``g_loss`` (and ``penalty``); ``trainer.run(steps=more)`` continues.
    """
    pack = getattr(discriminator, "pack", 1)
    if check_count(batch_size, "batch_size") < pack:
        raise ValueError(f"batch_size: expected at least the discriminator's pack={pack}, "
                         f"got {batch_size}")
    rng = seeded_rng(generator, seed)
    step = gan_step(generator, discriminator, loss, n_critic=n_critic, gp_weight=gp_weight,
                    clip_value=clip_value, r1_weight=r1_weight, rng=rng)
    return run_two_players(step, data, {"generator": generator, "discriminator": discriminator},
                           discriminator.parameters(), generator.parameters(), steps=steps,
                           batch_size=batch_size, lr=lr, betas=betas, lr_drops=lr_drops,
                           seed=seed, progress=progress, desc=desc,
                           ema=None if ema_decay is None else {"generator": EMA(generator,
                                                                                ema_decay)},
                           evaluate=evaluate, evaluate_every=evaluate_every)


def seeded_rng(module, seed: int | None) -> torch.Generator | None:
    """A generator on ``module``'s device seeded with ``seed`` (``None``: global RNG)."""
    if seed is None:
        return None
    return torch.Generator(device=next(module.parameters()).device).manual_seed(seed)


def run_two_players(step, data, models: dict, discriminator_params, generator_params, *,
                    steps: int, batch_size: int, lr: float, betas: tuple[float, float],
                    lr_drops: tuple[float, ...] = (), seed: int | None = 0,
                    progress: bool = True, desc: str = "GAN", ema=None, evaluate=None,
                    evaluate_every: int = 100) -> Trainer:
    """One Adam per player (optimisers ``"discriminator"`` and ``"generator"``), optional
    learning-rate drops (divide by 10 at the given fractions of ``steps``), a
    :class:`~coursekit.train.Trainer` around ``step`` (with ``evaluate`` called every
    ``evaluate_every`` steps, see :meth:`~coursekit.train.Trainer.every`), run for
    ``steps``; returns it."""
    check_number(lr, "lr", low=0.0, strict=True)
    steps = check_count(steps, "steps")
    optimizers = {"discriminator": torch.optim.Adam(discriminator_params, lr, betas=betas),
                  "generator": torch.optim.Adam(generator_params, lr, betas=betas)}
    milestones = sorted(int(check_number(f, "lr_drops", low=0.0, high=1.0) * steps)
                        for f in lr_drops)
    schedulers = {name: torch.optim.lr_scheduler.MultiStepLR(opt, milestones, gamma=0.1)
                  for name, opt in optimizers.items()} if milestones else None
    trainer = Trainer(step, data, models=models, optimizers=optimizers, schedulers=schedulers,
                      schedule_every="step", batch_size=batch_size, seed=seed, ema=ema,
                      progress=progress, desc=desc)
    if evaluate is not None:
        trainer.every(evaluate_every, evaluate)
    trainer.run(steps=steps)
    return trainer
