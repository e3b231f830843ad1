"""Interactive apps shown in the lectures (ipywidgets + matplotlib).

Each app lives in its own module and follows :class:`coursekit.widgets.base.App`.
Import the one you need, e.g. ``from coursekit.widgets.toy_density import
ToyDensityExplorer``.
"""

from coursekit.widgets.base import App

__all__ = ["App"]
