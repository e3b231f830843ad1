r"""Ready normalizing flows: each a :class:`~coursekit.flows.base.Flow` built from layers.

Every model is constructed as ``Name(features, ...)`` with defaults that work on 2-D toy
data, and has ``log_prob(x) -> (batch,)``, ``sample(n) -> (n, features)`` and
``transform`` (data to noise) with the base :math:`N(0, I)`:

.. math:: \log p(x) = \log N(f(x); 0, I) + \sum_k \log|\det J_{f_k}| .

==========  ================================================  ================  ===========
model       a layer (data to noise)                           density           sampling
==========  ================================================  ================  ===========
Planar      planar map (its noise-to-data direction)          root finds        closed form
NICE        additive couplings, then one diagonal rescaling   one pass          one pass
RealNVP     affine couplings, alternating masks               one pass          one pass
MAF         MADE affine blocks, reversed between blocks       one pass          d passes
IAF         inverted MADE blocks, reversed between blocks     d passes          one pass
Glow        ActNorm, LU-decomposed linear, affine coupling    one pass          one pass
==========  ================================================  ================  ===========
"""

from __future__ import annotations

from coursekit._validation import check_count
from coursekit.flows.autoregressive import IAFTransform, MAFTransform
from coursekit.flows.base import Compose, Flow
from coursekit.flows.coupling import (
    AdditiveCoupling,
    AffineCoupling,
    Rescale,
    ReversePermutation,
)
from coursekit.flows.glow import ActNorm, LULinear
from coursekit.flows.planar import PlanarTransform


def _alternating(i: int) -> str:
    return "even" if i % 2 == 0 else "odd"


def _reversed_between(block, features: int, layers: int, hidden) -> list:
    """``layers`` blocks ``block(features, hidden)`` with the features reversed between
    consecutive blocks, so each block conditions on what the previous one changed last."""
    transforms = []
    for i in range(layers):
        if i > 0:
            transforms.append(ReversePermutation(features))
        transforms.append(block(features, hidden))
    return transforms


class _Stacked(Flow):
    """A flow of ``layers`` layers; subclasses say how to build them."""

    def __init__(self, transforms, features: int, layers: int, hidden=None):
        super().__init__(Compose(*transforms), features)
        self.layers, self.hidden = layers, hidden

    def extra_repr(self) -> str:
        hidden = "" if self.hidden is None else f", hidden={tuple(self.hidden)}"
        return f"features={self.features}, layers={self.layers}{hidden}"


class Planar(_Stacked):
    r"""``layers`` planar maps (Rezende & Mohamed, 2015):
    :math:`x = z + \hat u_k \tanh(w_k^\top z + b_k)` for each layer, noise to data.

    Sampling is closed form; ``log_prob`` inverts every layer by a 1-D root find, slow
    but fine in 2-D. Planar flows are usually trained by reverse KL through
    ``sample_and_log_prob``. ``constrained`` as in
    :class:`~coursekit.flows.planar.PlanarTransform`.
    """

    def __init__(self, features: int, layers: int = 8, constrained: bool = True):
        layers = check_count(layers, "layers")
        features = check_count(features, "features")
        super().__init__([PlanarTransform(features, constrained) for _ in range(layers)],
                         features, layers)


class NICE(_Stacked):
    r"""NICE (Dinh et al., 2014): ``layers`` additive couplings with alternating masks,
    then a diagonal :class:`~coursekit.flows.coupling.Rescale`, the only layer that
    changes volume: :math:`\log|\det| = \sum_j s_j`, the same for every ``x``."""

    def __init__(self, features: int, layers: int = 4, hidden=(64, 64)):
        layers = check_count(layers, "layers")
        features = check_count(features, "features")
        transforms = [AdditiveCoupling(features, _alternating(i), hidden) for i in range(layers)]
        super().__init__(transforms + [Rescale(features)], features, layers, hidden)


class RealNVP(_Stacked):
    r"""RealNVP (Dinh et al., 2017): ``layers`` affine couplings whose masks alternate
    (even features, then odd ones), so each feature is changed every other layer; the
    composition makes every output depend on every input after two layers."""

    def __init__(self, features: int, layers: int = 8, hidden=(64, 64)):
        layers = check_count(layers, "layers")
        features = check_count(features, "features")
        transforms = [AffineCoupling(features, _alternating(i), hidden) for i in range(layers)]
        super().__init__(transforms, features, layers, hidden)


class MAF(_Stacked):
    r"""The masked autoregressive flow (Papamakarios et al., 2017): ``layers``
    :class:`~coursekit.flows.autoregressive.MAFTransform` blocks with the features
    reversed between blocks. The density is one pass per block; sampling ``features``."""

    def __init__(self, features: int, layers: int = 5, hidden=(64, 64)):
        layers = check_count(layers, "layers")
        features = check_count(features, "features")
        super().__init__(_reversed_between(MAFTransform, features, layers, hidden), features,
                         layers, hidden)


class IAF(_Stacked):
    r"""The inverse autoregressive flow (Kingma et al., 2016): ``layers``
    :class:`~coursekit.flows.autoregressive.IAFTransform` blocks with the features reversed
    between blocks. Sampling is one pass per block; the density ``features``."""

    def __init__(self, features: int, layers: int = 5, hidden=(64, 64)):
        layers = check_count(layers, "layers")
        features = check_count(features, "features")
        super().__init__(_reversed_between(IAFTransform, features, layers, hidden), features,
                         layers, hidden)


class Glow(_Stacked):
    r"""Glow (Kingma & Dhariwal, 2018) on vectors: ``layers`` steps of
    :class:`~coursekit.flows.glow.ActNorm`, :class:`~coursekit.flows.glow.LULinear` and an
    :class:`~coursekit.flows.coupling.AffineCoupling` (alternating masks). The ActNorm
    layers initialise themselves on the first batch ``log_prob`` sees."""

    def __init__(self, features: int, layers: int = 4, hidden=(64, 64)):
        layers = check_count(layers, "layers")
        features = check_count(features, "features")
        transforms = []
        for i in range(layers):
            transforms += [ActNorm(features), LULinear(features),
                           AffineCoupling(features, _alternating(i), hidden)]
        super().__init__(transforms, features, layers, hidden)
