r"""Generative adversarial networks (lecture 07): a generator, a discriminator, a game.

* :mod:`~coursekit.gan.losses`: the objectives as plain functions of the
  discriminator's outputs (minimax, non-saturating, WGAN, WGAN-GP's gradient penalty,
  f-GAN's variational bound).
* :mod:`~coursekit.gan.divergences`: the divergences those games estimate, with
  independent references (quadrature f-divergences and JSD, the optimal
  discriminator ``p/(p + q)``, 1-D Wasserstein-1) and the f-GAN table of conjugates.
* :mod:`~coursekit.gan.nets`: :class:`Generator` and :class:`Discriminator` (MLPs,
  optionally class-conditional; PacGAN packing).
* :mod:`~coursekit.gan.train`: :func:`gan_step` for :class:`coursekit.train.Trainer`,
  :func:`train_gan`, and :func:`fit_discriminator` (a discriminator or critic between two
  fixed distributions: D*, divergence estimates, the classifier two-sample test).
* :mod:`~coursekit.gan.bigan`: :class:`BiGAN` (generator, encoder, discriminator on
  ``(x, z)`` pairs) and :func:`train_bigan`.
* :mod:`~coursekit.gan.cyclegan`: :class:`CycleGAN` (two translators, two discriminators,
  cycle consistency) and :func:`train_cyclegan`.

Mode coverage (PacGAN's metric) is :func:`coursekit.metrics.mode_coverage`.
"""

from coursekit.gan.bigan import BiGAN, bigan_step, train_bigan
from coursekit.gan.cyclegan import CycleGAN, cyclegan_step, train_cyclegan
from coursekit.gan.divergences import (
    F_DIVERGENCES,
    f_conjugate,
    f_divergence,
    f_generator,
    jensen_shannon,
    optimal_discriminator,
    wasserstein1_1d,
)
from coursekit.gan.losses import (
    discriminator_loss,
    f_gan_bound,
    f_gan_critic_loss,
    f_gan_generator_loss,
    gradient_penalty,
    minimax_generator_loss,
    nonsaturating_generator_loss,
    r1_penalty,
    wgan_critic_loss,
    wgan_generator_loss,
)
from coursekit.gan.nets import Discriminator, Generator, one_hot
from coursekit.gan.train import (
    LOSSES,
    critic_and_generator_losses,
    fit_discriminator,
    gan_step,
    train_gan,
)

__all__ = [
    "F_DIVERGENCES",
    "LOSSES",
    "BiGAN",
    "CycleGAN",
    "Discriminator",
    "Generator",
    "bigan_step",
    "critic_and_generator_losses",
    "cyclegan_step",
    "discriminator_loss",
    "f_conjugate",
    "f_divergence",
    "f_gan_bound",
    "f_gan_critic_loss",
    "f_gan_generator_loss",
    "f_generator",
    "fit_discriminator",
    "gan_step",
    "gradient_penalty",
    "jensen_shannon",
    "minimax_generator_loss",
    "nonsaturating_generator_loss",
    "one_hot",
    "optimal_discriminator",
    "r1_penalty",
    "train_bigan",
    "train_cyclegan",
    "train_gan",
    "wasserstein1_1d",
    "wgan_critic_loss",
    "wgan_generator_loss",
]
