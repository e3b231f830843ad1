r"""Autoregressive models (lecture 05): exact likelihoods by the chain rule.

.. math:: p(x) = \prod_{i=1}^{n} p(x_{o_i} \mid x_{o_{<i}})

* :mod:`~coursekit.autoregressive.base`: the contract (:class:`AutoregressiveModel`:
  ``conditional_params`` with teacher forcing, exact ``log_prob``, ancestral
  ``sample`` with optional observed dimensions) and the output heads;
* :mod:`~coursekit.autoregressive.masks`: MADE's degrees, masks and ``MaskedLinear``.
* :mod:`~coursekit.autoregressive.fvsbn`: :class:`FVSBN`, a logistic regression per dimension;
* :mod:`~coursekit.autoregressive.nade`: :class:`NADE`, shared weights and a running sum;
* :mod:`~coursekit.autoregressive.made`: :class:`MADE`, a masked MLP, with order-agnostic
  training (:func:`order_agnostic_loss`, :meth:`MADE.log_prob_ensemble`).
* :mod:`~coursekit.autoregressive.pixelcnn`: :class:`MaskedConv2d`, :class:`PixelCNN` (with
  its blind spot) and :class:`GatedPixelCNN` (vertical and horizontal stacks, no blind spot);
* :mod:`~coursekit.autoregressive.transformer`: :class:`CausalTransformer`, decoder-only;
* :mod:`~coursekit.autoregressive.receptive_field`: :func:`receptive_field` by gradients.
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
from coursekit.autoregressive.fvsbn import FVSBN
from coursekit.autoregressive.made import MADE, order_agnostic_loss
from coursekit.autoregressive.masks import (
    MaskedLinear,
    connectivity,
    hidden_degrees,
    input_degrees,
    made_masks,
)
from coursekit.autoregressive.nade import NADE
from coursekit.autoregressive.pixelcnn import GatedPixelCNN, MaskedConv2d, PixelCNN
from coursekit.autoregressive.receptive_field import receptive_field
from coursekit.autoregressive.transformer import CausalTransformer

__all__ = [
    "AutoregressiveModel",
    "BernoulliOutput",
    "CausalTransformer",
    "FVSBN",
    "GatedPixelCNN",
    "GaussianOutput",
    "MADE",
    "MaskedConv2d",
    "MaskedLinear",
    "MixtureOfGaussiansOutput",
    "NADE",
    "PixelCNN",
    "connectivity",
    "count_parameters",
    "hidden_degrees",
    "input_degrees",
    "made_masks",
    "make_output",
    "nll_loss",
    "order_agnostic_loss",
    "receptive_field",
]
