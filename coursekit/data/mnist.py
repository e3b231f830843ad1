"""Optional real MNIST: downloaded once into a cache, checksummed, parsed here.

Nothing in the course needs it (the bundled digits are the default); it is
for students who want 28x28 images. Files are the four gzipped IDX files of
the original release; each is verified against its published MD5 checksum,
a corrupt or truncated file is downloaded again, and without a network the
error names what failed and suggests :func:`coursekit.data.load_digits`.

The IDX format: a big-endian header of two zero bytes, a type code (0x08 for
unsigned bytes), the number of dimensions ``d``, then ``d`` 32-bit sizes,
followed by the data in row-major order.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import struct
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import torch

MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)

# file name -> MD5 of the gzipped file, as published with the data set
FILES = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}

SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}

_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class MNISTUnavailableError(RuntimeError):
    """MNIST could not be downloaded or verified; the message says why."""


def default_root() -> Path:
    """``$COURSEKIT_DATA`` or ``~/.cache/coursekit``."""
    return Path(os.environ.get("COURSEKIT_DATA", Path.home() / ".cache" / "coursekit"))


def md5sum(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def parse_idx(data: bytes) -> np.ndarray:
    """Parse an (uncompressed) IDX byte string into a NumPy array."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError("data: not an IDX file (the first two bytes must be zero)")
    type_code, ndim = data[2], data[3]
    if type_code not in _IDX_TYPES:
        raise ValueError(f"data: unknown IDX type code 0x{type_code:02x}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError("data: IDX header is truncated")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    dtype = np.dtype(_IDX_TYPES[type_code])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - header != expected:
        raise ValueError(f"data: IDX body has {len(data) - header} bytes, header says {expected}")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)


def _download(url: str, dest: Path, timeout: float) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=dest.name, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            shutil.copyfileobj(resp, out)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def fetch_file(name: str, root: Path, download: bool = True, mirrors=MIRRORS,
               checksums=FILES, timeout: float = 30.0) -> Path:
    """Return the verified path of ``name`` in ``root``, downloading it if needed."""
    path = Path(root) / "mnist" / name
    expected = checksums[name]
    if path.exists() and md5sum(path) == expected:
        return path
    problem = "missing" if not path.exists() else "corrupt (checksum mismatch)"
    if not download:
        raise MNISTUnavailableError(
            f"MNIST file {path} is {problem} and download=False. Use download=True when online, "
            "or the bundled digits: coursekit.data.load_digits()."
        )
    errors = []
    for mirror in mirrors:
        try:
            _download(mirror + name, path, timeout)
        except (urllib.error.URLError, OSError, ValueError) as err:
            errors.append(f"{mirror}: {err}")
            continue
        if md5sum(path) == expected:
            return path
        errors.append(f"{mirror}: checksum mismatch after download")
        path.unlink()
    raise MNISTUnavailableError(
        f"could not download MNIST file {name} (it was {problem}); tried "
        + "; ".join(errors)
        + ". Are you offline? The course runs offline on the bundled digits: "
        "coursekit.data.load_digits()."
    )


def load_mnist(
    root: str | os.PathLike | None = None,
    split: str = "train",
    download: bool = True,
    binarize: str | None = None,
    as_images: bool = False,
    seed: int | None = None,
    mirrors=MIRRORS,
    checksums=FILES,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Load MNIST ``(x, y)``: ``x`` float32 in [0, 1], ``(n, 784)`` or ``(n, 1, 28, 28)``.

    Args:
        root: cache folder (default :func:`default_root`).
        split: ``"train"`` (60,000) or ``"test"`` (10,000).
        download: fetch missing or corrupt files (else raise).
        binarize: ``None``, ``"dynamic"`` (Bernoulli draw with ``seed``) or
            ``"threshold"`` (>= 0.5).
    """
    if split not in SPLIT_FILES:
        raise ValueError(f"split: expected 'train' or 'test', got {split!r}")
    if binarize not in (None, "dynamic", "threshold"):
        raise ValueError(f"binarize: expected None, 'dynamic' or 'threshold', got {binarize!r}")
    root = default_root() if root is None else Path(root)
    arrays = []
    for name in SPLIT_FILES[split]:
        path = fetch_file(name, root, download, mirrors, checksums)
        with gzip.open(path, "rb") as fh:
            arrays.append(parse_idx(fh.read()))
    images, labels = arrays
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise MNISTUnavailableError(
            f"MNIST files in {root} have unexpected shapes {images.shape} / {labels.shape}"
        )
    x = torch.from_numpy(images.astype(np.float32) / 255.0)
    if binarize == "threshold":
        x = (x >= 0.5).to(torch.float32)
    elif binarize == "dynamic":
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        x = torch.bernoulli(x, generator=gen)
    x = x.unsqueeze(1) if as_images else x.reshape(len(x), -1)
    return x, torch.from_numpy(labels.astype(np.int64))
