"""Tests of coursekit.ebm (lecture 08) against independent computations: closed-form
stationary laws of Langevin dynamics on Gaussians, exact mixture moments, closed-form
gradients, hand-written objectives, closed-form score-matching / denoising-score-matching
values for Gaussians (Hyvärinen's consistency, Vincent's equivalence), NCE's optimum for
log Z, closed-form and grid normalisers for the partition-function estimators.

Statistical tolerances are a few standard errors computed from the sample sizes (or
from the samples themselves); every random draw is seeded.
"""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import torch
import torch.distributions as D
import torch.nn.functional as F
from scipy import stats

from coursekit import ebm
from coursekit.data import get_toy2d
from coursekit.data.toy2d import mode_centres

pytestmark = pytest.mark.usefixtures("one_torch_thread")

F64 = torch.float64


@pytest.fixture(autouse=True)
def _seed_global_rng():
    """Seed torch's global RNG too (network initialisations, ``Distribution.sample``)."""
    torch.manual_seed(0)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def gaussian_energy(mean, precision, offset: float = 0.0):
    """``E(x) = (x - m)^T P (x - m) / 2 + offset``, ``(n, d) -> (n,)``."""
    def energy(x):
        diff = x - mean
        return 0.5 * ((diff @ precision) * diff).sum(-1) + offset
    return energy


def gaussian_log_z(precision, offset: float = 0.0) -> float:
    """``log int exp(-E)`` for :func:`gaussian_energy`: ``d/2 log 2 pi - log det P / 2 - c``."""
    d = precision.shape[0]
    return 0.5 * d * math.log(2 * math.pi) - 0.5 * float(torch.logdet(precision)) - offset


def random_spd(d: int, seed: int) -> torch.Tensor:
    a = torch.randn(d, d, generator=gen(seed), dtype=F64)
    return a @ a.T / d + 0.5 * torch.eye(d, dtype=F64)


# a two-component mixture close enough for Langevin chains to hop between the modes
MIX_W, MIX_C, MIX_S = (0.3, 0.7), 1.2, 0.6


def mixture(loc, weights, scale) -> D.MixtureSameFamily:
    return D.MixtureSameFamily(D.Categorical(torch.as_tensor(weights, dtype=F64)),
                               D.Independent(D.Normal(loc, scale), 1))


def mixture_energy(loc, weights, scale):
    """``-log p`` of an isotropic Gaussian mixture, by hand (a few times faster under
    autograd than ``MixtureSameFamily.log_prob``, which the tests check it against)."""
    log_w = torch.log(torch.as_tensor(weights, dtype=F64))
    const = loc.shape[1] * math.log(2 * math.pi * scale ** 2) / 2

    def energy(x):
        d2 = ((x[:, None, :] - loc) ** 2).sum(-1)
        return -torch.logsumexp(log_w - 0.5 * d2 / scale ** 2, 1) + const
    return energy


MIX_LOC = torch.tensor([[-MIX_C, 0.0], [MIX_C, 0.0]], dtype=F64)


def eight_gaussians_energy(offset: float = 0.0):
    """The ``8gaussians`` toy density's ``-log p`` (+ offset), differentiable in ``x``
    (the toy's own ``log_prob`` is computed off the graph)."""
    centres, sigma = mode_centres("8gaussians")

    def energy(x):
        d2 = ((x[:, None, :] - centres.to(x)) ** 2).sum(-1)
        log_kernel = -0.5 * d2 / sigma ** 2 - math.log(2 * math.pi * sigma ** 2)
        return -(torch.logsumexp(log_kernel, 1) - math.log(len(centres))) + offset
    return energy


# --------------------------------------------------------------------------------------
# langevin_sample
# --------------------------------------------------------------------------------------
def ula_variance(h: float, s2: float) -> float:
    """Stationary variance of ``x' = (1 - h/s^2) x + sqrt(2h) xi`` (AR(1))."""
    a = 1 - h / s2
    return 2 * h / (1 - a * a)


def test_langevin_stationary_variance_is_ulas_closed_form_and_the_bias_shrinks_with_h():
    s2, n = 1.5, 20_000
    energy = gaussian_energy(torch.zeros(2, dtype=F64), torch.eye(2, dtype=F64) / s2)
    biases = []
    for i, h in enumerate((0.6, 0.2, 0.05)):
        x0 = math.sqrt(s2) * torch.randn(n, 2, generator=gen(i), dtype=F64)
        # burn-in: the distance to stationarity shrinks by (1 - h/s^2)^2 per step
        steps = math.ceil(math.log(1e-6) / (2 * math.log(1 - h / s2)))
        x = ebm.langevin_sample(energy, x0, steps, h, generator=10 + i)
        var = x.var(0)  # two independent estimates (the coordinates), each of n chains
        expected = ula_variance(h, s2)
        se = expected * math.sqrt(2 / (n - 1))  # sd of a Gaussian sample variance
        assert (var - expected).abs().max() < 4 * se, (h, var, expected)
        biases.append(abs(float(var.mean()) - s2))
    assert biases[0] > biases[1] > biases[2]
    assert biases[0] > 10 * s2 * math.sqrt(2 / n)  # the large step's bias is visible


def test_langevin_on_a_two_gaussian_mixture_matches_exact_occupancy_and_moments():
    p = mixture(MIX_LOC, MIX_W, MIX_S)
    energy = mixture_energy(MIX_LOC, MIX_W, MIX_S)
    z = 3 * torch.randn(50, 2, generator=gen(5), dtype=F64)
    torch.testing.assert_close(energy(z), -p.log_prob(z), rtol=1e-12, atol=1e-12)
    # chains start uniform on [-4, 4]^2 (half of them on each side, the target puts 70%
    # right): occupancy is off by 13 standard errors after 100 steps, 3 after 300, and the
    # gap shrinks by e^-0.28 per time unit (h * steps), so 1000 steps leave < 0.1 of one
    n, h, steps = 2000, 0.02, 1000
    x0 = -4 + 8 * torch.rand(n, 2, generator=gen(0), dtype=F64)
    x = ebm.langevin_sample(energy, x0, steps, h, generator=1)
    # exact values: P(x1 > 0), E x1, Var x1, E x2 of the mixture
    w0, w1 = MIX_W
    phi = float(D.Normal(0.0, 1.0).cdf(torch.tensor(MIX_C / MIX_S)))
    right = w1 * phi + w0 * (1 - phi)
    m1 = (w1 - w0) * MIX_C
    v1 = MIX_S ** 2 + MIX_C ** 2 - m1 ** 2
    v2 = MIX_S ** 2
    y = p.sample((n,))  # an exact sample of the same size (two-sample z-scores)
    # the sd of a sample variance is sqrt((m4 - v^2) / n), m4 the fourth central moment
    m4 = float(((y[:, 0] - m1) ** 4).mean())
    checks = [  # (statistic, exact value, its sd for n samples)
        (lambda z: (z[:, 0] > 0).double().mean(), right, math.sqrt(right * (1 - right) / n)),
        (lambda z: z[:, 0].mean(), m1, math.sqrt(v1 / n)),
        (lambda z: z[:, 0].var(), v1, math.sqrt((m4 - v1 ** 2) / n)),
        (lambda z: z[:, 1].mean(), 0.0, math.sqrt(v2 / n)),
    ]
    for stat, exact, sd in checks:
        assert abs(float(stat(x)) - exact) < 4.5 * sd, (float(stat(x)), exact, sd)
        assert abs(float(stat(x)) - float(stat(y))) < 4.5 * math.sqrt(2) * sd
    # the target factorises, N(x2; 0, s^2) times a mixture in x1: in x2 the chain is
    # exactly ULA on a Gaussian, whose stationary variance is known (2.8% above s^2 here)
    assert abs(float(x[:, 1].var()) - ula_variance(h, v2)) < 4.5 * v2 * math.sqrt(2 / n)


def test_langevin_without_noise_descends_to_the_nearest_mode():
    loc = torch.tensor([[-2.0, 0.0], [2.0, 1.0]], dtype=F64)
    energy = mixture_energy(loc, (0.5, 0.5), 0.5)
    x0 = torch.cat([torch.empty(50, 1, dtype=F64).uniform_(-3.5, -0.5, generator=gen(0)),
                    torch.empty(50, 1, dtype=F64).uniform_(0.7, 3.5, generator=gen(1))])
    x0 = torch.cat([x0, torch.empty(100, 1, dtype=F64).uniform_(-1, 2, generator=gen(2))], 1)
    x = ebm.langevin_sample(energy, x0, 300, 0.05, noise_scale=0.0)
    nearest = loc[(x0[:, None, :] - loc).pow(2).sum(-1).argmin(1)]
    torch.testing.assert_close(x, nearest, atol=1e-6, rtol=0)
    # deterministic: no noise is drawn
    again = ebm.langevin_sample(energy, x0, 300, 0.05, noise_scale=0.0,
                                generator=123)
    assert torch.equal(x, again)


def test_langevin_noise_scale_targets_a_lower_temperature():
    # sigma < 1 on N(0, s^2) is ULA on N(0, sigma^2 s^2) with the same drift:
    # x' = (1 - h/s^2) x + sigma sqrt(2h) xi, variance sigma^2 * ula_variance(h, s2)
    s2, h, sigma, n = 1.0, 0.1, 0.5, 20_000
    energy = lambda x: 0.5 * (x ** 2).sum(-1) / s2  # noqa: E731
    x = ebm.langevin_sample(energy, torch.zeros(n, 1, dtype=F64), 150, h,
                            noise_scale=sigma, generator=0)
    expected = sigma ** 2 * ula_variance(h, s2)
    assert abs(float(x.var()) - expected) < 4 * expected * math.sqrt(2 / n)


def test_langevin_bounds_clip_each_step():
    energy = lambda x: -(x * torch.tensor([3.0, -3.0], dtype=F64)).sum(-1)  # noqa: E731
    x0 = torch.rand(64, 2, generator=gen(0), dtype=F64)
    path = ebm.langevin_sample(energy, x0, 30, 0.05, bounds=(0.0, 1.0), generator=1,
                               return_path=True)
    assert path.min() >= 0.0 and path.max() <= 1.0
    # the drift pushes coordinate 0 up and coordinate 1 down: the walls are reached
    assert (path[-1, :, 0] == 1.0).any() and (path[-1, :, 1] == 0.0).any()
    # one clipped step is the clamp of one free step with the same noise
    free = ebm.langevin_sample(energy, x0, 1, 0.05, generator=1)
    clipped = ebm.langevin_sample(energy, x0, 1, 0.05, bounds=(0.0, 1.0), generator=1)
    assert torch.equal(clipped, free.clamp(0.0, 1.0))
    assert not torch.equal(free, clipped)


def test_langevin_return_path_shape_and_consistency():
    energy = lambda x: 0.5 * (x ** 2).sum(-1)  # noqa: E731
    x0 = torch.randn(7, 3, generator=gen(0), dtype=F64)
    path = ebm.langevin_sample(energy, x0, 5, 0.1, generator=2, return_path=True)
    final = ebm.langevin_sample(energy, x0, 5, 0.1, generator=2)
    assert path.shape == (6, 7, 3)
    assert torch.equal(path[0], x0) and torch.equal(path[-1], final)
    assert not path.requires_grad
    assert torch.equal(ebm.langevin_sample(energy, x0, 0, 0.1), x0)
    # the chain's increments are the ULA update with the drift of E = |x|^2 / 2
    noise = path[1:] - (1 - 0.1) * path[:-1]
    assert abs(float(noise.var()) - 0.2) < 4 * 0.2 * math.sqrt(2 / noise.numel())


def test_langevin_leaves_parameter_gradients_alone():
    model = ebm.EnergyMLP(2, hidden=(8,))
    ebm.langevin_sample(model.energy, torch.zeros(5, 2), 3, 0.1, generator=0)
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("kwargs, error, name", [
    (dict(step_size=0.0), ValueError, "step_size"),
    (dict(step_size=-1.0), ValueError, "step_size"),
    (dict(step_size="0.1"), TypeError, "step_size"),
    (dict(n_steps=-1), ValueError, "n_steps"),
    (dict(n_steps=2.0), TypeError, "n_steps"),
    (dict(noise_scale=-0.5), ValueError, "noise_scale"),
    (dict(noise_scale=math.nan), ValueError, "noise_scale"),
    (dict(bounds=(1.0, 0.0)), ValueError, "bounds"),
    (dict(bounds=(0.0, math.inf)), ValueError, "bounds"),
    (dict(bounds=(0.0,)), TypeError, "bounds"),
    (dict(bounds=0.5), TypeError, "bounds"),
    (dict(bounds=(0.0, "1")), TypeError, "bounds"),
    (dict(x0=torch.zeros(4)), ValueError, "x0"),
    (dict(x0=torch.zeros(4, 2, dtype=torch.long)), ValueError, "x0"),
    (dict(x0=torch.full((4, 2), math.nan)), ValueError, "x0"),
    (dict(x0=[[0.0, 0.0]]), ValueError, "x0"),
    (dict(energy=lambda x: (x ** 2)), ValueError, "energy"),
    (dict(generator="seed"), ValueError, "generator"),
])
def test_langevin_bad_input_names_the_argument(kwargs, error, name):
    args = dict(energy=lambda x: (x ** 2).sum(-1), x0=torch.zeros(4, 2), n_steps=2,
                step_size=0.1) | kwargs
    energy, x0, n_steps, step_size = (args.pop(k) for k in
                                      ("energy", "x0", "n_steps", "step_size"))
    with pytest.raises(error, match=rf"^{name}: "):
        ebm.langevin_sample(energy, x0, n_steps, step_size, **args)


# --------------------------------------------------------------------------------------
# mala_sample
# --------------------------------------------------------------------------------------
def test_mala_is_exact_with_a_step_where_ula_is_biased():
    s2, h, n = 1.0, 0.8, 10_000
    energy = lambda x: 0.5 * (x ** 2).sum(-1) / s2  # noqa: E731
    x0 = torch.zeros(n, 1, dtype=F64)
    x, rate = ebm.mala_sample(energy, x0, 200, h, generator=0)
    se = s2 * math.sqrt(2 / n)
    assert abs(float(x.var()) - s2) < 4 * se
    assert abs(float(x.mean())) < 4 * math.sqrt(s2 / n)
    ula = ebm.langevin_sample(energy, x0, 200, h, generator=0)
    assert abs(float(ula.var()) - ula_variance(h, s2)) < 4 * ula_variance(h, s2) * math.sqrt(2 / n)
    assert float(ula.var()) - s2 > 10 * se  # the bias MALA removes
    assert x.shape == (n, 1) and rate.shape == (n,)
    assert ((rate > 0) & (rate <= 1)).all()
    # a rate is a count of accepted moves out of n_steps
    torch.testing.assert_close(rate * 200, (rate * 200).round(), atol=1e-9, rtol=0)
    assert 0.3 < float(rate.mean()) < 1.0
    # smaller steps are accepted more often
    _, small = ebm.mala_sample(energy, x0[:2000], 50, 0.05, generator=1)
    assert float(small.mean()) > float(rate.mean())


def test_mala_bad_input_names_the_argument():
    energy = lambda x: (x ** 2).sum(-1)  # noqa: E731
    with pytest.raises(ValueError, match="^n_steps: "):
        ebm.mala_sample(energy, torch.zeros(3, 2), 0, 0.1)
    with pytest.raises(ValueError, match="^step_size: "):
        ebm.mala_sample(energy, torch.zeros(3, 2), 2, 0.0)
    with pytest.raises(ValueError, match="^x0: "):
        ebm.mala_sample(energy, torch.zeros(3), 2, 0.1)


# --------------------------------------------------------------------------------------
# ReplayBuffer
# --------------------------------------------------------------------------------------
def _buffer(capacity: int = 100, reinit_prob: float = 0.0) -> ebm.ReplayBuffer:
    states = torch.arange(capacity, dtype=F64)[:, None].repeat(1, 3)  # row i holds i
    return ebm.ReplayBuffer(states, reinit_prob)


def test_replay_buffer_without_restarts_returns_stored_states():
    buf = _buffer(100, 0.0)
    restart = torch.full((5000, 3), -1.0, dtype=F64)
    x, index = buf.sample(5000, restart, generator=0)
    assert x.shape == (5000, 3) and index.shape == (5000,)
    assert torch.equal(x, buf.states[index])
    assert (index >= 0).all() and (index < 100).all()
    # indices uniform over the capacity (chi-square test)
    counts = torch.bincount(index, minlength=100).numpy()
    assert stats.chisquare(counts).pvalue > 1e-4
    assert len(buf) == 100


def test_replay_buffer_always_restarts_with_probability_one():
    buf = _buffer(100, 1.0)
    restart = -1.0 - torch.rand(64, 3, generator=gen(0), dtype=F64)
    x, _ = buf.sample(64, restart, generator=1)
    assert torch.equal(x, restart)


def test_replay_buffer_restart_fraction_is_binomial():
    p, n = 0.3, 20_000
    buf = _buffer(50, p)
    restart = torch.full((n, 3), -1.0, dtype=F64)
    x, index = buf.sample(n, restart, generator=0)
    fresh = (x == -1.0).all(1)
    assert torch.equal(x[~fresh], buf.states[index[~fresh]])
    assert abs(float(fresh.double().mean()) - p) < 4 * math.sqrt(p * (1 - p) / n)


def test_replay_buffer_update_writes_back_at_the_indices():
    buf = _buffer(100, 0.0)
    before = buf.states.clone()
    index = torch.tensor([3, 50, 7])
    moved = torch.randn(3, 3, generator=gen(0), dtype=F64).requires_grad_(True)
    buf.update(index, moved * 2)
    assert torch.equal(buf.states[index], (moved * 2).detach())
    keep = torch.ones(100, dtype=torch.bool)
    keep[index] = False
    assert torch.equal(buf.states[keep], before[keep])
    assert not buf.states.requires_grad
    # the stored states are a copy of the initial tensor, and the buffer pickles
    states = torch.zeros(4, 2)
    other = ebm.ReplayBuffer(states)
    other.update(torch.tensor([0]), torch.ones(1, 2))
    assert states.sum() == 0
    again = pickle.loads(pickle.dumps(buf))
    assert torch.equal(again.states, buf.states) and again.reinit_prob == buf.reinit_prob


def test_replay_buffer_bad_input_names_the_argument():
    buf = _buffer(10, 0.1)
    with pytest.raises(ValueError, match="^restart: "):
        buf.sample(4, torch.zeros(4, 2))
    with pytest.raises(ValueError, match="^restart: "):
        buf.sample(4, torch.zeros(5, 3))
    with pytest.raises(ValueError, match="^n: "):
        buf.sample(0, torch.zeros(0, 3))
    with pytest.raises(ValueError, match="^x: "):
        buf.update(torch.tensor([0, 1]), torch.zeros(3, 3))
    with pytest.raises(ValueError, match="^x: "):
        buf.update(torch.tensor([0, 1]), torch.zeros(2, 2))
    with pytest.raises(ValueError, match="^reinit_prob: "):
        ebm.ReplayBuffer(torch.zeros(4, 2), 1.5)
    with pytest.raises(ValueError, match="^states: "):
        ebm.ReplayBuffer(torch.zeros(4))


# --------------------------------------------------------------------------------------
# energy_grad
# --------------------------------------------------------------------------------------
def test_energy_grad_matches_the_closed_form():
    a = random_spd(3, 0)
    b = torch.tensor([0.5, -1.0, 2.0], dtype=F64)
    energy = lambda x: 0.5 * ((x @ a) * x).sum(-1) + x @ b + torch.sin(x).sum(-1)  # noqa: E731
    x = torch.randn(10, 3, generator=gen(1), dtype=F64)
    torch.testing.assert_close(ebm.energy_grad(energy, x), x @ a + b + torch.cos(x),
                               rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="^energy: "):
        ebm.energy_grad(lambda z: z.sum(), x)
    model = ebm.EnergyMLP(3, hidden=(8,))
    ebm.energy_grad(model, x.float())
    assert all(p.grad is None for p in model.parameters())


# --------------------------------------------------------------------------------------
# cd_loss
# --------------------------------------------------------------------------------------
def _features(x):
    """phi(x) of the linear energy E_theta(x) = theta . phi(x)."""
    return torch.cat([x, (x ** 2).sum(-1, keepdim=True)], 1)


@pytest.mark.parametrize("alpha", [0.0, 0.3])
def test_cd_loss_gradient_is_data_minus_model_feature_means(alpha):
    theta = torch.tensor([0.4, -0.7, 0.25], dtype=F64, requires_grad=True)
    data = torch.randn(40, 2, generator=gen(0), dtype=F64)
    samples = 2 + torch.randn(25, 2, generator=gen(1), dtype=F64)
    phi_d, phi_s = _features(data), _features(samples)
    ed, es = phi_d @ theta, phi_s @ theta
    loss = ebm.cd_loss(ed, es, l2=alpha)
    (grad,) = torch.autograd.grad(loss, theta)
    ed, es = ed.detach(), es.detach()
    expected = phi_d.mean(0) - phi_s.mean(0) + alpha * (
        2 * (ed[:, None] * phi_d).mean(0) + 2 * (es[:, None] * phi_s).mean(0))
    torch.testing.assert_close(grad, expected, rtol=1e-12, atol=1e-12)
    value = ed.mean() - es.mean() + alpha * ((ed ** 2).mean() + (es ** 2).mean())
    assert loss.item() == pytest.approx(float(value), rel=1e-12, abs=1e-12)


def test_cd_loss_bad_input_names_the_argument():
    good = torch.zeros(3)
    with pytest.raises(ValueError, match="^energy_data: "):
        ebm.cd_loss(torch.zeros(3, 1), good)
    with pytest.raises(ValueError, match="^energy_samples: "):
        ebm.cd_loss(good, torch.zeros(0))
    with pytest.raises(ValueError, match="^energy_samples: "):
        ebm.cd_loss(good, [1.0, 2.0])
    with pytest.raises(ValueError, match="^l2: "):
        ebm.cd_loss(good, good, l2=-0.1)


# --------------------------------------------------------------------------------------
# score_matching_loss
# --------------------------------------------------------------------------------------
def _gaussian_problem(d=3, n=200, seed=0):
    mean = torch.randn(d, generator=gen(seed), dtype=F64)
    precision = random_spd(d, seed + 1)
    x = torch.randn(n, d, generator=gen(seed + 2), dtype=F64) * 1.3 + 0.2
    return mean, precision, x


def test_exact_score_matching_of_a_gaussian_energy_is_its_closed_form():
    mean, precision, x = _gaussian_problem()
    value = ebm.score_matching_loss(gaussian_energy(mean, precision), x)
    closed = 0.5 * ((x - mean) @ precision).pow(2).sum(-1).mean() - precision.trace()
    assert value.item() == pytest.approx(closed.item(), abs=1e-10)


def test_exact_score_matching_of_a_network_matches_autograd_hessians():
    torch.manual_seed(0)
    model = ebm.EnergyMLP(3, hidden=(16, 16)).double()
    x = torch.randn(6, 3, generator=gen(1), dtype=F64)
    value = ebm.score_matching_loss(model, x)
    terms = []
    for xi in x:
        energy = lambda z: model(z[None])[0]  # noqa: E731,B023
        grad = torch.autograd.functional.jacobian(energy, xi)
        hess = torch.autograd.functional.hessian(energy, xi)
        terms.append(0.5 * grad.pow(2).sum() - hess.trace())
    assert value.item() == pytest.approx(torch.stack(terms).mean().item(), abs=1e-10)
    # the loss carries a graph to the parameters (all but log_z and the last bias, which
    # shift the energy by a constant and so leave its score alone)
    value.backward()
    last_bias = f"net.{len(model.net) - 1}.bias"
    grads = {n: p.grad for n, p in model.named_parameters()}
    assert grads["log_z"] is None and grads[last_bias] is None
    assert all(g is not None and bool(g.abs().sum() > 0) for n, g in grads.items()
               if n not in ("log_z", last_bias))


def test_sliced_score_matching_agrees_with_exact_statistically():
    mean, precision, x = _gaussian_problem()
    energy = gaussian_energy(mean, precision)
    exact = ebm.score_matching_loss(energy, x).item()
    # v^T (grad s) v = -v^T P v: variance 2 tr(P^2) per projection and point
    var_one = 2 * float((precision @ precision).trace())
    k = 200
    sliced = ebm.score_matching_loss(energy, x, method="sliced", n_projections=k,
                                     generator=0).item()
    assert abs(sliced - exact) < 4 * math.sqrt(var_one / (k * len(x)))
    # unbiased: the average over many seeds of one projection each
    seeds = 300
    mean_sliced = sum(ebm.score_matching_loss(energy, x, method="sliced", generator=s).item()
                      for s in range(seeds)) / seeds
    assert abs(mean_sliced - exact) < 4 * math.sqrt(var_one / (seeds * len(x)))
    # and it is random: two seeds differ
    a, b = (ebm.score_matching_loss(energy, x, method="sliced", generator=s).item()
            for s in (1, 2))
    assert a != b


def test_score_matching_is_minimised_at_the_data_precision():
    # Hyvarinen's consistency on N(0, v I) data and E_p(x) = p |x|^2 / 2
    d, v, n = 2, 0.5, 20_000
    x = math.sqrt(v) * torch.randn(n, d, generator=gen(0), dtype=F64)
    grid = torch.arange(1.0, 3.0001, 0.02, dtype=F64)
    values = torch.stack([ebm.score_matching_loss(lambda z, p=p: 0.5 * p * (z ** 2).sum(-1), x)
                          for p in grid])
    best = float(grid[values.argmin()])
    # the sample minimiser is d / mean |x|^2 (the objective is p^2 mean|x|^2 / 2 - d p)
    assert abs(best - d / float((x ** 2).sum(-1).mean())) <= 0.01 + 1e-9
    # and d / mean |x|^2 estimates 1/v with relative sd sqrt(2 / (n d))
    assert abs(best - 1 / v) < 0.01 + 4 * (1 / v) * math.sqrt(2 / (n * d))


def test_score_matching_bad_input_names_the_argument():
    energy = lambda z: (z ** 2).sum(-1)  # noqa: E731
    with pytest.raises(ValueError, match="^x: "):
        ebm.score_matching_loss(energy, torch.zeros(4))
    with pytest.raises(ValueError, match="^x: "):
        ebm.score_matching_loss(energy, torch.zeros(4, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="^method: "):
        ebm.score_matching_loss(energy, torch.zeros(4, 2), method="hutchinson")
    with pytest.raises(ValueError, match="^n_projections: "):
        ebm.score_matching_loss(energy, torch.zeros(4, 2), method="sliced", n_projections=0)


# --------------------------------------------------------------------------------------
# dsm_loss
# --------------------------------------------------------------------------------------
def test_dsm_differences_equal_explicit_score_matching_on_the_noised_data():
    # Vincent (2011): DSM(theta) = ESM_q_sigma(theta) + const. With data N(m, C) the
    # noised density is q_sigma = N(m, S), S = C + sigma^2 I, and for a Gaussian energy
    # (score s = -P (x - mu)) ESM(theta) = [tr(P S P) + |P (m - mu)|^2] / 2 - tr(P) + const.
    d, sigma = 2, 0.6
    m = torch.tensor([0.5, -1.0], dtype=F64)
    c_half = torch.tensor([[1.0, 0.0], [0.6, 0.5]], dtype=F64)
    cov = c_half @ c_half.T
    s_cov = cov + sigma ** 2 * torch.eye(d, dtype=F64)
    thetas = [(torch.tensor([0.3, -0.8], dtype=F64), random_spd(d, 1)),
              (torch.tensor([0.0, 0.5], dtype=F64), random_spd(d, 2))]

    def esm(mu, p):
        return float(0.5 * ((p @ s_cov @ p).trace() + (p @ (m - mu)).pow(2).sum())
                     - p.trace())

    exact = esm(*thetas[0]) - esm(*thetas[1])
    batches, n = 20, 5000
    diffs = []
    for b in range(batches):
        x = m + torch.randn(n, d, generator=gen(b), dtype=F64) @ c_half.T
        # common random numbers: the same data and the same noise for both energies
        l1, l2 = (ebm.dsm_loss(gaussian_energy(mu, p), x, sigma, generator=100 + b).item()
                  for mu, p in thetas)
        diffs.append(l1 - l2)
    diffs = torch.tensor(diffs, dtype=F64)
    se = float(diffs.std()) / math.sqrt(batches)
    assert abs(float(diffs.mean()) - exact) < 5 * se + 1e-3, (float(diffs.mean()), exact, se)
    # the two energies are far apart, so the check is not vacuous
    assert abs(exact) > 20 * se


def test_dsm_is_minimised_at_the_noised_datas_score():
    # data N(0, v I), E_p(x) = p |x|^2 / 2: DSM is minimised at p = 1 / (v + sigma^2)
    d, v, sigma, n = 2, 0.5, math.sqrt(0.5), 20_000
    x = math.sqrt(v) * torch.randn(n, d, generator=gen(0), dtype=F64)
    grid = torch.arange(0.5, 2.5001, 0.02, dtype=F64)
    values = torch.stack([ebm.dsm_loss(lambda z, p=p: 0.5 * p * (z ** 2).sum(-1), x, sigma,
                                       generator=1) for p in grid])
    best = float(grid[values.argmin()])
    # the estimate p_hat = mean(x~ . eps / sigma) / mean |x~|^2 has relative sd about
    # sqrt(var(x~.eps/sigma) / n) / d with var = d v / sigma^2 + 2 d (here 6)
    target = 1 / (v + sigma ** 2)
    assert abs(best - target) < 0.01 + 4 * target * math.sqrt(6 / n) / d
    assert abs(best - 1 / v) > 0.5  # not the data's own precision


def test_dsm_loss_graph_and_bad_input():
    model = ebm.EnergyMLP(2, hidden=(8,))
    loss = ebm.dsm_loss(model, torch.randn(16, 2, generator=gen(0)), 0.1, generator=0)
    assert loss.shape == () and torch.isfinite(loss)
    loss.backward()
    last_bias = f"net.{len(model.net) - 1}.bias"
    assert all(p.grad is not None for n, p in model.named_parameters()
               if n not in ("log_z", last_bias))
    energy = lambda z: (z ** 2).sum(-1)  # noqa: E731
    with pytest.raises(ValueError, match="^sigma: "):
        ebm.dsm_loss(energy, torch.zeros(4, 2), 0.0)
    with pytest.raises(ValueError, match="^x: "):
        ebm.dsm_loss(energy, torch.zeros(4), 0.1)


# --------------------------------------------------------------------------------------
# nce_loss
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("n, m", [(7, 7), (7, 21), (12, 5)])
def test_nce_loss_is_a_weighted_binary_cross_entropy(n, m):
    g = gen(n + m)
    lmd, lnd, lmn, lnn = (torch.randn(k, generator=g, dtype=F64) * 2 for k in (n, n, m, m))
    logits = torch.cat([lmd - lnd, lmn - lnn]) - math.log(m / n)
    labels = torch.cat([torch.ones(n, dtype=F64), torch.zeros(m, dtype=F64)])
    # the sum of the n + m cross-entropies, per data point
    expected = F.binary_cross_entropy_with_logits(logits, labels, reduction="sum") / n
    assert float(ebm.nce_loss(lmd, lnd, lmn, lnn)) == pytest.approx(float(expected), rel=1e-12)


def test_nce_optimum_for_c_is_log_z():
    # data N(mu, Sigma); model exp(-E - c) with E the true unnormalised energy; noise N(0, 4 I)
    d, n, nu = 2, 20_000, 2
    mu = torch.tensor([0.5, -0.3], dtype=F64)
    precision = random_spd(d, 3)
    cov = torch.linalg.inv(precision)
    data = D.MultivariateNormal(mu, covariance_matrix=cov)
    noise = D.MultivariateNormal(torch.zeros(d, dtype=F64), 4 * torch.eye(d, dtype=F64))
    torch.manual_seed(0)
    x, y = data.sample((n,)), noise.sample((nu * n,))
    energy = gaussian_energy(mu, precision, offset=1.7)
    log_z = gaussian_log_z(precision, offset=1.7)
    ex, ey, qx, qy = energy(x), energy(y), noise.log_prob(x), noise.log_prob(y)

    def loss(c):
        return ebm.nce_loss(-ex - c, qx, -ey - c, qy)

    c = torch.zeros((), dtype=F64, requires_grad=True)
    for _ in range(30):  # Newton's method on the convex 1-D objective
        (g,) = torch.autograd.grad(loss(c), c, create_graph=True)
        (h,) = torch.autograd.grad(g, c)
        with torch.no_grad():
            c -= g / h
    (g,) = torch.autograd.grad(loss(c), c)
    assert abs(float(g)) < 1e-10
    # delta method: c_hat solves mean_x sig(-G) = nu mean_y sig(G); its sd is
    # sqrt(var(sig(-G_x)) / n + nu^2 var(sig(G_y)) / m) / slope
    with torch.no_grad():
        gx = -ex - c - qx - math.log(nu)
        gy = -ey - c - qy - math.log(nu)
        slope = (torch.sigmoid(gx) * torch.sigmoid(-gx)).mean() \
            + nu * (torch.sigmoid(gy) * torch.sigmoid(-gy)).mean()
        sd = math.sqrt(float(torch.sigmoid(-gx).var()) / n
                       + nu ** 2 * float(torch.sigmoid(gy).var()) / (nu * n)) / float(slope)
    assert abs(c.item() - log_z) < 4 * sd, (c.item(), log_z, sd)
    assert sd < 0.05  # the test has power


def test_nce_loss_bad_input_names_the_argument():
    a, b = torch.zeros(4), torch.zeros(6)
    with pytest.raises(ValueError, match="^log_model_data: "):
        ebm.nce_loss(torch.zeros(4, 1), a, b, b)
    with pytest.raises(ValueError, match="^log_noise_noise: "):
        ebm.nce_loss(a, a, b, torch.zeros(0))
    with pytest.raises(ValueError, match="^log_noise_data"):
        ebm.nce_loss(a, torch.zeros(5), b, b)


# --------------------------------------------------------------------------------------
# grid_log_partition
# --------------------------------------------------------------------------------------
def test_grid_log_partition_of_gaussians():
    p1 = torch.tensor([[1 / 0.7 ** 2]], dtype=F64)
    value = ebm.grid_log_partition(gaussian_energy(torch.zeros(1, dtype=F64), p1, 3.0),
                                   extent=5.0, resolution=400, dim=1)
    assert value == pytest.approx(0.5 * math.log(2 * math.pi * 0.49) - 3.0, abs=1e-8)
    cov = torch.tensor([[1.0, 0.5], [0.5, 0.6]], dtype=F64)
    for mean, precision in [(torch.zeros(2, dtype=F64), torch.diag(torch.tensor(
            [1 / 0.8 ** 2, 1 / 0.3 ** 2], dtype=F64))),
            (torch.tensor([0.3, -0.2], dtype=F64), torch.linalg.inv(cov))]:
        energy = gaussian_energy(mean, precision, -1.2)
        value = ebm.grid_log_partition(energy, extent=6.0, resolution=300)
        assert value == pytest.approx(gaussian_log_z(precision, -1.2), abs=1e-8)
        # the chunking does not change the sum
        assert ebm.grid_log_partition(energy, extent=6.0, resolution=300,
                                      chunk=977) == pytest.approx(value, abs=1e-12)


def test_grid_log_partition_of_a_normalised_toy_density_is_zero():
    density = get_toy2d("8gaussians")
    value = ebm.grid_log_partition(lambda x: -density.log_prob(x), extent=4.0, resolution=300)
    assert value == pytest.approx(0.0, abs=1e-6)


def test_grid_log_partition_bad_input():
    energy = lambda x: (x ** 2).sum(-1)  # noqa: E731
    with pytest.raises(ValueError, match=r"^dim: .*estimate_log_partition"):
        ebm.grid_log_partition(energy, dim=3)
    with pytest.raises(ValueError, match="^extent: "):
        ebm.grid_log_partition(energy, extent=0.0)
    with pytest.raises(ValueError, match="^resolution: "):
        ebm.grid_log_partition(energy, resolution=1)
    with pytest.raises(ValueError, match="^energy: "):
        ebm.grid_log_partition(lambda x: x, resolution=10)


# --------------------------------------------------------------------------------------
# estimate_log_partition
# --------------------------------------------------------------------------------------
def _close(result: ebm.LogPartition, truth: float, slack: float = 0.05) -> bool:
    return abs(result.log_z - truth) < 3 * result.stderr + slack


def test_ais_on_a_ten_dimensional_gaussian():
    d, s = 10, 2.0
    precision = torch.eye(d, dtype=F64) / s ** 2
    energy = gaussian_energy(torch.full((d,), 0.5, dtype=F64), precision, offset=2.0)
    result = ebm.estimate_log_partition(energy, d, n_samples=256, n_steps=200, seed=0,
                                        dtype=F64)
    truth = gaussian_log_z(precision, offset=2.0)
    assert _close(result, truth), (result, truth)
    assert result.stderr < 0.3


def test_ais_on_a_toy_density_matches_the_grid():
    energy = eight_gaussians_energy(offset=-1.5)
    # the differentiable energy is the toy density's -log p
    x = get_toy2d("8gaussians").sample(100, seed=0).double()
    torch.testing.assert_close(energy(x) + 1.5, -get_toy2d("8gaussians").log_prob(x),
                               rtol=1e-10, atol=1e-10)
    truth = ebm.grid_log_partition(energy, extent=4.0, resolution=300)
    assert truth == pytest.approx(1.5, abs=1e-6)
    result = ebm.estimate_log_partition(energy, 2, n_samples=512, n_steps=300, init_std=2.0,
                                        seed=0, dtype=F64)
    assert _close(result, truth), (result, truth)


def test_ais_on_a_box():
    a = torch.linspace(-3.5, 4.0, 8, dtype=F64)  # no zero slope
    energy = lambda x: x @ a  # noqa: E731
    truth = float(torch.log(-torch.expm1(-a) / a).sum())
    # (over seeds 0-5 the error is within 1.3 stderr, stderr about 0.05)
    result = ebm.estimate_log_partition(energy, 8, n_samples=1024, n_steps=300,
                                        bounds=(0.0, 1.0), seed=0, dtype=F64)
    assert result.stderr < 0.2
    assert _close(result, truth), (result, truth)


def test_ais_stderr_shrinks_with_more_samples_and_the_result_is_a_named_pair():
    d = 3
    energy = gaussian_energy(torch.zeros(d, dtype=F64), 4 * torch.eye(d, dtype=F64))
    small = ebm.estimate_log_partition(energy, d, n_samples=32, n_steps=20, seed=0, dtype=F64)
    large = ebm.estimate_log_partition(energy, d, n_samples=512, n_steps=20, seed=0,
                                       dtype=F64)
    # stderr ~ sd(w) / (mean(w) sqrt(n)): 16 times the samples, about a quarter
    assert large.stderr < small.stderr / 2
    assert isinstance(large, ebm.LogPartition) and isinstance(large, tuple)
    log_z, stderr = large
    assert (large.log_z, large.stderr) == (log_z, stderr) == (large[0], large[1])
    assert isinstance(log_z, float) and isinstance(stderr, float)
    assert "log_z=" in repr(large)
    assert pickle.loads(pickle.dumps(large)) == large
    # the same seed gives the same estimate
    assert ebm.estimate_log_partition(energy, d, n_samples=512, n_steps=20, seed=0,
                                      dtype=F64) == large


def test_ais_bad_input_names_the_argument():
    energy = lambda x: (x ** 2).sum(-1)  # noqa: E731
    for kwargs, name in [(dict(dim=0), "dim"), (dict(n_samples=1), "n_samples"),
                         (dict(n_steps=0), "n_steps"), (dict(init_std=0.0), "init_std"),
                         (dict(bounds=(1.0, 1.0)), "bounds"),
                         (dict(bounds=(0.0, 1.0, 2.0)), "bounds"),
                         (dict(target_accept=0.0), "target_accept"),
                         (dict(step_size=-1.0), "step_size")]:
        args = dict(dim=2, n_samples=4, n_steps=2) | kwargs
        with pytest.raises((TypeError, ValueError), match=f"^{name}: "):
            ebm.estimate_log_partition(energy, **args)


# --------------------------------------------------------------------------------------
# EnergyMLP, DigitsEnergy
# --------------------------------------------------------------------------------------
def test_energy_mlp_shapes_and_log_prob():
    torch.manual_seed(0)
    model = ebm.EnergyMLP(2, hidden=(16, 16))
    x = torch.randn(9, 2, generator=gen(0))
    e = model.energy(x)
    assert e.shape == (9,) and torch.equal(model(x), e)
    with torch.no_grad():
        model.log_z.fill_(1.3)
    torch.testing.assert_close(model.log_prob(x), -e - 1.3)
    assert model.bounds == (-4.0, 4.0) and not model.clip
    with pytest.raises(ValueError, match=r"^x: expected shape \(batch, 2\)"):
        model.energy(torch.zeros(3, 3))
    with pytest.raises(ValueError, match="^x: expected"):
        model.log_prob(torch.zeros(3))
    with pytest.raises(ValueError, match="^extent: "):
        ebm.EnergyMLP(2, extent=0.0)
    with pytest.raises(TypeError, match="^features: "):
        ebm.EnergyMLP(2.0)


def test_calibrate_on_grid_normalises_the_model_on_the_grid():
    torch.manual_seed(1)
    model = ebm.EnergyMLP(2, hidden=(16,), extent=3.0).double()
    value = model.calibrate_on_grid(extent=3.0, resolution=200)
    assert model.log_z.item() == value
    # an independent midpoint sum of exp(log_prob) over the same cells
    h = 6.0 / 200
    axis = -3.0 + h * (torch.arange(200, dtype=F64) + 0.5)
    gx, gy = torch.meshgrid(axis, axis, indexing="ij")
    with torch.no_grad():
        p = model.log_prob(torch.stack([gx.ravel(), gy.ravel()], 1)).exp()
    assert float(p.sum() * h * h) == pytest.approx(1.0, abs=1e-10)
    # and a finer grid agrees (the energy is smooth)
    finer = ebm.grid_log_partition(model.energy, extent=3.0, resolution=600)
    assert finer == pytest.approx(value, abs=1e-3)


def test_initial_is_uniform_in_the_box_and_sample_shapes():
    model = ebm.EnergyMLP(2, hidden=(8,), extent=3.0)
    x0 = model.initial(2000, generator=0)
    assert x0.shape == (2000, 2) and x0.min() >= -3.0 and x0.max() <= 3.0
    for j in range(2):
        assert stats.kstest(x0[:, j].numpy(), stats.uniform(-3, 6).cdf).pvalue > 1e-4
    assert torch.equal(model.initial(5, generator=1), model.initial(5, generator=1))
    x = model.sample(6, n_steps=4, generator=0)
    assert x.shape == (6, 2) and torch.isfinite(x).all()
    assert torch.equal(x, model.sample(6, n_steps=4, generator=0))

    digits = ebm.DigitsEnergy(channels=(4, 4, 4))
    assert digits.energy(torch.rand(3, 64)).shape == (3,)
    x0 = digits.initial(100, generator=0)
    assert x0.min() >= 0.0 and x0.max() <= 1.0
    # big steps push pixels past the box: sample clips them to it
    x = digits.sample(8, n_steps=3, step_size=0.5, generator=0)
    assert x.shape == (8, 64) and x.min() >= 0.0 and x.max() <= 1.0
    assert ((x == 0.0) | (x == 1.0)).any()
    with pytest.raises(ValueError, match=r"^x: expected shape \(batch, 64\)"):
        digits.energy(torch.zeros(2, 8, 8))
    with pytest.raises(ValueError, match="^channels: "):
        ebm.DigitsEnergy(channels=(4, 4))


# --------------------------------------------------------------------------------------
# train_ebm
# --------------------------------------------------------------------------------------
def _toy_data(n: int = 256) -> torch.Tensor:
    return get_toy2d("8gaussians").sample(n, seed=0)


@pytest.mark.parametrize("objective", ebm.OBJECTIVES)
def test_train_ebm_runs_every_objective(objective):
    torch.manual_seed(0)
    model = ebm.EnergyMLP(2, hidden=(16, 16))
    log_z = model.log_z.item()
    before = [p.detach().clone() for n, p in model.named_parameters() if n != "log_z"]
    trainer = ebm.train_ebm(model, _toy_data(), objective=objective, steps=3, batch_size=64,
                            n_langevin=5, progress=False)
    losses = trainer.history.train["loss"]
    assert len(losses) == 3 and all(math.isfinite(v) for v in losses)
    after = [p for n, p in model.named_parameters() if n != "log_z"]
    assert any(not torch.equal(a, b) for a, b in zip(before, after))
    assert (model.log_z.item() != log_z) == (objective == "nce")
    if objective in ebm.SAMPLING_OBJECTIVES:
        assert set(trainer.history.train) >= {"e_data", "e_model"}
    if objective in ("pcd", "replay"):  # cd starts its chains at the batch
        buffer = trainer.state["buffer"]
        assert isinstance(buffer, ebm.ReplayBuffer)
        assert torch.isfinite(buffer.states).all()
        if objective == "pcd":
            assert len(buffer) == 64
    else:
        assert "buffer" not in trainer.state


@pytest.mark.parametrize("objective", ["replay", "ssm", "dsm", "nce"])
def test_train_ebm_is_reproducible_with_a_seed(objective):
    runs = []
    for init in range(2):
        torch.manual_seed(0)
        model = ebm.EnergyMLP(2, hidden=(8,))
        torch.manual_seed(init)  # the global RNG differs between the runs
        trainer = ebm.train_ebm(model, _toy_data(), objective=objective, steps=3,
                                batch_size=32, n_langevin=3, progress=False, seed=5)
        runs.append(trainer.history.train["loss"])
    assert runs[0] == runs[1]


def test_train_ebm_bad_input_names_the_argument():
    model = ebm.EnergyMLP(2, hidden=(8,))
    with pytest.raises(ValueError, match="^objective: "):
        ebm.train_ebm(model, _toy_data(), objective="mle", steps=1, progress=False)
    with pytest.raises(ValueError, match="^objective: "):
        ebm.ebm_step(model, None, "mle")
    with pytest.raises(ValueError, match="^noise: "):
        ebm.ebm_step(model, None, "nce")
    with pytest.raises(ValueError, match="^noise: "):  # no tensor to fit the noise to
        ebm.train_ebm(model, torch.utils.data.TensorDataset(_toy_data()), objective="nce",
                      steps=1, progress=False)
    with pytest.raises(ValueError, match="^reinit_prob: "):
        ebm.ebm_step(model, None, "replay", reinit_prob=2.0)


def test_fitted_gaussian_has_the_data_moments():
    x = torch.randn(500, 3, generator=gen(0), dtype=F64) @ random_spd(3, 1)
    q = ebm.fitted_gaussian(x, inflate=1.5)
    assert isinstance(q, D.MultivariateNormal)
    torch.testing.assert_close(q.mean, x.mean(0))
    cov = torch.from_numpy(np.cov(x.numpy().T))
    # 2.25 times the sample covariance, plus a jitter of 1e-4 of its mean variance
    jitter = 2.25e-4 * float(cov.diagonal().mean())
    torch.testing.assert_close(q.covariance_matrix, 2.25 * cov, rtol=1e-12,
                               atol=1.001 * jitter)
    assert not torch.allclose(q.covariance_matrix, cov, atol=0.1)  # inflate matters
    one = ebm.fitted_gaussian(x[:, :1])
    assert one.covariance_matrix.shape == (1, 1)


def test_nce_training_learns_the_log_partition_of_its_energy():
    cov = torch.tensor([[1.0, 0.4], [0.4, 0.5]])
    data = (torch.randn(2048, 2, generator=gen(0)) @ torch.linalg.cholesky(cov).T
            + torch.tensor([0.5, -0.5]))
    torch.manual_seed(0)
    model = ebm.EnergyMLP(2, hidden=(32, 32))
    ebm.train_ebm(model, data, objective="nce", steps=400, batch_size=256, lr=3e-3,
                  noise_ratio=2, progress=False)
    grid = ebm.grid_log_partition(model.energy, extent=4.0, resolution=200)
    # measured over seeds 0-3 (init and training): |log_z - grid| below 0.02 (the model's
    # density is close to the data's, where NCE's c is log Z); the grid's own error is
    # below 1e-6 here
    assert abs(model.log_z.item() - grid) < 0.05, (model.log_z.item(), grid)


@pytest.mark.parametrize("objective, sigma, steps", [("dsm", 0.3, 300), ("sm", None, 200)])
def test_score_objectives_learn_a_gaussian(objective, sigma, steps):
    cov = torch.tensor([[1.0, 0.4], [0.4, 0.5]], dtype=F64)
    chol = torch.linalg.cholesky(cov)
    data = (torch.randn(2048, 2, generator=gen(0), dtype=F64) @ chol.T).float()
    test = torch.randn(4096, 2, generator=gen(1), dtype=F64) @ chol.T
    torch.manual_seed(0)
    model = ebm.EnergyMLP(2, hidden=(32, 32))
    ebm.train_ebm(model, data, objective=objective, steps=steps, batch_size=256, lr=3e-3,
                  sigma=sigma or 0.1, progress=False)
    model.double().calibrate_on_grid(extent=5.0, resolution=200)
    truth = D.MultivariateNormal(torch.zeros(2, dtype=F64), cov)
    with torch.no_grad():  # KL(p || model) on a common test set (less noise than vs. H(p))
        excess = float((truth.log_prob(test) - model.log_prob(test)).mean())
    # DSM's target is q_sigma = N(0, C + sigma^2 I), SM's the data: KL(p || target)
    target = truth if sigma is None else D.MultivariateNormal(
        torch.zeros(2, dtype=F64), cov + sigma ** 2 * torch.eye(2, dtype=F64))
    kl = float(D.kl_divergence(truth, target))
    # measured over seeds 0-3 (init and training): excess - kl within 0.013 (dsm) and
    # 0.004 (sm); an untrained network is off by more than 1
    assert abs(excess - kl) < 0.04, (excess, kl)


# --------------------------------------------------------------------------------------
# on a CUDA device
# --------------------------------------------------------------------------------------
@pytest.mark.gpu
def test_langevin_and_ais_on_cuda():
    energy = lambda x: 0.5 * (x ** 2).sum(-1)  # noqa: E731
    x0 = torch.zeros(64, 3, device="cuda")
    gen_cuda = torch.Generator(device="cuda").manual_seed(0)
    x = ebm.langevin_sample(energy, x0, 10, 0.1, generator=gen_cuda, bounds=(-1.0, 1.0))
    assert x.device.type == "cuda" and torch.isfinite(x).all()
    x = ebm.langevin_sample(energy, x0, 10, 0.1, generator=0)
    assert x.device.type == "cuda" and torch.isfinite(x).all()
    result = ebm.estimate_log_partition(energy, 3, n_samples=64, n_steps=20, device="cuda")
    assert math.isfinite(result.log_z) and math.isfinite(result.stderr)
    assert abs(result.log_z - 1.5 * math.log(2 * math.pi)) < 3 * result.stderr + 0.2


@pytest.mark.gpu
@pytest.mark.parametrize("objective", ebm.OBJECTIVES)
def test_train_ebm_step_on_cuda(objective):
    torch.manual_seed(0)
    model = ebm.EnergyMLP(2, hidden=(16,)).to("cuda")
    trainer = ebm.train_ebm(model, _toy_data(128).cuda(), objective=objective, steps=1,
                            batch_size=64, n_langevin=3, progress=False)
    assert math.isfinite(trainer.history.train["loss"][0])
    assert all(p.device.type == "cuda" and torch.isfinite(p).all() for p in model.parameters())


def test_train_ebm_cosine_decay_follows_the_closed_form():
    torch.manual_seed(0)
    model = ebm.EnergyMLP(2, hidden=(8,))
    seen = []
    trainer = ebm.train_ebm(model, torch.randn(64, 2, generator=gen(0)), objective="dsm",
                            steps=6, batch_size=32, lr=0.01, cosine_decay=True, progress=False,
                            evaluate=lambda t: seen.append(
                                t.optimizers["model"].param_groups[0]["lr"]),
                            evaluate_every=1)
    want = [0.005 * (1 + math.cos(math.pi * t / 6)) for t in range(1, 7)]
    np.testing.assert_allclose(seen, want, atol=1e-12)
    assert trainer.optimizers["model"].param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)
