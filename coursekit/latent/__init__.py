r"""Latent variable models and variational inference (lecture 03).

A latent variable model draws an unobserved ``z ~ p(z)`` and then ``x | z ~ p(x|z)``;
its likelihood needs the integral (or sum)

.. math::
    p(x) = \int p(x \mid z)\, p(z)\, dz ,

which is rarely tractable. The package holds the pieces the lecture builds on,
one module per topic:

* :mod:`~coursekit.latent.estimators`: naive Monte Carlo and importance-sampling
  estimates of ``log p(x)``, the ``k``-sample IWAE bound and the ELBO;
* :mod:`~coursekit.latent.gradients`: score-function (REINFORCE) and
  reparameterisation gradient estimators;
* :mod:`~coursekit.latent.linear_gaussian`: :class:`LinearGaussianModel`, whose
  marginal, posterior and ELBO are exact, so every estimator can be checked;
* :mod:`~coursekit.latent.ppca`: :class:`PPCA` (closed form and EM) and
  :class:`MixturePPCA` (the mixtures' EM loop), scikit-learn estimators computing in
  torch (:mod:`coursekit.estimator`: NumPy in gives NumPy out, a tensor gives tensors).
* :mod:`~coursekit.latent.quadrature`: ``log p(x)``, the ELBO and the KL gap of a
  1-D latent, exactly, by quadrature (example posteriors included).

Conventions: torch in, torch out; NumPy arrays are accepted and become float64 (the
fitted estimators ``PPCA``/``MixturePPCA`` instead answer NumPy with NumPy, see
:mod:`coursekit.estimator`);
the latent/event dimension is the last one; log-densities are summed over it.
Bad input raises ``TypeError``/``ValueError`` naming the argument.
"""

from coursekit.functional import log_mean_exp
from coursekit.latent.estimators import (
    elbo,
    importance_log_weights,
    is_log_marginal,
    iwae_bound,
    naive_mc_log_marginal,
)
from coursekit.latent.gradients import reparam_gradient, score_function_gradient
from coursekit.latent.linear_gaussian import LinearGaussianModel
from coursekit.latent.ppca import PPCA, MixturePPCA

__all__ = [
    "LinearGaussianModel",
    "MixturePPCA",
    "PPCA",
    "elbo",
    "importance_log_weights",
    "is_log_marginal",
    "iwae_bound",
    "log_mean_exp",
    "naive_mc_log_marginal",
    "reparam_gradient",
    "score_function_gradient",
]
