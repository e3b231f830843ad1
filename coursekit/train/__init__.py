"""Training loops that every lecture reuses instead of hand-written ones.

* :func:`fit` / :func:`evaluate`: one model, one loss, one optimiser (VAEs, flows).
* :class:`Trainer`: any objective; the step function optimises (GANs with several
  optimisers, EBMs with a replay buffer in ``trainer.state``, diffusion with an
  :class:`EMA`), the trainer batches, logs, checks, schedules, calls back and
  checkpoints/resumes exactly.
* :class:`EarlyStopping`: a ``fit`` callback keeping the weights with the best
  validation score.
* :class:`History` of named curves, :func:`smooth` for plotting them.

Submodules: ``loop`` (Trainer, optimizer_step), ``fit``, ``data`` (what counts as
data), ``history``, ``ema``, ``early_stopping``, ``checkpoint``.
"""

from coursekit.train.early_stopping import EarlyStopping
from coursekit.train.ema import EMA
from coursekit.train.fit import evaluate, fit
from coursekit.train.history import History, smooth
from coursekit.train.loop import Trainer, optimizer_step

__all__ = ["EMA", "EarlyStopping", "History", "Trainer", "evaluate", "fit", "optimizer_step",
           "smooth"]
