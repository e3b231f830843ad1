"""Harness of homework 4: runs INSIDE the grading sandbox, next to the student's code.

The checks cannot send neural networks across the sandbox boundary, only plain
arrays. These functions rebuild small fixed-architecture networks from weight
arrays, call the student's functions with them (or train with them) and return
plain tensors/numbers that the trusted checks judge: a loss's value, and its
gradients with respect to the network's parameters and to the generated
examples (so a missing ``detach`` or ``create_graph`` shows).

Networks (weights in a dict of arrays; a list of ints instead of an array is a
shape: the network is then built on PyTorch's ``meta`` device, see
:func:`meta_probe`):

* critic / discriminator ``net(x) -> (batch,)``: ``tanh(flat(x) W1^T + b1) w2 + b2``;
  a conditional one appends the one-hot label to ``flat(x)`` (``W1`` then has
  ``d + classes`` columns, ``classes`` = its number of extra columns, sent as
  ``classes``).
* critic of the training check: ``x (batch, d) -> (batch,)``, two tanh hidden layers.

Judging one task at a time: the conditional losses (4c) and the WGAN-GP critic
loss (4f) take ``helpers=None``. When graded, the checks pass the source text of
correct ``discriminator_loss``, ``generator_loss`` and ``gradient_penalty``;
:func:`helpers_from` puts them in place of yours for the duration of the call.
Independently of that, 4e and 4f always run with the harness's own
``interpolates`` in place of yours (:func:`pinned_interpolates`): with the mixing
weights sent by the checks, or drawn by the harness in the training check.
"""

from __future__ import annotations

import contextlib
import math

import submission
import torch

from coursekit.grading.harness_kit import Adam, devices_and_dtypes, meta, one_thread
from coursekit.grading.helper_swap import swap_helpers

HELPER_NAMES = ("discriminator_loss", "generator_loss", "gradient_penalty")


def _current_interpolates(real, fake):
    """``submission.interpolates`` as it is when called (the harness's while pinned)."""
    return submission.interpolates(real, fake)


def helpers_from(source):
    """Within the block, ``submission``'s helper functions are the ones defined by the
    Python text ``source`` (nothing changes when ``source`` is None); the text may call
    ``interpolates``, which is the one the harness pinned."""
    return swap_helpers(submission, source, HELPER_NAMES,
                        context={"interpolates": _current_interpolates})


@contextlib.contextmanager
def pinned_interpolates(eps=None, generator: torch.Generator | None = None):
    """Within the block, ``submission.interpolates`` is the harness's: mixing weights
    ``eps`` (batch,) when given, else drawn from ``generator``. Yields a dict whose
    ``"calls"`` counts the calls."""
    counter = {"calls": 0}

    def harness_interpolates(real, fake):
        counter["calls"] += 1
        shape = (real.shape[0],) + (1,) * (real.dim() - 1)
        if eps is not None:
            weights = torch.as_tensor(eps, dtype=real.dtype).to(real.device).reshape(shape)
        else:
            weights = torch.rand(shape, generator=generator, dtype=real.dtype).to(real.device)
        return weights * real + (1 - weights) * fake

    saved = submission.__dict__.get("interpolates")
    submission.interpolates = harness_interpolates
    try:
        yield counter
    finally:
        submission.interpolates = saved


# --------------------------------------------------------------------------- networks


def _weight(value, trainable: bool = False) -> torch.Tensor:
    """A weight array as a tensor; a list of ints is a shape: float32 on ``meta``."""
    if isinstance(value, (list, tuple)):
        return torch.empty(tuple(value), dtype=torch.float32, device="meta")
    t = torch.as_tensor(value).clone()
    return t.requires_grad_(True) if trainable and t.is_floating_point() else t


class Critic:
    """``x (batch, ...) [, y (batch,)] -> (batch,)``: one tanh hidden layer.

    ``classes > 0`` makes it conditional: the one-hot label joins the flattened input."""

    def __init__(self, weights: dict, classes: int = 0, trainable: bool = True):
        self.w = {k: _weight(v, trainable) for k, v in weights.items()}
        self.classes = int(classes)
        self.calls = 0

    def parameters(self):
        return [self.w[k] for k in ("w1", "b1", "w2", "b2")]

    def __call__(self, x, y=None):
        self.calls += 1
        h = x.flatten(1)
        if self.classes:
            if y is None:
                raise TypeError("this discriminator is conditional: call it as "
                                "discriminator(x, y) with the classes y")
            y = torch.as_tensor(y)
            if y.dtype != torch.long or y.shape != (x.shape[0],):
                raise TypeError(f"discriminator(x, y): y must be int64 of shape ({x.shape[0]},), "
                                f"got {y.dtype} of shape {tuple(y.shape)}")
            onehot = torch.nn.functional.one_hot(y.to(x.device), self.classes).to(h.dtype)
            h = torch.cat([h, onehot], dim=1)
        elif y is not None:
            raise TypeError("this critic is unconditional: call it as critic(x)")
        h = torch.tanh(torch.nn.functional.linear(h, self.w["w1"], self.w["b1"]))
        return h @ self.w["w2"] + self.w["b2"]


def _grads(loss: torch.Tensor, tensors: list) -> list:
    """d loss / d tensor for each tensor (zeros where the loss does not depend on it)."""
    if not loss.requires_grad:
        return [torch.zeros_like(t) for t in tensors]
    grads = torch.autograd.grad(loss, tensors, allow_unused=True)
    return [torch.zeros_like(t) if g is None else g.detach() for g, t in zip(grads, tensors)]


def _scalar(name: str, value) -> torch.Tensor:
    """A returned loss as a tensor, which must be a single number."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must return a tensor, got {type(value).__name__}")
    if value.numel() != 1:
        raise ValueError(f"{name} must return one number (a 0-dim tensor: the batch "
                         f"average), got shape {tuple(value.shape)}")
    return value.reshape(())


def _fake_with_graph(x_fake):
    """``x_fake`` as the output of a graph (as a generator's samples are), and the leaf
    that gradients reaching "the generator" arrive at."""
    leaf = torch.as_tensor(x_fake).clone().requires_grad_(True)
    return leaf * 1.0, leaf


# --------------------------------------------------------------------------- 4a, 4b, 4g


@one_thread
def apply(name: str, *arrays) -> dict:
    """The student's ``name`` on tensors made of ``arrays``: its value, and its gradient
    with respect to each input (all zeros where it does not depend on it)."""
    inputs = [torch.as_tensor(a).clone().requires_grad_(True) for a in arrays]
    out = getattr(submission, name)(*inputs)
    if name == "kl_optimal_critic":
        out = torch.as_tensor(out)
        return {"value": out.detach(), "grads": []}
    value = _scalar(name, out)
    return {"value": value.detach(), "grads": _grads(value, inputs)}


# --------------------------------------------------------------------------- 4c


@one_thread
def conditional(name: str, weights: dict, classes: int, x_real, y_real, x_fake, y_fake,
                helpers=None) -> dict:
    """The student's conditional loss ``name`` with a conditional discriminator built
    from ``weights``: its value, its gradients with respect to the discriminator's
    parameters and with respect to the fake examples (through which a generator
    would learn), and how many times the discriminator was called."""
    disc = Critic(weights, classes)
    fake, leaf = _fake_with_graph(x_fake)
    y_real, y_fake = torch.as_tensor(y_real), torch.as_tensor(y_fake)
    with helpers_from(helpers):
        if name == "conditional_discriminator_loss":
            out = submission.conditional_discriminator_loss(disc, torch.as_tensor(x_real),
                                                            y_real, fake, y_fake)
        else:
            out = submission.conditional_generator_loss(disc, fake, y_fake)
    value = _scalar(name, out)
    grads = _grads(value, [*disc.parameters(), leaf])
    return {"value": value.detach(), "param_grads": grads[:-1], "fake_grad": grads[-1]}


# --------------------------------------------------------------------------- 4d


@one_thread
def interpolation_runs(real, fake, repeats: int) -> torch.Tensor:
    """``repeats`` calls of the student's interpolates on the same inputs: (repeats, *shape)."""
    real, fake = torch.as_tensor(real), torch.as_tensor(fake)
    runs = []
    with torch.no_grad():
        for _ in range(repeats):
            out = submission.interpolates(real, fake)
            if not isinstance(out, torch.Tensor) or out.shape != real.shape:
                raise ValueError(f"interpolates must return a tensor of the inputs' shape "
                                 f"{tuple(real.shape)}, got "
                                 + (f"shape {tuple(out.shape)}" if isinstance(out, torch.Tensor)
                                    else type(out).__name__))
            if out.dtype != real.dtype:
                raise ValueError(f"interpolates must return the inputs' dtype {real.dtype}, "
                                 f"got {out.dtype}")
            runs.append(out)
    return torch.stack(runs)


# --------------------------------------------------------------------------- 4e, 4f


def _penalty_with_graph(value: torch.Tensor, name: str) -> torch.Tensor:
    if not value.requires_grad:
        raise ValueError(f"{name} returned a value with no graph back to the critic's "
                         "parameters: the penalty could not train the critic (take the "
                         "gradient with torch.autograd.grad(..., create_graph=True))")
    return value


@one_thread
def penalty(weights: dict, real, fake, eps, helpers=None) -> dict:
    """The student's gradient_penalty with mixing weights ``eps`` pinned: its value, its
    gradients with respect to the critic's parameters, the calls of interpolates."""
    critic = Critic(weights)
    with pinned_interpolates(eps) as counter:
        out = submission.gradient_penalty(critic, torch.as_tensor(real), torch.as_tensor(fake))
    value = _scalar("gradient_penalty", out)
    if counter["calls"] == 0:
        raise ValueError("gradient_penalty must draw its points with interpolates(real, fake) "
                         "(called by that name: the checks fix the points it returns)")
    value = _penalty_with_graph(value, "gradient_penalty")
    return {"value": value.detach(), "param_grads": _grads(value, critic.parameters()),
            "calls": counter["calls"]}


@one_thread
def wgan(name: str, weights: dict, real, fake, eps=None, gp_weight: float = 10.0,
         helpers=None) -> dict:
    """The student's WGAN loss ``name`` (critic or generator) with a critic built from
    ``weights`` and interpolation weights ``eps`` pinned: the value, its gradients with
    respect to the critic's parameters and to the fake examples."""
    critic = Critic(weights)
    fake, leaf = _fake_with_graph(fake)
    with helpers_from(helpers), pinned_interpolates(eps):
        if name == "wgan_critic_loss":
            out = submission.wgan_critic_loss(critic, torch.as_tensor(real), fake,
                                              gp_weight=float(gp_weight))
        else:
            out = submission.wgan_generator_loss(critic, fake)
    value = _scalar(name, out)
    grads = _grads(value, [*critic.parameters(), leaf])
    return {"value": value.detach(), "param_grads": grads[:-1], "fake_grad": grads[-1]}


# --------------------------------------------------------------------------- training


def _linear(generator: torch.Generator, n_in: int, n_out: int):
    bound = 1.0 / math.sqrt(n_in)
    w = ((torch.rand(n_out, n_in, generator=generator) * 2 - 1) * bound).requires_grad_(True)
    b = ((torch.rand(n_out, generator=generator) * 2 - 1) * bound).requires_grad_(True)
    return w, b


class _MLP:
    """``(batch, n_in) -> (batch, n_out)`` with tanh hidden layers (float32, trainable)."""

    def __init__(self, sizes: list, generator: torch.Generator):
        self.layers = [_linear(generator, a, b) for a, b in zip(sizes[:-1], sizes[1:])]

    def parameters(self):
        return [t for layer in self.layers for t in layer]

    def __call__(self, h):
        for i, (w, b) in enumerate(self.layers):
            h = torch.nn.functional.linear(h, w, b)
            if i < len(self.layers) - 1:
                h = torch.tanh(h)
        return h


@one_thread
def train_critic(real, fake, points, steps: int = 200, batch_size: int = 128, hidden: int = 64,
                 lr: float = 1e-3, gp_weight: float = 10.0, init_seed: int = 0,
                 helpers=None) -> dict:
    """Train a critic with the student's wgan_critic_loss between the examples ``real``
    and ``fake`` (each (n, d), fixed: no generator), Adam on minibatches of each for
    ``steps`` updates. Initial weights, minibatches and interpolation weights come from
    ``init_seed`` (identical for every submission). Returns the trained critic's scores
    on ``points`` (the checks compute the Wasserstein-1 estimate from them) and whether
    every loss was finite."""
    real = torch.as_tensor(real, dtype=torch.float32)
    fake = torch.as_tensor(fake, dtype=torch.float32)
    gen = torch.Generator().manual_seed(init_seed)
    net = _MLP([real.shape[1], hidden, hidden, 1], gen)

    def critic(x):
        return net(x).squeeze(-1)

    opt = Adam(net.parameters(), lr=lr, betas=(0.5, 0.9))
    finite = True
    with helpers_from(helpers), pinned_interpolates(generator=gen):
        for _ in range(steps):
            batch_real = real[torch.randint(real.shape[0], (batch_size,), generator=gen)]
            batch_fake = fake[torch.randint(fake.shape[0], (batch_size,), generator=gen)]
            loss = _scalar("wgan_critic_loss", submission.wgan_critic_loss(
                critic, batch_real, batch_fake, gp_weight=gp_weight))
            if not loss.requires_grad:
                raise ValueError("wgan_critic_loss returned a value with no graph back to "
                                 "the critic's parameters: the critic cannot learn from it")
            opt.zero_grad()
            loss.backward()
            opt.step()
            if not math.isfinite(float(loss.detach())):
                finite = False
                break
    with torch.no_grad():
        scores = critic(torch.as_tensor(points, dtype=torch.float32))
    return {"scores": scores, "finite": finite}


# --------------------------------------------------------------------------- any device



@one_thread
def meta_probe(name: str, shapes=None, helpers=None) -> list:
    """Call the student's function ``name`` on float32 tensors of PyTorch's ``meta``
    device (shapes without data: every operation works, but mixing in a tensor made
    on the CPU, e.g. ``torch.zeros(d)`` without ``device=``, raises) and return
    ``[device type, dtype]`` of every tensor returned. ``shapes`` are the shapes of
    the critic's weights (the critic is built on ``meta`` too)."""
    x, y = meta(6, 3), meta(6, 3)
    labels = torch.zeros(6, dtype=torch.long, device="meta")
    if name in ("discriminator_loss", "kl_lower_bound"):
        out = getattr(submission, name)(meta(6), meta(4))
    elif name in ("generator_loss",):
        out = submission.generator_loss(meta(4))
    elif name == "kl_optimal_critic":
        out = submission.kl_optimal_critic(meta(6), meta(6))
    elif name == "interpolates":
        out = submission.interpolates(x, y)
    elif name.startswith("conditional_"):
        disc = Critic(shapes, classes=shapes["w1"][1] - 3, trainable=False)
        with helpers_from(helpers):
            if name == "conditional_discriminator_loss":
                out = submission.conditional_discriminator_loss(disc, x, labels, y, labels)
            else:
                out = submission.conditional_generator_loss(disc, y, labels)
    else:
        critic = Critic(shapes, trainable=False)
        with helpers_from(helpers), pinned_interpolates():
            if name == "gradient_penalty":
                out = submission.gradient_penalty(critic, x, y)
            elif name == "wgan_critic_loss":
                out = submission.wgan_critic_loss(critic, x, y)
            else:
                out = submission.wgan_generator_loss(critic, y)
    return devices_and_dtypes(out)
