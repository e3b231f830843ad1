r"""Autoregressive models (lecture 05): exact likelihoods by the chain rule.

.. math:: p(x) = \prod_{i=1}^{n} p(x_{o_i} \mid x_{o_{<i}})

* :mod:`~coursekit.autoregressive.base`: the contract (:class:`AutoregressiveModel`:
  ``conditional_params`` with teacher forcing, exact ``log_prob``, ancestral
  ``sample`` with optional observed dimensions) and the output heads;
* :mod:`~coursekit.autoregressive.masks`: MADE's degrees, masks and ``MaskedLinear``.
"""

from coursekit.autoregressive.base import (
    AutoregressiveModel,
    BernoulliOutput,
    GaussianOutput,
    MixtureOfGaussiansOutput,
    count_parameters,
    make_output,
    nll_loss,
)
from coursekit.autoregressive.masks import (
    MaskedLinear,
    connectivity,
    hidden_degrees,
    input_degrees,
    made_masks,
)

__all__ = [
    "AutoregressiveModel",
    "BernoulliOutput",
    "GaussianOutput",
    "MaskedLinear",
    "MixtureOfGaussiansOutput",
    "connectivity",
    "count_parameters",
    "hidden_degrees",
    "input_degrees",
    "made_masks",
    "make_output",
    "nll_loss",
]
