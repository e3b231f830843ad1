"""Headless tests of lecture 03's apps: ELBOGapExplorer and EstimatorVarianceExplorer."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import scipy.integrate  # noqa: E402
import scipy.stats  # noqa: E402

from coursekit.latent import quadrature  # noqa: E402
from coursekit.widgets.elbo_gap_explorer import ELBOGapExplorer  # noqa: E402
from coursekit.widgets.estimator_variance_explorer import EstimatorVarianceExplorer  # noqa: E402


# ------------------------------------------------------------------ ELBO gap
@pytest.fixture(scope="module")
def gap_app():
    return ELBOGapExplorer()


@pytest.mark.parametrize("posterior", ["unimodal", "bimodal"])
@pytest.mark.parametrize("mean,std", [(0.0, 1.0), (2.0, math.sqrt(2.0)), (-4.0, 0.5),
                                      (3.0, 3.5), (5.5, 0.15)])
def test_elbo_plus_kl_is_log_px(gap_app, posterior, mean, std):
    s = gap_app.update(posterior=posterior, mean=mean, std=std)
    assert abs(s["elbo"] + s["kl"] - s["log_px"]) < 1e-6
    assert s["kl"] >= 0
    assert s["elbo"] <= s["log_px"]
    assert abs(s["q_mass"] - 1) < 1e-6


def test_log_px_matches_the_constructed_value_and_scipy(gap_app):
    """The quadrature recovers the normalising constant the posterior was built with,
    and agrees with scipy's adaptive quadrature."""
    for posterior in quadrature.POSTERIORS:
        s = gap_app.update(posterior=posterior, mean=0.0, std=1.0)
        assert abs(s["log_px"] - quadrature.LOG_PX) < 1e-8
        ref, _ = scipy.integrate.quad(lambda z, p=posterior: math.exp(quadrature.log_joint(
            np.array([z]), p)[0]), -30, 30, points=[-3, 2], limit=200)
        assert abs(s["log_px"] - math.log(ref)) < 1e-8


def test_kl_against_closed_form_for_gaussian_posterior(gap_app):
    (_, m, sd), = quadrature.POSTERIORS["unimodal"]
    for mean, std in [(0.0, 1.0), (-4.0, math.sqrt(0.75)), (2.0, math.sqrt(2.0))]:
        s = gap_app.update(posterior="unimodal", mean=mean, std=std)
        closed = math.log(sd / std) + (std ** 2 + (mean - m) ** 2) / (2 * sd ** 2) - 0.5
        assert abs(s["kl"] - closed) < 1e-8


def test_gap_closes_when_q_is_the_posterior(gap_app):
    (_, m, sd), = quadrature.POSTERIORS["unimodal"]
    s = gap_app.update(posterior="unimodal", mean=m, std=sd)
    assert abs(s["kl"]) < 1e-8
    assert abs(s["elbo"] - s["log_px"]) < 1e-8
    # the densities drawn: q equals the posterior on the grid
    assert np.allclose(s["q"], s["p_post"], atol=1e-9)
    assert np.allclose(s["p_post"], scipy.stats.norm(m, sd).pdf(s["z"]), atol=1e-9)


def test_bimodal_q_cannot_close_the_gap(gap_app):
    best = min(gap_app.update(posterior="bimodal", mean=mu, std=sd)["kl"]
               for mu in np.linspace(-3, 3, 13) for sd in (0.8, 1.5, 2.5, 3.0))
    assert best > 0.05


def test_n22_beats_nm4(gap_app):
    """The lecture's picture: N(2, 2) is the better q (larger ELBO) for both posteriors."""
    for posterior in quadrature.POSTERIORS:
        good = gap_app.update(posterior=posterior, mean=2.0, std=math.sqrt(2.0))
        bad = gap_app.update(posterior=posterior, mean=-4.0, std=math.sqrt(0.75))
        assert good["elbo"] > bad["elbo"]


def test_gap_render_and_errors(gap_app):
    fig = gap_app.render(posterior="bimodal", mean=1.0, std=0.7)
    assert len(fig.axes) == 2
    plt.close(fig)
    assert "ELBO" in gap_app.summary(gap_app.state)
    with pytest.raises(ValueError, match="posterior"):
        gap_app.update(posterior="trimodal")
    with pytest.raises(ValueError, match="std"):
        gap_app.update(std=0.0)
    with pytest.raises(ValueError, match="posterior"):
        ELBOGapExplorer(posterior="nope")


# ------------------------------------------------------------------ estimator variance
@pytest.fixture(scope="module")
def var_app():
    return EstimatorVarianceExplorer()


@pytest.mark.parametrize("offset,scale,k", [(1.0, 1.5, 10), (0.0, 1.0, 3), (2.0, 2.0, 30)])
def test_both_estimators_unbiased(var_app, offset, scale, k):
    s = var_app.update(offset=offset, scale=scale, n_samples=k, n_repeats=2000, seed=1)
    for key in ("naive", "is"):
        se = max(s[f"{key}_se"], 1e-12)
        assert abs(s[f"{key}_mean"] - 1.0) < 4 * se + 1e-9, key
    # the returned arrays are what the stats describe
    assert math.isclose(s["naive_mean"], float(np.mean(s["naive"])))
    assert math.isclose(s["is_var"], float(np.var(s["importance"], ddof=1)))


def test_is_with_exact_posterior_has_zero_variance(var_app):
    s = var_app.update(offset=0.0, scale=1.0, n_samples=5, n_repeats=500, seed=2)
    assert s["is_var"] < 1e-20
    assert np.allclose(s["importance"], 1.0, atol=1e-9)
    assert s["naive_var"] > 1e-3
    assert s["is_var"] < s["naive_var"]


def test_variance_shrinks_like_one_over_k(var_app):
    a = var_app.update(offset=0.5, scale=1.3, n_samples=10, n_repeats=2000, seed=3)
    b = var_app.update(offset=0.5, scale=1.3, n_samples=100, n_repeats=2000, seed=3)
    ratio = a["is_var"] / b["is_var"]
    assert 6 < ratio < 16


def test_variance_render_and_errors(var_app):
    fig = var_app.render(offset=1.0, scale=1.0, n_samples=10, n_repeats=200, seed=0)
    assert len(fig.axes) == 2
    plt.close(fig)
    assert "IS" in var_app.summary(var_app.state)
    with pytest.raises(ValueError, match="scale"):
        var_app.update(scale=-1.0)
    with pytest.raises(ValueError, match="n_samples"):
        var_app.update(n_samples=0)
