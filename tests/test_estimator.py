"""coursekit's fitted estimators as scikit-learn estimators (coursekit.estimator).

clone / get_params / set_params, Pipeline, GridSearchCV, check_is_fitted, pickling,
random_state kinds, parameters validated in fit, y ignored, the "array in, same array
out" rule with scikit-learn's dtype rule, warm_start, verbose, and the new init_params,
each checked against scikit-learn's own GaussianMixture or an explicit computation.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import sklearn.exceptions
import torch
from sklearn.base import clone
from sklearn.mixture import GaussianMixture as SkGaussianMixture
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted

from coursekit import exceptions
from coursekit.latent import PPCA, MixturePPCA
from coursekit.mixture import BernoulliMixture, GaussianMixture

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def blobs(seed=0, n_per=60, d=2, centres=((0.0, 0.0), (8.0, 0.0), (0.0, 8.0))):
    rng = np.random.RandomState(seed)
    return np.concatenate([rng.randn(n_per, d) + np.asarray(c)[:d] for c in centres])


def same_init(X, K, seed=0):
    rng = np.random.RandomState(seed)
    d = X.shape[1]
    return dict(weights_init=np.full(K, 1.0 / K), means_init=X[rng.choice(len(X), K, False)],
                precisions_init=np.stack([np.eye(d)] * K))


ALL = [GaussianMixture(2, random_state=0), BernoulliMixture(2, binarize=0.0, random_state=0),
       PPCA(1), MixturePPCA(2, 1)]


# ------------------------------------------------------------------ the scikit-learn API
@pytest.mark.parametrize("est", ALL, ids=lambda e: type(e).__name__)
def test_clone_params_pickle_and_check_is_fitted(est):
    X = blobs()
    params = est.get_params()
    twin = clone(est)
    assert twin is not est and twin.get_params() == params
    with pytest.raises(sklearn.exceptions.NotFittedError):
        check_is_fitted(twin)
    with pytest.raises(exceptions.NotFittedError, match="not fitted"):
        twin.score_samples(X)
    assert exceptions.NotFittedError is sklearn.exceptions.NotFittedError
    twin.fit(X)
    check_is_fitted(twin)
    assert twin.n_features_in_ == 2
    again = pickle.loads(pickle.dumps(twin))
    np.testing.assert_array_equal(again.score_samples(X), twin.score_samples(X))
    # set_params changes one parameter and nothing else; a clone of a fitted model is unfitted
    twin.set_params(random_state=5)
    assert twin.get_params() == {**params, "random_state": 5}
    assert not hasattr(clone(twin), "n_features_in_")


def test_grid_search_and_pipeline():
    X = np.random.RandomState(0).permutation(blobs(seed=1))  # folds see every blob
    search = GridSearchCV(GaussianMixture(random_state=0), {"n_components": [1, 2, 3, 4]},
                          cv=3).fit(X)
    assert search.best_params_["n_components"] >= 3   # three blobs: 1 or 2 fit worse
    assert isinstance(search.best_estimator_.means_, np.ndarray)
    pipe = make_pipeline(StandardScaler(), GaussianMixture(3, random_state=0)).fit(X)
    labels = pipe.predict(X)
    assert set(np.unique(labels)) == {0, 1, 2}
    assert pipe.score(X) == pytest.approx(pipe[-1].score(pipe[0].transform(X)))


def test_parameters_are_validated_in_fit_not_init():
    gm = GaussianMixture(n_components=-1, covariance_type="banana", random_state="x")
    assert gm.n_components == -1  # stored unchanged
    with pytest.raises(ValueError, match="^covariance_type|^n_components|^random_state"):
        gm.fit(blobs())
    with pytest.raises(ValueError, match="^dtype: expected None or a floating"):
        GaussianMixture(dtype=torch.int64).fit(blobs())


def test_random_state_kinds():
    X = blobs(seed=2)
    kw = dict(n_components=3, init_params="random", max_iter=3)
    a = GaussianMixture(random_state=0, **kw).fit(X).means_
    np.testing.assert_array_equal(GaussianMixture(random_state=0, **kw).fit(X).means_, a)
    # a RandomState advances between fits, as in scikit-learn; equal states give equal fits
    rs = np.random.RandomState(7)
    gm = GaussianMixture(random_state=rs, **kw)
    first, second = gm.fit(X).means_.copy(), gm.fit(X).means_.copy()
    assert not np.allclose(first, second)
    np.testing.assert_array_equal(
        GaussianMixture(random_state=np.random.RandomState(7), **kw).fit(X).means_, first)
    gen = torch.Generator().manual_seed(0)
    assert np.isfinite(GaussianMixture(random_state=gen, **kw).fit(X).score(X))


@pytest.mark.parametrize("est", ALL, ids=lambda e: type(e).__name__)
def test_y_is_ignored(est):
    X, y = blobs(seed=3), np.arange(180) % 3
    a = clone(est).fit(X, y)
    b = clone(est).fit(X)
    assert a.score(X, y) == b.score(X)
    if hasattr(est, "fit_predict"):
        np.testing.assert_array_equal(clone(est).fit_predict(X, y), b.predict(X))


# ------------------------------------------------------------------ array in, same array out
@pytest.mark.parametrize("est", ALL, ids=lambda e: type(e).__name__)
def test_numpy_in_numpy_out_and_tensor_in_tensor_out(est):
    X = blobs(seed=4)
    for dtype in (np.float64, np.float32):
        fitted = clone(est).fit(X.astype(dtype))
        arrays = [v for k, v in vars(type(fitted)).items()
                  if k.endswith("_") and not k.startswith("_")]
        assert arrays  # the FittedArray attributes
        for name in ("means_", "W_", "mean_", "weights_"):
            if hasattr(fitted, name):
                value = getattr(fitted, name)
                assert isinstance(value, np.ndarray) and value.dtype == dtype, name
        out = fitted.score_samples(X.astype(dtype))
        assert isinstance(out, np.ndarray) and out.dtype == dtype
        # a method answers in the kind of its own X
        t_out = fitted.score_samples(torch.as_tensor(X))
        assert isinstance(t_out, torch.Tensor)
        np.testing.assert_allclose(t_out.numpy(), out, rtol=1e-5 if dtype == np.float32
                                   else 1e-12)
    Xt = torch.as_tensor(X, dtype=torch.float32)
    fitted = clone(est).fit(Xt)
    assert fitted.score_samples(Xt).dtype == torch.float32
    sample = fitted.sample(5)
    sample = sample[0] if isinstance(sample, tuple) else sample
    assert isinstance(sample, torch.Tensor) and sample.shape == (5, 2)
    # integer input becomes float64, as in scikit-learn
    ints = clone(est).fit(np.rint(X).astype(np.int64))
    assert ints.score_samples(np.rint(X).astype(np.int64)).dtype == np.float64


def test_numpy_outputs_of_gaussian_mixture_match_sklearn_types():
    X = blobs(seed=5)
    ours = GaussianMixture(3, random_state=0, **same_init(X, 3)).fit(X)
    sk = SkGaussianMixture(3, random_state=0, **same_init(X, 3)).fit(X)
    assert bool(np.all(X.min(0) <= ours.means_))  # the example: NumPy arithmetic works
    for name in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
        a, b = getattr(ours, name), getattr(sk, name)
        assert type(a) is type(b) and a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-9)
    for method in ("predict", "predict_proba", "score_samples"):
        a, b = getattr(ours, method)(X), getattr(sk, method)(X)
        assert type(a) is type(b) and a.dtype == b.dtype
        np.testing.assert_allclose(a, b, atol=1e-8)
    Xs, labels = ours.sample(4)
    assert isinstance(Xs, np.ndarray) and labels.dtype == np.int64


# ------------------------------------------------------------------ warm start, verbose, init
@pytest.mark.parametrize("ct", ["full", "diag"])
def test_warm_start_continues_like_sklearn(ct):
    X = blobs(seed=6)
    init = same_init(X, 3, seed=1)
    if ct == "diag":
        init["precisions_init"] = np.ones((3, 2))
    kw = dict(covariance_type=ct, max_iter=3, tol=0.0, warm_start=True, **init)
    ours, sk = GaussianMixture(3, **kw), SkGaussianMixture(3, **kw)
    for _ in range(3):
        ours.fit(X)
        sk.fit(X)
        np.testing.assert_allclose(ours.means_, sk.means_, atol=1e-9)
        np.testing.assert_allclose(ours.covariances_, sk.covariances_, atol=1e-9)
        assert ours.lower_bound_ == pytest.approx(sk.lower_bound_, abs=1e-9)
    # three warm fits of 3 iterations = one fit of 9
    cold = GaussianMixture(3, **{**kw, "warm_start": False, "max_iter": 9}).fit(X)
    np.testing.assert_allclose(ours.means_, cold.means_, atol=1e-9)
    with pytest.raises(ValueError, match="^X: expected 2 features"):
        ours.fit(np.hstack([X, X]))
    # a warm start right after initialize() starts from the initial parameters
    stepped = GaussianMixture(3, **{**kw, "max_iter": 9}).initialize(X).fit(X)
    np.testing.assert_allclose(stepped.means_, cold.means_, atol=1e-9)


def test_stepping_em_by_hand_answers_in_the_kind_of_x():
    from coursekit.mixture import em_trace

    X = blobs(seed=9)
    gm = GaussianMixture(3, random_state=0, **same_init(X, 3)).initialize(X)
    log_resp, mean_ll = gm.e_step(X)
    assert isinstance(log_resp, np.ndarray) and isinstance(mean_ll, float)
    gm.m_step(X, log_resp)
    trace = em_trace(gm, X, 2)
    assert all(isinstance(v, np.ndarray) for v in trace.values())
    t_trace = em_trace(gm, torch.as_tensor(X), 2)
    assert all(isinstance(v, torch.Tensor) for v in t_trace.values())
    # the same numbers as scikit-learn after 1 + 2 + 2 iterations from the same start
    sk = SkGaussianMixture(3, max_iter=5, tol=0.0, **same_init(X, 3)).fit(X)
    np.testing.assert_allclose(gm.means_, sk.means_, atol=1e-9)


def test_verbose_and_verbose_interval(capsys):
    X = blobs(seed=7)
    GaussianMixture(3, max_iter=6, tol=0.0, verbose=1, verbose_interval=2,
                    random_state=0).fit(X)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "GaussianMixture: initialization 0"
    assert [ln.split(":")[0].strip() for ln in lines[1:4]] == [
        "iteration 2", "iteration 4", "iteration 6"]
    assert lines[-1] == "GaussianMixture: initialization 0 did not converge"
    GaussianMixture(3, max_iter=200, verbose=2, random_state=0).fit(X)
    out = capsys.readouterr().out
    assert "converged in" in out and "objective" in out
    GaussianMixture(3, random_state=0).fit(X)
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("init", ["k-means++", "random_from_data"])
@pytest.mark.parametrize("est_cls", [GaussianMixture, BernoulliMixture])
def test_new_init_params_start_at_data_points(init, est_cls):
    X = blobs(seed=8, centres=((0.0, 0.0), (100.0, 0.0), (0.0, 100.0)))
    if est_cls is BernoulliMixture:
        X = (X > 50).astype(float)
        est = BernoulliMixture(3, init_params=init, alpha=0.0, random_state=0)
    else:
        est = GaussianMixture(3, init_params=init, reg_covar=1e-6, random_state=0)
    est.initialize(X)
    # one data point per component: means are rows of X; Gaussian covariances reg_covar I
    means = est.means_
    for m in means:
        assert np.isclose(X, m, atol=1e-9).all(1).any()
    if est_cls is GaussianMixture:
        np.testing.assert_allclose(est.covariances_, np.stack([np.eye(2) * 1e-6] * 3),
                                   rtol=1e-6)
        if init == "k-means++":  # the seeds land in three different far-apart blobs
            assert len({tuple(np.rint(m / 50)) for m in means}) == 3
    # initial weights N_k / n as scikit-learn's (1/n each; EM normalises them), Bernoulli 1/K
    want = 1.0 / len(X) if est_cls is GaussianMixture else 1.0 / 3
    np.testing.assert_allclose(est.weights_, want, rtol=1e-9)
    assert np.isfinite(est.fit(X).score(X))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("est", ALL, ids=lambda e: type(e).__name__)
def test_cuda_tensor_in_cuda_tensor_out(est):
    X = blobs(seed=10)
    on_gpu = clone(est).fit(torch.as_tensor(X, device="cuda"))
    assert on_gpu.score_samples(torch.as_tensor(X, device="cuda")).device.type == "cuda"
    numpy_on_gpu = clone(est).set_params(device="cuda").fit(X)
    out = numpy_on_gpu.score_samples(X)
    assert isinstance(out, np.ndarray)
    np.testing.assert_allclose(out, clone(est).fit(X).score_samples(X), rtol=1e-6, atol=1e-6)
