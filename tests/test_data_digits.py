"""The bundled digits: fixed split, pixel conventions, loader."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits as sk_load_digits

from coursekit.data import DIGITS_SPLIT, digits_loader, load_digits
from coursekit.runtime import get_device


def _rows(x):
    return {tuple(r) for r in np.asarray(x).round(6).tolist()}


def test_split_sizes_are_fixed_disjoint_and_cover_the_data():
    sizes = {s: len(load_digits(s)[0]) for s in ("train", "val", "test")}
    assert sizes == DIGITS_SPLIT and sum(sizes.values()) == 1797
    x_all, y_all = load_digits("all")
    pieces = [load_digits(s) for s in ("train", "val", "test")]
    assert torch.equal(torch.cat([p[0] for p in pieces]), x_all)
    assert torch.equal(torch.cat([p[1] for p in pieces]), y_all)


def test_pixels_and_labels_match_scikit_learn():
    bunch = sk_load_digits()
    x, y = load_digits("all")
    assert x.dtype == torch.float32 and y.dtype == torch.int64
    assert x.min() == 0 and x.max() == 1
    # the same multiset of (image, label) pairs as scikit-learn's, just permuted
    ours = sorted(zip(map(tuple, (x.numpy() * 16).round().astype(int).tolist()), y.tolist()))
    theirs = sorted(zip(map(tuple, bunch.data.astype(int).tolist()), bunch.target.tolist()))
    assert ours == theirs


def test_split_is_stable_across_calls():
    a, _ = load_digits("test")
    b, _ = load_digits("test")
    assert torch.equal(a, b)


def test_static_binarisation_is_a_fixed_bernoulli_draw():
    grey, _ = load_digits("train")
    a, _ = load_digits("train", binarize="static")
    b, _ = load_digits("train", binarize="static")
    assert torch.equal(a, b)
    assert set(a.unique().tolist()) <= {0.0, 1.0}
    # pixels with intensity 0 are always off, intensity 16 always on
    assert a[grey == 0].sum() == 0 and (a[grey == 1] == 1).all()
    # overall on-rate matches the mean intensity (Bernoulli(p) draws)
    assert abs(a.mean().item() - grey.mean().item()) < 0.01


def test_pixels_do_not_depend_on_the_default_dtype():
    before = [load_digits("val", binarize="static")[0],
              load_digits("val", binarize="dynamic", seed=1)[0],
              load_digits("val", dequantize=True, seed=1)[0]]
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        after = [load_digits("val", binarize="static")[0],
                 load_digits("val", binarize="dynamic", seed=1)[0],
                 load_digits("val", dequantize=True, seed=1)[0]]
    finally:
        torch.set_default_dtype(old)
    for a, b in zip(before, after):
        assert b.dtype == torch.float32 and torch.equal(a, b)


def test_dynamic_binarisation_changes_with_the_seed_and_is_unbiased():
    grey, _ = load_digits("val")
    draws = torch.stack([load_digits("val", binarize="dynamic", seed=s)[0] for s in range(200)])
    assert not torch.equal(draws[0], draws[1])
    assert torch.equal(draws[3], load_digits("val", binarize="dynamic", seed=3)[0])
    err = (draws.mean(0) - grey).abs().max().item()
    assert err < 0.15  # 200 draws: std of the mean <= 0.5 / sqrt(200) = 0.035


def test_threshold_and_dequantisation():
    grey, _ = load_digits("test")
    thr, _ = load_digits("test", binarize="threshold")
    assert torch.equal(thr, (grey >= 0.5).float())
    deq, _ = load_digits("test", dequantize=True, seed=0)
    assert (deq >= 0).all() and (deq < 1).all()
    counts = torch.floor(deq * 17)
    assert torch.equal(counts, torch.round(grey * 16))


def test_images_shape_and_device():
    x, y = load_digits("val", as_images=True, device="cpu")
    assert x.shape == (300, 1, 8, 8) and y.shape == (300,)


def test_loader_batches_and_dynamic_resampling_per_epoch():
    loader = digits_loader("train", batch_size=100, binarize="dynamic", seed=0)
    assert len(loader) == 12
    first = torch.cat([xb for xb, _ in loader])
    second = torch.cat([xb for xb, _ in loader])
    assert first.shape == (1197, 64)
    assert not torch.equal(first.sum(0), second.sum(0))
    labels = sorted(torch.cat([yb for _, yb in loader]).tolist())
    assert labels == sorted(load_digits("train")[1].tolist())
    fixed = digits_loader("test", batch_size=64)
    assert torch.equal(torch.cat([xb for xb, _ in fixed]), load_digits("test")[0])


def test_bad_input():
    with pytest.raises(ValueError, match="split: expected one of"):
        load_digits("training")
    with pytest.raises(ValueError, match="binarize: expected one of"):
        load_digits("train", binarize="yes")
    with pytest.raises(ValueError, match="dequantize"):
        load_digits("train", binarize="static", dequantize=True)
    with pytest.raises(ValueError, match="batch_size: expected an int >= 1"):
        digits_loader("train", batch_size=0)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_a_device_this_machine_lacks_is_named_not_a_driver_error():
    with pytest.raises(ValueError, match="device: 'cuda' was requested but CUDA is not available"):
        load_digits(device="cuda")


@pytest.mark.parametrize("device", ["tpu", "gpu"])
def test_an_unknown_device_lists_the_choices(device):
    with pytest.raises(ValueError, match=rf"device: expected one of .*got '{device}'"):
        load_digits(device=device)


def test_auto_device_is_accepted():
    x, _ = load_digits("val", device="auto")
    assert x.device.type == get_device("auto").type
