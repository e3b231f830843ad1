"""The boundary: plain-data codec and what the worker can (not) do."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from coursekit.grading.checks import CheckFailure
from coursekit.grading.reference import LiveReference
from coursekit.grading.sandbox import Limits, Sandbox
from coursekit.grading.wire import PlainDataError, decode, dumps, encode, loads

from .conftest import SUBMISSIONS


def test_codec_round_trip_keeps_types_dtypes_and_shapes():
    value = {
        "a": [1, 2.5, float("nan"), True, None, "s"],
        "t": (np.arange(6, dtype=np.int16).reshape(2, 3), torch.ones(2, dtype=torch.float32)),
        "big": 2**70,
    }
    back = loads(dumps(value))
    assert (
        back["a"][:2] == [1, 2.5] and np.isnan(back["a"][2]) and back["a"][3:] == [True, None, "s"]
    )
    arr, ten = back["t"]
    assert isinstance(back["t"], tuple) and arr.dtype == np.int16 and arr.shape == (2, 3)
    assert ten.dtype == np.float32 and type(ten) is np.ndarray and back["big"] == 2**70
    as_torch = decode(encode([np.zeros(2)]), to_torch=True)[0]
    assert isinstance(as_torch, torch.Tensor) and as_torch.dtype == torch.float64


def test_codec_keeps_zero_dimensional_values_zero_dimensional():
    for value in (torch.tensor(1.5, dtype=torch.float64), np.float32(2.0), np.array(3)):
        back = loads(dumps(value))
        assert back.shape == () and back == np.asarray(value)


class Evil(float):
    def __eq__(self, other):
        return True


@pytest.mark.parametrize(
    "value",
    [Evil(1.0), np.array(["x"]), np.array([object()]), {1: 2}, (i for i in range(2)), object()],
)
def test_codec_rejects_non_plain_values(value):
    with pytest.raises(PlainDataError):
        encode(value)


@pytest.mark.parametrize(
    "message",
    [
        {"__ndarray__": "AAAA", "dtype": "object", "shape": [1]},
        {"__ndarray__": "AAAA", "dtype": "float64", "shape": [5]},
        {"__float__": "1e400"},
        {"__weird__": 1},
        {"__dict__": [[1, 2]]},
    ],
)
def test_decoder_rejects_malformed_messages(message):
    with pytest.raises(PlainDataError):
        decode(message)


@pytest.mark.slow
def test_worker_is_isolated(tmp_path):
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "hidden.py").write_text("x = 1\n")
    os.chmod(secret, 0o777)
    with Sandbox(
        SUBMISSIONS / "probe" / "submission.py",
        hide=[str(secret)],
        limits=Limits(mem_bytes=3 * 1024**3),
    ) as box:
        assert box.call("echo", (np.ones(2), 3), {"k": "v"}, seed=0, timeout=30)[1] == {"k": "v"}
        who = box.call("identity", (), {}, seed=0, timeout=10)
        assert who["files"] == ["submission.py"] and who["cwd"] != os.getcwd()
        assert box.call("address_space", (), {}, seed=0, timeout=10) == 3 * 1024**3
        reference = LiveReference(SUBMISSIONS / "probe")
        for seed in (0, 7, 2**31 + 5):  # student and reference draw the same numbers
            got = box.call("draws", (), {}, seed=seed, timeout=10)
            want = reference.run("draws", (), {}, seed)
            assert got[0] == want[0] and all(np.array_equal(g, w) for g, w in zip(got, want))
        with pytest.raises(CheckFailure, match="generator is not plain data"):
            box.call("generator", (), {}, seed=0, timeout=10)
        with pytest.raises(CheckFailure, match="does not define a function 'nope'"):
            box.call("nope", (), {}, seed=0, timeout=10)
        print(json.dumps(box.defences))
        if os.geteuid() == 0 and box.defences.get("namespaces") == "net+mount":
            assert who["uid"] != 0
            assert box.call("network", (), {}, seed=0, timeout=10) != "connected"
            assert box.call("listdir", (str(secret),), {}, seed=0, timeout=10) in (
                [],
                "PermissionError",
            )


def test_worker_imports_only_the_wire_format_and_runtime():
    """The untrusted entry point loads no grader code (checks, reference, sandbox); it
    loads the isolation code up front (after dropping privileges the package may be
    unreadable: a course under /root or a 700 temp folder)."""
    code = (
        "import sys, coursekit.grading.worker; "
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('coursekit'))))"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == [
        "coursekit",
        "coursekit.grading",
        "coursekit.grading.isolation",
        "coursekit.grading.wire",
        "coursekit.grading.worker",
        "coursekit.runtime",
    ]
