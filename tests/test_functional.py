"""Tests of coursekit.functional (the shared maths) against torch.distributions, scipy,
brute force and properties, and of the argument checks every module shares."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.distributions as D
from scipy.special import logsumexp as np_logsumexp
from scipy.stats import multivariate_normal

from coursekit import functional as F

F64 = torch.float64


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(0)


def diag_normal(mean, var):
    return D.Independent(D.Normal(mean, var.sqrt()), 1)


def test_log_2pi_is_the_constant_of_a_standard_normal():
    assert F.LOG_2PI == pytest.approx(-2 * D.Normal(0.0, 1.0).log_prob(torch.tensor(0.0)).item())


def test_log_normal_diag_matches_torch_and_scipy(gen):
    x = torch.randn(7, 3, 4, generator=gen, dtype=F64)
    mean = torch.randn(3, 4, generator=gen, dtype=F64)
    var = torch.rand(7, 1, 4, generator=gen, dtype=F64) + 0.1
    out = F.log_normal_diag(x, mean, var)
    assert out.shape == (7, 3)
    torch.testing.assert_close(out, diag_normal(mean, var).log_prob(x), rtol=0, atol=1e-12)
    ref = multivariate_normal(mean[0].numpy(), np.diag(var[2, 0].numpy())).logpdf(x[2, 0].numpy())
    assert float(out[2, 0]) == pytest.approx(ref, abs=1e-12)
    # NumPy input becomes float64 and gives the same numbers
    same = F.log_normal_diag(x.numpy(), mean.numpy(), var.numpy())
    assert same.dtype == F64 and torch.equal(same, out)


def test_log_standard_normal_is_log_normal_diag_at_zero_and_one(gen):
    z = torch.randn(5, 3, generator=gen, dtype=F64)
    torch.testing.assert_close(F.log_standard_normal(z),
                               F.log_normal_diag(z, torch.zeros(3, dtype=F64),
                                                 torch.ones(3, dtype=F64)), rtol=0, atol=1e-14)


def test_log_normal_mixture_matches_torch_and_is_stable_far_away(gen):
    k, d = 5, 3
    means = torch.randn(k, d, generator=gen, dtype=F64) * 2
    vars_ = torch.rand(k, d, generator=gen, dtype=F64) + 0.2
    logits = torch.randn(k, generator=gen, dtype=F64)
    log_w = torch.log_softmax(logits, 0)
    z = torch.randn(2, 4, d, generator=gen, dtype=F64)
    for lw, cat in ((None, D.Categorical(logits=torch.zeros(k, dtype=F64))),
                    (log_w, D.Categorical(logits=logits))):
        ref = D.MixtureSameFamily(cat, diag_normal(means, vars_)).log_prob(z)
        out = F.log_normal_mixture(z, means, vars_, lw)
        assert out.shape == (2, 4)
        torch.testing.assert_close(out, ref, rtol=0, atol=1e-12)
    far = torch.full((1, d), 1e3, dtype=F64)
    assert torch.isfinite(F.log_normal_mixture(far, means, vars_)).all()


def test_kl_normal_diag_matches_torch_is_zero_on_itself_and_non_negative(gen):
    qm, pm = torch.randn(2, 6, 4, generator=gen, dtype=F64)
    qv, pv = torch.rand(2, 6, 4, generator=gen, dtype=F64) * 3 + 0.05
    kl = F.kl_normal_diag(qm, qv, pm, pv)
    ref = D.kl_divergence(diag_normal(qm, qv), diag_normal(pm, pv))
    torch.testing.assert_close(kl, ref, rtol=0, atol=1e-12)
    assert (kl >= 0).all()
    assert torch.allclose(F.kl_normal_diag(qm, qv, qm, qv), torch.zeros(6, dtype=F64),
                          atol=1e-13)


def test_sample_normal_diag_uses_the_variance_and_carries_gradients():
    mean = torch.tensor([0.5, -1.0, 2.0], dtype=F64, requires_grad=True)
    var = torch.tensor([4.0, 0.25, 1e-2], dtype=F64, requires_grad=True)
    n = 200_000
    z = F.sample_normal_diag(mean.expand(n, 3), var, torch.Generator().manual_seed(1))
    se_mean = (var.detach() / n).sqrt()
    assert ((z.detach().mean(0) - mean.detach()).abs() < 5 * se_mean).all()
    # Var of the sample variance of a Gaussian: 2 v^2 / (n - 1)
    se_var = var.detach() * math.sqrt(2 / (n - 1))
    assert ((z.detach().var(0) - var.detach()).abs() < 5 * se_var).all()
    z.mean(0).sum().backward()
    torch.testing.assert_close(mean.grad, torch.ones(3, dtype=F64))


def test_log_bernoulli_logits_matches_torch_and_stays_finite(gen):
    x = torch.bernoulli(torch.full((9, 5), 0.4), generator=gen)
    logits = torch.randn(9, 5, generator=gen) * 3
    ref = D.Independent(D.Bernoulli(logits=logits), 1).log_prob(x)
    torch.testing.assert_close(F.log_bernoulli_logits(x, logits), ref, rtol=0, atol=1e-5)
    out = F.log_bernoulli_logits(torch.tensor([[0.0, 1.0]]), torch.tensor([[200.0, -200.0]]))
    assert torch.allclose(out, torch.tensor([-400.0]))


def test_log_mean_exp_matches_scipy_and_survives_large_values(gen):
    v = torch.randn(4, 50, generator=gen, dtype=F64) * 30
    ref = np_logsumexp(v.numpy(), axis=1) - math.log(50)
    torch.testing.assert_close(F.log_mean_exp(v, dim=1), torch.from_numpy(ref), rtol=0,
                               atol=1e-12)
    assert float(F.log_mean_exp(torch.tensor([1000.0, 1000.0], dtype=F64))) == 1000.0


def test_log_mean_exp_of_log_weights_is_the_iwae_bound_and_grows_with_k(gen):
    # weights of a proposal that is not the posterior: E[LME of k weights] rises with k
    log_w = torch.randn(4000, 64, generator=gen, dtype=F64)
    bounds = [float(F.log_mean_exp(log_w[:, :k], dim=1).mean()) for k in (1, 4, 16, 64)]
    assert all(b2 > b1 for b1, b2 in zip(bounds, bounds[1:]))
    assert bounds[-1] < math.log(math.e ** 0.5)  # log E[w] = 1/2 for log w ~ N(0, 1)


def test_kmeans_plusplus_picks_rows_spread_out_and_is_reproducible():
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]], dtype=F64)
    X = centres.repeat_interleave(50, 0) + 0.01 * torch.randn(150, 2, dtype=F64,
                                                                generator=torch.Generator()
                                                                .manual_seed(0))
    C, idx = F.kmeans_plusplus(X, 3, generator=5)
    assert torch.equal(C, X[idx])
    # one seed in each far-apart cluster (D^2 sampling makes anything else vanishingly rare)
    assert sorted((idx // 50).tolist()) == [0, 1, 2]
    C2, idx2 = F.kmeans_plusplus(X, 3, generator=5)
    assert torch.equal(idx, idx2)


def test_kmeans_plusplus_handles_duplicate_rows():
    X = torch.ones(4, 2, dtype=F64)
    C, idx = F.kmeans_plusplus(X, 3, generator=0)
    assert C.shape == (3, 2) and torch.equal(C, X[:3])


@pytest.mark.parametrize(("call", "error", "message"), [
    (lambda: F.log_normal_diag(torch.zeros(3, 2), torch.zeros(3, 2), torch.zeros(3, 2)),
     ValueError, "var: expected strictly positive variances, got min 0"),
    (lambda: F.log_normal_diag(torch.zeros(3, 2), torch.zeros(3, 1), torch.ones(3, 2)),
     ValueError, r"mean: expected last dimension d=2 like x, got shape \(3, 1\)"),
    (lambda: F.log_normal_diag(torch.zeros(3, 2), torch.zeros(4, 2), torch.ones(3, 2)),
     ValueError, "x/mean/var: expected batch shapes that broadcast"),
    (lambda: F.log_normal_diag("x", torch.zeros(2), torch.ones(2)),
     TypeError, "x: expected a torch.Tensor"),
    (lambda: F.kl_normal_diag(torch.zeros(2), torch.ones(2), torch.zeros(2), -torch.ones(2)),
     ValueError, "p_var: expected strictly positive variances"),
    (lambda: F.log_normal_mixture(torch.zeros(3, 2), torch.zeros(2), torch.ones(2)),
     ValueError, r"means/vars: expected shape \(k, d\)"),
    (lambda: F.log_normal_mixture(torch.zeros(2), torch.zeros(3, 2), torch.ones(3, 2),
                                  torch.zeros(3)),
     ValueError, "log_weights: expected log-probabilities"),
    (lambda: F.log_bernoulli_logits(torch.tensor([2.0]), torch.zeros(1)),
     ValueError, r"x: expected values in \[0, 1\]"),
    (lambda: F.log_mean_exp(torch.zeros(0)),
     ValueError, "values: expected at least one entry"),
    (lambda: F.kmeans_plusplus(torch.zeros(3, 2), 4),
     ValueError, "n_clusters: expected at most n_samples=3"),
    (lambda: F.kmeans_plusplus(torch.zeros(3, 2), 2.0),
     TypeError, "n_clusters: expected an int >= 1, got 2.0"),
    (lambda: F.kmeans_plusplus(torch.zeros(3, 2), 2, generator=-1),
     ValueError, "generator: expected None, a non-negative int or a torch.Generator"),
    (lambda: F.kmeans_plusplus(torch.full((3, 2), float("nan")), 2),
     ValueError, "X: expected finite values, got NaN or inf"),
])
def test_bad_input_names_the_argument_and_what_was_expected(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_mixed_dtypes_promote_and_follow_the_tensor_device(gen):
    x32 = torch.randn(4, 3, generator=gen)
    out = F.log_normal_diag(x32, np.zeros(3), np.ones(3))
    assert out.dtype == torch.float32 and out.device == x32.device
    out64 = F.log_normal_diag(x32, torch.zeros(3, dtype=F64), torch.ones(3, dtype=F64))
    assert out64.dtype == F64
