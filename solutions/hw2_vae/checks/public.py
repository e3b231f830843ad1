"""Public checks of homework 2 (released to students).

Deterministic functions (log-densities, KL) are compared with the reference
solution on seeded float64 inputs at ``rtol=1e-6``: far looser than round-off
differences between correct formulas, far tighter than any typical mistake.

Stochastic functions are judged STATISTICALLY, so that every correct
implementation passes however it draws its noise (``randn_like``,
``torch.distributions``, a different order of draws): the harness
(``checks/harness.py``, run in the sandbox with your code) calls your function
many times, and a check compares the average with the reference's average (or
with the exact expected value) allowing ``Z`` standard errors. With ``Z = 6`` a
correct solution fails by chance with probability below 1e-8, while the typical
mistakes are off by tens to thousands of standard errors.

The encoder/decoder handed to your functions are tiny fixed-architecture
networks (see ``harness.py``) rebuilt in the sandbox from weights sent here.
"""

from __future__ import annotations

import numpy as np

from coursekit.grading.checks import check

RTOL, ATOL = 1e-6, 1e-9
Z = 6.0  # standard errors allowed in statistical comparisons
TRAIN_BAND = 0.5  # nats: |test NELBO - reference test NELBO| allowed by the training check


# --------------------------------------------------------------------------- helpers


def weights(rng: np.random.Generator, x_dim=12, z_dim=3, hidden=16, scale=0.6,
            dec_scale=None) -> dict:
    """Random float64 weights of the harness's encoder/decoder (see harness.py)."""
    dec_scale = scale if dec_scale is None else dec_scale

    def lin(out_dim, in_dim, s):
        return (s * rng.normal(size=(out_dim, in_dim)) / np.sqrt(in_dim),
                0.1 * rng.normal(size=out_dim))

    w = {}
    w["enc_w1"], w["enc_b1"] = lin(hidden, x_dim, 2.0 * scale)
    w["enc_w2"], w["enc_b2"] = lin(2 * z_dim, hidden, 2.0 * scale)
    w["dec_w1"], w["dec_b1"] = lin(hidden, z_dim, 2.0 * dec_scale)
    w["dec_w2"], w["dec_b2"] = lin(x_dim, hidden, 4.0 * dec_scale)
    return w


def binary(rng: np.random.Generator, n: int, d: int = 12) -> np.ndarray:
    """A batch of random binary 'images' (n, d), float64."""
    return (rng.random((n, d)) < 0.4).astype(np.float64)


def series(ctx, value, repeats: int, what: str) -> np.ndarray:
    """What the harness returned for ``repeats`` calls of a scalar function, as (repeats,)."""
    arr = np.asarray(value) if isinstance(value, np.ndarray) else value
    ctx.assert_shape(arr, np.shape(arr), what=what)  # fails unless numeric
    arr = np.asarray(arr, dtype=np.float64)
    if arr.shape != (repeats,):
        ctx.fail(f"{what}: expected a single number (a 0-dim tensor, the batch average) "
                 f"per call, got shape {arr.shape[1:]} per call")
    if not np.isfinite(arr).all():
        bad = arr[~np.isfinite(arr)][0]
        ctx.fail(f"{what}: contains non-finite values (inf or NaN), e.g. {bad}")
    return arr


def same_mean(ctx, got: np.ndarray, want: np.ndarray, what: str, z: float = Z) -> None:
    """Fail unless the averages of two samples agree within ``z`` combined standard errors."""
    se = np.sqrt(got.var(ddof=1) / got.size + want.var(ddof=1) / want.size)
    diff = abs(got.mean() - want.mean())
    tol = z * se + 1e-7 * (1.0 + abs(want.mean()))
    ctx.assert_true(
        bool(diff <= tol),
        f"{what}: your average over {got.size} calls is {got.mean():.6g}, the expected "
        f"average is {want.mean():.6g} (difference {diff:.3g}, allowed {tol:.3g} = "
        f"{z:g} standard errors)",
    )


def elbo_triplet(ctx, got, repeats: int, what: str):
    """Unpack the harness's {"nelbo", "kl", "rec"} and check nelbo == kl + rec call by call."""
    if not isinstance(got, dict) or set(got) != {"nelbo", "kl", "rec"}:
        ctx.fail(f"{what}: expected the tuple (nelbo, kl, rec)")
    nelbo, kl, rec = (series(ctx, got[k], repeats, f"{what}: {k}") for k in ("nelbo", "kl", "rec"))
    ctx.assert_close(nelbo, kl + rec, rtol=1e-6, atol=1e-8,
                     what=f"{what}: nelbo compared with kl + rec (they must be equal)")
    return nelbo, kl, rec


def digits_arrays():
    """Statically binarised digits (train, test) as float32 arrays."""
    from coursekit.data import load_digits

    x_train, _ = load_digits("train", binarize="static")
    x_test, _ = load_digits("test", binarize="static")
    return x_train.numpy(), x_test.numpy()


# --------------------------------------------------------------------------- 2a


@check(id="2a-moments", task="2a", points=2, timeout=20, seed=10,
       title="samples of N(m, diag v) have mean m and variance v")
def sample_moments(ctx):
    m = np.array([0.5, -2.0, 3.0])
    v = np.array([4.0, 0.25, 1.0])
    n = 100_000
    got = ctx.call("harness:sample_moments", m, v, n)
    ctx.assert_true(isinstance(got, dict) and "shape" in got, "sample_gaussian: no result")
    ctx.assert_true(list(got["shape"]) == [n, 3],
                    f"sample_gaussian: expected a sample of shape ({n}, 3) for m and v of that "
                    f"shape, got {tuple(got['shape'])}")
    mean, var = np.asarray(got["mean"]), np.asarray(got["var"])
    se_mean, se_var = np.sqrt(v / n), v * np.sqrt(2.0 / n)
    bad = np.abs(mean - m) > Z * se_mean
    ctx.assert_true(not bad.any(),
                    f"sample_gaussian: sample means {np.round(mean, 3)} should be close to "
                    f"m = {m} (within {Z:g} standard errors {np.round(Z * se_mean, 3)})")
    bad = np.abs(var - v) > Z * se_var
    ctx.assert_true(not bad.any(),
                    f"sample_gaussian: sample variances {np.round(var, 3)} should be close to "
                    f"v = {v} (within {np.round(Z * se_var, 3)}); remember that v is a "
                    "variance: the standard deviation is sqrt(v)")


# --------------------------------------------------------------------------- 2b


@check(id="2b-log-normal", task="2b", points=1, timeout=10, seed=11,
       title="log N(x; m, diag v) summed over the last dimension")
def log_normal_basic(ctx):
    x = ctx.rng.normal(size=(6, 4))
    m = ctx.rng.normal(size=(6, 4))
    v = ctx.rng.uniform(0.2, 3.0, size=(6, 4))
    got = ctx.call("log_normal", x, m, v)
    ctx.assert_close(got, ctx.reference("log_normal", x, m, v), RTOL, ATOL, what="log_normal")
    # one Gaussian (d,) for a batch of points (n, d)
    got = ctx.call("log_normal", x, m[0], v[0])
    ctx.assert_close(got, ctx.reference("log_normal", x, m[0], v[0]), RTOL, ATOL,
                     what="log_normal with m, v of shape (d,)")


@check(id="2b-mixture", task="2b", points=1, timeout=10, seed=12,
       title="log-density of a uniform Gaussian mixture")
def mixture_basic(ctx):
    z = ctx.rng.normal(size=(7, 3))
    m = 1.5 * ctx.rng.normal(size=(5, 3))
    v = ctx.rng.uniform(0.3, 2.0, size=(5, 3))
    got = ctx.call("log_normal_mixture", z, m, v)
    ctx.assert_close(got, ctx.reference("log_normal_mixture", z, m, v), RTOL, ATOL,
                     what="log_normal_mixture, z (7, 3), k = 5")
    zb = ctx.rng.normal(size=(2, 4, 3))
    got = ctx.call("log_normal_mixture", zb, m, v)
    ctx.assert_close(got, ctx.reference("log_normal_mixture", zb, m, v), RTOL, ATOL,
                     what="log_normal_mixture, z (2, 4, 3)")


# --------------------------------------------------------------------------- 2c


@check(id="2c-basic", task="2c", points=1, timeout=10, seed=13,
       title="KL between diagonal Gaussians")
def kl_basic(ctx):
    qm, pm = ctx.rng.normal(size=(8, 5)), ctx.rng.normal(size=(8, 5))
    qv, pv = ctx.rng.uniform(0.1, 3.0, size=(8, 5)), ctx.rng.uniform(0.1, 3.0, size=(8, 5))
    got = ctx.call("kl_normal", qm, qv, pm, pv)
    ctx.assert_close(got, ctx.reference("kl_normal", qm, qv, pm, pv), RTOL, ATOL,
                     what="kl_normal")
    zero, one = np.zeros(5), np.ones(5)
    got = ctx.call("kl_normal", qm, qv, zero, one)
    ctx.assert_close(got, ctx.reference("kl_normal", qm, qv, zero, one), RTOL, ATOL,
                     what="kl_normal against N(0, I) given as (5,) tensors")


# --------------------------------------------------------------------------- 2d


def check_elbo(ctx, batch: int, repeats: int, label: str) -> None:
    """negative_elbo_bound on a random tiny VAE: nelbo = kl + rec, exact KL, rec on average."""
    w = weights(ctx.rng)
    x = binary(ctx.rng, batch)
    got = ctx.call("harness:elbo_repeats", x, w, repeats)
    want = ctx.reference("harness:elbo_repeats", x, w, repeats)
    _, kl, rec = elbo_triplet(ctx, got, repeats, f"negative_elbo_bound ({label})")
    ctx.assert_close(kl, np.asarray(want["kl"]), rtol=1e-6, atol=1e-8,
                     what=f"negative_elbo_bound ({label}): kl (closed form, batch average)")
    same_mean(ctx, rec, np.asarray(want["rec"]), f"negative_elbo_bound ({label}): rec")


@check(id="2d-elbo", task="2d", points=2, timeout=20, seed=14,
       title="negative ELBO: nelbo = kl + rec, closed-form KL, reconstruction on average")
def elbo_basic(ctx):
    check_elbo(ctx, batch=8, repeats=400, label="batch of 8")


@check(id="2d-train", task="2d", points=2, timeout=40, seed=15,
       title="training a tiny VAE on binarised digits with your negative_elbo_bound")
def elbo_train(ctx):
    x_train, x_test = digits_arrays()
    kw = {"steps": 300, "z_dim": 4, "hidden": 64, "batch_size": 64, "lr": 3e-3, "init_seed": 0}
    got = ctx.call("harness:train_vae", x_train, x_test, **kw)
    want = ctx.reference("harness:train_vae", x_train, x_test, **kw)
    ctx.assert_true(isinstance(got, dict) and bool(got.get("finite")),
                    "training with negative_elbo_bound produced a non-finite loss")
    got_nelbo, want_nelbo = float(got["nelbo"]), float(want["nelbo"])
    ctx.assert_true(
        bool(abs(got_nelbo - want_nelbo) <= TRAIN_BAND),
        f"after 300 Adam steps with your negative_elbo_bound the test NELBO is "
        f"{got_nelbo:.3f} nats (measured by the harness, not by your function); the "
        f"reference reaches {want_nelbo:.3f} and {TRAIN_BAND} nats either side are allowed",
    )


# --------------------------------------------------------------------------- 2e


def iwae_means(ctx, got, ks, repeats: int, what: str) -> list:
    arr = np.asarray(got) if isinstance(got, np.ndarray) else got
    ctx.assert_shape(arr, np.shape(arr), what=what)
    arr = np.asarray(arr, dtype=np.float64)
    if arr.shape[:2] != (len(ks), repeats):
        ctx.fail(f"{what}: unexpected result of shape {arr.shape}")
    return [series(ctx, arr[i], repeats, f"{what} (k = {k})") for i, k in enumerate(ks)]


@check(id="2e-iwae", task="2e", points=2, timeout=20, seed=16,
       title="negative IWAE bound for k = 1 and k = 8")
def iwae_basic(ctx):
    w = weights(ctx.rng)
    x = binary(ctx.rng, 8)
    ks, repeats = [1, 8], 300
    got = iwae_means(ctx, ctx.call("harness:iwae_repeats", x, w, ks, repeats), ks, repeats,
                     "negative_iwae_bound")
    want = np.asarray(ctx.reference("harness:iwae_repeats", x, w, ks, repeats))
    for k, g, r in zip(ks, got, want):
        same_mean(ctx, g, r, f"negative_iwae_bound (k = {k})")


# --------------------------------------------------------------------------- 2f


def check_gmvae(ctx, prior_m, prior_v, batch: int, repeats: int, label: str) -> None:
    w = weights(ctx.rng)
    x = binary(ctx.rng, batch)
    got = ctx.call("harness:gmvae_repeats", x, w, prior_m, prior_v, repeats)
    want = ctx.reference("harness:gmvae_repeats", x, w, prior_m, prior_v, repeats)
    _, kl, rec = elbo_triplet(ctx, got, repeats, f"gmvae_negative_elbo_bound ({label})")
    same_mean(ctx, kl, np.asarray(want["kl"]), f"gmvae_negative_elbo_bound ({label}): kl")
    same_mean(ctx, rec, np.asarray(want["rec"]), f"gmvae_negative_elbo_bound ({label}): rec")


@check(id="2f-gmvae", task="2f", points=2, timeout=20, seed=17,
       title="GMVAE negative ELBO with a 4-component prior")
def gmvae_basic(ctx):
    prior_m = ctx.rng.normal(size=(4, 3))
    prior_v = ctx.rng.uniform(0.3, 1.5, size=(4, 3))
    check_gmvae(ctx, prior_m, prior_v, batch=8, repeats=400, label="k = 4 components")


# --------------------------------------------------------------------------- 2g


def ssvae_weights(rng: np.random.Generator, x_dim=12, z_dim=3, hidden=16, n_classes=4,
                  cls_scale=3.0) -> dict:
    """Random float64 weights of the harness's classifier/encoder/decoder (harness.py)."""
    def lin(out_dim, in_dim, s):
        return (s * rng.normal(size=(out_dim, in_dim)) / np.sqrt(in_dim),
                0.1 * rng.normal(size=out_dim))

    w = {}
    w["cls_w1"], w["cls_b1"] = lin(hidden, x_dim, cls_scale)
    w["cls_w2"], w["cls_b2"] = lin(n_classes, hidden, cls_scale)
    w["enc_w1"], w["enc_b1"] = lin(hidden, x_dim + n_classes, 1.2)
    w["enc_w2"], w["enc_b2"] = lin(2 * z_dim, hidden, 1.2)
    w["dec_w1"], w["dec_b1"] = lin(hidden, z_dim + n_classes, 1.2)
    w["dec_w2"], w["dec_b2"] = lin(x_dim, hidden, 2.4)
    return w


def check_ssvae(ctx, n_u: int, n_l: int, alpha: float, repeats: int, label: str) -> None:
    """ssvae_loss: loss = nelbo_u + nelbo_l + alpha ce call by call, exact ce, terms on average."""
    w = ssvae_weights(ctx.rng)
    x_u, x_l = binary(ctx.rng, n_u), binary(ctx.rng, n_l)
    y_l = ctx.rng.integers(0, 4, size=n_l).astype(np.int64)
    got = ctx.call("harness:ssvae_repeats", x_u, x_l, y_l, w, alpha, repeats)
    want = ctx.reference("harness:ssvae_repeats", x_u, x_l, y_l, w, alpha, repeats)
    keys = ("loss", "nelbo_u", "nelbo_l", "ce")
    if not isinstance(got, dict) or set(got) != set(keys):
        ctx.fail(f"ssvae_loss ({label}): expected the tuple (loss, nelbo_u, nelbo_l, ce)")
    loss, nelbo_u, nelbo_l, ce = (series(ctx, got[k], repeats, f"ssvae_loss ({label}): {k}")
                                  for k in keys)
    ctx.assert_close(loss, nelbo_u + nelbo_l + alpha * ce, rtol=1e-6, atol=1e-8,
                     what=f"ssvae_loss ({label}): loss compared with nelbo_u + nelbo_l + alpha ce")
    ctx.assert_close(ce, np.asarray(want["ce"]), rtol=1e-6, atol=1e-8,
                     what=f"ssvae_loss ({label}): ce (mean cross-entropy of the labelled batch)")
    same_mean(ctx, nelbo_l, np.asarray(want["nelbo_l"]), f"ssvae_loss ({label}): nelbo_l")
    same_mean(ctx, nelbo_u, np.asarray(want["nelbo_u"]), f"ssvae_loss ({label}): nelbo_u")


@check(id="2g-ssvae", task="2g", points=2, timeout=20, seed=18,
       title="semi-supervised VAE loss with 4 classes")
def ssvae_basic(ctx):
    check_ssvae(ctx, n_u=10, n_l=6, alpha=5.0, repeats=1000, label="4 classes")
