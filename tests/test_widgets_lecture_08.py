"""Headless tests of lecture 08's apps: LangevinExplorer and ContrastiveDivergenceStepper
(Agg backend, no browser)."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from scipy import stats  # noqa: E402
from scipy.spatial.distance import cdist  # noqa: E402

from coursekit.data.toy2d import get_toy2d, mode_centres  # noqa: E402
from coursekit.ebm import EnergyMLP, mala_sample  # noqa: E402
from coursekit.widgets.contrastive_divergence_stepper import (  # noqa: E402
    CHAINS,
    FAR_DENSITY,
    ContrastiveDivergenceStepper,
)
from coursekit.widgets.contrastive_divergence_stepper import DATASETS as CD_DATASETS  # noqa: E402
from coursekit.widgets.langevin_explorer import (  # noqa: E402
    DATASETS,
    SAMPLERS,
    STARTS,
    STEP_SIZES,
    LangevinExplorer,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# -- LangevinExplorer ---------------------------------------------------------------------
def _two_mode_log_p(x, half):
    """The two-mode landscapes' log-density, written independently with scipy.stats."""
    p = (0.3 * stats.multivariate_normal.pdf(x, [-half, 0.0], 0.25 * np.eye(2))
         + 0.7 * stats.multivariate_normal.pdf(x, [half, 0.0], 0.25 * np.eye(2)))
    return np.log(p)


def _log_p(dataset, x):
    if dataset == "8gaussians":
        return get_toy2d("8gaussians").log_prob(torch.as_tensor(x, dtype=torch.float64)).numpy()
    return _two_mode_log_p(x, {"two modes (close)": 0.8, "two modes (far)": 2.0}[dataset])


def _centres_weights(dataset):
    if dataset == "8gaussians":
        return mode_centres("8gaussians")[0].numpy(), np.full(8, 1 / 8), 0.2
    half = {"two modes (close)": 0.8, "two modes (far)": 2.0}[dataset]
    return np.array([[-half, 0.0], [half, 0.0]]), np.array([0.3, 0.7]), 0.5


def _small(**kwargs):
    return LangevinExplorer(n_particles=200, n_ref=400, resolution=30, **kwargs)


@pytest.mark.parametrize("dataset", DATASETS)
def test_energy_is_minus_log_p_and_its_gradient(dataset):
    app = _small(dataset=dataset)
    energy = app.energy_fn(dataset)
    x = torch.randn(300, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 2
    np.testing.assert_allclose(energy(x).numpy(), -_log_p(dataset, x.numpy()), rtol=1e-10,
                               atol=1e-10)
    xg = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(energy(xg).sum(), xg)
    eps = 1e-6  # central differences of the independent log-density
    for j in range(2):
        shift = np.zeros(2)
        shift[j] = eps
        fd = -(_log_p(dataset, x.numpy() + shift) - _log_p(dataset, x.numpy() - shift)) / (2 * eps)
        np.testing.assert_allclose(grad[:, j].numpy(), fd, rtol=1e-5, atol=1e-5)
    # the figure's grid is the same energy
    state = app.update(dataset=dataset, n_steps=0)
    gx, gy = np.meshgrid(state["xs"], state["ys"])
    grid = -_log_p(dataset, np.stack([gx.ravel(), gy.ravel()], 1)).reshape(gx.shape)
    np.testing.assert_allclose(state["energy"], grid, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("dataset", ["8gaussians", "two modes (far)"])
def test_noise_zero_is_gradient_descent_to_the_modes(dataset):
    app = _small(n_paths=200)
    state = app.update(dataset=dataset, step_size=0.02, n_steps=250, noise=0.0)
    energies = np.stack([-_log_p(dataset, p) for p in state["paths"]])  # (steps + 1, n)
    assert (np.diff(energies, axis=0) <= 1e-9).all()  # every particle goes downhill
    centres, _, _ = _centres_weights(dataset)
    near = cdist(state["particles"], centres).min(1)
    assert (near < 1e-3).mean() >= 0.99  # collapsed onto the modes (saddles aside)
    assert state["mean_log_p"] > state["exact_mean_log_p"] + 0.5  # too likely: no spread
    assert state["acceptance"] is None
    mala = app.update(dataset=dataset, step_size=0.02, n_steps=250, noise=0.0, sampler="MALA")
    np.testing.assert_array_equal(mala["particles"], state["particles"])


@pytest.mark.parametrize("params", [
    dict(dataset="8gaussians", start="uniform", step_size=0.05, n_steps=100),
    dict(dataset="two modes (far)", start="one mode", step_size=0.02, n_steps=150,
         sampler="MALA"),
    dict(dataset="two modes (close)", start="uniform", step_size=0.1, n_steps=60, noise=0.5),
])
def test_explorer_numbers_recomputed_from_the_state(params):
    app = _small()
    state = app.update(**params)
    x, x0 = state["particles"], state["start"]
    np.testing.assert_array_equal(state["paths"][-1], x[: app.n_paths])
    np.testing.assert_array_equal(state["paths"][0], x0[: app.n_paths])
    log_p = _log_p(params["dataset"], x)
    np.testing.assert_allclose(state["log_p"], log_p, rtol=1e-9, atol=1e-9)
    assert state["mean_log_p"] == pytest.approx(log_p.mean(), rel=1e-9)
    centres, w, sigma = _centres_weights(params["dataset"])

    def region(points):
        return np.argmax(np.log(w) - 0.5 * cdist(points, centres, "sqeuclidean") / sigma**2, 1)

    mode = region(x)
    np.testing.assert_array_equal(state["mode"], mode)
    occupancy = np.bincount(mode, minlength=len(w)) / len(x)
    np.testing.assert_allclose(state["occupancy"], occupancy)
    assert state["modes_visited"] == (occupancy > 0).sum()
    assert state["crossed"] == pytest.approx((mode != region(x0)).mean())
    pos = occupancy > 0
    kl = float((occupancy[pos] * np.log(occupancy[pos] / w[pos])).sum())
    assert state["occupancy_kl"] == pytest.approx(kl, abs=1e-12)
    text = app.summary(state)
    for number in (f"{state['mean_log_p']:.3f}", f"{state['exact_mean_log_p']:.3f}",
                   f"{kl:.3f}", f"{state['energy_distance']:.4f}",
                   f"{state['modes_visited']}/{len(w)}", f"{state['crossed']:.1%}"):
        assert number in text
    if params.get("sampler") == "MALA":
        assert 0.0 <= state["acceptance"] <= 1.0 and f"{state['acceptance']:.3f}" in text
    else:
        assert state["acceptance"] is None


def test_energy_distance_against_scipy():
    from coursekit.widgets.langevin_explorer import energy_distance

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(50, 2)), rng.normal(size=(70, 2)) + [0.5, 0.0]
    dxy, dxx, dyy = cdist(x, y), cdist(x, x), cdist(y, y)
    want = 2 * dxy.mean() - dxx.sum() / (50 * 49) - dyy.sum() / (70 * 69)
    assert energy_distance(x, y) == pytest.approx(want, rel=1e-12)
    assert energy_distance(x, y) > 0.01
    assert abs(energy_distance(x, x[::-1].copy())) < 0.1  # one law: near 0


def test_mala_is_the_library_sampler_and_its_acceptance_falls_with_the_step():
    app = _small()
    for noise in (1.0, 0.5):
        state = app.update(step_size=0.05, n_steps=40, noise=noise, sampler="MALA")
        x0 = app.starting_points("8gaussians", "uniform")
        energy = app.energy_fn("8gaussians")

        def tempered(x, energy=energy, noise=noise):
            return energy(x) / noise**2

        final, rate = mala_sample(tempered, x0, 40, 0.05 * noise**2,
                                  generator=torch.Generator().manual_seed(app.seed + 1))
        np.testing.assert_allclose(state["particles"], final.numpy(), rtol=0, atol=1e-12)
        assert state["acceptance"] == pytest.approx(float(rate.mean()))
    rates = [app.update(step_size=h, n_steps=30, sampler="MALA")["acceptance"]
             for h in (0.005, 0.05, 0.5)]
    assert 1.0 >= rates[0] > rates[1] > rates[2] >= 0.0
    assert rates[0] > 0.9 and rates[2] < 0.1


def test_large_ula_steps_are_biased_and_mala_corrects_them():
    app = _small()
    small = app.update(step_size=0.005, n_steps=300)
    biased = app.update(step_size=0.05, n_steps=200)
    unstable = app.update(step_size=0.2, n_steps=50)
    corrected = app.update(step_size=0.05, n_steps=200, sampler="MALA")
    # ULA's stationary law spreads wider than p as h grows: too unlikely under p
    assert biased["mean_log_p"] < small["mean_log_p"] - 0.8
    assert abs(corrected["mean_log_p"] - corrected["exact_mean_log_p"]) < 0.3
    assert unstable["energy_distance"] > 10 * small["energy_distance_floor"]
    assert unstable["energy_distance"] > 100 * max(small["energy_distance"], 1e-3)
    assert np.isfinite(unstable["particles"]).all()  # clipped to a box, not overflowed


def test_chains_do_not_cross_between_separated_modes():
    app = _small()
    far = app.update(dataset="two modes (far)", start="one mode", step_size=0.05,
                     n_steps=200, sampler="MALA")
    close = app.update(dataset="two modes (close)", start="one mode", step_size=0.05,
                       n_steps=200, sampler="MALA")
    assert (far["start_mode"] == 0).mean() > 0.95
    assert far["crossed"] < 0.05 and far["occupancy_kl"] > 1.0  # stuck in the left mode
    assert close["crossed"] > 0.4 and close["occupancy_kl"] < 0.05  # mixes to 0.3 / 0.7


def test_explorer_is_a_pure_seeded_function_of_its_controls():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    params = dict(dataset="two modes (close)", step_size=0.02, n_steps=50, sampler="MALA")
    a = _small().update(**params)
    assert torch.equal(torch.rand(3), expected)  # own generators only
    app = _small()
    app.update(dataset="8gaussians", n_steps=30)
    b = app.update(**params)  # the earlier call leaves no trace
    for key in ("particles", "start", "paths", "energy", "log_p"):
        np.testing.assert_array_equal(a[key], b[key])
    assert app.summary(a) == app.summary(b)
    c = _small(seed=1).update(**params)
    assert not np.array_equal(a["particles"], c["particles"])


def test_zero_steps_leave_the_particles_at_the_start():
    app = _small()
    for sampler in SAMPLERS:
        state = app.update(n_steps=0, sampler=sampler, start="one mode")
        np.testing.assert_array_equal(state["particles"], state["start"])
        assert state["paths"].shape == (1, app.n_paths, 2)
        assert state["acceptance"] is None and "—" in app.summary(state)


def test_explorer_render_and_widget_headless():
    app = _small()
    for i, dataset in enumerate(DATASETS):  # every value of every dropdown at least once
        fig = app.render(dataset=dataset, start=STARTS[i % 2], sampler=SAMPLERS[i % 2],
                         noise=0.0 if i == 2 else 1.0, n_steps=20)
        assert len(fig.axes) == 3  # landscape, its colour bar, mode shares
        plt.close(fig)
    box = app.widget()
    assert "coursekit-langevin-explorer" in box._dom_classes
    assert set(app.controls) == {"dataset", "start", "step_size", "n_steps", "noise", "sampler"}
    assert list(app.controls["step_size"].options) == list(STEP_SIZES)
    app.controls["sampler"].value = "MALA"
    assert app.state["sampler"] == "MALA" and app._output.outputs[0]["data"]["image/png"]
    assert app._summary.value == app.summary(_small().update(**app.params()))
    plt.close("all")


def test_explorer_bad_input_names_the_argument():
    for kwargs, name in ((dict(dataset="moons"), "dataset"), (dict(start="box"), "start"),
                         (dict(sampler="HMC"), "sampler"), (dict(step_size=0.03), "step_size"),
                         (dict(n_steps=501), "n_steps"), (dict(noise=-0.1), "noise"),
                         (dict(noise=1.5), "noise"),
                         (dict(n_particles=1), "n_particles"), (dict(n_paths=-1), "n_paths"),
                         (dict(n_particles=10, n_paths=20), "n_paths"),
                         (dict(seed=-1), "seed")):
        with pytest.raises(ValueError, match=name):
            LangevinExplorer(**kwargs)
    app = _small()
    for kwargs, name in ((dict(step_size=0.0), "step_size"), (dict(n_steps=-1), "n_steps"),
                         (dict(noise=float("nan")), "noise"), (dict(dataset="ring8"), "dataset")):
        with pytest.raises(ValueError, match=name):
            app.update(**kwargs)


# -- ContrastiveDivergenceStepper ---------------------------------------------------------
def _cd(dataset="8gaussians", chains="CD-1", **kwargs):
    kwargs = {"n_data": 500, "n_test": 300, "resolution": 40, "z_resolution": 80, **kwargs}
    return ContrastiveDivergenceStepper(dataset, chains, **kwargs)


def _params(module):
    return [p.detach().clone() for name, p in module.named_parameters() if name != "log_z"]


def _hand_energy(params, x):
    """The EnergyMLP forward pass written out: Linear, SiLU, Linear, SiLU, Linear."""
    w1, b1, w2, b2, w3, b3 = params
    h = torch.nn.functional.silu(x @ w1.T + b1)
    h = torch.nn.functional.silu(h @ w2.T + b2)
    return (h @ w3.T + b3).squeeze(-1)


@pytest.mark.parametrize("chains", CHAINS)
def test_updates_are_hand_written_adam_steps_on_the_cd_loss(chains):
    app = _cd(chains=chains, lr=1e-2, l2=0.1)
    params = [p.clone().requires_grad_(True) for p in _params(app.model)]
    m = [torch.zeros_like(p) for p in params]
    v = [torch.zeros_like(p) for p in params]
    b1, b2, eps, lr = 0.9, 0.999, 1e-8, 1e-2
    for t in (1, 2, 3):
        app.step()
        batch = app.last_batch
        ed, es = _hand_energy(params, batch["data"]), _hand_energy(params, batch["samples"])
        loss = ed.mean() - es.mean() + 0.1 * ((ed ** 2).mean() + (es ** 2).mean())
        assert loss.item() == pytest.approx(batch["loss"], rel=1e-5, abs=1e-6)
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for p, g, mi, vi in zip(params, grads, m, v):
                mi.mul_(b1).add_((1 - b1) * g)
                vi.mul_(b2).add_((1 - b2) * g * g)
                p -= lr * (mi / (1 - b1 ** t)) / ((vi / (1 - b2 ** t)).sqrt() + eps)
        for mine, theirs in zip(params, _params(app.model)):
            torch.testing.assert_close(mine.detach(), theirs, rtol=1e-4, atol=1e-5)
    state = app.snapshot()
    assert state["updates"] == 3 and state["history"].shape == (3, 4)
    assert state["history"][-1, 1] == batch["loss"]


def test_cd_chains_start_at_the_batch_and_persistent_chains_persist():
    for chains, k in (("CD-1", 1), ("CD-10", 10)):
        app = _cd(chains=chains)
        assert app.k == k
        app.step()
        first = app.last_batch
        assert torch.equal(first["start"], first["data"])
        moved = (first["samples"] - first["data"]).norm(dim=1)
        assert 0 < moved.mean() < 0.3 * math.sqrt(k)  # k short steps: near the data
        assert app.buffer is None
    app = _cd(chains="persistent", batch_size=64)
    initial = app.buffer.states.clone()
    app.step()
    first = app.last_batch
    assert torch.equal(first["start"], initial)  # uniform noise in the box, not the data
    assert (initial.abs() <= 4).all()
    assert torch.equal(app.buffer.states, first["samples"])
    app.step()
    assert torch.equal(app.last_batch["start"], first["samples"])  # the chains continue
    app = _cd(chains="replay buffer", batch_size=64, buffer_size=500)
    before = app.buffer.states.clone()
    app.step()
    changed = (app.buffer.states != before).any(1)
    assert 0 < changed.sum() <= 64  # the drawn rows were written back, the rest untouched
    assert len(app.buffer) == 500 and app.buffer.reinit_prob == 0.05


def test_density_is_normalised_and_the_nll_uses_the_grid_log_z():
    app = _cd("moons", "CD-10")
    state = app.train(5)
    assert state["density"].sum() * state["cell"] == pytest.approx(1.0, abs=1e-9)
    h = 8.0 / 40
    assert state["cell"] == pytest.approx(h * h)
    axis = np.linspace(-4 + h / 2, 4 - h / 2, 40)
    np.testing.assert_allclose(state["xs"], axis)
    gx, gy = np.meshgrid(axis, axis)
    pts = torch.tensor(np.stack([gx.ravel(), gy.ravel()], 1), dtype=torch.float32)
    params = _params(app.model)
    with torch.no_grad():
        e = _hand_energy(params, pts).double().numpy()
    p = np.exp(-(e - e.min()))
    np.testing.assert_allclose(state["density"].ravel(), p / (p.sum() * h * h), rtol=1e-4)
    # log Z by the midpoint rule at z_resolution, written out
    hz = 8.0 / 80
    az = np.linspace(-4 + hz / 2, 4 - hz / 2, 80)
    zx, zy = np.meshgrid(az, az)
    with torch.no_grad():
        ez = _hand_energy(params, torch.tensor(np.stack([zx.ravel(), zy.ravel()], 1),
                                               dtype=torch.float32)).double().numpy()
    log_z = -ez.min() + np.log(np.exp(-(ez - ez.min())).sum()) + 2 * np.log(hz)
    assert state["log_z"] == pytest.approx(log_z, abs=1e-4)
    with torch.no_grad():
        e_test = _hand_energy(params, app.test).double().numpy()
    assert state["nll"] == pytest.approx(e_test.mean() + log_z, abs=1e-4)
    assert state["entropy"] == pytest.approx(get_toy2d("moons").entropy())
    far = get_toy2d("moons").log_prob(torch.tensor(np.stack([gx.ravel(), gy.ravel()], 1)))
    far = (far < math.log(FAR_DENSITY)).numpy()
    assert state["far_mass"] == pytest.approx((p / p.sum())[far].sum(), rel=1e-4)
    assert 0.0 < state["far_mass"] < 1.0


def test_reset_and_setting_changes_restore_the_seeded_start():
    app = _cd(chains="persistent")
    fresh = _params(app.model)
    start_density = app.snapshot()["density"]
    app.train(5)
    assert any(not torch.equal(a, b) for a, b in zip(fresh, _params(app.model)))
    kept = app.update(dataset="8gaussians", chains="persistent")  # same settings: kept
    assert kept["updates"] == 5
    state = app.reset()
    assert state["updates"] == 0 and len(state["samples"]) == 0
    assert all(torch.equal(a, b) for a, b in zip(fresh, _params(app.model)))
    np.testing.assert_array_equal(state["density"], start_density)
    app.train(3)
    switched = app.update(dataset="8gaussians", chains="CD-10")
    assert switched["updates"] == 0 and app.buffer is None
    assert all(torch.equal(a, b) for a, b in zip(fresh, _params(app.model)))  # same start
    app.train(2)
    other = app.update(dataset="checkerboard", chains="CD-10")
    assert other["updates"] == 0 and other["dataset"] == "checkerboard"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = EnergyMLP(2, hidden=(64, 64))
    assert all(torch.equal(a, b) for a, b in zip(_params(net), _params(app.model)))


def test_cd_stepper_same_seed_same_run_and_global_rng_untouched():
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    a = _cd(chains="replay buffer", seed=3).train(15)
    assert torch.equal(torch.rand(3), expected)
    b = _cd(chains="replay buffer", seed=3).train(15)
    for key in ("density", "samples", "history"):
        np.testing.assert_array_equal(a[key], b[key])
    assert a["nll"] == b["nll"]
    c = _cd(chains="replay buffer", seed=4).train(15)
    assert not np.array_equal(a["density"], c["density"])


def test_training_lowers_the_nll_and_cd1_leaves_mass_far_from_the_data():
    cd1 = _cd("moons", "CD-1")
    cd10 = _cd("moons", "CD-10")
    start = cd1.snapshot()
    s1, s10 = cd1.train(150), cd10.train(150)
    assert s10["nll"] < start["nll"] - 0.8
    assert s10["nll"] > s10["entropy"] - 0.2  # no model beats the entropy (up to noise)
    assert s1["far_mass"] > s10["far_mass"] + 0.05
    # CD-1's negatives stay within a step of the data: far regions are never seen
    data = cd1.last_batch["data"]
    assert (cd1.last_batch["samples"] - data).norm(dim=1).max() < 0.6


def test_cd_stepper_render_buttons_and_summary_headless():
    app = _cd()
    for i, chains in enumerate(CHAINS):  # every value of both dropdowns at least once
        settings = dict(dataset=CD_DATASETS[i % len(CD_DATASETS)], chains=chains)
        app.update(**settings)
        app.step()  # chain samples to draw as well
        fig = app.render(**settings)  # the same settings: the step is kept
        assert len(fig.axes) == 3 and app.state["updates"] == 1  # density, colour bar, curves
        plt.close(fig)
    box = app.widget()
    assert "coursekit-cd-stepper" in box._dom_classes
    assert set(app.controls) == {"dataset", "chains", "step", "train", "reset"}
    summary = app._summary.value
    ref = _cd()  # what the browser suite compares with: a fresh app's summary(update(...))
    assert summary == ref.summary(ref.update(**app.params()))
    app.controls["step"].click()
    assert app.state["updates"] == 1
    app.controls["train"].click()
    assert app.state["updates"] == 51
    assert app._summary.value == summary  # button-driven numbers stay out of the summary
    fig = app.render()
    assert app.nll_text(app.state) in fig.axes[0].get_title()
    assert f"{app.state['nll']:.3f}" in fig.axes[0].get_title()
    plt.close(fig)
    app.controls["chains"].value = "persistent"  # a new setting resets
    assert app.state["chains"] == "persistent" and app.state["updates"] == 0
    assert "persistent" in app._summary.value
    app.train(3)
    app.controls["reset"].click()
    assert app.state["updates"] == 0
    plt.close("all")


def test_cd_stepper_bad_input_names_the_argument():
    for args, kwargs, name in ((("rings",), {}, "dataset"), ((), dict(chains="CD-5"), "chains"),
                               ((), dict(lr=0.0), "lr"), ((), dict(step_size=-1.0), "step_size"),
                               ((), dict(reinit_prob=1.5), "reinit_prob"),
                               ((), dict(extent=0.0), "extent"), ((), dict(l2=-0.1), "l2"),
                               ((), dict(hidden=(64, 0)), "hidden"),
                               ((), dict(batch_size=0), "batch_size")):
        with pytest.raises(ValueError, match=name):
            ContrastiveDivergenceStepper(*args, **kwargs)
    app = _cd()
    with pytest.raises(ValueError, match="chains"):
        app.update(chains="PCD")
    with pytest.raises(ValueError, match="n"):
        app.train(0)
