"""The pattern every interactive app in the course follows.

An app is a class with

* ``controls``: a dict ``name -> ipywidget`` (sliders, dropdowns, buttons), built
  in the constructor with the control factory :meth:`App.slider`,
  :meth:`App.choice`, :meth:`App.checkbox`, :meth:`App.int_text` and
  :meth:`App.button`, so every app's controls look and behave alike;
* ``update(**params) -> dict``: the app's logic, a plain method that turns the
  control values into the data the figure shows (tests call it directly);
* ``draw(state, fig)``: draws that data on a matplotlib figure;
* ``summary(state) -> str``: optional HTML with the numbers the app reports.

``show()`` lays out the controls above an output area and redraws on every
change; ``render(**params)`` draws one figure without any widget, which is
what headless tests and static documentation use.

The container carries the CSS classes ``coursekit-app`` and
``coursekit-<app name>`` so the browser tests can find it in JupyterLab; each
control carries ``coursekit-control`` and ``coursekit-control-<control name>``.
"""

from __future__ import annotations

import base64
import io
from typing import Any

import matplotlib.pyplot as plt
import numpy as np


def figure_output(fig, dpi: int = 80) -> dict:
    """A Jupyter ``display_data`` output holding ``fig`` as a PNG."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    width, height = fig.get_size_inches() * dpi
    return {
        "output_type": "display_data",
        "data": {
            "image/png": base64.b64encode(buffer.getvalue()).decode("ascii"),
            "text/plain": f"<Figure size {width:.0f}x{height:.0f}>",
        },
        "metadata": {},
    }


class App:
    """Base class of the course's interactive apps (see the module doc)."""

    name = "app"
    figsize = (8.0, 4.0)

    def __init__(self) -> None:
        self.controls: dict[str, Any] = {}
        self.state: dict | None = None
        self._output = None
        self._summary = None
        self._box = None

    # -- controls (the one factory every app builds its controls with) --------
    def _add_control(self, name: str, widget):
        """Register ``widget`` as ``controls[name]`` with the project's CSS classes."""
        if name in self.controls:
            raise ValueError(f"name: expected a new control name, got {name!r} (already used)")
        widget.add_class("coursekit-control")
        widget.add_class(f"coursekit-control-{name}")
        self.controls[name] = widget
        return widget

    def slider(self, name: str, min, max, step, value, *, description: str | None = None,
               continuous_update: bool = False):
        """Add a numeric slider ``controls[name]`` and return it.

        An ``IntSlider`` when ``step`` is an int, else a ``FloatSlider`` (the kind is
        fixed by the app's code, not by the value a user passes). ``description``
        (the label; default ``name``) is what the browser tests match controls by.
        With ``continuous_update=False`` the app redraws when the handle is
        released, not while it is dragged.
        """
        import ipywidgets as widgets

        integer = isinstance(step, (int, np.integer)) and not isinstance(step, bool)
        cls = widgets.IntSlider if integer else widgets.FloatSlider
        return self._add_control(name, cls(
            value=value, min=min, max=max, step=step, description=description or name,
            continuous_update=continuous_update))

    def choice(self, name: str, options, value, *, description: str | None = None,
               kind: str = "dropdown", continuous_update: bool = False):
        """Add a control choosing one of ``options`` as ``controls[name]`` and return it.

        ``kind``: ``"dropdown"`` (``Dropdown``) or ``"slider"`` (``SelectionSlider``,
        for ordered options such as sample sizes; ``continuous_update`` as in
        :meth:`slider`). No toggle buttons: the browser suite (tests/browser/jlab.py)
        drives these two kinds, and an app it cannot drive fails the lecture's Run All.
        """
        import ipywidgets as widgets

        options = list(options)
        common = dict(options=options, value=value, description=description or name)
        if kind == "dropdown":
            widget = widgets.Dropdown(**common)
        elif kind == "slider":
            widget = widgets.SelectionSlider(**common, continuous_update=continuous_update)
        else:
            raise ValueError(f"kind: expected one of ('dropdown', 'slider'), got {kind!r}")
        return self._add_control(name, widget)

    def checkbox(self, name: str, value: bool, *, description: str | None = None):
        """Add a ``Checkbox`` ``controls[name]`` and return it."""
        import ipywidgets as widgets

        return self._add_control(name, widgets.Checkbox(value=value,
                                                        description=description or name))

    def int_text(self, name: str, value: int, min: int, max: int, *,
              description: str | None = None):
        """Add a ``BoundedIntText`` ``controls[name]`` (an index typed in) and return it."""
        import ipywidgets as widgets

        return self._add_control(name, widgets.BoundedIntText(
            value=value, min=min, max=max, description=description or name))

    def button(self, name: str, description: str, on_click):
        """Add a ``Button`` ``controls[name]`` calling ``on_click()`` when clicked.

        Buttons carry no value: :meth:`params` leaves them out and they trigger no
        redraw themselves (``on_click`` usually moves another control, which does).
        """
        import ipywidgets as widgets

        widget = widgets.Button(description=description)
        widget.on_click(lambda _: on_click())
        return self._add_control(name, widget)

    def _click(self, action) -> None:
        """What a button does: ``action()`` (a plain method that changes the app's
        state), then a redraw if the app is shown."""
        action()
        if self._box is not None:
            self.refresh()

    # -- logic (override) -------------------------------------------------
    def update(self, **params) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    def draw(self, state: dict, fig) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def summary(self, state: dict) -> str:
        return ""

    # -- plumbing ----------------------------------------------------------
    def params(self) -> dict:
        """Current control values (buttons, which carry no value, are left out)."""
        return {k: w.value for k, w in self.controls.items() if hasattr(w, "value")}

    def render(self, **params):
        """Run ``update`` with the current control values overridden by
        ``params`` and draw a fresh figure; returns the figure (not shown)."""
        values = {**self.params(), **params}
        self.state = self.update(**values)
        fig = plt.figure(figsize=self.figsize)
        self.draw(self.state, fig)
        return fig

    def refresh(self, *_):
        """Recompute from the controls and redraw the output area.

        The figure goes into the ``Output`` widget as one PNG display bundle
        assigned to its ``outputs`` trait: a single state update, so the old
        picture is replaced without flicker. (Capturing ``display`` inside
        ``with output:`` instead relies on the kernel's message routing, which
        can leave headless executors such as nbclient waiting forever.)
        """
        fig = self.render()
        if self._output is not None:
            self._output.outputs = (figure_output(fig),)
        plt.close(fig)
        if self._summary is not None:
            self._summary.value = self.summary(self.state)

    def layout_controls(self):
        """The widget holding the controls (override for a custom layout)."""
        import ipywidgets as widgets

        return widgets.HBox(list(self.controls.values()),
                            layout=widgets.Layout(flex_flow="row wrap"))

    def widget(self):
        """Build (once) and return the app's ipywidgets container."""
        import ipywidgets as widgets

        if self._box is None:
            self._output = widgets.Output()
            self._summary = widgets.HTML()
            for w in self.controls.values():
                if isinstance(w, widgets.Button):
                    continue
                w.observe(self.refresh, names="value")
            self._box = widgets.VBox([self.layout_controls(), self._summary, self._output])
            self._box.add_class("coursekit-app")
            self._box.add_class(f"coursekit-{self.name}")
            self.refresh()
        return self._box

    def show(self) -> None:
        """Display the app in the notebook (one call per app).

        The display bundle holds the live widget and, as a fallback, a PNG of the
        figure it starts with: JupyterLab shows the widget (its renderer ranks
        first), while places without a kernel (nbconvert HTML, GitHub, a PDF)
        show the picture instead of the text "VBox(...)".

        Returns None, like ``plt.show()``: a cell ending in ``App(...).show()``
        would otherwise display the returned app a second time."""
        from IPython.display import display

        display(self.display_bundle(), raw=True)

    def display_bundle(self) -> dict:
        """The MIME bundle :meth:`show` displays: the widget view, the current figure
        as ``image/png`` and a ``text/plain`` line that says what this is."""
        box = self.widget()
        bundle = dict(box._repr_mimebundle_() or {})
        bundle["image/png"] = self._output.outputs[0]["data"]["image/png"]
        bundle["text/plain"] = (f"<{type(self).__name__}: an interactive app; run the "
                                "notebook in JupyterLab to use its controls>")
        return bundle

    def _ipython_display_(self):
        self.show()
