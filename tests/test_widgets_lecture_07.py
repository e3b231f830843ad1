"""Headless tests of lecture 07's apps: OptimalDiscriminatorExplorer and GANTrainingStepper
(Agg backend, no browser)."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from scipy import integrate, special, stats  # noqa: E402

from coursekit.data.toy2d import mode_centres  # noqa: E402
from coursekit.metrics import mode_coverage  # noqa: E402
from coursekit.widgets.gan_training_stepper import GANTrainingStepper  # noqa: E402
from coursekit.widgets.optimal_discriminator_explorer import (  # noqa: E402
    OptimalDiscriminatorExplorer,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

LOG2, LOG4 = math.log(2.0), math.log(4.0)


# -- OptimalDiscriminatorExplorer --------------------------------------------------------
def _p_data(x, separation, data_std):
    """The app's data density, written independently with scipy.stats."""
    return 0.5 * (stats.norm.pdf(x, -separation / 2, data_std)
                  + stats.norm.pdf(x, separation / 2, data_std))


@pytest.mark.parametrize("params", [dict(mean=2.0, std=1.0, separation=3.0),
                                    dict(mean=-1.3, std=0.4, separation=5.0),
                                    dict(mean=0.5, std=2.5, separation=0.0)])
def test_d_star_is_p_over_p_plus_q(params):
    app = OptimalDiscriminatorExplorer(data_std=0.7)
    state = app.update(**params)
    x = state["x"]
    p = _p_data(x, params["separation"], 0.7)
    q = stats.norm.pdf(x, params["mean"], params["std"])
    np.testing.assert_allclose(state["p_data"], p, rtol=1e-10, atol=1e-300)
    np.testing.assert_allclose(state["p_model"], q, rtol=1e-10, atol=1e-300)
    both = (p + q) > 1e-12  # where p + q underflows the ratio is 0/0 for scipy
    np.testing.assert_allclose(state["d_star"][both], (p / (p + q))[both], rtol=1e-8)
    assert ((state["d_star"] >= 0) & (state["d_star"] <= 1)).all()
    # the value against scipy's adaptive quadrature of E_p log D* + E_q log(1 - D*)
    def integrand(t):
        pt = _p_data(t, params["separation"], 0.7)
        qt = stats.norm.pdf(t, params["mean"], params["std"])
        if pt + qt == 0:
            return 0.0
        return special.xlogy(pt, pt / (pt + qt)) + special.xlogy(qt, qt / (pt + qt))
    value = sum(integrate.quad(integrand, a, b, limit=200)[0]
                for a, b in zip(x[:-1:200], x[200::200]))
    assert state["value"] == pytest.approx(value, abs=1e-6)
    assert state["value"] == pytest.approx(2 * state["jsd"] - LOG4)


def test_equal_densities_give_half_and_minus_log_4():
    app = OptimalDiscriminatorExplorer(data_std=0.7)
    state = app.update(mean=0.0, std=0.7, separation=0.0)
    np.testing.assert_allclose(state["d_star"], 0.5, atol=1e-12)
    assert state["jsd"] == pytest.approx(0.0, abs=1e-12)
    assert state["value"] == pytest.approx(-LOG4, abs=1e-12)
    # any other generator does worse for itself
    assert app.update(mean=0.0, std=0.75, separation=0.0)["value"] > -LOG4 + 1e-4


def test_value_rises_to_zero_as_the_generator_moves_away():
    app = OptimalDiscriminatorExplorer(data_std=0.7)
    means = np.arange(0.0, 8.01, 0.5)
    states = [app.update(mean=m, std=0.7, separation=0.0) for m in means]
    values = np.array([s["value"] for s in states])
    assert (np.diff(values) > 0).all()
    assert values[0] == pytest.approx(-LOG4, abs=1e-12)
    assert -1e-6 < values[-1] <= 0.0  # 2 log 2 - log 4 = 0, reached only in the limit
    # far apart D* is 1 on the data's side and 0 on the generator's
    far = states[-1]
    assert far["d_star"][np.argmin(np.abs(far["x"]))] == pytest.approx(1.0, abs=1e-6)
    assert far["d_star"][np.argmin(np.abs(far["x"] - 8.0))] == pytest.approx(0.0, abs=1e-6)


def test_jsd_stays_in_zero_log_2():
    app = OptimalDiscriminatorExplorer()
    rng = np.random.default_rng(0)
    for _ in range(40):
        state = app.update(mean=rng.uniform(-8, 8), std=rng.uniform(0.1, 3.0),
                           separation=rng.uniform(0, 6))
        assert -1e-12 <= state["jsd"] <= LOG2 + 1e-12
        assert -LOG4 - 1e-12 <= state["value"] <= 1e-12


def test_optimal_discriminator_bad_values_name_the_argument():
    app = OptimalDiscriminatorExplorer()
    for kwargs, name in ((dict(std=0.0), "std"), (dict(std=-1.0), "std"),
                         (dict(separation=-0.5), "separation"),
                         (dict(mean=float("nan")), "mean"), (dict(mean=float("inf")), "mean")):
        with pytest.raises(ValueError, match=name):
            app.update(**kwargs)
    with pytest.raises(ValueError, match="std"):
        OptimalDiscriminatorExplorer(std=-1.0)
    with pytest.raises(ValueError, match="data_std"):
        OptimalDiscriminatorExplorer(data_std=0.0)


def test_optimal_discriminator_render_and_summary():
    app = OptimalDiscriminatorExplorer()
    fig = app.render(mean=1.0, std=0.5, separation=2.0)
    assert len(fig.axes) == 2
    ys = [ln.get_ydata() for ln in fig.axes[1].get_lines()]
    assert any(np.allclose(y, app.state["d_star"]) for y in ys)
    ys = [ln.get_ydata() for ln in fig.axes[0].get_lines()]
    assert any(np.allclose(y, app.state["p_model"]) for y in ys)
    plt.close(fig)
    text = app.summary(app.state)
    assert f"{app.state['jsd']:.4f}" in text and f"{app.state['value']:.4f}" in text
    box = app.widget()
    assert "coursekit-optimal-discriminator" in box._dom_classes
    assert set(app.controls) == {"mean", "std", "separation"}


# -- GANTrainingStepper ------------------------------------------------------------------
def _params(module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def _changed(before, module) -> bool:
    return any(not torch.equal(b, p) for b, p in zip(before, module.parameters()))


@pytest.mark.parametrize("loss", ["minimax", "nonsaturating", "wgan-gp"])
def test_critic_step_moves_only_the_discriminator_and_lowers_its_loss(loss):
    app = GANTrainingStepper("ring8", loss, lr=1e-3, seed=1)
    app.train(20)
    g_before, d_before = _params(app.generator), _params(app.discriminator)
    state = app.critic_step()
    assert _changed(d_before, app.discriminator)
    assert not _changed(g_before, app.generator)
    batch = app.last_critic_batch
    after = app.critic_objective(batch["real"], batch["fake"], batch["penalty_seed"]).item()
    assert after < batch["loss"]
    assert state["critic_steps"] == 21 and state["d_history"][-1, 1] == batch["loss"]


@pytest.mark.parametrize("loss", ["minimax", "nonsaturating", "wgan-gp"])
def test_generator_step_moves_only_the_generator(loss):
    app = GANTrainingStepper("ring8", loss, seed=2)
    app.train(10)
    g_before, d_before = _params(app.generator), _params(app.discriminator)
    samples_before = app.snapshot()["samples"]
    state = app.generator_step()
    assert _changed(g_before, app.generator)
    assert not _changed(d_before, app.discriminator)
    assert not np.array_equal(state["samples"], samples_before)
    assert all(p.grad is None for p in app.discriminator.parameters())


def test_training_moves_the_samples_to_the_ring():
    app = GANTrainingStepper("ring8", "nonsaturating", lr=1e-3, seed=0)

    def distance(state):
        return np.abs(np.linalg.norm(state["samples"], axis=1) - 1.0).mean()

    start = distance(app.snapshot())
    state = app.train(300)
    assert state["critic_steps"] == state["generator_steps"] == 300
    assert distance(state) < 0.6 * start


def test_wgan_gp_trains_the_critic_more_often():
    app = GANTrainingStepper("ring8", "wgan-gp")
    assert app.n_critic == 5
    state = app.train(50)
    assert (state["critic_steps"], state["generator_steps"]) == (50, 10)
    assert state["surface_label"].startswith("critic")
    # raw critic values, not probabilities: not confined to [0, 1]
    assert state["surface"].min() < 0 or state["surface"].max() > 1
    classic = GANTrainingStepper("ring8", "minimax", n_critic=2).train(10)
    assert (classic["critic_steps"], classic["generator_steps"]) == (10, 5)
    assert ((classic["surface"] >= 0) & (classic["surface"] <= 1)).all()


def test_loss_and_dataset_changes_reset_lr_changes_keep():
    app = GANTrainingStepper("ring8", "nonsaturating", lr=1e-3, seed=0)
    fresh = app.snapshot()["samples"]
    app.train(30)
    trained = app.snapshot()["samples"]
    kept = app.update(dataset="ring8", loss="nonsaturating", lr=1e-4)
    np.testing.assert_array_equal(kept["samples"], trained)
    assert kept["critic_steps"] == 30
    assert all(g["lr"] == 1e-4 for g in app.d_optimizer.param_groups + app.g_optimizer.param_groups)
    switched = app.update(dataset="ring8", loss="wgan-gp", lr=1e-4)
    assert switched["critic_steps"] == switched["generator_steps"] == 0
    np.testing.assert_array_equal(switched["samples"], fresh)  # the same seeded start
    app.train(5)
    other = app.update(dataset="grid25", loss="wgan-gp", lr=1e-4)
    assert other["critic_steps"] == 0 and other["k"] == 25
    app.train(5)
    assert app.reset()["critic_steps"] == 0


def test_coverage_numbers_are_mode_coverage_of_the_shown_samples():
    app = GANTrainingStepper("grid25", "minimax", seed=3)
    state = app.train(100)
    centres, sigma = mode_centres("grid25")
    direct = mode_coverage(torch.as_tensor(state["samples"]), centres, sigma)
    cov = state["coverage"]
    assert (cov.modes, cov.high_quality, cov.reverse_kl) == (
        direct.modes, direct.high_quality, direct.reverse_kl)
    assert torch.equal(cov.counts, direct.counts)
    assert len(state["samples"]) == 1000
    text = app.coverage_text(state)
    assert f"{direct.modes}/25" in text and f"{direct.high_quality:.1%}" in text
    assert f"{direct.reverse_kl:.3f}" in text
    fig = app.render()  # the same state again: the title carries the same numbers
    assert text in fig.axes[0].get_title()
    assert "lr 0.001" in fig.axes[2].get_title() and "100 critic" in fig.axes[2].get_title()
    plt.close(fig)
    assert app.summary(state) == ""  # button-driven numbers stay out of the summary


def test_same_seed_same_run_and_global_rng_untouched():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    a = GANTrainingStepper("8gaussians", "nonsaturating", seed=7).train(40)
    assert torch.equal(torch.rand(3), expected)  # building and training used own RNGs
    b = GANTrainingStepper("8gaussians", "nonsaturating", seed=7).train(40)
    np.testing.assert_array_equal(a["samples"], b["samples"])
    np.testing.assert_array_equal(a["surface"], b["surface"])
    c = GANTrainingStepper("8gaussians", "nonsaturating", seed=8).train(40)
    assert not np.array_equal(a["samples"], c["samples"])


def test_gan_stepper_render_and_buttons_headless():
    app = GANTrainingStepper("ring8", "minimax", resolution=20, n_eval=200)
    for loss in ("minimax", "wgan-gp"):
        fig = app.render(loss=loss)
        assert len(fig.axes) == 3  # the surface, its colour bar, the loss curves
        plt.close(fig)
    box = app.widget()
    assert "coursekit-gan-stepper" in box._dom_classes
    assert set(app.controls) == {"dataset", "loss", "lr", "critic", "generator", "train",
                                 "reset"}
    assert app.state["loss"] == "minimax"  # the widget follows its controls again
    app.controls["train"].click()
    assert app.state["critic_steps"] == app.state["generator_steps"] == 50
    app.controls["critic"].click()
    app.controls["generator"].click()
    assert (app.state["critic_steps"], app.state["generator_steps"]) == (51, 51)
    assert app._output.outputs[0]["data"]["image/png"]
    app.controls["lr"].value = 1e-4  # keeps the state
    assert app.state["critic_steps"] == 51
    app.controls["reset"].click()
    assert app.state["critic_steps"] == 0
    fig = app.render()
    assert fig.axes[2].get_legend() is None  # nothing trained yet, no curves to name
    plt.close(fig)
    plt.close("all")


def test_gan_stepper_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="dataset"):
        GANTrainingStepper("moons")
    with pytest.raises(ValueError, match="loss"):
        GANTrainingStepper(loss="wgan")
    with pytest.raises(ValueError, match="lr"):
        GANTrainingStepper(lr=0.5)
    app = GANTrainingStepper(resolution=4, n_eval=10)
    with pytest.raises(ValueError, match="lr"):
        app.update(lr=0.0)
    with pytest.raises(ValueError, match="n"):
        app.train(0)
    with pytest.raises(ValueError, match="n_critic"):
        GANTrainingStepper(n_critic=0)
