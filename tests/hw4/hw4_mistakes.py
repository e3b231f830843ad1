# ruff: noqa: E501
"""One realistic mistake per entry, applied to the reference solution of hw4.

Each entry is ``name: (task, description, [(old, new), ...])``: the wrong
submission is ``solutions/hw4_gans/submission.py`` with every ``old`` text (which
must occur exactly once) replaced by ``new``; the changed line carries a
``MISTAKE`` comment. Generating them keeps the mistakes in step with the
reference when it changes.
"""

D_LOSS = "    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()\n"
G_LOSS = "    return F.softplus(-fake_logits).mean()\n"
EPS = "    eps = torch.rand(shape, dtype=real.dtype, device=real.device)\n"
GRAD = "    (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)\n"
NORMS = "    norms = grad.flatten(1).norm(dim=1)\n"
GAP = "    gap = critic(fake).mean() - critic(real).mean()\n"
KL = "    return real_scores.mean() - torch.exp(fake_scores - 1.0).mean()\n"
T_STAR = "    return 1.0 + log_p - log_q\n"

MISTAKES = {
    "d_loss_log_of_sigmoid": (
        "4a",
        "log(sigmoid(l)) and log(1 - sigmoid(l)) taken literally: -inf once sigmoid rounds to 0 or 1.",
        [(D_LOSS, "    return -torch.log(torch.sigmoid(real_logits)).mean() - torch.log(1 - torch.sigmoid(fake_logits)).mean()  # MISTAKE\n")],
    ),
    "d_loss_labels_swapped": (
        "4a",
        "real examples labelled 0 and fakes 1.",
        [(D_LOSS, "    return F.softplus(real_logits).mean() + F.softplus(-fake_logits).mean()  # MISTAKE: labels swapped\n")],
    ),
    "d_loss_mean_of_concatenation": (
        "4a",
        "one mean over the concatenated real and fake terms instead of one mean each (half the loss, and real and fake weighted by their counts).",
        [(D_LOSS, "    return torch.cat([F.softplus(-real_logits), F.softplus(fake_logits)]).mean()  # MISTAKE\n")],
    ),
    "g_loss_minimax": (
        "4b",
        "the saturating minimax loss mean log(1 - D) instead of -mean log D.",
        [(G_LOSS, "    return -F.softplus(fake_logits).mean()  # MISTAKE: minimax log(1 - D)\n")],
    ),
    "g_loss_log_of_sigmoid": (
        "4b",
        "-log(sigmoid(l)) taken literally: inf where the discriminator rejects a fake confidently.",
        [(G_LOSS, "    return -torch.log(torch.sigmoid(fake_logits)).mean()  # MISTAKE: unstable\n")],
    ),
    "g_loss_fake_label": (
        "4b",
        "the generator minimises the discriminator's loss on its fakes (label 0) instead of passing them as real.",
        [(G_LOSS, "    return F.softplus(fake_logits).mean()  # MISTAKE: label 0 for the generator\n")],
    ),
    "cond_fakes_with_real_labels": (
        "4c",
        "the fakes are judged with the REAL examples' labels instead of the labels they were generated for.",
        [("    fake_logits = discriminator(x_fake.detach(), y_fake)\n",
          "    fake_logits = discriminator(x_fake.detach(), y_real)  # MISTAKE: y_real\n")],
    ),
    "cond_no_detach": (
        "4c",
        "the discriminator's loss keeps x_fake's graph: its update sends gradients into the generator.",
        [("    fake_logits = discriminator(x_fake.detach(), y_fake)\n",
          "    fake_logits = discriminator(x_fake, y_fake)  # MISTAKE: no detach\n")],
    ),
    "cond_generator_detached": (
        "4c",
        "the generator's loss detaches x_fake: no gradient reaches the generator.",
        [("    return generator_loss(discriminator(x_fake, y_fake))\n",
          "    return generator_loss(discriminator(x_fake.detach(), y_fake))  # MISTAKE: detach\n")],
    ),
    "interp_eps_per_feature": (
        "4d",
        "one mixing weight per FEATURE (rand_like): the points leave their segments.",
        [(EPS, "    eps = torch.rand_like(real)  # MISTAKE: one weight per feature\n")],
    ),
    "interp_one_eps_per_batch": (
        "4d",
        "one mixing weight for the whole batch.",
        [(EPS, "    eps = torch.rand(1, dtype=real.dtype, device=real.device)  # MISTAKE: one for all\n")],
    ),
    "interp_normal_eps": (
        "4d",
        "mixing weights from N(0, 1) (randn) instead of Uniform(0, 1).",
        [(EPS, "    eps = torch.randn(shape, dtype=real.dtype, device=real.device)  # MISTAKE: randn\n")],
    ),
    "interp_eps_along_last_axis": (
        "4d",
        "weights of shape (batch,) broadcast along the LAST axis (features), not along the batch.",
        [(EPS, "    eps = torch.rand(real.shape[0], dtype=real.dtype, device=real.device)  # MISTAKE\n")],
    ),
    "gp_norm_over_batch": (
        "4e",
        "one gradient norm for the whole batch instead of one per example.",
        [(NORMS, "    norms = grad.norm()  # MISTAKE: norm over the batch\n")],
    ),
    "gp_squared_norm": (
        "4e",
        "the squared norm ||g||^2 instead of ||g|| inside the penalty.",
        [(NORMS, "    norms = grad.flatten(1).pow(2).sum(1)  # MISTAKE: squared norm\n")],
    ),
    "gp_no_create_graph": (
        "4e",
        "the input gradient taken without create_graph: the penalty cannot train the critic.",
        [(GRAD, "    (grad,) = torch.autograd.grad(scores.sum(), x_hat)  # MISTAKE: no create_graph\n")],
    ),
    "gp_grad_of_mean": (
        "4e",
        "the gradient of scores.mean(): every example's gradient divided by the batch size.",
        [(GRAD, "    (grad,) = torch.autograd.grad(scores.mean(), x_hat, create_graph=True)  # MISTAKE\n")],
    ),
    "gp_norm_over_last_axis": (
        "4e",
        "the norm over the last axis only (right for (n, d) points, wrong for images).",
        [(NORMS, "    norms = grad.norm(dim=-1)  # MISTAKE: last axis only\n")],
    ),
    "wgan_critic_sign": (
        "4f",
        "the critic minimises mean critic(real) - mean critic(fake): it learns the opposite score.",
        [(GAP, "    gap = critic(real).mean() - critic(fake).mean()  # MISTAKE: sign\n")],
    ),
    "wgan_no_gp_weight": (
        "4f",
        "the penalty added without its weight gp_weight.",
        [("    return gap + gp_weight * gradient_penalty(critic, real, fake)\n",
          "    return gap + gradient_penalty(critic, real, fake)  # MISTAKE: no gp_weight\n")],
    ),
    "wgan_critic_no_detach": (
        "4f",
        "the critic's loss keeps the fakes' graph: its update sends gradients into the generator.",
        [("    fake = fake.detach()\n", "    fake = fake  # MISTAKE: no detach\n")],
    ),
    "wgan_generator_sign": (
        "4f",
        "the generator LOWERS the critic's score of its samples.",
        [("    return -critic(fake).mean()\n", "    return critic(fake).mean()  # MISTAKE: sign\n")],
    ),
    "kl_conjugate_without_minus_one": (
        "4g",
        "f*(t) = exp(t) instead of exp(t - 1).",
        [(KL, "    return real_scores.mean() - torch.exp(fake_scores).mean()  # MISTAKE: exp(t)\n")],
    ),
    "kl_conjugate_on_real": (
        "4g",
        "the conjugate applied to the scores on P and the plain mean to those on Q.",
        [(KL, "    return fake_scores.mean() - torch.exp(real_scores - 1.0).mean()  # MISTAKE\n")],
    ),
    "kl_critic_without_plus_one": (
        "4g",
        "T* = log(p / q), forgetting the 1 of f'(u) = log u + 1.",
        [(T_STAR, "    return log_p - log_q  # MISTAKE: no + 1\n")],
    ),
    "kl_critic_ratio_inverted": (
        "4g",
        "T* built from q / p instead of p / q.",
        [(T_STAR, "    return 1.0 + log_q - log_p  # MISTAKE: q / p\n")],
    ),
}
