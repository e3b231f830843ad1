r"""CycleGAN (Zhu et al., 2017): translate between two domains from unpaired examples.

Two translators ``G: X -> Y`` and ``F: Y -> X`` each play a GAN against a discriminator
of their target domain (``D_Y`` judges ``G(x)`` against real ``y``, ``D_X`` judges
``F(y)`` against real ``x``). The adversarial losses alone only match the marginals
(any map that sends ``p_X`` onto ``p_Y`` wins); the cycle-consistency loss

.. math:: \lambda \big( E_x |F(G(x)) - x|_1 + E_y |G(F(y)) - y|_1 \big)

asks the two maps to be near inverses, which rules out most of those maps.

:class:`CycleGAN` holds the four networks; :func:`cyclegan_step` is the
:class:`~coursekit.train.Trainer` step on batches ``(x, y)`` of *unpaired* examples
(pass ``(x, y[perm])``); :func:`train_cyclegan` wires it with two optimisers.
"""

from __future__ import annotations

import torch
from torch import nn

from coursekit._validation import check_count, check_number
from coursekit.gan import losses as L
from coursekit.gan.nets import Discriminator, mlp_with_output
from coursekit.gan.train import frozen, run_two_players
from coursekit.train import Trainer, optimizer_step

__all__ = ["CycleGAN", "cyclegan_step", "train_cyclegan"]


class CycleGAN(nn.Module):
    r"""Translators ``G: X -> Y``, ``F: Y -> X`` (MLPs) and discriminators ``D_X``, ``D_Y``.

    Args:
        features: the dimension of both domains (64 for 8x8 digits).
        hidden: hidden sizes of all four MLPs (one layer of 256: on digits and their
            mirror images, deeper or narrower translators learned maps that change the
            digit's class).
        output: the translators' output activation (``"sigmoid"`` for pixels in [0, 1]).
    """

    def __init__(self, features: int = 64, hidden=(256,), output: str = "sigmoid"):
        super().__init__()
        self.features = check_count(features, "features")
        self.g_xy = mlp_with_output(features, features, hidden, output)
        self.g_yx = mlp_with_output(features, features, hidden, output)
        self.d_x = Discriminator(features, hidden)
        self.d_y = Discriminator(features, hidden)

    def _check(self, t: torch.Tensor, name: str) -> torch.Tensor:
        if t.dim() != 2 or t.shape[1] != self.features:
            raise ValueError(f"{name}: expected shape (batch, {self.features}), "
                             f"got {tuple(t.shape)}")
        return t

    def translate_xy(self, x: torch.Tensor) -> torch.Tensor:
        """``G(x)``: domain X to domain Y, ``(batch, features)``."""
        return self.g_xy(self._check(x, "x"))

    def translate_yx(self, y: torch.Tensor) -> torch.Tensor:
        """``F(y)``: domain Y to domain X, ``(batch, features)``."""
        return self.g_yx(self._check(y, "y"))

    def cycle_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        r"""``E_x |F(G(x)) - x|_1 + E_y |G(F(y)) - y|_1`` (L1 summed over features)."""
        back_x = self.translate_yx(self.translate_xy(x))
        back_y = self.translate_xy(self.translate_yx(y))
        return (back_x - x).abs().sum(1).mean() + (back_y - y).abs().sum(1).mean()


def cyclegan_step(model: CycleGAN, cycle_weight: float = 1.0):
    r"""The Trainer step on a batch ``(x, y)``: both discriminators, then both translators
    on the non-saturating adversarial losses plus ``cycle_weight`` times the cycle loss."""
    cycle_weight = check_number(cycle_weight, "cycle_weight", low=0.0)

    def step(trainer, batch):
        if not isinstance(batch, (tuple, list)) or len(batch) != 2:
            raise ValueError("batch: expected (x, y), one batch of each domain")
        x, y = batch
        fake_y, fake_x = model.translate_xy(x), model.translate_yx(y)
        d_loss = (L.discriminator_loss(model.d_y(y), model.d_y(fake_y.detach()))
                  + L.discriminator_loss(model.d_x(x), model.d_x(fake_x.detach())))
        optimizer_step(trainer.optimizers["discriminator"], d_loss)
        with frozen(model.d_x, model.d_y):
            adversarial = (L.nonsaturating_generator_loss(model.d_y(fake_y))
                           + L.nonsaturating_generator_loss(model.d_x(fake_x)))
            cycle = model.cycle_loss(x, y)
            optimizer_step(trainer.optimizers["generator"], adversarial + cycle_weight * cycle)
        return {"d_loss": d_loss.detach(), "g_loss": adversarial.detach(),
                "cycle": cycle.detach()}

    return step


def train_cyclegan(model: CycleGAN, data, *, steps: int = 2000, batch_size: int = 128,
                   lr: float = 1e-3, betas: tuple[float, float] = (0.5, 0.999),
                   cycle_weight: float = 1.0, seed: int | None = 0,
                   progress: bool = True) -> Trainer:
    """Train a :class:`CycleGAN` on ``data = (x, y)``: equal-length tensors whose rows are
    *not* paired (shuffle one of them first). The defaults (``cycle_weight=1``,
    ``lr=1e-3``) are the ones that found the mirror map between digits and their mirror
    images in lecture 07; ``cycle_weight=10`` (the paper's) learned a class-changing map.
    Returns the :class:`~coursekit.train.Trainer` (``history.train``: ``d_loss``,
    ``g_loss``, ``cycle``)."""
    g_params = list(model.g_xy.parameters()) + list(model.g_yx.parameters())
    d_params = list(model.d_x.parameters()) + list(model.d_y.parameters())
    return run_two_players(cyclegan_step(model, cycle_weight), data, {"cyclegan": model},
                           d_params, g_params, steps=steps, batch_size=batch_size, lr=lr,
                           betas=betas, seed=seed, progress=progress, desc="CycleGAN")
