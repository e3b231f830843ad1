"""Rational-quadratic splines, neural spline flows and the continuous normalizing flow.

Each test checks against an independent computation (a scalar re-derivation of the
spline, autograd Jacobians, a grid integral, a Monte Carlo average) or a property that a
wrong implementation breaks (monotonicity, knots, identity tails, round trips).
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch

from coursekit.data import get_toy2d
from coursekit.flows.cnf import CNF, ContinuousFlowTransform
from coursekit.flows.spline import (
    MIN_DERIVATIVE,
    MIN_HEIGHT,
    MIN_WIDTH,
    NSF,
    Spline,
    SplineCoupling,
    rational_quadratic_spline,
    spline_knots,
)
from coursekit.train import fit

D64 = torch.float64
BOUND = 3.0


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _params(bins=6, batch=(), seed=0, scale=2.0):
    gen = torch.Generator().manual_seed(seed)
    w, h = (scale * torch.randn(*batch, bins, generator=gen, dtype=D64) for _ in range(2))
    d = scale * torch.randn(*batch, bins - 1, generator=gen, dtype=D64)
    return w, h, d


def _softplus(v):
    return math.log1p(math.exp(-abs(v))) + max(v, 0.0)


def _reference_knots(w, h, d, bound):
    """The knots by hand, in NumPy: softmax sizes with a floor, cumulative sums on
    [-B, B], interior derivatives m + softplus(u + c) with m + softplus(c) = 1."""
    def edges(u, minimum):
        p = np.exp(u - u.max())
        p = minimum + (1 - minimum * len(u)) * p / p.sum()
        return -bound + 2 * bound * np.concatenate([[0.0], np.cumsum(p)])

    c = math.log(math.expm1(1 - MIN_DERIVATIVE))
    derivs = [1.0] + [MIN_DERIVATIVE + _softplus(v + c) for v in d] + [1.0]
    return edges(w.numpy(), MIN_WIDTH), edges(h.numpy(), MIN_HEIGHT), np.array(derivs)


def _reference_spline(x, xk, yk, dk):
    """Durkan et al.'s eq. (4), one scalar at a time: find the bin, evaluate the ratio."""
    if x < xk[0] or x > xk[-1]:
        return x
    k = min(int(np.searchsorted(xk, x, side="right")) - 1, len(xk) - 2)
    w, h = xk[k + 1] - xk[k], yk[k + 1] - yk[k]
    s, xi = h / w, (x - xk[k]) / w
    num = h * (s * xi ** 2 + dk[k] * xi * (1 - xi))
    return yk[k] + num / (s + (dk[k + 1] + dk[k] - 2 * s) * xi * (1 - xi))


def _seed_conditioners(module, seed, std=0.3):
    """Random weights in the zero-initialised last layers, so the layers are not the
    identity."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(std * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return module


def _jacobian_logdet(transform, x):
    """log|det| of the autograd Jacobian of ``transform``'s output, one sample at a time."""
    def fn(a):
        return transform(a)[0]

    jac = torch.stack([torch.autograd.functional.jacobian(fn, xi[None])[0, :, 0] for xi in x])
    return torch.linalg.slogdet(jac)[1]


def _grid(lo, hi, n, dtype=D64):
    """Midpoints of an n x n grid on [lo, hi]^2 and the cell area."""
    step = (hi - lo) / n
    axis = lo + step * (torch.arange(n, dtype=dtype) + 0.5)
    gx, gy = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=-1), step * step


# --------------------------------------------------------------------------------------
# the spline
# --------------------------------------------------------------------------------------
def test_spline_matches_a_scalar_rederivation_and_its_knots():
    w, h, d = _params()
    xk, yk, dk = spline_knots(w, h, d, bound=BOUND)
    ref_x, ref_y, ref_d = _reference_knots(w, h, d, BOUND)
    np.testing.assert_allclose(xk.numpy(), ref_x, atol=1e-12)
    np.testing.assert_allclose(yk.numpy(), ref_y, atol=1e-12)
    np.testing.assert_allclose(dk.numpy(), ref_d, atol=1e-12)
    x = torch.linspace(-4.5, 4.5, 301, dtype=D64)
    y, _ = rational_quadratic_spline(x, w, h, d, bound=BOUND)
    expected = [_reference_spline(v, ref_x, ref_y, ref_d) for v in x.tolist()]
    np.testing.assert_allclose(y.numpy(), expected, atol=1e-12)
    # through the knots, both ways
    at_knots, _ = rational_quadratic_spline(xk, w, h, d, bound=BOUND)
    back, _ = rational_quadratic_spline(yk, w, h, d, inverse=True, bound=BOUND)
    torch.testing.assert_close(at_knots, yk, atol=1e-12, rtol=0)
    torch.testing.assert_close(back, xk, atol=1e-12, rtol=0)


def test_spline_is_monotone_and_the_identity_outside_the_bound():
    w, h, d = _params(bins=8, seed=1, scale=3.0)
    x = torch.linspace(-6, 6, 4001, dtype=D64)
    y, logabsdet = rational_quadratic_spline(x, w, h, d, bound=BOUND)
    assert bool((y[1:] > y[:-1]).all())
    outside = x.abs() > BOUND
    assert bool((y[outside] == x[outside]).all()) and bool((logabsdet[outside] == 0).all())
    edges, _ = rational_quadratic_spline(torch.tensor([-BOUND, BOUND], dtype=D64), w, h, d,
                                         bound=BOUND)
    torch.testing.assert_close(edges, torch.tensor([-BOUND, BOUND], dtype=D64))


def test_spline_derivative_is_continuous_at_the_knots_and_equals_the_given_derivatives():
    w, h, d = _params(bins=5, seed=2)
    xk, _, dk = spline_knots(w, h, d, bound=BOUND)
    eps = 1e-7
    for side in (-eps, eps):  # the left and the right bin of every knot (and the tails)
        x = (xk + side).requires_grad_(True)
        y, logabsdet = rational_quadratic_spline(x, w, h, d, bound=BOUND)
        grad, = torch.autograd.grad(y.sum(), x)
        torch.testing.assert_close(grad, dk, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(logabsdet.exp().detach(), dk, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("inverse", [False, True])
def test_spline_logabsdet_is_the_log_of_the_autograd_derivative(inverse):
    w, h, d = _params(bins=7, batch=(257,), seed=3)
    x = torch.linspace(-4, 4, 257, dtype=D64).requires_grad_(True)
    y, logabsdet = rational_quadratic_spline(x, w, h, d, inverse=inverse, bound=BOUND)
    grad, = torch.autograd.grad(y.sum(), x)
    torch.testing.assert_close(logabsdet, grad.log(), atol=1e-10, rtol=1e-10)


def test_spline_inverse_undoes_forward_near_knots_and_in_the_tails():
    w, h, d = _params(bins=6, seed=4, scale=3.0)
    xk, yk, _ = spline_knots(w, h, d, bound=BOUND)
    x = torch.cat([torch.linspace(-5, 5, 1001, dtype=D64), xk, xk + 1e-9, xk - 1e-9,
                   torch.tensor([-1e3, -BOUND - 1e-12, BOUND + 1e-12, 1e3], dtype=D64)])
    y, ld = rational_quadratic_spline(x, w, h, d, bound=BOUND)
    back, ld_back = rational_quadratic_spline(y, w, h, d, inverse=True, bound=BOUND)
    torch.testing.assert_close(back, x, atol=1e-5, rtol=0)
    torch.testing.assert_close(ld_back, -ld, atol=1e-5, rtol=0)
    z = torch.cat([yk, yk + 1e-9, yk - 1e-9, torch.linspace(-5, 5, 501, dtype=D64)])
    again, _ = rational_quadratic_spline(
        rational_quadratic_spline(z, w, h, d, inverse=True, bound=BOUND)[0], w, h, d,
        bound=BOUND)
    torch.testing.assert_close(again, z, atol=1e-5, rtol=0)


def test_spline_float32_round_trip_with_extreme_parameters():
    w, h, d = (p.float() for p in _params(bins=10, batch=(2000,), seed=5, scale=8.0))
    x = torch.linspace(-3.2, 3.2, 2000)
    y, ld = rational_quadratic_spline(x, w, h, d, bound=BOUND)
    back, ld_back = rational_quadratic_spline(y, w, h, d, inverse=True, bound=BOUND)
    assert bool(torch.isfinite(ld).all()) and bool(torch.isfinite(ld_back).all())
    # slopes down to ~1e-7 make x = f^{-1}(y) ill-conditioned in float32, so the inverse is
    # judged where it is well-posed, and everywhere by how well it reproduces y
    conditioned = ld > -5
    assert int(conditioned.sum()) > 400
    torch.testing.assert_close(back[conditioned], x[conditioned], atol=1e-3, rtol=0)
    again, _ = rational_quadratic_spline(back, w, h, d, bound=BOUND)
    torch.testing.assert_close(again, y, atol=1e-5, rtol=0)


# --------------------------------------------------------------------------------------
# coupling layers and NSF
# --------------------------------------------------------------------------------------
def _layers():
    return {
        "spline": _seed_conditioners(Spline(3, bins=5, bound=BOUND).double(), 0, std=1.0),
        "coupling-even": _seed_conditioners(SplineCoupling(3, "even", 5, BOUND, (16,)).double(),
                                            1),
        "coupling-odd": _seed_conditioners(SplineCoupling(3, "odd", 5, BOUND, (16,)).double(), 2),
        "nsf": _seed_conditioners(NSF(3, layers=3, bins=5, hidden=(16,), bound=BOUND).double(),
                                  3).transform,
    }


@pytest.mark.parametrize("name", ["spline", "coupling-even", "coupling-odd", "nsf"])
def test_layer_logabsdet_matches_the_autograd_jacobian_and_inverts(name):
    layer = _layers()[name]
    x = 1.5 * torch.randn(12, 3, generator=torch.Generator().manual_seed(7), dtype=D64)
    z, logabsdet = layer(x)
    torch.testing.assert_close(logabsdet, _jacobian_logdet(layer, x),
                               atol=1e-9, rtol=1e-9)
    back, ld_back = layer.inverse(z)
    torch.testing.assert_close(back, x, atol=1e-9, rtol=0)
    torch.testing.assert_close(ld_back, -logabsdet, atol=1e-9, rtol=0)
    assert not torch.allclose(z, x)  # the seeded layer is not the identity


def test_coupling_masks_leave_the_conditioning_half_unchanged():
    x = torch.randn(5, 4, dtype=D64)
    even = _seed_conditioners(SplineCoupling(4, "even", 4, BOUND, (8,)).double(), 0)
    odd = _seed_conditioners(SplineCoupling(4, "odd", 4, BOUND, (8,)).double(), 0)
    assert torch.equal(even(x)[0][:, 1::2], x[:, 1::2]) and not torch.equal(even(x)[0], x)
    assert torch.equal(odd(x)[0][:, 0::2], x[:, 0::2]) and not torch.equal(odd(x)[0], x)


def test_fresh_nsf_is_the_identity():
    model = NSF(2)
    x = torch.randn(10, 2)
    z, logabsdet = model.transform(x)
    torch.testing.assert_close(z, x, atol=1e-5, rtol=0)
    torch.testing.assert_close(logabsdet, torch.zeros(10), atol=1e-5, rtol=0)


def test_nsf_density_integrates_to_the_base_mass_of_the_box():
    """Each coupling maps the box [-B, B]^2 onto itself, so the model's mass in the box is
    the standard normal's, (erf(B / sqrt 2))^2; the midpoint rule gets it to ~1e-4."""
    model = _seed_conditioners(NSF(2, layers=4, bins=6, hidden=(16,), bound=BOUND).double(), 8)
    points, area = _grid(-BOUND, BOUND, 300)
    with torch.no_grad():
        mass = float(model.log_prob(points).exp().sum()) * area
    assert mass == pytest.approx(math.erf(BOUND / math.sqrt(2)) ** 2, abs=1e-2)
    with torch.no_grad():  # and the model is far from the base (the test can fail)
        base = model.base.log_prob(points).exp()
        assert float((model.log_prob(points).exp() - base).abs().sum()) * area > 0.1


def test_nsf_sample_and_log_prob_agree():
    model = _seed_conditioners(NSF(2, layers=2, bins=4, hidden=(8,)).double(), 9)
    with torch.no_grad():
        x, log_p = model.sample_and_log_prob(200, generator=0)
        torch.testing.assert_close(model.log_prob(x), log_p, atol=1e-9, rtol=0)


def test_nsf_training_reaches_the_true_entropy():
    data = get_toy2d("8gaussians")
    train, test = data.sample(4096, seed=0), data.sample(4096, seed=1)
    torch.manual_seed(0)
    model = NSF(2, layers=4, bins=8, hidden=(32, 32))
    fit(model, lambda m, b: -m.log_prob(b).mean(), train, epochs=8, batch_size=128,
        lr=3e-3, progress=False, seed=0)  # 256 steps
    with torch.no_grad():
        nll = float(-model.log_prob(test).mean())
    assert data.entropy() <= nll + 0.05  # a model cannot beat the entropy (up to MC error)
    assert nll < data.entropy() + 0.3


# --------------------------------------------------------------------------------------
# the continuous normalizing flow
# --------------------------------------------------------------------------------------
def _cnf(features=2, steps=10, trace="exact", seed=0, std=0.6):
    return _seed_conditioners(CNF(features, hidden=(16, 16), steps=steps, trace=trace).double(),
                              seed, std=std)


def test_cnf_logdet_matches_the_jacobian_of_the_rk4_map():
    """The continuous formula integrates tr(dg/dz) with RK4 along the RK4 path; autograd
    differentiates the discrete RK4 map. Both approximate the exact log-det with a global
    error O(h^4), so they differ by O(h^4) too: measured 2e-6 at 10 steps (h = 0.1) here,
    hence the tolerance 1e-4, and the gap shrinks about 16x each time h halves."""
    x = torch.randn(6, 2, generator=torch.Generator().manual_seed(1), dtype=D64)
    gaps = []
    for steps in (5, 10):
        flow = _cnf(steps=steps)
        _, logabsdet = flow.transform(x)
        gaps.append(float((logabsdet.detach() - _jacobian_logdet(flow.transform, x))
                          .abs().max()))
        assert float(logabsdet.detach().abs().min()) > 0.01  # a real volume change
    assert gaps[1] < 1e-4
    assert gaps[1] < gaps[0] / 8  # fourth order: about 1/16


def test_hutchinson_estimator_is_unbiased():
    transform = _cnf(features=3).transform
    z = torch.randn(4, 3, generator=torch.Generator().manual_seed(2), dtype=D64)
    with torch.no_grad():
        _, exact = transform.divergence(z, 0.3)
        draws = 20000
        zz = z.repeat(draws, 1)
        gen = torch.Generator().manual_seed(3)
        noise = torch.randint(0, 2, zz.shape, generator=gen).to(D64) * 2 - 1
        _, estimates = transform.divergence(zz, 0.3, noise)
    estimates = estimates.view(draws, 4)
    stderr = estimates.std(0) / math.sqrt(draws)
    assert bool(((estimates.mean(0) - exact).abs() < 4 * stderr + 1e-12).all())
    assert bool((estimates.std(0) > 0).all())  # it is an estimate, not the exact trace


def test_cnf_with_hutchinson_trace_runs_and_its_mean_matches_the_exact_one():
    exact, noisy = _cnf(trace="exact", steps=4), _cnf(trace="hutchinson", steps=4)
    x = torch.randn(3, 2, dtype=D64)
    torch.manual_seed(4)
    with torch.no_grad():  # each row of the batch draws its own noise: 400 solves in one
        mean = noisy.log_prob(x.repeat(400, 1)).view(400, 3).mean(0)
        torch.testing.assert_close(mean, exact.log_prob(x), atol=0.05, rtol=0)


def test_cnf_inverse_undoes_forward_to_solver_accuracy():
    flow = _cnf(steps=20)
    x = torch.randn(50, 2, generator=torch.Generator().manual_seed(5), dtype=D64)
    with torch.no_grad():
        z, logabsdet = flow.transform(x)
        back, ld_back = flow.transform.inverse(z)
    assert float((z - x).abs().max()) > 0.1
    # RK4 forward then backward is the identity only up to the O(h^4) global error
    torch.testing.assert_close(back, x, atol=1e-4, rtol=0)
    torch.testing.assert_close(ld_back, -logabsdet, atol=1e-4, rtol=0)


def test_cnf_density_integrates_to_one():
    flow = _cnf(steps=6, seed=6)
    points, area = _grid(-7.0, 7.0, 120)
    with torch.no_grad():
        density = flow.log_prob(points).exp()
        base = flow.base.log_prob(points).exp()
    assert float(density.sum()) * area == pytest.approx(1.0, abs=1e-2)
    assert float((density - base).abs().sum()) * area > 0.1


def test_cnf_sample_and_log_prob_agree():
    flow = _cnf(steps=10)
    with torch.no_grad():
        x, log_p = flow.sample_and_log_prob(100, generator=0)
        torch.testing.assert_close(flow.log_prob(x), log_p, atol=2e-3, rtol=0)


def test_cnf_training_smoke():
    """60 Adam steps with a 4-step RK4 solver: the test NLL falls by more than a nat."""
    data = get_toy2d("8gaussians")
    train, test = data.sample(60 * 128, seed=0), data.sample(2048, seed=1)
    torch.manual_seed(0)
    model = CNF(2, hidden=(32, 32), steps=4)
    with torch.no_grad():
        before = float(-model.log_prob(test).mean())
    fit(model, lambda m, b: -m.log_prob(b).mean(), train, epochs=1, batch_size=128, lr=1e-2,
        progress=False, seed=0)
    with torch.no_grad():
        after = float(-model.log_prob(test).mean())
    assert after < before - 1.0
    assert after < data.entropy() + 0.7


# --------------------------------------------------------------------------------------
# arguments and devices
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("call, name", [
    (lambda: rational_quadratic_spline(torch.zeros(3), torch.zeros(3, 4), torch.zeros(3, 5),
                                       torch.zeros(3, 3)), "heights"),
    (lambda: rational_quadratic_spline(torch.zeros(3), torch.zeros(3, 4), torch.zeros(3, 4),
                                       torch.zeros(3, 4)), "derivatives"),
    (lambda: rational_quadratic_spline(torch.zeros(3), torch.zeros(3, 1), torch.zeros(3, 1),
                                       torch.zeros(3, 0)), "widths"),
    (lambda: rational_quadratic_spline(torch.zeros(3), torch.zeros(2, 4), torch.zeros(2, 4),
                                       torch.zeros(2, 3)), "widths/heights/derivatives"),
    (lambda: rational_quadratic_spline(torch.tensor([float("nan")]), torch.zeros(4),
                                       torch.zeros(4), torch.zeros(3)), "x"),
    (lambda: rational_quadratic_spline(torch.zeros(3), torch.zeros(4), torch.zeros(4),
                                       torch.zeros(3), bound=0.0), "bound"),
    (lambda: rational_quadratic_spline(torch.zeros(3), torch.zeros(4), torch.zeros(4),
                                       torch.zeros(3), min_width=0.3), "min_width"),
    (lambda: SplineCoupling(1), "features"),
    (lambda: SplineCoupling(2, mask="diagonal"), "mask"),
    (lambda: SplineCoupling(2, bins=1), "bins"),
    (lambda: NSF(2, layers=0), "layers"),
    (lambda: NSF(2, hidden=(0,)), "hidden[0]"),
    (lambda: CNF(2, trace="stochastic"), "trace"),
    (lambda: CNF(2, steps=0), "steps"),
    (lambda: CNF(2, t1=-1.0), "t1"),
    (lambda: NSF(2).log_prob(torch.zeros(4, 3)), "x"),
])
def test_bad_arguments_raise_value_error_naming_them(call, name):
    with pytest.raises(ValueError, match=f"^{re.escape(name)}: expected"):
        call()


def test_bad_argument_types_raise_type_error():
    with pytest.raises(TypeError, match="^hidden: expected"):
        NSF(2, hidden=64)
    with pytest.raises(TypeError, match="^hidden: expected"):
        ContinuousFlowTransform(2, hidden=64)


@pytest.mark.gpu
def test_cuda_log_prob_and_sample_match_cpu():
    x = torch.randn(64, 2, generator=torch.Generator().manual_seed(0), dtype=D64)
    for model in (_seed_conditioners(NSF(2, layers=2, hidden=(16,)).double(), 0), _cnf()):
        expected = model.log_prob(x).detach()
        model.to("cuda")
        got = model.log_prob(x.cuda())
        torch.testing.assert_close(got.detach().cpu(), expected, atol=1e-8, rtol=1e-8)
        draws, log_p = model.sample_and_log_prob(32, generator=0)
        assert draws.device.type == "cuda" and draws.shape == (32, 2)
        torch.testing.assert_close(model.log_prob(draws).detach(), log_p.detach(),
                                   atol=1e-4, rtol=0)
