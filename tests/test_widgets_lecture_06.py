"""Headless tests of lecture 06's apps: FlowLayerExplorer and PlanarFlowExplorer (Agg)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from coursekit.data.toy2d import get_toy2d  # noqa: E402
from coursekit.flows import CNF, MAF, NSF, Flow, Glow, Planar, RealNVP  # noqa: E402
from coursekit.widgets.flow_layer_explorer import FlowLayerExplorer, flow_layers  # noqa: E402
from coursekit.widgets.planar_flow_explorer import (  # noqa: E402
    PlanarFlowExplorer,
    planar_density,
    planar_det,
    planar_preimages,
)


@pytest.fixture(scope="module")
def data():
    return get_toy2d("moons").sample(300, seed=0)


def _small_flow(kind: str, data):
    torch.manual_seed(0)
    flow = {
        "realnvp": lambda: RealNVP(2, layers=4, hidden=(16, 16)),
        "glow": lambda: Glow(2, layers=2, hidden=(16, 16)),
        "maf": lambda: MAF(2, layers=2, hidden=(16, 16)),
        "nsf": lambda: NSF(2, layers=2, hidden=(16, 16)),
        "planar": lambda: Planar(2, layers=4),
        "cnf": lambda: CNF(2, hidden=(16,), steps=4),
    }[kind]()
    with torch.no_grad():
        flow.log_prob(data)  # initialises Glow's ActNorm layers on the data
    return flow


@pytest.fixture(scope="module")
def realnvp(data):
    return _small_flow("realnvp", data)


# -- FlowLayerExplorer -----------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["realnvp", "glow", "maf", "nsf", "planar", "cnf"])
def test_chain_ends_are_base_samples_and_model_samples(kind, data):
    flow = _small_flow(kind, data)
    app = FlowLayerExplorer(flow, data, n_points=200, resolution=12, seed=3)
    n_layers = len(flow_layers(flow))
    assert app.controls["layer"].max == n_layers
    start = app.update(layer=0)
    z = flow.base.sample(200, generator=torch.Generator().manual_seed(3))
    np.testing.assert_allclose(start["points"], z.numpy(), atol=1e-6)
    end = app.update(layer=n_layers)
    np.testing.assert_allclose(end["points"], flow.sample(200, generator=3).numpy(),
                               atol=1e-4)
    # the accumulated log-det is the whole flow's log|det df^{-1}/dz| at the samples
    _, logabsdet = flow.inverse(z)
    assert end["logdet_total"] == pytest.approx(logabsdet.mean().item(), abs=1e-4)


def test_accumulated_logdet_is_the_sum_of_layers(realnvp, data):
    app = FlowLayerExplorer(realnvp, data, n_points=100, resolution=10)
    chain = app.chain("noise → data")
    # each layer's log-det is that layer's own inverse at the previous position
    for k, layer in enumerate(app.layers, start=1):
        y, logabsdet = layer.inverse(torch.as_tensor(chain["points"][k - 1], dtype=torch.float32))
        np.testing.assert_allclose(chain["points"][k], y.detach().numpy(), atol=1e-5)
        np.testing.assert_allclose(chain["logdet"][k - 1], logabsdet.detach().numpy(),
                                   atol=1e-5)
    for k in range(5):
        state = app.update(layer=k)
        assert state["logdet_total"] == pytest.approx(state["logdet_layers"][:k].sum())
        assert state["layer_name"] == ("base N(0, I)" if k == 0 else "AffineCoupling")


def test_density_at_the_ends_is_base_and_model(realnvp, data):
    app = FlowLayerExplorer(realnvp, data, grid_extent=3.0, n_points=50, resolution=15)
    ticks = torch.linspace(-3.0, 3.0, 15)
    y2, y1 = torch.meshgrid(ticks, ticks, indexing="ij")
    grid = torch.stack([y1.reshape(-1), y2.reshape(-1)], dim=1)
    model = realnvp.log_prob(grid).exp().detach().numpy().reshape(15, 15)
    np.testing.assert_allclose(app.update(layer=4)["density"], model, rtol=1e-4, atol=1e-7)
    base = np.exp(-0.5 * (grid ** 2).sum(1).numpy() - np.log(2 * np.pi)).reshape(15, 15)
    np.testing.assert_allclose(app.update(layer=0)["density"], base, rtol=1e-5)


def test_intermediate_density_integrates_to_one(realnvp, data):
    app = FlowLayerExplorer(realnvp, data, grid_extent=7.0, n_points=50, resolution=121)
    cell = (14.0 / 120) ** 2
    for k in range(5):
        assert app.density(k).sum() * cell == pytest.approx(1.0, abs=0.03)


def test_data_to_noise_pulls_the_data_back(realnvp, data):
    app = FlowLayerExplorer(realnvp, data, n_points=100, resolution=10)
    back = app.update(layer=0, direction="data → noise")
    z, logabsdet = realnvp(data[:100])
    np.testing.assert_allclose(back["points"], z.detach().numpy(), atol=1e-5)
    at_data = app.update(layer=4, direction="data → noise")
    np.testing.assert_allclose(at_data["points"], data[:100].numpy(), atol=1e-6)
    # log p(x) = log N(z) - accumulated noise-to-data log-det = log N(z) + log|det df/dx|
    assert at_data["logdet_total"] == pytest.approx(-logabsdet.mean().item(), abs=1e-4)
    assert "direction" not in FlowLayerExplorer(realnvp, n_points=10, resolution=4).controls


def test_summary_and_render(realnvp, data):
    app = FlowLayerExplorer(realnvp, data, n_points=100, resolution=20)
    state = app.update(layer=2, show="grid")
    text = app.summary(state)
    assert "AffineCoupling" in text
    assert f"{state['logdet_layer']:.3f}" in text and f"{state['logdet_total']:.3f}" in text
    assert "base N(0, I)" in app.summary(app.update(layer=0))
    for show in ("samples", "grid", "both"):
        fig = app.render(layer=1, show=show, direction="data → noise")
        assert len(fig.axes) == 2
        plt.close(fig)
    box = app.widget()
    assert "coursekit-flow-layers" in box._dom_classes
    assert set(app.controls) == {"layer", "show", "direction"}


def test_flow_layer_explorer_bad_input(realnvp, data):
    with pytest.raises(TypeError, match="flow"):
        FlowLayerExplorer(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="flow"):
        FlowLayerExplorer(RealNVP(3, layers=2, hidden=(8,)))
    with pytest.raises(ValueError, match="flow"):
        FlowLayerExplorer(Glow(2, layers=1, hidden=(8,)))  # ActNorm not initialised
    with pytest.raises(ValueError, match="data"):
        FlowLayerExplorer(realnvp, data[:, :1])
    app = FlowLayerExplorer(realnvp, n_points=10, resolution=4)
    for layer in (-1, 5, 1.5):
        with pytest.raises(ValueError, match="layer"):
            app.update(layer=layer)
    with pytest.raises(ValueError, match="layer"):
        FlowLayerExplorer(realnvp, layer=9)
    with pytest.raises(ValueError, match="direction"):
        app.update(layer=1, direction="data → noise")
    with pytest.raises(ValueError, match="show"):
        app.update(layer=1, show="nothing")


# -- PlanarFlowExplorer ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def planar_app():
    return PlanarFlowExplorer(resolution=100)


def _random_params(rng):
    return dict(zip(("u1", "u2", "w1", "w2", "b"), rng.uniform(-3, 3, 5).round(1)))


def test_constrained_map_is_always_invertible(planar_app):
    rng = np.random.default_rng(0)
    for _ in range(10):
        state = planar_app.update(**_random_params(rng), constrained=True)
        assert state["min_det"] > 0 and state["invertible"] and state["wu_hat"] > -1
        assert not state["fold_x"] and state["preimages"].max() == 1


@pytest.mark.parametrize("params", [dict(u1=-2.0, u2=1.0, w1=1.5, w2=0.5, b=0.0),
                                    dict(u1=1.0, u2=-3.0, w1=0.0, w2=1.0, b=1.0),
                                    dict(u1=-3.0, u2=-3.0, w1=0.4, w2=0.3, b=-0.5)])
def test_unconstrained_map_folds_when_wu_below_minus_one(planar_app, params):
    state = planar_app.update(**params, constrained=False)
    assert state["wu"] < -1 and state["wu_hat"] == pytest.approx(state["wu"])
    assert state["min_det"] < 0 and not state["invertible"]
    assert len(state["fold_x"]) == 2 and state["preimages"].max() == 3
    np.testing.assert_array_equal(state["u_hat"], state["u"])


def test_det_is_autograds_jacobian_det(planar_app):
    rng = np.random.default_rng(1)
    z = torch.as_tensor(rng.normal(size=(5, 2)))
    for constrained in (True, False):
        params = dict(u1=-2.0, u2=1.0, w1=1.5, w2=0.5, b=0.3, constrained=constrained)
        layer = planar_app.layer(**params)
        u_hat = layer.u_hat().detach()
        det = planar_det(z, u_hat, layer.w.detach(), layer.b.detach())
        for i in range(5):
            jac = torch.autograd.functional.jacobian(
                lambda p, layer=layer: layer.inverse(p[None])[0][0], z[i])
            assert det[i].item() == pytest.approx(torch.linalg.det(jac).item(), abs=1e-10)
        grid_det = planar_app.update(**params)["z_det"]
        assert grid_det.min() == pytest.approx(planar_app.update(**params)["min_det"])


def test_pushforward_density(planar_app):
    # invertible: the density is the flow's own log_prob (root find in PlanarTransform)
    params = dict(u1=-2.0, u2=1.0, w1=1.5, w2=0.5, b=0.3, constrained=True)
    layer = planar_app.layer(**params)
    x = torch.as_tensor(np.random.default_rng(2).normal(size=(50, 2)))
    density, count = planar_density(x, layer.u_hat().detach(), layer.w.detach(),
                                    layer.b.detach())
    want = Flow(layer, 2).log_prob(x).exp().detach()
    np.testing.assert_allclose(density.numpy(), want.numpy(), rtol=1e-8)
    assert (count == 1).all()
    # it integrates to one (a milder map: the grid sum is a fair quadrature)
    for mild in (dict(u1=1.0, u2=1.0, w1=1.0, w2=-0.5, b=0.3), dict(u1=-0.5, u2=0.2, w1=1.0,
                                                                     w2=0.5, b=-1.0)):
        state = planar_app.update(**mild, constrained=True)
        cell = (2 * state["x_extent"] / (planar_app.resolution - 1)) ** 2
        assert state["density"].sum() * cell == pytest.approx(1.0, abs=0.01)
    # folded: every preimage found maps to x, and they are distinct
    layer = planar_app.layer(**params | {"constrained": False})
    z, found = planar_preimages(x, layer.u, layer.w.detach(), layer.b.detach())
    assert found.sum(0).max() == 3 and set(found.sum(0).tolist()) <= {1, 3}
    for k in range(3):
        mapped = layer.inverse(z[k][found[k]])[0].detach()
        np.testing.assert_allclose(mapped.numpy(), x[found[k]].numpy(), atol=1e-9)


def test_planar_summary_and_render(planar_app):
    state = planar_app.update(u1=-2.0, u2=1.0, w1=1.5, w2=0.5, b=0.0, constrained=False)
    text = planar_app.summary(state)
    assert "wᵀu = -2.500" in text and "wᵀû = -2.500" in text
    assert f"{state['min_det']:.3f}" in text and "not invertible" in text
    state = planar_app.update(u1=-2.0, u2=1.0, w1=1.5, w2=0.5, b=0.0, constrained=True)
    text = planar_app.summary(state)
    assert f"wᵀû = {state['wu_hat']:.3f}" in text and "<b>invertible</b>" in text
    for params in (dict(constrained=False), dict(w1=0.0, w2=0.0), {}):
        fig = planar_app.render(**params)
        assert len(fig.axes) == 2
        plt.close(fig)
    box = PlanarFlowExplorer(resolution=30).widget()
    assert "coursekit-planar-flow" in box._dom_classes
