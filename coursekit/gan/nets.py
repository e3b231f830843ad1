r"""Small generator and discriminator networks for 2-D toy data and 8x8 digits.

* :class:`Generator`: ``x = G(z[, y])``, an MLP from ``z ~ N(0, I)`` (and a one-hot class
  ``y`` for a class-conditional GAN) to data space; ``sample(n)`` draws ``z`` itself.
* :class:`Discriminator`: an MLP ``D(x[, y]) -> (batch / pack,)`` raw scores (logits for
  the classic GAN, critic values for WGAN, ``V`` for f-GAN). With ``pack = m`` it judges
  ``m`` samples at once, concatenated (PacGAN, Lin et al. 2018): a collapsed generator's
  packs contain near-duplicates, which a packed discriminator can see and penalise.

BiGAN's joint discriminator on ``(x, z)`` is a :class:`Discriminator` on
``features = x_dim + z_dim``; CycleGAN's translators, like the generator's network, are
:func:`mlp_with_output`.
"""

from __future__ import annotations

import torch
from torch import nn

from coursekit._validation import check_choice, check_count
from coursekit.runtime import module_dtype_device
from coursekit.vae import mlp

__all__ = ["Discriminator", "Generator", "hidden_sizes", "mlp_with_output", "one_hot"]

OUTPUTS = {"identity": nn.Identity, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}


def one_hot(y: torch.Tensor, num_classes: int, like: torch.Tensor) -> torch.Tensor:
    """Integer labels ``(batch,)`` as one-hot rows ``(batch, num_classes)`` in ``like``'s dtype."""
    if not isinstance(y, torch.Tensor) or y.dim() != 1 or y.is_floating_point():
        raise ValueError(f"y: expected integer class labels of shape (batch,), "
                         f"got {getattr(y, 'shape', type(y).__name__)}")
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise ValueError(f"y: expected labels in [0, {num_classes - 1}], "
                         f"got [{int(y.min())}, {int(y.max())}]")
    return nn.functional.one_hot(y, num_classes).to(like.dtype)


def hidden_sizes(hidden) -> tuple[int, ...]:
    """``hidden`` (one width, or a sequence of them) as a tuple of checked layer widths."""
    sizes = (hidden,) if isinstance(hidden, int) else tuple(hidden)
    for size in sizes:
        check_count(size, "hidden")
    return sizes


def mlp_with_output(n_in: int, n_out: int, hidden, output: str = "identity") -> nn.Sequential:
    """``(batch, n_in) -> (batch, n_out)``: ReLU hidden layers of widths ``hidden``, then the
    output activation ``output`` (one of :data:`OUTPUTS`): generators and translators."""
    check_choice(output, "output", tuple(OUTPUTS))
    return nn.Sequential(mlp(n_in, n_out, hidden_sizes(hidden), nn.ReLU), OUTPUTS[output]())


class Generator(nn.Module):
    r"""``G(z[, y])``: an MLP (ReLU) from ``latent_dim`` noise (plus a one-hot class) to data.

    Args:
        features: the data dimension (2 for toy data, 64 for digits).
        latent_dim: the dimension of ``z ~ N(0, I)``.
        hidden: hidden layer sizes.
        num_classes: ``0`` (unconditional) or the number of classes ``y`` can take.
        output: ``"identity"``, ``"sigmoid"`` (pixels in [0, 1]) or ``"tanh"``.
    """

    def __init__(self, features: int = 2, latent_dim: int = 2, hidden=(128, 128, 128),
                 num_classes: int = 0, output: str = "identity"):
        super().__init__()
        self.features = check_count(features, "features")
        self.latent_dim = check_count(latent_dim, "latent_dim")
        self.num_classes = check_count(num_classes, "num_classes", minimum=0)
        self.net = mlp_with_output(latent_dim + self.num_classes, features, hidden, output)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """``z: (batch, latent_dim)``, ``y: (batch,)`` labels -> ``x: (batch, features)``."""
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"z: expected shape (batch, {self.latent_dim}), "
                             f"got {tuple(z.shape)}")
        return self.net(_with_condition(z, y, self.num_classes, "y"))

    def sample(self, n: int, y: torch.Tensor | None = None,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` samples ``(n, features)`` from ``z ~ N(0, I)`` (labels ``y`` if conditional)."""
        dtype, device = module_dtype_device(self)
        z = torch.randn(check_count(n, "n"), self.latent_dim, generator=generator,
                        dtype=dtype, device=device)
        return self(z, y)


class Discriminator(nn.Module):
    r"""``D(x[, y])``: an MLP (LeakyReLU 0.2) from ``pack`` concatenated samples to one score.

    Args:
        features: the data dimension of one sample.
        hidden: hidden layer sizes.
        pack: samples judged together (PacGAN); the batch must be a multiple of it.
        num_classes: ``0`` or the number of classes (a one-hot ``y`` is appended to each
            sample before packing).

    ``forward(x, y=None) -> (batch // pack,)`` raw scores.
    """

    def __init__(self, features: int = 2, hidden=(128, 128, 128), pack: int = 1,
                 num_classes: int = 0):
        super().__init__()
        self.features = check_count(features, "features")
        self.pack = check_count(pack, "pack")
        self.num_classes = check_count(num_classes, "num_classes", minimum=0)
        width = (features + self.num_classes) * self.pack
        self.net = mlp(width, 1, hidden_sizes(hidden), lambda: nn.LeakyReLU(0.2))

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if x.dim() != 2 or x.shape[1] != self.features:
            raise ValueError(f"x: expected shape (batch, {self.features}), got {tuple(x.shape)}")
        if len(x) % self.pack:
            raise ValueError(f"x: expected a batch that is a multiple of pack={self.pack}, "
                             f"got {len(x)} rows")
        h = _with_condition(x, y, self.num_classes, "y")
        return self.net(h.reshape(len(x) // self.pack, -1))[:, 0]


def _with_condition(h: torch.Tensor, y, num_classes: int, name: str) -> torch.Tensor:
    """``[h, one_hot(y)]`` for a conditional network; ``h`` for an unconditional one."""
    if num_classes == 0:
        if y is not None:
            raise ValueError(f"{name}: this network is unconditional (num_classes=0), "
                             "but labels were given")
        return h
    if y is None:
        raise ValueError(f"{name}: this network is class-conditional "
                         f"(num_classes={num_classes}); pass integer labels")
    if len(y) != len(h):
        raise ValueError(f"{name}: expected {len(h)} labels, got {len(y)}")
    return torch.cat([h, one_hot(y, num_classes, h)], dim=1)
