"""The test-process side of the widget checks: find the coursekit app class
behind a ``.coursekit-<name>`` container, turn the control values read in the
browser into ``update(**params)`` arguments, and compute the summary the app's
own logic says the page should show.
"""

from __future__ import annotations

import importlib
import pkgutil

import coursekit.widgets
from coursekit.widgets.base import App


def app_classes() -> dict[str, type[App]]:
    """``App.name -> class`` for every app in ``coursekit.widgets``."""
    found: dict[str, type[App]] = {}
    for info in pkgutil.iter_modules(coursekit.widgets.__path__):
        module = importlib.import_module(f"coursekit.widgets.{info.name}")
        for obj in vars(module).values():
            if isinstance(obj, type) and issubclass(obj, App) and obj is not App:
                found[obj.name] = obj
    return found


def app_name(class_attr: str) -> str | None:
    """The app name in a container's ``class`` attribute (``coursekit-<name>``)."""
    for cls in class_attr.split():
        if cls.startswith("coursekit-") and cls != "coursekit-app":
            return cls[len("coursekit-"):]
    return None


def _kind(widget) -> str:
    import ipywidgets as w

    if isinstance(widget, (w.IntSlider, w.FloatSlider, w.SelectionSlider)):
        return "slider"
    if isinstance(widget, (w.IntText, w.BoundedIntText, w.FloatText, w.BoundedFloatText)):
        return "text"
    if isinstance(widget, w.Dropdown):
        return "dropdown"
    if isinstance(widget, w.Checkbox):
        return "checkbox"
    if isinstance(widget, w.Button):
        return "button"
    return f"unsupported:{type(widget).__name__}"


def _slider_value(widget, shown: dict):
    """The slider's value from what the browser shows (handle + readout),
    snapped to the slider's step grid."""
    import ipywidgets as w

    if isinstance(widget, w.SelectionSlider):  # the readout shows the option's label
        labels, values = list(widget._options_labels), list(widget._options_values)
        if shown["readout"] in labels:
            return values[labels.index(shown["readout"])]
        return values[int(round(shown["value"]))]  # the handle's position is the index
    raw = shown["value"]
    try:
        raw = float(shown["readout"])
    except (TypeError, ValueError):
        pass
    if isinstance(widget, w.IntSlider):
        return int(round(raw))
    lo, step = shown["min"], widget.step
    if not step:
        return raw
    return round(lo + round((raw - lo) / step) * step, 12)


def params_from_browser(app: App, shown: list[dict]) -> dict:
    """``update`` arguments for the control values ``shown`` in the browser
    (as read by ``jlab.Lab.controls``), matched to ``app.controls`` by kind
    and description. Raises ``AssertionError`` naming a control it cannot match."""
    import ipywidgets as ipw

    params = {}
    for name, widget in app.controls.items():
        kind = _kind(widget)
        if kind == "button":
            continue
        matches = [c for c in shown if c["kind"] == kind and c["label"] == widget.description]
        if len(matches) != 1:
            raise AssertionError(
                f"app {app.name!r}: control {name!r} ({kind}, description "
                f"{widget.description!r}) matches {len(matches)} controls in the page: {shown}")
        c = matches[0]
        if kind == "slider":
            params[name] = _slider_value(widget, c)
        elif kind == "dropdown":
            labels = list(widget._options_labels)
            values = list(widget._options_values)
            params[name] = values[labels.index(c["value"])]
        elif kind == "checkbox":
            params[name] = bool(c["value"])
        elif kind == "text":
            integer = isinstance(widget, (ipw.IntText, ipw.BoundedIntText))
            params[name] = int(c["value"]) if integer else float(c["value"])
        else:
            raise AssertionError(f"app {app.name!r}: control {name!r} is {kind}; "
                                 "teach tests/browser/apps.py to read it")
    return params


def instantiate(cls: type[App], kwargs: dict) -> App:
    positional = [kwargs[i] for i in sorted(k for k in kwargs if isinstance(k, int))]
    named = {k: v for k, v in kwargs.items() if isinstance(k, str)}
    return cls(*positional, **named)


def expected_summary(app: App, params: dict) -> str:
    """What the app's own logic says the summary shows for ``params``."""
    return app.summary(app.update(**params))
