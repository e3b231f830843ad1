r"""A continuous normalizing flow (Chen et al. 2018; FFJORD, Grathwohl et al. 2019).

The map from data to noise is the solution of an ODE, ``x = z(0)``, ``z = z(t_1)`` with

.. math::
    \frac{dz}{dt} = g(z, t),\qquad
    \frac{d \log p(z(t))}{dt} = -\operatorname{tr}\frac{\partial g}{\partial z}
    \quad\Longrightarrow\quad
    \log\Big|\det\frac{\partial z(t_1)}{\partial z(0)}\Big|
        = \int_0^{t_1} \operatorname{tr}\frac{\partial g}{\partial z}(z(t), t)\, dt

(the instantaneous change of variables). :class:`ContinuousFlowTransform` integrates the
augmented state ``(z, \ell)`` with ``d\ell/dt = tr(\partial g/\partial z)`` by a fixed-step
classical Runge-Kutta (RK4) scheme, from ``0`` to ``t_1`` (``forward``, data to noise) or
back from ``t_1`` to ``0`` (``inverse``, where ``\ell`` comes out as ``-\int tr``). Training
backpropagates through the solver steps (no adjoint). The trace is either

* exact: ``sum_i \partial g_i / \partial z_i``, one autograd pass per feature; or
* Hutchinson's estimator ``\epsilon^\top (\partial g/\partial z)\,\epsilon`` with
  Rademacher ``\epsilon`` (one pass; unbiased since ``E[\epsilon\epsilon^\top] = I``),
  drawn once per solve as in FFJORD.

:class:`CNF` is the ready model: a :class:`~coursekit.flows.base.Flow` whose transform is a
:class:`ContinuousFlowTransform` and whose base is the standard normal.
"""

from __future__ import annotations

import torch
from torch import nn

from coursekit._validation import check_choice, check_count, check_number
from coursekit.flows.base import Flow, Transform

__all__ = ["CNF", "ContinuousFlowTransform"]

EXACT_TRACE_MAX_FEATURES = 4
"""``trace="auto"`` uses the exact trace up to this many features, Hutchinson's above."""


class ContinuousFlowTransform(Transform):
    r"""``x -> z = z(t_1)`` with ``dz/dt = g(z, t)``, ``g`` an MLP of ``[z, t]`` (tanh
    hidden layers: a smooth field, so the ODE and its divergence are smooth).

    Args:
        features: dimension ``D``.
        hidden: hidden widths of ``g``.
        t1: the integration time ``t_1 > 0``.
        steps: RK4 steps (step ``h = t_1 / steps``; local error ``O(h^5)``, four evaluations
            of ``g`` and its trace per step).
        trace: ``"exact"``, ``"hutchinson"`` or ``"auto"`` (exact when
            ``features <= 4``).

    ``forward(x)``/``inverse(z)``: ``(batch, D) -> ((batch, D), (batch,))``. Both are
    solved to the RK4 scheme's accuracy, so ``inverse(forward(x))`` returns ``x`` up to
    ``O(h^4)``, not to rounding.
    """

    def __init__(self, features: int, hidden: tuple[int, ...] = (64, 64), t1: float = 1.0,
                 steps: int = 20, trace: str = "auto"):
        super().__init__()
        self.features = check_count(features, "features")
        if not isinstance(hidden, (tuple, list)):
            raise TypeError(f"hidden: expected a tuple of layer widths, "
                            f"got {type(hidden).__name__}")
        sizes = (self.features + 1, *(check_count(h, f"hidden[{i}]")
                                      for i, h in enumerate(hidden)))
        layers = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), nn.Tanh()]
        self.net = nn.Sequential(*layers, nn.Linear(sizes[-1], self.features))
        self.t1 = check_number(t1, "t1", low=0, strict=True)
        self.steps = check_count(steps, "steps")
        check_choice(trace, "trace", ("auto", "exact", "hutchinson"))
        if trace == "auto":
            trace = "exact" if self.features <= EXACT_TRACE_MAX_FEATURES else "hutchinson"
        self.trace = trace

    def velocity(self, z: torch.Tensor, t: float) -> torch.Tensor:
        """``g(z, t)``: ``(batch, D) -> (batch, D)``."""
        return self.net(torch.cat([z, z.new_full((z.shape[0], 1), t)], dim=-1))

    def divergence(self, z: torch.Tensor, t: float, noise: torch.Tensor | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        r"""``g(z, t)`` and ``tr(\partial g/\partial z)``: exact with ``noise=None``, else
        ``noise^T (\partial g/\partial z) noise`` (Hutchinson's, one vector-Jacobian
        product). ``(batch, D) -> ((batch, D), (batch,))``.

        Differentiable with respect to the parameters when grad mode is on (the trace's
        graph is kept); under ``torch.no_grad`` the results are detached."""
        keep_graph = torch.is_grad_enabled()
        with torch.enable_grad():
            zin = z if z.requires_grad else z.detach().requires_grad_(True)
            g = self.velocity(zin, t)
            if noise is None:
                tr = sum(torch.autograd.grad(g[:, i].sum(), zin, create_graph=keep_graph,
                                             retain_graph=True)[0][:, i]
                         for i in range(self.features))
            else:
                vjp, = torch.autograd.grad((g * noise).sum(), zin, create_graph=keep_graph)
                tr = (vjp * noise).sum(-1)
        if not keep_graph:
            g, tr = g.detach(), tr.detach()
        return g, tr

    def _integrate(self, z: torch.Tensor, reverse: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """RK4 on ``(z, l)`` with ``dl/dt = tr``, from 0 to ``t1`` or from ``t1`` to 0."""
        noise = None
        if self.trace == "hutchinson":
            noise = torch.randint(0, 2, z.shape, device=z.device).to(z.dtype) * 2 - 1
        h = (-1 if reverse else 1) * self.t1 / self.steps
        t = self.t1 if reverse else 0.0
        logdet = z.new_zeros(z.shape[0])
        for _ in range(self.steps):
            k1, l1 = self.divergence(z, t, noise)
            k2, l2 = self.divergence(z + h / 2 * k1, t + h / 2, noise)
            k3, l3 = self.divergence(z + h / 2 * k2, t + h / 2, noise)
            k4, l4 = self.divergence(z + h * k3, t + h, noise)
            z = z + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
            logdet = logdet + h / 6 * (l1 + 2 * l2 + 2 * l3 + l4)
            t = t + h
        return z, logdet

    def forward(self, x):
        return self._integrate(x, reverse=False)

    def inverse(self, z):
        return self._integrate(z, reverse=True)


class CNF(Flow):
    """A continuous normalizing flow model: ``Flow(ContinuousFlowTransform(...), features)``
    with a standard normal base (arguments as in :class:`ContinuousFlowTransform`).

    ``log_prob`` and ``sample`` cost ``4 * steps`` evaluations of ``g`` and of its trace
    (``D`` autograd passes each for the exact trace)."""

    def __init__(self, features: int = 2, hidden: tuple[int, ...] = (64, 64), t1: float = 1.0,
                 steps: int = 20, trace: str = "auto"):
        super().__init__(ContinuousFlowTransform(features, hidden, t1, steps, trace),
                         check_count(features, "features"))
