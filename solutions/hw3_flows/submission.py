"""Homework 3: normalizing flows (MADE masks, a MAF of MADE blocks, planar flow, affine coupling).

Write the body of every function below (the parts that raise
``NotImplementedError``). Everything is plain PyTorch and must work for any
floating dtype, any device and any batch size; each docstring gives the shapes
and the equation to implement.

Conventions used throughout (the same as the lecture's library):

* A flow maps data ``x`` to noise ``z`` of the same dimension. The **forward**
  direction is data to noise and returns ``log|det dz/dx|``; the **inverse**
  direction is noise to data and returns ``log|det dx/dz|`` (minus the former).
  The change of variables then reads ``log p(x) = log N(z; 0, I) + log|det dz/dx|``.
* Batches are ``(batch, d)``; every log-determinant is one number per example,
  shape ``(batch,)``: a sum over the FEATURES, never over the batch.
* ``net`` arguments are given networks (callables); you never build or train
  them here. A MADE network ``net(x) -> (mu, alpha)`` returns the shift and the
  log-scale of every dimension, each ``(batch, d)``, with ``mu_i`` and
  ``alpha_i`` functions of the dimensions BEFORE ``i`` in the network's ordering
  only (its masks guarantee that).

Every task is graded on its own: when graded, the MAF functions of 3d run with
correct versions of ``made_forward``, ``made_inverse`` and
``log_standard_normal`` in place of yours, so a mistake in 3b or 3c costs points
only there. Call these helpers by their names (they are looked up when your MAF
runs). ``coursekit check`` cannot do that (the correct helpers are not
released): there your MAF uses your own helpers, so fix 3b and 3c first.

Run ``coursekit check hw3`` (or the check cells in the notebook) to see your
public-check score.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F  # noqa: F401 (F.softplus, for 3e)

LOG_2PI = math.log(2.0 * math.pi)
SCALE_BOUND = 2.0  # the coupling layer's log-scales lie in (-SCALE_BOUND, SCALE_BOUND)


def log_standard_normal(z: torch.Tensor) -> torch.Tensor:
    """Given helper (not a task): log N(z; 0, I), summed over the last dimension.

    log N(z; 0, I) = -1/2 sum_j [ log(2 pi) + z_j^2 ]

    Args:
        z: (..., d).

    Returns:
        (...) tensor.
    """
    return -0.5 * (LOG_2PI + z * z).sum(-1)


# --------------------------------------------------------------------------
# 3a  MADE degrees and masks
# --------------------------------------------------------------------------


def made_degrees(order: torch.Tensor, hidden_sizes) -> list:
    """The degree of every unit of a MADE with n >= 2 inputs.

    * inputs: variable ``order[i]`` comes i-th, so its degree is i + 1:
      ``degrees[0][order[i]] = i + 1`` (degrees 1..n);
    * hidden layer l (of ``hidden_sizes[l]`` units): unit k gets the degree
      ``(k mod (n - 1)) + 1``, cycling through 1, 2, ..., n-1, 1, 2, ... (a unit
      of degree n could not feed any output, so hidden degrees stop at n - 1).

    Example: n = 3 and the ordering x2, x3, x1 (``order = [1, 2, 0]``) give
    input degrees [3, 1, 2]; a hidden layer of 4 units gets [1, 2, 1, 2].

    Args:
        order: (n,) int64, a permutation of 0..n-1.
        hidden_sizes: list of ints, the widths of the hidden layers.

    Returns:
        A list of ``len(hidden_sizes) + 1`` int64 tensors on ``order``'s device:
        the (n,) input degrees, then one (hidden_sizes[l],) tensor per layer.
    """
    ### HINT: degrees[order] = arange(1, n + 1); hidden: arange(h) % (n - 1) + 1
    ### BEGIN SOLUTION
    n = order.shape[0]
    inputs = torch.empty_like(order)
    inputs[order] = torch.arange(1, n + 1, dtype=order.dtype, device=order.device)
    degrees = [inputs]
    for size in hidden_sizes:
        degrees.append(torch.arange(size, dtype=order.dtype, device=order.device) % (n - 1) + 1)
    return degrees
    ### END SOLUTION


def made_masks(order: torch.Tensor, hidden_sizes) -> list:
    """MADE's masks, one (out, in) 0/1 matrix per layer (``nn.Linear``'s weight layout).

    With ``m`` the degrees of :func:`made_degrees`:

    * into a hidden layer: unit k sees unit j iff ``m_out(k) >= m_in(j)``;
    * into the outputs: output i (which carries the degree of input i) sees the
      last hidden unit k iff ``m_in(i) > m_hidden(k)``, STRICTLY.

    So output i depends only on inputs that come before i in the ordering.

    Args:
        order: (n,) int64 permutation; hidden_sizes: list of ints (may be empty:
            then the single mask goes from the inputs straight to the outputs).

    Returns:
        A list of ``len(hidden_sizes) + 1`` floating tensors of 0s and 1s on
        ``order``'s device, shapes (hidden_sizes[0], n), ..., (n, hidden_sizes[-1]).
    """
    ### HINT: compare degrees by broadcasting: d_out[:, None] >= d_in[None, :]
    ### BEGIN SOLUTION
    degrees = made_degrees(order, hidden_sizes)
    masks = [(d_out[:, None] >= d_in[None, :]).float()
             for d_in, d_out in zip(degrees[:-1], degrees[1:])]
    masks.append((degrees[0][:, None] > degrees[-1][None, :]).float())
    return masks
    ### END SOLUTION


# --------------------------------------------------------------------------
# 3b  MADE block, data to noise
# --------------------------------------------------------------------------


def made_forward(x: torch.Tensor, net):
    """One MAF block from data to noise, in ONE pass of the MADE.

    (mu, alpha) = net(x);   z_i = (x_i - mu_i) * exp(-alpha_i)

    The Jacobian dz/dx is triangular in the ordering with diagonal exp(-alpha_i), so

        log|det dz/dx| = -sum_i alpha_i.

    Args:
        x: (batch, d) data.
        net: MADE network, ``net(x) -> (mu, alpha)``, each (batch, d).

    Returns:
        (z, logdet): z (batch, d) and log|det dz/dx| (batch,).
    """
    ### HINT: two lines; the log-scale enters with a minus sign
    ### BEGIN SOLUTION
    mu, alpha = net(x)
    return (x - mu) * torch.exp(-alpha), -alpha.sum(-1)
    ### END SOLUTION


# --------------------------------------------------------------------------
# 3c  MADE block, noise to data
# --------------------------------------------------------------------------


def made_inverse(z: torch.Tensor, net):
    """Invert :func:`made_forward`: noise to data, in d SEQUENTIAL passes of the MADE.

    x_i = mu_i(x_<i) + z_i * exp(alpha_i(x_<i))

    The shifts and log-scales of dimension i need the dimensions before it, which
    are not known yet. Start from x = 0 and repeat d times: (mu, alpha) = net(x),
    then x = mu + z * exp(alpha). After pass k the first k dimensions in the
    network's ordering are exact (whatever the ordering), so after d passes all
    are, and so are the last pass's log-scales.

        log|det dx/dz| = +sum_i alpha_i   (minus made_forward's log-det at x)

    Args:
        z: (batch, d) noise.
        net: as in :func:`made_forward`.

    Returns:
        (x, logdet): x (batch, d) with ``made_forward(x, net)[0] == z``, and
        log|det dx/dz| (batch,).
    """
    ### HINT: x = torch.zeros_like(z); a loop of z.shape[-1] passes
    ### BEGIN SOLUTION
    x = torch.zeros_like(z)
    for _ in range(z.shape[-1]):
        mu, alpha = net(x)
        x = mu + z * torch.exp(alpha)
    return x, alpha.sum(-1)
    ### END SOLUTION


# --------------------------------------------------------------------------
# 3d  MAF: MADE blocks with reversals between them
# --------------------------------------------------------------------------


def maf_log_prob(x: torch.Tensor, nets) -> torch.Tensor:
    """Log-density of a MAF of K = len(nets) MADE blocks with a reversal between blocks.

    From data to noise: h = x; for k = 0, ..., K-1: if k > 0, reverse the features
    of h (``h.flip(-1)``); then (h, logdet_k) = made_forward(h, nets[k]). With z the
    final h:

        log p(x) = log N(z; 0, I) + sum_k logdet_k

    (a reversal is a permutation: its log|det| is 0.)

    Args:
        x: (batch, d) data.
        nets: list of K MADE networks (see :func:`made_forward`).

    Returns:
        (batch,) log-densities.
    """
    ### HINT: made_forward and log_standard_normal; accumulate the log-dets
    ### BEGIN SOLUTION
    h = x
    total = torch.zeros_like(x[..., 0])
    for k, net in enumerate(nets):
        if k > 0:
            h = h.flip(-1)
        h, logdet = made_forward(h, net)
        total = total + logdet
    return log_standard_normal(h) + total
    ### END SOLUTION


def maf_inverse(z: torch.Tensor, nets):
    """Noise to data through the MAF of :func:`maf_log_prob`: undo its steps in reverse.

    h = z; for k = K-1, ..., 0: (h, logdet_k) = made_inverse(h, nets[k]); then, if
    k > 0, reverse the features of h (undoing the reversal that came before block k).

    Args:
        z: (batch, d) noise.
        nets: as in :func:`maf_log_prob`.

    Returns:
        (x, logdet): x (batch, d), and log|det dx/dz| = sum_k logdet_k (batch,).
    """
    ### HINT: loop over reversed(range(len(nets))); flip AFTER block k's inverse
    ### BEGIN SOLUTION
    h = z
    total = torch.zeros_like(z[..., 0])
    for k in reversed(range(len(nets))):
        h, logdet = made_inverse(h, nets[k])
        total = total + logdet
        if k > 0:
            h = h.flip(-1)
    return h, total
    ### END SOLUTION


def maf_sample(nets, n: int, features: int, dtype=torch.float32, device=None) -> torch.Tensor:
    """Given (not a task): n samples of the MAF, z ~ N(0, I) mapped by :func:`maf_inverse`."""
    z = torch.randn(n, features, dtype=dtype, device=device)
    return maf_inverse(z, nets)[0]


# --------------------------------------------------------------------------
# 3e  Planar flow
# --------------------------------------------------------------------------


def planar_u_hat(u: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """The constrained vector that keeps the planar map invertible.

    u_hat = u + [m(w^T u) - w^T u] * w / ||w||^2,   m(s) = -1 + softplus(s)

    so that w^T u_hat = m(w^T u) > -1.

    Args:
        u, w: (d,) parameters.

    Returns:
        (d,) tensor.
    """
    ### HINT: F.softplus; w @ u is the dot product
    ### BEGIN SOLUTION
    wu = w @ u
    return u + (F.softplus(wu) - 1.0 - wu) * w / (w @ w)
    ### END SOLUTION


def planar_flow(z: torch.Tensor, u: torch.Tensor, w: torch.Tensor, b):
    """One planar layer (noise to data), with the invertibility constraint.

    f(z) = z + u_hat * h(w^T z + b),   h = tanh,   u_hat = planar_u_hat(u, w)

    log|det df/dz| = log|1 + h'(w^T z + b) * u_hat^T w|,   h'(a) = 1 - tanh(a)^2

    Args:
        z: (batch, d) points.
        u, w: (d,) parameters; b: a scalar (a float or a 0-dim tensor).

    Returns:
        (f, logdet): f (batch, d) and log|det df/dz| (batch,).
    """
    ### HINT: a = z @ w + b is (batch,): broadcast it with a[:, None]
    ### BEGIN SOLUTION
    u_hat = planar_u_hat(u, w)
    a = z @ w + b
    f = z + torch.tanh(a)[:, None] * u_hat
    logdet = torch.log(torch.abs(1.0 + (1.0 - torch.tanh(a) ** 2) * (w @ u_hat)))
    return f, logdet
    ### END SOLUTION


# --------------------------------------------------------------------------
# 3f  Affine coupling layer (RealNVP)
# --------------------------------------------------------------------------


def affine_coupling_forward(x: torch.Tensor, net):
    """RealNVP's affine coupling from data to noise.

    Split x = [x_a, x_b] with x_a = x[:, :d // 2] (passed unchanged) and x_b the rest.
    The network sees x_a only: ``net(x_a)`` is (batch, 2 * d_b), d_b = d - d // 2,
    whose first d_b columns are a raw log-scale r and whose last d_b are a shift t.
    The log-scale is soft-clamped to (-SCALE_BOUND, SCALE_BOUND):

        s = SCALE_BOUND * tanh(r / SCALE_BOUND)
        z_a = x_a,   z_b = x_b * exp(s) + t,   log|det dz/dx| = sum_j s_j

    Args:
        x: (batch, d) data, d >= 2.
        net: callable, (batch, d // 2) -> (batch, 2 * (d - d // 2)).

    Returns:
        (z, logdet): z (batch, d) = [z_a, z_b], log|det dz/dx| (batch,).
    """
    ### HINT: split net(x_a) in two along the last dim; torch.cat([z_a, z_b], -1)
    ### BEGIN SOLUTION
    d_a = x.shape[-1] // 2
    x_a, x_b = x[:, :d_a], x[:, d_a:]
    params = net(x_a)
    raw, t = params[:, : x_b.shape[-1]], params[:, x_b.shape[-1]:]
    s = SCALE_BOUND * torch.tanh(raw / SCALE_BOUND)
    return torch.cat([x_a, x_b * torch.exp(s) + t], dim=-1), s.sum(-1)
    ### END SOLUTION


def affine_coupling_inverse(z: torch.Tensor, net):
    """Invert :func:`affine_coupling_forward`: noise to data, in one pass.

    x_a = z_a,   x_b = (z_b - t) * exp(-s),   log|det dx/dz| = -sum_j s_j

    with s and t computed by ``net(z_a)`` exactly as in the forward direction
    (z_a = x_a, so the network sees the same input).

    Args:
        z: (batch, d) noise; net: as in :func:`affine_coupling_forward`.

    Returns:
        (x, logdet): x (batch, d), log|det dx/dz| (batch,).
    """
    ### HINT: the same split and clamp as the forward direction
    ### BEGIN SOLUTION
    d_a = z.shape[-1] // 2
    z_a, z_b = z[:, :d_a], z[:, d_a:]
    params = net(z_a)
    raw, t = params[:, : z_b.shape[-1]], params[:, z_b.shape[-1]:]
    s = SCALE_BOUND * torch.tanh(raw / SCALE_BOUND)
    return torch.cat([z_a, (z_b - t) * torch.exp(-s)], dim=-1), -s.sum(-1)
    ### END SOLUTION
