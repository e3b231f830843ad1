"""Contract tests: one parametrised test per promise, run for every model, fitted estimator
and density in coursekit. A new family gets all of them by adding one entry to a table.

* Models (``nn.Module``): the loss is a finite scalar, its gradient reaches every
  parameter, ``sample`` has shape ``(n, *event_shape)``, ``.to(dtype)`` / ``.to(device)``
  moves every parameter and buffer and the model then computes there, and bad input
  raises a ``ValueError`` whose message starts with the argument's name.
* Fitted estimators (scikit-learn style): ``NotFittedError`` before ``fit``, ``fit``
  returns ``self``, ``score_samples`` is ``(n,)``, ``score`` is its mean, NumPy input
  gives the numbers of tensor input, ``sample(n)`` gives ``(n, d)`` points, bad ``X``
  names ``X``.
* Densities (``log_prob``/``sample``): shapes and finite log-densities of own samples.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from coursekit import autoregressive as AR
from coursekit import ebm as EBM
from coursekit import flows as FL
from coursekit import vae as V
from coursekit.data import TOY2D, get_toy2d
from coursekit.exceptions import NotFittedError
from coursekit.latent import PPCA, MixturePPCA
from coursekit.mixture import BernoulliMixture, GaussianMixture

F64 = torch.float64
X_DIM = 12


def _binary(n: int, seed: int = 0) -> torch.Tensor:
    return torch.bernoulli(torch.full((n, X_DIM), 0.4), generator=torch.Generator()
                           .manual_seed(seed))


def _continuous(n: int, d: int = X_DIM, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=gen) @ torch.randn(d, d, generator=gen) * 0.3


# --------------------------------------------------------------------------------------
# models
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelCase:
    build: Callable[[], torch.nn.Module]
    data: Callable[[], tuple]  # the loss's arguments after the model
    loss: Callable  # (model, *data) -> scalar tensor
    sample: Callable  # (model, n) -> (n, *event_shape)
    event_shape: tuple[int, ...]


def _binary_image(n: int, seed: int = 0) -> torch.Tensor:
    """4x4 binary images, flat ``(n, 16)``: the convolutional models need a square."""
    return torch.bernoulli(torch.full((n, 16), 0.4), generator=torch.Generator()
                           .manual_seed(seed))


def _ar_case(build, data=lambda: (_binary(8),), event=X_DIM) -> ModelCase:
    """An autoregressive density: the loss is the mean NLL, ``sample(n)`` draws."""
    return ModelCase(build, data, AR.nll_loss, lambda m, n: m.sample(n), (event,))


def _flow_case(build) -> ModelCase:
    """A normalizing flow on continuous data: the loss is the mean NLL."""
    return _ar_case(build, lambda: (_continuous(8),))


def _perturbed(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` with every parameter moved a little: layers that start as the identity
    (a zero last layer) pass no gradient to the layers before them until trained."""
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model


def _ssvae_data():
    return _binary(6), _binary(4, seed=1), torch.tensor([0, 3, 9, 3])


def _nce(model, x, y, log_noise):
    """An energy model's loss: NCE of data ``x`` against noise ``y`` (it trains ``log_z``
    too, so the gradient reaches every parameter)."""
    return EBM.nce_loss(model.log_prob(x), log_noise(x), model.log_prob(y), log_noise(y))


def _standard_normal_log_prob(x: torch.Tensor) -> torch.Tensor:
    return -0.5 * (x ** 2).sum(-1) - 0.5 * x.shape[-1] * math.log(2 * math.pi)


def _energy_case(build, data, log_noise, event: int) -> ModelCase:
    """An energy model: NCE against ``log_noise``; ``sample`` is a short Langevin run."""
    return ModelCase(build, data, lambda m, x, y: _nce(m, x, y, log_noise),
                     lambda m, n: m.sample(n, n_steps=2, step_size=0.01, generator=0), (event,))


def _pixels(n: int, seed: int = 0) -> torch.Tensor:
    """8x8 images with pixels uniform in [0, 1], flat ``(n, 64)``."""
    return torch.rand(n, 64, generator=torch.Generator().manual_seed(seed))


MODELS = {
    "VAE-bernoulli": ModelCase(lambda: V.VAE(X_DIM, 3, hidden=(16,)), lambda: (_binary(8),),
                               lambda m, x: m.negative_elbo(x)[0], lambda m, n: m.sample(n),
                               (X_DIM,)),
    "VAE-gaussian": ModelCase(lambda: V.VAE(X_DIM, 3, hidden=(16,), likelihood="gaussian"),
                              lambda: (_continuous(8),), lambda m, x: m.negative_elbo(x)[0],
                              lambda m, n: m.sample(n), (X_DIM,)),
    "GMVAE": ModelCase(lambda: V.GMVAE(X_DIM, 3, hidden=(16,), k=4), lambda: (_binary(8),),
                       lambda m, x: m.negative_elbo(x)[0], lambda m, n: m.sample(n), (X_DIM,)),
    "SSVAE": ModelCase(lambda: V.SSVAE(X_DIM, 3, y_dim=10, hidden=(16,)), _ssvae_data,
                       lambda m, xu, xl, yl: m.loss(xu, xl, yl)["loss"],
                       lambda m, n: m.sample(torch.arange(n) % 10), (X_DIM,)),
    "AutoregressiveVAE": ModelCase(lambda: V.AutoregressiveVAE(X_DIM, 3, hidden=(16,),
                                                               ar_hidden=(16,)),
                                   lambda: (_binary(8),), lambda m, x: m.negative_elbo(x)[0],
                                   lambda m, n: m.sample(n), (X_DIM,)),
    "FVSBN": _ar_case(lambda: AR.FVSBN(X_DIM)),
    "NADE": _ar_case(lambda: AR.NADE(X_DIM, hidden=8)),
    "MADE-bernoulli": _ar_case(lambda: AR.MADE(X_DIM, hidden_sizes=(24,), num_masks=3)),
    "MADE-gaussian": _ar_case(lambda: AR.MADE(X_DIM, hidden_sizes=(24,), output="gaussian"),
                              lambda: (_continuous(8),)),
    "MADE-mog": _ar_case(lambda: AR.MADE(X_DIM, hidden_sizes=(24, 24), output="mog"),
                         lambda: (_continuous(8),)),
    "PixelCNN": _ar_case(lambda: AR.PixelCNN(16, channels=4, layers=2),
                         lambda: (_binary_image(8),), 16),
    "GatedPixelCNN": _ar_case(lambda: AR.GatedPixelCNN(16, channels=4, layers=2,
                                                       kernel_size=3),
                              lambda: (_binary_image(8),), 16),
    "CausalTransformer": _ar_case(lambda: AR.CausalTransformer(16, d_model=8, heads=2,
                                                               layers=1),
                                  lambda: (_binary_image(8),), 16),
    "Planar": _flow_case(lambda: FL.Planar(X_DIM, layers=2)),
    "NICE": _flow_case(lambda: FL.NICE(X_DIM, layers=2, hidden=(16,))),
    "RealNVP": _flow_case(lambda: FL.RealNVP(X_DIM, layers=2, hidden=(16,))),
    "MAF": _flow_case(lambda: FL.MAF(X_DIM, layers=2, hidden=(24,))),
    "IAF": _flow_case(lambda: FL.IAF(X_DIM, layers=2, hidden=(24,))),
    "Glow": _flow_case(lambda: FL.Glow(X_DIM, layers=2, hidden=(16,))),
    "NSF": _flow_case(lambda: _perturbed(FL.NSF(X_DIM, layers=2, bins=4, hidden=(16,)))),
    "CNF": _flow_case(lambda: FL.CNF(X_DIM, hidden=(16,), steps=2)),
    "EnergyMLP": _energy_case(lambda: EBM.EnergyMLP(X_DIM, hidden=(16,)),
                              lambda: (_continuous(8), _continuous(16, seed=1)),
                              _standard_normal_log_prob, X_DIM),
    "DigitsEnergy": _energy_case(lambda: EBM.DigitsEnergy(channels=(4, 4, 4)),
                                 lambda: (_pixels(8), _pixels(16, seed=1)),
                                 lambda x: torch.zeros_like(x[:, 0]), 64),  # uniform noise
}


def _build(case: ModelCase) -> torch.nn.Module:
    torch.manual_seed(0)
    return case.build()


def _moved(data, **kw):
    return tuple(t.to(**kw) if t.is_floating_point() else t.to(kw.get("device", t.device))
                 for t in data)


@pytest.mark.parametrize("name", MODELS)
def test_model_loss_is_a_finite_scalar_whose_gradient_reaches_every_parameter(name):
    case = MODELS[name]
    model = _build(case)
    loss = case.loss(model, *case.data())
    assert loss.shape == () and torch.isfinite(loss)
    loss.backward()
    missing = [n for n, p in model.named_parameters()
               if p.grad is None or not bool(torch.isfinite(p.grad).all())
               or float(p.grad.abs().sum()) == 0.0]
    assert not missing, f"{name}: no gradient reaches {missing}"


@pytest.mark.parametrize("name", MODELS)
def test_model_samples_have_the_event_shape(name):
    case = MODELS[name]
    x = case.sample(_build(case), 5)
    assert x.shape == (5, *case.event_shape) and torch.isfinite(x).all()


def _check_moved(case: ModelCase, **where):
    model = _build(case).to(**where)
    tensors = dict(model.named_parameters()) | dict(model.named_buffers())
    dtype, device = where.get("dtype"), where.get("device")
    for n, t in tensors.items():
        # integer buffers (an ordering, MADE's degrees) keep their dtype, as in torch
        assert dtype is None or not t.is_floating_point() or t.dtype == dtype, \
            f"{n} stayed {t.dtype}"
        assert device is None or t.device.type == torch.device(device).type, f"{n} stayed"
    loss = case.loss(model, *_moved(case.data(), **where))
    sample = case.sample(model, 3)
    for out in (loss, sample):
        assert dtype is None or out.dtype == dtype
        assert device is None or out.device.type == torch.device(device).type


@pytest.mark.parametrize("name", MODELS)
def test_model_to_float64_moves_everything_and_computes_there(name):
    _check_moved(MODELS[name], dtype=F64)


@pytest.mark.gpu
@pytest.mark.parametrize("name", MODELS)
def test_model_to_cuda_moves_everything_and_computes_there(name):
    _check_moved(MODELS[name], device="cuda")


@pytest.mark.parametrize("name", MODELS)
def test_model_bad_input_names_the_argument(name):
    case = MODELS[name]
    model = _build(case)
    good = case.data()
    bad = (torch.zeros(good[0].shape[0], X_DIM + 1),) + good[1:]
    with pytest.raises(ValueError, match=r"^x\w*: expected"):
        case.loss(model, *bad)


# --------------------------------------------------------------------------------------
# fitted estimators
# --------------------------------------------------------------------------------------
ESTIMATORS = {
    **{f"GaussianMixture-{ct}": (lambda ct=ct: GaussianMixture(2, covariance_type=ct,
                                                                random_state=0),
                                 lambda: _continuous(60, 3))
       for ct in ("full", "diag", "spherical", "tied")},
    "BernoulliMixture": (lambda: BernoulliMixture(2, random_state=0), lambda: _binary(60)),
    "PPCA": (lambda: PPCA(1), lambda: _continuous(60, 3)),
    "MixturePPCA": (lambda: MixturePPCA(2, 1, random_state=0), lambda: _continuous(60, 3)),
}


def _points(sampled) -> torch.Tensor:
    """``sample`` returns ``X`` (PPCA) or ``(X, labels)`` (mixtures, as scikit-learn's)."""
    return sampled[0] if isinstance(sampled, tuple) else sampled


@pytest.mark.parametrize("name", ESTIMATORS)
def test_estimator_refuses_to_score_before_fit(name):
    build, data = ESTIMATORS[name]
    with pytest.raises(NotFittedError, match="fit"):
        build().score_samples(data())


@pytest.mark.filterwarnings("ignore::UserWarning")  # ConvergenceWarning on tiny data is fine
@pytest.mark.parametrize("name", ESTIMATORS)
def test_estimator_fit_score_sample(name):
    build, data = ESTIMATORS[name]
    X = data()
    model = build()
    assert model.fit(X) is model
    per_sample = model.score_samples(X)
    assert per_sample.shape == (len(X),) and torch.isfinite(per_sample).all()
    assert model.score(X) == pytest.approx(float(per_sample.mean()), rel=1e-12)
    same = build().fit(X.numpy()).score_samples(X.numpy())
    assert isinstance(same, np.ndarray)  # array in, same array out
    same = torch.from_numpy(same)
    torch.testing.assert_close(same.to(per_sample.dtype), per_sample, rtol=1e-10, atol=1e-10)
    drawn = _points(model.sample(7))
    assert drawn.shape == (7, X.shape[1]) and torch.isfinite(drawn).all()
    with pytest.raises(ValueError, match=r"^X: expected"):
        model.score_samples(X[:, :2])
    with pytest.raises(ValueError, match=r"^X: expected"):
        model.score_samples(np.zeros(5))


# --------------------------------------------------------------------------------------
# densities with log_prob and sample
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", TOY2D)
def test_density_samples_and_log_prob_shapes(name):
    density = get_toy2d(name)
    x = density.sample(32, seed=0)
    assert x.shape == (32, 2)
    logp = density.log_prob(x)
    assert logp.shape == (32,) and torch.isfinite(logp).all()
    assert density.log_prob(x.reshape(4, 8, 2)).shape == (4, 8)
    with pytest.raises(ValueError, match=r"^x: expected"):
        density.log_prob(torch.zeros(3, 5))
