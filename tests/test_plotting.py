"""Plot helpers draw what they are given."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from coursekit.plotting import density_grid, image_grid, plot_density, plot_history, plot_samples
from coursekit.train import History


def test_density_grid_orientation_and_values():
    def log_prob(pts):  # a density that depends on x only: log p = -x^2
        return -(pts[:, 0] ** 2)

    X, Y, logp = density_grid(log_prob, (-1, 1, 0, 2), resolution=5)
    assert X.shape == Y.shape == logp.shape == (5, 5)
    assert np.allclose(X[0], np.linspace(-1, 1, 5)) and np.allclose(Y[:, 0], np.linspace(0, 2, 5))
    assert np.allclose(logp, -(X**2))


def test_plot_density_and_samples_draw_on_the_axes():
    fig, ax = plt.subplots()
    plot_density(lambda p: -0.5 * (p**2).sum(1), ax=ax, kind="contour")
    assert ax.collections, "contours were drawn"
    x = torch.randn(50, 2)
    plot_samples(x, ax=ax, log_prob=lambda p: -0.5 * (p**2).sum(1))
    offsets = ax.collections[-1].get_offsets()
    assert np.allclose(offsets, x.numpy())
    plt.close(fig)


def test_image_grid_places_each_image():
    imgs = torch.arange(3 * 64, dtype=torch.float32).reshape(3, 64) / 191.0
    fig, ax = plt.subplots()
    image_grid(imgs, nrow=2, ax=ax)
    canvas = ax.images[0].get_array()
    assert canvas.shape == (2 * 9 + 1, 2 * 9 + 1)
    np.testing.assert_allclose(canvas[1:9, 10:18], imgs[1].reshape(8, 8).numpy())
    fig2, ax2 = plt.subplots()
    image_grid(imgs[2], ax=ax2)
    np.testing.assert_allclose(ax2.images[0].get_array()[1:9, 1:9], imgs[2].reshape(8, 8).numpy())
    plt.close(fig)
    plt.close(fig2)


def test_image_grid_gaps_stand_out_from_a_white_background():
    """Digits drawn with gray_r have a white background: the gaps between tiles must
    not be white too, or neighbouring digits run together."""
    from matplotlib.colors import to_rgba

    fig, ax = plt.subplots()
    image_grid(torch.zeros(4, 64), nrow=2, ax=ax)  # four blank (white) tiles
    image = ax.images[0]
    rgba = image.to_rgba(image.get_array())  # NaN gaps get the colormap's "bad" colour
    tile, gap = rgba[1, 1], rgba[0, 0]
    np.testing.assert_allclose(tile, to_rgba("white"))
    assert np.abs(tile[:3] - gap[:3]).max() > 0.1, (tile, gap)
    np.testing.assert_allclose(rgba[9, 5], gap)  # the row between the tiles
    plt.close(fig)


def test_plot_history_draws_train_and_val():
    hist = History(train={"loss": [3.0, 2.0, 1.0, 0.5]}, val={"loss": [1.5, 0.6]})
    fig, ax = plt.subplots()
    plot_history(hist, ax=ax)
    labels = [line.get_label() for line in ax.lines]
    assert "train loss" in labels and "val loss" in labels
    val_line = ax.lines[labels.index("val loss")]
    assert list(val_line.get_xdata()) == [2.0, 4.0]
    plt.close(fig)


def test_bad_input():
    with pytest.raises(ValueError, match="extent"):
        density_grid(lambda p: p[:, 0], (1, 0, 0, 1))
    with pytest.raises(ValueError, match=r"x: expected samples of shape \(n, 2\)"):
        plot_samples(torch.zeros(5, 3))
    with pytest.raises(ValueError, match="images"):
        image_grid(torch.zeros(2, 10))
    with pytest.raises(ValueError, match="keys"):
        plot_history(History(train={"loss": [1.0]}), keys=("kl",))
