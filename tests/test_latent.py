"""Tests of coursekit.latent against closed forms, torch.distributions, scikit-learn
and properties (bounds, unbiasedness within standard errors)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.distributions as D
from sklearn.decomposition import PCA

from coursekit import latent as L
from coursekit.exceptions import NotFittedError

F64 = torch.float64


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(0)


@pytest.fixture
def lgm(gen):
    W = torch.randn(4, 2, generator=gen, dtype=F64) * 1.5
    b = torch.randn(4, generator=gen, dtype=F64)
    return L.LinearGaussianModel(W, b, 0.3)


def diag_normal(mean, std):
    return D.Independent(D.Normal(mean, std), 1)


# ------------------------------------------------------------------ helpers
def test_log_mean_exp_matches_naive_and_is_stable():
    v = torch.tensor([[0.1, -2.0, 3.0], [1.0, 1.0, 1.0]], dtype=F64)
    expected = torch.log(torch.exp(v).mean(1))
    assert torch.allclose(L.log_mean_exp(v, dim=1), expected, atol=1e-12)
    big = torch.tensor([1000.0, 1000.0], dtype=F64)
    assert torch.isclose(L.log_mean_exp(big), torch.tensor(1000.0, dtype=F64))
    with pytest.raises(ValueError, match="values"):
        L.log_mean_exp(torch.zeros(0))


# ------------------------------------------------------------------ linear-Gaussian model
def test_lgm_marginal_matches_mvn_and_bayes_rule(lgm, gen):
    x, _ = lgm.sample(7, generator=gen)
    ref = D.MultivariateNormal(lgm.b, covariance_matrix=lgm.W @ lgm.W.T + 0.3 * torch.eye(4,
                                                                                      dtype=F64))
    assert torch.allclose(lgm.log_marginal(x), ref.log_prob(x), atol=1e-10)
    # p(z|x) = p(x, z) / p(x) at arbitrary z, against the returned Gaussian
    z = torch.randn(7, 2, generator=gen, dtype=F64)
    mean, cov = lgm.posterior(x)
    post = D.MultivariateNormal(mean, covariance_matrix=cov)
    assert torch.allclose(lgm.log_joint(x, z) - lgm.log_marginal(x), post.log_prob(z), atol=1e-9)
    # the likelihood term against torch's Normal
    ll = D.Independent(D.Normal(z @ lgm.W.T + lgm.b, math.sqrt(0.3)), 1).log_prob(x)
    assert torch.allclose(lgm.log_likelihood(x, z), ll, atol=1e-10)


def test_lgm_sample_moments(lgm, gen):
    x, z = lgm.sample(200_000, generator=gen)
    assert torch.allclose(x.mean(0), lgm.b, atol=0.03)
    assert torch.allclose(torch.cov(x.T), lgm.covariance, atol=0.08)
    assert z.shape == (200_000, 2)


def test_lgm_elbo_identity_and_gap(lgm, gen):
    """ELBO (closed form) = log p(x) - KL(q || p(z|x)) for any q, and = log p(x) at the
    posterior."""
    x, _ = lgm.sample(5, generator=gen)
    mean, cov = lgm.posterior(x)
    post = D.MultivariateNormal(mean, covariance_matrix=cov)
    for shift, scale in [(0.0, 1.0), (0.5, 1.0), (-1.0, 2.0), (0.3, 0.2)]:
        m = mean + shift
        S = scale * cov + 0.05 * abs(shift) * torch.eye(2, dtype=F64)
        q = D.MultivariateNormal(m, covariance_matrix=S)
        kl = D.kl_divergence(q, post)
        value = lgm.elbo(x, m, S)
        assert torch.allclose(value + kl, lgm.log_marginal(x), atol=1e-9)
        assert bool((value <= lgm.log_marginal(x) + 1e-12).all())
    assert torch.allclose(lgm.elbo(x, mean, cov), lgm.log_marginal(x), atol=1e-10)


def test_lgm_bad_input():
    with pytest.raises(ValueError, match="W"):
        L.LinearGaussianModel(torch.zeros(3), torch.zeros(3), 1.0)
    with pytest.raises(ValueError, match="b"):
        L.LinearGaussianModel(torch.zeros(3, 2), torch.zeros(2), 1.0)
    with pytest.raises(ValueError, match="noise_variance"):
        L.LinearGaussianModel(torch.zeros(3, 2), torch.zeros(3), -1.0)
    m = L.LinearGaussianModel(torch.zeros(3, 2), torch.zeros(3), 1.0)
    with pytest.raises(ValueError, match="x"):
        m.log_marginal(torch.zeros(5, 2))


# ------------------------------------------------------------------ estimators of p(x)
def test_is_and_naive_are_unbiased_for_p_of_x(lgm, gen):
    torch.manual_seed(1)
    x = lgm.sample(1, generator=gen)[0][0]
    log_px = lgm.log_marginal(x)
    mean, cov = lgm.posterior(x)
    q = D.MultivariateNormal(mean + 0.3, covariance_matrix=2.0 * cov)   # a mediocre q
    reps = 4000
    q_rep = D.MultivariateNormal((mean + 0.3).expand(reps, 2), covariance_matrix=2.0 * cov)
    ratio_is = torch.exp(L.is_log_marginal(lambda z: lgm.log_joint(x, z), q_rep, 10) - log_px)
    assert abs(float(ratio_is.mean()) - 1) < 4 * float(ratio_is.std()) / math.sqrt(reps)
    prior = lgm.prior().expand((reps,))
    ratio_naive = torch.exp(
        L.naive_mc_log_marginal(lambda z: lgm.log_likelihood(x, z), prior, 10) - log_px)
    assert abs(float(ratio_naive.mean()) - 1) < 4 * float(ratio_naive.std()) / math.sqrt(reps)
    # importance sampling with a decent q beats the prior by far
    assert float(ratio_is.var()) < float(ratio_naive.var())
    # a single-q call has batch shape ()
    assert L.is_log_marginal(lambda z: lgm.log_joint(x, z), q, 5).shape == ()


def test_log_of_estimate_is_biased_low_and_bias_shrinks(lgm, gen):
    torch.manual_seed(2)
    x = lgm.sample(1, generator=gen)[0][0]
    log_px = float(lgm.log_marginal(x))
    prior = lgm.prior().expand((3000,))
    gaps = []
    for k in (1, 10, 100):
        est = L.naive_mc_log_marginal(lambda z: lgm.log_likelihood(x, z), prior, k)
        se = float(est.std()) / math.sqrt(3000)
        gap = log_px - float(est.mean())
        assert gap > 3 * se          # E[log p_hat] < log p(x), significantly
        gaps.append(gap)
    assert gaps[0] > gaps[1] > gaps[2]


def test_iwae_equals_log_px_with_exact_posterior(lgm, gen):
    x, _ = lgm.sample(6, generator=gen)
    post = lgm.posterior_distribution(x)
    log_w, _ = L.importance_log_weights(lambda z: lgm.log_joint(x, z), post, 20)
    assert torch.allclose(log_w, lgm.log_marginal(x).expand(20, 6), atol=1e-9)
    for k in (1, 3):
        assert torch.allclose(L.iwae_bound(lambda z: lgm.log_joint(x, z), post, k),
                              lgm.log_marginal(x), atol=1e-9)


def test_iwae_non_decreasing_in_k_and_below_log_px(lgm, gen):
    torch.manual_seed(3)
    x = lgm.sample(1, generator=gen)[0][0]
    mean, cov = lgm.posterior(x)
    q = diag_normal(mean + 0.5, 1.5 * torch.sqrt(torch.diagonal(cov)))
    log_px = float(lgm.log_marginal(x))
    bounds = [float(L.iwae_bound(lambda z: lgm.log_joint(x, z), q, k, n_repeats=4000))
              for k in (1, 2, 8, 64)]
    assert all(a < b for a, b in zip(bounds, bounds[1:]))
    assert bounds[-1] <= log_px + 1e-3
    # L_1 is the ELBO: compare with the closed form (diag covariance)
    exact = float(lgm.elbo(x, mean + 0.5, torch.diag(2.25 * torch.diagonal(cov))))
    assert abs(bounds[0] - exact) < 0.05


def test_elbo_estimator_matches_closed_form(lgm, gen):
    torch.manual_seed(4)
    x, _ = lgm.sample(3, generator=gen)
    mean, cov = lgm.posterior(x)
    std = torch.sqrt(torch.diagonal(cov)) * torch.tensor([0.7, 1.8], dtype=F64)
    reps = 40
    q = diag_normal((mean - 0.4).expand(reps, 3, 2), std.expand(reps, 3, 2))
    exact = lgm.elbo(x, mean - 0.4, torch.diag(std ** 2))
    for analytic in (True, False):
        est = L.elbo(lambda z: lgm.log_joint(x, z), q, n_samples=2000, analytic_entropy=analytic)
        se = est.std(0) / math.sqrt(reps)
        assert bool(((est.mean(0) - exact).abs() < 4 * se).all())
        assert bool((est.mean(0) < lgm.log_marginal(x)).all())


def test_estimator_bad_input(lgm):
    x = torch.zeros(4, dtype=F64)
    q = lgm.prior()
    with pytest.raises(ValueError, match="n_samples"):
        L.is_log_marginal(lambda z: lgm.log_joint(x, z), q, 0)
    with pytest.raises(ValueError, match="log_joint"):
        L.is_log_marginal(lambda z: z, q, 3)
    with pytest.raises(TypeError, match="q"):
        L.elbo(lambda z: z, "not a distribution", 3)


# ------------------------------------------------------------------ gradient estimators
def _gauss(mu, log_sigma):
    return D.Independent(D.Normal(mu, torch.exp(log_sigma)), 1)


@pytest.mark.parametrize("method", ["reinforce", "reinforce_loo", "reinforce_const", "reparam"])
def test_gradient_estimators_unbiased(method):
    """d/dmu E[(z-3)^2] = 2 (mu - 3); d/dlog_sigma = 2 sigma^2 for z ~ N(mu, sigma^2)."""
    torch.manual_seed(5)
    mu = torch.tensor([1.0, -0.5], dtype=F64)
    log_sigma = torch.tensor([0.0, math.log(0.5)], dtype=F64)

    def f(z):
        return ((z - 3.0) ** 2).sum(-1)

    reps = 3000
    if method == "reparam":
        g_mu, g_ls = L.reparam_gradient(f, _gauss, [mu, log_sigma], 4, n_repeats=reps)
    else:
        baseline = {"reinforce": None, "reinforce_loo": "loo", "reinforce_const": 10.0}[method]
        g_mu, g_ls = L.score_function_gradient(f, _gauss, [mu, log_sigma], 4,
                                               baseline=baseline, n_repeats=reps)
    assert g_mu.shape == (reps, 2)
    true_mu = 2 * (mu - 3)
    true_ls = 2 * torch.exp(2 * log_sigma)
    se_mu = g_mu.std(0) / math.sqrt(reps)
    se_ls = g_ls.std(0) / math.sqrt(reps)
    assert bool(((g_mu.mean(0) - true_mu).abs() < 4 * se_mu + 1e-9).all())
    assert bool(((g_ls.mean(0) - true_ls).abs() < 4 * se_ls + 1e-9).all())


def test_gradient_single_estimate_matches_autograd_formula():
    """Without repeats the score-function estimate equals the hand-written
    mean of f(z_i) (z_i - mu) / sigma^2 for the same draws."""
    mu = torch.tensor([0.3], dtype=F64)
    ls = torch.tensor([0.2], dtype=F64)
    torch.manual_seed(6)
    (g_mu, _) = L.score_function_gradient(lambda z: z.sum(-1) ** 3, _gauss, [mu, ls], 50)
    torch.manual_seed(6)
    z = D.Normal(mu, torch.exp(ls)).sample((50,))
    manual = (z.sum(-1) ** 3 * ((z - mu) / torch.exp(2 * ls)).sum(-1)).mean()
    assert torch.allclose(g_mu, manual.reshape(1), atol=1e-10)
    assert mu.grad is None  # inputs untouched


def test_variance_ordering_reparam_loo_plain():
    torch.manual_seed(7)
    mu, ls = torch.tensor([1.0], dtype=F64), torch.tensor([0.0], dtype=F64)

    def f(z):
        return ((z - 3.0) ** 2).sum(-1)

    var = {}
    var["plain"] = L.score_function_gradient(f, _gauss, [mu, ls], 10, n_repeats=4000)[0].var()
    var["loo"] = L.score_function_gradient(f, _gauss, [mu, ls], 10, baseline="loo",
                                           n_repeats=4000)[0].var()
    var["reparam"] = L.reparam_gradient(f, _gauss, [mu, ls], 10, n_repeats=4000)[0].var()
    # exact variance of the reparameterised estimate: Var[2(mu + eps - 3)] / n = 4 / 10
    assert abs(float(var["reparam"]) - 0.4) < 0.04
    assert var["reparam"] < var["loo"] < var["plain"]


def test_score_function_works_for_bernoulli():
    """d/dlogit E_{Bern(sigmoid(l))}[f(z)] = sigmoid'(l) (f(1) - f(0))."""
    torch.manual_seed(8)
    logits = torch.tensor([0.4, -1.0], dtype=F64)

    def make(lg):
        return D.Independent(D.Bernoulli(logits=lg), 1)

    def f(z):
        return (z * torch.tensor([2.0, -3.0], dtype=F64)).sum(-1)

    (g,) = L.score_function_gradient(f, make, [logits], 8, baseline="loo", n_repeats=5000)
    p = torch.sigmoid(logits)
    true = p * (1 - p) * torch.tensor([2.0, -3.0], dtype=F64)
    assert bool(((g.mean(0) - true).abs() < 4 * g.std(0) / math.sqrt(5000)).all())
    with pytest.raises(ValueError, match="rsample"):
        L.reparam_gradient(f, make, [logits], 4)
    with pytest.raises(ValueError, match="baseline"):
        L.score_function_gradient(f, make, [logits], 4, baseline="mean")


# ------------------------------------------------------------------ PPCA
@pytest.fixture
def ppca_data(gen):
    W = torch.randn(6, 2, generator=gen, dtype=F64) * 2
    model = L.LinearGaussianModel(W, torch.arange(6, dtype=F64), 0.5)
    return model.sample(400, generator=gen)[0]


def test_ppca_closed_form_matches_sklearn_pca(ppca_data):
    """sklearn's PCA fits the same model with the 1/(n-1) covariance: rescale."""
    X = ppca_data
    n = X.shape[0]
    model = L.PPCA(2).fit(X)
    sk = PCA(n_components=2).fit(X.numpy())
    cov_sk = torch.from_numpy(sk.get_covariance()) * (n - 1) / n
    assert torch.allclose(model.covariance_, cov_sk, atol=1e-8)
    assert math.isclose(model.noise_variance_, sk.noise_variance_ * (n - 1) / n, rel_tol=1e-8)
    # score_samples against torch's MultivariateNormal with W W^T + s2 I
    ref = D.MultivariateNormal(X.mean(0), covariance_matrix=model.W_ @ model.W_.T
                               + model.noise_variance_ * torch.eye(6, dtype=F64))
    assert torch.allclose(model.score_samples(X), ref.log_prob(X), atol=1e-10)
    assert math.isclose(model.score(X), float(ref.log_prob(X).mean()), rel_tol=1e-12)


def test_ppca_closed_form_is_a_maximum(ppca_data):
    """Perturbing W or sigma^2 never increases the log-likelihood."""
    X = ppca_data
    model = L.PPCA(2).fit(X)
    best = model.score(X)
    gen = torch.Generator().manual_seed(1)
    for _ in range(5):
        W = model.W_ + 0.05 * torch.randn(model.W_.shape, generator=gen, dtype=F64)
        for s2 in (model.noise_variance_ * 0.95, model.noise_variance_ * 1.05):
            other = L.LinearGaussianModel(W, model.mean_, s2)
            assert float(other.log_marginal(X).mean()) < best


def test_ppca_em_agrees_with_closed_form_and_is_coordinate_ascent(ppca_data):
    X = ppca_data
    cf = L.PPCA(2).fit(X)
    em = L.PPCA(2, max_iter=3000, tol=1e-11).fit(X, method="em")
    assert em.converged_
    assert abs(em.score(X) - cf.score(X)) < 1e-6
    assert torch.allclose(em.W_ @ em.W_.T, cf.W_ @ cf.W_.T, atol=1e-3)
    assert abs(em.noise_variance_ - cf.noise_variance_) < 1e-4
    lb, ll = np.array(em.lower_bounds_), np.array(em.log_likelihoods_)
    # after each M-step: ELBO(q_t, theta_{t+1}) <= log p(theta_{t+1})
    assert np.all(lb <= ll + 1e-10)
    # and the exact E-step makes the next bound start at the last log-likelihood
    assert np.all(ll[:-1] <= lb[1:] + 1e-10)
    assert np.all(np.diff(ll) >= -1e-10)


def test_ppca_exact_posterior_elbo_equals_log_likelihood(ppca_data):
    X = ppca_data
    model = L.PPCA(2).fit(X)
    mean, cov = model.posterior(X)
    assert torch.allclose(model.elbo(X, mean, cov), model.score_samples(X), atol=1e-9)
    assert torch.allclose(model.transform(X), mean)
    # transform against E[z|x] = M^-1 W^T (x - mu)
    M = model.W_.T @ model.W_ + model.noise_variance_ * torch.eye(2, dtype=F64)
    assert torch.allclose(mean, (X - model.mean_) @ model.W_ @ torch.linalg.inv(M).T,
                          atol=1e-10)


def test_ppca_sample_covariance(ppca_data, gen):
    model = L.PPCA(2).fit(ppca_data)
    s = model.sample(100_000, generator=gen)
    assert torch.allclose(torch.cov(s.T), model.covariance_, rtol=0.05, atol=0.1)


def test_ppca_bad_input(ppca_data):
    with pytest.raises(ValueError, match="n_components"):
        L.PPCA(6).fit(ppca_data)
    with pytest.raises(ValueError, match="method"):
        L.PPCA(2).fit(ppca_data, method="svd")
    with pytest.raises(ValueError, match="X"):
        L.PPCA(2).fit(ppca_data).score(torch.zeros(3, 5))
    with pytest.raises(ValueError, match="^n_components"):  # validated by fit, as sklearn
        L.PPCA(0).fit(ppca_data)


# ------------------------------------------------------------------ mixture of PPCA
@pytest.fixture
def clusters(gen):
    parts, labels = [], []
    for j, c in enumerate([(-6.0, 0.0, 0.0), (6.0, 0.0, 0.0), (0.0, 6.0, 3.0)]):
        W = torch.randn(3, 1, generator=gen, dtype=F64) * 2
        m = L.LinearGaussianModel(W, torch.tensor(c, dtype=F64), 0.05)
        parts.append(m.sample(150, generator=gen)[0])
        labels += [j] * 150
    return torch.cat(parts), np.array(labels)


def test_mixture_ppca_monotone_and_recovers_clusters(clusters):
    from sklearn.metrics import adjusted_rand_score

    X, labels = clusters
    model = L.MixturePPCA(3, 1, random_state=0).fit(X)
    lb = np.array(model.lower_bounds_)
    assert np.all(np.diff(lb) >= -1e-9)
    assert adjusted_rand_score(labels, model.predict(X).numpy()) > 0.95
    assert torch.allclose(model.weights_.sum(), torch.tensor(1.0, dtype=F64))


def test_mixture_ppca_score_matches_manual_mixture(clusters):
    X, _ = clusters
    model = L.MixturePPCA(3, 1, random_state=0, max_iter=20).fit(X)
    comps = []
    for j in range(3):
        cov = model.W_[j] @ model.W_[j].T + model.noise_variance_[j] * torch.eye(3, dtype=F64)
        comps.append(torch.log(model.weights_[j])
                     + D.MultivariateNormal(model.means_[j], covariance_matrix=cov).log_prob(X))
    manual = torch.logsumexp(torch.stack(comps, 1), 1)
    assert torch.allclose(model.score_samples(X), manual, atol=1e-10)
    assert torch.allclose(model.predict_proba(X).sum(1), torch.ones(len(X), dtype=F64))


def test_mixture_ppca_one_component_is_ppca(ppca_data):
    X = ppca_data
    mix = L.MixturePPCA(1, 2, reg=0.0).fit(X)
    single = L.PPCA(2).fit(X)
    assert abs(mix.score(X) - single.score(X)) < 1e-9


def test_mixture_ppca_sample_and_errors(clusters, gen):
    X, _ = clusters
    model = L.MixturePPCA(3, 1).fit(X)
    s, comp = model.sample(50, generator=gen)
    assert s.shape == (50, 3) and comp.shape == (50,)
    with pytest.raises(ValueError, match="n_latent"):
        L.MixturePPCA(2, 3).fit(X)
    with pytest.raises(NotFittedError, match="fit"):
        L.MixturePPCA(2, 1).score(X)
