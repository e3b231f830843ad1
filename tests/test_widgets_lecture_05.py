"""Headless tests of lecture 05's apps: MADEExplorer and PixelSampler (Agg backend)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import itertools  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from coursekit.autoregressive import AutoregressiveModel, MaskedLinear  # noqa: E402
from coursekit.data import load_digits  # noqa: E402
from coursekit.widgets.made_explorer import MADEExplorer, make_ordering  # noqa: E402
from coursekit.widgets.pixel_sampler import PixelSampler, sampling_trajectory  # noqa: E402


class LowerTriangularLogistic(AutoregressiveModel):
    """Test double: logits = b + W x with W strictly lower-triangular (raster order)."""

    def __init__(self, features: int):
        super().__init__()
        self._init_autoregressive(features)
        self.linear = MaskedLinear(features, features)
        self.linear.set_mask(torch.ones(features, features).tril(-1))

    def conditional_params(self, x):
        return self.linear(x).unsqueeze(-1)


# -- MADEExplorer ------------------------------------------------------------------------
def test_worked_example_x2_x3_x1():
    app = MADEExplorer()
    state = app.update(**app.params())
    assert state["order"] == [1, 2, 0]
    # p(x2) p(x3 | x2) p(x1 | x2, x3), 0-based: x1 <- {x2, x3}, x2 <- {}, x3 <- {x2}
    assert state["parents"] == [[1, 2], [], [1]]
    assert "p(x2) p(x3 | x2) p(x1 | x2, x3)" in app.summary(state)


@pytest.mark.parametrize("ordering,degrees,layers,seed",
                         list(itertools.product(("natural", "reversed", "shifted", "random"),
                                           ("cycle", "random"), (1, 2), (0, 5))))
def test_outputs_reach_only_earlier_inputs(ordering, degrees, layers, seed):
    app = MADEExplorer()
    state = app.update(features=5, ordering=ordering, hidden=6, layers=layers,
                       degrees=degrees, seed=seed)
    order = state["order"]
    in_order = state["connectivity"][np.ix_(order, order)]
    assert np.all(np.triu(in_order) == 0)  # nothing at or after a variable's position
    if degrees == "cycle":  # every degree is present: every earlier input is reached
        assert np.all(np.tril(in_order, -1) == np.tril(np.ones_like(in_order), -1))


def test_mask_shapes_follow_the_layers():
    state = MADEExplorer().update(features=4, ordering="natural", hidden=7, layers=2,
                                  degrees="cycle", seed=0)
    assert [m.shape for m in state["masks"]] == [(7, 4), (7, 7), (4, 7)]
    assert [len(d) for d in state["degrees"]] == [4, 7, 7]


def test_orderings_are_permutations():
    assert make_ordering("shifted", 3) == [1, 2, 0]
    assert make_ordering("reversed", 4) == [3, 2, 1, 0]
    assert sorted(make_ordering("random", 6, seed=2)) == list(range(6))
    with pytest.raises(ValueError, match="ordering"):
        make_ordering("zigzag", 3)


def test_made_explorer_renders():
    fig = MADEExplorer().render(features=6, layers=2)
    assert len(fig.axes) == 2
    plt.close(fig)


# -- PixelSampler ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = LowerTriangularLogistic(64)
    x, _ = load_digits("train", binarize="static")
    opt = torch.optim.Adam(m.parameters(), lr=0.05)
    for _ in range(40):
        loss = -m.log_prob(x).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return m


@pytest.fixture(scope="module")
def x_test():
    return load_digits("test", binarize="static")[0][:10]


def test_trajectory_log_prob_is_the_models(model, x_test):
    traj = sampling_trajectory(model, x_test[3], n_observed=24, seed=1)
    sample = torch.as_tensor(traj["value"][np.argsort(traj["order"])],
                             dtype=torch.float32)[None]
    per_dim = model.log_prob_per_dim(sample)[0].detach().numpy()
    np.testing.assert_allclose(traj["log_prob"], per_dim[traj["order"]], atol=1e-5)
    np.testing.assert_array_equal(sample[0, :24].numpy(), x_test[3, :24].numpy())


def test_states_along_the_slider(model, x_test):
    app = PixelSampler(model, x_test, index=2, rows=3)
    full = app.update(index=2, rows=3, seed=4, step=64)
    assert not np.isnan(full["canvas"]).any() and full["next"] is None
    mid = app.update(index=2, rows=3, seed=4, step=30)
    assert np.isnan(mid["canvas"]).sum() == 34 and mid["next"] == 30
    np.testing.assert_array_equal(mid["canvas"].ravel()[:30], full["canvas"].ravel()[:30])
    # the next pixel's probability is the model's conditional given the canvas so far
    canvas = torch.as_tensor(np.nan_to_num(mid["canvas"].ravel()), dtype=torch.float32)[None]
    want = torch.sigmoid(model.conditional_params(canvas)[0, 30, 0]).item()
    assert mid["next_prob"] == pytest.approx(want, abs=1e-6)
    # the given rows are never hidden, whatever the slider says
    early = app.update(index=2, rows=3, seed=4, step=5)
    assert early["step"] == 24 and early["log_prob"] == 0.0
    other = app.update(index=2, rows=3, seed=5, step=64)["canvas"]  # another seed
    np.testing.assert_array_equal(other.ravel()[:24], full["canvas"].ravel()[:24])
    assert not np.array_equal(other, full["canvas"])


def test_buttons_move_the_step(model, x_test):
    app = PixelSampler(model, x_test, rows=2, step=20)
    app.widget()
    assert app.advance(1) == 21
    app.controls["restart"].click()
    assert app.controls["step"].value == 16
    app.advance(1000)
    assert app.controls["step"].value == 64


def test_summary_and_render(model, x_test):
    app = PixelSampler(model, x_test)
    state = app.update(index=0, rows=4, seed=0, step=40)
    assert "next pixel (row 5, col 0)" in app.summary(state)
    fig = app.render(step=40)
    assert len(fig.axes) == 4  # three panels and a colour bar
    plt.close(fig)


def test_pixel_sampler_bad_input(model, x_test):
    with pytest.raises(TypeError, match="model"):
        PixelSampler(torch.nn.Linear(2, 2), x_test)
    with pytest.raises(ValueError, match="x"):
        PixelSampler(model, x_test[:, :10])
    with pytest.raises(ValueError, match="step"):
        PixelSampler(model, x_test).update(step=65)
