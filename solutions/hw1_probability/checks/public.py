"""Public checks of homework 1 (released to students).

Each check builds float64 inputs from ``ctx.rng``, runs the student's function
in the sandbox (``ctx.call``) and judges the answer in this trusted process,
against the reference solution (``ctx.reference``) and/or an independent
numpy computation written out here.

Tolerances: values that a correct float64 implementation computes to ~1e-12
relative accuracy are compared at ``rtol=1e-6``, far looser than round-off
differences between correct methods (Cholesky, ``solve``/``slogdet``,
``torch.distributions``) yet far tighter than any of the typical mistakes.
"""

from __future__ import annotations

import numpy as np

from coursekit.grading.check_kit import SandboxCalls
from coursekit.grading.checks import check

# ``em_step`` (1e) and ``mc_kl_estimate`` (1c) may reuse ``gaussian_log_density`` (1a);
# when graded they run with a correct one in its place (GRADED_HELPERS of the hidden
# checks, swapped in by checks/harness.py), so a mistake in 1a costs points in 1a only.
# It is not released (it is the answer to 1a): here your own function is used.
KIT = SandboxCalls(__file__)
# functions that may reuse another task's function: run through the harness
USES_HELPERS = {"em_step", "mc_kl_estimate"}


def call(ctx, name: str, *args):
    """``ctx.call(name, ...)`` with failure messages that name the student's function;
    ``em_step`` and ``mc_kl_estimate`` run through the harness with the graded helpers."""
    if name in USES_HELPERS:
        return KIT.call(ctx, f"harness:{name}", *args, function=name, bound=True)
    return KIT.call(ctx, name, *args)


RTOL, ATOL = 1e-6, 1e-8


# --------------------------------------------------------------------------- helpers


def random_spd(rng: np.random.Generator, d: int, eigenvalues=None) -> np.ndarray:
    """A random symmetric positive-definite (d, d) matrix Q diag(eigenvalues) Q^T."""
    q, r = np.linalg.qr(rng.normal(size=(d, d)))
    q = q * np.sign(np.diag(r))
    if eigenvalues is None:
        eigenvalues = rng.uniform(0.3, 3.0, size=d)
    cov = (q * np.asarray(eigenvalues, dtype=float)) @ q.T
    return 0.5 * (cov + cov.T)


def mixture_loglik(x: np.ndarray, weights, means, covs) -> float:
    """sum_i log sum_k pi_k N(x_i; mu_k, S_k), computed independently in numpy.

    x: (N, d), weights: (K,), means: (K, d), covs: (K, d, d). Uses a Cholesky
    factor per component and a max-shifted log-sum-exp.
    """
    n, d = x.shape
    cols = []
    for w, m, c in zip(weights, means, covs):
        chol = np.linalg.cholesky(c)
        z = np.linalg.solve(chol, (x - m).T)
        log_det = 2.0 * np.log(np.diag(chol)).sum()
        cols.append(np.log(w) - 0.5 * (d * np.log(2 * np.pi) + log_det + (z**2).sum(0)))
    a = np.stack(cols, axis=1)  # (N, K)
    top = a.max(axis=1, keepdims=True)
    return float((top[:, 0] + np.log(np.exp(a - top).sum(axis=1))).sum())


def unpack(ctx, got, n: int, what: str) -> list:
    """The ``n`` items of a returned tuple as float64 arrays (fails the check otherwise)."""
    if not isinstance(got, (list, tuple)) or len(got) != n:
        ctx.fail(f"{what}: expected a tuple of {n} tensors, got {type(got).__name__}")
    out = []
    for i, item in enumerate(got):
        ctx.assert_shape(item, np.shape(item), what=f"{what}[{i}]")  # numeric check
        out.append(np.asarray(item, dtype=np.float64))
    return out


def as_scalar(ctx, value, what: str) -> float:
    """A single number returned by the student (0-dim tensor, 1-element tensor or float)."""
    arr = np.asarray(value) if isinstance(value, np.ndarray) else value
    ctx.assert_shape(arr, np.shape(arr), what=what)  # fails unless numeric
    arr = np.asarray(arr, dtype=np.float64)
    ctx.assert_true(bool(arr.size == 1), f"{what}: expected a single number, got shape {arr.shape}")
    return float(arr.reshape(()))


def em_output(ctx, got, k: int, d: int, what: str):
    """Unpack and shape-check what ``em_step`` returned: (weights, means, covs, ll float)."""
    w, m, c, ll = unpack(ctx, got, 4, what)
    ctx.assert_shape(w, (k,), what=f"{what}: new_weights")
    ctx.assert_shape(m, (k, d), what=f"{what}: new_means")
    ctx.assert_shape(c, (k, d, d), what=f"{what}: new_covs")
    return w, m, c, as_scalar(ctx, ll, f"{what}: log_likelihood_before")


def compare_em(ctx, new, want, rtol: float, atol: float) -> None:
    """Compare an unpacked student EM step with the reference's (a 4-tuple)."""
    names = ["new_weights", "new_means", "new_covs"]
    for value, ref, what in zip(new[:3], want[:3], names):
        ctx.assert_close(value, np.asarray(ref), rtol=rtol, atol=atol, what=what)
    ctx.assert_close(
        new[3],
        float(np.asarray(want[3]).reshape(())),
        rtol=rtol,
        atol=atol,
        what="log_likelihood_before",
    )


def assert_spd(ctx, mats: np.ndarray, what: str) -> None:
    """Fail unless every (d, d) matrix in ``mats`` (..., d, d) is symmetric positive-definite."""
    ctx.assert_true(bool(np.isfinite(mats).all()), f"{what}: contains inf or NaN")
    sym_err = np.abs(mats - np.swapaxes(mats, -1, -2)).max()
    scale = np.abs(mats).max()
    ctx.assert_true(
        bool(sym_err <= 1e-8 * scale + 1e-12),
        f"{what}: not symmetric (max |S - S^T| = {sym_err:.3g})",
    )
    low = np.linalg.eigvalsh(0.5 * (mats + np.swapaxes(mats, -1, -2))).min()
    ctx.assert_true(bool(low > 0), f"{what}: not positive-definite (smallest eigenvalue {low:.3g})")


# --------------------------------------------------------------------------- 1a


@check(
    id="1a-basic",
    task="1a",
    points=2,
    timeout=10,
    seed=101,
    title="log-density of a 3-D Gaussian at 6 points",
)
def log_density_basic(ctx):
    d = 3
    cov = random_spd(ctx.rng, d)
    mean = ctx.rng.normal(size=d)
    x = mean + ctx.rng.normal(size=(6, d)) * 1.5
    got = call(ctx, "gaussian_log_density", x, mean, cov)
    ctx.assert_shape(got, (6,), what="gaussian_log_density(x (6, 3), ...)")
    want = ctx.reference("gaussian_log_density", x, mean, cov)
    ctx.assert_close(got, want, rtol=RTOL, atol=ATOL, what="log-density")


@check(
    id="1a-d1",
    task="1a",
    points=1,
    timeout=10,
    seed=102,
    title="log-density in one dimension (d = 1) against the scalar formula",
)
def log_density_d1(ctx):
    var = 0.7
    mean = np.array([0.4])
    x = ctx.rng.normal(size=(5, 1)) * 2.0
    got = call(ctx, "gaussian_log_density", x, mean, np.array([[var]]))
    ctx.assert_shape(got, (5,), what="gaussian_log_density(x (5, 1), ...)")
    # independent: log N(x; m, v) = -1/2 [log(2 pi v) + (x - m)^2 / v]
    want = -0.5 * (np.log(2 * np.pi * var) + (x[:, 0] - mean[0]) ** 2 / var)
    ctx.assert_close(got, want, rtol=RTOL, atol=ATOL, what="log-density (d = 1)")


# --------------------------------------------------------------------------- 1b


@check(
    id="1b-marginal",
    task="1b",
    points=1,
    timeout=10,
    seed=111,
    title="marginal of a 4-D Gaussian over coordinates [3, 1]",
)
def marginal_basic(ctx):
    d, idx = 4, [3, 1]
    cov = random_spd(ctx.rng, d)
    mean = ctx.rng.normal(size=d)
    got = call(ctx, "gaussian_marginal", mean, cov, idx)
    m, c = unpack(ctx, got, 2, "gaussian_marginal")
    ctx.assert_shape(m, (2,), what="marginal mean")
    ctx.assert_shape(c, (2, 2), what="marginal covariance")
    ctx.assert_close(m, mean[idx], rtol=RTOL, atol=ATOL, what="marginal mean")
    ctx.assert_close(c, cov[np.ix_(idx, idx)], rtol=RTOL, atol=ATOL, what="marginal covariance")


@check(
    id="1b-conditional",
    task="1b",
    points=2,
    timeout=10,
    seed=112,
    title="conditional p(x_a | x_b) of a 4-D Gaussian, a = [0, 2]",
)
def conditional_basic(ctx):
    d, idx_a = 4, [0, 2]
    cov = random_spd(ctx.rng, d)
    mean = ctx.rng.normal(size=d)
    x_b = ctx.rng.normal(size=2)
    got = call(ctx, "gaussian_conditional", mean, cov, idx_a, x_b)
    m, c = unpack(ctx, got, 2, "gaussian_conditional")
    ctx.assert_shape(m, (2,), what="conditional mean")
    ctx.assert_shape(c, (2, 2), what="conditional covariance")
    want_m, want_c = ctx.reference("gaussian_conditional", mean, cov, idx_a, x_b)
    ctx.assert_close(m, want_m, rtol=RTOL, atol=ATOL, what="conditional mean")
    ctx.assert_close(c, want_c, rtol=RTOL, atol=ATOL, what="conditional covariance")


# --------------------------------------------------------------------------- 1c


@check(
    id="1c-kl-diag",
    task="1c",
    points=1,
    timeout=10,
    seed=121,
    title="closed-form KL between diagonal Gaussians, batch of 4 in 3-D",
)
def kl_diag_basic(ctx):
    shape = (4, 3)
    mu1, mu2 = ctx.rng.normal(size=shape), ctx.rng.normal(size=shape)
    var1, var2 = ctx.rng.uniform(0.2, 3.0, size=shape), ctx.rng.uniform(0.2, 3.0, size=shape)
    got = call(ctx, "kl_diag_gaussians", mu1, var1, mu2, var2)
    ctx.assert_shape(got, (4,), what="kl_diag_gaussians on (4, 3) inputs")
    want = ctx.reference("kl_diag_gaussians", mu1, var1, mu2, var2)
    ctx.assert_close(got, want, rtol=RTOL, atol=ATOL, what="KL")


@check(
    id="1c-kl-categorical",
    task="1c",
    points=1,
    timeout=10,
    seed=122,
    title="KL between categorical distributions, batch of 5 with 4 categories, one p_k = 0",
)
def kl_categorical_basic(ctx):
    p = ctx.rng.dirichlet(np.ones(4), size=5)
    q = ctx.rng.dirichlet(np.ones(4), size=5)
    # one category with probability 0 under p (its term is 0 log 0 = 0, not NaN)
    p[2, 1] = 0.0
    p[2] /= p[2].sum()
    got = call(ctx, "kl_categorical", p, q)
    ctx.assert_shape(got, (5,), what="kl_categorical on (5, 4) inputs")
    p_log_ratio = np.where(p > 0, p * (np.log(np.where(p > 0, p, 1.0)) - np.log(q)), 0.0)
    want = p_log_ratio.sum(-1)  # independent of the reference, 0 log 0 = 0
    ctx.assert_close(
        got, want, rtol=RTOL, atol=ATOL, what="kl_categorical (row 2 has one p_k = 0: 0 log 0 = 0)"
    )


def mc_estimates(ctx, mu1, var1, mu2, var2, n_samples: int, seeds) -> np.ndarray:
    """The student's ``mc_kl_estimate`` for each seed, as a float64 array."""
    out = []
    for seed in seeds:
        got = call(ctx, "mc_kl_estimate", mu1, var1, mu2, var2, n_samples, int(seed))
        out.append(as_scalar(ctx, got, "mc_kl_estimate (a 0-dim tensor or a float)"))
    values = np.array(out)
    ctx.assert_true(bool(np.isfinite(values).all()), "mc_kl_estimate returned inf or NaN")
    return values


def kl_diag_numpy(mu1, var1, mu2, var2) -> float:
    """Independent closed form 1/2 sum [log(v2/v1) + (v1 + (m1-m2)^2)/v2 - 1]."""
    return float(0.5 * (np.log(var2 / var1) + (var1 + (mu1 - mu2) ** 2) / var2 - 1).sum())


@check(
    id="1c-mc-unbiased",
    task="1c",
    points=2,
    timeout=20,
    seed=123,
    title="Monte Carlo KL: the average over 100 seeds matches the closed form",
)
def mc_kl_unbiased(ctx):
    mu1, mu2 = np.array([0.0, 1.0, -0.5]), np.array([0.5, 0.0, 0.0])
    var1, var2 = np.array([0.5, 1.0, 2.0]), np.array([1.0, 0.6, 1.5])
    kl = kl_diag_numpy(mu1, var1, mu2, var2)
    values = mc_estimates(ctx, mu1, var1, mu2, var2, 50, range(100))
    ctx.assert_true(
        bool(values.std() > 0),
        "mc_kl_estimate gives the same value for every seed: it must "
        "average over random samples drawn with the given seed",
    )
    se = values.std(ddof=1) / np.sqrt(values.size)
    ctx.assert_true(
        bool(abs(values.mean() - kl) <= 5 * se),
        f"mean of 100 estimates (n_samples=50, seeds 0..99) is {values.mean():.4f} "
        f"+- {se:.4f} (standard error) but KL = {kl:.4f}: the estimator looks biased "
        "(are the samples drawn from p = N(mu1, var1) with standard deviation sqrt(var1)?)",
    )


# --------------------------------------------------------------------------- 1d


@check(
    id="1d-basic",
    task="1d",
    points=2,
    timeout=10,
    seed=131,
    title="maximum-likelihood mean and covariance of 40 points in 3-D",
)
def mle_basic(ctx):
    x = ctx.rng.normal(size=(40, 3)) @ random_spd(ctx.rng, 3) + ctx.rng.normal(size=3)
    got = call(ctx, "gaussian_mle", x)
    m, c = unpack(ctx, got, 2, "gaussian_mle")
    ctx.assert_shape(m, (3,), what="mean")
    ctx.assert_shape(c, (3, 3), what="covariance")
    ctx.assert_close(m, x.mean(0), rtol=RTOL, atol=ATOL, what="mean")
    # independent: numpy's covariance with the 1/N normalisation
    ctx.assert_close(
        c,
        np.cov(x, rowvar=False, bias=True),
        rtol=RTOL,
        atol=ATOL,
        what="covariance (normalised by 1/N)",
    )


# --------------------------------------------------------------------------- 1e


def two_blobs(rng: np.random.Generator, n: int, d: int, k: int):
    """Data from k well-separated blobs and a deliberately poor starting point for EM."""
    centres = rng.normal(size=(k, d)) * 3.0
    labels = rng.integers(0, k, size=n)
    x = centres[labels] + rng.normal(size=(n, d))
    weights = np.full(k, 1.0 / k)
    means = x[rng.choice(n, size=k, replace=False)]
    covs = np.stack([np.eye(d) * 2.0 for _ in range(k)])
    return x, weights, means, covs


@check(
    id="1e-basic",
    task="1e",
    points=3,
    timeout=10,
    seed=141,
    title="one EM step, 3 components in 2-D, 60 points",
)
def em_basic(ctx):
    x, w, m, c = two_blobs(ctx.rng, 60, 2, 3)
    new = em_output(ctx, call(ctx, "em_step", x, w, m, c), 3, 2, "em_step")
    compare_em(ctx, new, ctx.reference("em_step", x, w, m, c), RTOL, ATOL)
    ctx.assert_close(
        new[3],
        mixture_loglik(x, w, m, c),
        rtol=RTOL,
        atol=ATOL,
        what="log_likelihood_before vs an independent computation",
    )


def run_em_steps(ctx, x, w, m, c, steps: int):
    """Call the student's ``em_step`` ``steps`` times in a row, checking each output.

    Every step must return valid parameters (SPD covariances, positive weights
    summing to 1) and report as ``log_likelihood_before`` the log-likelihood of
    the parameters it was given, recomputed here independently. Returns the
    final parameters and the recomputed log-likelihoods (``steps + 1`` values,
    the starting one first).
    """
    k, d = m.shape
    reported, recomputed = [], [mixture_loglik(x, w, m, c)]
    for step in range(steps):
        what = f"em_step (step {step})"
        w, m, c, ll = em_output(ctx, call(ctx, "em_step", x, w, m, c), k, d, what)
        assert_spd(ctx, c, f"new_covs (step {step})")
        ctx.assert_true(
            bool(np.all(w > 0) and abs(w.sum() - 1) < 1e-9),
            f"new_weights (step {step}) must be positive and sum to 1, got {w}",
        )
        reported.append(float(ll))
        recomputed.append(mixture_loglik(x, w, m, c))
    # the value reported at step t is the log-likelihood of the parameters passed in
    ctx.assert_close(
        np.array(reported),
        np.array(recomputed[:-1]),
        rtol=RTOL,
        atol=1e-6,
        what="log_likelihood_before of each step",
    )
    return w, m, c, recomputed


@check(
    id="1e-monotone",
    task="1e",
    points=2,
    timeout=20,
    seed=142,
    title="8 EM steps in a row: the log-likelihood never decreases",
)
def em_monotone(ctx):
    x, w, m, c = two_blobs(ctx.rng, 80, 2, 3)
    w, m, c, recomputed = run_em_steps(ctx, x, w, m, c, steps=8)
    lls = np.array(recomputed)
    drops = np.diff(lls)
    worst = int(np.argmin(drops))
    ctx.assert_true(
        bool(drops.min() >= -1e-8 * np.abs(lls).max()),
        f"the log-likelihood decreased from {lls[worst]:.8g} to {lls[worst + 1]:.8g} at step "
        f"{worst}: EM never lowers it, so the E- or M-step is not the exact update",
    )
