"""The optional MNIST loader, tested on small IDX files written here (no network)."""

import gzip
import hashlib
import struct

import numpy as np
import pytest
import torch

from coursekit.data.mnist import MNISTUnavailableError, load_mnist, parse_idx


def _idx(array: np.ndarray) -> bytes:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


@pytest.fixture
def mirror(tmp_path):
    """A local 'mirror' folder with tiny train/test files and their checksums."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "mirror"
    folder.mkdir()
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (6, 28, 28)),
        "train-labels-idx1-ubyte.gz": rng.integers(0, 10, 6),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (4, 28, 28)),
        "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, 4),
    }
    checksums = {}
    for name, arr in arrays.items():
        data = gzip.compress(_idx(arr), mtime=0)
        (folder / name).write_bytes(data)
        checksums[name] = hashlib.md5(data).hexdigest()
    return folder.as_uri() + "/", checksums, arrays


def test_downloads_verifies_and_parses(tmp_path, mirror):
    url, checksums, arrays = mirror
    x, y = load_mnist(tmp_path / "cache", "train", mirrors=(url,), checksums=checksums)
    assert x.shape == (6, 784) and x.dtype == torch.float32
    np.testing.assert_allclose(x.numpy() * 255, arrays["train-images-idx3-ubyte.gz"].reshape(6, -1),
                               atol=1e-4)
    assert y.tolist() == arrays["train-labels-idx1-ubyte.gz"].tolist()
    xi, _ = load_mnist(tmp_path / "cache", "test", mirrors=(url,), checksums=checksums,
                       as_images=True, binarize="threshold")
    assert xi.shape == (4, 1, 28, 28) and set(xi.unique().tolist()) <= {0.0, 1.0}


def test_corrupt_file_is_downloaded_again(tmp_path, mirror):
    url, checksums, _ = mirror
    cache = tmp_path / "cache"
    load_mnist(cache, "train", mirrors=(url,), checksums=checksums)
    target = cache / "mnist" / "train-images-idx3-ubyte.gz"
    target.write_bytes(b"garbage")
    x, _ = load_mnist(cache, "train", mirrors=(url,), checksums=checksums)
    assert x.shape == (6, 784)
    assert hashlib.md5(target.read_bytes()).hexdigest() == checksums[target.name]


def test_offline_error_names_the_problem_and_the_fallback(tmp_path, mirror):
    _, checksums, _ = mirror
    dead = (tmp_path / "no-such-mirror").as_uri() + "/"
    with pytest.raises(MNISTUnavailableError, match=r"(?s)could not download.*load_digits"):
        load_mnist(tmp_path / "cache", "train", mirrors=(dead,), checksums=checksums)
    with pytest.raises(MNISTUnavailableError, match=r"missing and download=False.*load_digits"):
        load_mnist(tmp_path / "cache", "train", download=False, checksums=checksums)


def test_mirror_with_wrong_content_is_rejected(tmp_path, mirror):
    url, checksums, _ = mirror
    bad = dict(checksums, **{"train-images-idx3-ubyte.gz": "0" * 32})
    with pytest.raises(MNISTUnavailableError, match="checksum mismatch"):
        load_mnist(tmp_path / "cache", "train", mirrors=(url,), checksums=bad)
    assert not (tmp_path / "cache" / "mnist" / "train-images-idx3-ubyte.gz").exists()


def test_parse_idx_validates_its_input():
    arr = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert np.array_equal(parse_idx(_idx(arr)), arr)
    with pytest.raises(ValueError, match="not an IDX file"):
        parse_idx(b"\x01\x00\x08\x01")
    with pytest.raises(ValueError, match="IDX body"):
        parse_idx(_idx(arr)[:-1])
    with pytest.raises(ValueError, match="split"):
        load_mnist("/tmp", split="validation")
