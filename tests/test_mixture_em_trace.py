"""Tests of coursekit.mixture.data_point_means and em_trace (EM replayed step by step),
against scipy densities and the M-step formulas written out in NumPy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from coursekit.exceptions import NotFittedError
from coursekit.mixture import BernoulliMixture, GaussianMixture, data_point_means, em_trace


def _data(n=200, seed=0):
    gen = torch.Generator().manual_seed(seed)
    centres = torch.tensor([[-2.0, 0.0], [2.0, 1.0], [0.0, 3.0]], dtype=torch.float64)
    labels = torch.randint(0, 3, (n,), generator=gen)
    return centres[labels] + 0.6 * torch.randn(n, 2, generator=gen, dtype=torch.float64)


def test_data_point_means_are_distinct_rows_and_reproducible():
    x = torch.arange(40.0).reshape(20, 2)
    m = data_point_means(x, 5, seed=3)
    assert m.shape == (5, 2)
    rows = {tuple(r) for r in x.tolist()}
    assert all(tuple(r) in rows for r in m.tolist())
    assert len({tuple(r) for r in m.tolist()}) == 5
    assert torch.equal(m, data_point_means(x, 5, seed=3))
    assert not torch.equal(m, data_point_means(x, 5, seed=4))
    # the first K of a seeded permutation
    perm = torch.randperm(20, generator=torch.Generator().manual_seed(3))
    assert torch.equal(m, x[perm[:5]])
    np.testing.assert_array_equal(data_point_means(x.numpy(), 5, seed=3).numpy(), m.numpy())


def test_data_point_means_bad_input():
    x = torch.zeros(20, 2)
    with pytest.raises(ValueError, match="^n_components: expected"):
        data_point_means(x, 21, seed=0)
    with pytest.raises(ValueError, match="^n_components: expected"):
        data_point_means(x, 0, seed=0)
    with pytest.raises(ValueError, match="^seed: expected"):
        data_point_means(x, 2, seed=-1)
    with pytest.raises(ValueError, match="^x: expected"):
        data_point_means(torch.zeros(20), 2, seed=0)


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_em_trace_is_e_and_m_steps_recomputed_independently(covariance_type):
    x = _data()
    gm = GaussianMixture(3, covariance_type=covariance_type, init_params="random",
                         random_state=1, reg_covar=0.0).initialize(x)
    trace = em_trace(gm, x, 6)
    assert trace["weights"].shape == (7, 3)
    assert trace["means"].shape == (7, 3, 2)
    assert trace["resp"].shape == (7, 200, 3)
    assert trace["log_likelihood"].shape == (7,)
    X = x.numpy()
    for t in range(7):
        w, mu, cov = (trace[k][t].numpy() for k in ("weights", "means", "covariances"))
        covs = cov if covariance_type == "full" else [np.diag(c) for c in cov]
        dens = np.stack([wk * stats.multivariate_normal(m, c).pdf(X)
                         for wk, m, c in zip(w, mu, covs)], 1)
        r = dens / dens.sum(1, keepdims=True)
        np.testing.assert_allclose(trace["resp"][t].numpy(), r, atol=1e-10)
        assert float(trace["log_likelihood"][t]) == pytest.approx(np.log(dens.sum(1)).mean(),
                                                                  abs=1e-10)
        if t < 6:  # the next parameters are the M-step from these responsibilities
            nk = r.sum(0)
            np.testing.assert_allclose(trace["weights"][t + 1].numpy(), nk / len(X), atol=1e-10)
            means = (r.T @ X) / nk[:, None]
            np.testing.assert_allclose(trace["means"][t + 1].numpy(), means, atol=1e-10)
            diff = X[None] - means[:, None]
            full = np.einsum("nk,kni,knj->kij", r, diff, diff) / nk[:, None, None]
            want = full if covariance_type == "full" else np.diagonal(full, axis1=1, axis2=2)
            np.testing.assert_allclose(trace["covariances"][t + 1].numpy(), want, atol=1e-10)
    assert np.all(np.diff(trace["log_likelihood"].numpy()) >= -1e-12)


def test_em_trace_advances_the_mixture_and_zero_iterations_only_scores():
    x = _data(seed=2)
    gm = GaussianMixture(3, init_params="kmeans", random_state=0).initialize(x)
    start = gm.means_.clone()
    trace = em_trace(gm, x, 0)
    assert torch.equal(trace["means"][0], start) and trace["log_likelihood"].shape == (1,)
    trace = em_trace(gm, x, 4)
    torch.testing.assert_close(trace["means"][-1], gm.means_)
    assert float(trace["log_likelihood"][-1]) == pytest.approx(gm.score(x), abs=1e-12)


def test_em_trace_bad_input():
    x = _data()
    with pytest.raises(NotFittedError):
        em_trace(GaussianMixture(2), x, 3)
    with pytest.raises(TypeError, match="^mixture: expected"):
        em_trace(BernoulliMixture(2), x, 3)
    gm = GaussianMixture(2, random_state=0).initialize(x)
    with pytest.raises(ValueError, match="^n_iter: expected"):
        em_trace(gm, x, -1)
