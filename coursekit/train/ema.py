"""Exponential moving average of a model's weights (Polyak averaging; used by diffusion models)."""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn

from coursekit._validation import check_number


class EMA:
    """A shadow copy of ``model``'s floating-point parameters, averaged over steps.

    After every :meth:`update` each shadow parameter ``θ̄`` follows the live one ``θ``:

        θ̄ ← d·θ̄ + (1 - d)·θ,

    so after ``t`` updates from ``θ̄_0 = θ_0``,
    ``θ̄_t = d^t θ_0 + (1-d) Σ_{s=1..t} d^(t-s) θ_s`` (a geometric average that
    forgets with time scale ``1 / (1 - d)`` steps). Buffers (batch-norm statistics,
    counters) are not averaged: the shadow holds a copy of the latest ones.

    Evaluate with the averaged weights inside ``with ema.applied(): ...``, which
    swaps them into ``model`` and puts the live ones back on exit.

    Args:
        model: the module whose weights are averaged (same device and dtypes).
        decay: ``d`` in ``[0, 1]``; ``0`` copies, ``1`` freezes the starting weights.
    """

    def __init__(self, model: nn.Module, decay: float = 0.999):
        if not isinstance(model, nn.Module):
            raise TypeError(f"model: expected an nn.Module, got {type(model).__name__}")
        self.model = model
        self.decay = check_number(decay, "decay", low=0.0, high=1.0)
        self.updates = 0
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self._averaged = {k for k, p in model.named_parameters() if p.is_floating_point()}

    @torch.no_grad()
    def update(self) -> None:
        """One averaging step ``θ̄ ← d·θ̄ + (1 - d)·θ``; buffers are copied."""
        for name, value in self.model.state_dict().items():
            if name in self._averaged:
                self.shadow[name].lerp_(value, 1.0 - self.decay)
            else:
                self.shadow[name].copy_(value)
        self.updates += 1

    @contextmanager
    def applied(self):
        """Swap the averaged weights into ``model`` for the ``with`` block, then restore."""
        live = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        self.copy_to(self.model)
        try:
            yield self.model
        finally:
            self.model.load_state_dict(live)

    @torch.no_grad()
    def copy_to(self, module: nn.Module) -> None:
        """Load the averaged weights (and latest buffers) into ``module`` (same architecture)."""
        module.load_state_dict(self.shadow)

    def state_dict(self) -> dict:
        """Shadow tensors, decay and update count (for checkpoints)."""
        return {"shadow": self.shadow, "decay": self.decay, "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned (copies into the existing shadow tensors)."""
        for name, value in state["shadow"].items():
            self.shadow[name].copy_(value)
        self.decay = state["decay"]
        self.updates = state["updates"]
