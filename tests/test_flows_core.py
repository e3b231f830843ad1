"""Lecture 06's flows, part 1 (planar, coupling, autoregressive, Glow layers and the ready
models): log-determinants against autograd Jacobians, inverses, normalisation on a grid,
samples against the density, the planar constraint, MAF/IAF pass counts and triangular
Jacobians, input checks and a training smoke test against the true entropy."""

import math

import pytest
import torch
from torch.autograd.functional import jacobian

from coursekit.data import get_toy2d, toy2d
from coursekit.flows import (
    IAF,
    MAF,
    NICE,
    ActNorm,
    AdditiveCoupling,
    AffineCoupling,
    Compose,
    Glow,
    IAFTransform,
    LULinear,
    MAFTransform,
    Permutation,
    Planar,
    PlanarTransform,
    RandomPermutation,
    RealNVP,
    Rescale,
    ReversePermutation,
)
from coursekit.train import fit

D = 3
ORDER = [2, 0, 1]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _perturbed(module, scale=0.3, seed=0):
    """``module`` in float64 with every parameter moved by ``scale * N(0, 1)``, so no layer
    sits at the identity (Rescale starts there) and the density is far from N(0, I)."""
    gen = torch.Generator().manual_seed(seed)
    module = module.double()
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return module


def _actnorm():
    layer = ActNorm(D)
    layer(3.0 + 2.0 * torch.randn(64, D))  # the data-dependent initialisation
    return layer


TRANSFORMS = {
    "planar": lambda: PlanarTransform(D),
    "planar-unconstrained": lambda: PlanarTransform(D, constrained=False),
    "additive-even": lambda: AdditiveCoupling(D, "even", hidden=(8, 8)),
    "additive-mask": lambda: AdditiveCoupling(D, [0, 1, 1], hidden=(8,)),
    "affine-odd": lambda: AffineCoupling(D, "odd", hidden=(8, 8)),
    "affine-even": lambda: AffineCoupling(D, "even", hidden=(8,)),
    "rescale": lambda: Rescale(D),
    "permutation": lambda: Permutation([1, 2, 0]),
    "reverse": lambda: ReversePermutation(D),
    "random-permutation": lambda: RandomPermutation(D, seed=3),
    "maf": lambda: MAFTransform(D, (8, 8), ordering=ORDER),
    "iaf": lambda: IAFTransform(D, (8, 8), ordering=ORDER),
    "actnorm": _actnorm,
    "lu-linear": lambda: LULinear(D),
    "compose": lambda: Compose(_actnorm(), LULinear(D), AffineCoupling(D, "odd", (8,)),
                               ReversePermutation(D), MAFTransform(D, (8,)),
                               PlanarTransform(D)),
}


def _transform(name):
    torch.manual_seed(0)
    return _perturbed(TRANSFORMS[name]())


def _unconstrained_planar_ok(t):
    # the unconstrained layer is invertible only while w.u >= -1 (the seed above gives that)
    return not isinstance(t, PlanarTransform) or float((t.w @ t.u_hat()).detach()) > -1


@pytest.mark.parametrize("name", TRANSFORMS)
def test_logabsdet_is_the_log_determinant_of_the_autograd_jacobian_both_ways(name):
    t = _transform(name)
    assert _unconstrained_planar_ok(t)
    x = torch.randn(3, D, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    z, ld_forward = t(x)
    _, ld_inverse = t.inverse(z)
    assert ld_forward.shape == ld_inverse.shape == (3,)
    for i in range(3):
        jac_f = jacobian(lambda v: t(v[None])[0][0], x[i])
        jac_i = jacobian(lambda v: t.inverse(v[None])[0][0], z[i])
        torch.testing.assert_close(ld_forward[i], torch.linalg.slogdet(jac_f)[1])
        torch.testing.assert_close(ld_inverse[i], torch.linalg.slogdet(jac_i)[1])
        # and the two Jacobians are inverse matrices
        torch.testing.assert_close(jac_i @ jac_f, torch.eye(D, dtype=torch.float64))


@pytest.mark.parametrize("name", TRANSFORMS)
def test_inverse_undoes_forward_and_the_log_determinants_are_negatives(name):
    t = _transform(name)
    x = 2.0 * torch.randn(64, D, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    z, ld = t(x)
    x_back, ld_back = t.inverse(z)
    torch.testing.assert_close(x_back, x, atol=1e-10, rtol=0)
    torch.testing.assert_close(ld_back, -ld)
    z_again, _ = t(x_back)
    torch.testing.assert_close(z_again, z, atol=1e-10, rtol=0)


@pytest.mark.parametrize("name", TRANSFORMS)
def test_transforms_follow_float32(name):
    torch.manual_seed(0)
    t = TRANSFORMS[name]()
    x = torch.randn(16, D)
    z, ld = t(x)
    x_back, ld_back = t.inverse(z)
    assert z.dtype == ld.dtype == x_back.dtype == torch.float32
    torch.testing.assert_close(x_back, x, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ld_back, -ld, atol=1e-5, rtol=1e-5)


def test_compose_sums_the_log_determinants_of_its_layers_in_order():
    torch.manual_seed(0)
    a, b, c = (_perturbed(AffineCoupling(D, "odd", (8,))), _perturbed(LULinear(D)),
               _perturbed(PlanarTransform(D)))
    x = torch.randn(10, D, dtype=torch.float64)
    z, ld = Compose(a, b, c)(x)
    y1, l1 = a(x)
    y2, l2 = b(y1)
    y3, l3 = c(y2)
    torch.testing.assert_close(z, y3)
    torch.testing.assert_close(ld, l1 + l2 + l3)


# --------------------------------------------------------------------------------------
# planar
# --------------------------------------------------------------------------------------
def test_planar_constraint_keeps_w_dot_u_hat_above_minus_one():
    gen = torch.Generator().manual_seed(0)
    t = PlanarTransform(4).double()
    values, raw = [], []
    with torch.no_grad():
        for scale in (0.1, 1.0, 10.0):
            for _ in range(50):
                t.u.copy_(scale * torch.randn(4, generator=gen, dtype=torch.float64))
                t.w.copy_(scale * torch.randn(4, generator=gen, dtype=torch.float64))
                values.append(float(t.w @ t.u_hat()))
                raw.append(float(t.w @ t.u))
                # the identity w.u_hat = -1 + softplus(w.u), computed another way
                assert values[-1] == pytest.approx(-1 + math.log1p(math.exp(raw[-1])),
                                                   rel=1e-9, abs=1e-9)
    assert min(values) >= -1 - 1e-12  # -1 + softplus(a) > -1, up to rounding
    assert min(raw) < -1  # the raw u broke the constraint in some draws


def test_unconstrained_planar_with_w_dot_u_below_minus_one_folds_the_plane():
    t = PlanarTransform(2, constrained=False).double()
    with torch.no_grad():
        t.w.copy_(torch.tensor([1.0, 0.0]))
        t.u.copy_(torch.tensor([-3.0, 0.0]))  # w.u = -3 < -1
        t.b.zero_()
    # the determinant 1 + h'(w.z + b) w.u changes sign: -2 at w.z = 0, ~1 far away
    dets = [torch.linalg.det(jacobian(lambda v: t.inverse(v[None])[0][0], z))
            for z in (torch.zeros(2, dtype=torch.float64),
                      torch.tensor([10.0, 0.0], dtype=torch.float64))]
    assert float(dets[0]) == pytest.approx(-2.0) and float(dets[1]) > 0.9
    # and two different z land on the same x: x_1 = z_1 - 3 tanh(z_1) is not monotone
    z1 = torch.tensor([[-0.5, 0.5]], dtype=torch.float64)
    target = float(t.inverse(z1)[0][0, 0].detach())  # -0.5 + 3 tanh(0.5) = 0.886
    lo, hi = 2.0, 5.0  # z_1 - 3 tanh(z_1) rises through target on [2, 5]: bisect
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if mid - 3 * math.tanh(mid) < target else (lo, mid)
    z2 = torch.tensor([[lo, 0.5]], dtype=torch.float64)
    torch.testing.assert_close(t.inverse(z2)[0], t.inverse(z1)[0])
    assert lo - z1[0, 0] > 3.0
    with pytest.raises(ValueError, match="constrained"):
        t(z1)


def test_planar_forward_root_find_round_trips_far_from_the_origin_in_float32():
    torch.manual_seed(0)
    t = PlanarTransform(2)
    with torch.no_grad():
        t.u.copy_(torch.tensor([4.0, -2.0]))
        t.w.copy_(torch.tensor([1.5, 0.5]))
        t.b.fill_(0.3)
    x = 5.0 * torch.randn(1000, 2)
    torch.testing.assert_close(t.inverse(t(x)[0])[0], x, atol=1e-5, rtol=1e-5)


def test_planar_forward_has_the_implicit_function_gradient():
    torch.manual_seed(0)
    t = _perturbed(PlanarTransform(D))
    x = torch.randn(4, D, dtype=torch.float64)
    params = (t.u, t.w, t.b)

    def loss():
        z, ld = t(x)
        return (z ** 2).sum() + ld.sum()

    grads = torch.autograd.grad(loss(), params)
    eps = 1e-6
    for p, g in zip(params, grads):
        for k in range(p.numel()):
            with torch.no_grad():
                p.view(-1)[k] += eps
                up = float(loss())
                p.view(-1)[k] -= 2 * eps
                down = float(loss())
                p.view(-1)[k] += eps
            assert float(g.view(-1)[k]) == pytest.approx((up - down) / (2 * eps), abs=1e-5)


# --------------------------------------------------------------------------------------
# MAF and IAF
# --------------------------------------------------------------------------------------
def _count_passes(maf: MAFTransform, fn):
    calls = []
    handle = maf.made.output_layer.register_forward_hook(lambda *_: calls.append(1))
    try:
        fn()
    finally:
        handle.remove()
    return len(calls)


def test_maf_density_is_one_pass_and_sampling_is_features_passes_iaf_the_reverse():
    x = torch.randn(5, 4)
    maf = MAFTransform(4, (8,))
    assert _count_passes(maf, lambda: maf(x)) == 1
    assert _count_passes(maf, lambda: maf.inverse(x)) == 4
    iaf = IAFTransform(4, (8,))
    assert _count_passes(iaf.transform, lambda: iaf.inverse(x)) == 1  # noise to data
    assert _count_passes(iaf.transform, lambda: iaf(x)) == 4  # data to noise


@pytest.mark.parametrize("kind", ["maf", "iaf"])
def test_the_one_pass_jacobian_is_triangular_in_the_ordering(kind):
    t = _transform(kind)
    one_pass = t.forward if kind == "maf" else t.inverse
    v = torch.randn(D, dtype=torch.float64)
    jac = jacobian(lambda u: one_pass(u[None])[0][0], v)
    in_order = jac[ORDER][:, ORDER]
    assert torch.equal(torch.triu(in_order, 1), torch.zeros(D, D, dtype=torch.float64))
    assert bool((torch.tril(in_order, -1).abs() > 0).any())  # something to be triangular
    # in the identity order it is not triangular: the ordering is really used
    assert bool((torch.triu(jac, 1).abs() > 0).any())


# --------------------------------------------------------------------------------------
# the ready models
# --------------------------------------------------------------------------------------
MODELS = {
    "Planar": lambda: Planar(2, layers=4),
    "NICE": lambda: NICE(2, layers=4, hidden=(16, 16)),
    "RealNVP": lambda: RealNVP(2, layers=4, hidden=(16, 16)),
    "MAF": lambda: MAF(2, layers=3, hidden=(16, 16)),
    "IAF": lambda: IAF(2, layers=3, hidden=(16, 16)),
    "Glow": lambda: Glow(2, layers=3, hidden=(16, 16)),
}


def _model(name):
    torch.manual_seed(0)
    model = _perturbed(MODELS[name](), scale=0.1)
    model.log_prob(torch.randn(256, 2, dtype=torch.float64))  # ActNorm's initialisation
    return model


_GRID = torch.linspace(-8, 8, 321, dtype=torch.float64)  # spacing 0.05


@pytest.fixture(scope="module")
def grid_densities():
    """``{name: (model, p on the grid)}``, computed once for the two grid tests."""
    points = torch.cartesian_prod(_GRID, _GRID)
    out = {}
    with torch.no_grad():
        for name in MODELS:
            model = _model(name)
            out[name] = model, model.log_prob(points).exp()
    return points, out


@pytest.mark.parametrize("name", MODELS)
def test_model_density_integrates_to_one_and_is_not_the_base(name, grid_densities):
    points, dens = grid_densities
    _, p = dens[name]
    cell = float(_GRID[1] - _GRID[0]) ** 2
    assert float(p.sum()) * cell == pytest.approx(1.0, abs=1e-2)
    base = torch.exp(-0.5 * (points ** 2).sum(-1)) / (2 * math.pi)
    assert float((p - base).abs().sum()) * cell > 0.1  # total variation from N(0, I)


@pytest.mark.parametrize("name", MODELS)
def test_model_samples_follow_its_density(name, grid_densities):
    points, dens = grid_densities
    model, p = dens[name]
    w = p / p.sum()
    grid_mean = w @ points
    grid_second = (w[:, None] * points).T @ points
    grid_entropy = -float((p * torch.log(p.clamp_min(1e-300))).sum()) * float(
        _GRID[1] - _GRID[0]) ** 2
    with torch.no_grad():
        x, log_p = model.sample_and_log_prob(20000, generator=1)
        torch.testing.assert_close(model.log_prob(x), log_p)
    torch.testing.assert_close(x.mean(0), grid_mean, atol=0.05, rtol=0)
    torch.testing.assert_close(x.T @ x / len(x), grid_second, atol=0.1, rtol=0.05)
    assert -float(log_p.mean()) == pytest.approx(grid_entropy, abs=0.05)


@pytest.mark.parametrize("name", MODELS)
def test_model_rejects_bad_x(name):
    model = MODELS[name]()
    with pytest.raises(ValueError, match="x"):
        model.log_prob(torch.randn(4, 3))
    with pytest.raises(ValueError, match="x"):
        model.log_prob(torch.tensor([[0.0, float("nan")]]))
    with pytest.raises(TypeError, match="x"):
        model.log_prob([[0.0, 1.0]])


def test_constructors_name_the_bad_argument():
    with pytest.raises(TypeError, match="features"):
        MAF(2.5)
    with pytest.raises(ValueError, match="layers"):
        RealNVP(2, layers=0)
    with pytest.raises(ValueError, match="mask"):
        AffineCoupling(3, "middle")
    with pytest.raises(ValueError, match="mask"):
        AdditiveCoupling(3, [0, 0, 0])
    with pytest.raises(ValueError, match="hidden"):
        AffineCoupling(3, hidden=())
    with pytest.raises(ValueError, match="perm"):
        Permutation([0, 0, 1])
    with pytest.raises(TypeError, match="constrained"):
        PlanarTransform(2, constrained="yes")


def test_actnorm_initialises_to_zero_mean_unit_variance_on_the_first_batch_only():
    layer = ActNorm(3)
    x = torch.tensor([1.0, -2.0, 5.0]) + torch.tensor([0.5, 2.0, 3.0]) * torch.randn(500, 3)
    z, _ = layer(x)
    torch.testing.assert_close(z.mean(0), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(z.std(0, unbiased=False), torch.ones(3), atol=1e-5, rtol=0)
    assert bool(layer.initialized)
    z2, _ = layer(x * 10)  # an ordinary affine layer from now on
    torch.testing.assert_close(z2, (x * 10 - x.mean(0)) / x.std(0, unbiased=False))


# --------------------------------------------------------------------------------------
# training
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("model_fn", [lambda: MAF(2, layers=5, hidden=(64, 64)),
                                      lambda: RealNVP(2, layers=8, hidden=(64, 64))],
                         ids=["MAF", "RealNVP"])
def test_training_on_moons_gets_within_half_a_nat_of_the_entropy(model_fn):
    torch.manual_seed(0)
    model = model_fn()
    x_train, x_test = toy2d("moons", 4000, seed=0), toy2d("moons", 4000, seed=1)
    epochs = 15  # 32 batches each: 480 steps
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    fit(model, lambda m, b: -m.log_prob(b).mean(), x_train, epochs=epochs, batch_size=128,
        optimizer=optimizer, scheduler=scheduler, progress=False, seed=0)
    with torch.no_grad():
        test_nll = -float(model.log_prob(x_test).mean())
    assert test_nll < get_toy2d("moons").entropy() + 0.5


@pytest.mark.gpu
@pytest.mark.parametrize("name", MODELS)
def test_log_prob_agrees_on_cuda_and_cpu(name):
    model = _model(name)
    x = torch.randn(512, 2, dtype=torch.float64)
    cpu = model.log_prob(x)
    cuda = model.to("cuda").log_prob(x.to("cuda"))
    torch.testing.assert_close(cuda.cpu(), cpu)
