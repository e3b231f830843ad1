"""A correct hw3 submission written with loops and other building blocks.

Degrees and masks filled entry by entry in Python loops (masks as float64);
the forward MADE map divides by exp(alpha); the inverse starts from z instead
of 0 and runs its d passes in a while loop; the MAF reverses with an index
tensor and accumulates log-dets in a list; u_hat's softplus is written as
log1p(exp(.)) guarded for large arguments; the coupling layer splits the
network's output with torch.chunk.
"""

import math

import torch

SCALE_BOUND = 2.0


def log_standard_normal(z):
    d = z.shape[-1]
    return -0.5 * (z**2).sum(-1) - 0.5 * d * math.log(2 * math.pi)


def made_degrees(order, hidden_sizes):
    n = len(order)
    inputs = torch.zeros(n, dtype=torch.long, device=order.device)
    for position in range(n):
        inputs[int(order[position])] = position + 1
    out = [inputs]
    for size in hidden_sizes:
        out.append(torch.tensor([k % (n - 1) + 1 for k in range(size)], dtype=torch.long,
                                device=order.device))
    return out


def made_masks(order, hidden_sizes):
    degrees = made_degrees(order, hidden_sizes)
    masks = []
    for d_in, d_out in zip(degrees[:-1], degrees[1:]):
        mask = torch.zeros(len(d_out), len(d_in), dtype=torch.float64, device=order.device)
        for k in range(len(d_out)):
            for j in range(len(d_in)):
                if d_out[k] >= d_in[j]:
                    mask[k, j] = 1.0
        masks.append(mask)
    last, first = degrees[-1], degrees[0]
    mask = torch.zeros(len(first), len(last), dtype=torch.float64, device=order.device)
    for i in range(len(first)):
        for k in range(len(last)):
            if first[i] > last[k]:
                mask[i, k] = 1.0
    masks.append(mask)
    return masks


def made_forward(x, net):
    mu, alpha = net(x)
    z = (x - mu) / torch.exp(alpha)
    return z, -torch.sum(alpha, dim=1)


def made_inverse(z, net):
    x = z
    passes = 0
    while passes < z.shape[1]:
        mu, alpha = net(x)
        x = z * torch.exp(alpha) + mu
        passes += 1
    return x, torch.sum(alpha, dim=1)


def maf_log_prob(x, nets):
    reverse = torch.arange(x.shape[1] - 1, -1, -1, device=x.device)
    logdets = []
    h = x
    for k in range(len(nets)):
        if k:
            h = h[:, reverse]
        h, ld = made_forward(h, nets[k])
        logdets.append(ld)
    return log_standard_normal(h) + torch.stack(logdets, 0).sum(0)


def maf_inverse(z, nets):
    reverse = torch.arange(z.shape[1] - 1, -1, -1, device=z.device)
    logdets = []
    h = z
    for k in range(len(nets) - 1, -1, -1):
        h, ld = made_inverse(h, nets[k])
        logdets.append(ld)
        if k:
            h = h[:, reverse]
    return h, torch.stack(logdets, 0).sum(0)


def maf_sample(nets, n, features, dtype=torch.float32, device=None):
    return maf_inverse(torch.randn(n, features, dtype=dtype, device=device), nets)[0]


def _softplus(s):
    return torch.where(s > 30, s, torch.log1p(torch.exp(torch.clamp(s, max=30))))


def planar_u_hat(u, w):
    wu = torch.dot(w, u)
    m = -1 + _softplus(wu)
    return u + (m - wu) * w / torch.dot(w, w)


def planar_flow(z, u, w, b):
    u_hat = planar_u_hat(u, w)
    a = torch.matmul(z, w) + b
    h = torch.tanh(a)
    f = z + h.unsqueeze(-1) * u_hat.unsqueeze(0)
    psi = (1 - h * h).unsqueeze(-1) * w  # (batch, d)
    return f, torch.log(torch.abs(1 + psi @ u_hat))


def _scale_shift(x_a, net):
    raw, t = torch.chunk(net(x_a), 2, dim=-1)
    return SCALE_BOUND * torch.tanh(raw / SCALE_BOUND), t


def affine_coupling_forward(x, net):
    x_a, x_b = x.split([x.shape[1] // 2, x.shape[1] - x.shape[1] // 2], dim=1)
    s, t = _scale_shift(x_a, net)
    return torch.cat((x_a, torch.exp(s) * x_b + t), 1), s.sum(1)


def affine_coupling_inverse(z, net):
    z_a, z_b = z.split([z.shape[1] // 2, z.shape[1] - z.shape[1] // 2], dim=1)
    s, t = _scale_shift(z_a, net)
    return torch.cat((z_a, (z_b - t) / torch.exp(s)), 1), -s.sum(1)
