import random

import numpy as np
import pytest
import torch

import coursekit
from coursekit.runtime import budget, get_device, make_generator, seed_everything


def test_auto_device_follows_cuda_then_mps_then_cpu():
    device = get_device("auto")
    if torch.cuda.is_available():
        assert device.type == "cuda"
    elif getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        assert device.type == "mps"
    else:
        assert device == torch.device("cpu")
    assert get_device(None) == device


def test_explicit_cpu_and_device_objects():
    assert get_device("cpu") == torch.device("cpu")
    assert get_device(torch.device("cpu")) == torch.device("cpu")


def test_env_variable_overrides_auto(monkeypatch):
    monkeypatch.setenv("COURSEKIT_DEVICE", "cpu")
    assert get_device("auto") == torch.device("cpu")


def test_a_bad_env_variable_is_named_in_the_error(monkeypatch):
    monkeypatch.setenv("COURSEKIT_DEVICE", "gpu")
    with pytest.raises(ValueError, match=r"^environment variable COURSEKIT_DEVICE=gpu: .*'gpu'"):
        get_device("auto")
    assert get_device("cpu") == torch.device("cpu")  # an explicit choice ignores it


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_unavailable_cuda_is_a_clear_error():
    with pytest.raises(ValueError, match="device: 'cuda' was requested but CUDA is not available"):
        get_device("cuda")


def test_unknown_device_name_is_a_clear_error():
    with pytest.raises(ValueError, match="device: expected one of"):
        get_device("tpu-please")
    # a type torch knows but the course does not compute on: the same message, listing
    # what this machine has, not torch's list of device types
    with pytest.raises(ValueError, match=r"device: expected one of .*got 'xla'; this machine has"):
        get_device("xla")
    with pytest.raises(TypeError, match="device"):
        get_device(3)


def test_seed_everything_makes_all_generators_repeat():
    def draw():
        return random.random(), np.random.rand(), torch.rand(3)

    seed_everything(123)
    a = draw()
    seed_everything(123)
    b = draw()
    seed_everything(124)
    c = draw()
    assert a[0] == b[0] and a[1] == b[1] and torch.equal(a[2], b[2])
    assert a[0] != c[0] and not torch.equal(a[2], c[2])


@pytest.mark.parametrize("bad", [-1, 2**32, 1.5, "7", True])
def test_seed_everything_rejects_bad_seeds(bad):
    with pytest.raises((ValueError, TypeError), match="seed"):
        seed_everything(bad)


def test_budget_picks_by_device(monkeypatch):
    expected = 200 if torch.cuda.is_available() else 20
    assert budget(cpu=20, gpu=200) == expected
    assert budget(cpu=20) == 20
    assert budget(cpu=20, gpu=200, device="cpu") == 20
    monkeypatch.setenv("COURSEKIT_BUDGET", "cpu")
    assert budget(cpu=20, gpu=200) == 20


def test_make_generator():
    g = make_generator(5)
    assert torch.equal(torch.rand(4, generator=g), torch.rand(4, generator=make_generator(5)))
    assert make_generator(g) is g
    with pytest.raises(ValueError, match="seed"):
        make_generator(-3)


def test_top_level_exports():
    assert coursekit.get_device is get_device
    assert coursekit.seed_everything is seed_everything
    assert isinstance(coursekit.__version__, str)


@pytest.mark.gpu
def test_cuda_device_is_usable():
    device = get_device("cuda")
    assert (torch.ones(2, device=device) * 2).sum().item() == 4.0


def test_module_dtype_device_is_the_first_floating_tensor_else_the_default():
    from torch import nn

    from coursekit.runtime import module_dtype_device

    assert module_dtype_device(nn.Linear(2, 3).double()) == (torch.float64, torch.device("cpu"))
    holder = nn.Module()
    holder.register_buffer("perm", torch.arange(3))  # an integer buffer does not count
    assert module_dtype_device(holder) == (torch.get_default_dtype(), torch.device("cpu"))
    holder.register_buffer("scale", torch.ones(2, dtype=torch.float16))
    assert module_dtype_device(holder) == (torch.float16, torch.device("cpu"))
    assert module_dtype_device(nn.Module(), "meta") == (torch.get_default_dtype(),
                                                        torch.device("meta"))


def test_one_torch_thread_sets_one_thread_and_restores_the_count_even_on_error():
    from coursekit.runtime import one_torch_thread

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with one_torch_thread():
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with pytest.raises(RuntimeError, match="inside"), one_torch_thread():
            raise RuntimeError("inside")
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
