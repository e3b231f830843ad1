"""Headless tests of the apps of lectures 00-02 (Agg backend, no browser)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from scipy import integrate, stats  # noqa: E402

from coursekit.widgets.bivariate_gaussian import BivariateGaussianExplorer  # noqa: E402
from coursekit.widgets.kl_explorer import (  # noqa: E402
    KLExplorer,
    forward_kl,
    reverse_kl,
    target_log_prob,
)

# ---------------------------------------------------------------------------------------
# BivariateGaussianExplorer


@pytest.mark.parametrize(
    "params",
    [
        dict(mu1=0.0, mu2=0.0, sigma1=1.0, sigma2=1.0, rho=0.7, x_b=1.0),
        dict(mu1=1.5, mu2=-2.0, sigma1=0.5, sigma2=2.5, rho=-0.9, x_b=3.0),
        dict(mu1=-1.0, mu2=0.5, sigma1=2.0, sigma2=0.3, rho=0.0, x_b=-0.2),
    ],
)
def test_bivariate_conditional_matches_closed_form_and_slice(params):
    app = BivariateGaussianExplorer()
    state = app.update(**params)
    m1, m2, s1, s2, r, xb = (params[k] for k in ("mu1", "mu2", "sigma1", "sigma2", "rho", "x_b"))
    # closed form written independently of coursekit.probability
    mean = m1 + r * s1 / s2 * (xb - m2)
    var = s1**2 * (1 - r**2)
    assert state["cond_mean"] == pytest.approx(mean, abs=1e-10)
    assert state["cond_var"] == pytest.approx(var, rel=1e-10)
    # the joint cut along x2 = xb and normalised numerically has the same moments
    assert state["slice_mean"] == pytest.approx(mean, abs=1e-4 * s1)
    assert state["slice_var"] == pytest.approx(var, rel=1e-3)
    # ... and the same shape, point by point
    np.testing.assert_allclose(state["slice"], stats.norm.pdf(state["x1"], mean, np.sqrt(var)),
                               atol=1e-4 * state["slice"].max())
    # the normaliser of the slice is the marginal density of x2 at xb
    assert state["slice_normaliser"] == pytest.approx(stats.norm.pdf(xb, m2, s2), rel=1e-4)
    # the marginal curve is N(mu1, s1^2) and integrates to one on the grid
    np.testing.assert_allclose(state["marginal"], stats.norm.pdf(state["x1"], m1, s1), rtol=1e-10)
    assert integrate.trapezoid(state["marginal"], state["x1"]) == pytest.approx(1, abs=1e-4)


def test_bivariate_joint_grid_is_the_gaussian_density():
    app = BivariateGaussianExplorer()
    state = app.update(mu1=0.3, mu2=-0.4, sigma1=1.2, sigma2=0.8, rho=0.5, x_b=0.0)
    cov = [[1.44, 0.5 * 1.2 * 0.8], [0.5 * 1.2 * 0.8, 0.64]]
    ref = stats.multivariate_normal([0.3, -0.4], cov).pdf(
        np.stack([state["X"], state["Y"]], -1))
    np.testing.assert_allclose(state["density"], ref, rtol=1e-8, atol=1e-14)
    # the grid holds essentially all the mass
    mass = integrate.trapezoid(integrate.trapezoid(state["density"], state["X"][0], axis=1),
                               state["Y"][:, 0])
    assert mass == pytest.approx(1.0, abs=2e-3)


def test_bivariate_render_draws_slice_and_curves():
    app = BivariateGaussianExplorer()
    fig = app.render(x_b=-1.5, rho=-0.3)
    ax_joint, ax_1d = fig.axes[:2]
    slice_lines = [ln for ln in ax_joint.get_lines() if np.allclose(ln.get_ydata(), -1.5)]
    assert slice_lines, "the slice x2 = x_b is not drawn"
    curves = ax_1d.get_lines()
    np.testing.assert_allclose(curves[1].get_ydata(), app.state["conditional"])
    assert "mean = " in app.summary(app.state)
    assert f"{app.state['cond_mean']:.4f}" in app.summary(app.state)
    plt.close(fig)


@pytest.mark.parametrize("bad", [dict(sigma1=0.0), dict(sigma2=-1.0), dict(rho=1.0)])
def test_bivariate_bad_input(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        BivariateGaussianExplorer().update(**bad)


# ---------------------------------------------------------------------------------------
# KLExplorer


def _target_moments(mode1, mode2, weight, sigma):
    x = np.linspace(min(mode1, mode2) - 12 * sigma, max(mode1, mode2) + 12 * sigma, 20001)
    p = np.exp(target_log_prob(x, mode1, mode2, weight, sigma))
    mean = integrate.trapezoid(x * p, x)
    return mean, integrate.trapezoid((x - mean) ** 2 * p, x)


@pytest.mark.parametrize(
    "params",
    [
        dict(mode1=-2.0, mode2=2.0, weight=0.5, sigma=0.6),
        dict(mode1=-4.0, mode2=1.0, weight=0.3, sigma=0.5),
        dict(mode1=0.0, mode2=0.4, weight=0.7, sigma=1.0),
    ],
)
def test_kl_forward_fit_is_moment_matching_and_reverse_is_better_in_its_kl(params):
    app = KLExplorer()
    state = app.update(**params)
    mean, var = _target_moments(**params)
    mf, sf = state["forward_params"]
    assert mf == pytest.approx(mean, abs=1e-6)
    assert sf**2 == pytest.approx(var, rel=1e-5)
    kl = state["kl"]
    # each fit is the best of the two in the divergence it minimises
    assert kl["reverse"]["q||p"] <= kl["forward"]["q||p"] + 1e-8
    assert kl["forward"]["p||q"] <= kl["reverse"]["p||q"] + 1e-8
    for fit in kl.values():
        assert fit["p||q"] >= -1e-9 and fit["q||p"] >= -1e-9


def test_kl_reverse_fit_is_a_local_minimum_and_sits_on_a_mode():
    params = dict(mode1=-3.0, mode2=3.0, weight=0.4, sigma=0.5)
    state = KLExplorer().update(**params)
    mu, std = state["reverse_params"]
    # mode seeking: the fit sits on one of the two modes, with about that mode's width
    assert min(abs(mu - 3.0), abs(mu + 3.0)) < 0.05
    assert std == pytest.approx(0.5, rel=0.05)
    # no small move of (mu, std) lowers KL(q||p)
    best = reverse_kl(mu, std, **params)
    for dmu, dstd in [(0.05, 0), (-0.05, 0), (0, 0.03), (0, -0.03)]:
        assert reverse_kl(mu + dmu, std + dstd, **params) >= best - 1e-9
    # the heavier mode (weight 0.6 at +3) is the better local minimum
    assert mu == pytest.approx(3.0, abs=0.05)


def test_kl_divergences_against_independent_quadrature():
    params = dict(mode1=-1.0, mode2=2.5, weight=0.35, sigma=0.8)
    mu, std = 0.4, 1.3
    p = lambda x: np.exp(target_log_prob(x, **params))
    q = stats.norm(mu, std)
    kl_pq = integrate.quad(lambda x: p(x) * (np.log(p(x)) - q.logpdf(x)), -15, 15, limit=200)[0]
    kl_qp = integrate.quad(lambda x: q.pdf(x) * (q.logpdf(x) - np.log(p(x))), -15, 15,
                           limit=200)[0]
    assert forward_kl(mu, std, **params) == pytest.approx(kl_pq, rel=1e-6)
    assert reverse_kl(mu, std, **params) == pytest.approx(kl_qp, rel=1e-6)


def test_kl_render_shows_both_fits():
    app = KLExplorer()
    fig = app.render(mode1=-2.5, mode2=2.5)
    ax = fig.axes[0]
    ys = [ln.get_ydata() for ln in ax.get_lines()]
    assert any(np.allclose(y, app.state["forward"]) for y in ys)
    assert any(np.allclose(y, app.state["reverse"]) for y in ys)
    text = app.summary(app.state)
    assert f"{app.state['kl']['reverse']['q||p']:.4f}" in text
    plt.close(fig)


def test_kl_bad_input():
    with pytest.raises(ValueError, match="weight"):
        KLExplorer().update(weight=1.0)
    with pytest.raises(ValueError, match="sigma"):
        KLExplorer().update(sigma=0.0)
