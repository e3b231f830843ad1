r"""Normalizing flows (lecture 06): exact densities through invertible maps.

.. math:: \log p_X(x) = \log p_Z(f(x)) + \log|\det \partial f(x)/\partial x|

* :mod:`~coursekit.flows.base`: the contract (:class:`Transform`: ``forward`` data to
  noise, ``inverse`` noise to data, each with its log-determinant), :class:`Compose`,
  :class:`InverseTransform`, :class:`StandardNormal` and :class:`Flow` (``log_prob``,
  ``sample``, ``sample_and_log_prob``).
"""

from coursekit.flows.base import Compose, Flow, InverseTransform, StandardNormal, Transform

__all__ = ["Compose", "Flow", "InverseTransform", "StandardNormal", "Transform"]
