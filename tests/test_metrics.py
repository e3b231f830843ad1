"""Tests of coursekit.metrics: importance-sampled NLL against an exact model, bits per
dimension against its definition, active units against a constructed encoder."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from coursekit import metrics as M

F64 = torch.float64


class LinearGaussianVAE(nn.Module):
    """z ~ N(0, 1), x | z ~ N(w z, s2): p(x) = N(0, w^2 + s2) exactly, with the exact
    posterior as the encoder, so every importance weight equals p(x)."""

    def __init__(self, w=1.5, s2=0.5):
        super().__init__()
        self.w, self.s2 = w, s2
        self.dummy = nn.Parameter(torch.zeros((), dtype=F64))

    def _check_x(self, x):
        return x.to(F64)

    def encode(self, x):
        prec = 1 + self.w**2 / self.s2
        return x * self.w / self.s2 / prec, torch.full_like(x, 1 / prec)

    def log_weights(self, x, k, chunk_size=None):
        m, v = self.encode(x)
        z = m + v.sqrt() * torch.randn(k, *x.shape, dtype=F64)
        normal = torch.distributions.Normal
        one = torch.ones((), dtype=F64)
        log_joint = (normal(self.w * z, math.sqrt(self.s2) * one).log_prob(x)
                     + normal(0 * one, one).log_prob(z))
        return (log_joint - normal(m, v.sqrt()).log_prob(z)).squeeze(-1)


def test_estimate_nll_is_exact_with_the_true_posterior_as_proposal():
    model = LinearGaussianVAE()
    x = torch.linspace(-3, 3, 11, dtype=F64).unsqueeze(1)
    sd = torch.tensor(math.sqrt(1.5**2 + 0.5), dtype=F64)
    exact = -torch.distributions.Normal(0 * sd, sd).log_prob(x).squeeze(1)
    got = M.estimate_nll(model, x, k=3, batch_size=4, reduction="none")
    torch.testing.assert_close(got, exact, rtol=0, atol=1e-10)
    assert float(M.estimate_nll(model, x, k=3)) == pytest.approx(float(exact.mean()), abs=1e-10)


def test_bits_per_dim_is_nats_over_d_log_2_plus_the_dequantisation_term():
    assert float(M.bits_per_dim(64 * math.log(2), 64)) == pytest.approx(1.0)
    # a uniform density on [0, 1)^D of dequantised 17-level data: exactly log2(17) bits
    assert float(M.bits_per_dim(0.0, 64, n_levels=17)) == pytest.approx(math.log2(17))
    torch.testing.assert_close(M.bits_per_dim(torch.tensor([0.0, 2 * math.log(2)]), 2),
                               torch.tensor([0.0, 1.0], dtype=torch.float32))
    with pytest.raises(ValueError, match="n_levels: expected an int >= 2"):
        M.bits_per_dim(1.0, 64, n_levels=1)


def test_active_units_counts_dimensions_whose_posterior_mean_moves():
    class Encoder:
        def encode(self, x):
            mean = torch.stack([x[:, 0], 0.01 * x[:, 1], torch.zeros(len(x))], 1)
            return mean, torch.ones_like(mean)

    x = torch.randn(500, 2, generator=torch.Generator().manual_seed(0))
    activity, active = M.active_units(Encoder(), x)
    assert active.tolist() == [True, False, False]
    assert float(activity[0]) == pytest.approx(float(x[:, 0].var()), rel=1e-6)
    with pytest.raises(ValueError, match="x: expected at least 2 rows"):
        M.active_units(Encoder(), x[:1])


def _gaussians(n: int, shift: float, seed: int):
    g = torch.Generator().manual_seed(seed)
    a, b = torch.randn(n, 2, generator=g), torch.randn(n, 2, generator=g)
    return a, b + torch.tensor([shift, 0.0])


def test_c2st_null_is_the_binomial_permutation_law_and_the_p_value_its_tail():
    a, b = _gaussians(300, 0.0, seed=0)
    state = torch.get_rng_state()
    test = M.classifier_two_sample_test(a, b, hidden=(), permutations=4000, seed=0)
    assert torch.equal(torch.get_rng_state(), state)  # the global random state is untouched
    assert test.n_test == 300
    # shuffled labels against fixed predictions: accuracy ~ mean 1/2, std sqrt(1 / (4 m))
    assert float(test.null.mean()) == pytest.approx(0.5, abs=0.005)
    assert float(test.null.std()) == pytest.approx(math.sqrt(1 / (4 * 300)), rel=0.1)
    expected_p = (1 + int((test.null >= test.accuracy).sum())) / (1 + 4000)
    assert test.p_value == pytest.approx(expected_p)
    accuracy, p_value, *_ = test  # a NamedTuple: unpacks too
    assert (accuracy, p_value) == (test.accuracy, test.p_value)


def test_c2st_keeps_its_level_on_identical_distributions_and_detects_a_shift():
    p_same = [M.classifier_two_sample_test(*_gaussians(200, 0.0, seed=s), hidden=(),
                                           permutations=500, seed=s).p_value for s in range(8)]
    assert sum(p < 0.05 for p in p_same) <= 2  # level 0.05: 8 tests, P(more than 2) < 0.6 %
    shifted = M.classifier_two_sample_test(*_gaussians(200, 0.8, seed=0), hidden=(16,))
    assert shifted.accuracy > 0.6 and shifted.p_value < 0.01
    with pytest.raises(ValueError, match="a, b"):
        M.classifier_two_sample_test(torch.zeros(5, 2), torch.zeros(5, 3))
