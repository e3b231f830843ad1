r"""Normalizing flows (lecture 06): exact densities through invertible maps.

.. math:: \log p_X(x) = \log p_Z(f(x)) + \log|\det \partial f(x)/\partial x|

* :mod:`~coursekit.flows.base`: the contract (:class:`Transform`: ``forward`` data to
  noise, ``inverse`` noise to data, each with its log-determinant), :class:`Compose`,
  :class:`InverseTransform`, :class:`StandardNormal` and :class:`Flow` (``log_prob``,
  ``sample``, ``sample_and_log_prob``).
* :mod:`~coursekit.flows.planar`: :class:`PlanarTransform` (noise to data in closed form,
  data to noise by a 1-D root find).
* :mod:`~coursekit.flows.coupling`: :class:`AdditiveCoupling` (NICE), :class:`AffineCoupling`
  (RealNVP), :class:`Rescale`, :class:`Permutation`, :class:`ReversePermutation`,
  :class:`RandomPermutation`.
* :mod:`~coursekit.flows.autoregressive`: :class:`MAFTransform` (one-pass density) and
  :class:`IAFTransform` (one-pass sampling).
* :mod:`~coursekit.flows.glow`: :class:`ActNorm` (data-dependent initialisation) and
  :class:`LULinear` (``W = P L (U + diag(s))``).
* :mod:`~coursekit.flows.models`: the ready flows :class:`Planar`, :class:`NICE`,
  :class:`RealNVP`, :class:`MAF`, :class:`IAF`, :class:`Glow`.
* :mod:`~coursekit.flows.spline`: :func:`rational_quadratic_spline` (Durkan et al.'s
  monotone spline, identity tails), :class:`Spline`, :class:`SplineCoupling` and the ready
  :class:`NSF`.
* :mod:`~coursekit.flows.preprocess`: :class:`LogitTransform` (bounded pixels to the
  real line, RealNVP's preprocessing, with its log-determinant).
* :mod:`~coursekit.flows.cnf`: :class:`ContinuousFlowTransform` (an ODE solved by RK4, the
  instantaneous change of variables with an exact or Hutchinson trace) and the ready
  :class:`CNF`.
"""

from coursekit.flows.autoregressive import IAFTransform, MAFTransform
from coursekit.flows.base import Compose, Flow, InverseTransform, StandardNormal, Transform
from coursekit.flows.cnf import CNF, ContinuousFlowTransform
from coursekit.flows.coupling import (
    AdditiveCoupling,
    AffineCoupling,
    Permutation,
    RandomPermutation,
    Rescale,
    ReversePermutation,
)
from coursekit.flows.glow import ActNorm, LULinear
from coursekit.flows.models import IAF, MAF, NICE, Glow, Planar, RealNVP
from coursekit.flows.planar import PlanarTransform
from coursekit.flows.preprocess import LogitTransform
from coursekit.flows.spline import NSF, Spline, SplineCoupling, rational_quadratic_spline

__all__ = ["Compose", "Flow", "InverseTransform", "StandardNormal", "Transform"]
__all__ += ["ActNorm", "AdditiveCoupling", "AffineCoupling", "Glow", "IAF", "IAFTransform",
            "LULinear", "MAF", "MAFTransform", "NICE", "Permutation", "Planar",
            "PlanarTransform", "RandomPermutation", "RealNVP", "Rescale",
            "ReversePermutation"]
__all__ += ["CNF", "ContinuousFlowTransform", "LogitTransform", "NSF", "Spline", "SplineCoupling",
            "rational_quadratic_spline"]
