"""One realistic mistake per entry, applied to the reference solution of hw1.

Each entry is ``name: (mistake, [(old, new), ...])``: the wrong submission is the
reference ``solutions/hw1_probability/submission.py`` with every ``old`` text
(which must occur exactly once) replaced by ``new``. Generating them keeps the
mistakes in step with the reference when it changes. An entry with a third item
``(mistake, edits, base)`` edits ``tests/hw1/<base>`` (a correct variant) instead.
"""

MISTAKES = {
    'cholesky_jitter': (
        "adds 'jitter' 1e-6 I to the covariance before factorising.",
        [
            (
                '    d = x.shape[-1]\n    L = torch.linalg.cholesky(cov)  # (d, d), lower\n',
                '    d = x.shape[-1]\n    L = torch.linalg.cholesky(cov + 1e-6 * torch.eye(d, dtype=cov.dtype))  # MISTAKE: jitter\n',
            ),
        ],
    ),
    'conditional_transpose': (
        'conditional mean uses the gain matrix transposed.',
        [
            (
                '    gain_t = torch.cholesky_solve(s_ab.T, L)\n    cond_mean = mu_a + (x_b - mu_b) @ gain_t\n',
                '    gain_t = torch.cholesky_solve(s_ab.T, L)\n    cond_mean = mu_a + (x_b - mu_b) @ gain_t.T  # MISTAKE: transposed gain\n',
            ),
        ],
    ),
    'em_cov_old_means': (
        'M-step covariances centred at the old means.',
        [
            (
                '    new_means = (resp.T @ x) / nk.unsqueeze(1)  # (K, d)\n    centred = x.unsqueeze(0) - new_means.unsqueeze(1)  # (K, N, d)\n',
                '    new_means = (resp.T @ x) / nk.unsqueeze(1)  # (K, d)\n    centred = x.unsqueeze(0) - means.unsqueeze(1)  # MISTAKE: old means\n',
            ),
        ],
    ),
    'kl_categorical_naive': (
        'p * log(p / q) gives NaN where p = 0.',
        [
            (
                '    ### BEGIN SOLUTION\n    return (torch.xlogy(p, p) - torch.xlogy(p, q)).sum(dim=-1)\n',
                '    ### BEGIN SOLUTION\n    return (p * torch.log(p / q)).sum(dim=-1)  # MISTAKE: 0 * log 0 = NaN\n',
            ),
        ],
    ),
    'kl_mean_over_dims': (
        'KL averaged over dimensions instead of summed.',
        [
            (
                '    per_dim = torch.log(var2) - torch.log(var1) + (var1 + (mu1 - mu2) ** 2) / var2 - 1.0\n    return 0.5 * per_dim.sum(dim=-1)\n',
                '    per_dim = torch.log(var2) - torch.log(var1) + (var1 + (mu1 - mu2) ** 2) / var2 - 1.0\n    return 0.5 * per_dim.mean(dim=-1)  # MISTAKE: mean, not sum\n',
            ),
        ],
    ),
    'kl_wrong_sign': (
        'log(var1/var2) instead of log(var2/var1) in the Gaussian KL.',
        [
            (
                '    ### BEGIN SOLUTION\n    per_dim = torch.log(var2) - torch.log(var1) + (var1 + (mu1 - mu2) ** 2) / var2 - 1.0\n',
                '    ### BEGIN SOLUTION\n    # MISTAKE: sign of the log term\n    per_dim = torch.log(var1) - torch.log(var2) + (var1 + (mu1 - mu2) ** 2) / var2 - 1.0\n',
            ),
        ],
    ),
    'logdet_via_det': (
        'log det S computed as log(det(S)): under/overflows in high dimension.',
        [
            (
                '    maha = (z**2).sum(dim=0)  # (n,)\n    log_det = 2.0 * torch.log(torch.diagonal(L)).sum()\n',
                '    maha = (z**2).sum(dim=0)  # (n,)\n    log_det = torch.log(torch.linalg.det(cov))  # MISTAKE: det under/overflows\n',
            ),
        ],
    ),
    'marginal_fancy_index': (
        'cov[idx, idx] picks diagonal entries, not the sub-matrix.',
        [
            (
                '    ### BEGIN SOLUTION\n    return mean[idx], cov[idx][:, idx]\n',
                '    ### BEGIN SOLUTION\n    return mean[idx], cov[idx, idx]  # MISTAKE: a vector of diagonal entries\n',
            ),
        ],
    ),
    'mc_var_as_std': (
        'variance used as standard deviation when sampling z = mu + sigma eps.',
        [
            (
                '    )\n    z = mu1 + torch.sqrt(var1) * eps  # (T, d), samples from p\n',
                '    )\n    z = mu1 + var1 * eps  # MISTAKE: var1 used as the standard deviation\n',
            ),
        ],
    ),
    'mc_wrong_samples': (
        'MC estimate with samples drawn from q instead of p.',
        [
            (
                '    )\n    z = mu1 + torch.sqrt(var1) * eps  # (T, d), samples from p\n',
                '    )\n    z = mu2 + torch.sqrt(var2) * eps  # MISTAKE: samples from q\n',
            ),
        ],
    ),
    'missing_transpose': (
        'whitening written in row form z L^T = x - mu but with L instead of L^T.',
        [
            (
                '    diff = x - mean  # (n, d)\n    z = torch.linalg.solve_triangular(L, diff.T, upper=False)  # (d, n): L z = (x - mu)^T\n    maha = (z**2).sum(dim=0)  # (n,)\n',
                '    diff = x - mean  # (n, d)\n    z = torch.linalg.solve_triangular(L, diff, upper=False, left=False)  # MISTAKE: L, not L.mT\n    maha = (z**2).sum(dim=1)  # (n,)\n',
            ),
        ],
    ),
    'mle_missing_transpose': (
        'diff @ diff.T: an (N, N) Gram matrix instead of (d, d).',
        [
            (
                '    diff = x - mean\n    cov = diff.T @ diff / n\n',
                '    diff = x - mean\n    cov = diff @ diff.T / n  # MISTAKE: transpose on the wrong side\n',
            ),
        ],
    ),
    'mle_unbiased': (
        '1/(N-1) covariance instead of the ML 1/N.',
        [
            (
                '    diff = x - mean\n    cov = diff.T @ diff / n\n',
                '    diff = x - mean\n    cov = diff.T @ diff / (n - 1)  # MISTAKE: unbiased, not maximum likelihood\n',
            ),
        ],
    ),
    'no_logsumexp': (
        'log(sum(exp(.))) without max-subtraction: underflows on far points.',
        [
            (
                '    log_joint = torch.log(weights).unsqueeze(0) + log_dens.T  # (N, K)\n    log_norm = torch.logsumexp(log_joint, dim=1, keepdim=True)  # (N, 1)\n',
                '    log_joint = torch.log(weights).unsqueeze(0) + log_dens.T  # (N, K)\n    log_norm = torch.log(torch.exp(log_joint).sum(dim=1, keepdim=True))  # MISTAKE\n',
            ),
        ],
    ),
    'resp_wrong_axis': (
        'responsibilities normalised over the points instead of the components.',
        [
            (
                '    log_joint = torch.log(weights).unsqueeze(0) + log_dens.T  # (N, K)\n    log_norm = torch.logsumexp(log_joint, dim=1, keepdim=True)  # (N, 1)\n',
                '    log_joint = torch.log(weights).unsqueeze(0) + log_dens.T  # (N, K)\n    log_norm = torch.logsumexp(log_joint, dim=0, keepdim=True)  # MISTAKE: wrong axis\n',
            ),
        ],
    ),
    'reused_log_density_half_logdet': (
        'log det S = sum log L_ii (half of it) in gaussian_log_density, which this '
        "submission's em_step and mc_kl_estimate reuse: it must cost points in 1a only.",
        [
            (
                '    log_det = 2.0 * torch.log(torch.diagonal(L)).sum()\n',
                '    log_det = torch.log(torch.diagonal(L)).sum()  # MISTAKE: half of log det S\n',
            ),
        ],
        'reuse_log_density',
    ),
}

# Correct variants written as edits of the reference (like the mistakes), so they
# follow the reference when it changes; tests/hw1/correct/ holds the variants that
# are written differently throughout.
CORRECT_EDITS = {
    # em_step and mc_kl_estimate REUSE gaussian_log_density (1a), as em_step's
    # docstring allows
    'reuse_log_density': [
        (
            '    def log_normal_diag(z, mu, var):  # (T, d) -> (T,)\n'
            '        return -0.5 * (LOG_2PI + torch.log(var) + (z - mu) ** 2 / var).sum(dim=-1)\n'
            '\n'
            '    return (log_normal_diag(z, mu1, var1) - log_normal_diag(z, mu2, var2)).mean(dim=0)\n',
            '    log_p = gaussian_log_density(z, mu1, torch.diag(var1))\n'
            '    log_q = gaussian_log_density(z, mu2, torch.diag(var2))\n'
            '    return (log_p - log_q).mean(dim=0)\n',
        ),
        (
            '    L = torch.linalg.cholesky(covs)  # (K, d, d)\n'
            '    diff = x.unsqueeze(0) - means.unsqueeze(1)  # (K, N, d)\n'
            '    z = torch.linalg.solve_triangular(L, diff.mT, upper=False)  # (K, d, N)\n'
            '    maha = (z**2).sum(dim=1)  # (K, N)\n'
            '    log_det = 2.0 * torch.log(torch.diagonal(L, dim1=-2, dim2=-1)).sum(dim=-1)  # (K,)\n'
            '    log_dens = -0.5 * (d * LOG_2PI + log_det.unsqueeze(1) + maha)  # (K, N)\n',
            '    log_dens = torch.stack([gaussian_log_density(x, means[k], covs[k])\n'
            '                            for k in range(len(means))])  # (K, N)\n',
        ),
    ],
}
