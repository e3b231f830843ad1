r"""Gradient estimators of ``grad_lambda E_{q_lambda}[f(z)]``: score function and
reparameterisation.

* the score function (REINFORCE), optionally with a constant or leave-one-out baseline,
  which needs only ``log q`` to be differentiable (so it works for discrete ``z``);
* the reparameterisation trick, which differentiates through ``z = g_lambda(eps)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from coursekit._validation import check_count

__all__ = ["reparam_gradient", "score_function_gradient"]


def _prepare_params(params: Sequence[torch.Tensor], n_repeats: int | None):
    if isinstance(params, torch.Tensor) or not isinstance(params, Sequence) or not params:
        raise TypeError("params: expected a non-empty list/tuple of tensors")
    for i, p in enumerate(params):
        if not isinstance(p, torch.Tensor) or not p.is_floating_point():
            raise TypeError(f"params[{i}]: expected a floating torch.Tensor, "
                            f"got {type(p).__name__}")
    if n_repeats is None:
        leaves = [p.detach().clone().requires_grad_(True) for p in params]
    else:
        r = check_count(n_repeats, "n_repeats")
        leaves = [p.detach().unsqueeze(0).expand(r, *p.shape).clone().requires_grad_(True)
                  for p in params]
    return leaves


def _f_values(f, z, expected_shape, name="f"):
    values = f(z)
    if not isinstance(values, torch.Tensor) or tuple(values.shape) != tuple(expected_shape):
        got = tuple(values.shape) if isinstance(values, torch.Tensor) else type(values).__name__
        raise ValueError(f"{name}: expected f(z) of shape {tuple(expected_shape)} "
                         f"(n_samples, *batch), got {got}")
    return values


def score_function_gradient(f: Callable, make_dist: Callable, params: Sequence[torch.Tensor],
                            n_samples: int, baseline: str | float | None = None,
                            n_repeats: int | None = None) -> list[torch.Tensor]:
    r"""Score-function (REINFORCE) estimate of ``grad_params E_{q_params}[f(z)]``.

    .. math::
        \nabla_\lambda \mathbb E_{q_\lambda}[f(z)]
        = \mathbb E_{q_\lambda}\big[(f(z) - b)\, \nabla_\lambda \log q_\lambda(z)\big]
        \approx \frac1n \sum_{i=1}^n (f(z_i) - b_i)\, \nabla_\lambda \log q_\lambda(z_i)

    valid for any ``b`` that does not depend on ``z_i`` because
    ``E_q[grad log q] = 0``. It needs only ``log q`` to be differentiable, so it
    works for discrete ``z``; ``f`` is treated as a constant of ``lambda`` (for the
    ELBO, pass ``f = log p(x, z) - log q(z)``: the extra term ``E_q[grad log q]`` is 0).

    Args:
        f: callable ``z -> values`` of shape ``(n_samples, *batch)``.
        make_dist: callable ``(*params) -> torch.distributions.Distribution`` with
            ``log_prob`` summed over the event (use ``Independent``).
        params: the tensors ``lambda`` to differentiate with respect to (not modified).
        n_samples: ``n >= 1`` (``>= 2`` with ``baseline="loo"``).
        baseline: ``None``; a number (a constant ``b``); or ``"loo"``: for sample
            ``i`` the mean of ``f`` over the other ``n - 1`` samples (unbiased).
        n_repeats: if given, ``R`` independent estimates are computed at once:
            every parameter gets a leading dimension ``R`` before ``make_dist`` is
            called (so ``make_dist`` must broadcast it) and each returned gradient
            has shape ``(R, *param.shape)``.

    Returns:
        one gradient per parameter, ``param.shape`` (or ``(R, *param.shape)``).
    """
    n = check_count(n_samples, "n_samples")
    if baseline == "loo" and n < 2:
        raise ValueError(f"n_samples: the leave-one-out baseline needs n_samples >= 2, got {n}")
    if not (baseline is None or baseline == "loo" or isinstance(baseline, (int, float))):
        raise ValueError(f"baseline: expected None, a number or 'loo', got {baseline!r}")
    leaves = _prepare_params(params, n_repeats)
    dist = make_dist(*leaves)
    with torch.no_grad():
        z = dist.sample((n,))
    log_q = dist.log_prob(z)
    with torch.no_grad():
        values = _f_values(f, z, log_q.shape)
        if baseline == "loo":
            b = (values.sum(0, keepdim=True) - values) / (n - 1)
        elif baseline is None:
            b = 0.0
        else:
            b = float(baseline)
        weight = values - b
    surrogate = (weight * log_q).mean(0).sum()
    return list(torch.autograd.grad(surrogate, leaves))


def reparam_gradient(f: Callable, make_dist: Callable, params: Sequence[torch.Tensor],
                     n_samples: int, n_repeats: int | None = None) -> list[torch.Tensor]:
    r"""Reparameterisation estimate of ``grad_params E_{q_params}[f(z)]``.

    Write ``z = g_\lambda(\epsilon)`` with ``\epsilon`` from a fixed distribution
    (for a Gaussian ``z = mu + sigma * eps``, ``eps ~ N(0, I)``); then

    .. math::
        \nabla_\lambda \mathbb E_{q_\lambda}[f(z)]
        = \mathbb E_\epsilon[\nabla_\lambda f(g_\lambda(\epsilon))]
        \approx \frac1n \sum_i \nabla_z f(z_i)\, \nabla_\lambda g_\lambda(\epsilon_i)

    It needs a differentiable ``f`` and a distribution with ``rsample``.

    Args: as :func:`score_function_gradient` (``f`` must be differentiable).

    Returns:
        one gradient per parameter, ``param.shape`` (or ``(R, *param.shape)``).
    """
    n = check_count(n_samples, "n_samples")
    leaves = _prepare_params(params, n_repeats)
    dist = make_dist(*leaves)
    if not dist.has_rsample:
        raise ValueError(f"make_dist: the reparameterisation estimator needs a distribution "
                         f"with rsample, got {type(dist).__name__}")
    z = dist.rsample((n,))
    values = _f_values(f, z, z.shape[: 1 + len(dist.batch_shape)])
    return list(torch.autograd.grad(values.mean(0).sum(), leaves))
