"""Headless tests of lecture 04's LatentSpaceExplorer (Agg backend, a tiny VAE)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from coursekit.data import load_digits  # noqa: E402
from coursekit.vae import VAE, vae_loss  # noqa: E402
from coursekit.widgets.latent_space_explorer import LatentSpaceExplorer  # noqa: E402


@pytest.fixture(scope="module")
def app():
    torch.manual_seed(0)
    model = VAE(64, 2, hidden=(32,))
    x, y = load_digits("train", binarize="static")
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for i in range(30):  # a few steps: enough for the encodings to spread out
        loss = vae_loss(model, x[(i * 100) % 1100:(i * 100) % 1100 + 100])["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    xt, yt = load_digits("test", binarize="static")
    return LatentSpaceExplorer(model, xt[:60], yt[:60], extent=2.5, grid_size=7, steps=6)


def decode(model, z):
    with torch.no_grad():
        return torch.sigmoid(model.decode(torch.as_tensor(z, dtype=torch.float32)))


def test_decoded_image_is_the_decoder_at_the_slider_z(app):
    s = app.update(z1=0.7, z2=-1.3, index_a=3, index_b=10, t=0.25)
    np.testing.assert_allclose(s["z"], [0.7, -1.3], rtol=1e-6)
    expected = decode(app.model, [[0.7, -1.3]]).reshape(8, 8).numpy()
    np.testing.assert_allclose(s["image"], expected, atol=1e-6)


def test_interpolation_ends_decode_the_encoder_means(app):
    s = app.update(index_a=4, index_b=17, t=0.0)
    with torch.no_grad():
        means, _ = app.model.encode(app.x[[4, 17]])
    np.testing.assert_allclose(s["z_a"], means[0].numpy(), atol=1e-6)
    np.testing.assert_allclose(s["z_b"], means[1].numpy(), atol=1e-6)
    ends = decode(app.model, means).reshape(2, 8, 8).numpy()
    np.testing.assert_allclose(s["interpolation"][0], ends[0], atol=1e-6)
    np.testing.assert_allclose(s["interpolation"][-1], ends[1], atol=1e-6)
    np.testing.assert_allclose(s["image_t"], ends[0], atol=1e-6)  # t = 0 is digit a
    # the path is a straight line in z with equal steps
    steps = np.diff(s["path"], axis=0)
    np.testing.assert_allclose(steps, np.broadcast_to(steps[0], steps.shape), atol=1e-5)
    s1 = app.update(index_a=4, index_b=17, t=1.0)
    np.testing.assert_allclose(s1["image_t"], ends[1], atol=1e-6)


def test_latent_grid_shape_and_contents(app):
    s = app.update()
    assert s["grid"].shape == (7, 7, 8, 8)
    assert s["grid_z"].shape == (7, 7, 2)
    # row 0 is the top of the plane (largest z2), column 0 the left (smallest z1)
    np.testing.assert_allclose(s["grid_z"][0, 0], [-2.5, 2.5], atol=1e-6)
    np.testing.assert_allclose(s["grid_z"][-1, -1], [2.5, -2.5], atol=1e-6)
    r, c = 2, 5
    expected = decode(app.model, s["grid_z"][r, c][None]).reshape(8, 8).numpy()
    np.testing.assert_allclose(s["grid"][r, c], expected, atol=1e-6)
    assert s["encodings"].shape == (60, 2)
    with torch.no_grad():
        np.testing.assert_allclose(s["encodings"], app.model.encode(app.x)[0].numpy(),
                                   atol=1e-6)


def test_changing_a_control_changes_the_state(app):
    base = app.update(z1=0.0, z2=0.0, index_a=0, index_b=1, t=0.5)
    moved = app.update(z1=2.0, z2=0.0, index_a=0, index_b=1, t=0.5)
    assert not np.allclose(base["image"], moved["image"])
    other = app.update(z1=0.0, z2=0.0, index_a=0, index_b=5, t=0.5)
    assert not np.allclose(base["z_b"], other["z_b"])
    assert not np.allclose(base["interpolation"], other["interpolation"])
    later = app.update(z1=0.0, z2=0.0, index_a=0, index_b=1, t=0.9)
    assert not np.allclose(base["z_t"], later["z_t"])
    # through the widgets, as a user would do it
    app.controls["z2"].value = -1.0
    assert app.params()["z2"] == -1.0
    fig = app.render()
    assert app.state["z"][1] == pytest.approx(-1.0)
    assert len(fig.axes) >= 4
    plt.close(fig)


def test_render_and_summary(app):
    fig = app.render(z1=1.0, z2=0.5, index_a=2, index_b=9, t=0.3)
    assert "digit a: #2" in app.summary(app.state).lower()
    plt.close(fig)


def test_bad_input():
    torch.manual_seed(0)
    x, y = load_digits("test", binarize="static")
    with pytest.raises(ValueError, match="model"):
        LatentSpaceExplorer(VAE(64, 3, hidden=8), x, y)
    with pytest.raises(ValueError, match="model"):
        LatentSpaceExplorer(VAE(64, 2, hidden=8, likelihood="gaussian"), x, y)
    model = VAE(64, 2, hidden=8)
    with pytest.raises(ValueError, match="y"):
        LatentSpaceExplorer(model, x, y[:5])
    with pytest.raises(ValueError, match="index_b"):
        LatentSpaceExplorer(model, x, y, index_b=len(y))
    app = LatentSpaceExplorer(model, x[:10], y[:10], grid_size=3)
    with pytest.raises(ValueError, match="index_a"):
        app.update(index_a=-1)
    with pytest.raises(ValueError, match="t"):
        app.update(t=1.5)
