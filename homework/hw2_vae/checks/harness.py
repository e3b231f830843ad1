"""Harness of homework 2: runs INSIDE the grading sandbox, next to the student's code.

The checks cannot send neural networks across the sandbox boundary, only plain
arrays. These functions rebuild a tiny fixed-architecture encoder/decoder from
weight arrays, call the student's function many times (or train with it) and
return plain tensors/numbers that the trusted checks judge statistically.

Architecture (weights in a dict of tensors):

* encoder: h = elu(x W1^T + b1); [qm, raw] = h W2^T + b2; qv = softplus(raw) + 1e-3
* decoder: logits = elu(z V1^T + c1) V2^T + c2   (any leading dimensions of z)

Judging one task at a time: every function below that calls a bound (2d-2g)
takes ``helpers=None``. When graded, the hidden checks pass the source text of
independent, correct versions of the helpers (``sample_gaussian``,
``log_normal``, ``log_normal_mixture``, ``kl_normal``,
``log_bernoulli_with_logits``); :func:`helpers_from` puts them in place of
yours in the ``submission`` module for the duration of the call only (your
bound looks them up as module globals) and disables them afterwards. So a
mistake in 2a-2c costs points in its own task and not again in 2d-2g. The
helpers' source lives only with the hidden checks and is not part of the
released homework; without it (``coursekit check``) your bound runs with your
own helpers.
"""

from __future__ import annotations

import math

import submission
import torch
import torch.nn.functional as F
from torch import nn

from coursekit.grading.harness_kit import Adam, devices_and_dtypes, meta, one_thread
from coursekit.grading.helper_swap import swap_helpers

VAR_FLOOR = 1e-3
HELPER_NAMES = ("log_bernoulli_with_logits", "sample_gaussian", "log_normal",
                "log_normal_mixture", "kl_normal")


def helpers_from(source):
    """Within the block, ``submission``'s helper functions are the ones defined by the
    Python text ``source`` (nothing changes when ``source`` is None)."""
    return swap_helpers(submission, source, HELPER_NAMES)


class Encoder(nn.Module):
    """x (batch, x_dim) -> (qm, qv), each (batch, z_dim)."""

    def __init__(self, x_dim: int, z_dim: int, hidden: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(x_dim, hidden), nn.ELU(), nn.Linear(hidden, 2 * z_dim))

    def forward(self, x):
        qm, raw = self.net(x).chunk(2, dim=-1)
        return qm, F.softplus(raw) + VAR_FLOOR


class Decoder(nn.Module):
    """z (..., z_dim) -> Bernoulli logits (..., x_dim)."""

    def __init__(self, z_dim: int, x_dim: int, hidden: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(z_dim, hidden), nn.ELU(), nn.Linear(hidden, x_dim))

    def forward(self, z):
        return self.net(z)


def build(weights: dict):
    """Encoder and decoder with the given weights (dtype of the weights; float32 on the
    ``meta`` device where the weights are given as shapes, see :func:`meta_probe`)."""
    w = {k: _weight(v) for k, v in weights.items()}
    x_dim, hidden, z_dim = w["enc_w1"].shape[1], w["enc_w1"].shape[0], w["dec_w1"].shape[1]
    enc, dec = Encoder(x_dim, z_dim, hidden), Decoder(z_dim, x_dim, hidden)
    with torch.no_grad():
        for module, prefix in ((enc, "enc"), (dec, "dec")):
            module.to(device=w[f"{prefix}_w1"].device, dtype=w[f"{prefix}_w1"].dtype)
            module.net[0].weight.copy_(w[f"{prefix}_w1"])
            module.net[0].bias.copy_(w[f"{prefix}_b1"])
            module.net[2].weight.copy_(w[f"{prefix}_w2"])
            module.net[2].bias.copy_(w[f"{prefix}_b2"])
    return enc, dec


def _weight(value) -> torch.Tensor:
    """A weight array as a tensor; a list of ints is a shape: float32 on ``meta``."""
    if isinstance(value, (list, tuple)):
        return torch.empty(*value, dtype=torch.float32, device="meta")
    return torch.as_tensor(value)


def _flat(value) -> torch.Tensor:
    """A returned value as a detached float64 tensor (keeps its shape for the checks)."""
    return torch.as_tensor(value).detach().to(torch.float64)


def _triple(name: str, values):
    if not isinstance(values, (tuple, list)) or len(values) != 3:
        raise ValueError(f"{name} must return the tuple (nelbo, kl, rec), got "
                           f"{type(values).__name__}")
    return values


def _stack(values) -> torch.Tensor:
    shapes = {tuple(v.shape) for v in values}
    if len(shapes) != 1:
        raise ValueError(f"the returned values changed shape between calls: {sorted(shapes)}")
    return torch.stack(values)


# --------------------------------------------------------------------------- 2a


@one_thread
def sample_moments(m, v, n: int) -> dict:
    """Draw n samples of N(m, diag v) with the student's sample_gaussian and summarise them.

    Returns the shape of the sample, the sample mean and variance per dimension,
    and the gradients of mean_n ||z_n||^2 with respect to every row's m and v,
    summed over rows (expected 2 m and 1: E z^2 = m^2 + v).
    """
    mm = m.expand(n, -1).clone().requires_grad_(True)
    vv = v.expand(n, -1).clone().requires_grad_(True)
    z = submission.sample_gaussian(mm, vv)
    shape = list(z.shape)
    if z.shape != mm.shape:
        return {"shape": shape}
    loss = (z**2).sum() / n
    grad_m = grad_v = torch.zeros_like(m)
    if loss.requires_grad:
        gm, gv = torch.autograd.grad(loss, (mm, vv), allow_unused=True)
        grad_m = gm.sum(0) if gm is not None else grad_m
        grad_v = gv.sum(0) if gv is not None else grad_v
    z = z.detach()
    return {
        "shape": shape,
        "mean": z.mean(0),
        "var": z.var(0),
        "grad_m": grad_m.detach(),
        "grad_v": grad_v.detach(),
        "m2_over_v": ((z - m) ** 2 / v).mean(0),
    }


@one_thread
def sample_batch_shape(m, v) -> list:
    """The shape of sample_gaussian(m, v) and whether it differs from m (any batch shape)."""
    z = submission.sample_gaussian(m, v)
    return [list(z.shape), bool((z != m).any())]


# --------------------------------------------------------------------------- 2d, 2e, 2f


@one_thread
def elbo_repeats(x, weights: dict, repeats: int, helpers=None) -> dict:
    """negative_elbo_bound called ``repeats`` times: {"nelbo", "kl", "rec"}, each (repeats, ...)."""
    enc, dec = build(weights)
    out = {"nelbo": [], "kl": [], "rec": []}
    with torch.no_grad(), helpers_from(helpers):
        for _ in range(repeats):
            nelbo, kl, rec = _triple("negative_elbo_bound",
                                     submission.negative_elbo_bound(x, enc, dec))
            for key, value in (("nelbo", nelbo), ("kl", kl), ("rec", rec)):
                out[key].append(_flat(value))
    return {key: _stack(values) for key, values in out.items()}


@one_thread
def iwae_repeats(x, weights: dict, ks: list, repeats: int, helpers=None) -> torch.Tensor:
    """negative_iwae_bound for every k in ``ks``, ``repeats`` times: (len(ks), repeats, ...)."""
    enc, dec = build(weights)
    rows = []
    with torch.no_grad(), helpers_from(helpers):
        for k in ks:
            rows.append(_stack([_flat(submission.negative_iwae_bound(x, enc, dec, int(k)))
                                for _ in range(repeats)]))
    return _stack(rows)


@one_thread
def gmvae_repeats(x, weights: dict, prior_m, prior_v, repeats: int, helpers=None) -> dict:
    """gmvae_negative_elbo_bound called ``repeats`` times: {"nelbo", "kl", "rec"}."""
    enc, dec = build(weights)
    out = {"nelbo": [], "kl": [], "rec": []}
    with torch.no_grad(), helpers_from(helpers):
        for _ in range(repeats):
            nelbo, kl, rec = _triple(
                "gmvae_negative_elbo_bound",
                submission.gmvae_negative_elbo_bound(x, enc, dec, prior_m, prior_v))
            for key, value in (("nelbo", nelbo), ("kl", kl), ("rec", rec)):
                out[key].append(_flat(value))
    return {key: _stack(values) for key, values in out.items()}


# --------------------------------------------------------------------------- training


@torch.no_grad()
def evaluate_nelbo(x, enc, dec, samples: int = 20) -> dict:
    """Test NELBO computed here, independently of the student's code.

    KL(q || N(0, I)) in closed form and the reconstruction term averaged over
    ``samples`` reparameterised draws; batch means.
    """
    qm, qv = enc(x)
    kl = 0.5 * (qv + qm**2 - 1.0 - torch.log(qv)).sum(-1)
    z = qm + qv.sqrt() * torch.randn((samples, *qm.shape), dtype=qm.dtype)
    logits = dec(z)
    rec = F.binary_cross_entropy_with_logits(
        logits, x.expand_as(logits), reduction="none").sum(-1).mean(0)
    # rounded to 0.01 nats: the recorded reference value must not depend on the last
    # bits of 300 float32 Adam steps, which vary across machines and BLAS builds
    return {"nelbo": round(float((kl + rec).mean()), 2), "kl": round(float(kl.mean()), 2),
            "rec": round(float(rec.mean()), 2)}


def _train_step(x, enc, dec, opt) -> float:
    """One Adam step on the student's nelbo for the minibatch ``x``; the loss."""
    nelbo = torch.as_tensor(_triple("negative_elbo_bound",
                                    submission.negative_elbo_bound(x, enc, dec))[0])
    if nelbo.numel() != 1 or not nelbo.requires_grad:
        raise ValueError(
            "negative_elbo_bound must return a scalar nelbo that depends on the "
            f"encoder/decoder parameters (got shape {tuple(nelbo.shape)}, "
            f"requires_grad={nelbo.requires_grad})")
    opt.zero_grad()
    nelbo.reshape(()).backward()
    opt.step()
    return float(nelbo.detach())


@one_thread
def train_vae(x_train, x_test, steps: int = 300, z_dim: int = 4, hidden: int = 64,
              batch_size: int = 64, lr: float = 3e-3, init_seed: int = 0,
              helpers=None) -> dict:
    """Train a tiny VAE with the student's negative_elbo_bound; return the test NELBO.

    Adam on the student's ``nelbo`` for ``steps`` minibatches; the initial weights
    and the minibatch order come from ``init_seed`` (identical for every
    submission), the sampling noise from the student's code. The result is
    measured by :func:`evaluate_nelbo` (not by the student's function), so a loss
    that merely reports small numbers cannot pass.
    """
    x_train, x_test = x_train.to(torch.float32), x_test.to(torch.float32)
    gen = torch.Generator().manual_seed(init_seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(init_seed)
        enc = Encoder(x_train.shape[1], z_dim, hidden)
        dec = Decoder(z_dim, x_train.shape[1], hidden)
    opt = Adam([*enc.parameters(), *dec.parameters()], lr=lr)  # not torch.optim's: 2 s faster
    n = x_train.shape[0]
    losses = []
    with helpers_from(helpers):
        for _ in range(steps):
            losses.append(_train_step(x_train[torch.randint(n, (batch_size,), generator=gen)],
                                      enc, dec, opt))
    torch.manual_seed(init_seed + 1)
    result = evaluate_nelbo(x_test, enc, dec)
    tail = losses[-20:] or [float("nan")]
    result["train_loss_last"] = round(float(sum(tail) / len(tail)), 2)
    result["finite"] = all(math.isfinite(v) for v in losses)
    return result


# --------------------------------------------------------------------------- 2g


def build_ssvae(weights: dict):
    """Classifier x -> logits (C), encoder (x, y) -> (qm, qv), decoder (z, y) -> logits."""
    w = {k: _weight(v) for k, v in weights.items()}
    n_classes, hidden = w["cls_w2"].shape
    x_dim = w["cls_w1"].shape[1]
    z_dim = w["dec_w1"].shape[1] - n_classes

    def mlp(prefix, in_dim, out_dim):
        net = nn.Sequential(nn.Linear(in_dim, hidden), nn.ELU(), nn.Linear(hidden, out_dim))
        net.to(device=w[f"{prefix}_w1"].device, dtype=w[f"{prefix}_w1"].dtype)
        with torch.no_grad():
            net[0].weight.copy_(w[f"{prefix}_w1"])
            net[0].bias.copy_(w[f"{prefix}_b1"])
            net[2].weight.copy_(w[f"{prefix}_w2"])
            net[2].bias.copy_(w[f"{prefix}_b2"])
        return net

    cls = mlp("cls", x_dim, n_classes)
    enc = mlp("enc", x_dim + n_classes, 2 * z_dim)
    dec = mlp("dec", z_dim + n_classes, x_dim)

    def encoder_(x, y_onehot):
        qm, raw = enc(torch.cat([x, y_onehot.to(x.dtype)], dim=-1)).chunk(2, dim=-1)
        return qm, F.softplus(raw) + VAR_FLOOR

    def decoder_(z, y_onehot):
        y_onehot = y_onehot.to(z.dtype).expand(*z.shape[:-1], y_onehot.shape[-1])
        return dec(torch.cat([z, y_onehot], dim=-1))

    return cls, encoder_, decoder_


@one_thread
def ssvae_repeats(x_u, x_l, y_l, weights: dict, alpha: float, repeats: int,
                  helpers=None) -> dict:
    """ssvae_loss called ``repeats`` times: {"loss", "nelbo_u", "nelbo_l", "ce"}."""
    cls, enc, dec = build_ssvae(weights)
    keys = ("loss", "nelbo_u", "nelbo_l", "ce")
    out = {key: [] for key in keys}
    with torch.no_grad(), helpers_from(helpers):
        for _ in range(repeats):
            values = submission.ssvae_loss(x_u, x_l, y_l.long(), cls, enc, dec, float(alpha))
            if not isinstance(values, (tuple, list)) or len(values) != 4:
                raise ValueError("ssvae_loss must return the 4 values "
                                   "(loss, nelbo_u, nelbo_l, ce)")
            for key, value in zip(keys, values):
                out[key].append(_flat(value))
    return {key: _stack(values) for key, values in out.items()}


# --------------------------------------------------------------------------- any device



@one_thread
def meta_probe(name: str, shapes: dict | None = None, helpers=None) -> list:
    """Call the student's function ``name`` on float32 tensors of PyTorch's ``meta``
    device (shapes without data: every operation works, but mixing in a tensor made
    on the CPU, e.g. ``torch.zeros(d)`` without ``device=``, raises) and return
    ``[device type, dtype]`` of every tensor returned. ``shapes`` are the shapes of
    the networks' weights (the networks are built on ``meta`` too)."""
    validate = torch.distributions.Distribution._validate_args
    # argument validation of torch.distributions reads values (.item()): not on meta
    torch.distributions.Distribution.set_default_validate_args(False)
    try:
        return _meta_probe(name, shapes, helpers)
    finally:
        torch.distributions.Distribution.set_default_validate_args(validate)


def _meta_probe(name: str, shapes: dict | None, helpers) -> list:
    with torch.no_grad(), helpers_from(helpers):
        if name == "sample_gaussian":
            out = submission.sample_gaussian(meta(2, 5, 3), meta(2, 5, 3))
        elif name == "log_normal":
            out = submission.log_normal(meta(6, 4), meta(4), meta(1))
        elif name == "log_normal_mixture":
            out = submission.log_normal_mixture(meta(2, 6, 3), meta(4, 3), meta(4, 3))
        elif name == "kl_normal":
            out = submission.kl_normal(meta(6, 4), meta(6, 4), meta(4), meta(4))
        elif name == "ssvae_loss":
            cls, enc, dec = build_ssvae(shapes)
            n_classes = shapes["cls_w2"][0]
            x_dim = shapes["cls_w1"][1]
            out = submission.ssvae_loss(meta(5, x_dim), meta(3, x_dim),
                                        meta(3, dtype=torch.int64).clamp(0, n_classes - 1),
                                        cls, enc, dec, 1.0)
        else:
            enc, dec = build(shapes)
            x = meta(5, shapes["enc_w1"][1])
            if name == "negative_elbo_bound":
                out = submission.negative_elbo_bound(x, enc, dec)
            elif name == "negative_iwae_bound":
                out = submission.negative_iwae_bound(x, enc, dec, 3)
            elif name == "gmvae_negative_elbo_bound":
                z_dim = shapes["dec_w1"][1]
                out = submission.gmvae_negative_elbo_bound(x, enc, dec, meta(4, z_dim),
                                                           meta(4, z_dim))
            else:
                raise ValueError(f"meta_probe: unknown function {name!r}")
    return devices_and_dtypes(out)
