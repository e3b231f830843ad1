"""What a training run logged: :class:`History`, and :func:`smooth` for noisy curves.

This module imports nothing from :mod:`coursekit.plotting`; ``plotting`` imports
``smooth`` from here, and :meth:`History.plot` is the only (lazy) way back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class History:
    """What happened during a run of :class:`~coursekit.train.Trainer` or :func:`fit`.

    Attributes:
        train: per-step logged values, e.g. ``train["loss"]`` (one float per step
            that logged it; a GAN's generator loss appears every ``n_critic`` steps).
        train_steps: for each key of ``train``, the step numbers (1-based) of its values.
        epochs: per-epoch mean of each logged training value (complete epochs only).
        val: values returned by periodic callbacks, e.g. the per-epoch validation loss.
        val_steps: for each key of ``val``, the step numbers at which it was logged.
        seconds: wall time of the run(s).
        steps: number of steps taken.
    """

    train: dict[str, list[float]] = field(default_factory=dict)
    epochs: dict[str, list[float]] = field(default_factory=dict)
    val: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0
    steps: int = 0
    train_steps: dict[str, list[int]] = field(default_factory=dict)
    val_steps: dict[str, list[int]] = field(default_factory=dict)

    @property
    def loss(self) -> list[float]:
        """Per-step training loss."""
        return self.train.get("loss", [])

    def log_train(self, values: dict[str, float]) -> None:
        """Append one step's values (already floats) at step ``self.steps``."""
        _append(self.train, self.train_steps, values, self.steps)

    def log_val(self, values: dict[str, float]) -> None:
        """Append a callback's values at step ``self.steps``."""
        _append(self.val, self.val_steps, values, self.steps)

    def plot(self, ax=None, keys=("loss",)):
        """Training (per step, smoothed) and validation curves."""
        from coursekit.plotting import plot_history

        return plot_history(self, ax=ax, keys=keys)


def _append(curves: dict[str, list[float]], steps: dict[str, list[int]],
            values: dict[str, float], step: int) -> None:
    for key, value in values.items():
        curves.setdefault(key, []).append(value)
        steps.setdefault(key, []).append(step)


def smooth(values: list[float], window: int | None = None) -> list[float]:
    """Moving average (window ~ 2% of the length) for noisy per-step curves."""
    if not values:
        return []
    window = window or max(1, int(math.ceil(len(values) / 50)))
    out, acc = [], 0.0
    for i, v in enumerate(values):
        acc += v
        if i >= window:
            acc -= values[i - window]
        out.append(acc / min(i + 1, window))
    return out
