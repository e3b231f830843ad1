"""Tests of coursekit.plotting.gaussian_ellipse against the Mahalanobis distance and
the covariance's eigen-decomposition."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from coursekit.plotting import gaussian_ellipse


@pytest.mark.parametrize("cov", [[[2.0, 0.3], [0.3, 0.5]], [[1.0, 0.0], [0.0, 1.0]],
                                 [[0.2, -0.35], [-0.35, 0.9]]])
@pytest.mark.parametrize("n_std", [1.0, 2.0, 3.0])
def test_points_lie_at_mahalanobis_distance_n_std(cov, n_std):
    mean, cov = np.array([0.5, -1.0]), np.array(cov)
    ell = gaussian_ellipse(mean, cov, n_std=n_std, n_points=400)
    assert ell.shape == (400, 2)
    np.testing.assert_allclose(ell[0], ell[-1], atol=1e-12)
    d = ell - mean
    np.testing.assert_allclose(np.einsum("ni,ij,nj->n", d, np.linalg.inv(cov), d), n_std**2,
                               rtol=1e-10)
    lam, vecs = np.linalg.eigh(cov)
    r = np.linalg.norm(d, axis=1)
    assert r.max() == pytest.approx(n_std * np.sqrt(lam[1]), rel=1e-4)
    assert r.min() == pytest.approx(n_std * np.sqrt(lam[0]), rel=1e-4)
    if lam[1] > lam[0] * 1.01:
        assert abs(d[r.argmax()] / r.max() @ vecs[:, 1]) == pytest.approx(1.0, abs=1e-4)


def test_tensors_are_accepted():
    ell = gaussian_ellipse(torch.tensor([1.0, 2.0]), torch.eye(2) * 4)
    np.testing.assert_allclose(np.linalg.norm(ell - [1.0, 2.0], axis=1), 4.0, rtol=1e-6)


def test_bad_input():
    with pytest.raises(ValueError, match="^cov: expected a positive definite"):
        gaussian_ellipse([0, 0], [[1, 0], [0, -1]])
    with pytest.raises(ValueError, match="^mean: expected shape"):
        gaussian_ellipse([0, 0, 0], np.eye(2))
    with pytest.raises(ValueError, match="^cov: expected shape"):
        gaussian_ellipse([0, 0], np.eye(3))
