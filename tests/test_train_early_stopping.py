"""EarlyStopping: which epoch it keeps, when it stops, what it restores."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from coursekit.train import EarlyStopping, fit


def test_stops_after_patience_and_restores_the_best_weights():
    model = nn.Linear(1, 1)
    scores = iter([5.0, 3.0, 4.0, 2.5, 2.6, 2.7, 2.8, 1.0])
    weights = []

    def score():
        weights.append(model.weight.item())
        return next(scores)

    stopper = EarlyStopping(model, score, patience=3)
    stops = []
    for epoch in range(7):
        with torch.no_grad():
            model.weight.fill_(float(epoch))  # "training" changes the weights
        stops.append(stopper(epoch))
    # best at epoch 3 (2.5); epochs 4, 5, 6 do not improve: the third of them stops
    assert stops == [False, False, False, False, False, False, True]
    assert (stopper.best_epoch, stopper.best_score) == (3, 2.5)
    stopper.restore()
    assert model.weight.item() == weights[3] == 3.0


def test_as_fit_callback_on_an_overfitting_regression():
    torch.manual_seed(0)
    x = torch.randn(12, 10)
    y = x[:, :1] + 0.5 * torch.randn(12, 1)
    xv = torch.randn(200, 10)
    yv = xv[:, :1] + 0.5 * torch.randn(200, 1)
    model = nn.Sequential(nn.Linear(10, 64), nn.Tanh(), nn.Linear(64, 1))

    def val_loss():
        return ((model(xv) - yv) ** 2).mean()

    stopper = EarlyStopping(model, val_loss, patience=5)
    fit(model, lambda m, b: ((m(b[0]) - b[1]) ** 2).mean(), (x, y), epochs=400, lr=1e-2,
        batch_size=12, progress=False, callback=stopper)
    assert len(stopper.scores) < 400  # it stopped early
    assert stopper.best_epoch == len(stopper.scores) - 1 - 5
    last = float(val_loss().detach())
    stopper.restore()
    assert float(val_loss().detach()) == pytest.approx(stopper.best_score)
    assert stopper.best_score < last


def test_bad_arguments():
    with pytest.raises(TypeError, match="model"):
        EarlyStopping(object(), lambda: 0.0)
    with pytest.raises(TypeError, match="score"):
        EarlyStopping(nn.Linear(1, 1), 3.0)
    with pytest.raises(ValueError, match="patience"):
        EarlyStopping(nn.Linear(1, 1), lambda: 0.0, patience=0)
    with pytest.raises(RuntimeError, match="restore"):
        EarlyStopping(nn.Linear(1, 1), lambda: 0.0).restore()
    with pytest.raises(ValueError, match="NaN"):
        EarlyStopping(nn.Linear(1, 1), lambda: float("nan"))(0)
