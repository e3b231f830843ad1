"""Headless tests of the apps of lectures 00-02 (Agg backend, no browser)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from scipy import integrate, stats  # noqa: E402

from coursekit.plotting import gaussian_ellipse  # noqa: E402
from coursekit.probability import bimodal_log_prob, forward_kl, reverse_kl  # noqa: E402
from coursekit.widgets.bivariate_gaussian_explorer import BivariateGaussianExplorer  # noqa: E402
from coursekit.widgets.em_stepper import EMStepper  # noqa: E402
from coursekit.widgets.kl_explorer import KLExplorer  # noqa: E402

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
    p = np.exp(bimodal_log_prob(x, mode1, mode2, weight, sigma))
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
    p = lambda x: np.exp(bimodal_log_prob(x, **params))
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


# ---------------------------------------------------------------------------------------
# EMStepper


@pytest.mark.parametrize(
    "setting",
    [
        dict(dataset="8gaussians", n_components=8, seed=0, init="data points"),
        dict(dataset="moons", n_components=4, seed=3, init="kmeans"),
        dict(dataset="pinwheel", n_components=5, seed=1, init="random resp"),
    ],
)
def test_em_log_likelihood_never_decreases_and_resp_sum_to_one(setting):
    app = EMStepper(n=300, n_iter=30)
    first = app.update(**setting, iteration=0)
    ll = first["log_likelihood"]
    assert len(ll) == 31
    assert np.all(np.diff(ll) >= -1e-9), np.diff(ll).min()
    assert ll[-1] > ll[0]  # EM made progress
    for t in (0, 1, 7, 30):
        state = app.update(**setting, iteration=t)
        np.testing.assert_allclose(state["resp"].sum(1), 1.0, atol=1e-10)
        assert state["resp"].min() >= 0
        np.testing.assert_allclose(state["weights"].sum(), 1.0, atol=1e-10)


def test_em_state_is_the_mixture_posterior_and_ll_of_its_parameters():
    """Responsibilities and log-likelihood recomputed with scipy from the stored parameters."""
    app = EMStepper(n=300, n_iter=20)
    state = app.update(dataset="moons", n_components=3, seed=2, init="data points",
                       iteration=5)
    x = state["x"]
    dens = np.stack([w * stats.multivariate_normal(m, c).pdf(x) for w, m, c in
                     zip(state["weights"], state["means"], state["covariances"])], 1)
    np.testing.assert_allclose(state["resp"], dens / dens.sum(1, keepdims=True), atol=1e-8)
    assert state["log_likelihood"][5] == pytest.approx(np.log(dens.sum(1)).mean(), abs=1e-9)
    # the next stored parameters are the M-step from these responsibilities
    nxt = app.update(dataset="moons", n_components=3, seed=2, init="data points", iteration=6)
    r = state["resp"]
    nk = r.sum(0)
    np.testing.assert_allclose(nxt["weights"], nk / len(x), atol=1e-10)
    np.testing.assert_allclose(nxt["means"], (r.T @ x) / nk[:, None], atol=1e-10)
    diff = x[None] - nxt["means"][:, None]  # (K, n, 2)
    cov = np.einsum("nk,kni,knj->kij", r, diff, diff) / nk[:, None, None]
    np.testing.assert_allclose(nxt["covariances"], cov, atol=1e-5)


def test_em_buttons_step_forward_and_back_to_the_same_state():
    app = EMStepper(dataset="pinwheel", n_components=5, seed=4, n=300, n_iter=20)
    app.controls["iteration"].value = 3
    fig = app.render()
    before = app.state
    plt.close(fig)
    app.controls["forward"].click()
    assert app.controls["iteration"].value == 4
    fig = app.render()
    moved = app.state
    plt.close(fig)
    assert moved["log_likelihood"][4] >= before["log_likelihood"][3] - 1e-9
    assert not np.allclose(moved["means"], before["means"])
    app.controls["back"].click()
    assert app.controls["iteration"].value == 3
    fig = app.render()
    after = app.state
    plt.close(fig)
    for key in ("resp", "means", "covariances", "weights", "ellipses", "colors"):
        np.testing.assert_array_equal(after[key], before[key])
    # stepping is clipped at both ends
    app.controls["iteration"].value = 0
    app.controls["back"].click()
    assert app.controls["iteration"].value == 0
    app.controls["iteration"].value = 20
    app.controls["forward"].click()
    assert app.controls["iteration"].value == 20


def test_em_ellipses_match_the_covariance_eigendecomposition():
    app = EMStepper(n=300, n_iter=10)
    state = app.update(dataset="8gaussians", n_components=4, seed=0, init="data points",
                       iteration=10)
    for mean, cov, ell in zip(state["means"], state["covariances"], state["ellipses"]):
        d = ell - mean
        # every point is at Mahalanobis distance 2
        maha = np.einsum("ni,ij,nj->n", d, np.linalg.inv(cov), d)
        np.testing.assert_allclose(maha, 4.0, rtol=1e-8)
        # the farthest / nearest points are 2 sqrt(eigenvalues) away, along the eigenvectors
        lam, vecs = np.linalg.eigh(cov)
        r = np.linalg.norm(d, axis=1)
        assert r.max() == pytest.approx(2 * np.sqrt(lam[1]), rel=1e-3)
        assert r.min() == pytest.approx(2 * np.sqrt(lam[0]), rel=1e-3)
        major = d[r.argmax()] / r.max()
        assert abs(major @ vecs[:, 1]) == pytest.approx(1.0, abs=1e-3)


def test_em_render_draws_curve_with_marker_and_ellipses():
    app = EMStepper(n=300, n_iter=15)
    fig = app.render(dataset="moons", n_components=3, iteration=7)
    ax_data, ax_curve = fig.axes[:2]
    ll = app.state["log_likelihood"]
    lines = ax_curve.get_lines()
    np.testing.assert_allclose(lines[0].get_ydata(), ll)
    assert lines[1].get_xdata()[0] == 7 and lines[1].get_ydata()[0] == pytest.approx(ll[7])
    drawn = [ln.get_xydata() for ln in ax_data.get_lines()]
    for ell in app.state["ellipses"]:
        assert any(a.shape == ell.shape and np.allclose(a, ell) for a in drawn)
    assert f"{ll[7]:.4f}" in app.summary(app.state)
    plt.close(fig)


def test_em_bad_input():
    with pytest.raises(ValueError, match="iteration"):
        EMStepper(n_iter=5).update(iteration=6)
    with pytest.raises(ValueError, match="dataset"):
        EMStepper().update(dataset="nope")
    with pytest.raises(ValueError, match="cov"):
        gaussian_ellipse([0, 0], [[1, 0], [0, -1]])
