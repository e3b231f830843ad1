r"""Energy networks: :math:`E_\theta(x)`, with :math:`p_\theta(x) = e^{-E_\theta(x)} / Z(\theta)`.

The course writes densities as ``exp(-E) / Z`` (lower energy, higher probability); the
lecture notes' :math:`f` is :math:`-E`. Every energy model here is an ``nn.Module`` with

* ``energy(x) -> (batch,)`` (also ``forward``), the unnormalised negative log-density;
* ``log_z``, a scalar parameter standing for :math:`\log Z(\theta)`. Nothing keeps it
  true by itself: noise-contrastive estimation learns it, :meth:`EnergyModel.calibrate_on_grid`
  (2-D) or :func:`coursekit.ebm.estimate_log_partition` (any dimension) sets it;
* ``log_prob(x) = -energy(x) - log_z`` (exact once ``log_z`` holds log Z);
* ``sample(n)``: unadjusted Langevin dynamics from the model's initial distribution
  (:func:`coursekit.ebm.langevin_sample`), approximate like every EBM sampler.

Smooth activations (SiLU) throughout: score matching needs second derivatives of the
energy, and a ReLU network's Hessian is zero almost everywhere.
"""

from __future__ import annotations

import torch
from torch import nn

from coursekit._validation import check_count, check_number
from coursekit.runtime import make_generator, module_dtype_device
from coursekit.vae import mlp

__all__ = ["DigitsEnergy", "EnergyMLP", "EnergyModel"]


class EnergyModel(nn.Module):
    """Base class: subclasses set ``features``, ``bounds`` and implement :meth:`energy`.

    ``bounds = (low, high)``: where samplers start (uniform noise) and, for images, the box
    Langevin steps are clipped to (``clip=True``).
    """

    features: int
    bounds: tuple[float, float]
    clip: bool = False

    def __init__(self) -> None:
        super().__init__()
        self.log_z = nn.Parameter(torch.zeros(()))

    def energy(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``E(x)``: ``(batch, features) -> (batch,)``."""
        return self.energy(x)

    def _check(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() != 2 or x.shape[1] != self.features:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"x: expected shape (batch, {self.features}), got {shape}")
        dtype, device = module_dtype_device(self)
        return x.to(dtype=dtype, device=device)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        r"""``-E(x) - log_z``, ``(batch,)``: the log-density once ``log_z`` is log Z."""
        return -self.energy(x) - self.log_z

    def initial(self, n: int, generator=None) -> torch.Tensor:
        """``n`` points uniform in the box ``bounds^features``, on the model's device: where
        chains start (``generator``: ``None``, a seed, or a generator on any device)."""
        dtype, device = module_dtype_device(self)
        gen = make_generator(generator, device)
        low, high = self.bounds
        u = torch.rand(check_count(n, "n"), self.features, generator=gen, dtype=dtype,
                       device=gen.device)  # a CPU generator draws on the CPU, then moves
        return (low + (high - low) * u).to(device)

    def sample(self, n: int, *, n_steps: int = 200, step_size: float = 0.01,
               noise_scale: float = 1.0, generator=None) -> torch.Tensor:
        r"""``(n, features)`` samples by unadjusted Langevin from uniform noise in the box:
        :math:`x \leftarrow x - h\nabla E(x) + \sigma\sqrt{2h}\,\xi` (see
        :func:`coursekit.ebm.langevin_sample`)."""
        from coursekit.ebm.sampling import langevin_sample

        gen = make_generator(generator, module_dtype_device(self)[1])
        x0 = self.initial(n, gen)
        return langevin_sample(self.energy, x0, n_steps, step_size, noise_scale=noise_scale,
                               bounds=self.bounds if self.clip else None, generator=gen)

    @torch.no_grad()
    def calibrate_on_grid(self, extent: float = 4.0, resolution: int = 300) -> float:
        """Set ``log_z`` to log Z by the midpoint rule on ``[-extent, extent]^2`` (2-D models
        only; :func:`coursekit.ebm.grid_log_partition`) and return it."""
        from coursekit.ebm.partition import grid_log_partition

        value = grid_log_partition(self.energy, extent=extent, resolution=resolution,
                                   dim=self.features)
        self.log_z.fill_(value)
        return value


class EnergyMLP(EnergyModel):
    r"""``E(x)``: an MLP with SiLU activations, ``(batch, features) -> (batch,)``.

    Args:
        features: the data dimension (2 for toy data).
        hidden: hidden layer widths.
        extent: samplers start uniform in ``[-extent, extent]^features``.
    """

    def __init__(self, features: int = 2, hidden=(128, 128, 128), extent: float = 4.0):
        super().__init__()
        self.features = check_count(features, "features")
        extent = check_number(extent, "extent", low=0.0, strict=True)
        self.bounds = (-extent, extent)
        self.net = mlp(self.features, 1, hidden, nn.SiLU)

    def energy(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, features) -> (batch,)``."""
        return self.net(self._check(x)).squeeze(-1)


class DigitsEnergy(EnergyModel):
    r"""``E(x)`` for 8x8 images flattened to ``(batch, 64)`` with pixels in [0, 1].

    Three 3x3 convolutions (SiLU; 8x8 -> 4x4 -> 2x2 by stride 2), then a linear map to
    one number. Langevin chains start from uniform noise in [0, 1]^64 and are clipped to
    that box (``clip = True``).

    Args:
        channels: the widths of the three convolutions.
    """

    features = 64
    bounds = (0.0, 1.0)
    clip = True

    def __init__(self, channels=(32, 64, 64)):
        super().__init__()
        if len(tuple(channels)) != 3:
            raise ValueError(f"channels: expected three widths, got {channels!r}")
        c1, c2, c3 = (check_count(c, "channels") for c in channels)
        self.net = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1), nn.SiLU(),
            nn.Conv2d(c1, c2, 3, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(c2, c3, 3, stride=2, padding=1), nn.SiLU(),
            nn.Flatten(), nn.Linear(4 * c3, 1))

    def energy(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, 64) -> (batch,)``."""
        x = self._check(x)
        return self.net(x.reshape(-1, 1, 8, 8)).squeeze(-1)
