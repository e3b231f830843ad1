"""FVSBN, NADE and MADE (lecture 05): normalisation, the autoregressive property, parameter
counts, independent log-likelihoods, sampling, input checks and a training smoke test."""

import itertools
import math

import pytest
import torch
import torch.distributions as D
from torch.autograd.functional import jacobian

from coursekit.autoregressive import (
    FVSBN,
    MADE,
    NADE,
    AutoregressiveModel,
    MixtureOfGaussiansOutput,
    connectivity,
    count_parameters,
    nll_loss,
    order_agnostic_loss,
)
from coursekit.data import load_digits
from coursekit.train import fit

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _ordering(n, seed):
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))


def _all_binary(n):
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)), dtype=torch.float64)


def _models(n, seed=0):
    """One of each binary model, float64, random ordering and generic random init."""
    torch.manual_seed(seed)
    return {
        "fvsbn": FVSBN(n, ordering=_ordering(n, seed)),
        "nade": NADE(n, hidden=7, ordering=_ordering(n, seed + 1)),
        "made": MADE(n, hidden_sizes=(16, 16), ordering=_ordering(n, seed + 2)),
    }


# --------------------------------------------------------------------------------------
# a normalised density
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["fvsbn", "nade", "made", "made_ensemble"])
def test_probabilities_of_all_binary_vectors_sum_to_one(name):
    n = 10
    if name == "made_ensemble":
        torch.manual_seed(0)
        model = MADE(n, hidden_sizes=(16,), num_masks=3, seed=1).double()
        log_p = model.log_prob_ensemble(_all_binary(n))
        assert model.mask_index == 0  # the mask in use is restored
    else:
        model = _models(n)[name].double()
        log_p = model.log_prob(_all_binary(n))
    assert log_p.shape == (2**n,)
    p = log_p.detach().exp()
    assert float(p.sum()) == pytest.approx(1.0, abs=1e-5)
    assert float(p.max()) < 0.1  # not a point mass that sums to one trivially


def test_gaussian_made_integrates_to_one_on_a_grid():
    torch.manual_seed(0)
    model = MADE(2, hidden_sizes=(8,), output="gaussian", ordering=[1, 0]).double()
    t = torch.linspace(-8, 8, 801, dtype=torch.float64)
    grid = torch.cartesian_prod(t, t)
    with torch.no_grad():
        density = model.log_prob(grid).exp()
    integral = float(density.sum()) * float(t[1] - t[0]) ** 2
    assert integral == pytest.approx(1.0, abs=1e-3)


# --------------------------------------------------------------------------------------
# the autoregressive property, by autograd
# --------------------------------------------------------------------------------------
def _check_jacobian(model, ordering):
    n = model.features
    x = torch.randn(32, n, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    # examples are independent, so d sum_b out[b, j, p] / d x[b, k] = d out[b, j, p] / d x[b, k]
    J = jacobian(lambda x: model.conditional_params(x).sum(0), x)  # (n, n_params, 32, n)
    depends = J.abs().amax(dim=(1, 2)) > 0  # (output j, input k), at some of the 32 inputs
    position = torch.empty(n, dtype=torch.long)
    position[ordering] = torch.arange(n)
    earlier = position[None, :] < position[:, None]  # input k comes before output j
    assert not depends[~earlier].any()
    first = ordering[0]
    assert all(depends[j, earlier[j]].any() for j in range(n) if j != first)


@pytest.mark.parametrize("name", ["fvsbn", "nade", "made"])
@pytest.mark.parametrize("seed", [0, 1])
def test_conditionals_depend_only_on_earlier_dimensions(name, seed):
    model = _models(6, seed)[name].double()
    _check_jacobian(model, model.ordering)


@pytest.mark.parametrize("output", ["gaussian", "mog"])
def test_made_continuous_heads_are_autoregressive(output):
    torch.manual_seed(0)
    model = MADE(5, hidden_sizes=(20,), output=output, ordering=_ordering(5, 4)).double()
    _check_jacobian(model, model.ordering)


def test_made_masks_follow_the_ordering_after_next_mask():
    torch.manual_seed(0)
    model = MADE(6, hidden_sizes=(24, 24), num_masks=3, seed=5).double()
    assert torch.equal(model.orderings[0], torch.arange(6))
    for index in [1, 2, 0]:
        model.next_mask()
        assert int(model.mask_index) == index
        assert torch.equal(model.ordering, model.orderings[index])
        _check_jacobian(model, model.ordering)
    assert not torch.equal(model.orderings[1], model.orderings[2])
    loss = order_agnostic_loss(model, torch.zeros(2, 6, dtype=torch.float64))
    assert int(model.mask_index) == 1 and loss.ndim == 0


# --------------------------------------------------------------------------------------
# MADE's worked example: 3 variables, ordering x2, x3, x1
# --------------------------------------------------------------------------------------
def test_made_worked_example_connectivity():
    model = MADE(3, hidden_sizes=(4, 4), ordering=[1, 2, 0])
    C = connectivity(model.masks())  # (output j, input k)
    expected = torch.tensor([[0, 1, 1],   # x1 | x2, x3
                             [0, 0, 0],   # x2 | nothing
                             [0, 1, 0]],  # x3 | x2
                            dtype=C.dtype)
    assert torch.equal(C, expected)
    # the output layer holds n_params rows per dimension, each with its dimension's mask
    gauss = MADE(3, hidden_sizes=(4,), output="gaussian", ordering=[1, 2, 0])
    assert gauss.output_layer.mask.shape == (6, 4)
    assert torch.equal(connectivity(gauss.masks()), expected)


# --------------------------------------------------------------------------------------
# parameter counts
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 2, 10, 64])
def test_fvsbn_parameter_count(n):
    assert count_parameters(FVSBN(n)) == FVSBN.n_parameters_formula(n) == n * (n + 1) // 2


@pytest.mark.parametrize("n, d", [(1, 1), (10, 7), (64, 100)])
def test_nade_parameter_count(n, d):
    assert count_parameters(NADE(n, d)) == NADE.n_parameters_formula(n, d) == 2 * n * d + n + d


# --------------------------------------------------------------------------------------
# log-likelihoods against independent computations
# --------------------------------------------------------------------------------------
def test_fvsbn_log_prob_equals_the_chain_rule_by_hand():
    n = 7
    model = _models(n)["fvsbn"].double()
    with torch.no_grad():
        model.bias.normal_()
    order = model.ordering.tolist()
    x = torch.bernoulli(torch.full((5, n), 0.5, dtype=torch.float64))
    alpha, alpha0 = model.weight.detach(), model.bias.detach()
    expected = torch.zeros(5, dtype=torch.float64)
    for i, j in enumerate(order):
        # row i of the strictly lower triangle starts at i(i-1)/2 in the weight vector
        logit = alpha0[j] + sum(alpha[i * (i - 1) // 2 + k] * x[:, order[k]] for k in range(i))
        p = 1 / (1 + torch.exp(-logit))
        expected += torch.where(x[:, j] == 1, torch.log(p), torch.log1p(-p))
    assert torch.allclose(model.log_prob(x), expected, atol=1e-12)


def test_nade_running_sum_equals_naive_recomputation():
    torch.manual_seed(0)
    model = NADE(12, hidden=9, ordering=_ordering(12, 7)).double()
    with torch.no_grad():
        model.c.normal_()
        model.b.normal_()
    x = torch.bernoulli(torch.full((20, 12), 0.5, dtype=torch.float64))
    fast, naive = model.conditional_params(x), model.conditional_params_naive(x)
    assert fast.shape == naive.shape == (20, 12, 1)
    assert torch.allclose(fast, naive, atol=1e-12)


def _made_log_prob_by_torch(params, x, output):
    soft = lambda raw: 6.0 * torch.tanh(raw / 6.0) - 1.0  # the heads' documented clamp  # noqa: E731
    if output == "gaussian":
        dist = D.Normal(params[..., 0], soft(params[..., 1]).exp())
        return dist.log_prob(x).sum(-1)
    k = params.shape[-1] // 3
    logits, mean, raw = params[..., :k], params[..., k:2 * k], params[..., 2 * k:]
    dist = D.MixtureSameFamily(D.Categorical(logits=logits), D.Normal(mean, soft(raw).exp()))
    return dist.log_prob(x).sum(-1)


@pytest.mark.parametrize("output", ["gaussian", "mog"])
def test_made_continuous_log_prob_matches_torch_distributions(output):
    torch.manual_seed(0)
    head = MixtureOfGaussiansOutput(3) if output == "mog" else output
    model = MADE(4, hidden_sizes=(16,), output=head, ordering=[2, 0, 3, 1]).double()
    x = 2 * torch.randn(8, 4, dtype=torch.float64)
    params = model.conditional_params(x)
    assert params.shape == (8, 4, 9 if output == "mog" else 2)
    assert torch.allclose(model.log_prob(x), _made_log_prob_by_torch(params, x, output),
                          atol=1e-10)


# --------------------------------------------------------------------------------------
# sampling
# --------------------------------------------------------------------------------------
def test_nade_fast_sampler_matches_the_generic_one():
    model = _models(10)["nade"].double()
    with torch.no_grad():
        model.b.normal_()
    fast = model.sample(200, generator=11)
    generic = AutoregressiveModel.sample(model, 200, generator=11)
    assert torch.equal(fast, generic)
    observed = torch.bernoulli(torch.full((10,), 0.5, dtype=torch.float64))
    mask = torch.arange(10) % 3 == 0
    fast = model.sample(50, observed, mask, generator=torch.Generator().manual_seed(2))
    generic = AutoregressiveModel.sample(model, 50, observed, mask,
                                         generator=torch.Generator().manual_seed(2))
    assert torch.equal(fast, generic)


def test_nade_samples_follow_its_probabilities():
    n = 4
    torch.manual_seed(0)
    model = NADE(n, hidden=5).double()
    with torch.no_grad():
        model.W.mul_(3)
        model.b.normal_(generator=torch.Generator().manual_seed(0))
    x = _all_binary(n)
    probs = model.log_prob(x).exp().detach()
    draws = model.sample(20000, generator=0)
    index = (draws * 2 ** torch.arange(n - 1, -1, -1, dtype=torch.float64)).sum(1).long()
    counts = torch.bincount(index, minlength=2**n).double()
    expected = 20000 * probs
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 40  # 15 degrees of freedom: P(chi2 > 40) < 0.001


@pytest.mark.parametrize("name", ["fvsbn", "nade", "made"])
def test_sample_keeps_observed_dimensions_and_is_reproducible(name):
    n = 8
    model = _models(n)[name].double()
    assert model.sample(5).shape == (5, n)
    observed = torch.bernoulli(torch.full((6, n), 0.5, dtype=torch.float64),
                               generator=torch.Generator().manual_seed(1))
    mask = torch.rand(6, n, generator=torch.Generator().manual_seed(2)) < 0.5
    a = model.sample(6, observed, mask, generator=123)
    b = model.sample(6, observed, mask, generator=torch.Generator().manual_seed(123))
    assert torch.equal(a, b)
    assert torch.equal(a[mask], observed[mask])
    assert ((a == 0) | (a == 1)).all()
    draws = model.sample(400, generator=1)
    assert not torch.equal(draws, model.sample(400, generator=2))


def test_made_gaussian_sample_shapes_and_observed():
    model = MADE(3, hidden_sizes=(8,), output="mog")
    observed = torch.tensor([0.5, -1.0, 2.0])
    mask = torch.tensor([False, True, False])
    x = model.sample(10, observed, mask, generator=0)
    assert x.shape == (10, 3) and torch.isfinite(x).all()
    assert (x[:, 1] == -1.0).all() and x[:, 0].std() > 0


# --------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------
def _constructors():
    return {"fvsbn": lambda **kw: FVSBN(4, **kw), "nade": lambda **kw: NADE(4, 3, **kw),
            "made": lambda **kw: MADE(4, (8,), **kw)}


@pytest.mark.parametrize("name", ["fvsbn", "nade", "made"])
def test_bad_input_names_the_argument(name):
    model = _constructors()[name]()
    bad = {"wrong shape": torch.zeros(3, 5), "one-dimensional": torch.zeros(4),
           "non-binary": torch.full((2, 4), 0.5), "NaN": torch.tensor([[0.0, 1, float("nan"), 0]])}
    for x in bad.values():
        with pytest.raises(ValueError, match=r"^x: "):
            model.log_prob(x)
    with pytest.raises(TypeError, match=r"^x: "):
        model.log_prob([[0.0, 1.0, 0.0, 1.0]])
    for ordering in ([0, 1, 2], [0, 1, 1, 2], [1, 2, 3, 4]):
        with pytest.raises(ValueError, match=r"^ordering: "):
            _constructors()[name](ordering=ordering)
    with pytest.raises(ValueError, match=r"^observed: "):
        model.sample(2, torch.full((4,), float("nan")), torch.ones(4, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"^observed: "):
        model.sample(2, torch.zeros(3, 4), torch.ones(4, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"^observed_mask: "):
        model.sample(2, torch.zeros(4), torch.ones(5, dtype=torch.bool))


def test_bad_constructor_arguments():
    with pytest.raises(TypeError, match=r"^features: "):
        FVSBN(4.0)
    with pytest.raises(ValueError, match=r"^hidden: "):
        NADE(4, hidden=0)
    with pytest.raises(ValueError, match=r"^hidden_sizes: "):
        MADE(4, hidden_sizes=())
    with pytest.raises(ValueError, match=r"^num_masks: "):
        MADE(4, num_masks=0)
    with pytest.raises(ValueError, match=r"^output: "):
        MADE(4, output="poisson")
    with pytest.raises(TypeError, match=r"^activation: "):
        MADE(4, activation=torch.relu)
    with pytest.raises(ValueError, match=r"^n_masks: "):
        MADE(4, num_masks=2).log_prob_ensemble(torch.zeros(1, 4), n_masks=3)


# --------------------------------------------------------------------------------------
# training on binarised digits
# --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def digits():
    x_train, _ = load_digits("train", binarize="static")
    x_test, _ = load_digits("test", binarize="static")
    p = (x_train.sum(0) + 1) / (len(x_train) + 2)  # Laplace-smoothed pixel frequencies
    independent = -(x_test * p.log() + (1 - x_test) * (1 - p).log()).sum(1).mean()
    return x_train, x_test, float(independent)


@pytest.mark.parametrize("name, epochs, lr", [
    ("fvsbn", 6, 2e-2), ("nade", 5, 1e-2), ("made", 6, 1e-2), ("made_order_agnostic", 6, 1e-2),
])
def test_training_beats_independent_pixels(digits, name, epochs, lr):
    x_train, x_test, independent = digits
    torch.manual_seed(0)
    model, loss = {
        "fvsbn": (FVSBN(64), nll_loss),
        "nade": (NADE(64, hidden=32), nll_loss),
        "made": (MADE(64, hidden_sizes=(256,)), nll_loss),
        "made_order_agnostic": (MADE(64, hidden_sizes=(256,), num_masks=4), order_agnostic_loss),
    }[name]
    with torch.no_grad():
        before = float(nll_loss(model, x_test))
    fit(model, loss, x_train, epochs=epochs, batch_size=64, lr=lr, progress=False, seed=0)
    with torch.no_grad():
        log_p = model.log_prob_ensemble(x_test) if name.endswith("agnostic") else model.log_prob(
            x_test)
    test_nll = float(-log_p.mean())
    assert test_nll < independent < before
    assert math.isfinite(test_nll)


# --------------------------------------------------------------------------------------
# devices
# --------------------------------------------------------------------------------------
@pytest.mark.gpu
@pytest.mark.parametrize("name", ["fvsbn", "nade", "made"])
def test_cuda_log_prob_and_sample_match_cpu(name):
    model = _models(10)[name].double()
    x = _all_binary(10)[::7]
    expected = model.log_prob(x)
    model.to("cuda")
    assert torch.allclose(model.log_prob(x.cuda()).cpu(), expected, atol=1e-10)
    draws = model.sample(16, generator=0)
    assert draws.device.type == "cuda" and draws.shape == (16, 10)
