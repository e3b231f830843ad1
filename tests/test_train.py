"""The shared training loop."""

import pytest
import torch
from torch import nn

from coursekit.train import evaluate, fit, smooth


def _regression(seed=0, n=256):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g)
    w = torch.tensor([[1.5], [-2.0], [0.5]])
    y = x @ w + 0.01 * torch.randn(n, 1, generator=g)
    return x, y, w


def mse(model, batch):
    x, y = batch
    return ((model(x) - y) ** 2).mean()


def test_fit_recovers_a_linear_map_and_records_history():
    x, y, w = _regression()
    torch.manual_seed(0)
    model = nn.Linear(3, 1, bias=False)
    hist = fit(model, mse, torch.utils.data.TensorDataset(x, y), epochs=60, batch_size=32,
               lr=0.05, progress=False, seed=0, val_data=torch.utils.data.TensorDataset(x, y))
    assert torch.allclose(model.weight.detach().T, w, atol=0.02)
    assert hist.steps == 60 * 8 == len(hist.loss)
    assert len(hist.epochs["loss"]) == 60 and len(hist.val["loss"]) == 60
    assert hist.val["loss"][-1] < 1e-3 < hist.val["loss"][0]
    assert hist.seconds > 0


def test_validation_value_equals_a_direct_evaluation():
    x, y, _ = _regression(1)
    model = nn.Linear(3, 1)
    data = torch.utils.data.TensorDataset(x, y)
    direct = ((model(x) - y) ** 2).mean().item()
    assert evaluate(model, mse, data, batch_size=100)["loss"] == pytest.approx(direct, rel=1e-5)


def test_dict_losses_are_logged_and_single_tensor_data_is_unwrapped():
    x = torch.randn(64, 2)
    model = nn.Linear(2, 2)

    def loss_fn(model, batch):
        assert isinstance(batch, torch.Tensor)
        out = model(batch)
        rec = ((out - batch) ** 2).sum(1).mean()
        reg = 1e-3 * sum(p.pow(2).sum() for p in model.parameters())
        return {"loss": rec + reg, "rec": rec, "reg": reg}

    hist = fit(model, loss_fn, x, epochs=2, batch_size=16, progress=False)
    assert set(hist.train) == {"loss", "rec", "reg"} and len(hist.train["rec"]) == 8
    for a, b, c in zip(hist.train["loss"], hist.train["rec"], hist.train["reg"]):
        assert a == pytest.approx(b + c, rel=1e-5)


def test_gradient_clipping_bounds_the_update():
    model = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(0.0)
    data = torch.full((4, 1), 1000.0)
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    fit(model, lambda m, b: -(m(b)).mean(), data, epochs=1, batch_size=4, optimizer=opt,
        clip_grad_norm=0.5, progress=False)
    assert model.weight.abs().item() == pytest.approx(0.5, rel=1e-5)


def test_callback_can_stop_early_and_nan_loss_is_reported():
    x = torch.randn(32, 2)
    model = nn.Linear(2, 1)
    hist = fit(model, lambda m, b: m(b).pow(2).mean(), x, epochs=50, batch_size=8,
               progress=False, callback=lambda epoch, h: epoch >= 2)
    assert len(hist.epochs["loss"]) == 3
    with pytest.raises(FloatingPointError, match="loss became nan"):
        fit(model, lambda m, b: m(b).mean() * float("nan"), x, epochs=1, progress=False)


def test_progress_bar_can_be_shown(capsys):
    x = torch.randn(16, 2)
    fit(nn.Linear(2, 1), lambda m, b: m(b).pow(2).mean(), x, epochs=1, batch_size=8,
        progress=True, desc="demo")
    assert "demo" in capsys.readouterr().err


def test_bad_arguments():
    model = nn.Linear(2, 1)
    x = torch.randn(8, 2)
    with pytest.raises(ValueError, match="epochs: expected a positive int"):
        fit(model, mse, x, epochs=0)
    with pytest.raises(ValueError, match="batch_size"):
        fit(model, mse, x, batch_size=-1)
    with pytest.raises(ValueError, match="clip_grad_norm"):
        fit(model, mse, x, clip_grad_norm=0)
    with pytest.raises(TypeError, match="train_data"):
        fit(model, mse, 3.0)
    with pytest.raises(ValueError, match="the loss must be a scalar"):
        fit(model, lambda m, b: m(b), x, progress=False)


def test_smooth_is_a_moving_average():
    values = [float(i) for i in range(10)]
    assert smooth(values, 1) == values
    assert smooth(values, 2)[1:] == [i - 0.5 for i in range(1, 10)]
    assert smooth([]) == []
