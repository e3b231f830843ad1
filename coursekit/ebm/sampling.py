r"""Sampling from :math:`p(x) \propto e^{-E(x)}`: Langevin dynamics and a replay buffer.

* :func:`langevin_sample`: unadjusted Langevin (ULA),
  :math:`x \leftarrow x - h\nabla E(x) + \sigma\sqrt{2h}\,\xi`, :math:`\xi\sim\mathcal N(0, I)`.
  With ``noise_scale`` :math:`\sigma = 1` it targets :math:`p` (with a bias of order
  :math:`h`); :math:`\sigma < 1` targets :math:`p^{1/\sigma^2}` (a lower temperature, the
  usual trick for image EBMs); :math:`\sigma = 0` is gradient descent on the energy, which
  collapses every particle onto a local minimum.
* :func:`mala_sample`: the Metropolis-adjusted version (exact stationary law), a thin
  wrapper of :func:`coursekit.mcmc.langevin` for energies.
* :class:`ReplayBuffer`: past chain states to restart from (Du & Mordatch, 2019), so short
  runs per training step add up to long chains; a fraction restarts from noise.

``energy`` is any callable ``(n, d) -> (n,)`` (an :class:`~coursekit.ebm.EnergyModel`, a
toy density's negative ``log_prob``...). The chains never put gradients on the energy's
parameters: only :math:`\nabla_x E` is taken.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from coursekit._validation import as_generator, check_count, check_number
from coursekit.mcmc import batch_values, langevin

__all__ = ["ReplayBuffer", "energy_grad", "langevin_sample", "mala_sample"]

Energy = Callable[[torch.Tensor], torch.Tensor]


def _check_start(x0, name: str = "x0") -> torch.Tensor:
    if not isinstance(x0, torch.Tensor) or x0.dim() != 2 or not x0.is_floating_point():
        shape = tuple(x0.shape) if isinstance(x0, torch.Tensor) else type(x0).__name__
        raise ValueError(f"{name}: expected a floating tensor of shape (n, d), got {shape}")
    if not torch.isfinite(x0).all():
        raise ValueError(f"{name}: expected finite starting points")
    return x0.detach()


def _check_bounds(bounds) -> tuple[float, float]:
    """``(low, high)`` with ``low < high``, finite."""
    try:
        low, high = bounds
    except (TypeError, ValueError):
        raise TypeError(f"bounds: expected (low, high), got {bounds!r}") from None
    low, high = check_number(low, "bounds"), check_number(high, "bounds")
    if not low < high:
        raise ValueError(f"bounds: expected low < high, got {bounds!r}")
    return low, high


def energy_grad(energy: Energy, x: torch.Tensor) -> torch.Tensor:
    r""":math:`\nabla_x E(x)`, ``(n, d)``, by autograd (the rows are independent, so the
    gradient of the sum is each row's own gradient); the score is its negative."""
    with torch.enable_grad():
        xg = x.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(batch_values(energy, xg, "energy").sum(), xg)
    return grad


def langevin_sample(energy: Energy, x0: torch.Tensor, n_steps: int, step_size: float, *,
                    noise_scale: float = 1.0, bounds: tuple[float, float] | None = None,
                    generator=None, return_path: bool = False) -> torch.Tensor:
    r"""Run ``n_steps`` of unadjusted Langevin dynamics on each row of ``x0``.

    .. math:: x_{t+1} = x_t - h\,\nabla E(x_t) + \sigma\sqrt{2h}\,\xi_t

    Args:
        energy: ``(n, d) -> (n,)``, differentiable in ``x``.
        x0: starting points ``(n, d)``.
        n_steps: number of steps ``>= 0``.
        step_size: ``h > 0``.
        noise_scale: :math:`\sigma \ge 0` (1: Langevin; 0: gradient descent).
        bounds: ``(low, high)`` to clip every coordinate to after each step (images), or
            ``None``.
        generator: ``None``, a seed or a ``torch.Generator`` (one on another device than
            ``x0`` draws the noise there and moves it).
        return_path: also return every state.

    Returns:
        ``(n, d)`` final states, or ``(n_steps + 1, n, d)`` states (``x0`` first) with
        ``return_path``. Detached from any graph.
    """
    x = _check_start(x0)
    n_steps = check_count(n_steps, "n_steps", minimum=0)
    h = check_number(step_size, "step_size", low=0.0, strict=True)
    sigma = check_number(noise_scale, "noise_scale", low=0.0)
    if bounds is not None:
        low, high = _check_bounds(bounds)
    gen = as_generator(generator, "generator", device=x.device)
    noise = sigma * math.sqrt(2 * h)
    path = [x] if return_path else None
    for _ in range(n_steps):
        x = x - h * energy_grad(energy, x)
        if noise > 0:
            x = x + noise * torch.randn(x.shape, generator=gen, dtype=x.dtype,
                                        device=gen.device).to(x.device)
        if bounds is not None:
            x = x.clamp(low, high)
        if return_path:
            path.append(x)
    return torch.stack(path) if return_path else x


def mala_sample(energy: Energy, x0: torch.Tensor, n_steps: int, step_size: float, *,
                generator=None) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Metropolis-adjusted Langevin: ``n_steps`` proposals
    :math:`y = x - h\nabla E(x) + \sqrt{2h}\,\xi`, each accepted with MALA's probability
    (:func:`coursekit.mcmc.langevin_log_acceptance`), so :math:`p` is exactly stationary.

    Returns:
        ``(final, accept_rate)``: the states ``(n, d)`` after ``n_steps`` and each chain's
        acceptance rate ``(n,)``.
    """
    result = langevin(lambda x: -energy(x), _check_start(x0), n_steps, step_size,
                      metropolis=True, thin=check_count(n_steps, "n_steps"),
                      generator=generator)
    return result.final, result.accept_rate


class ReplayBuffer:
    r"""A store of chain states to continue Langevin chains from (plain tensors, so it
    pickles into a :class:`~coursekit.train.Trainer` checkpoint).

    :meth:`sample` draws ``n`` stored states uniformly (with replacement) and swaps each
    for the matching row of ``restart`` (fresh noise) with probability ``reinit_prob``;
    after the chains have moved, :meth:`update` writes them back at the same indices.
    ``reinit_prob = 1`` gives short-run chains from noise every step; small values let
    chains run on across training steps (``0`` with as many states as a batch is close to
    persistent contrastive divergence, PCD).

    Args:
        states: ``(capacity, d)`` initial contents, typically noise.
        reinit_prob: the chance a drawn state restarts from noise.
    """

    def __init__(self, states: torch.Tensor, reinit_prob: float = 0.05):
        self.states = _check_start(states, "states").clone()
        self.reinit_prob = check_number(reinit_prob, "reinit_prob", low=0.0, high=1.0)

    def __len__(self) -> int:
        return len(self.states)

    def sample(self, n: int, restart: torch.Tensor, generator=None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, index)``: ``n`` states ``(n, d)`` and where they go back, ``(n,)``.

        Args:
            n: how many.
            restart: ``(n, d)`` noise; row ``i`` replaces draw ``i`` when its coin says so.
            generator: ``None``, a seed or a ``torch.Generator`` on the states' device.
        """
        n = check_count(n, "n")
        if not isinstance(restart, torch.Tensor) or restart.shape != (n, self.states.shape[1]):
            raise ValueError(f"restart: expected shape ({n}, {self.states.shape[1]}), got "
                             f"{getattr(restart, 'shape', type(restart).__name__)}")
        gen = as_generator(generator, "generator", device=self.states.device)
        index = torch.randint(len(self.states), (n,), generator=gen, device=self.states.device)
        fresh = torch.rand(n, generator=gen, device=self.states.device) < self.reinit_prob
        x = torch.where(fresh[:, None], restart.to(self.states), self.states[index])
        return x, index

    def update(self, index: torch.Tensor, x: torch.Tensor) -> None:
        """Store the moved states ``x: (n, d)`` at ``index: (n,)`` (from :meth:`sample`)."""
        if not isinstance(x, torch.Tensor) or x.shape != (len(index), self.states.shape[1]):
            raise ValueError(f"x: expected shape ({len(index)}, {self.states.shape[1]}), "
                             f"got {getattr(x, 'shape', type(x).__name__)}")
        self.states[index] = x.detach().to(self.states)
