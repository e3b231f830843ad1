r"""BiGAN (Donahue et al., 2017; ALI, Dumoulin et al., 2017): a GAN that also learns to encode.

A generator ``G: z -> x`` and an encoder ``E: x -> z`` are trained against one
discriminator on *pairs*: it sees ``(x, E(x))`` for data and ``(G(z), z)`` for samples.
The two joint distributions ``p_data(x) δ(z - E(x))`` and ``p(z) δ(x - G(z))`` can only
match when ``E`` inverts ``G`` on the data, so at the optimum ``E = G^{-1}``: the
encoder's ``z`` is a representation learned without labels (a linear probe measures it).

:class:`BiGAN` holds the three networks; :func:`bigan_step` is the
:class:`~coursekit.train.Trainer` step (optimisers ``"discriminator"`` and
``"generator"``, the latter over ``G`` and ``E`` together) and :func:`train_bigan`
wires them.
"""

from __future__ import annotations

import torch
from torch import nn

from coursekit._validation import check_count
from coursekit.gan import losses as L
from coursekit.gan.nets import Discriminator, Generator, hidden_sizes
from coursekit.gan.train import frozen, run_two_players, seeded_rng
from coursekit.train import Trainer, optimizer_step
from coursekit.vae import mlp

__all__ = ["BiGAN", "bigan_step", "train_bigan"]


class BiGAN(nn.Module):
    r"""Generator ``G(z)``, deterministic encoder ``E(x)`` and joint discriminator ``D(x, z)``.

    Args:
        features: data dimension (64 for 8x8 digits); latent_dim: ``z ~ N(0, I)``.
        hidden: hidden sizes of all three MLPs (on 8x8 digits two layers of 256 collapsed
            to a few outputs within 1,500 steps; one layer trained).
        output: the generator's output activation (``"sigmoid"`` for pixels in [0, 1]).
    """

    def __init__(self, features: int = 64, latent_dim: int = 8, hidden=(256,),
                 output: str = "sigmoid"):
        super().__init__()
        self.features = check_count(features, "features")
        self.latent_dim = check_count(latent_dim, "latent_dim")
        sizes = hidden_sizes(hidden)
        self.generator = Generator(features, latent_dim, sizes, output=output)
        self.encoder = mlp(features, latent_dim, sizes, lambda: nn.LeakyReLU(0.2))
        self.discriminator = Discriminator(features + latent_dim, sizes)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``E(x)``: ``(batch, features) -> (batch, latent_dim)``."""
        if x.dim() != 2 or x.shape[1] != self.features:
            raise ValueError(f"x: expected shape (batch, {self.features}), got {tuple(x.shape)}")
        return self.encoder(x)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` samples ``G(z)``, ``(n, features)``."""
        return self.generator.sample(n, generator=generator)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """``G(E(x))``: how well the encoder inverts the generator on data."""
        return self.generator(self.encode(x))

    def joint_scores(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``D(x, z)`` logits, ``(batch,)``."""
        return self.discriminator(torch.cat([x, z], dim=1))


def bigan_step(model: BiGAN, rng: torch.Generator | None = None):
    r"""The Trainer step: the discriminator separates ``(x, E(x))`` (label 1) from
    ``(G(z), z)`` (label 0); then ``G`` and ``E`` minimise the labels swapped
    (the non-saturating form for both)."""
    def step(trainer, batch):
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        z = torch.randn(len(x), model.latent_dim, generator=rng, dtype=x.dtype, device=x.device)
        real = model.joint_scores(x, model.encode(x).detach())
        fake = model.joint_scores(model.generator(z).detach(), z)
        d_loss = L.discriminator_loss(real, fake)
        optimizer_step(trainer.optimizers["discriminator"], d_loss)
        with frozen(model.discriminator):
            real = model.joint_scores(x, model.encode(x))
            fake = model.joint_scores(model.generator(z), z)
            g_loss = L.discriminator_loss(fake, real)  # swapped labels
            optimizer_step(trainer.optimizers["generator"], g_loss)
        return {"d_loss": d_loss.detach(), "g_loss": g_loss.detach()}

    return step


def train_bigan(model: BiGAN, data, *, steps: int = 2000, batch_size: int = 64,
                lr: float = 5e-4, betas: tuple[float, float] = (0.5, 0.999),
                seed: int | None = 0, progress: bool = True) -> Trainer:
    """Train a :class:`BiGAN` on ``data`` (``x (n, features)`` or ``(x, y)``; labels unused).

    Returns the :class:`~coursekit.train.Trainer` (``history.train``: ``d_loss``, ``g_loss``).
    """
    gen_params = list(model.generator.parameters()) + list(model.encoder.parameters())
    return run_two_players(bigan_step(model, seeded_rng(model, seed)), data, {"bigan": model},
                           model.discriminator.parameters(), gen_params, steps=steps,
                           batch_size=batch_size, lr=lr, betas=betas, seed=seed,
                           progress=progress, desc="BiGAN")
