"""CORRECT alternative submission for tests/hw1: a numpy/scipy round trip.

Tensors are converted to numpy, computed with scipy (cho_factor, logsumexp,
xlogy, scipy.stats) and converted back; the Monte Carlo estimate draws its
normals from a numpy Generator. Must get full marks.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import linalg, special, stats


def _np(t):
    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


def _t(a):
    return torch.from_numpy(np.asarray(a, dtype=np.float64))


def gaussian_log_density(x, mean, cov):
    x, mean, cov = _np(x), _np(mean), _np(cov)
    c, lower = linalg.cho_factor(cov)
    diff = x - mean
    maha = (diff * linalg.cho_solve((c, lower), diff.T).T).sum(1)
    log_det = 2 * np.log(np.diag(c)).sum()
    return _t(-0.5 * (x.shape[1] * np.log(2 * np.pi) + log_det + maha))


def gaussian_marginal(mean, cov, idx):
    idx = _np(idx).astype(int)
    return _t(_np(mean)[idx]), _t(_np(cov)[np.ix_(idx, idx)])


def gaussian_conditional(mean, cov, idx_a, x_b):
    mean, cov, x_b = _np(mean), _np(cov), _np(x_b)
    a = _np(idx_a).astype(int)
    b = np.setdiff1d(np.arange(mean.shape[0]), a)
    gain = linalg.solve(cov[np.ix_(b, b)], cov[np.ix_(b, a)], assume_a="pos").T
    cond_mean = mean[a] + (x_b - mean[b]) @ gain.T
    return _t(cond_mean), _t(cov[np.ix_(a, a)] - gain @ cov[np.ix_(b, a)])


def kl_diag_gaussians(mu1, var1, mu2, var2):
    mu1, var1, mu2, var2 = map(_np, (mu1, var1, mu2, var2))
    return _t(0.5 * (np.log(var2 / var1) + (var1 + (mu1 - mu2) ** 2) / var2 - 1).sum(-1))


def kl_categorical(p, q):
    p, q = _np(p), _np(q)
    return _t((special.xlogy(p, p) - special.xlogy(p, q)).sum(-1))


def mc_kl_estimate(mu1, var1, mu2, var2, n_samples, seed):
    mu1, var1, mu2, var2 = map(_np, (mu1, var1, mu2, var2))
    z = mu1 + np.sqrt(var1) * np.random.default_rng(int(seed)).standard_normal(
        (n_samples, len(mu1))
    )
    log_p = stats.norm(mu1, np.sqrt(var1)).logpdf(z).sum(1)
    log_q = stats.norm(mu2, np.sqrt(var2)).logpdf(z).sum(1)
    return _t(np.mean(log_p - log_q))


def gaussian_mle(x):
    x = _np(x)
    return _t(x.mean(0)), _t(np.atleast_2d(np.cov(x, rowvar=False, bias=True)))


def em_step(x, weights, means, covs):
    x, weights, means, covs = map(_np, (x, weights, means, covs))
    k = len(weights)
    log_joint = np.stack(
        [
            np.log(weights[j]) + stats.multivariate_normal(means[j], covs[j]).logpdf(x).reshape(-1)
            for j in range(k)
        ],
        axis=1,
    )
    log_px = special.logsumexp(log_joint, axis=1)
    resp = np.exp(log_joint - log_px[:, None])
    nk = resp.sum(0)
    new_means = resp.T @ x / nk[:, None]
    new_covs = np.stack(
        [(resp[:, j, None] * (x - new_means[j])).T @ (x - new_means[j]) / nk[j] for j in range(k)]
    )
    return _t(nk / len(x)), _t(new_means), _t(new_covs), _t(log_px.sum())
