"""The App pattern and the toy density explorer, driven without a browser."""

import numpy as np
import pytest

from coursekit.data import toy2d, toy2d_entropy
from coursekit.widgets.toy_density import ToyDensityExplorer


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
