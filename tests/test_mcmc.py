"""Tests of coursekit.mcmc against known targets: a correlated 2-D Gaussian (mean and
covariance), ULA's closed-form stationary variance on a 1-D Gaussian, detailed balance of
MALA's acceptance, stationarity of one step, acceptance-rate properties, bad input."""

from __future__ import annotations

import math

import pytest
import torch
import torch.distributions as D

from coursekit import mcmc

F64 = torch.float64
MEAN = torch.tensor([1.0, -0.5], dtype=F64)
COV = torch.tensor([[1.0, 0.6], [0.6, 0.5]], dtype=F64)
TARGET = D.MultivariateNormal(MEAN, covariance_matrix=COV)


PRECISION = torch.linalg.inv(COV)


def log_target(x):
    # unnormalised on purpose: constants must not matter
    d = x - MEAN
    return -0.5 * ((d @ PRECISION) * d).sum(-1) + 3.0


def test_log_target_is_the_gaussian_up_to_a_constant():
    x = torch.randn(5, 2, dtype=F64)
    assert torch.allclose(log_target(x) - TARGET.log_prob(x),
                          (log_target(x[:1]) - TARGET.log_prob(x[:1])).expand(5))


def moments(samples):
    flat = samples.reshape(-1, samples.shape[-1])
    return flat.mean(0), torch.cov(flat.T)


@pytest.mark.parametrize("sampler", ["mh", "mala"])
def test_gaussian_moments(sampler):
    x0 = torch.zeros(200, 2, dtype=F64)
    if sampler == "mh":
        res = mcmc.metropolis_hastings(log_target, x0, 400, 0.9, generator=0)
    else:
        res = mcmc.langevin(log_target, x0, 400, 0.25, metropolis=True, generator=0)
    mean, cov = moments(res.samples[100:])
    assert torch.allclose(mean, MEAN, atol=0.05)
    assert torch.allclose(cov, COV, atol=0.06)
    assert res.samples.shape == (400, 200, 2) and res.final.shape == (200, 2)
    assert 0.2 < float(res.accept_rate.mean()) < 0.95


def test_ula_bias_matches_closed_form():
    # ULA on N(0, s^2): x' = (1 - h/s^2) x + sqrt(2h) xi has stationary variance
    # s^2 / (1 - h / (2 s^2)), larger than s^2; MALA removes the bias
    s2, h = 1.0, 0.5
    lp = lambda x: -0.5 * (x ** 2).sum(-1) / s2  # noqa: E731
    x0 = torch.zeros(2000, 1, dtype=F64)
    ula = mcmc.langevin(lp, x0, 300, h, metropolis=False, generator=1)
    mala = mcmc.langevin(lp, x0, 300, h, metropolis=True, generator=1)
    var_ula = float(ula.samples[100:].var())
    var_mala = float(mala.samples[100:].var())
    expected = s2 / (1 - h / (2 * s2))
    assert abs(var_ula - expected) < 0.05 * expected
    assert abs(var_mala - s2) < 0.05 * s2
    assert torch.all(ula.accept_rate == 1)


def test_detailed_balance_of_mala_acceptance():
    # a non-Gaussian target: an equal mixture of two correlated Gaussians
    mix = D.MixtureSameFamily(D.Categorical(torch.ones(2, dtype=F64)),
                              D.MultivariateNormal(torch.stack([MEAN, -MEAN]),
                                                   covariance_matrix=COV.expand(2, 2, 2)))
    gen = torch.Generator().manual_seed(2)
    x = 2 * torch.randn(50, 2, generator=gen, dtype=F64)
    y = x + 0.3 * torch.randn(50, 2, generator=gen, dtype=F64)
    h = 0.05
    lp = mix.log_prob
    a_xy = mcmc.langevin_log_acceptance(lp, x, y, h)
    a_yx = mcmc.langevin_log_acceptance(lp, y, x, h)
    _, gx = mcmc.grad_log_prob(lp, x)
    _, gy = mcmc.grad_log_prob(lp, y)
    lq_xy = D.Normal(x + h * gx, math.sqrt(2 * h)).log_prob(y).sum(-1)   # independent q
    lq_yx = D.Normal(y + h * gy, math.sqrt(2 * h)).log_prob(x).sum(-1)
    lhs = lp(x) + lq_xy + a_xy
    rhs = lp(y) + lq_yx + a_yx
    assert torch.allclose(lhs, rhs, atol=1e-8)
    assert torch.all(a_xy <= 0) and torch.all(torch.maximum(a_xy, a_yx) == 0)


def test_one_step_keeps_the_target_stationary():
    gen = torch.Generator().manual_seed(3)
    start = MEAN + torch.randn(20000, 2, generator=gen, dtype=F64) @ torch.linalg.cholesky(COV).T
    for res in (mcmc.metropolis_hastings(log_target, start, 1, 1.5, generator=4),
                mcmc.langevin(log_target, start, 1, 0.4, generator=4)):
        mean, cov = moments(res.samples)
        assert torch.allclose(mean, MEAN, atol=0.03)
        assert torch.allclose(cov, COV, atol=0.04)


def test_acceptance_rate_properties():
    x0 = torch.zeros(100, 2, dtype=F64)
    flat = lambda x: torch.zeros(x.shape[0], dtype=x.dtype)  # noqa: E731
    assert torch.all(mcmc.metropolis_hastings(flat, x0, 20, 1.0, generator=0).accept_rate == 1)
    rates = [float(mcmc.metropolis_hastings(log_target, x0, 100, s, generator=0)
                   .accept_rate.mean()) for s in (0.02, 0.5, 5.0)]
    assert rates[0] > rates[1] > rates[2]
    assert rates[0] > 0.9 and rates[2] < 0.2
    mala = [float(mcmc.langevin(log_target, x0, 100, h, generator=0).accept_rate.mean())
            for h in (0.01, 1.0)]
    assert mala[0] > 0.98 and mala[1] < mala[0]


def test_reproducible_thin_and_flat():
    x0 = torch.zeros(4, 2, dtype=F64)
    a = mcmc.langevin(log_target, x0, 10, 0.1, thin=2, generator=7)
    b = mcmc.langevin(log_target, x0, 10, 0.1, thin=2, generator=7)
    assert torch.equal(a.samples, b.samples) and a.samples.shape == (5, 4, 2)
    assert torch.equal(a.samples[-1], a.final)
    assert a.flat(burn_in=1).shape == (16, 2)
    with pytest.raises(ValueError, match="burn_in"):
        a.flat(burn_in=5)


def test_bad_input():
    x0 = torch.zeros(4, 2, dtype=F64)
    with pytest.raises(ValueError, match="x0"):
        mcmc.metropolis_hastings(log_target, torch.zeros(2, dtype=F64), 5, 0.1)
    with pytest.raises(TypeError, match="x0"):
        mcmc.langevin(log_target, [[0.0, 0.0]], 5, 0.1)
    with pytest.raises(ValueError, match="step_size"):
        mcmc.langevin(log_target, x0, 5, 0.0)
    with pytest.raises(ValueError, match="n_steps"):
        mcmc.metropolis_hastings(log_target, x0, 0, 0.1)
    with pytest.raises(ValueError, match="log_prob"):
        mcmc.metropolis_hastings(lambda x: x, x0, 5, 0.1)
    with pytest.raises(TypeError, match="metropolis"):
        mcmc.langevin(log_target, x0, 5, 0.1, metropolis="yes")
