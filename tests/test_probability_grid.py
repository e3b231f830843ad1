"""Tests of coursekit.probability.bivariate_gaussian_cov and grid_moments (a density
tabulated on a 1-D grid) against scipy.stats and closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from coursekit import probability as P


@pytest.mark.parametrize("s1,s2,rho", [(1.0, 1.0, 0.7), (0.5, 2.5, -0.9), (2.0, 0.3, 0.0)])
def test_bivariate_cov_has_the_stds_and_the_correlation(s1, s2, rho):
    cov = P.bivariate_gaussian_cov(s1, s2, rho)
    assert cov.dtype == torch.float64 and cov.shape == (2, 2)
    sd = cov.diagonal().sqrt()
    torch.testing.assert_close(sd, torch.tensor([s1, s2], dtype=torch.float64))
    assert float(cov[0, 1] / (sd[0] * sd[1])) == pytest.approx(rho, abs=1e-15)
    assert float(cov[1, 0]) == float(cov[0, 1])
    x = np.array([[0.3, -0.2], [1.0, 2.0]])
    np.testing.assert_allclose(
        P.gaussian_log_prob(torch.from_numpy(x), torch.zeros(2, dtype=torch.float64), cov),
        stats.multivariate_normal(np.zeros(2), cov.numpy()).logpdf(x), rtol=1e-12)


@pytest.mark.parametrize("bad,match", [((0.0, 1.0, 0.0), "^sigma1: expected"),
                                       ((1.0, -1.0, 0.0), "^sigma2: expected"),
                                       ((1.0, 1.0, 1.0), "^rho: expected"),
                                       ((1.0, 1.0, -1.5), "^rho: expected")])
def test_bivariate_cov_bad_input(bad, match):
    with pytest.raises(ValueError, match=match):
        P.bivariate_gaussian_cov(*bad)


@pytest.mark.parametrize("scale", [1.0, 0.05, 40.0])
def test_grid_moments_of_scaled_densities(scale):
    x = np.linspace(-12, 14, 20001)
    g = stats.norm(1.3, 2.1)
    mass, mean, var = P.grid_moments(scale * g.pdf(x), x)
    assert mass == pytest.approx(scale, rel=1e-9)
    assert mean == pytest.approx(1.3, abs=1e-8)
    assert var == pytest.approx(2.1**2, rel=1e-6)
    gam = stats.gamma(2.5, scale=0.8)  # skewed, on a non-uniform grid
    x = np.concatenate([np.linspace(0, 1, 4001)[:-1], np.linspace(1, 40, 20001)])
    mass, mean, var = P.grid_moments(scale * gam.pdf(x), x)
    assert mass == pytest.approx(scale, rel=1e-6)
    assert mean == pytest.approx(gam.mean(), rel=1e-6)
    assert var == pytest.approx(gam.var(), rel=1e-5)


def test_grid_moments_of_a_slice_are_the_conditional():
    """The joint of a bivariate Gaussian cut along x2 = xb: the mass is p(x2 = xb) and
    the moments are those of p(x1 | xb) in closed form."""
    s1, s2, rho, xb = 1.5, 0.7, -0.6, 0.4
    cov = P.bivariate_gaussian_cov(s1, s2, rho).numpy()
    x1 = np.linspace(-10, 10, 4001)
    joint = stats.multivariate_normal(np.zeros(2), cov).pdf(np.stack([x1, 0 * x1 + xb], 1))
    mass, mean, var = P.grid_moments(joint, x1)
    assert mass == pytest.approx(stats.norm(0, s2).pdf(xb), rel=1e-9)
    assert mean == pytest.approx(rho * s1 / s2 * xb, abs=1e-9)
    assert var == pytest.approx(s1**2 * (1 - rho**2), rel=1e-7)


def test_grid_moments_bad_input():
    x = np.linspace(0, 1, 11)
    with pytest.raises(ValueError, match="^x: expected"):
        P.grid_moments(np.ones(11), x[::-1])
    with pytest.raises(ValueError, match="^density: expected shape"):
        P.grid_moments(np.ones(10), x)
    with pytest.raises(ValueError, match="^density: expected finite non-negative"):
        P.grid_moments(-np.ones(11), x)
    with pytest.raises(ValueError, match="^density: expected a positive integral"):
        P.grid_moments(np.zeros(11), x)
    assert P.grid_moments(np.ones(11), x) == pytest.approx((1.0, 0.5, 1 / 12 + 0.01 / 6))
    assert math.isfinite(P.grid_moments(np.ones(2), [0.0, 1.0])[2])
