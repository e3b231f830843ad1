r"""Markov chain Monte Carlo on batches of chains: random-walk Metropolis-Hastings and
Langevin dynamics (unadjusted, ULA, or Metropolis-adjusted, MALA).

Every sampler takes an unnormalised log-density ``log_prob`` that maps a batch of points
``x: (chains, d)`` to ``(chains,)`` (a ``ToyDensity.log_prob``, minus an energy, a model's
``log_prob``...) and runs ``chains`` independent chains in parallel from ``x0: (chains, d)``.
The normalising constant is never needed: only differences ``log p(y) - log p(x)`` enter.

* **Metropolis-Hastings** with a Gaussian random-walk proposal
  :math:`y = x + s\,\xi`, :math:`\xi\sim\mathcal N(0, I)`, accepts with probability
  :math:`\min(1, p(y)/p(x))` (the proposal is symmetric, so its densities cancel).
* **Langevin**: :math:`y = x + h\nabla\log p(x) + \sqrt{2h}\,\xi`, the Euler step of the
  diffusion whose stationary law is :math:`p`. Without a correction (ULA) the chain's
  stationary law is :math:`p` only as :math:`h\to 0` (a bias of order :math:`h`); MALA
  accepts with :math:`\min\big(1, \frac{p(y)\,q(x\mid y)}{p(x)\,q(y\mid x)}\big)`,
  :math:`q(y\mid x)=\mathcal N(y;\,x+h\nabla\log p(x),\,2hI)`, which makes ``p`` exactly
  stationary (detailed balance, :func:`langevin_log_acceptance`).

Lectures 02 (an introduction and Monte Carlo EM), 08 (energy-based models) and 09 (score
models) use these functions. Each returns an :class:`MCMCResult`; everything runs on the
device of ``x0``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from coursekit._validation import as_generator, check_count, check_number

__all__ = ["MCMCResult", "metropolis_hastings", "langevin", "langevin_log_acceptance",
           "langevin_proposal_log_prob", "grad_log_prob"]

LogProb = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class MCMCResult:
    """The output of a sampler.

    Attributes:
        samples: ``(n_kept, chains, d)``, the states after each kept step (``x0`` excluded).
        accept_rate: ``(chains,)``, the fraction of accepted proposals per chain (all ones
            for unadjusted Langevin, which accepts every step).
        final: ``(chains, d)``, the last state, to continue a run.
    """

    samples: torch.Tensor
    accept_rate: torch.Tensor
    final: torch.Tensor

    def flat(self, burn_in: int = 0) -> torch.Tensor:
        """All chains' samples after ``burn_in`` kept steps, as ``(n * chains, d)``."""
        burn_in = check_count(burn_in, "burn_in", minimum=0)
        if burn_in >= len(self.samples):
            raise ValueError(f"burn_in: expected fewer than {len(self.samples)} kept steps, "
                             f"got {burn_in}")
        return self.samples[burn_in:].reshape(-1, self.samples.shape[-1])


def _check_start(x0) -> torch.Tensor:
    if not isinstance(x0, torch.Tensor):
        raise TypeError(f"x0: expected a tensor of shape (chains, d), got {type(x0).__name__}")
    if x0.dim() != 2 or not x0.dtype.is_floating_point:
        raise ValueError(f"x0: expected a floating tensor of shape (chains, d), got shape "
                         f"{tuple(x0.shape)} and dtype {x0.dtype}")
    if not torch.isfinite(x0).all():
        raise ValueError("x0: expected finite starting points")
    return x0.detach().clone()


def batch_values(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                 name: str = "log_prob") -> torch.Tensor:
    """``fn(x)`` for a batch ``x: (n, d)``, checked to be one number per row, ``(n,)``
    (a log-density here, an energy in :mod:`coursekit.ebm`); the error names ``name``."""
    values = fn(x)
    if not isinstance(values, torch.Tensor) or values.shape != x.shape[:1]:
        shape = tuple(values.shape) if isinstance(values, torch.Tensor) else type(values).__name__
        raise ValueError(f"{name}: expected a tensor of shape ({x.shape[0]},) for a batch "
                         f"of shape {tuple(x.shape)}, got {shape}")
    return values


def grad_log_prob(log_prob: LogProb, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(log p(x), ∇_x log p(x))`` for a batch ``x: (chains, d)``, by autograd.

    The chains are independent, so the gradient of the sum is every chain's own gradient.
    """
    with torch.enable_grad():
        xg = x.detach().requires_grad_(True)
        lp = batch_values(log_prob, xg)
        (grad,) = torch.autograd.grad(lp.sum(), xg)
    return lp.detach(), grad.detach()


def _common(x0, n_steps, step_size, thin, generator):
    x = _check_start(x0)
    n_steps = check_count(n_steps, "n_steps")
    thin = check_count(thin, "thin")
    step_size = check_number(step_size, "step_size", low=0.0, strict=True)
    gen = as_generator(generator, "generator", device=x.device)
    return x, n_steps, step_size, thin, gen


def metropolis_hastings(log_prob: LogProb, x0: torch.Tensor, n_steps: int, step_size: float,
                        *, thin: int = 1, generator=None) -> MCMCResult:
    r"""Random-walk Metropolis-Hastings on ``chains`` parallel chains.

    Proposal :math:`y = x + s\,\xi` with ``s = step_size``; accept with probability
    :math:`\min(1, \exp(\log p(y) - \log p(x)))`.

    Args:
        log_prob: unnormalised log-density, ``(chains, d) -> (chains,)``.
        x0: starting points ``(chains, d)``.
        n_steps: number of steps per chain.
        step_size: the proposal's standard deviation ``s > 0``.
        thin: keep every ``thin``-th state.
        generator: ``None``, a seed or a ``torch.Generator`` on ``x0``'s device.

    Returns:
        :class:`MCMCResult` with ``samples: (n_steps // thin, chains, d)``.
    """
    x, n_steps, step_size, thin, gen = _common(x0, n_steps, step_size, thin, generator)
    with torch.no_grad():
        lp = batch_values(log_prob, x)
        accepted = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        kept = []
        for t in range(n_steps):
            y = x + step_size * torch.randn(x.shape, generator=gen, dtype=x.dtype,
                                            device=x.device)
            lp_y = batch_values(log_prob, y)
            u = torch.rand(x.shape[0], generator=gen, dtype=x.dtype, device=x.device)
            accept = torch.log(u) < lp_y - lp
            x = torch.where(accept[:, None], y, x)
            lp = torch.where(accept, lp_y, lp)
            accepted += accept.to(x.dtype)
            if (t + 1) % thin == 0:
                kept.append(x.clone())
    return MCMCResult(torch.stack(kept), accepted / n_steps, x)


def langevin_proposal_log_prob(y, x, grad_x, step_size):
    r"""Langevin's proposal density :math:`\log\mathcal N(y;\,x + h\nabla\log p(x),\,2hI)`,
    per chain: ``y, x, grad_x: (chains, d) -> (chains,)`` (MALA's and AIS's correction)."""
    d = x.shape[-1]
    diff = y - x - step_size * grad_x
    return -(diff ** 2).sum(-1) / (4 * step_size) - 0.5 * d * math.log(4 * math.pi * step_size)


def langevin_log_acceptance(log_prob: LogProb, x: torch.Tensor, y: torch.Tensor,
                            step_size: float) -> torch.Tensor:
    r"""MALA's log acceptance probability of the move ``x -> y``, per chain:

    .. math:: \log\alpha(x\to y)=\min\big(0,\ \log p(y)+\log q(y\to x)
              -\log p(x)-\log q(x\to y)\big),

    with :math:`q(x\to y)=\mathcal N(y;\,x+h\nabla\log p(x),\,2hI)`. Detailed balance,
    :math:`p(x)q(x\to y)\alpha(x\to y)=p(y)q(y\to x)\alpha(y\to x)`, holds for every pair.
    """
    step_size = check_number(step_size, "step_size", low=0.0, strict=True)
    lp_x, g_x = grad_log_prob(log_prob, _check_start(x))
    lp_y, g_y = grad_log_prob(log_prob, _check_start(y))
    log_ratio = (lp_y + langevin_proposal_log_prob(x, y, g_y, step_size)
                 - lp_x - langevin_proposal_log_prob(y, x, g_x, step_size))
    return torch.clamp(log_ratio, max=0.0)


def langevin(log_prob: LogProb, x0: torch.Tensor, n_steps: int, step_size: float, *,
             metropolis: bool = True, thin: int = 1, generator=None) -> MCMCResult:
    r"""Langevin dynamics on ``chains`` parallel chains, with or without a Metropolis test.

    Step: :math:`y = x + h\nabla\log p(x) + \sqrt{2h}\,\xi`, ``h = step_size``. With
    ``metropolis=True`` (MALA) ``y`` is accepted with probability
    :func:`langevin_log_acceptance`, so ``p`` is exactly stationary; with ``False`` (ULA)
    every step is taken and the stationary law is only close to ``p`` for small ``h``.

    Args:
        log_prob: differentiable unnormalised log-density, ``(chains, d) -> (chains,)``.
        x0: starting points ``(chains, d)``.
        n_steps: number of steps per chain.
        step_size: ``h > 0``.
        metropolis: MALA (``True``) or ULA (``False``).
        thin: keep every ``thin``-th state.
        generator: ``None``, a seed or a ``torch.Generator`` on ``x0``'s device.

    Returns:
        :class:`MCMCResult` with ``samples: (n_steps // thin, chains, d)``.
    """
    if not isinstance(metropolis, bool):
        raise TypeError(f"metropolis: expected True or False, got {metropolis!r}")
    x, n_steps, step_size, thin, gen = _common(x0, n_steps, step_size, thin, generator)
    lp, g = grad_log_prob(log_prob, x)
    accepted = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
    noise_scale = math.sqrt(2 * step_size)
    kept = []
    for t in range(n_steps):
        y = x + step_size * g + noise_scale * torch.randn(x.shape, generator=gen,
                                                          dtype=x.dtype, device=x.device)
        lp_y, g_y = grad_log_prob(log_prob, y)
        if metropolis:
            log_ratio = (lp_y + langevin_proposal_log_prob(x, y, g_y, step_size)
                         - lp - langevin_proposal_log_prob(y, x, g, step_size))
            u = torch.rand(x.shape[0], generator=gen, dtype=x.dtype, device=x.device)
            accept = torch.log(u) < log_ratio
        else:
            accept = torch.ones(x.shape[0], dtype=torch.bool, device=x.device)
        x = torch.where(accept[:, None], y, x)
        lp = torch.where(accept, lp_y, lp)
        g = torch.where(accept[:, None], g_y, g)
        accepted += accept.to(x.dtype)
        if (t + 1) % thin == 0:
            kept.append(x.clone())
    return MCMCResult(torch.stack(kept), accepted / n_steps, x)
