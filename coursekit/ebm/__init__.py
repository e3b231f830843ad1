r"""Energy-based models (lecture 08): :math:`p_\theta(x) = e^{-E_\theta(x)} / Z(\theta)`.

The course writes energies (lower is likelier); the lecture notes' :math:`f` is :math:`-E`.

* :mod:`~coursekit.ebm.nets`: :class:`EnergyModel` (``energy``, ``log_prob`` with a
  ``log_z`` parameter, Langevin ``sample``), :class:`EnergyMLP` for 2-D data,
  :class:`DigitsEnergy` for 8x8 digits.
* :mod:`~coursekit.ebm.sampling`: :func:`langevin_sample` (unadjusted, with a noise scale),
  :func:`mala_sample` (Metropolis-adjusted), :class:`ReplayBuffer`, :func:`energy_grad`.
* :mod:`~coursekit.ebm.objectives`: :func:`cd_loss`, :func:`score_matching_loss` (exact and
  sliced), :func:`dsm_loss`, :func:`nce_loss`.
* :mod:`~coursekit.ebm.partition`: :func:`grid_log_partition` (1-D and 2-D) and
  :func:`estimate_log_partition` (annealed importance sampling, any dimension).
* :mod:`~coursekit.ebm.train`: :func:`train_ebm` and :func:`ebm_step` for
  :class:`coursekit.train.Trainer`, one of :data:`OBJECTIVES`.

Random-walk Metropolis-Hastings and MALA on log-densities live in :mod:`coursekit.mcmc`.
"""

from coursekit.ebm.nets import DigitsEnergy, EnergyMLP, EnergyModel
from coursekit.ebm.objectives import cd_loss, dsm_loss, nce_loss, score_matching_loss
from coursekit.ebm.partition import LogPartition, estimate_log_partition, grid_log_partition
from coursekit.ebm.sampling import ReplayBuffer, energy_grad, langevin_sample, mala_sample
from coursekit.ebm.train import (
    OBJECTIVES,
    SAMPLING_OBJECTIVES,
    ebm_step,
    fitted_gaussian,
    train_ebm,
)

__all__ = [
    "OBJECTIVES",
    "SAMPLING_OBJECTIVES",
    "DigitsEnergy",
    "EnergyMLP",
    "EnergyModel",
    "LogPartition",
    "ReplayBuffer",
    "cd_loss",
    "dsm_loss",
    "ebm_step",
    "energy_grad",
    "estimate_log_partition",
    "fitted_gaussian",
    "grid_log_partition",
    "langevin_sample",
    "mala_sample",
    "nce_loss",
    "score_matching_loss",
    "train_ebm",
]
