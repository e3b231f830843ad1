"""CORRECT alternative submission for tests/hw1: solve/slogdet/inverse and einsum.

No Cholesky anywhere: torch.linalg.solve + slogdet for the log-density, the
precision-matrix route for the conditional, einsum for every contraction,
an antithetic Monte Carlo estimator (still unbiased), the two-pass MLE and an
E-step that calls ``gaussian_log_density`` once per component. Must get full marks.
"""

from __future__ import annotations

import math

import torch


def gaussian_log_density(x, mean, cov):
    d = x.shape[-1]
    diff = x - mean
    maha = torch.einsum("ni,ni->n", diff, torch.linalg.solve(cov, diff.T).T)
    return -0.5 * (d * math.log(2 * math.pi) + torch.linalg.slogdet(cov)[1] + maha)


def gaussian_marginal(mean, cov, idx):
    idx = list(map(int, idx))
    return mean[idx], cov[idx][:, idx]


def gaussian_conditional(mean, cov, idx_a, x_b):
    # S_{a|b} = (P_aa)^{-1}, mu_{a|b} = mu_a - (P_aa)^{-1} P_ab (x_b - mu_b), with P = S^{-1}
    idx_a = list(map(int, idx_a))
    idx_b = [i for i in range(mean.shape[0]) if i not in idx_a]
    prec = torch.linalg.inv(cov)
    cond_cov = torch.linalg.inv(prec[idx_a][:, idx_a])
    shift = torch.einsum("ij,jk,...k->...i", cond_cov, prec[idx_a][:, idx_b], x_b - mean[idx_b])
    return mean[idx_a] - shift, 0.5 * (cond_cov + cond_cov.T)


def kl_diag_gaussians(mu1, var1, mu2, var2):
    s1, s2 = var1.sqrt(), var2.sqrt()
    per_dim = torch.log(s2 / s1) + (s1**2 + (mu1 - mu2) ** 2) / (2 * s2**2) - 0.5
    return per_dim.sum(-1)


def kl_categorical(p, q):
    safe_p = torch.where(p > 0, p, torch.ones_like(p))
    safe_q = torch.where(p > 0, q, torch.ones_like(q))
    return torch.einsum("...k->...", torch.where(p > 0, p * (safe_p.log() - safe_q.log()), 0.0))


def mc_kl_estimate(mu1, var1, mu2, var2, n_samples, seed):
    n = int(n_samples)
    gen = torch.Generator().manual_seed(int(seed))
    half = torch.randn(((n + 1) // 2, mu1.shape[-1]), generator=gen, dtype=mu1.dtype)
    eps = torch.cat([half, -half])[:n]  # antithetic pairs: each row is still N(0, I)
    z = mu1 + var1.sqrt() * eps

    def log_normal(z, mu, var):
        return -0.5 * torch.einsum("td->t", math.log(2 * math.pi) + var.log() + (z - mu) ** 2 / var)

    return (log_normal(z, mu1, var1) - log_normal(z, mu2, var2)).mean()


def gaussian_mle(x):
    n = x.shape[0]
    mean = torch.einsum("nd->d", x) / n
    centred = x - mean
    return mean, torch.einsum("ni,nj->ij", centred, centred) / n


def em_step(x, weights, means, covs):
    log_joint = torch.stack(
        [
            weights[k].log() + gaussian_log_density(x, means[k], covs[k])
            for k in range(len(weights))
        ],
        dim=1,
    )
    log_px = torch.logsumexp(log_joint, dim=1)
    resp = torch.exp(log_joint - log_px[:, None])
    nk = torch.einsum("nk->k", resp)
    new_means = torch.einsum("nk,nd->kd", resp, x) / nk[:, None]
    diff = x[None] - new_means[:, None]
    new_covs = torch.einsum("nk,kni,knj->kij", resp, diff, diff) / nk[:, None, None]
    return nk / x.shape[0], new_means, new_covs, log_px.sum()
