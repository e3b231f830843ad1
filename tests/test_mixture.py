"""Tests of coursekit.mixture against scikit-learn, scipy and brute-force computations."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest
import scipy.stats
import torch
from scipy.special import logsumexp
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from coursekit.mixture import BernoulliMixture, ConvergenceWarning, GaussianMixture, kmeans

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning",
                                        "ignore::coursekit.mixture.ConvergenceWarning")


def blobs(seed=0, n_per=200, d=3, k=3):
    rng = np.random.RandomState(seed)
    parts = [rng.randn(n_per, d) @ rng.randn(d, d) + 5 * rng.randn(d) for _ in range(k)]
    return np.concatenate(parts)


def init_params(X, K, ct, seed=0):
    rng = np.random.RandomState(seed)
    d = X.shape[1]
    weights = rng.dirichlet(np.ones(K) * 5)
    means = X[rng.choice(len(X), K, replace=False)]
    if ct == "full":
        A = rng.randn(K, d, d) * 0.2
        prec = A @ A.transpose(0, 2, 1) + np.eye(d)
    elif ct == "diag":
        prec = rng.uniform(0.5, 2.0, size=(K, d))
    elif ct == "spherical":
        prec = rng.uniform(0.5, 2.0, size=K)
    else:
        A = rng.randn(d, d) * 0.2
        prec = A @ A.T + np.eye(d)
    return weights, means, prec


# ------------------------------------------------------------------ against scikit-learn
@pytest.mark.parametrize("ct", ["full", "diag", "spherical", "tied"])
@pytest.mark.parametrize("n_iter", [1, 10])
def test_matches_sklearn_with_same_init(ct, n_iter):
    X = blobs(seed=1)
    K = 3
    w0, m0, p0 = init_params(X, K, ct, seed=2)
    kw = dict(covariance_type=ct, weights_init=w0, means_init=m0, precisions_init=p0,
              max_iter=n_iter, tol=0.0)
    sk = SkGaussianMixture(K, **kw).fit(X)
    ours = GaussianMixture(K, **kw).fit(X)
    np.testing.assert_allclose(ours.weights_, sk.weights_, atol=1e-8)
    np.testing.assert_allclose(ours.means_, sk.means_, atol=1e-8)
    np.testing.assert_allclose(ours.covariances_, sk.covariances_, atol=1e-8)
    np.testing.assert_allclose(ours.precisions_cholesky_, sk.precisions_cholesky_,
                               atol=1e-8)
    np.testing.assert_allclose(ours.precisions_, sk.precisions_, rtol=1e-7, atol=1e-8)
    # log-likelihood: per sample within 1e-4, and the recorded bounds
    np.testing.assert_allclose(ours.score_samples(X), sk.score_samples(X), atol=1e-4)
    assert abs(ours.score(X) - sk.score(X)) < 1e-6
    assert abs(ours.lower_bound_ - sk.lower_bound_) < 1e-6
    np.testing.assert_allclose(ours.lower_bounds_, sk.lower_bounds_, atol=1e-6)
    assert ours.n_iter_ == sk.n_iter_ == n_iter
    np.testing.assert_allclose(ours.predict_proba(X), sk.predict_proba(X), atol=1e-6)
    np.testing.assert_array_equal(ours.predict(X), sk.predict(X))
    assert ours.bic(X) == pytest.approx(sk.bic(X), rel=1e-9)
    assert ours.aic(X) == pytest.approx(sk.aic(X), rel=1e-9)


def test_matches_sklearn_convergence_with_tol():
    """Same stopping rule: |change of mean log-likelihood| < tol, same n_iter_."""
    X = blobs(seed=3)
    w0, m0, p0 = init_params(X, 3, "full", seed=4)
    kw = dict(weights_init=w0, means_init=m0, precisions_init=p0, tol=1e-4, max_iter=500)
    sk = SkGaussianMixture(3, **kw).fit(X)
    ours = GaussianMixture(3, **kw).fit(X)
    assert ours.converged_ and sk.converged_
    assert ours.n_iter_ == sk.n_iter_
    assert abs(ours.score(X) - sk.score(X)) < 1e-6


def test_float32_close_to_float64():
    X = blobs(seed=5)
    w0, m0, p0 = init_params(X, 3, "full", seed=6)
    kw = dict(weights_init=w0, means_init=m0, precisions_init=p0, max_iter=10, tol=0.0)
    s64 = GaussianMixture(3, **kw).fit(X).score(X)
    s32 = GaussianMixture(3, dtype=torch.float32, **kw).fit(X).score(X)
    assert abs(s64 - s32) < 1e-4


def test_own_init_reaches_sklearn_quality():
    X = blobs(seed=7, n_per=300)
    ours = GaussianMixture(3, n_init=2, random_state=0).fit(X)
    sk = SkGaussianMixture(3, n_init=2, random_state=0).fit(X)
    assert ours.converged_
    assert ours.score(X) > sk.score(X) - 0.05  # well-separated blobs: same optimum
    ours_r = GaussianMixture(3, init_params="random", n_init=2, random_state=0,
                             max_iter=100).fit(X)
    assert np.isfinite(ours_r.score(X))


# ------------------------------------------------------------------ empty components (issue 13)
@pytest.mark.parametrize("ct", ["full", "diag", "spherical", "tied"])
def test_empty_components_fit_like_sklearn_first_reproduction(ct):
    """Two distinct points, 10 components: 8 get no responsibility. They used to get the
    variance -(mean of X)^2 + reg_covar < 0 and fit raised "ill-defined empirical
    covariance"; like scikit-learn they now get reg_covar."""
    X = np.vstack((np.ones((5, 5)), np.zeros((5, 5))))
    gm = GaussianMixture(10, covariance_type=ct, reg_covar=1e-6, random_state=0).fit(X)
    sk = SkGaussianMixture(10, covariance_type=ct, reg_covar=1e-6, random_state=0).fit(X)
    assert gm.score(X) == pytest.approx(sk.score(X), abs=1e-8)
    np.testing.assert_allclose(np.sort(gm.weights_), np.sort(sk.weights_), atol=1e-12)
    if ct != "tied":
        variances = gm.covariances_.reshape(10, -1)
        if ct == "full":
            variances = np.stack([np.diag(c) for c in gm.covariances_])
        np.testing.assert_allclose(variances, 1e-6, rtol=1e-6)


def test_empty_component_fits_like_sklearn_second_reproduction():
    """A component initialised far from all data gets no responsibility at once."""
    X = np.random.RandomState(0).randn(200, 1) + 100
    kw = dict(covariance_type="diag", means_init=[[100], [1e4]], random_state=0)
    gm = GaussianMixture(2, **kw).fit(X)
    sk = SkGaussianMixture(2, **kw).fit(X)
    np.testing.assert_allclose(gm.means_, sk.means_, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(gm.covariances_, sk.covariances_, rtol=1e-8)
    # the occupied component is the data's Gaussian; the empty one has variance reg_covar
    np.testing.assert_allclose(gm.means_[0], X.mean(0), rtol=1e-12)
    np.testing.assert_allclose(gm.covariances_[0], X.var(0) + 1e-6, rtol=1e-9)
    assert gm.covariances_[1, 0] == pytest.approx(1e-6, rel=1e-9)


@pytest.mark.parametrize("ct", ["full", "diag", "spherical"])
def test_m_step_covariances_against_numpy_with_an_empty_component(ct):
    """The M-step on data far from the origin, one responsibility column all zero:
    occupied components equal the weighted covariances computed directly in NumPy
    (sum_n r_nk (x_n - mu_k)(x_n - mu_k)^T / N_k), the empty one is reg_covar."""
    rng = np.random.RandomState(1)
    X = rng.randn(300, 3) * [1.0, 0.1, 2.0] + 1e3
    resp = rng.dirichlet(np.ones(3), size=300)
    resp[:, 2] = 0.0
    resp /= resp.sum(1, keepdims=True)
    gm = GaussianMixture(3, covariance_type=ct, reg_covar=1e-4, random_state=0).fit(X)
    gm.m_step(X, np.log(np.maximum(resp, 1e-300)))
    for k in range(2):
        r = resp[:, k]
        mu = r @ X / r.sum()
        full = np.einsum("n,ni,nj->ij", r, X - mu, X - mu) / r.sum()
        want = {"full": full + 1e-4 * np.eye(3), "diag": np.diag(full) + 1e-4,
                "spherical": np.diag(full).mean() + 1e-4}[ct]
        np.testing.assert_allclose(gm.means_[k], mu, rtol=1e-12)
        np.testing.assert_allclose(gm.covariances_[k], want, rtol=1e-7, atol=1e-9)
    empty = {"full": 1e-4 * np.eye(3), "diag": np.full(3, 1e-4), "spherical": 1e-4}[ct]
    np.testing.assert_allclose(gm.covariances_[2], empty, rtol=1e-9, atol=1e-12)


# ------------------------------------------------------------------ densities and EM properties
@pytest.mark.parametrize("ct", ["full", "diag"])
def test_score_samples_against_scipy_mixture(ct):
    X = blobs(seed=8)
    gm = GaussianMixture(4, covariance_type=ct, random_state=1, max_iter=5).fit(X)
    covs = gm.covariances_
    if ct == "diag":
        covs = np.stack([np.diag(c) for c in covs])
    comp = np.stack([scipy.stats.multivariate_normal(m, c).logpdf(X)
                     for m, c in zip(gm.means_, covs)], 1)
    ref = logsumexp(comp + np.log(gm.weights_), axis=1)
    np.testing.assert_allclose(gm.score_samples(X), ref, rtol=1e-10, atol=1e-10)
    resp = np.exp(comp + np.log(gm.weights_) - ref[:, None])
    np.testing.assert_allclose(gm.predict_proba(X), resp, atol=1e-10)


@pytest.mark.parametrize("ct", ["full", "diag", "spherical", "tied"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lower_bound_never_decreases(ct, seed):
    X = blobs(seed=10 + seed, n_per=100, d=2, k=4)
    gm = GaussianMixture(5, covariance_type=ct, init_params="random", random_state=seed,
                         max_iter=40, tol=0.0).fit(X)
    bounds = np.array(gm.lower_bounds_)
    assert len(bounds) == 40
    assert np.all(np.diff(bounds) >= -1e-10)
    assert gm.score(X) >= bounds[-1] - 1e-10


def test_manual_em_steps_replay_fit():
    X = torch.as_tensor(blobs(seed=11))
    w0, m0, p0 = init_params(X.numpy(), 3, "full", seed=3)
    kw = dict(weights_init=w0, means_init=m0, precisions_init=p0, max_iter=6, tol=0.0)
    fitted = GaussianMixture(3, **kw).fit(X)
    stepper = GaussianMixture(3, **kw).initialize(X)
    bounds = []
    for _ in range(6):
        log_resp, ll = stepper.e_step(X)
        assert log_resp.shape == (len(X), 3)
        torch.testing.assert_close(log_resp.logsumexp(1), torch.zeros(len(X), dtype=X.dtype))
        bounds.append(ll)
        stepper.m_step(X, log_resp)
    assert bounds == pytest.approx(fitted.lower_bounds_, abs=1e-12)
    torch.testing.assert_close(stepper.means_, fitted.means_)


def test_fit_predict_equals_predict_and_kmeans_recovers_blobs():
    X = blobs(seed=12, n_per=150)
    truth = np.repeat(np.arange(3), 150)
    labels = GaussianMixture(3, random_state=0).fit_predict(X)
    gm = GaussianMixture(3, random_state=0).fit(X)
    np.testing.assert_array_equal(labels, gm.predict(X))
    # clustering agrees with the generating blobs up to a permutation
    best = max(np.mean(np.array(perm)[labels] == truth)
               for perm in itertools.permutations(range(3)))
    assert best > 0.95
    centers, km_labels = kmeans(torch.as_tensor(X), 3, generator=0)
    assert centers.shape == (3, 3) and km_labels.shape == (450,)
    for k in range(3):  # each centre is the mean of its points (Lloyd fixed point)
        torch.testing.assert_close(centers[k], torch.as_tensor(X)[km_labels == k].mean(0))


def test_sample_statistics():
    weights = np.array([0.2, 0.8])
    means = np.array([[0.0, 0.0], [5.0, -3.0]])
    covs = np.array([[[1.0, 0.5], [0.5, 2.0]], [[0.5, -0.2], [-0.2, 0.3]]])
    gm = GaussianMixture(2, weights_init=weights, means_init=means,
                         precisions_init=np.linalg.inv(covs),
                         max_iter=0).fit(torch.as_tensor(means))
    X, labels = gm.sample(40_000, generator=0)
    assert X.shape == (40_000, 2) and labels.shape == (40_000,)
    freq = torch.bincount(labels, minlength=2).double() / 40_000
    assert abs(float(freq[0]) - 0.2) < 4 * math.sqrt(0.2 * 0.8 / 40_000)
    for k in range(2):
        xk = X[labels == k].numpy()
        np.testing.assert_allclose(xk.mean(0), means[k], atol=0.05)
        np.testing.assert_allclose(np.cov(xk.T), covs[k], atol=0.06)
    # reproducible for a seed
    torch.testing.assert_close(gm.sample(10, generator=3)[0], gm.sample(10, generator=3)[0])
    # samples of a diag model have the model's variances
    gd = GaussianMixture(1, covariance_type="diag", means_init=[[1.0, 2.0]],
                         precisions_init=[[4.0, 0.25]], max_iter=0).fit(torch.as_tensor(means))
    Xd, _ = gd.sample(40_000, generator=1)
    np.testing.assert_allclose(Xd.var(0).numpy(), [0.25, 4.0], rtol=0.05)


def test_n_init_keeps_the_best_run():
    X = blobs(seed=13, n_per=80, d=2, k=5)
    # the first of the n_init runs draws the same random numbers as a single run
    single = GaussianMixture(5, init_params="random", random_state=0, max_iter=30).fit(X)
    multi = GaussianMixture(5, init_params="random", n_init=3, random_state=0,
                            max_iter=30).fit(X)
    assert multi.lower_bound_ >= single.lower_bound_ - 1e-12


def test_convergence_warning_and_numpy_torch_inputs_agree():
    X = blobs(seed=14)
    with pytest.warns(ConvergenceWarning, match="max_iter=2"):
        GaussianMixture(3, max_iter=2, tol=0.0, random_state=0).fit(X)
    a = GaussianMixture(3, random_state=0).fit(X)
    b = GaussianMixture(3, random_state=0).fit(torch.as_tensor(X, dtype=torch.float32))
    # array in, same array out; float32 stays float32 (scikit-learn's dtype rule)
    assert isinstance(a.means_, np.ndarray) and a.means_.dtype == np.float64
    assert isinstance(b.means_, torch.Tensor) and b.means_.dtype == torch.float32
    # the same clusters (k-means draws its seeds in the data's dtype: labels may permute)
    order_a, order_b = np.argsort(a.means_[:, 0]), np.argsort(b.means_[:, 0].numpy())
    np.testing.assert_allclose(a.means_[order_a], b.means_.numpy()[order_b], atol=1e-4, rtol=0)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_matches_cpu():
    X = torch.as_tensor(blobs(seed=15))
    w0, m0, p0 = init_params(X.numpy(), 3, "full")
    kw = dict(weights_init=w0, means_init=m0, precisions_init=p0, max_iter=10, tol=0.0)
    cpu = GaussianMixture(3, **kw).fit(X)
    gpu = GaussianMixture(3, device="cuda", **kw).fit(X)
    assert gpu.means_.device.type == "cuda"
    torch.testing.assert_close(gpu.means_.cpu(), cpu.means_)
    assert abs(gpu.score(X) - cpu.score(X)) < 1e-8


# ------------------------------------------------------------------ Bernoulli mixture
def binary_data(seed=0, n=300, D=8, K=3):
    g = torch.Generator().manual_seed(seed)
    protos = torch.rand(K, D, generator=g, dtype=torch.float64)
    z = torch.randint(K, (n,), generator=g)
    return torch.bernoulli(protos[z], generator=g)


def test_bernoulli_log_likelihood_brute_force():
    X = binary_data(seed=1, n=50, D=5)
    bm = BernoulliMixture(3, max_iter=5, random_state=0).fit(X)
    pi, mu = bm.weights_.numpy(), bm.means_.numpy()
    for x, ours in zip(X.numpy(), bm.score_samples(X).numpy()):
        p = sum(pi[k] * np.prod(mu[k] ** x * (1 - mu[k]) ** (1 - x)) for k in range(3))
        assert ours == pytest.approx(math.log(p), rel=1e-10)


def test_bernoulli_distribution_sums_to_one():
    """p(x) over all 2^D binary vectors sums to 1 (a proper distribution)."""
    X = binary_data(seed=2, n=100, D=6)
    bm = BernoulliMixture(4, random_state=0).fit(X)
    all_x = torch.tensor(list(itertools.product([0.0, 1.0], repeat=6)), dtype=torch.float64)
    assert float(bm.score_samples(all_x).exp().sum()) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_bernoulli_em_monotone(seed):
    X = binary_data(seed=seed, n=200, D=10, K=4)
    bm = BernoulliMixture(4, alpha=0.5, init_params="random", random_state=seed, max_iter=50,
                          tol=0.0).fit(X)
    assert np.all(np.diff(bm.objectives_) >= -1e-12)  # MAP-EM: penalised objective
    bm0 = BernoulliMixture(4, alpha=0.0, init_params="random", random_state=seed, max_iter=50,
                           tol=0.0).fit(X)
    assert np.all(np.diff(bm0.lower_bounds_) >= -1e-12)  # plain EM: log-likelihood
    assert bm0.lower_bounds_ == pytest.approx(bm0.objectives_)


def test_bernoulli_m_step_closed_form_and_sampling():
    X = binary_data(seed=4, n=120, D=6)
    bm = BernoulliMixture(2, alpha=0.3, random_state=0).initialize(X)
    log_resp, _ = bm.e_step(X)
    r = log_resp.exp()
    bm.m_step(X, log_resp)
    torch.testing.assert_close(bm.means_, (r.T @ X + 0.3) / (r.sum(0)[:, None] + 0.6))
    torch.testing.assert_close(bm.weights_, r.mean(0))
    # K = 1: the MLE (alpha = 0) is the pixel mean; samples reproduce it
    one = BernoulliMixture(1, alpha=0.0).fit(X)
    torch.testing.assert_close(one.means_[0], X.mean(0))
    S, labels = one.sample(20_000, generator=0)
    assert set(S.unique().tolist()) <= {0.0, 1.0} and bool((labels == 0).all())
    torch.testing.assert_close(S.mean(0), X.mean(0), atol=0.015, rtol=0)
    assert one.bic(X) == pytest.approx(-2 * one.score(X) * 120 + 6 * math.log(120))


# ------------------------------------------------------------------ bad input
def test_bad_input_errors():
    X = blobs()
    # parameters are validated by fit (scikit-learn's rule), naming the parameter
    with pytest.raises(ValueError, match="^covariance_type: .*must be a str among"):
        GaussianMixture(2, covariance_type="banana").fit(X)
    with pytest.raises(ValueError, match="^init_params: "):
        GaussianMixture(2, init_params="kmeans++x").fit(X)
    with pytest.raises(ValueError, match="^n_components: .*range \\[1, inf\\)"):
        GaussianMixture(0).fit(X)
    with pytest.raises(TypeError, match="^n_components"):
        GaussianMixture(2.5).fit(X)
    with pytest.raises(ValueError, match="^reg_covar"):
        GaussianMixture(2, reg_covar=-1.0).fit(X)
    with pytest.raises(ValueError, match="X: expected a 2-D array"):
        GaussianMixture(2).fit(X[:, 0])
    with pytest.raises(ValueError, match="n_components <= n_samples"):
        GaussianMixture(5).fit(X[:3])
    with pytest.raises(ValueError, match="X: expected finite"):
        GaussianMixture(2).fit(np.full((10, 2), np.nan))
    with pytest.raises(TypeError, match="X: expected a torch.Tensor"):
        GaussianMixture(2).fit("data")
    with pytest.raises(ValueError, match="not fitted"):
        GaussianMixture(2).score(X)
    with pytest.raises(ValueError, match="means_init: expected shape"):
        GaussianMixture(2, means_init=np.zeros((3, 3))).fit(X)
    with pytest.raises(ValueError, match="weights_init: expected non-negative weights"):
        GaussianMixture(2, weights_init=[0.7, 0.7]).fit(X)
    with pytest.raises(ValueError, match="precisions_init: expected symmetric positive"):
        GaussianMixture(2, precisions_init=-np.stack([np.eye(3)] * 2)).fit(X)
    gm = GaussianMixture(2, random_state=0).fit(X)
    with pytest.raises(ValueError, match="X: expected 3 features"):
        gm.score(X[:, :2])
    with pytest.raises(ValueError, match="log_resp: expected shape"):
        gm.m_step(X, torch.zeros(len(X), 3))
    with pytest.raises(ValueError, match="ill-defined empirical covariance"):
        GaussianMixture(2, reg_covar=0.0, random_state=0).fit(np.zeros((10, 2)))
    with pytest.raises(ValueError, match="X: expected binary"):
        BernoulliMixture(2).fit(X)
    with pytest.raises(ValueError, match="alpha"):
        BernoulliMixture(2, alpha=-1).fit(X)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device: 'cuda' was requested"):
            GaussianMixture(2, device="cuda").fit(X)
    with pytest.raises(ValueError, match="n_clusters"):
        kmeans(torch.zeros(2, 2), 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning when it converges
        GaussianMixture(2, random_state=0).fit(X)


def test_select_bernoulli_mixture_keeps_the_best_validation_model():
    from coursekit.mixture import select_bernoulli_mixture

    gen = torch.Generator().manual_seed(0)
    protos = (torch.rand(3, 12, generator=gen) > 0.5).double()
    labels = torch.randint(0, 3, (400,), generator=gen)
    flips = torch.rand(400, 12, generator=gen) < 0.05
    x = (protos[labels] + flips.double()) % 2
    model, table = select_bernoulli_mixture(x[:300], x[300:], candidates=(1, 3), progress=False)
    assert set(table) == {1, 3}
    assert model.n_components == min(table, key=lambda k: table[k][1]) == 3
    assert table[3][1] == pytest.approx(-model.score(x[300:]))
    assert table[3][1] < table[1][1]
    with pytest.raises(ValueError, match="candidates"):
        select_bernoulli_mixture(x, x, candidates=())
