"""The course's widgets in real JupyterLab: they render, every control works,
and the page shows what the app's own logic computes for the new values.

The lectures' apps are driven by test_run_all.py right after it runs each
lecture (drive.exercise_every_app), so that no lecture runs twice in the
browser; this module drives the fixture notebooks'."""

from __future__ import annotations

import base64
import io

import catalog
import drive
import numpy as np
import pytest

pytestmark = pytest.mark.browser

TOY = catalog.FIXTURES / "toy_density.ipynb"


def _decode_png(src: str) -> np.ndarray:
    import matplotlib.image as mpimg

    assert src and src.startswith("data:image/png;base64,"), f"not an inline PNG: {src[:60]!r}"
    return mpimg.imread(io.BytesIO(base64.b64decode(src.split(",", 1)[1])), format="png")


def _blue_fraction(img: np.ndarray) -> float:
    """Share of pixels coloured by the 'Blues' density image (blue well above red)."""
    rgb = img[..., :3]
    return float(((rgb[..., 2] - rgb[..., 0]) > 0.25).mean())


def _open_and_run(lab, nb):
    lab.open(catalog.served_path(nb))
    lab.run_all()
    lab.assert_no_errors()


def test_toy_density_explorer(lab):
    """The fixture notebook's ToyDensityExplorer, control by control, against
    ToyDensityExplorer.update()/summary() computed here."""
    from coursekit.widgets.toy_density_explorer import ToyDensityExplorer

    _open_and_run(lab, TOY)
    app = lab.apps()
    assert app.count() == 1, f"expected one coursekit app, found {app.count()}"
    app = lab.focus = app.first
    assert "coursekit-toy-density" in app.get_attribute("class").split()
    controls = drive.check_rendered(lab, app)
    assert [(c["kind"], c["label"]) for c in controls] == [
        ("dropdown", "data set"), ("slider", "samples"), ("slider", "seed"),
        ("checkbox", "show true density")]

    ref = ToyDensityExplorer()  # the notebook uses the same class with these values:
    params = {"dataset": "moons", "n": 500, "seed": 3, "show_density": True}

    def expect(what: str, changed_figure: bool = True):
        want = lab.normalise_html(ref.summary(ref.update(**params)))
        lab.wait_for(lambda: lab.summary_html(app) == want,
                     lambda: f"summary {want!r} after {what} (shows {lab.summary_html(app)!r})")
        if changed_figure:
            lab.wait_for(lambda: lab.img_src(app) != before, f"the figure to change after {what}")
        lab.wait_kernel_idle()
        assert lab.summary_html(app) == want  # still, once the kernel is idle
        lab.assert_no_errors()

    before = None
    expect("running the notebook", changed_figure=False)
    img = _decode_png(lab.img_src(app))
    assert _blue_fraction(img) > 0.02, "the true density (blue) is not drawn"

    before = lab.img_src(app)
    lab.control_locator(app, 0).locator("select").select_option("8gaussians")
    params["dataset"] = "8gaussians"
    expect("choosing 8gaussians")
    assert "<b>8gaussians</b>" in lab.summary_html(app)

    for index, name, step in ((1, "n", 50), (2, "seed", 1)):
        before = lab.img_src(app)
        handle = lab.control_locator(app, index).locator(".noUi-handle")
        handle.focus()
        handle.press("ArrowRight")
        params[name] += step
        expect(f"ArrowRight on the {name} slider")
        readout = lab.control_locator(app, index).locator(".widget-readout").inner_text()
        assert readout.strip() == str(params[name])
    assert f"these {params['n']} samples" in lab.summary_html(app)

    before = lab.img_src(app)
    blue_before = _blue_fraction(_decode_png(before))
    lab.control_locator(app, 3).locator("input[type=checkbox]").click()
    params["show_density"] = False
    expect("unticking 'show true density'")
    blue_after = _blue_fraction(_decode_png(lab.img_src(app)))
    assert blue_before > 0.02 and blue_after < 0.2 * blue_before, (
        f"blue (density) pixels: {blue_before:.3f} with the density, {blue_after:.3f} without")

    lab.assert_no_console_errors()


def _fixture_widget_notebooks():
    """Widget notebooks that test_run_all.py does not already drive (it exercises
    every app of each lecture right after running it, so each runs once)."""
    covered = set(catalog.run_all_notebooks())
    return [nb for nb in catalog.widget_notebooks() if nb not in covered]


@pytest.mark.parametrize("nb", _fixture_widget_notebooks(),
                         ids=[catalog.served_path(nb) for nb in _fixture_widget_notebooks()])
def test_every_control_of_every_app(lab, nb):
    _open_and_run(lab, nb)
    drive.exercise_every_app(lab, nb)
