"""Interactive apps shown in the lectures (ipywidgets + matplotlib).

Each app lives in its own module, named after its class, and follows
:class:`coursekit.widgets.base.App`; the maths it shows comes from the topic
modules (:mod:`coursekit.probability`, :mod:`coursekit.latent`, :mod:`coursekit.mixture`).
Import the one you need, e.g. ``from coursekit.widgets.toy_density_explorer import
ToyDensityExplorer``.
"""

from coursekit.widgets.base import App

__all__ = ["App"]
