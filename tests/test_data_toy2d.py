"""Toy 2-D densities: sampling contract, true densities and entropies."""

import math

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from coursekit.data import (
    MODE_COLLAPSE,
    TOY2D,
    get_toy2d,
    mode_centres,
    toy2d,
    toy2d_entropy,
    toy2d_log_prob,
)

ALL = TOY2D + MODE_COLLAPSE


@pytest.mark.parametrize("name", ALL)
def test_samples_are_float32_pairs_and_reproducible(name):
    a = toy2d(name, 500, seed=3)
    b = toy2d(name, 500, seed=3)
    c = toy2d(name, 500, seed=4)
    assert a.shape == (500, 2) and a.dtype == torch.float32
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert torch.isfinite(a).all()
    gen = torch.Generator().manual_seed(3)
    assert torch.equal(toy2d(name, 500, seed=gen), a)


@pytest.mark.parametrize("name", ALL)
def test_density_integrates_to_one_on_a_grid(name):
    dist = get_toy2d(name)
    x0, x1, y0, y1 = dist.extent
    n = 301
    xs, ys = np.linspace(x0, x1, n), np.linspace(y0, y1, n)
    grid = torch.tensor(np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2))
    p = toy2d_log_prob(name, grid).exp().numpy().reshape(n, n)
    mass = np.trapezoid(np.trapezoid(p, xs, axis=1), ys)
    tol = 0.02 if name == "checkerboard" else 2e-3  # the checkerboard has jump edges
    assert mass == pytest.approx(1.0, abs=tol)


@pytest.mark.parametrize("name", ALL)
def test_mean_log_density_of_samples_matches_entropy(name):
    x = toy2d(name, 40_000, seed=11)
    logp = toy2d_log_prob(name, x).double()
    assert torch.isfinite(logp).all(), "samples must lie where the density is positive"
    estimate = -logp.mean().item()
    stderr = logp.std().item() / math.sqrt(len(logp))
    assert abs(estimate - toy2d_entropy(name)) < 4 * stderr + 1e-3


def test_eight_gaussians_matches_scipy_mixture():
    x = toy2d("8gaussians", 200, seed=0).double()
    angles = np.arange(8) * np.pi / 4
    centres = 2.0 * np.stack([np.cos(angles), np.sin(angles)], 1)
    comps = np.stack([multivariate_normal(c, 0.04 * np.eye(2)).logpdf(x.numpy()) for c in centres])
    expected = logsumexp(comps, axis=0) - np.log(8)
    np.testing.assert_allclose(toy2d_log_prob("8gaussians", x).numpy(), expected, rtol=1e-10)


@pytest.mark.parametrize("name, k, sigma", [("ring8", 8, 0.01), ("grid25", 25, 0.05)])
def test_mode_collapse_sets_match_scipy_and_their_published_layout(name, k, sigma):
    centres, s = mode_centres(name)
    assert centres.shape == (k, 2) and s == sigma
    if name == "ring8":  # radius 1, 45 degrees apart
        np.testing.assert_allclose(centres.norm(dim=1).numpy(), 1.0)
    else:  # {-4, -2, 0, 2, 4}^2
        assert sorted(set(centres.flatten().tolist())) == [-4.0, -2.0, 0.0, 2.0, 4.0]
    x = toy2d(name, 300, seed=0).double()
    comps = np.stack([multivariate_normal(c, sigma**2 * np.eye(2)).logpdf(x.numpy())
                      for c in centres.numpy()])
    np.testing.assert_allclose(toy2d_log_prob(name, x).numpy(),
                               logsumexp(comps, axis=0) - np.log(k), rtol=1e-10, atol=1e-11)
    # every mode gets its share of samples
    nearest = torch.cdist(toy2d(name, 25_000, seed=1).double(), centres).argmin(1)
    counts = torch.bincount(nearest, minlength=k).double()
    assert (counts / counts.sum() - 1 / k).abs().max() < 5 * math.sqrt((1 / k) / 25_000)


def test_mode_centres_refuses_other_data_sets():
    assert mode_centres("8gaussians")[0].shape == (8, 2)
    with pytest.raises(ValueError, match="name: expected 8gaussians or one of ring8, grid25"):
        mode_centres("moons")


def test_checkerboard_closed_form():
    pts = torch.tensor([[-1.5, -1.5], [-0.5, -1.5], [0.5, 0.5], [1.5, -0.5], [3.0, 0.0]])
    logp = toy2d_log_prob("checkerboard", pts)
    inside = torch.tensor([True, False, True, True, False])
    assert torch.allclose(logp[inside], torch.full((3,), -math.log(8)))
    assert torch.isinf(logp[~inside]).all()
    assert toy2d_entropy("checkerboard") == pytest.approx(math.log(8))


@pytest.mark.parametrize("name", ["moons", "swissroll", "pinwheel", "2spirals"])
def test_quadrature_density_matches_monte_carlo_over_the_curve(name):
    """p(x) = E_u[N(x; m(u), s^2 I)] estimated with many random u, independently of
    the midpoint quadrature that log_prob uses."""
    from coursekit.data.toy2d import _MANIFOLDS

    m = _MANIFOLDS[name]
    gen = torch.Generator().manual_seed(0)
    u = torch.rand(400_000, generator=gen, dtype=torch.float64)
    x = toy2d(name, 5, seed=1).double()
    mc = torch.zeros(len(x), dtype=torch.float64)
    for weight, curve in zip(m.weights, m.curves):
        centres = curve(u)
        d2 = torch.cdist(x, centres).pow(2)
        kernel = torch.exp(-0.5 * d2 / m.sigma**2) / (2 * math.pi * m.sigma**2)
        mc += weight * kernel.mean(dim=1)
    np.testing.assert_allclose(toy2d_log_prob(name, x).numpy(), mc.log().numpy(), atol=0.02)


@pytest.mark.parametrize("name", ["moons", "circles", "swissroll", "pinwheel", "rings",
                                  "2spirals"])
def test_quadrature_log_prob_is_the_full_sum_at_every_distance(name):
    """Points from on the curve to 12 sigma off it, where the sparse sum hands over to the
    full one (at 3 sigma), equal the sum over every quadrature node in float64."""
    from coursekit.data.toy2d import _MANIFOLDS, _isotropic_mixture_log_prob

    m = _MANIFOLDS[name]
    centres, log_w, _ = m.quadrature
    gen = torch.Generator().manual_seed(0)
    base = centres[torch.randint(len(centres), (60,), generator=gen)]
    angle = 2 * math.pi * torch.rand(60, generator=gen, dtype=torch.float64)
    offset = m.sigma * torch.linspace(0, 12, 60, dtype=torch.float64)
    x = base + offset[:, None] * torch.stack([angle.cos(), angle.sin()], 1)
    full = _isotropic_mixture_log_prob(x, centres, m.sigma, log_w)
    np.testing.assert_allclose(toy2d_log_prob(name, x).numpy(), full.numpy(), rtol=0, atol=1e-7)


def test_log_prob_keeps_batch_shape_dtype_and_far_points_finite():
    x = torch.zeros(3, 4, 2)
    assert toy2d_log_prob("moons", x).shape == (3, 4)
    far = torch.tensor([[30.0, -30.0]], dtype=torch.float64)
    value = toy2d_log_prob("rings", far)
    assert value.dtype == torch.float64 and torch.isfinite(value).all() and value.item() < -1e4


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="name: expected one of .* got 'mooons'"):
        toy2d("mooons", 10)
    with pytest.raises(ValueError, match="n: expected an int >= 1, got -5"):
        toy2d("moons", -5)
    with pytest.raises(TypeError, match="n: expected an int >= 1, got 2.5"):
        toy2d("moons", 2.5)
    with pytest.raises(ValueError, match=r"x: expected points of shape \(\.\.\., 2\)"):
        toy2d_log_prob("moons", torch.zeros(5, 3))


def test_every_data_set_documents_its_parameters():
    for name in ALL:
        dist = get_toy2d(name)
        assert dist.description and dist.name == name
        x = dist.sample(2000, seed=0)
        x0, x1, y0, y1 = dist.extent
        inside = ((x[:, 0] > x0) & (x[:, 0] < x1) & (x[:, 1] > y0) & (x[:, 1] < y1)).float()
        assert inside.mean() > 0.999


@pytest.mark.parametrize("name", ALL)
def test_points_at_infinity_have_zero_density_and_nan_is_an_error(name):
    inf = math.inf
    x = torch.tensor([[0.1, 0.2], [inf, 0.0], [0.0, -inf], [-inf, inf]])
    out = toy2d_log_prob(name, x)
    assert out.shape == (4,)
    assert torch.equal(out[1:], torch.full((3,), -inf))
    assert out[0] == toy2d_log_prob(name, x[:1])[0]  # finite rows are unaffected
    with pytest.raises(ValueError, match=r"x: expected numbers, got NaN in the point at "
                                         r"index \(1,\)"):
        toy2d_log_prob(name, torch.tensor([[0.0, 0.0], [math.nan, 0.0]]))
