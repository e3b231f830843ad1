r"""Pieces that every homework's harness uses (``checks/harness.py``, run in the sandbox).

* :func:`one_thread`: run a harness function with one torch thread.
* :class:`Adam`: Adam written out, for the checks' training runs.
* :func:`meta` and :func:`devices_and_dtypes`: the any-device probe's inputs (tensors
  on PyTorch's ``meta`` device) and its report on what a student's function returned.

``torch.optim``'s first optimizer in a process imports ``torch._dynamo``: about two
seconds of every grading worker's time (1.9 s measured on the course's 2-core VM),
spent again for every submission. This is the same update (Kingma and Ba, 2015) in
a few tensor operations:

.. math::
    m_t = \beta_1 m_{t-1} + (1 - \beta_1) g_t,\quad
    v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2,\quad
    \theta_t = \theta_{t-1}
        - \eta\,\frac{m_t / (1 - \beta_1^t)}{\sqrt{v_t / (1 - \beta_2^t)} + \epsilon}.
"""

from __future__ import annotations

import functools

import torch

from coursekit.runtime import one_torch_thread


def one_thread(func):
    """Run ``func`` with one torch thread (then restore the count): tiny networks are
    fastest, and timings predictable, that way, and parallel graders do not fight over
    the cores."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with one_torch_thread():
            return func(*args, **kwargs)

    return wrapper


class Adam:
    """Adam on a list of tensors (``requires_grad=True``), torch.optim.Adam's defaults.

    Args:
        params: the tensors to update (an iterable; kept as a list).
        lr: learning rate :math:`\\eta`.
        betas: :math:`(\\beta_1, \\beta_2)`.
        eps: :math:`\\epsilon`, added to the root of the second moment.
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8):
        self.params = list(params)
        self.lr, self.betas, self.eps = float(lr), betas, float(eps)
        self.moments = [(torch.zeros_like(p), torch.zeros_like(p)) for p in self.params]
        self.steps = 0

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        """One update from the gradients in ``.grad`` (tensors without one are skipped)."""
        self.steps += 1
        b1, b2 = self.betas
        for p, (m, v) in zip(self.params, self.moments):
            if p.grad is None:
                continue
            m.mul_(b1).add_(p.grad, alpha=1.0 - b1)
            v.mul_(b2).addcmul_(p.grad, p.grad, value=1.0 - b2)
            step = self.lr * (m / (1.0 - b1**self.steps))
            p.sub_(step / ((v / (1.0 - b2**self.steps)).sqrt() + self.eps))


def meta(*shape, dtype=torch.float32) -> torch.Tensor:
    """An empty tensor of ``shape`` on PyTorch's ``meta`` device: shapes without data, on
    which every operation works, but mixing in a tensor made on the CPU (a bare
    ``torch.zeros(d)``) raises."""
    return torch.empty(tuple(shape), dtype=dtype, device="meta")


def devices_and_dtypes(out) -> list:
    """``[device type, dtype]`` of every tensor in ``out`` (one value, or a tuple or list
    of them); ``[type name, ""]`` for anything else."""
    values = out if isinstance(out, (tuple, list)) else (out,)
    return [[str(v.device.type), str(v.dtype).replace("torch.", "")]
            if isinstance(v, torch.Tensor) else [type(v).__name__, ""] for v in values]
