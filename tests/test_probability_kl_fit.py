"""Tests of coursekit.probability's one-Gaussian fits to a 1-D two-component mixture
(forward and reverse KL) against scipy quadrature, closed forms and brute force."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate, optimize, stats
from scipy.special import logsumexp

from coursekit import functional as F
from coursekit import probability as P

TARGETS = [
    (-2.0, 2.0, 0.5, 0.6),
    (-4.0, 1.0, 0.3, 0.5),
    (0.0, 0.4, 0.7, 1.0),
    (-1.0, 2.5, 0.35, 0.8),
]


def _p(x, m1, m2, w, s):
    return w * stats.norm.pdf(x, m1, s) + (1 - w) * stats.norm.pdf(x, m2, s)


def _quad(f, m1, m2, s):
    lo, hi = min(m1, m2) - 15 * s, max(m1, m2) + 15 * s
    return integrate.quad(f, lo, hi, points=[m1, m2], limit=400, epsabs=1e-13)[0]


def _kl_normal(mu1, s1, mu2, s2):
    """KL(N(mu1, s1^2) || N(mu2, s2^2)) in closed form."""
    return math.log(s2 / s1) + (s1**2 + (mu1 - mu2) ** 2) / (2 * s2**2) - 0.5


@pytest.mark.parametrize("target", TARGETS)
def test_bimodal_log_prob_is_the_mixture_density(target):
    x = np.linspace(-9, 9, 201).reshape(3, 67)
    got = P.bimodal_log_prob(x, *target)
    assert got.shape == (3, 67)
    np.testing.assert_allclose(got, np.log(_p(x, *target)), rtol=1e-12, atol=1e-12)
    m1, m2, w, s = target
    ref = F.log_normal_mixture(torch.from_numpy(x)[..., None], [[m1], [m2]], [[s * s]] * 2,
                               torch.tensor([w, 1 - w], dtype=torch.float64).log())
    np.testing.assert_allclose(got, ref.numpy(), rtol=1e-12, atol=1e-12)


def test_normal_log_prob_1d_is_functionals():
    x = np.linspace(-6, 6, 97)
    np.testing.assert_allclose(P._normal_log_prob_1d(x, 0.3, 1.7),
                               F.log_normal_diag(x[:, None], [0.3], [1.7**2]).numpy(),
                               rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("target", TARGETS)
def test_forward_fit_matches_the_moments_of_p(target):
    m1, m2, _, s = target
    mean = _quad(lambda t: t * _p(t, *target), m1, m2, s)
    var = _quad(lambda t: (t - mean) ** 2 * _p(t, *target), m1, m2, s)
    mu, std = P.forward_fit(*target)
    assert mu == pytest.approx(mean, abs=1e-9)
    assert std**2 == pytest.approx(var, rel=1e-9)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("q", [(0.4, 1.3), (-2.0, 0.5), (3.0, 2.5)])
def test_both_divergences_against_scipy_quadrature(target, q):
    mu, std = q
    m1, m2, _, s = target

    def log_p(t):  # in log space: far in the tails p underflows
        w = target[2]
        return logsumexp([stats.norm.logpdf(t, m1, s), stats.norm.logpdf(t, m2, s)],
                         b=[w, 1 - w])

    qd = stats.norm(mu, std)
    kl_pq = _quad(lambda t: _p(t, *target) * (log_p(t) - qd.logpdf(t)), m1, m2, s)
    kl_qp = integrate.quad(lambda t: qd.pdf(t) * (qd.logpdf(t) - log_p(t)),
                           mu - 15 * std, mu + 15 * std, points=[m1, m2], limit=400)[0]
    assert P.forward_kl(mu, std, *target) == pytest.approx(kl_pq, rel=1e-6, abs=1e-9)
    assert P.reverse_kl(mu, std, *target) == pytest.approx(kl_qp, rel=1e-8, abs=1e-10)


@pytest.mark.parametrize("q", [(0.0, 1.0), (1.5, 0.4), (-2.0, 3.0)])
def test_divergences_are_the_gaussian_closed_form_when_the_modes_coincide(q):
    target = (0.7, 0.7, 0.3, 1.2)  # p = N(0.7, 1.2^2)
    mu, std = q
    assert P.reverse_kl(mu, std, *target) == pytest.approx(_kl_normal(mu, std, 0.7, 1.2),
                                                           rel=1e-10, abs=1e-12)
    assert P.forward_kl(mu, std, *target) == pytest.approx(_kl_normal(0.7, 1.2, mu, std),
                                                           rel=1e-6, abs=1e-9)
    assert P.forward_fit(*target) == pytest.approx((0.7, 1.2), abs=1e-12)
    assert P.reverse_fit(*target) == pytest.approx((0.7, 1.2), abs=1e-5)


@pytest.mark.parametrize("target", TARGETS)
def test_forward_fit_minimises_the_forward_kl_on_a_grid(target):
    mu, std = P.forward_fit(*target)
    best = P.forward_kl(mu, std, *target)
    for dmu in (-0.2, -0.02, 0.0, 0.02, 0.2):
        for dstd in (-0.1, -0.01, 0.0, 0.01, 0.1):
            if dmu or dstd:
                assert P.forward_kl(mu + dmu, std + dstd, *target) > best


@pytest.mark.parametrize("target", TARGETS[1:] + [(-3.0, 3.0, 0.4, 0.5)])
def test_reverse_fit_is_the_global_minimum_found_by_brute_force(target):
    m1, m2, _, s = target
    mu, std = P.reverse_fit(*target)

    def objective(theta):
        return P.reverse_kl(theta[0], math.exp(theta[1]), *target)

    grid = (slice(min(m1, m2) - 1, max(m1, m2) + 1, 0.25),
            slice(math.log(0.5 * s), math.log(4 * s), 0.15))
    brute = optimize.brute(objective, grid, finish=optimize.fmin)
    best = objective(brute)
    assert P.reverse_kl(mu, std, *target) <= best + 1e-7
    assert P.reverse_kl(mu, std, *target) <= P.reverse_kl(*P.forward_fit(*target), *target)


def test_reverse_fit_seeks_the_heavier_mode_when_they_are_far_apart():
    mu, std = P.reverse_fit(-3.0, 3.0, 0.4, 0.5)
    assert mu == pytest.approx(3.0, abs=1e-3) and std == pytest.approx(0.5, rel=1e-3)
    mu, std = P.reverse_fit(-3.0, 3.0, 0.6, 0.5)
    assert mu == pytest.approx(-3.0, abs=1e-3)


@pytest.mark.parametrize("fn,args", [
    (P.forward_fit, ()), (P.reverse_fit, ()), (P.reverse_kl, (0.0, 1.0)),
    (P.forward_kl, (0.0, 1.0)), (lambda *a: P.bimodal_log_prob(0.0, *a), ()),
])
def test_bad_target_is_refused_naming_the_argument(fn, args):
    with pytest.raises(ValueError, match="^weight: expected"):
        fn(*args, -1.0, 1.0, 1.0, 0.5)
    with pytest.raises(ValueError, match="^weight: expected"):
        fn(*args, -1.0, 1.0, 0.0, 0.5)
    with pytest.raises(ValueError, match="^sigma: expected"):
        fn(*args, -1.0, 1.0, 0.5, 0.0)
    with pytest.raises(ValueError, match="^mode1: expected"):
        fn(*args, math.nan, 1.0, 0.5, 1.0)
    with pytest.raises(TypeError, match="^mode2: expected"):
        fn(*args, 0.0, "1", 0.5, 1.0)


def test_bad_q_is_refused_naming_the_argument():
    with pytest.raises(ValueError, match="^std: expected"):
        P.reverse_kl(0.0, 0.0, -1.0, 1.0, 0.5, 0.5)
    with pytest.raises(ValueError, match="^mu: expected"):
        P.forward_kl(math.inf, 1.0, -1.0, 1.0, 0.5, 0.5)
    with pytest.raises(ValueError, match="^n_grid: expected"):
        P.forward_kl(0.0, 1.0, -1.0, 1.0, 0.5, 0.5, n_grid=1)
