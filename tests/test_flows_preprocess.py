"""coursekit.flows.preprocess: the logit map from the unit cube to the real line, against
torch.distributions' own transforms and autograd, and a flow through it still normalised."""

import pytest
import torch
from torch.autograd.functional import jacobian
from torch.distributions import transforms as T

from coursekit.flows import Compose, Flow, LogitTransform, RealNVP

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _unit_cube(n, d, seed=0):
    return torch.rand(n, d, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("alpha", [0.0, 0.05, 0.3])
def test_matches_torch_distributions_affine_then_inverse_sigmoid(alpha):
    y = _unit_cube(50, 4).clamp(1e-6, 1 - 1e-6)
    reference = T.ComposeTransform([T.AffineTransform(alpha, 1 - 2 * alpha),
                                    T.SigmoidTransform().inv])
    x, logabsdet = LogitTransform(alpha)(y)
    torch.testing.assert_close(x, reference(y))
    torch.testing.assert_close(logabsdet, reference.log_abs_det_jacobian(y, x).sum(-1))


def test_log_determinant_is_the_autograd_jacobians_and_the_inverse_round_trips():
    t = LogitTransform(0.05)
    y = _unit_cube(3, 5, seed=1)
    x, ld = t(y)
    y_back, ld_back = t.inverse(x)
    torch.testing.assert_close(y_back, y)
    torch.testing.assert_close(ld_back, -ld)
    for i in range(3):
        jac = jacobian(lambda v: t(v[None])[0][0], y[i])
        torch.testing.assert_close(ld[i], torch.linalg.slogdet(jac)[1])


def test_extreme_pixels_stay_finite_in_float32():
    y = torch.tensor([[0.0, 1.0, 0.5]])
    x, ld = LogitTransform(0.05)(y)
    assert torch.isfinite(x).all() and torch.isfinite(ld).all()
    x, ld = LogitTransform(0.05).inverse(torch.tensor([[-80.0, 80.0, 0.0]]))
    assert torch.isfinite(x).all() and torch.isfinite(ld).all()


@pytest.mark.parametrize("alpha", [0.0, 0.05])
def test_a_flow_through_the_logit_is_a_density_on_the_interval_the_logit_covers(alpha):
    """With alpha > 0 the logit covers y in (-a, 1 + a), a = alpha / (1 - 2 alpha): the
    density integrates to 1 there and to less on the unit square (a likelihood of data
    in [0, 1] can only be underestimated, so a bits-per-dimension bound stays a bound)."""
    torch.manual_seed(0)
    inner = RealNVP(2, layers=4, hidden=(16,)).double()
    with torch.no_grad():
        for p in inner.parameters():
            p.add_(0.1 * torch.randn_like(p))
    flow = Flow(Compose(LogitTransform(alpha), inner.transform), 2)
    a = alpha / (1 - 2 * alpha)

    def mass(lo, hi, n=600):  # midpoint rule on the square [lo, hi]^2
        g = lo + (hi - lo) * (torch.arange(n, dtype=torch.float64) + 0.5) / n
        with torch.no_grad():
            return float(flow.log_prob(torch.cartesian_prod(g, g)).exp().mean()) * (hi - lo) ** 2

    assert abs(mass(-a, 1 + a) - 1.0) < 2e-3
    if alpha > 0:
        assert mass(0.0, 1.0) < 0.99


def test_alpha_outside_its_range_is_refused():
    for bad in (-0.1, 0.5, 1.0):
        with pytest.raises(ValueError, match="alpha"):
            LogitTransform(bad)
