"""The shared training loop."""

import dataclasses
import random
import subprocess
import sys

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from torch import nn

from coursekit.train import EMA, History, Trainer, evaluate, fit, optimizer_step, smooth


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
    with pytest.raises(ValueError, match="epochs: expected an int >= 1"):
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


# --- fit keeps its numbers; data handling -------------------------------------------------------

# computed with the original single-loop ``fit`` (git show f5d9df4:coursekit/train.py)
REF_A_LOSS = [9.8900089, 7.8619299, 8.2121925, 2.4544411, 13.5230875, 3.0035205, 4.2827387,
              0.7081652, 5.2878742, 5.4466205, 6.344439, 7.7407618]
REF_A_VAL = [6.831162, 5.901083, 5.4583988]
REF_B_LOSS = [0.6189414, 0.3101074, 0.2900672, 0.4780455, 0.0723611, 0.0708645]
REF_B_NOISE = [-0.0451906, -0.016613, -0.1522769, 0.0381684, -0.0892291, -0.005825]
REF_B_EPOCHS = [0.406372, 0.2070904]


def _small_regression():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(50, 3, generator=g)
    y = x @ torch.tensor([[1.0], [-1.0], [2.0]]) + 0.1 * torch.randn(50, 1, generator=g)
    return x, y


def test_fit_gives_the_same_numbers_as_the_original_loop():
    x, y = _small_regression()
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, 1, gamma=0.5)
    data = torch.utils.data.TensorDataset(x, y)
    hist = fit(model, mse, data, epochs=3, batch_size=16, optimizer=opt, scheduler=sched,
               val_data=data, clip_grad_norm=1.0, seed=0, progress=False)
    assert hist.loss == pytest.approx(REF_A_LOSS, rel=1e-6, abs=1e-7)
    assert hist.val["loss"] == pytest.approx(REF_A_VAL, rel=1e-6, abs=1e-7)

    def noisy(model, batch):  # draws from the global RNG, as does the unseeded shuffling
        noise = 0.1 * torch.randn(())
        return {"loss": (model(batch) - batch[:, :1]).pow(2).mean() + noise, "noise": noise}

    torch.manual_seed(1)
    model = nn.Linear(3, 1)
    hist = fit(model, noisy, x, epochs=2, batch_size=20, lr=0.05, progress=False)
    assert hist.loss == pytest.approx(REF_B_LOSS, rel=1e-6, abs=1e-7)
    assert hist.train["noise"] == pytest.approx(REF_B_NOISE, rel=1e-6, abs=1e-7)
    assert hist.epochs["loss"] == pytest.approx(REF_B_EPOCHS, rel=1e-6, abs=1e-7)


def test_fit_batches_an_x_y_pair_together():
    x, y = _small_regression()
    shapes = []

    def loss(model, batch):
        shapes.append(tuple(tuple(t.shape) for t in batch))
        return mse(model, batch)

    torch.manual_seed(0)
    pair = fit(nn.Linear(3, 1), loss, (x, y), epochs=2, batch_size=16, seed=0, progress=False)
    assert shapes[:4] == [((16, 3), (16, 1))] * 3 + [((2, 3), (2, 1))]
    torch.manual_seed(0)
    dataset = fit(nn.Linear(3, 1), mse, torch.utils.data.TensorDataset(x, y), epochs=2,
                  batch_size=16, seed=0, progress=False)
    assert pair.loss == dataset.loss and len(pair.loss) == 8


def test_an_iterable_dataset_is_batched_in_its_own_order():
    class Stream(torch.utils.data.IterableDataset):
        def __iter__(self):
            yield from torch.arange(10.0).reshape(5, 2)

    seen = []
    hist = fit(nn.Linear(2, 1), lambda m, b: seen.append(b[:, 0].tolist()) or m(b).pow(2).mean(),
               Stream(), epochs=2, batch_size=2, progress=False)
    assert seen == [[0.0, 2.0], [4.0, 6.0], [8.0]] * 2 and hist.steps == 6


def test_fit_on_load_digits_uses_images_with_their_labels():
    from coursekit.data import load_digits

    x, y = load_digits("train")
    model = nn.Linear(64, 10)
    hist = fit(model, lambda m, b: nn.functional.cross_entropy(m(b[0]), b[1]),
               load_digits("train"), epochs=3, batch_size=100, lr=0.05, seed=0, progress=False)
    assert hist.steps == 3 * 12
    assert hist.epochs["loss"][-1] < 0.5 * hist.epochs["loss"][0]
    assert (model(x).argmax(1) == y).float().mean() > 0.8


def test_ambiguous_or_wrong_data_is_refused_with_the_argument_name():
    model = nn.Linear(3, 1)
    x, y = _small_regression()
    with pytest.raises(ValueError, match=r"train_data: expected tensors \(x, y, ...\) with equal "
                                         r"first dimension, got shapes \[\(50, 3\), \(49, 1\)\]"):
        fit(model, mse, (x, y[:49]), progress=False)
    with pytest.raises(TypeError, match=r"train_data: expected a tuple of tensors \(x, y\) .*"
                                        r"got a tuple of \(Tensor, list\)"):
        fit(model, mse, (x, [1, 2]), progress=False)
    with pytest.raises(ValueError, match="train_data: a list of tensors is read as a list of "
                                         "batches"):
        fit(model, mse, [x, y], progress=False)
    with pytest.raises(TypeError, match="train_data: expected a Tensor.*got ndarray; convert"):
        fit(model, mse, x.numpy(), progress=False)
    with pytest.raises(TypeError, match="train_data: expected .* got dict"):
        fit(model, mse, {"x": x}, progress=False)
    with pytest.raises(ValueError, match="train_data: epoch 0 gave no batches"):
        fit(model, mse, [], progress=False)
    with pytest.raises(ValueError, match="train_data: epoch 1 gave no batches"):
        fit(model, mse, iter([(x, y)]), epochs=2, progress=False)


def test_nan_or_inf_in_the_data_is_reported_as_such():
    model = nn.Linear(3, 1)
    x, y = _small_regression()
    bad_x = x.clone()
    bad_x[7, 2] = float("nan")
    with pytest.raises(ValueError, match=r"train_data: expected finite values, got nan at index "
                                         r"\(7, 2\) \(1 non-finite value"):
        fit(model, lambda m, b: m(b).pow(2).mean(), bad_x, progress=False)
    bad_y = y.clone()
    bad_y[3:5] = float("inf")
    with pytest.raises(ValueError, match=r"train_data\[1\]: expected finite values, got inf at "
                                         r"index \(3, 0\) \(2 non-finite"):
        fit(model, mse, (x, bad_y), progress=False)
    before = model.weight.detach().clone()
    batches = [(x[:10], y[:10]), (bad_x[:10], y[:10])]
    with pytest.raises(ValueError, match="train_data: expected finite values, got nan in batch 1 "
                                         "of epoch 0"):
        fit(model, mse, batches, lr=0.1, progress=False)
    assert torch.isfinite(model.weight).all() and not torch.equal(model.weight, before)
    with pytest.raises(ValueError, match=r"val_data\[0\]: expected finite values"):
        fit(model, mse, (x, y), val_data=(bad_x, y), progress=False)


# --- the general loop -----------------------------------------------------------------------------


class Shift(nn.Module):
    """G(z) = z + b: a generator whose mean is its one parameter."""

    def __init__(self):
        super().__init__()
        self.b = nn.Parameter(torch.zeros(2))

    def forward(self, z):
        return z + self.b


def test_a_wgan_with_two_optimisers_and_n_critic_steps():
    torch.manual_seed(0)
    mean = torch.tensor([3.0, -2.0])
    real = mean + 0.5 * torch.randn(512, 2)
    gen, critic, n_critic = Shift(), nn.Linear(2, 1), 2

    def gan_step(trainer, x):
        fake = gen(torch.randn_like(x)).detach()
        critic_loss = critic(fake).mean() - critic(x).mean()
        optimizer_step(trainer.optimizers["critic"], critic_loss)
        with torch.no_grad():
            critic.weight.clamp_(-0.1, 0.1)  # WGAN weight clipping keeps the critic Lipschitz
        trainer.state["critic_steps"] += 1
        logged = {"critic": critic_loss}
        if trainer.step % n_critic == n_critic - 1:
            gen_loss = -critic(gen(torch.randn_like(x))).mean()
            optimizer_step(trainer.optimizers["gen"], gen_loss)
            trainer.state["gen_steps"] += 1
            logged["gen"] = gen_loss
        return logged

    trainer = Trainer(gan_step, real, models={"critic": critic, "gen": gen},
                      optimizers={"critic": torch.optim.Adam(critic.parameters(), lr=0.05),
                                  "gen": torch.optim.Adam(gen.parameters(), lr=0.05)},
                      state={"critic_steps": 0, "gen_steps": 0}, batch_size=64, seed=0,
                      progress=False)
    hist = trainer.run(steps=200)
    assert trainer.state == {"critic_steps": 200, "gen_steps": 100}
    assert len(hist.train["critic"]) == 200 and hist.train_steps["gen"] == list(range(2, 201, 2))
    assert trainer.epoch == 25 and len(hist.epochs["gen"]) == 25
    assert (gen.b.detach() - mean).norm() < 0.25 * mean.norm()


def test_ema_is_the_geometric_average_and_applying_it_restores_the_live_weights():
    model = nn.Linear(2, 1)
    model.register_buffer("seen", torch.zeros(()))
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, -1.0]]))
    theta0 = model.weight.detach().clone()
    d, values = 0.9, [torch.tensor([[2.0, 0.0]]), torch.tensor([[4.0, 1.0]]),
                      torch.tensor([[-1.0, 3.0]])]
    ema = EMA(model, decay=d)
    for t, value in enumerate(values, 1):
        with torch.no_grad():
            model.weight.copy_(value)
            model.seen.fill_(t)
        ema.update()
    expected = d**3 * theta0 + (1 - d) * (d**2 * values[0] + d * values[1] + values[2])
    torch.testing.assert_close(ema.shadow["weight"], expected, rtol=0, atol=1e-6)
    assert ema.shadow["seen"] == 3 and ema.updates == 3
    live = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(4, 2)
    with ema.applied():
        torch.testing.assert_close(model(x), x @ expected.T + ema.shadow["bias"])
    assert all(torch.equal(model.state_dict()[k], v) for k, v in live.items())
    with pytest.raises(RuntimeError, match="boom"), ema.applied():
        raise RuntimeError("boom")
    assert torch.equal(model.weight, values[-1])


def test_the_trainer_updates_registered_emas_after_every_step():
    x = torch.randn(40, 2)
    model = nn.Linear(2, 1)
    ema = EMA(model, decay=0.5)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    shadow = model.weight.detach().clone()

    def step(trainer, batch):
        nonlocal shadow
        optimizer_step(opt, model(batch).pow(2).mean())
        shadow = 0.5 * shadow + 0.5 * model.weight.detach()
        return None

    Trainer(step, x, models={"m": model}, optimizers={"o": opt}, ema={"m": ema},
            batch_size=10, progress=False).run(steps=3)
    assert ema.updates == 3
    torch.testing.assert_close(ema.shadow["weight"], shadow, rtol=0, atol=1e-7)


def _resumable(kind: str):
    """A run that uses every kind of state: dropout, a per-step scheduler, an EMA, a replay
    buffer in ``trainer.state``, NumPy's and Python's RNGs, and per-step/per-epoch callbacks."""
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(50, 3, generator=g), torch.randn(50, 1, generator=g)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 8), nn.Dropout(0.2), nn.Linear(8, 1))
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    sched = torch.optim.lr_scheduler.StepLR(opt, 3, gamma=0.7)
    ema = EMA(model, decay=0.9)

    def step(trainer, batch):
        loss = mse(model, batch)
        optimizer_step(opt, loss, clip_grad_norm=5.0)
        buffer = torch.cat([trainer.state["buffer"], torch.randn(2, 3)])[-8:]
        trainer.state["buffer"] = buffer
        return {"loss": loss, "buffer": buffer.mean(), "np": np.random.rand(),
                "py": random.random()}

    data, seed = {"seeded": ((x, y), 0), "global rng": ((x, y), None),
                  "loader": (torch.utils.data.DataLoader(
                      torch.utils.data.TensorDataset(x, y), batch_size=16, shuffle=True,
                      generator=torch.Generator().manual_seed(1)), None)}[kind]
    trainer = Trainer(step, data, models={"model": model}, optimizers={"adam": opt},
                      schedulers={"step": sched}, schedule_every="step", ema={"model": ema},
                      state={"buffer": torch.zeros(0, 3)}, batch_size=16, seed=seed,
                      progress=False)
    trainer.every(1, lambda t: {"val": mse(model, (x, y)) + torch.rand(())}, unit="epoch")
    trainer.every(5, lambda t: {"probe": random.random()})
    torch.manual_seed(123)
    np.random.seed(123)
    random.seed(123)
    return trainer


def _scramble_rngs():
    torch.manual_seed(999)
    np.random.seed(999)
    random.seed(999)


@pytest.mark.parametrize("kind", ["seeded", "global rng", "loader"])
@pytest.mark.parametrize("n", [6, 4])  # mid-epoch, and at an epoch's end (4 batches per epoch)
def test_a_resumed_run_gives_the_same_history_and_weights(tmp_path, kind, n):
    straight = _resumable(kind)
    straight.run(steps=2 * n)
    first = _resumable(kind)
    first.run(steps=n)
    first.save(tmp_path / "run.pt")
    _scramble_rngs()
    resumed = _resumable(kind).load(tmp_path / "run.pt")
    resumed.run(steps=2 * n)

    def curves(trainer):
        return {k: v for k, v in dataclasses.asdict(trainer.history).items() if k != "seconds"}

    assert curves(resumed) == curves(straight) and resumed.step == 2 * n
    assert len(straight.history.val["probe"]) == 2 * n // 5 and straight.history.val["val"]
    for a, b in zip(straight.models["model"].parameters(), resumed.models["model"].parameters()):
        assert torch.equal(a, b)
    for key, value in straight.ema["model"].shadow.items():
        assert torch.equal(resumed.ema["model"].shadow[key], value)
    assert torch.equal(resumed.state["buffer"], straight.state["buffer"])
    assert resumed.schedulers["step"].get_last_lr() == straight.schedulers["step"].get_last_lr()
    assert resumed.epoch == straight.epoch == 2 * n // 4


def test_periodic_callbacks_fire_every_n_steps_or_epochs_and_can_stop_the_run():
    fired = []
    trainer = Trainer(lambda t, b: {"loss": b.sum()}, torch.randn(30, 2), batch_size=10,
                      progress=False)
    trainer.every(4, lambda t: fired.append(t.step))
    trainer.every(2, lambda t: {"probe": float(t.epoch)}, unit="epoch")
    hist = trainer.run(steps=17)
    assert fired == [4, 8, 12, 16]
    assert hist.val["probe"] == [2.0, 4.0] and hist.val_steps["probe"] == [6, 12]
    trainer.every(1, lambda t: t.stop() if t.step == 19 else None)
    assert trainer.run(steps=100).steps == 19 and fired[-1] == 16


@pytest.mark.parametrize(("every", "halvings"), [("step", 6), ("epoch", 3)])
def test_schedulers_are_stepped_per_step_or_per_epoch(every, halvings):
    model = nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    sched = torch.optim.lr_scheduler.StepLR(opt, 1, gamma=0.5)
    Trainer(lambda t, b: optimizer_step(opt, model(b).mean()), torch.randn(30, 2),
            optimizers={"sgd": opt}, schedulers={"lr": sched}, schedule_every=every,
            batch_size=15, progress=False).run(steps=6)
    assert opt.param_groups[0]["lr"] == 0.5**halvings


def test_optimizer_step_clips_the_global_gradient_norm():
    model = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        model.weight.zero_()
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    optimizer_step(opt, -model(torch.tensor([[300.0, 400.0]])).sum(), clip_grad_norm=2.0)
    torch.testing.assert_close(model.weight.detach(), torch.tensor([[1.2, 1.6]]))


def test_sparse_metrics_are_plotted_at_the_steps_that_logged_them():
    hist = History(train={"gen": [3.0, 2.0, 1.0]}, train_steps={"gen": [2, 4, 6]},
                   val={"gen": [2.5]}, val_steps={"gen": [5]})
    fig, ax = plt.subplots()
    hist.plot(ax=ax, keys=("gen",))
    lines = {line.get_label(): line for line in ax.lines}
    assert list(lines["train gen"].get_xdata()) == [2, 4, 6]
    assert list(lines["val gen"].get_xdata()) == [5]
    plt.close(fig)


def test_train_does_not_import_plotting():
    code = ("import sys, coursekit.train; "
            "assert 'coursekit.plotting' not in sys.modules and 'matplotlib' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_bad_trainer_arguments_and_step_results(tmp_path):
    x = torch.randn(8, 2)
    model = nn.Linear(2, 1)
    with pytest.raises(ValueError, match="steps, epochs: expected exactly one of them"):
        Trainer(lambda t, b: None, x).run()
    with pytest.raises(ValueError, match="steps: expected an int >= 1, got 0"):
        Trainer(lambda t, b: None, x).run(steps=0)
    with pytest.raises(ValueError, match="schedule_every: expected 'step' or 'epoch'"):
        Trainer(lambda t, b: None, x, schedule_every="batch")
    with pytest.raises(ValueError, match="n: expected an int >= 1"):
        Trainer(lambda t, b: None, x).every(0, print)
    with pytest.raises(TypeError, match="step_fn: expected a dict of scalars or None, got list"):
        Trainer(lambda t, b: [1.0], x, progress=False).run(steps=1)
    with pytest.raises(ValueError, match=r"step_fn: expected scalars, got 'z' of shape \(2,\)"):
        Trainer(lambda t, b: {"z": b[0]}, x, progress=False).run(steps=1)
    with pytest.raises(FloatingPointError, match="critic became inf at epoch 1, step 3"):
        Trainer(lambda t, b: {"critic": 1.0 if t.step < 3 else float("inf")}, x, batch_size=3,
                progress=False).run(steps=5)
    with pytest.raises(ValueError, match=r"decay: expected a finite number in \[0, 1\]"):
        EMA(model, decay=1.5)
    with pytest.raises(ValueError, match="clip_grad_norm"):
        optimizer_step(torch.optim.SGD(model.parameters()), model(x).sum(), clip_grad_norm=0)
    Trainer(lambda t, b: None, x, models={"a": model}, seed=0, progress=False).save(tmp_path / "c")
    with pytest.raises(ValueError, match=r"models: the checkpoint has \['a'\], this trainer has "
                                         r"\['b'\]"):
        Trainer(lambda t, b: None, x, models={"b": model}, seed=0).load(tmp_path / "c")
    with pytest.raises(ValueError, match="seed: the checkpoint's data shuffling was seeded"):
        Trainer(lambda t, b: None, x, models={"a": model}).load(tmp_path / "c")
    with pytest.raises(FileNotFoundError, match="path: no checkpoint file"):
        Trainer(lambda t, b: None, x).load(tmp_path / "missing.pt")


@pytest.mark.parametrize("lr", [-1, 0, float("nan"), float("inf")])
def test_a_bad_learning_rate_is_named(lr):
    model = nn.Linear(2, 1)
    with pytest.raises(ValueError, match=r"^lr: expected a finite number > 0"):
        fit(model, lambda m, b: m(b).pow(2).mean(), torch.randn(8, 2), epochs=1, lr=lr,
            progress=False)


def test_lr_is_not_checked_when_an_optimizer_is_given():
    model = nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    history = fit(model, lambda m, b: m(b).pow(2).mean(), torch.randn(8, 2), epochs=1,
                  lr=-1, optimizer=opt, progress=False)
    assert history.steps == 1 and len(history.train["loss"]) == 1


@pytest.mark.parametrize("data", [torch.randn(0, 2), (torch.randn(0, 2), torch.randn(0))])
def test_an_empty_dataset_is_named(data):
    with pytest.raises(ValueError, match=r"^train_data: expected at least one sample, got an "
                                         r"empty dataset \(tensor shapes \(0, 2\)"):
        fit(nn.Linear(2, 1), lambda m, b: 0.0, data, epochs=1, progress=False)


@pytest.mark.parametrize("n, size, shuffle, seed", [
    (10, 3, True, 1), (12, 4, True, None), (7, 7, False, None), (7, 3, False, 2),
    (100, 256, True, 5), (1000, 100, True, None)])
def test_tensor_batches_equal_a_dataloaders_batches_and_rng_use(n, size, shuffle, seed):
    """The sliced batches of in-memory tensors equal DataLoader's, draw for draw, so a
    seeded run (global RNG or its own generator) gives the same numbers as before."""
    from torch.utils.data import DataLoader, TensorDataset

    from coursekit.train.data import TensorBatches

    x, y = torch.randn(n, 2), torch.arange(n)

    def epochs(make):
        generator = None if seed is None else torch.Generator().manual_seed(seed)
        torch.manual_seed(3)
        # a draw from the global RNG after each batch, as a step function would make
        out = [[*(t.clone() for t in batch), torch.rand(1)]
               for _ in range(2) for batch in make(generator)]
        return out, torch.rand(1), None if generator is None else generator.get_state()

    loader = epochs(lambda g: DataLoader(TensorDataset(x, y), batch_size=size, shuffle=shuffle,
                                         generator=g))
    sliced = epochs(lambda g: TensorBatches((x, y), size, shuffle, g))
    assert len(sliced[0]) == len(loader[0]) == 2 * -(-n // size)
    for a, b in zip(loader[0], sliced[0]):
        assert all(torch.equal(u, v) for u, v in zip(a, b))
    assert torch.equal(loader[1], sliced[1])
    assert seed is None or torch.equal(loader[2], sliced[2])
    assert len(TensorBatches((x, y), size, shuffle, None)) == -(-n // size)
