"""scikit-learn's bundled 8x8 handwritten digits: the course's offline image data.

1,797 grey-scale images of 8x8 pixels with integer intensities 0..16 and
labels 0..9 (``sklearn.datasets.load_digits``; it ships inside scikit-learn,
so nothing is downloaded).

The split is fixed for the whole course: a permutation of the 1,797 indices
drawn with ``numpy.random.RandomState(0)``; the first 1,197 are ``train``, the
next 300 ``val`` and the last 300 ``test`` (:data:`DIGITS_SPLIT`).

Pixel conventions (``x`` is float32):

* default: intensities divided by 16, in [0, 1];
* ``binarize="static"``: one Bernoulli draw per pixel with probability
  intensity/16, the same draw every call (seeded by ``binarize_seed``);
* ``binarize="dynamic"``: a fresh Bernoulli draw every call (``seed``);
  :func:`digits_loader` re-draws every epoch;
* ``binarize="threshold"``: 1 where intensity >= 8;
* ``dequantize=True``: (intensity + U(0, 1)) / 17, a continuous density on
  [0, 1] whose log-likelihood relates to the discrete one (lecture 10).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from coursekit._validation import check_count, check_device
from coursekit.runtime import make_generator

DIGITS_SPLIT = {"train": 1197, "val": 300, "test": 300}
SPLITS = ("train", "val", "test", "all")
BINARIZE = (None, "static", "dynamic", "threshold")
N_LEVELS = 17  # intensities 0..16


@lru_cache(maxsize=1)
def _raw_digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    order = np.random.RandomState(0).permutation(len(bunch.target))
    return bunch.data[order].astype(np.int64), bunch.target[order].astype(np.int64)


def _split_slice(split: str) -> slice:
    if split not in SPLITS:
        raise ValueError(f"split: expected one of {SPLITS}, got {split!r}")
    n_train, n_val = DIGITS_SPLIT["train"], DIGITS_SPLIT["val"]
    return {
        "train": slice(0, n_train),
        "val": slice(n_train, n_train + n_val),
        "test": slice(n_train + n_val, None),
        "all": slice(None),
    }[split]


def load_digits(
    split: str = "train",
    binarize: str | None = None,
    dequantize: bool = False,
    as_images: bool = False,
    seed: int | torch.Generator | None = None,
    binarize_seed: int = 0,
    device: str | torch.device | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Load a split of the digits as tensors ``(x, y)``.

    Args:
        split: ``"train"`` (1,197), ``"val"`` (300), ``"test"`` (300) or ``"all"``.
        binarize: ``None``, ``"static"``, ``"dynamic"`` or ``"threshold"`` (module doc).
        dequantize: add uniform noise and rescale to a continuous [0, 1] density.
        as_images: return ``x`` of shape ``(n, 1, 8, 8)`` instead of ``(n, 64)``.
        seed: randomness for ``"dynamic"`` binarisation and dequantisation.
        binarize_seed: the fixed seed of ``"static"`` binarisation.
        device: where to put the tensors (default: CPU).

    Returns:
        ``x``: float32 ``(n, 64)`` or ``(n, 1, 8, 8)``; ``y``: int64 labels ``(n,)``.
    """
    if binarize not in BINARIZE:
        raise ValueError(f"binarize: expected one of {BINARIZE}, got {binarize!r}")
    device = check_device(device)
    if binarize is not None and dequantize:
        raise ValueError("dequantize: cannot dequantize binarised pixels; "
                         "use binarize=None with dequantize=True")
    data, labels = _raw_digits()
    sl = _split_slice(split)
    counts = torch.from_numpy(data[sl])
    y = torch.from_numpy(labels[sl])
    x = _transform(counts, binarize, dequantize, seed, binarize_seed, offset=sl.start or 0)
    if as_images:
        x = x.reshape(-1, 1, 8, 8)
    if device is not None:
        x, y = x.to(device), y.to(device)
    return x, y


def _transform(counts, binarize, dequantize, seed, binarize_seed, offset=0):
    """Map integer intensities ``(n, 64)`` to float32 pixels per the module's conventions.

    Random draws use an explicit float32 dtype, so the pixels do not depend on
    ``torch.get_default_dtype()`` (a lecture may switch it to float64).
    """
    probs = counts.to(torch.float32) / (N_LEVELS - 1)
    if binarize == "threshold":
        return (counts >= 8).to(torch.float32)
    if binarize == "static":
        # one fixed draw for the whole data set, so a split's pixels never change
        gen = make_generator(binarize_seed)
        full = torch.rand(len(_raw_digits()[0]), 64, generator=gen, dtype=torch.float32)
        return (full[offset : offset + len(counts)] < probs).to(torch.float32)
    if binarize == "dynamic":
        return torch.bernoulli(probs, generator=make_generator(seed))
    if dequantize:
        noise = torch.rand(counts.shape, generator=make_generator(seed), dtype=torch.float32)
        return (counts.to(torch.float32) + noise) / N_LEVELS
    return probs


class DigitsDataset(Dataset):
    """A split of the digits as a ``Dataset`` of ``(x, y)`` pairs.

    With ``binarize="dynamic"`` (or ``dequantize=True``) call :meth:`resample`
    to draw new pixels; :func:`digits_loader` does so at every epoch.
    """

    def __init__(self, split="train", binarize=None, dequantize=False, as_images=False,
                 seed=None):
        self.split, self.binarize, self.dequantize = split, binarize, dequantize
        self.as_images = as_images
        self._gen = make_generator(seed)
        self.counts = torch.from_numpy(_raw_digits()[0][_split_slice(split)])
        self.y = load_digits(split)[1]
        self._offset = _split_slice(split).start or 0
        self.resample()

    def resample(self) -> None:
        x = _transform(self.counts, self.binarize, self.dequantize, self._gen, 0, self._offset)
        self.x = x.reshape(-1, 1, 8, 8) if self.as_images else x

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


class _ResamplingLoader:
    """Iterates a DataLoader, drawing fresh pixels before each epoch."""

    def __init__(self, dataset: DigitsDataset, loader: DataLoader, resample: bool):
        self.dataset, self.loader, self._resample = dataset, loader, resample
        self._first = True

    def __iter__(self):
        if self._resample and not self._first:
            self.dataset.resample()
        self._first = False
        return iter(self.loader)

    def __len__(self):
        return len(self.loader)


def digits_loader(
    split: str = "train",
    batch_size: int = 128,
    binarize: str | None = None,
    dequantize: bool = False,
    as_images: bool = False,
    shuffle: bool | None = None,
    seed: int | None = 0,
):
    """A DataLoader over a digits split yielding ``(x, y)`` batches.

    Shuffles the training split by default. With ``binarize="dynamic"`` or
    ``dequantize=True`` every epoch sees freshly drawn pixels.
    """
    check_count(batch_size, "batch_size")
    dataset = DigitsDataset(split, binarize, dequantize, as_images, seed)
    shuffle = (split == "train") if shuffle is None else shuffle
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=shuffle,
                        generator=make_generator(seed))
    return _ResamplingLoader(dataset, loader, binarize == "dynamic" or dequantize)
