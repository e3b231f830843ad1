# ruff: noqa: E501
"""One realistic mistake per entry, applied to the reference solution of hw3.

Each entry is ``name: (task, description, [(old, new), ...])``: the wrong
submission is ``solutions/hw3_flows/submission.py`` with every ``old`` text (which
must occur exactly once) replaced by ``new``; the changed line carries a
``MISTAKE`` comment. Generating them keeps the mistakes in step with the
reference when it changes.
"""

MISTAKES = {
    "mask_output_geq": (
        "3a",
        "output mask with >= instead of >: output i sees hidden units of its own degree (x_i leaks into its own parameters).",
        [(
            "    masks.append((degrees[0][:, None] > degrees[-1][None, :]).float())\n",
            "    masks.append((degrees[0][:, None] >= degrees[-1][None, :]).float())  # MISTAKE: >=\n",
        )],
    ),
    "mask_hidden_strict": (
        "3a",
        "hidden masks with > instead of >=: a unit no longer sees inputs of its own degree.",
        [(
            "    masks = [(d_out[:, None] >= d_in[None, :]).float()\n",
            "    masks = [(d_out[:, None] > d_in[None, :]).float()  # MISTAKE: > for hidden\n",
        )],
    ),
    "degrees_are_order": (
        "3a",
        "input degrees order + 1 (the ordering itself) instead of its inverse permutation.",
        [(
            "    inputs[order] = torch.arange(1, n + 1, dtype=order.dtype, device=order.device)\n",
            "    inputs = order + 1  # MISTAKE: the ordering, not the degrees\n",
        )],
    ),
    "hidden_degrees_up_to_n": (
        "3a",
        "hidden degrees cycle through 1..n instead of 1..n-1 (units of degree n feed nothing).",
        [(
            "        degrees.append(torch.arange(size, dtype=order.dtype, device=order.device) % (n - 1) + 1)\n",
            "        degrees.append(torch.arange(size, dtype=order.dtype, device=order.device) % n + 1)  # MISTAKE\n",
        )],
    ),
    "forward_logdet_sign": (
        "3b",
        "returns +sum(alpha) as log|det dz/dx| (the sampling direction's log-det).",
        [(
            "    return (x - mu) * torch.exp(-alpha), -alpha.sum(-1)\n",
            "    return (x - mu) * torch.exp(-alpha), alpha.sum(-1)  # MISTAKE: sign\n",
        )],
    ),
    "forward_exp_plus_alpha": (
        "3b",
        "multiplies by exp(+alpha) instead of exp(-alpha) in the forward map.",
        [(
            "    return (x - mu) * torch.exp(-alpha), -alpha.sum(-1)\n",
            "    return (x - mu) * torch.exp(alpha), -alpha.sum(-1)  # MISTAKE: exp(+alpha)\n",
        )],
    ),
    "forward_logdet_over_batch": (
        "3b",
        "sums the log-scales over the batch (dim 0) instead of the features.",
        [(
            "    return (x - mu) * torch.exp(-alpha), -alpha.sum(-1)\n",
            "    return (x - mu) * torch.exp(-alpha), -alpha.sum(0)  # MISTAKE: batch axis\n",
        )],
    ),
    "inverse_one_pass": (
        "3c",
        "inverts in one pass of the MADE instead of d sequential passes.",
        [(
            "    for _ in range(z.shape[-1]):\n        mu, alpha = net(x)\n",
            "    for _ in range(1):  # MISTAKE: one pass\n        mu, alpha = net(x)\n",
        )],
    ),
    "inverse_logdet_sign": (
        "3c",
        "returns -sum(alpha) (the forward log-det) as log|det dx/dz|.",
        [(
            "    return x, alpha.sum(-1)\n",
            "    return x, -alpha.sum(-1)  # MISTAKE: sign\n",
        )],
    ),
    "maf_dropped_logdet": (
        "3d",
        "leaves the sum of log-dets out of the MAF's log-density.",
        [(
            "    return log_standard_normal(h) + total\n",
            "    return log_standard_normal(h)  # MISTAKE: no log-det\n",
        )],
    ),
    "maf_permutation_not_inverted": (
        "3d",
        "maf_inverse undoes the reversals after the wrong blocks (after blocks 0..K-2, the forward pass's pattern, instead of after blocks 1..K-1).",
        [(
            "        if k > 0:\n            h = h.flip(-1)\n    return h, total\n",
            "        if k < len(nets) - 1:  # MISTAKE: reversal undone after the wrong blocks\n            h = h.flip(-1)\n    return h, total\n",
        )],
    ),
    "maf_no_reversal": (
        "3d",
        "never reverses the features between blocks in maf_log_prob.",
        [(
            "        if k > 0:\n            h = h.flip(-1)\n        h, logdet = made_forward(h, net)\n",
            "        h, logdet = made_forward(h, net)  # MISTAKE: no reversal between blocks\n",
        )],
    ),
    "maf_logdet_over_batch": (
        "3d",
        "adds the batch total of the log-dets to every example's log-density.",
        [(
            "        total = total + logdet\n    return log_standard_normal(h) + total\n",
            "        total = total + logdet.sum()  # MISTAKE: summed over the batch\n    return log_standard_normal(h) + total\n",
        )],
    ),
    "planar_u_not_u_hat": (
        "3e",
        "planar map and log-det with u instead of u_hat.",
        [(
            "    u_hat = planar_u_hat(u, w)\n",
            "    u_hat = u  # MISTAKE: unconstrained u\n",
        )],
    ),
    "planar_h_not_hprime": (
        "3e",
        "log-det with h(a) = tanh(a) instead of h'(a) = 1 - tanh(a)^2.",
        [(
            "    logdet = torch.log(torch.abs(1.0 + (1.0 - torch.tanh(a) ** 2) * (w @ u_hat)))\n",
            "    logdet = torch.log(torch.abs(1.0 + torch.tanh(a) * (w @ u_hat)))  # MISTAKE: h, not h'\n",
        )],
    ),
    "planar_wrong_axis": (
        "3e",
        "w^T z summed along the batch axis (dim 0) instead of the features.",
        [(
            "    a = z @ w + b\n",
            "    a = (z * w).sum(0) + b  # MISTAKE: wrong axis\n",
        )],
    ),
    "u_hat_no_softplus": (
        "3e",
        "m(x) = -1 + x instead of -1 + softplus(x), so u_hat = u - w / ||w||^2.",
        [(
            "    return u + (F.softplus(wu) - 1.0 - wu) * w / (w @ w)\n",
            "    return u + (wu - 1.0 - wu) * w / (w @ w)  # MISTAKE: no softplus\n",
        )],
    ),
    "coupling_unconstrained_scale": (
        "3f",
        "forward map with exp of the raw, unconstrained log-scale.",
        [(
            "    s = SCALE_BOUND * torch.tanh(raw / SCALE_BOUND)\n    return torch.cat([x_a, x_b * torch.exp(s) + t], dim=-1), s.sum(-1)\n",
            "    s = SCALE_BOUND * torch.tanh(raw / SCALE_BOUND)\n    return torch.cat([x_a, x_b * torch.exp(raw) + t], dim=-1), s.sum(-1)  # MISTAKE: raw scale\n",
        )],
    ),
    "coupling_inverse_logdet_sign": (
        "3f",
        "inverse returns +sum(s) as log|det dx/dz|.",
        [(
            "    return torch.cat([z_a, (z_b - t) * torch.exp(-s)], dim=-1), -s.sum(-1)\n",
            "    return torch.cat([z_a, (z_b - t) * torch.exp(-s)], dim=-1), s.sum(-1)  # MISTAKE: sign\n",
        )],
    ),
    "coupling_split_even": (
        "3f",
        "splits the network's output at d // 2 instead of d_b (wrong for odd d).",
        [(
            "    raw, t = params[:, : x_b.shape[-1]], params[:, x_b.shape[-1]:]\n",
            "    raw, t = params[:, :d_a], params[:, d_a:]  # MISTAKE: split at d_a\n",
        )],
    ),
}
