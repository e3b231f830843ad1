"""coursekit.grading.harness_kit: Adam against torch.optim.Adam (the same trajectory),
one_thread restores the thread count."""

import subprocess
import sys

import pytest
import torch

from coursekit.grading.harness_kit import Adam, one_thread


def _trajectory(make_optimizer, steps=50):
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(5, 3, generator=gen, dtype=torch.float64).requires_grad_(True)
    b = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    unused = torch.ones(2, dtype=torch.float64, requires_grad=True)  # never gets a gradient
    x = torch.randn(40, 5, generator=gen, dtype=torch.float64)
    y = torch.randn(40, 3, generator=gen, dtype=torch.float64)
    opt = make_optimizer([w, b, unused])
    for _ in range(steps):
        opt.zero_grad()
        ((x @ w + b - y) ** 2).mean().backward()
        opt.step()
    return w.detach(), b.detach(), unused.detach()


@pytest.mark.parametrize("lr, betas", [(1e-2, (0.9, 0.999)), (3e-3, (0.5, 0.9))])
def test_same_updates_as_torch_optim_adam(lr, betas):
    ours = _trajectory(lambda p: Adam(p, lr=lr, betas=betas))
    theirs = _trajectory(lambda p: torch.optim.Adam(p, lr=lr, betas=betas))
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    assert torch.equal(ours[2], torch.ones(2, dtype=torch.float64))  # no gradient, no update


def test_does_not_import_torch_dynamo():
    code = ("import sys, torch; from coursekit.grading.harness_kit import Adam; "
            "p = torch.zeros(2, requires_grad=True); o = Adam([p]); p.sum().backward(); "
            "o.step(); print('torch._dynamo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_one_thread_runs_with_one_thread_and_restores_the_count():
    before = torch.get_num_threads()
    torch.set_num_threads(2)  # so that "one thread" is a change (CI runs with one)
    try:
        assert one_thread(torch.get_num_threads)() == 1
        assert torch.get_num_threads() == 2

        @one_thread
        def fails():
            raise ValueError("boom")

        with pytest.raises(ValueError):
            fails()
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
