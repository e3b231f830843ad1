"""The App pattern and the toy density explorer, driven without a browser."""

import matplotlib.pyplot as plt
import numpy as np
import pytest

from coursekit.data import toy2d, toy2d_entropy
from coursekit.widgets.base import App
from coursekit.widgets.toy_density_explorer import ToyDensityExplorer


def test_update_returns_the_samples_the_data_module_draws():
    app = ToyDensityExplorer()
    state = app.update(dataset="circles", n=300, seed=5, show_density=True)
    np.testing.assert_array_equal(state["samples"], toy2d("circles", 300, seed=5).numpy())
    assert state["entropy"] == pytest.approx(toy2d_entropy("circles"))
    assert abs(state["mc_entropy"] - state["entropy"]) < 5 * state["mc_stderr"]
    # the density grid integrates to ~1 over the extent
    x0, x1, y0, y1 = state["extent"]
    d = state["density"]
    cell = (x1 - x0) / (d.shape[1] - 1) * (y1 - y0) / (d.shape[0] - 1)
    assert d.sum() * cell == pytest.approx(1.0, abs=0.05)
    assert app.update(dataset="moons", n=50, seed=0, show_density=False)["density"] is None


def test_render_draws_samples_and_density():
    app = ToyDensityExplorer()
    fig = app.render(dataset="8gaussians", n=200, seed=1)
    ax = fig.axes[0]
    assert len(ax.images) == 1
    assert np.allclose(ax.collections[0].get_offsets(), toy2d("8gaussians", 200, seed=1).numpy())
    assert "8gaussians" in ax.get_title()
    assert "8gaussians" in app.summary(app.state)


def test_widget_reacts_to_control_changes():
    app = ToyDensityExplorer(n=100)
    box = app.widget()
    assert "coursekit-app" in box._dom_classes
    before = app.state["samples"].copy()
    app.controls["seed"].value = 7
    assert not np.array_equal(before, app.state["samples"])
    app.controls["dataset"].value = "rings"
    assert app.state["dataset"] == "rings"
    assert "rings" in app._summary.value


# ---------------------------------------------------------------------------------------
# the control factory


class _Bare(App):
    name = "bare"


def test_slider_kind_follows_the_step_and_keeps_every_setting():
    import ipywidgets as w

    app = _Bare()
    s = app.slider("k", 1, 10, 1, 4, description="K")
    f = app.slider("x", -5, 5, 0.1, 2, continuous_update=True)
    assert isinstance(s, w.IntSlider) and isinstance(f, w.FloatSlider)
    assert (s.min, s.max, s.step, s.value, s.description, s.continuous_update) == \
        (1, 10, 1, 4, "K", False)
    assert (f.min, f.max, f.step, f.value, f.description, f.continuous_update) == \
        (-5, 5, 0.1, 2.0, "x", True)
    assert list(app.controls) == ["k", "x"] and app.params() == {"k": 4, "x": 2.0}
    assert {"coursekit-control", "coursekit-control-k"} <= set(s._dom_classes)


def test_choice_kinds_checkbox_int_text_and_button():
    import ipywidgets as w

    app = _Bare()
    assert isinstance(app.choice("d", ("a", "b"), "b"), w.Dropdown)
    sel = app.choice("n", (1, 10, 100), 10, kind="slider", description="n")
    assert isinstance(sel, w.SelectionSlider) and sel.value == 10 and not sel.continuous_update
    with pytest.raises(ValueError, match="kind"):  # the browser suite cannot drive them
        app.choice("t", ["u", "v"], "u", kind="buttons")
    assert isinstance(app.checkbox("c", True), w.Checkbox)
    box = app.int_text("i", 3, 0, 9, description="index")
    assert isinstance(box, w.BoundedIntText) and (box.min, box.max, box.value) == (0, 9, 3)
    clicks = []
    app.button("go", "go ▶", lambda: clicks.append(1)).click()
    assert clicks == [1]
    assert "go" not in app.params()
    with pytest.raises(ValueError, match="^kind: expected"):
        app.choice("e", ("a",), "a", kind="radio")
    app.slider("k", 0, 1, 1, 0)
    with pytest.raises(ValueError, match="^name: expected a new control name"):
        app.slider("k", 0, 1, 1, 0)


def test_every_app_builds_its_controls_with_the_factory():
    from coursekit.widgets.bivariate_gaussian_explorer import BivariateGaussianExplorer
    from coursekit.widgets.elbo_gap_explorer import ELBOGapExplorer
    from coursekit.widgets.em_stepper import EMStepper
    from coursekit.widgets.estimator_variance_explorer import EstimatorVarianceExplorer
    from coursekit.widgets.kl_explorer import KLExplorer

    for app in (ToyDensityExplorer(), BivariateGaussianExplorer(), KLExplorer(), EMStepper(),
                ELBOGapExplorer(), EstimatorVarianceExplorer()):
        for name, widget in app.controls.items():
            assert {"coursekit-control", f"coursekit-control-{name}"} <= set(widget._dom_classes)


def test_show_displays_the_app_once_and_returns_none(monkeypatch):
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj, raw=False: shown.append((obj, raw)))
    app = ToyDensityExplorer()
    assert app.show() is None  # a cell ending in .show() displays nothing more
    assert len(shown) == 1
    bundle, raw = shown[0]
    view = bundle["application/vnd.jupyter.widget-view+json"]
    assert raw and view["model_id"] == app.widget().model_id  # the live widget


def test_the_display_bundle_carries_a_picture_for_places_without_a_kernel():
    """nbconvert, GitHub and PDFs cannot run widgets: they show the bundle's PNG, which is
    the figure the app starts with (the PNG render() draws), not "VBox(...)"."""
    import base64

    from coursekit.widgets.base import figure_output

    app = ToyDensityExplorer()
    bundle = app.display_bundle()
    png = base64.b64decode(bundle["image/png"])
    assert png.startswith(b"\x89PNG")
    fig = app.render()
    expected = figure_output(fig)["data"]["image/png"]
    plt.close(fig)
    assert bundle["image/png"] == expected  # same state, same pixels
    assert "VBox" not in bundle["text/plain"] and "ToyDensityExplorer" in bundle["text/plain"]
