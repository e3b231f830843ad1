"""Harness of homework 3: runs INSIDE the grading sandbox, next to the student's code.

The checks cannot send neural networks across the sandbox boundary, only plain
arrays. These functions rebuild small fixed-architecture networks from weight
arrays, call the student's functions with them (or train with them) and return
plain tensors/numbers that the trusted checks judge.

Networks (weights in a dict of tensors; a list of ints instead of an array is a
shape: the network is then built on PyTorch's ``meta`` device, see
:func:`meta_probe`):

* MADE network ``net(x) -> (mu, alpha)``: layers ``w0, b0, m0``, ``w1, b1, m1``,
  ... (weight, bias, 0/1 mask of the same shape as the weight); ``h = tanh((W * M)
  h + b)`` for every layer but the last, whose ``2d`` outputs are ``[mu, raw]``;
  ``alpha = 3 tanh(raw / 3)``. The masks come from the checks.
* coupling network ``net(x_a) -> params``: ``tanh(x_a W1^T + b1) W2^T + b2``.

Judging one task at a time: every function below that runs a MAF (3d) takes
``helpers=None``. When graded, the checks pass the source text of independent,
correct versions of ``made_forward``, ``made_inverse`` and
``log_standard_normal``; :func:`helpers_from` puts them in place of yours in the
``submission`` module for the duration of the call only. So a mistake in 3b or
3c costs points in its own task and not again in 3d. Without them (``coursekit
check``) your MAF runs with your own helpers.
"""

from __future__ import annotations

import math

import submission
import torch

from coursekit.grading.harness_kit import Adam, devices_and_dtypes, meta, one_thread
from coursekit.grading.helper_swap import swap_helpers

ALPHA_BOUND = 3.0
HELPER_NAMES = ("made_forward", "made_inverse", "log_standard_normal")


def helpers_from(source):
    """Within the block, ``submission``'s helper functions are the ones defined by the
    Python text ``source`` (nothing changes when ``source`` is None)."""
    return swap_helpers(submission, source, HELPER_NAMES)


def _weight(value) -> torch.Tensor:
    """A weight array as a tensor; a list of ints is a shape: float32 on ``meta``."""
    if isinstance(value, (list, tuple)):
        return torch.empty(*value, dtype=torch.float32, device="meta")
    return torch.as_tensor(value)


class MadeNet:
    """A MADE network ``x (batch, d) -> (mu, alpha)``, each ``(batch, d)``."""

    def __init__(self, weights: dict):
        self.layers = []
        n_layers = sum(1 for key in weights if key.startswith("w"))
        for i in range(n_layers):
            w, b = _weight(weights[f"w{i}"]), _weight(weights[f"b{i}"])
            mask = _weight(weights[f"m{i}"]).to(w.dtype)
            self.layers.append((w, b, mask))
        self.calls = 0

    def parameters(self):
        return [t for w, b, _ in self.layers for t in (w, b)]

    def __call__(self, x):
        self.calls += 1
        h = x
        for i, (w, b, mask) in enumerate(self.layers):
            h = torch.nn.functional.linear(h, w * mask, b)
            if i < len(self.layers) - 1:
                h = torch.tanh(h)
        d = h.shape[-1] // 2
        mu, raw = h[..., :d], h[..., d:]
        return mu, ALPHA_BOUND * torch.tanh(raw / ALPHA_BOUND)


class CouplingNet:
    """``x_a (batch, d_a) -> (batch, 2 d_b)``: one tanh hidden layer."""

    def __init__(self, weights: dict):
        self.w = {k: _weight(v) for k, v in weights.items()}

    def __call__(self, x_a):
        h = torch.tanh(torch.nn.functional.linear(x_a, self.w["w1"], self.w["b1"]))
        return torch.nn.functional.linear(h, self.w["w2"], self.w["b2"])


def _pair(name: str, values):
    if not isinstance(values, (tuple, list)) or len(values) != 2:
        raise ValueError(f"{name} must return a pair (output, logdet), got "
                         f"{type(values).__name__}")
    return values


def _out(value):
    """A returned value as a detached tensor (its shape kept for the checks)."""
    return torch.as_tensor(value).detach()


def _run(name: str, x, params, helpers=None):
    """Call the student's ``name`` on ``x`` with networks built from ``params``."""
    with helpers_from(helpers):
        if name in ("made_forward", "made_inverse"):
            return _pair(name, getattr(submission, name)(x, MadeNet(params)))
        if name in ("affine_coupling_forward", "affine_coupling_inverse"):
            return _pair(name, getattr(submission, name)(x, CouplingNet(params)))
        if name == "planar_flow":
            return _pair(name, submission.planar_flow(x, params["u"], params["w"],
                                                      params["b"]))
        if name == "maf_log_prob":
            return submission.maf_log_prob(x, [MadeNet(p) for p in params])
        if name == "maf_inverse":
            return _pair(name, submission.maf_inverse(x, [MadeNet(p) for p in params]))
    raise ValueError(f"unknown function {name!r}")


# --------------------------------------------------------------------------- 3b-3f


@one_thread
def apply(name: str, x, params, helpers=None):
    """The student's ``name`` on ``x``: a pair (output, logdet), or log p for maf_log_prob."""
    with torch.no_grad():
        out = _run(name, x, params, helpers)
    if isinstance(out, (tuple, list)):
        return [_out(v) for v in out]
    return _out(out)


@one_thread
def made_passes(z, params) -> int:
    """How many times made_inverse calls the network for a batch ``z``."""
    net = MadeNet(params)
    with torch.no_grad():
        _pair("made_inverse", submission.made_inverse(z, net))
    return net.calls


@one_thread
def logdet_vs_autograd(name: str, x, params, helpers=None) -> dict:
    """The student's log-determinants next to ``log|det J|`` of the student's map,
    computed by autograd (``torch.autograd.functional.jacobian``, one example at a time)."""
    out, logdet = _run(name, x, params, helpers)
    autograd = []
    for row in x:
        def single(v):
            return _run(name, v[None, :], params, helpers)[0][0]
        jac = torch.autograd.functional.jacobian(single, row)
        autograd.append(torch.linalg.slogdet(jac)[1])
    return {"logdet": _out(logdet), "autograd": torch.stack(autograd).detach(),
            "out": _out(out)}


# --------------------------------------------------------------------------- training


def _init_made(masks: list, generator: torch.Generator) -> list:
    """Trainable float32 MADE layers for the given masks (uniform init like nn.Linear)."""
    params = {}
    for i, mask in enumerate(masks):
        mask = torch.as_tensor(mask, dtype=torch.float32)
        bound = 1.0 / math.sqrt(mask.shape[1])
        w = (torch.rand(mask.shape, generator=generator) * 2 - 1) * bound
        b = (torch.rand(mask.shape[0], generator=generator) * 2 - 1) * bound
        params[f"w{i}"] = w.requires_grad_(True)
        params[f"b{i}"] = b.requires_grad_(True)
        params[f"m{i}"] = mask
    return params


@torch.no_grad()
def evaluate_nll(x, nets) -> float:
    """Test NLL of the MAF, computed here independently of the student's code.

    Each block is undone dimension by dimension from its own Jacobian: the
    log-density is ``log N(z) + log|det dz/dx|`` with the log-det read off the
    network's log-scales, block after block, with the reversals in between."""
    h = x
    log_det = torch.zeros(x.shape[0], dtype=x.dtype)
    for k, net in enumerate(nets):
        if k > 0:
            h = h[:, torch.arange(h.shape[1] - 1, -1, -1)]
        mu, alpha = net(h)
        h = (h - mu) / alpha.exp()
        log_det -= alpha.sum(1)
    log_base = -0.5 * (h.pow(2).sum(1) + h.shape[1] * math.log(2.0 * math.pi))
    # rounded to 0.01 nats: the recorded reference value must not depend on the last
    # bits of a few hundred float32 Adam steps, which vary across machines and BLAS builds
    return round(float(-(log_base + log_det).mean()), 2)


@one_thread
def train_maf(x_train, x_test, masks: list, blocks: int = 5, steps: int = 300,
              batch_size: int = 128, lr: float = 1e-2, init_seed: int = 0,
              helpers=None) -> dict:
    """Train a MAF of ``blocks`` MADE blocks with the student's maf_log_prob.

    Adam on ``-mean(maf_log_prob(batch))`` for ``steps`` minibatches; initial weights
    and minibatch order come from ``init_seed`` (identical for every submission).
    The result is the test NLL measured by :func:`evaluate_nll` (not by the
    student's function), so a loss that merely reports small numbers cannot pass.
    """
    x_train, x_test = x_train.to(torch.float32), x_test.to(torch.float32)
    gen = torch.Generator().manual_seed(init_seed)
    params = [_init_made(masks, gen) for _ in range(blocks)]
    nets = [MadeNet(p) for p in params]
    trainable = [t for net in nets for t in net.parameters()]
    opt = Adam(trainable, lr=lr)
    n = x_train.shape[0]
    losses = []
    with helpers_from(helpers):
        for _ in range(steps):
            batch = x_train[torch.randint(n, (batch_size,), generator=gen)]
            log_p = torch.as_tensor(submission.maf_log_prob(batch, nets))
            if log_p.shape != (batch_size,) or not log_p.requires_grad:
                raise ValueError(
                    "maf_log_prob must return one log-density per example, shape (batch,), "
                    "that depends on the networks' parameters (got shape "
                    f"{tuple(log_p.shape)}, requires_grad={log_p.requires_grad})")
            loss = -log_p.mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
    tail = losses[-20:] or [float("nan")]
    finite = all(math.isfinite(v) for v in losses)
    return {"nll": evaluate_nll(x_test, nets) if finite else float("nan"),
            "train_loss_last": round(float(sum(tail) / len(tail)), 2), "finite": finite}


# --------------------------------------------------------------------------- any device



@one_thread
def meta_probe(name: str, shapes=None, helpers=None) -> list:
    """Call the student's function ``name`` on float32 tensors of PyTorch's ``meta``
    device (shapes without data: every operation works, but mixing in a tensor made
    on the CPU, e.g. ``torch.zeros(d)`` without ``device=``, raises) and return
    ``[device type, dtype]`` of every tensor returned. ``shapes`` are the shapes of
    the networks' weights (the networks are built on ``meta`` too)."""
    with torch.no_grad():
        if name == "planar_flow":
            out = _run(name, meta(5, 3), {"u": meta(3), "w": meta(3), "b": meta()})
        elif name == "planar_u_hat":
            out = submission.planar_u_hat(meta(3), meta(3))
        elif name.startswith("affine_coupling"):
            out = _run(name, meta(5, shapes["w1"][1] + shapes["w2"][0] // 2), shapes)
        elif name.startswith("maf_"):
            out = _run(name, meta(5, shapes[0]["w0"][1]), shapes, helpers)
        else:
            out = _run(name, meta(5, shapes["w0"][1]), shapes)
    return devices_and_dtypes(out)
