"""CORRECT alternative submission for tests/hw1: built on ``torch.distributions``.

MultivariateNormal for the log-density and the EM E-step, kl_divergence for the
closed forms, rsample for the Monte Carlo estimate, torch.cov for the MLE, a
Python loop over the mixture components in the M-step. Must get full marks.
"""

from __future__ import annotations

import torch
from torch.distributions import Categorical, Independent, MultivariateNormal, Normal, kl_divergence


def gaussian_log_density(x, mean, cov):
    return MultivariateNormal(mean, covariance_matrix=cov).log_prob(x)


def gaussian_marginal(mean, cov, idx):
    idx = torch.as_tensor(idx, dtype=torch.long)
    sub = torch.index_select(torch.index_select(cov, 0, idx), 1, idx)
    return torch.index_select(mean, 0, idx), sub


def gaussian_conditional(mean, cov, idx_a, x_b):
    idx_a = torch.as_tensor(idx_a, dtype=torch.long)
    idx_b = torch.tensor([i for i in range(mean.shape[0]) if i not in set(idx_a.tolist())])
    s_ab = cov[idx_a][:, idx_b]
    s_bb = cov[idx_b][:, idx_b]
    gain = torch.linalg.solve(s_bb, s_ab.T).T  # S_ab S_bb^{-1}, (d_a, d_b)
    cond_mean = mean[idx_a] + (gain @ (x_b - mean[idx_b]).unsqueeze(-1)).squeeze(-1)
    return cond_mean, cov[idx_a][:, idx_a] - gain @ s_ab.T


def _diag(mu, var):
    return Independent(Normal(mu, var.sqrt()), 1)


def kl_diag_gaussians(mu1, var1, mu2, var2):
    mu1, var1, mu2, var2 = torch.broadcast_tensors(mu1, var1, mu2, var2)
    return kl_divergence(_diag(mu1, var1), _diag(mu2, var2))


def kl_categorical(p, q):
    return kl_divergence(Categorical(probs=p), Categorical(probs=q))


def mc_kl_estimate(mu1, var1, mu2, var2, n_samples, seed):
    p, q = _diag(mu1, var1), _diag(mu2, var2)
    with torch.random.fork_rng():
        torch.manual_seed(int(seed))
        z = p.rsample((int(n_samples),))
    return (p.log_prob(z) - q.log_prob(z)).mean()


def gaussian_mle(x):
    return x.mean(0), torch.cov(x.T, correction=0).reshape(x.shape[1], x.shape[1])


def em_step(x, weights, means, covs):
    k = weights.shape[0]
    comps = MultivariateNormal(means, covariance_matrix=covs)
    log_joint = comps.log_prob(x.unsqueeze(1)) + weights.log()  # (N, K)
    log_px = torch.logsumexp(log_joint, dim=1)
    resp = (log_joint - log_px.unsqueeze(1)).exp()
    new_w, new_m, new_c = [], [], []
    for j in range(k):
        r = resp[:, j]
        nk = r.sum()
        mu = (r.unsqueeze(1) * x).sum(0) / nk
        diff = x - mu
        new_w.append(nk / x.shape[0])
        new_m.append(mu)
        new_c.append((r.unsqueeze(1) * diff).T @ diff / nk)
    return torch.stack(new_w), torch.stack(new_m), torch.stack(new_c), log_px.sum()
