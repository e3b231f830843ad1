"""Tests of coursekit.latent.quadrature: the example 1-D posteriors and the exact
ELBO / KL / log p(x) decomposition, against scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

from coursekit.latent import quadrature as Q

Z = np.linspace(-46.0, 46.0, 20001)


def _scipy_posterior(z, name):
    return sum(w * stats.norm.pdf(z, m, s) for w, m, s in Q.POSTERIORS[name])


@pytest.mark.parametrize("name", list(Q.POSTERIORS))
def test_log_posterior_is_the_mixture_density_and_normalised(name):
    z = np.linspace(-9, 9, 121).reshape(11, 11)
    got = Q.log_posterior(z, name)
    assert got.shape == (11, 11)
    np.testing.assert_allclose(got, np.log(_scipy_posterior(z, name)), rtol=1e-12, atol=1e-12)
    mass = integrate.quad(lambda t: _scipy_posterior(t, name), -30, 30, limit=200)[0]
    assert mass == pytest.approx(1.0, abs=1e-10)
    np.testing.assert_allclose(Q.log_joint(z, name), Q.LOG_PX + got, rtol=0, atol=0)


@pytest.mark.parametrize("name", list(Q.POSTERIORS))
@pytest.mark.parametrize("mean,std", [(0.0, 1.0), (2.0, math.sqrt(2.0)), (-4.0, 0.5)])
def test_decomposition_against_scipy_quadrature(name, mean, std):
    out = Q.elbo_by_quadrature(Z, Q.log_joint(Z, name), mean, std)
    q = stats.norm(mean, std)

    def log_post(t):
        return math.log(_scipy_posterior(t, name))

    lo, hi = mean - 12 * std, mean + 12 * std
    kl = integrate.quad(lambda t: q.pdf(t) * (q.logpdf(t) - log_post(t)), lo, hi,
                        limit=200)[0]
    assert out["log_px"] == pytest.approx(Q.LOG_PX, abs=1e-9)
    assert out["kl"] == pytest.approx(kl, abs=1e-8)
    assert out["elbo"] == pytest.approx(Q.LOG_PX - kl, abs=1e-8)
    assert out["elbo"] + out["kl"] == pytest.approx(out["log_px"], abs=1e-9)
    assert out["q_mass"] == pytest.approx(1.0, abs=1e-9)
    np.testing.assert_allclose(np.exp(out["log_q"]), q.pdf(Z), rtol=1e-10, atol=1e-300)


def test_any_unnormalised_joint_a_gamma_shape():
    """p(x, z) = c z^(a-1) e^(-z) on z > 0: log p(x) = log(c Gamma(a)), and for a
    Gaussian q the KL is q's negative entropy minus E_q[log Gamma(a, 1) density]."""
    z = np.linspace(1e-9, 60.0, 200001)
    a, log_c = 3.5, 0.7
    lj = log_c + (a - 1) * np.log(z) - z
    out = Q.elbo_by_quadrature(z, lj, 3.0, 0.6)
    assert out["log_px"] == pytest.approx(log_c + math.lgamma(a), abs=1e-7)
    q, g = stats.norm(3.0, 0.6), stats.gamma(a)
    kl = integrate.quad(lambda t: q.pdf(t) * (q.logpdf(t) - g.logpdf(t)), 1e-9, 60,
                        limit=200)[0]
    assert out["kl"] == pytest.approx(kl, abs=1e-6)


def test_closed_form_kl_when_the_posterior_is_gaussian():
    (_, m, s), = Q.POSTERIORS["unimodal"]
    for mean, std in [(m, s), (0.0, 1.0), (-4.0, math.sqrt(0.75))]:
        out = Q.elbo_by_quadrature(Z, Q.log_joint(Z, "unimodal"), mean, std)
        closed = math.log(s / std) + (std**2 + (mean - m) ** 2) / (2 * s**2) - 0.5
        assert out["kl"] == pytest.approx(closed, abs=1e-9)


def test_bad_input_names_the_argument():
    lj = Q.log_joint(Z, "bimodal")
    with pytest.raises(ValueError, match="^posterior: expected one of"):
        Q.log_posterior(Z, "trimodal")
    with pytest.raises(ValueError, match="^std: expected"):
        Q.elbo_by_quadrature(Z, lj, 0.0, 0.0)
    with pytest.raises(ValueError, match="^mean: expected"):
        Q.elbo_by_quadrature(Z, lj, math.nan, 1.0)
    with pytest.raises(ValueError, match="^z: expected"):
        Q.elbo_by_quadrature(Z[::-1], lj, 0.0, 1.0)
    with pytest.raises(ValueError, match="^log_joint_values: expected"):
        Q.elbo_by_quadrature(Z, lj[:-1], 0.0, 1.0)
