"""Tests of PixelCNN, GatedPixelCNN, CausalTransformer and receptive_field: normalisation by
brute-force sums, the autoregressive property by Jacobians, the blind spot against a
hand-propagated receptive field, exact masks, parameter counts by formula, conditional
sampling, argument checks and a training smoke test against independent pixels."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from coursekit.autoregressive import (
    CausalTransformer,
    GatedPixelCNN,
    MaskedConv2d,
    PixelCNN,
    nll_loss,
    receptive_field,
)
from coursekit.data import load_digits
from coursekit.train import fit

F64 = torch.float64


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny(name: str, features: int = 16, smaller: bool = False):
    """Small models with random weights (seeded); ``smaller`` for the 65,536-image sums."""
    torch.manual_seed(0)
    if name == "pixelcnn":
        return PixelCNN(features, channels=4 if smaller else 8, layers=3)
    if name == "gated":
        return GatedPixelCNN(features, channels=4 if smaller else 8, layers=2 if smaller else 3,
                             kernel_size=3)
    if smaller:
        return CausalTransformer(features, d_model=8, heads=2, layers=1, dim_feedforward=16,
                                 dropout=0.0)
    return CausalTransformer(features, d_model=16, heads=2, layers=2, dropout=0.0)


MODELS = ["pixelcnn", "gated", "transformer"]


def all_binary(n: int) -> torch.Tensor:
    """Every configuration of ``n`` bits, ``(2**n, n)`` float64."""
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)), dtype=F64)


# --------------------------------------------------------------------------------------
# masks
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("k, kind, expected", [
    (3, "A", [[1, 1, 1], [1, 0, 0], [0, 0, 0]]),
    (3, "B", [[1, 1, 1], [1, 1, 0], [0, 0, 0]]),
    (5, "A", [[1, 1, 1, 1, 1], [1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [0] * 5, [0] * 5]),
    (5, "B", [[1, 1, 1, 1, 1], [1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [0] * 5, [0] * 5]),
])
def test_masked_conv_masks_are_exact(k, kind, expected):
    conv = MaskedConv2d(2, 3, k, kind)
    assert torch.equal(conv.mask, torch.tensor(expected, dtype=torch.float32))
    # the output at the centre of a k x k image ignores every masked input pixel
    x = torch.randn(1, 2, k, k, requires_grad=True)
    conv(x)[0, :, k // 2, k // 2].sum().backward()
    seen = (x.grad.abs().sum(1)[0] > 0).float()
    assert torch.equal(seen, conv.mask)


def test_masked_conv_rejects_bad_arguments():
    with pytest.raises(ValueError, match="^mask_type:"):
        MaskedConv2d(1, 1, 3, "C")
    with pytest.raises(ValueError, match="^kernel_size:"):
        MaskedConv2d(1, 1, 4)


# --------------------------------------------------------------------------------------
# exact likelihood: normalisation and the autoregressive property
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", MODELS)
def test_probabilities_sum_to_one_over_all_images(name):
    model = tiny(name, smaller=True).to(F64).eval()
    with torch.no_grad():  # larger weights: peaked conditionals, so a leak would show
        for p in model.parameters():
            p.mul_(3.0)
        log_p = torch.cat([model.log_prob(x) for x in all_binary(16).split(16384)])
    assert log_p.exp().sum().item() == pytest.approx(1.0, abs=1e-4)
    assert log_p.max().item() > -16 * np.log(2) + 3  # far from uniform: the test has teeth


@pytest.mark.parametrize("name", MODELS)
def test_logit_j_depends_only_on_earlier_pixels(name):
    model = tiny(name).to(F64).eval()
    torch.manual_seed(1)
    jac = sum(torch.autograd.functional.jacobian(
        lambda u: model.conditional_params(u)[0, :, 0], torch.rand(1, 16, dtype=F64))[:, 0]
        .abs() for _ in range(3))
    earlier = torch.ones(16, 16, dtype=torch.bool).tril(-1)  # [j, i]: i < j
    assert torch.all(jac[~earlier] == 0)
    if name == "pixelcnn":  # blind spot: x_3 (row 0, col 3) is never seen by x_4 (row 1, col 0)
        assert jac[4, 3] == 0 and jac[4, 0] > 0
    else:  # three layers reach the whole 4x4 image: every earlier pixel matters
        assert torch.all(jac[earlier] > 0)


# --------------------------------------------------------------------------------------
# the blind spot
# --------------------------------------------------------------------------------------
def propagate(footprints: list[np.ndarray], position: tuple[int, int], shape) -> np.ndarray:
    """Inputs reachable from ``position`` through convolutions with these 0/1 footprints
    (same padding: a path through a position outside the image carries nothing)."""
    reach = np.zeros(shape, dtype=bool)
    reach[position] = True
    for fp in footprints:
        c = fp.shape[0] // 2
        nxt = np.zeros_like(reach)
        for (r, col), (i, j) in itertools.product(zip(*np.nonzero(reach)),
                                                 zip(*np.nonzero(fp))):
            rr, cc = r + i - c, col + j - c
            if 0 <= rr < shape[0] and 0 <= cc < shape[1]:
                nxt[rr, cc] = True
        reach = nxt
    return reach


def test_pixelcnn_blind_spot_and_gated_pixelcnn_sees_everything_in_reach():
    torch.manual_seed(0)
    pixelcnn = PixelCNN(64, channels=16, layers=3, kernel_size=3)
    gated = GatedPixelCNN(64, channels=16, layers=3, kernel_size=3)
    pos = (4, 4)
    a = np.array([[1, 1, 1], [1, 0, 0], [0, 0, 0]])
    b = np.array([[1, 1, 1], [1, 1, 0], [0, 0, 0]])
    expected = propagate([b, b, a], pos, (8, 8))
    seen = receptive_field(pixelcnn, pos, n_inputs=8).numpy()
    np.testing.assert_array_equal(seen, expected)
    # what three 3x3 layers could reach causally: rows 1..3 within 3 columns of col 4, and
    # cols 1..3 of row 4
    rows, cols = np.indices((8, 8))
    allowed = (((rows >= 1) & (rows <= 3)) | ((rows == 4) & (cols < 4))) & (abs(cols - 4) <= 3)
    # the blind spot: (3, 6), (3, 7) one row up and 2-3 columns right, (2, 7) two rows up and
    # 3 right; earlier in raster order, within reach, never seen by PixelCNN
    blind = np.zeros((8, 8), dtype=bool)
    blind[3, 6] = blind[3, 7] = blind[2, 7] = True
    np.testing.assert_array_equal(allowed & ~seen, blind)
    gated_seen = receptive_field(gated, pos, n_inputs=8).numpy()
    assert np.all(gated_seen[allowed])
    earlier = rows * 8 + cols < pos[0] * 8 + pos[1]
    assert not np.any(gated_seen & ~earlier) and not np.any(seen & ~earlier)


def test_receptive_field_accepts_flat_and_pair_positions():
    model = tiny("transformer", 64)
    field = receptive_field(model, 35, image_shape=(8, 8), as_mask=False)
    assert field.shape == (8, 8) and field.dtype == torch.float32
    np.testing.assert_array_equal(field.flatten()[:35] > 0, np.ones(35, dtype=bool))
    assert torch.all(field.flatten()[35:] == 0)
    assert torch.equal(receptive_field(model, (4, 3)), field > 0)
    with pytest.raises(ValueError, match="^position:"):
        receptive_field(model, (8, 0))
    with pytest.raises(ValueError, match="^image_shape:"):
        receptive_field(model, 3, image_shape=(4, 4))


# --------------------------------------------------------------------------------------
# parameter counts, sampling, argument checks
# --------------------------------------------------------------------------------------
def test_parameter_counts_match_formulas():
    c, k, layers = 8, 5, 3
    pixelcnn = PixelCNN(64, channels=c, layers=layers, kernel_size=k)
    head = (c * c + c) + (c + 1)
    assert pixelcnn.n_parameters == (k * k * c + c) + (layers - 1) * (k * k * c * c + c) + head
    p = k // 2
    gated = GatedPixelCNN(64, channels=c, layers=layers, kernel_size=k)

    def gated_layer(cin):  # vertical, horizontal, link, out
        return ((p + 1) * k * cin * 2 * c + 2 * c) + ((p + 1) * cin * 2 * c + 2 * c) \
            + (4 * c * c + 2 * c) + (c * c + c)

    assert gated.n_parameters == gated_layer(1) + (layers - 1) * gated_layer(c) + head
    d, ff, n = 16, 24, 64
    transformer = CausalTransformer(n, d_model=d, heads=4, layers=2, dim_feedforward=ff)
    block = (3 * d * d + 3 * d) + (d * d + d) + (d * ff + ff) + (ff * d + d) + 4 * d
    assert transformer.n_parameters == 2 * d + d + n * d + 2 * block + 2 * d + (d + 1)


@pytest.mark.parametrize("name", MODELS)
def test_conditional_sampling_keeps_the_top_half_and_is_reproducible(name):
    model = tiny(name, 64)
    x, _ = load_digits("test", binarize="static")
    observed = x[:6]
    top = torch.arange(64) < 32
    a = model.sample(6, observed=observed, observed_mask=top.expand(6, -1), generator=3)
    b = model.sample(6, observed=observed, observed_mask=top, generator=3)
    c = model.sample(6, observed=observed, observed_mask=top, generator=4)
    assert a.shape == (6, 64) and torch.all((a == 0) | (a == 1))
    assert torch.equal(a[:, :32], observed[:, :32])
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("name", MODELS)
def test_bad_input_is_named(name):
    model = tiny(name)
    good = torch.zeros(3, 16)
    for bad in (torch.zeros(3, 15), torch.zeros(16), good + 0.5,
                torch.where(torch.eye(3, 16) > 0, torch.nan, good)):
        with pytest.raises(ValueError, match="^x:"):
            model.log_prob(bad)


def test_bad_constructor_arguments_are_named():
    for cls in (PixelCNN, GatedPixelCNN):
        with pytest.raises(ValueError, match="^image_shape:"):
            cls(64, image_shape=(4, 8))
        with pytest.raises(ValueError, match="^image_shape:"):
            cls(10)
        with pytest.raises(TypeError, match="^image_shape:"):
            cls(64, image_shape=(8.0, 8))
        with pytest.raises(ValueError, match="^kernel_size:"):
            cls(64, kernel_size=2)
    assert PixelCNN(12, image_shape=(3, 4)).image_shape == (3, 4)
    with pytest.raises(ValueError, match="^heads:"):
        CausalTransformer(16, d_model=10, heads=4)
    with pytest.raises(ValueError, match="^dropout:"):
        CausalTransformer(16, dropout=1.5)


# --------------------------------------------------------------------------------------
# training beats independent pixels
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, model_kwargs, lr", [  # each about 2-4 s of CPU time
    ("pixelcnn", dict(channels=16, layers=3), 1e-2),
    ("gated", dict(channels=8, layers=3, kernel_size=3), 2e-2),
    ("transformer", dict(d_model=16, heads=2, layers=1, dropout=0.0), 1e-2),
])
def test_training_beats_independent_pixels(name, model_kwargs, lr):
    x_train, _ = load_digits("train", binarize="static")
    x_test, _ = load_digits("test", binarize="static")
    p = (x_train.sum(0) + 1) / (x_train.shape[0] + 2)  # per-pixel Bernoulli, Laplace smoothed
    independent = -(x_test * p.log() + (1 - x_test) * (1 - p).log()).sum(1).mean().item()
    torch.manual_seed(0)
    model = {"pixelcnn": PixelCNN, "gated": GatedPixelCNN,
             "transformer": CausalTransformer}[name](64, **model_kwargs)
    fit(model, nll_loss, x_train, epochs=6, batch_size=64, lr=lr, progress=False, seed=0)
    with torch.no_grad():
        test_nll = -model.eval().log_prob(x_test).mean().item()
    assert test_nll < independent - 0.5  # independent pixels: 27.26 nats


# --------------------------------------------------------------------------------------
# devices
# --------------------------------------------------------------------------------------
@pytest.mark.gpu
@pytest.mark.parametrize("name", MODELS)
def test_cuda_and_cpu_log_prob_agree(name):
    model = tiny(name, 64).eval()
    x, _ = load_digits("test", binarize="static")
    with torch.no_grad():
        cpu = model.log_prob(x)
        cuda = model.to("cuda").log_prob(x.to("cuda")).cpu()
    torch.testing.assert_close(cuda, cpu, atol=1e-3, rtol=1e-4)
