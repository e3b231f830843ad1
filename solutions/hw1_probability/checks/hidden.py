"""Hidden checks of homework 1 (kept in solutions/, never released).

They probe the edge cases the public checks leave out: d = 1, a single point,
nearly singular and high-dimensional covariances (where det S under- or
overflows), batches of observations, zero probabilities, the variance of the
Monte Carlo estimator, points far from every mixture component (where
log(sum(exp(.))) underflows) and longer EM runs. The helpers are shared with
``public.py``.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from coursekit.grading.check_kit import sibling_checks
from coursekit.grading.checks import check

# A correct gaussian_log_density, written independently of the reference solution:
# ``em_step`` and ``mc_kl_estimate`` run with it in place of the student's when graded
# (public.graded_helpers, checks/harness.py). Kept here because this file is never
# released: it is the answer to 1a.
GRADED_HELPERS = """
import math

import torch


def gaussian_log_density(x, mean, cov):
    chol = torch.linalg.cholesky(cov)
    white = torch.linalg.solve_triangular(chol, (x - mean).unsqueeze(-1), upper=False)
    maha = white.squeeze(-1).pow(2).sum(-1)
    half_log_det = chol.diagonal(dim1=-2, dim2=-1).log().sum(-1)
    return -0.5 * (x.shape[-1] * math.log(2.0 * math.pi) + maha) - half_log_det
"""


_public = sibling_checks(__file__)  # public.py, for its helpers
RTOL, ATOL = _public.RTOL, _public.ATOL
random_spd = _public.random_spd
mixture_loglik = _public.mixture_loglik
unpack = _public.unpack
assert_spd = _public.assert_spd
mc_estimates = _public.mc_estimates
kl_diag_numpy = _public.kl_diag_numpy
two_blobs = _public.two_blobs
call = _public.call
as_scalar = _public.as_scalar
em_output = _public.em_output
run_em_steps = _public.run_em_steps
compare_em = _public.compare_em

# --------------------------------------------------------------------------- 1a


@check(
    id="1a-hidden-scipy",
    task="1a",
    points=1,
    timeout=10,
    seed=201,
    title="log-density of a 6-D Gaussian at 50 points against scipy",
)
def log_density_scipy(ctx):
    d = 6
    cov = random_spd(ctx.rng, d)
    mean = ctx.rng.normal(size=d)
    x = mean + 2.0 * ctx.rng.normal(size=(50, d))
    got = call(ctx, "gaussian_log_density", x, mean, cov)
    want = stats.multivariate_normal(mean, cov).logpdf(x)
    ctx.assert_close(got, want, rtol=RTOL, atol=ATOL, what="log-density")


@check(
    id="1a-hidden-single-point",
    task="1a",
    points=1,
    timeout=10,
    seed=202,
    title="log-density of a single point (n = 1)",
)
def log_density_single(ctx):
    cov = random_spd(ctx.rng, 2)
    mean = ctx.rng.normal(size=2)
    x = ctx.rng.normal(size=(1, 2))
    got = call(ctx, "gaussian_log_density", x, mean, cov)
    ctx.assert_shape(got, (1,), what="gaussian_log_density(x (1, 2), ...)")
    ctx.assert_close(
        got,
        stats.multivariate_normal(mean, cov).logpdf(x).reshape(1),
        rtol=RTOL,
        atol=ATOL,
        what="log-density",
    )


@check(
    id="1a-hidden-near-singular",
    task="1a",
    points=2,
    timeout=10,
    seed=203,
    title="nearly singular 5-D covariance (eigenvalues from 1 down to 1e-6)",
)
def log_density_near_singular(ctx):
    eigenvalues = np.array([1.0, 1e-2, 1e-4, 1e-5, 1e-6])
    cov = random_spd(ctx.rng, 5, eigenvalues)
    mean = ctx.rng.normal(size=5)
    # points drawn from the Gaussian itself, plus points slightly off its thin directions
    chol = np.linalg.cholesky(cov)
    x = np.vstack(
        [mean + ctx.rng.normal(size=(6, 5)) @ chol.T, mean + 1e-3 * ctx.rng.normal(size=(3, 5))]
    )
    got = call(ctx, "gaussian_log_density", x, mean, cov)
    want = ctx.reference("gaussian_log_density", x, mean, cov)
    # correct float64 methods agree to ~1e-10 relative here; adding "jitter" to S does not
    ctx.assert_close(got, want, rtol=1e-6, atol=1e-6, what="log-density (near-singular S)")


@check(
    id="1a-hidden-high-dim",
    task="1a",
    points=2,
    timeout=10,
    seed=204,
    title="64-D covariances whose determinant under- or overflows float64",
)
def log_density_high_dim(ctx):
    d = 64
    for low, high, label in [(1e-7, 1e-5, "det S ~ 1e-380"), (1e5, 1e7, "det S ~ 1e380")]:
        eigenvalues = np.exp(ctx.rng.uniform(np.log(low), np.log(high), size=d))
        cov = random_spd(ctx.rng, d, eigenvalues)
        mean = ctx.rng.normal(size=d)
        x = mean + ctx.rng.normal(size=(4, d)) @ np.linalg.cholesky(cov).T
        got = call(ctx, "gaussian_log_density", x, mean, cov)
        want = ctx.reference("gaussian_log_density", x, mean, cov)
        ctx.assert_close(
            got,
            want,
            rtol=1e-6,
            atol=1e-6,
            what=f"log-density in 64-D ({label}; use log det S = 2 sum log L_ii)",
        )


# --------------------------------------------------------------------------- 1b


@check(
    id="1b-hidden-marginal-edge",
    task="1b",
    points=1,
    timeout=10,
    seed=211,
    title="marginal over one coordinate, and over all coordinates permuted",
)
def marginal_edge(ctx):
    cov = random_spd(ctx.rng, 3)
    mean = ctx.rng.normal(size=3)
    for idx in ([2], [2, 0, 1]):
        m, c = unpack(ctx, call(ctx, "gaussian_marginal", mean, cov, idx), 2, "gaussian_marginal")
        ctx.assert_shape(c, (len(idx), len(idx)), what=f"marginal covariance for idx={idx}")
        ctx.assert_close(m, mean[idx], rtol=RTOL, atol=ATOL, what=f"marginal mean for idx={idx}")
        ctx.assert_close(
            c,
            cov[np.ix_(idx, idx)],
            rtol=RTOL,
            atol=ATOL,
            what=f"marginal covariance for idx={idx}",
        )


@check(
    id="1b-hidden-conditional-batch",
    task="1b",
    points=2,
    timeout=10,
    seed=212,
    title="conditional of a 5-D Gaussian on a batch of 6 observations, a = [4, 1, 2]",
)
def conditional_batch(ctx):
    d, idx_a = 5, [4, 1, 2]
    idx_b = [0, 3]
    cov = random_spd(ctx.rng, d)
    mean = ctx.rng.normal(size=d)
    x_b = ctx.rng.normal(size=(6, 2)) * 2.0
    m, c = unpack(
        ctx, call(ctx, "gaussian_conditional", mean, cov, idx_a, x_b), 2, "gaussian_conditional"
    )
    ctx.assert_shape(m, (6, 3), what="conditional mean for x_b of shape (6, 2)")
    ctx.assert_shape(c, (3, 3), what="conditional covariance")
    # independent route through the precision matrix P = S^{-1}:
    # S_{a|b} = (P_aa)^{-1},  mu_{a|b} = mu_a - (P_aa)^{-1} P_ab (x_b - mu_b)
    prec = np.linalg.inv(cov)
    cov_ab = np.linalg.inv(prec[np.ix_(idx_a, idx_a)])
    mean_ab = mean[idx_a] - (x_b - mean[idx_b]) @ (cov_ab @ prec[np.ix_(idx_a, idx_b)]).T
    ctx.assert_close(m, mean_ab, rtol=1e-6, atol=1e-8, what="conditional means")
    ctx.assert_close(c, cov_ab, rtol=1e-6, atol=1e-8, what="conditional covariance")
    assert_spd(ctx, c, "conditional covariance")


@check(
    id="1b-hidden-conditional-2d",
    task="1b",
    points=1,
    timeout=10,
    seed=213,
    title="conditional of a 2-D Gaussian (d_a = d_b = 1) against the scalar formula",
)
def conditional_2d(ctx):
    cov = random_spd(ctx.rng, 2)
    mean = ctx.rng.normal(size=2)
    x_b = np.array([1.3])
    m, c = unpack(
        ctx, call(ctx, "gaussian_conditional", mean, cov, [1], x_b), 2, "gaussian_conditional"
    )
    ctx.assert_shape(m, (1,), what="conditional mean")
    ctx.assert_shape(c, (1, 1), what="conditional covariance")
    want_m = mean[1] + cov[1, 0] / cov[0, 0] * (x_b[0] - mean[0])
    want_v = cov[1, 1] - cov[1, 0] ** 2 / cov[0, 0]
    ctx.assert_close(m, np.array([want_m]), rtol=RTOL, atol=ATOL, what="conditional mean")
    ctx.assert_close(c, np.array([[want_v]]), rtol=RTOL, atol=ATOL, what="conditional variance")


# --------------------------------------------------------------------------- 1c


@check(
    id="1c-hidden-kl-properties",
    task="1c",
    points=1,
    timeout=10,
    seed=221,
    title="KL >= 0 on 300 random pairs, KL(p, p) = 0, agreement with the closed form",
)
def kl_properties(ctx):
    shape = (300, 4)
    mu1, mu2 = 3 * ctx.rng.normal(size=shape), 3 * ctx.rng.normal(size=shape)
    var1 = np.exp(ctx.rng.uniform(-4, 4, size=shape))
    var2 = np.exp(ctx.rng.uniform(-4, 4, size=shape))
    got = np.asarray(call(ctx, "kl_diag_gaussians", mu1, var1, mu2, var2), dtype=float)
    ctx.assert_shape(got, (300,), what="kl_diag_gaussians on (300, 4) inputs")
    ctx.assert_true(bool(np.all(got >= -1e-12)), f"KL must be >= 0, got min {got.min():.4g}")
    same = call(ctx, "kl_diag_gaussians", mu1, var1, mu1, var1)
    ctx.assert_close(same, np.zeros(300), rtol=0, atol=1e-10, what="KL(p || p)")
    want = 0.5 * (np.log(var2 / var1) + (var1 + (mu1 - mu2) ** 2) / var2 - 1).sum(-1)
    ctx.assert_close(got, want, rtol=RTOL, atol=1e-8, what="KL")


@check(
    id="1c-hidden-kl-d1",
    task="1c",
    points=1,
    timeout=10,
    seed=222,
    title="KL between 1-D Gaussians (last dimension of size 1)",
)
def kl_d1(ctx):
    mu1, mu2 = ctx.rng.normal(size=(5, 1)), ctx.rng.normal(size=(5, 1))
    var1, var2 = ctx.rng.uniform(0.1, 4, size=(5, 1)), ctx.rng.uniform(0.1, 4, size=(5, 1))
    got = call(ctx, "kl_diag_gaussians", mu1, var1, mu2, var2)
    ctx.assert_shape(got, (5,), what="kl_diag_gaussians on (5, 1) inputs")
    s1, s2 = np.sqrt(var1[:, 0]), np.sqrt(var2[:, 0])
    # the textbook form with standard deviations: log(s2/s1) + (s1^2 + (m1-m2)^2)/(2 s2^2) - 1/2
    want = np.log(s2 / s1) + (s1**2 + (mu1[:, 0] - mu2[:, 0]) ** 2) / (2 * s2**2) - 0.5
    ctx.assert_close(got, want, rtol=RTOL, atol=ATOL, what="KL (d = 1)")


@check(
    id="1c-hidden-categorical-zeros",
    task="1c",
    points=1,
    timeout=10,
    seed=223,
    title="categorical KL when p has zero entries (0 log 0 = 0)",
)
def kl_categorical_zeros(ctx):
    p = ctx.rng.dirichlet(np.ones(5), size=4)
    p[:, [1, 3]] = 0.0
    p[0, 0] = 0.0
    p = p / p.sum(-1, keepdims=True)
    q = ctx.rng.dirichlet(np.ones(5), size=4)
    q[2, 1] = 0.0  # q_k = 0 where p_k = 0 is allowed too
    q = q / q.sum(-1, keepdims=True)
    got = call(ctx, "kl_categorical", p, q)
    ctx.assert_shape(got, (4,), what="kl_categorical on (4, 5) inputs")
    mask = p > 0
    want = np.where(mask, p * (np.log(np.where(mask, p, 1)) - np.log(np.where(mask, q, 1))), 0)
    ctx.assert_close(got, want.sum(-1), rtol=RTOL, atol=ATOL, what="KL with zero probabilities")


@check(
    id="1c-hidden-mc-variance",
    task="1c",
    points=2,
    timeout=30,
    seed=224,
    title="Monte Carlo KL: reproducible per seed, spread shrinks like 1/sqrt(n)",
)
def mc_kl_variance(ctx):
    mu1, mu2 = np.array([1.0, -1.0]), np.array([0.0, 0.5])
    var1, var2 = np.array([2.0, 0.3]), np.array([1.0, 0.5])
    kl = kl_diag_numpy(mu1, var1, mu2, var2)
    first = as_scalar(ctx, call(ctx, "mc_kl_estimate", mu1, var1, mu2, var2, 20, 7), "estimate")
    again = as_scalar(ctx, call(ctx, "mc_kl_estimate", mu1, var1, mu2, var2, 20, 7), "estimate")
    ctx.assert_close(
        again,
        first,
        rtol=0,
        atol=1e-12,
        what="mc_kl_estimate called twice with seed=7 (must be reproducible)",
    )
    small = mc_estimates(ctx, mu1, var1, mu2, var2, 10, range(100, 160))
    large = mc_estimates(ctx, mu1, var1, mu2, var2, 1000, range(200, 260))
    ratio = small.std(ddof=1) / max(large.std(ddof=1), 1e-300)
    ctx.assert_true(
        bool(5.0 <= ratio <= 20.0),
        f"the spread of the estimates should shrink like 1/sqrt(n): from n=10 to n=1000 the "
        f"standard deviation should fall ~10x, it fell {ratio:.3g}x",
    )
    for values, n in ((small, 10), (large, 1000)):
        se = values.std(ddof=1) / np.sqrt(values.size)
        ctx.assert_true(
            bool(abs(values.mean() - kl) <= 5 * se),
            f"n_samples={n}: mean of 60 estimates {values.mean():.4f} +- {se:.4f} differs from "
            f"KL = {kl:.4f}: the estimator looks biased",
        )


# --------------------------------------------------------------------------- 1d


@check(
    id="1d-hidden-d1",
    task="1d",
    points=1,
    timeout=10,
    seed=231,
    title="maximum likelihood in one dimension (N = 7, d = 1)",
)
def mle_d1(ctx):
    x = 3.0 + 2.0 * ctx.rng.normal(size=(7, 1))
    m, c = unpack(ctx, call(ctx, "gaussian_mle", x), 2, "gaussian_mle")
    ctx.assert_shape(m, (1,), what="mean")
    ctx.assert_shape(c, (1, 1), what="covariance")
    mu = x[:, 0].sum() / 7
    ctx.assert_close(m, np.array([mu]), rtol=RTOL, atol=ATOL, what="mean")
    ctx.assert_close(
        c,
        np.array([[((x[:, 0] - mu) ** 2).sum() / 7]]),
        rtol=RTOL,
        atol=ATOL,
        what="variance (1/N)",
    )


@check(
    id="1d-hidden-two-points",
    task="1d",
    points=1,
    timeout=10,
    seed=232,
    title="maximum likelihood from N = 2 points in 2-D (a singular covariance)",
)
def mle_two_points(ctx):
    x = ctx.rng.normal(size=(2, 2))
    m, c = unpack(ctx, call(ctx, "gaussian_mle", x), 2, "gaussian_mle")
    ctx.assert_close(m, (x[0] + x[1]) / 2, rtol=RTOL, atol=ATOL, what="mean")
    half = (x[0] - x[1]) / 2  # x_i - mu = +-half, so S = half half^T
    ctx.assert_close(c, np.outer(half, half), rtol=RTOL, atol=ATOL, what="covariance (1/N)")


@check(
    id="1d-hidden-large",
    task="1d",
    points=1,
    timeout=10,
    seed=233,
    title="maximum likelihood from 500 points in 5-D; covariance symmetric PSD",
)
def mle_large(ctx):
    x = ctx.rng.normal(size=(500, 5)) @ random_spd(ctx.rng, 5) - 4.0
    m, c = unpack(ctx, call(ctx, "gaussian_mle", x), 2, "gaussian_mle")
    want_m, want_c = ctx.reference("gaussian_mle", x)
    ctx.assert_close(m, want_m, rtol=RTOL, atol=ATOL, what="mean")
    ctx.assert_close(c, want_c, rtol=RTOL, atol=ATOL, what="covariance")
    assert_spd(ctx, c, "covariance")


# --------------------------------------------------------------------------- 1e


@check(
    id="1e-hidden-far-points",
    task="1e",
    points=2,
    timeout=10,
    seed=241,
    title="EM step with points far from every component (log-sum-exp needed)",
)
def em_far_points(ctx):
    x, w, m, c = two_blobs(ctx.rng, 40, 2, 2)
    # three outliers ~80 standard deviations away: each N(x; mu_k, S_k) is below 1e-1000,
    # which is exactly 0 in float64, so only a max-shifted log-sum-exp keeps them finite
    x = np.vstack([x, [[80.0, 80.0], [-90.0, 10.0], [0.0, -100.0]]])
    new = em_output(ctx, call(ctx, "em_step", x, w, m, c), 2, 2, "em_step")
    compare_em(ctx, new, ctx.reference("em_step", x, w, m, c), RTOL, ATOL)


@check(
    id="1e-hidden-d1",
    task="1e",
    points=1,
    timeout=10,
    seed=242,
    title="EM step in one dimension, 2 components",
)
def em_d1(ctx):
    x = np.concatenate([ctx.rng.normal(-2, 0.5, size=30), ctx.rng.normal(1.5, 1.0, size=20)])
    x = x.reshape(-1, 1)
    w, m, c = np.array([0.3, 0.7]), np.array([[-1.0], [0.5]]), np.array([[[1.0]], [[2.0]]])
    new = em_output(ctx, call(ctx, "em_step", x, w, m, c), 2, 1, "em_step")
    # independent 1-D EM step written out with scipy
    log_joint = np.log(w) + stats.norm(m[:, 0], np.sqrt(c[:, 0, 0])).logpdf(x)  # (N, 2)
    log_norm = np.logaddexp(log_joint[:, 0], log_joint[:, 1])
    r = np.exp(log_joint - log_norm[:, None])
    nk = r.sum(0)
    mu = (r * x).sum(0) / nk
    var = (r * (x - mu) ** 2).sum(0) / nk
    ctx.assert_close(new[0], nk / len(x), rtol=RTOL, atol=ATOL, what="new_weights")
    ctx.assert_close(new[1], mu.reshape(2, 1), rtol=RTOL, atol=ATOL, what="new_means")
    ctx.assert_close(new[2], var.reshape(2, 1, 1), rtol=RTOL, atol=ATOL, what="new_covs")
    ctx.assert_close(
        new[3], float(log_norm.sum()), rtol=RTOL, atol=ATOL, what="log_likelihood_before"
    )


@check(
    id="1e-hidden-monotone-3d",
    task="1e",
    points=2,
    timeout=30,
    seed=243,
    title="10 EM steps, 4 components in 3-D: monotone, valid parameters, honest LL",
)
def em_monotone_3d(ctx):
    x, w, m, c = two_blobs(ctx.rng, 150, 3, 4)
    w, m, c, recomputed = run_em_steps(ctx, x, w, m, c, steps=10)
    # the reference solution also scores the student's final parameters
    final = float(np.asarray(ctx.reference("em_step", x, w, m, c)[3]).reshape(()))
    lls = np.array(recomputed[:-1] + [final])
    drops = np.diff(lls)
    ctx.assert_true(
        bool(drops.min() >= -1e-8 * np.abs(lls).max()),
        f"the log-likelihood decreased at step {int(np.argmin(drops))} "
        f"({lls[int(np.argmin(drops))]:.8g} -> {lls[int(np.argmin(drops)) + 1]:.8g})",
    )
