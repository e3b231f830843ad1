"""Early stopping on a validation score, as a ``fit`` callback.

With 1,197 training digits every flexible model overfits after a while: the
validation score picks the epoch to keep. :class:`EarlyStopping` evaluates a
score after each epoch, keeps a copy of the weights at the best one, asks ``fit``
to stop after ``patience`` epochs without improvement, and :meth:`restore` puts
the best weights back.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import torch
from torch import nn

from coursekit._validation import check_count


class EarlyStopping:
    """Keep the weights with the lowest ``score()``; stop after ``patience`` bad epochs.

    Args:
        model: the module being trained (its ``state_dict`` is copied at each new best).
        score: called with no arguments after every epoch, returns a number to
            minimise (e.g. the validation NLL); it runs under ``torch.no_grad``.
        patience: epochs without a new best before ``fit`` is asked to stop.

    Use: ``stopper = EarlyStopping(model, lambda: -model.log_prob(x_val).mean())``,
    ``fit(..., callback=stopper)``, then ``stopper.restore()``. After training,
    ``scores`` holds one value per epoch, ``best_epoch`` (0-based) and ``best_score``
    the chosen one.
    """

    def __init__(self, model: nn.Module, score: Callable[[], float], patience: int = 10):
        if not isinstance(model, nn.Module):
            raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
        if not callable(score):
            raise TypeError(f"score: expected a callable returning a number, got {score!r}")
        self.model, self.score = model, score
        self.patience = check_count(patience, "patience")
        self.scores: list[float] = []
        self.best_epoch, self.best_score = -1, math.inf
        self._best_state: dict | None = None

    def __call__(self, epoch: int, history=None) -> bool:
        was_training = self.model.training
        self.model.eval()
        with torch.no_grad():
            value = float(self.score())
        self.model.train(was_training)
        if math.isnan(value):
            raise ValueError(f"score: returned NaN after epoch {epoch}")
        self.scores.append(value)
        if value < self.best_score:
            self.best_epoch, self.best_score = len(self.scores) - 1, value
            self._best_state = copy.deepcopy(self.model.state_dict())
        return len(self.scores) - 1 - self.best_epoch >= self.patience

    def restore(self) -> nn.Module:
        """Load the best weights into the model (returns it)."""
        if self._best_state is None:
            raise RuntimeError("restore: no score recorded yet; pass the stopper to fit's "
                               "callback= and train at least one epoch")
        self.model.load_state_dict(self._best_state)
        return self.model
