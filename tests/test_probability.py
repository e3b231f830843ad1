"""Tests of coursekit.probability against scipy, torch.distributions and closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
import torch
import torch.distributions as D
from hypothesis import given, settings
from hypothesis import strategies as st

from coursekit import probability as P

F64 = torch.float64


def random_spd(d, gen, batch=()):
    A = torch.randn(*batch, d, d, generator=gen, dtype=F64)
    return A @ A.mT + 0.5 * torch.eye(d, dtype=F64)


def random_probs(k, gen, batch=(), zeros=False):
    p = torch.rand(*batch, k, generator=gen, dtype=F64) ** 2
    if zeros:
        p = p * (torch.rand(*batch, k, generator=gen, dtype=F64) > 0.4)
        p[..., 0] += 0.1  # never all zero
    return p / p.sum(-1, keepdim=True)


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(0)


# ------------------------------------------------------------------ densities
@pytest.mark.parametrize("d", [1, 2, 5])
def test_gaussian_log_prob_matches_scipy(gen, d):
    mean, cov = torch.randn(d, generator=gen, dtype=F64), random_spd(d, gen)
    x = torch.randn(7, d, generator=gen, dtype=F64)
    ours = P.gaussian_log_prob(x, mean, cov)
    ref = scipy.stats.multivariate_normal(mean.numpy(), cov.numpy()).logpdf(x.numpy())
    assert ours.shape == (7,)
    np.testing.assert_allclose(ours.numpy(), np.atleast_1d(ref), rtol=1e-10, atol=1e-10)


def test_gaussian_log_prob_batched_parameters_match_torch(gen):
    mean = torch.randn(4, 3, generator=gen, dtype=F64)
    cov = random_spd(3, gen, batch=(4,))
    x = torch.randn(6, 1, 3, generator=gen, dtype=F64)  # broadcasts to (6, 4)
    ours = P.gaussian_log_prob(x, mean, cov)
    ref = D.MultivariateNormal(mean, cov).log_prob(x)
    assert ours.shape == (6, 4)
    torch.testing.assert_close(ours, ref)


def test_gaussian_log_prob_float32_and_list_inputs(gen):
    cov = random_spd(2, gen)
    x32 = torch.randn(5, 2, generator=gen).float()
    out = P.gaussian_log_prob(x32, [0.0, 0.0], cov.float())
    assert out.dtype == torch.float32
    ref = scipy.stats.multivariate_normal(np.zeros(2), cov.float().numpy()).logpdf(x32.numpy())
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-5)


def test_diag_gaussian_log_prob_matches_torch(gen):
    mean = torch.randn(3, 4, generator=gen, dtype=F64)
    var = torch.rand(3, 4, generator=gen, dtype=F64) + 0.1
    x = torch.randn(3, 4, generator=gen, dtype=F64)
    ref = D.Independent(D.Normal(mean, var.sqrt()), 1).log_prob(x)
    torch.testing.assert_close(P.diag_gaussian_log_prob(x, mean, var), ref)
    # and equals the full-covariance version with a diagonal matrix
    torch.testing.assert_close(P.gaussian_log_prob(x, mean, torch.diag_embed(var)), ref)


def test_bernoulli_log_prob_matches_torch(gen):
    logits = torch.randn(5, 6, generator=gen, dtype=F64) * 3
    x = torch.bernoulli(torch.full((5, 6), 0.5, dtype=F64), generator=gen)
    ref = D.Independent(D.Bernoulli(logits=logits), 1).log_prob(x)
    torch.testing.assert_close(P.bernoulli_log_prob(x, logits), ref)


# ------------------------------------------------------------------ marginal / conditional
def test_gaussian_marginal_picks_blocks(gen):
    mean, cov = torch.randn(5, generator=gen, dtype=F64), random_spd(5, gen)
    m, c = P.gaussian_marginal(mean, cov, [3, 1])
    torch.testing.assert_close(m, mean[[3, 1]])
    torch.testing.assert_close(c, cov[[3, 1]][:, [3, 1]])
    # the marginal density integrates out the rest: check by sampling moments
    x = D.MultivariateNormal(mean, cov).sample((200_000,))
    torch.testing.assert_close(x[:, [3, 1]].mean(0), m, atol=0.05, rtol=0)


def test_gaussian_conditional_matches_precision_form(gen):
    """By brute-force inversion of the joint precision Λ = Σ^{-1}:
    cov_a|b = Λ_aa^{-1} and mean_a|b = μ_a - Λ_aa^{-1} Λ_ab (x_b - μ_b)."""
    d = 5
    mean, cov = torch.randn(d, generator=gen, dtype=F64), random_spd(d, gen)
    idx_a = [4, 0]
    b = [1, 2, 3]
    x_b = torch.randn(8, 3, generator=gen, dtype=F64)
    m, c = P.gaussian_conditional(mean, cov, idx_a, x_b)
    prec = torch.linalg.inv(cov)
    lam_aa, lam_ab = prec[idx_a][:, idx_a], prec[idx_a][:, b]
    ref_cov = torch.linalg.inv(lam_aa)
    ref_mean = mean[idx_a] - (ref_cov @ lam_ab @ (x_b - mean[b]).T).T
    assert m.shape == (8, 2) and c.shape == (2, 2)
    torch.testing.assert_close(c, ref_cov)
    torch.testing.assert_close(m, ref_mean)


def test_gaussian_conditional_density_identity(gen):
    """log p(x_a | x_b) = log p(x) - log p(x_b) (product rule)."""
    d = 4
    mean, cov = torch.randn(d, generator=gen, dtype=F64), random_spd(d, gen)
    x = torch.randn(10, d, generator=gen, dtype=F64)
    m, c = P.gaussian_conditional(mean, cov, torch.tensor([1, 2]), x[:, [0, 3]])
    lhs = P.gaussian_log_prob(x[:, [1, 2]], m, c)
    mb, cb = P.gaussian_marginal(mean, cov, [0, 3])
    rhs = P.gaussian_log_prob(x, mean, cov) - P.gaussian_log_prob(x[:, [0, 3]], mb, cb)
    torch.testing.assert_close(lhs, rhs)


def test_gaussian_conditional_by_sampling_regression(gen):
    """The conditional mean is the linear regression of x_a on x_b; its covariance the residual."""
    mean = torch.tensor([1.0, -2.0, 0.5], dtype=F64)
    cov = torch.tensor([[2.0, 0.8, 0.3], [0.8, 1.0, -0.2], [0.3, -0.2, 1.5]], dtype=F64)
    x = D.MultivariateNormal(mean, cov).sample((400_000,))
    xb = torch.cat([x[:, 1:], torch.ones(len(x), 1, dtype=F64)], 1)
    coef = torch.linalg.lstsq(xb, x[:, :1]).solution
    resid_var = (x[:, :1] - xb @ coef).var()
    query = torch.tensor([[0.3, -1.0]], dtype=F64)
    m, c = P.gaussian_conditional(mean, cov, [0], query)
    reg_mean = torch.cat([query, torch.ones(1, 1, dtype=F64)], 1) @ coef
    assert abs(float(m - reg_mean)) < 0.02
    assert abs(float(c - resid_var)) < 0.02


def test_gaussian_mle_matches_numpy(gen):
    x = torch.randn(50, 3, generator=gen, dtype=F64) * torch.tensor([1.0, 2.0, 0.5], dtype=F64)
    mean, cov = P.gaussian_mle(x)
    np.testing.assert_allclose(mean.numpy(), x.numpy().mean(0))
    np.testing.assert_allclose(cov.numpy(), np.cov(x.numpy().T, bias=True), atol=1e-12)


def test_gaussian_mle_maximises_likelihood(gen):
    x = torch.randn(40, 2, generator=gen, dtype=F64) @ torch.tensor([[1.0, 0.5], [0, 1.0]],
                                                                     dtype=F64)
    mean, cov = P.gaussian_mle(x)
    best = P.gaussian_log_prob(x, mean, cov).sum()
    for _ in range(20):
        dm = 0.05 * torch.randn(2, generator=gen, dtype=F64)
        dc = 0.05 * random_spd(2, gen) / 3
        assert P.gaussian_log_prob(x, mean + dm, cov + dc).sum() < best
    # gradient of the log-likelihood vanishes at the MLE (autograd)
    m = mean.clone().requires_grad_(True)
    c = cov.clone().requires_grad_(True)
    P.gaussian_log_prob(x, m, c).sum().backward()
    assert m.grad.abs().max() < 1e-9 and c.grad.abs().max() < 1e-9


# ------------------------------------------------------------------ entropy
def test_entropy_categorical_matches_scipy_with_zeros(gen):
    p = random_probs(6, gen, batch=(5,), zeros=True)
    ours = P.entropy_categorical(p)
    ref = scipy.stats.entropy(p.numpy(), axis=-1)
    np.testing.assert_allclose(ours.numpy(), ref, atol=1e-12)
    torch.testing.assert_close(ours, D.Categorical(probs=p).entropy())
    assert float(P.entropy_categorical([1.0, 0.0, 0.0])) == 0.0
    torch.testing.assert_close(P.entropy_categorical(torch.full((8,), 1 / 8, dtype=F64)),
                               torch.tensor(math.log(8), dtype=F64))


def test_entropy_gaussian_matches_scipy_and_torch(gen):
    cov = random_spd(4, gen)
    ref = scipy.stats.multivariate_normal(np.zeros(4), cov.numpy()).entropy()
    assert abs(float(P.entropy_gaussian(cov)) - ref) < 1e-10
    torch.testing.assert_close(P.entropy_gaussian(cov),
                               D.MultivariateNormal(torch.zeros(4, dtype=F64), cov).entropy())


def test_conditional_entropy_and_mi_table_identities(gen):
    joint = random_probs(12, gen).reshape(3, 4)
    p_x, p_y = joint.sum(1), joint.sum(0)
    h_x = scipy.stats.entropy(p_x.numpy())
    h_y = scipy.stats.entropy(p_y.numpy())
    h_xy = scipy.stats.entropy(joint.numpy().ravel())
    h_x_given_y = P.conditional_entropy_table(joint)
    assert abs(float(h_x_given_y) - (h_xy - h_y)) < 1e-12
    mi = P.mutual_information_table(joint)
    assert abs(float(mi) - (h_x - float(h_x_given_y))) < 1e-12  # I = H(X) - H(X|Y)
    assert abs(float(mi) - (h_x + h_y - h_xy)) < 1e-12
    # symmetric in X and Y
    torch.testing.assert_close(mi, P.mutual_information_table(joint.T))


def test_mi_table_zero_for_independent_and_max_for_copy(gen):
    px, py = random_probs(4, gen), random_probs(5, gen)
    assert abs(float(P.mutual_information_table(torch.outer(px, py)))) < 1e-12
    # X = Y: I = H(X)
    torch.testing.assert_close(P.mutual_information_table(torch.diag(px)),
                               P.entropy_categorical(px))


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 5), st.integers(2, 5))
def test_mi_table_non_negative(seed, nx, ny):
    g = torch.Generator().manual_seed(seed)
    joint = random_probs(nx * ny, g, zeros=True).reshape(nx, ny)
    assert float(P.mutual_information_table(joint)) >= -1e-12


def test_mutual_information_gaussian(gen):
    # bivariate: I = -1/2 log(1 - rho^2)
    rho = 0.7
    cov = torch.tensor([[1.0, rho], [rho, 1.0]], dtype=F64) * 3.0
    expected = -0.5 * math.log(1 - rho**2)
    assert abs(float(P.mutual_information_gaussian(cov, [0])) - expected) < 1e-12
    # general: I = H(a) + H(b) - H(a, b), with scipy entropies
    cov = random_spd(5, gen)
    a, b = [0, 3], [1, 2, 4]
    h = lambda idx: scipy.stats.multivariate_normal(np.zeros(len(idx)),
                                                    cov.numpy()[np.ix_(idx, idx)]).entropy()
    assert abs(float(P.mutual_information_gaussian(cov, a)) - (h(a) + h(b) - h(range(5)))) < 1e-10
    # zero for a block-diagonal covariance
    block = torch.block_diag(random_spd(2, gen), random_spd(3, gen))
    assert abs(float(P.mutual_information_gaussian(block, [0, 1]))) < 1e-12


# ------------------------------------------------------------------ divergences
def test_kl_categorical_matches_torch_and_scipy(gen):
    p, q = random_probs(5, gen, batch=(4,), zeros=True), random_probs(5, gen, batch=(4,))
    ours = P.kl_categorical(p, q)
    ref = D.kl_divergence(D.Categorical(probs=p), D.Categorical(probs=q))
    torch.testing.assert_close(ours, ref)
    np.testing.assert_allclose(ours.numpy(), scipy.stats.entropy(p.numpy(), q.numpy(), axis=-1))
    # support mismatch: q = 0 where p > 0 -> +inf
    assert math.isinf(float(P.kl_categorical([0.5, 0.5], [1.0, 0.0])))
    assert float(P.kl_categorical([1.0, 0.0], [0.5, 0.5])) == pytest.approx(math.log(2))


def test_kl_is_asymmetric():
    p, q = [0.9, 0.1], [0.5, 0.5]
    assert float(P.kl_categorical(p, q)) != pytest.approx(float(P.kl_categorical(q, p)))


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 8))
def test_divergence_properties(seed, k):
    g = torch.Generator().manual_seed(seed)
    p, q = random_probs(k, g, zeros=True), random_probs(k, g)
    kl = float(P.kl_categorical(p, q))
    assert kl >= -1e-12  # Gibbs' inequality
    assert abs(float(P.kl_categorical(p, p))) < 1e-12
    js = float(P.js_categorical(p, q))
    assert -1e-12 <= js <= math.log(2) + 1e-12
    assert js == pytest.approx(float(P.js_categorical(q, p)), abs=1e-12)
    # scipy's jensenshannon is the square root of JS (natural log by default)
    assert math.sqrt(max(js, 0)) == pytest.approx(
        scipy.spatial.distance.jensenshannon(p.numpy(), q.numpy()), abs=1e-7)
    tv = float(P.tv_categorical(p, q))
    assert 0 <= tv <= 1
    assert tv <= math.sqrt(kl / 2) + 1e-12  # Pinsker


def test_js_reaches_log2_for_disjoint_support():
    assert float(P.js_categorical([1.0, 0.0], [0.0, 1.0])) == pytest.approx(math.log(2))
    assert float(P.tv_categorical([1.0, 0.0], [0.0, 1.0])) == 1.0


def test_kl_diag_gaussian_matches_torch(gen):
    mu1, mu2 = torch.randn(2, 3, 4, generator=gen, dtype=F64)
    v1, v2 = torch.rand(2, 3, 4, generator=gen, dtype=F64) + 0.2
    ours = P.kl_diag_gaussian(mu1, v1, mu2, v2)
    ref = D.kl_divergence(D.Independent(D.Normal(mu1, v1.sqrt()), 1),
                          D.Independent(D.Normal(mu2, v2.sqrt()), 1))
    torch.testing.assert_close(ours, ref)
    assert bool((ours >= 0).all())
    assert float(P.kl_diag_gaussian(mu1[0], v1[0], mu1[0], v1[0])) == 0.0


def test_kl_gaussian_matches_torch(gen):
    mu1, mu2 = torch.randn(2, 3, 4, generator=gen, dtype=F64)
    c1, c2 = random_spd(4, gen, batch=(3,)), random_spd(4, gen, batch=(3,))
    ours = P.kl_gaussian(mu1, c1, mu2, c2)
    ref = D.kl_divergence(D.MultivariateNormal(mu1, c1), D.MultivariateNormal(mu2, c2))
    torch.testing.assert_close(ours, ref)
    assert bool((ours > 0).all())
    assert abs(float(P.kl_gaussian(mu1[0], c1[0], mu1[0], c1[0]))) < 1e-12
    # diagonal covariances reduce to kl_diag_gaussian
    v1, v2 = torch.rand(2, 4, generator=gen, dtype=F64) + 0.1
    torch.testing.assert_close(
        P.kl_gaussian(mu1[0], torch.diag(v1), mu2[0], torch.diag(v2)),
        P.kl_diag_gaussian(mu1[0], v1, mu2[0], v2))


def test_registered_kl_mvn_vs_independent_normal(gen):
    mu1, mu2 = torch.randn(2, 3, generator=gen, dtype=F64)
    cov = random_spd(3, gen)
    var = torch.rand(3, generator=gen, dtype=F64) + 0.3
    mvn = D.MultivariateNormal(mu1, cov)
    diag = D.Independent(D.Normal(mu2, var.sqrt()), 1)
    diag_as_mvn = D.MultivariateNormal(mu2, torch.diag(var))
    torch.testing.assert_close(D.kl_divergence(mvn, diag), P.kl_gaussian(mu1, cov, mu2,
                                                                           torch.diag(var)))
    torch.testing.assert_close(D.kl_divergence(mvn, diag), D.kl_divergence(mvn, diag_as_mvn))
    torch.testing.assert_close(D.kl_divergence(diag, mvn), D.kl_divergence(diag_as_mvn, mvn))
    with pytest.raises(NotImplementedError):
        D.kl_divergence(mvn, D.Independent(D.Laplace(mu2, var), 1))


# ------------------------------------------------------------------ Monte Carlo
def test_mc_estimate_gaussian_second_moment():
    g = torch.Generator().manual_seed(1)
    sampler = lambda n, generator=None: torch.randn(n, generator=generator, dtype=F64) * 2 + 1
    est, se = P.mc_estimate(lambda x: x**2, sampler, 20_000, generator=g)
    # E[X^2] = var + mean^2 = 5; Var[X^2] = 2 s^4 + 4 m^2 s^2 = 32 + 16 = 48
    assert abs(float(est) - 5.0) < 4 * float(se)
    assert float(se) == pytest.approx(math.sqrt(48 / 20_000), rel=0.05)


def test_mc_stderr_shrinks_like_inverse_sqrt_n():
    g = torch.Generator().manual_seed(2)
    sampler = lambda n, generator=None: torch.rand(n, generator=generator, dtype=F64)
    ses = [float(P.mc_estimate(torch.exp, sampler, n, g)[1]) for n in (1_000, 4_000, 16_000)]
    assert ses[0] / ses[1] == pytest.approx(2.0, rel=0.1)
    assert ses[1] / ses[2] == pytest.approx(2.0, rel=0.1)
    # and the actual spread of repeated estimates matches the reported stderr
    ests = torch.stack([P.mc_estimate(torch.exp, sampler, 1_000, g)[0] for _ in range(200)])
    assert float(ests.std()) == pytest.approx(ses[0], rel=0.2)
    assert abs(float(ests.mean()) - (math.e - 1)) < 4 * ses[0] / math.sqrt(200)


def test_mc_estimate_vector_valued_and_distribution_sampler():
    torch.manual_seed(0)
    dist = D.Normal(torch.tensor(0.0, dtype=F64), torch.tensor(1.0, dtype=F64))
    est, se = P.mc_estimate(lambda x: torch.stack([x, x**2], 1), dist, 10_000)
    assert est.shape == (2,) and se.shape == (2,)
    assert abs(float(est[0])) < 4 * float(se[0])
    assert abs(float(est[1]) - 1) < 4 * float(se[1])


def test_mc_kl_agrees_with_closed_form(gen):
    mu1, mu2 = torch.randn(2, 3, generator=gen, dtype=F64)
    c1, c2 = random_spd(3, gen), random_spd(3, gen)
    p, q = D.MultivariateNormal(mu1, c1), D.MultivariateNormal(mu2, c2)
    L = torch.linalg.cholesky(c1)
    sample_p = lambda n, generator=None: mu1 + torch.randn(n, 3, generator=generator,
                                                           dtype=F64) @ L.T
    est, se = P.mc_kl(p.log_prob, q.log_prob, sample_p, 50_000, generator=gen)
    exact = float(P.kl_gaussian(mu1, c1, mu2, c2))
    assert abs(float(est) - exact) < 4 * float(se)
    assert float(se) < 0.05 * exact + 0.05


# ------------------------------------------------------------------ bad input
def test_not_positive_definite_names_argument(gen):
    bad = torch.tensor([[1.0, 2.0], [2.0, 1.0]], dtype=F64)
    with pytest.raises(ValueError, match="cov.*positive definite"):
        P.gaussian_log_prob(torch.zeros(2), torch.zeros(2), bad)
    with pytest.raises(ValueError, match="cov2.*positive definite"):
        P.kl_gaussian(torch.zeros(2), torch.eye(2), torch.zeros(2), bad)
    with pytest.raises(ValueError, match="cov.*not symmetric"):
        P.gaussian_log_prob(torch.zeros(2), torch.zeros(2),
                            torch.tensor([[1.0, 0.5], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="cov.*square"):
        P.entropy_gaussian(torch.ones(2, 3))


def test_bad_input_errors(gen):
    with pytest.raises(ValueError, match="x: expected last dimension d=3"):
        P.gaussian_log_prob(torch.zeros(5, 2), torch.zeros(3), torch.eye(3))
    with pytest.raises(ValueError, match="var: expected strictly positive"):
        P.diag_gaussian_log_prob(torch.zeros(2), torch.zeros(2), torch.tensor([1.0, 0.0]))
    with pytest.raises(ValueError, match="p: expected probabilities summing to 1"):
        P.entropy_categorical([0.5, 0.6])
    with pytest.raises(ValueError, match="q: expected non-negative"):
        P.kl_categorical([0.5, 0.5], [1.5, -0.5])
    with pytest.raises(ValueError, match="joint: expected probabilities summing to 1"):
        P.mutual_information_table(torch.ones(2, 2))
    with pytest.raises(ValueError, match="idx_a: expected indices in"):
        P.gaussian_conditional(torch.zeros(3), torch.eye(3), [5], torch.zeros(2))
    with pytest.raises(ValueError, match="idx_a: expected a strict subset"):
        P.gaussian_conditional(torch.zeros(2), torch.eye(2), [0, 1], torch.zeros(0))
    with pytest.raises(ValueError, match="x_b: expected last dimension d=2"):
        P.gaussian_conditional(torch.zeros(3), torch.eye(3), [0], torch.zeros(3))
    with pytest.raises(ValueError, match="idx: expected distinct"):
        P.gaussian_marginal(torch.zeros(3), torch.eye(3), [1, 1])
    with pytest.raises(TypeError, match="idx: expected integer"):
        P.gaussian_marginal(torch.zeros(3), torch.eye(3), [0.5])
    with pytest.raises(TypeError, match="x: expected a torch.Tensor"):
        P.gaussian_mle("data")
    with pytest.raises(ValueError, match="x: expected data of shape"):
        P.gaussian_mle(torch.zeros(3))
    with pytest.raises(ValueError, match="n: expected an int >= 2"):
        P.mc_estimate(torch.exp, lambda n: torch.rand(n), 1)
    with pytest.raises(TypeError, match="sampler: expected a callable"):
        P.mc_estimate(torch.exp, 3, 10)
    with pytest.raises(ValueError, match="generator"):
        P.mc_kl(D.Normal(0.0, 1.0), D.Normal(1.0, 1.0), D.Normal(0.0, 1.0), 10, gen)
    with pytest.raises(ValueError, match="x: expected binary"):
        P.bernoulli_log_prob(torch.tensor([0.5]), torch.zeros(1))
    with pytest.raises(ValueError, match="cov: expected finite"):
        P.entropy_gaussian(torch.tensor([[float("nan"), 0.0], [0.0, 1.0]]))
