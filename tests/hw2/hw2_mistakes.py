# ruff: noqa: E501
"""One realistic mistake per entry, applied to the reference solution of hw2.

Each entry is ``name: (task, description, [(old, new), ...])``: the wrong
submission is ``solutions/hw2_vae/submission.py`` with every ``old`` text (which
must occur exactly once) replaced by ``new``; the changed line carries a
``MISTAKE`` comment. Generating them keeps the mistakes in step with the
reference when it changes.
"""

MISTAKES = {
    "sigma_equals_v": (
        "2a",
        "uses the variance v as the standard deviation.",
        [(
            "    return m + torch.sqrt(v) * eps\n",
            "    return m + v * eps  # MISTAKE: sigma = v\n",
        )],
    ),
    "sample_detached": (
        "2a",
        "detaches the sample, so no gradient reaches m and v.",
        [(
            "    return m + torch.sqrt(v) * eps\n",
            "    return (m + torch.sqrt(v) * eps).detach()  # MISTAKE: no reparameterisation\n",
        )],
    ),
    "logvar_as_var": (
        "2b",
        "treats the variance argument of log_normal as a log-variance.",
        [(
            "    return -0.5 * (LOG_2PI + torch.log(v) + (x - m) ** 2 / v).sum(-1)\n",
            "    return -0.5 * (LOG_2PI + v + (x - m) ** 2 / torch.exp(v)).sum(-1)  # MISTAKE\n",
        )],
    ),
    "mixture_no_logsumexp": (
        "2b",
        "mixture density as log(sum(exp(.))), which underflows far from the components.",
        [(
            "    return torch.logsumexp(per_component, dim=-1) - math.log(k)\n",
            "    return torch.log(torch.exp(per_component).sum(-1) / k)  # MISTAKE: no logsumexp\n",
        )],
    ),
    "mixture_missing_log_k": (
        "2b",
        "forgets the 1/k weights of the uniform mixture.",
        [(
            "    return torch.logsumexp(per_component, dim=-1) - math.log(k)\n",
            "    return torch.logsumexp(per_component, dim=-1)  # MISTAKE: no - log k\n",
        )],
    ),
    "kl_sign_flipped": (
        "2c",
        "returns -KL.",
        [(
            "    return 0.5 * (torch.log(pv) - torch.log(qv) + (qv + (qm - pm) ** 2) / pv - 1.0).sum(-1)\n",
            "    return -0.5 * (torch.log(pv) - torch.log(qv) + (qv + (qm - pm) ** 2) / pv - 1.0).sum(-1)  # MISTAKE\n",
        )],
    ),
    "elbo_sum_over_batch": (
        "2d",
        "sums the ELBO terms over the batch instead of averaging.",
        [(
            "    rec = -log_bernoulli_with_logits(x, decoder(z)).mean()\n"
            "    kl = kl_normal(qm, qv, torch.zeros_like(qm), torch.ones_like(qv)).mean()\n",
            "    rec = -log_bernoulli_with_logits(x, decoder(z)).sum()  # MISTAKE: sum over batch\n"
            "    kl = kl_normal(qm, qv, torch.zeros_like(qm), torch.ones_like(qv)).sum()  # MISTAKE\n",
        )],
    ),
    "sample_uniform_noise": (
        "2a",
        "draws the noise from a uniform distribution (torch.rand_like) instead of N(0, 1).",
        [(
            "    eps = torch.randn_like(m)\n    return m + torch.sqrt(v) * eps\n",
            "    eps = torch.rand_like(m)  # MISTAKE: uniform noise\n    return m + torch.sqrt(v) * eps\n",
        )],
    ),
    "log_normal_sums_before_broadcast": (
        "2b",
        "sums log v over the last dimension before broadcasting, so a (1,)-shaped v counts once.",
        [(
            "    return -0.5 * (LOG_2PI + torch.log(v) + (x - m) ** 2 / v).sum(-1)\n",
            "    return -0.5 * (x.shape[-1] * LOG_2PI + torch.log(v).sum(-1) + ((x - m) ** 2 / v).sum(-1))  # MISTAKE\n",
        )],
    ),
    "kl_sums_before_broadcast": (
        "2c",
        "sums every term separately, so (1,)-shaped prior parameters count once.",
        [(
            "    return 0.5 * (torch.log(pv) - torch.log(qv) + (qv + (qm - pm) ** 2) / pv - 1.0).sum(-1)\n",
            "    return 0.5 * (torch.log(pv).sum(-1) - torch.log(qv).sum(-1) + ((qv + (qm - pm) ** 2) / pv).sum(-1) - qm.shape[-1])  # MISTAKE\n",
        )],
    ),
    "elbo_std_is_var": (
        "2d",
        "samples z inline with the variance as the standard deviation.",
        [(
            "    z = sample_gaussian(qm, qv)\n    rec = -log_bernoulli_with_logits(x, decoder(z)).mean()\n    kl = kl_normal(",
            "    z = qm + qv * torch.randn_like(qm)  # MISTAKE: std = variance\n    rec = -log_bernoulli_with_logits(x, decoder(z)).mean()\n    kl = kl_normal(",
        )],
    ),
    "elbo_rec_sign": (
        "2d",
        "returns log p(x|z) instead of rec = -log p(x|z) as the third value (nelbo itself is right).",
        [(
            "    kl = kl_normal(qm, qv, torch.zeros_like(qm), torch.ones_like(qv)).mean()\n    return rec + kl, kl, rec\n",
            "    kl = kl_normal(qm, qv, torch.zeros_like(qm), torch.ones_like(qv)).mean()\n    return rec + kl, kl, -rec  # MISTAKE: sign of rec\n",
        )],
    ),
    "elbo_prior_on_cpu": (
        "2d",
        "creates the prior's parameters with torch.zeros/ones (on the CPU, whatever the input's device).",
        [(
            "    kl = kl_normal(qm, qv, torch.zeros_like(qm), torch.ones_like(qv)).mean()\n    return rec + kl, kl, rec\n",
            "    kl = kl_normal(qm, qv, torch.zeros(qm.shape[-1]), torch.ones(qv.shape[-1])).mean()  # MISTAKE: CPU only\n    return rec + kl, kl, rec\n",
        )],
    ),
    "iwae_mean_not_logmeanexp": (
        "2e",
        "averages the log-weights (an ELBO) instead of log-mean-exp.",
        [(
            "    bound = torch.logsumexp(log_w, dim=0) - math.log(k)  # (batch,)\n",
            "    bound = log_w.mean(dim=0)  # MISTAKE: mean of log-weights\n",
        )],
    ),
    "iwae_max_weight": (
        "2e",
        "keeps only the largest importance weight (log max_i w_i) instead of log (1/k) sum_i w_i.",
        [(
            "    bound = torch.logsumexp(log_w, dim=0) - math.log(k)  # (batch,)\n",
            "    bound = log_w.max(dim=0).values  # MISTAKE: largest weight only\n",
        )],
    ),
    "iwae_no_prior": (
        "2e",
        "leaves log p(z) out of the importance weights.",
        [(
            "    log_w = log_px_z + log_pz - log_qz\n",
            "    log_w = log_px_z - log_qz  # MISTAKE: prior missing\n",
        )],
    ),
    "gmvae_kl_at_mean": (
        "2f",
        "evaluates the Monte Carlo KL at the posterior mean instead of at the sample.",
        [(
            "    kl = (log_normal(z, qm, qv) - log_normal_mixture(z, prior_m, prior_v)).mean()\n",
            "    kl = (log_normal(qm, qm, qv) - log_normal_mixture(qm, prior_m, prior_v)).mean()  # MISTAKE\n",
        )],
    ),
    "ssvae_no_entropy": (
        "2g",
        "leaves the entropy of q(y|x) out of the unlabelled bound.",
        [(
            "    nelbo_u = ((q * per_class.T).sum(-1) + (q * log_q).sum(-1)).mean()\n",
            "    nelbo_u = (q * per_class.T).sum(-1).mean()  # MISTAKE: no entropy term\n",
        )],
    ),
    "ssvae_classes_unweighted": (
        "2g",
        "averages the per-class bounds uniformly instead of weighting them by q(y|x).",
        [(
            "    nelbo_u = ((q * per_class.T).sum(-1) + (q * log_q).sum(-1)).mean()\n",
            "    nelbo_u = (per_class.T.mean(-1) + (q * log_q).sum(-1)).mean()  # MISTAKE: not q-weighted\n",
        )],
    ),
    "ssvae_reshape_not_transpose": (
        "2g",
        "reshapes the (C, n_u) per-class bounds to (n_u, C) instead of transposing them.",
        [(
            "    nelbo_u = ((q * per_class.T).sum(-1) + (q * log_q).sum(-1)).mean()\n",
            "    nelbo_u = ((q * per_class.reshape(-1, n_classes)).sum(-1) + (q * log_q).sum(-1)).mean()  # MISTAKE\n",
        )],
    ),
}
