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

One mistake costs points once, in its own task: when graded, the bounds of
2d-2g are run with correct versions of the helpers of 2a-2c (and of the given
``log_bernoulli_with_logits``) in place of yours, so a wrong ``sample_gaussian``
or ``log_normal`` loses points in 2a/2b only. These correct helpers are not
released (they would be the answers to 2a-2c): here, without them, your bounds
run with your own helpers, and a failure in 2a-2c can show up in 2d-2g too.
"""

from __future__ import annotations

import numpy as np

from coursekit.grading.check_kit import SandboxCalls, assert_trained_within_band
from coursekit.grading.checks import check

RTOL, ATOL = 1e-6, 1e-9
Z = 6.0  # standard errors allowed in statistical comparisons
TRAIN_BAND = 0.5  # nats: |test NELBO - reference test NELBO| allowed by the training check


# --------------------------------------------------------------------------- helpers


OWN_HELPERS_NOTE = (
    " [this check ran your function with your own 2a-2c helpers; if one of "
    "those checks fails, fix it first (when graded, 2d-2g run with correct "
    "helpers, so a helper mistake costs points only in its own task)]")
KIT = SandboxCalls(__file__, own_helpers_note=OWN_HELPERS_NOTE)
call, any_device, own_helpers_note = KIT.call, KIT.any_device, KIT.own_helpers_note


def weights(rng: np.random.Generator, x_dim=12, z_dim=3, hidden=16, scale=0.6,
            dec_scale=None, var_bias=(-2.5, 0.0, 2.0)) -> dict:
    """Random float64 weights of the harness's encoder/decoder (see harness.py).

    ``var_bias`` shifts the raw variance outputs so that the posterior variances
    spread from about 0.1 to 2 (not all near 1, where a standard deviation
    mistaken for a variance would go unnoticed)."""
    dec_scale = scale if dec_scale is None else dec_scale

    def lin(out_dim, in_dim, s):
        return (s * rng.normal(size=(out_dim, in_dim)) / np.sqrt(in_dim),
                0.1 * rng.normal(size=out_dim))

    w = {}
    w["enc_w1"], w["enc_b1"] = lin(hidden, x_dim, 2.0 * scale)
    w["enc_w2"], w["enc_b2"] = lin(2 * z_dim, hidden, 2.0 * scale)
    w["dec_w1"], w["dec_b1"] = lin(hidden, z_dim, 2.0 * dec_scale)
    w["dec_w2"], w["dec_b2"] = lin(x_dim, hidden, 4.0 * dec_scale)
    w["enc_b2"][z_dim:] += np.resize(np.asarray(var_bias, dtype=np.float64), z_dim)
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


def components(ctx, got, keys: tuple, repeats: int, function: str, label: str) -> dict:
    """The harness's per-call results {key: (repeats,)} of a function returning ``keys``."""
    if not isinstance(got, dict) or set(got) != set(keys):
        ctx.fail(f"{function} ({label}): expected the tuple ({', '.join(keys)})")
    return {k: series(ctx, got[k], repeats, f"{function} ({label}): {k}") for k in keys}


def exact_sum(ctx, total, parts: dict, function: str, label: str, total_name: str) -> None:
    """Fail unless ``total`` equals the sum of ``parts`` (name: (weight, values)) call by call."""
    want = sum(weight * values for weight, values in parts.values())
    bad = np.abs(total - want) > 1e-6 * np.abs(want) + 1e-8
    if bad.any():
        i = int(np.argmax(bad))
        terms = ", ".join(f"{name} = {values[i]:.6g}" for name, (_, values) in parts.items())
        formula = " + ".join((f"{w:g} " if w != 1 else "") + name
                             for name, (w, _) in parts.items())
        ctx.fail(f"{function} ({label}): {total_name} must equal {formula} in every call; in "
                 f"call {i + 1} of {total.size} it returned {total_name} = {total[i]:.6g} "
                 f"and {terms} (so {formula} = {want[i]:.6g})")


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
    got = call(ctx, "harness:sample_moments", m, v, n, function="sample_gaussian")
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
    got = call(ctx, "log_normal", x, m, v)
    ctx.assert_close(got, ctx.reference("log_normal", x, m, v), RTOL, ATOL, what="log_normal")
    # one Gaussian (d,) for a batch of points (n, d)
    got = call(ctx, "log_normal", x, m[0], v[0])
    ctx.assert_close(got, ctx.reference("log_normal", x, m[0], v[0]), RTOL, ATOL,
                     what="log_normal with m, v of shape (d,)")
    # m and v of shape (1,) broadcast along the last dimension too: every one of the d
    # dimensions has its own log(2 pi) + log v term
    got = call(ctx, "log_normal", x, m[0, :1], v[0, :1])
    ctx.assert_close(got, ctx.reference("log_normal", x, m[0, :1], v[0, :1]), RTOL, ATOL,
                     what="log_normal with m, v of shape (1,) (broadcast over the d = 4 "
                          "dimensions of x)")


@check(id="2b-mixture", task="2b", points=1, timeout=10, seed=12,
       title="log-density of a uniform Gaussian mixture")
def mixture_basic(ctx):
    z = ctx.rng.normal(size=(7, 3))
    m = 1.5 * ctx.rng.normal(size=(5, 3))
    v = ctx.rng.uniform(0.3, 2.0, size=(5, 3))
    got = call(ctx, "log_normal_mixture", z, m, v)
    ctx.assert_close(got, ctx.reference("log_normal_mixture", z, m, v), RTOL, ATOL,
                     what="log_normal_mixture, z (7, 3), k = 5")
    zb = ctx.rng.normal(size=(2, 4, 3))
    got = call(ctx, "log_normal_mixture", zb, m, v)
    ctx.assert_close(got, ctx.reference("log_normal_mixture", zb, m, v), RTOL, ATOL,
                     what="log_normal_mixture, z (2, 4, 3)")


# --------------------------------------------------------------------------- 2c


@check(id="2c-basic", task="2c", points=1, timeout=10, seed=13,
       title="KL between diagonal Gaussians")
def kl_basic(ctx):
    qm, pm = ctx.rng.normal(size=(8, 5)), ctx.rng.normal(size=(8, 5))
    qv, pv = ctx.rng.uniform(0.1, 3.0, size=(8, 5)), ctx.rng.uniform(0.1, 3.0, size=(8, 5))
    got = call(ctx, "kl_normal", qm, qv, pm, pv)
    ctx.assert_close(got, ctx.reference("kl_normal", qm, qv, pm, pv), RTOL, ATOL,
                     what="kl_normal")
    zero, one = np.zeros(5), np.ones(5)
    got = call(ctx, "kl_normal", qm, qv, zero, one)
    ctx.assert_close(got, ctx.reference("kl_normal", qm, qv, zero, one), RTOL, ATOL,
                     what="kl_normal against N(0, I) given as (5,) tensors")
    pm1, pv1 = pm[0, :1], pv[0, :1]
    got = call(ctx, "kl_normal", qm, qv, pm1, pv1)
    ctx.assert_close(got, ctx.reference("kl_normal", qm, qv, pm1, pv1), RTOL, ATOL,
                     what="kl_normal with pm, pv of shape (1,) (broadcast over the last "
                          "dimension: every one of the 5 dimensions has its log pv term)")


# --------------------------------------------------------------------------- 2d

ELBO_KEYS = ("nelbo", "kl", "rec")


def elbo_runs(ctx, batch: int, repeats: int, label: str):
    """negative_elbo_bound on a random tiny VAE: (yours, the reference's) per-call values."""
    w = weights(ctx.rng)
    x = binary(ctx.rng, batch)
    got = call(ctx, "harness:elbo_repeats", x, w, repeats, function="negative_elbo_bound",
               bound=True)
    want = ctx.reference("harness:elbo_repeats", x, w, repeats)
    got = components(ctx, got, ELBO_KEYS, repeats, "negative_elbo_bound", label)
    return got, {k: np.asarray(want[k]) for k in ELBO_KEYS}


def check_elbo(ctx, batch: int, repeats: int, label: str) -> None:
    """The returned nelbo on average (its components are judged by 2d-terms)."""
    got, want = elbo_runs(ctx, batch, repeats, label)
    same_mean(ctx, got["nelbo"], want["nelbo"], f"negative_elbo_bound ({label}): nelbo")


@check(id="2d-elbo", task="2d", points=1, timeout=20, seed=14,
       title="negative ELBO: the returned nelbo on average")
@own_helpers_note
def elbo_basic(ctx):
    check_elbo(ctx, batch=8, repeats=400, label="batch of 8")


@check(id="2d-terms", task="2d", points=1, timeout=20, seed=14,
       title="negative ELBO: closed-form kl, rec on average, nelbo = kl + rec")
@own_helpers_note
def elbo_terms(ctx):
    label = "batch of 8"
    got, want = elbo_runs(ctx, 8, 400, label)
    exact_sum(ctx, got["nelbo"], {"kl": (1.0, got["kl"]), "rec": (1.0, got["rec"])},
              "negative_elbo_bound", label, "nelbo")
    ctx.assert_close(got["kl"], want["kl"], rtol=1e-6, atol=1e-8,
                     what=f"negative_elbo_bound ({label}): kl (closed form, batch average)")
    same_mean(ctx, got["rec"], want["rec"], f"negative_elbo_bound ({label}): rec")


@check(id="2d-train", task="2d", points=2, timeout=40, seed=15,
       title="training a tiny VAE on binarised digits with your negative_elbo_bound")
@own_helpers_note
def elbo_train(ctx):
    x_train, x_test = digits_arrays()
    kw = {"steps": 300, "z_dim": 4, "hidden": 64, "batch_size": 64, "lr": 3e-3, "init_seed": 0}
    got = call(ctx, "harness:train_vae", x_train, x_test, function="negative_elbo_bound",
               bound=True, **kw)
    want = ctx.reference("harness:train_vae", x_train, x_test, **kw)
    assert_trained_within_band(
        ctx, got, want, "nelbo", TRAIN_BAND, "negative_elbo_bound",
        "after 300 Adam steps with your negative_elbo_bound the test NELBO")


# --------------------------------------------------------------------------- 2e


def iwae_means(ctx, got, ks, repeats: int, what: str) -> list:
    arr = np.asarray(got) if isinstance(got, np.ndarray) else got
    ctx.assert_shape(arr, np.shape(arr), what=what)
    arr = np.asarray(arr, dtype=np.float64)
    if arr.shape[:2] != (len(ks), repeats):
        ctx.fail(f"{what}: unexpected result of shape {arr.shape}")
    return [series(ctx, arr[i], repeats, f"{what} (k = {k})") for i, k in enumerate(ks)]


def iwae_call(ctx, x, w, ks, repeats):
    return call(ctx, "harness:iwae_repeats", x, w, ks, repeats, function="negative_iwae_bound",
                bound=True)


@check(id="2e-iwae", task="2e", points=2, timeout=20, seed=16,
       title="negative IWAE bound for k = 1 and k = 8")
@own_helpers_note
def iwae_basic(ctx):
    w = weights(ctx.rng)
    x = binary(ctx.rng, 8)
    ks, repeats = [1, 8], 300
    got = iwae_means(ctx, iwae_call(ctx, x, w, ks, repeats), ks, repeats, "negative_iwae_bound")
    want = np.asarray(ctx.reference("harness:iwae_repeats", x, w, ks, repeats))
    for k, g, r in zip(ks, got, want):
        same_mean(ctx, g, r, f"negative_iwae_bound (k = {k})")


# --------------------------------------------------------------------------- 2f


def gmvae_runs(ctx, prior_m, prior_v, batch: int, repeats: int, label: str):
    w = weights(ctx.rng)
    x = binary(ctx.rng, batch)
    got = call(ctx, "harness:gmvae_repeats", x, w, prior_m, prior_v, repeats,
               function="gmvae_negative_elbo_bound", bound=True)
    want = ctx.reference("harness:gmvae_repeats", x, w, prior_m, prior_v, repeats)
    got = components(ctx, got, ELBO_KEYS, repeats, "gmvae_negative_elbo_bound", label)
    return got, {k: np.asarray(want[k]) for k in ELBO_KEYS}


def check_gmvae(ctx, prior_m, prior_v, batch: int, repeats: int, label: str) -> None:
    """The returned nelbo on average (its components are judged by 2f-terms)."""
    got, want = gmvae_runs(ctx, prior_m, prior_v, batch, repeats, label)
    same_mean(ctx, got["nelbo"], want["nelbo"], f"gmvae_negative_elbo_bound ({label}): nelbo")


def gmvae_prior(ctx):
    return ctx.rng.normal(size=(4, 3)), ctx.rng.uniform(0.3, 1.5, size=(4, 3))


@check(id="2f-gmvae", task="2f", points=1, timeout=20, seed=17,
       title="GMVAE negative ELBO with a 4-component prior: the returned nelbo")
@own_helpers_note
def gmvae_basic(ctx):
    prior_m, prior_v = gmvae_prior(ctx)
    check_gmvae(ctx, prior_m, prior_v, batch=8, repeats=400, label="k = 4 components")


@check(id="2f-terms", task="2f", points=1, timeout=20, seed=17,
       title="GMVAE negative ELBO: kl and rec on average, nelbo = kl + rec")
@own_helpers_note
def gmvae_terms(ctx):
    label = "k = 4 components"
    prior_m, prior_v = gmvae_prior(ctx)
    got, want = gmvae_runs(ctx, prior_m, prior_v, 8, 400, label)
    exact_sum(ctx, got["nelbo"], {"kl": (1.0, got["kl"]), "rec": (1.0, got["rec"])},
              "gmvae_negative_elbo_bound", label, "nelbo")
    for key in ("kl", "rec"):
        same_mean(ctx, got[key], want[key], f"gmvae_negative_elbo_bound ({label}): {key}")


# --------------------------------------------------------------------------- 2g


def ssvae_weights(rng: np.random.Generator, x_dim=12, z_dim=3, hidden=16, n_classes=4,
                  cls_scale=3.0, class_scale=3.0) -> dict:
    """Random float64 weights of the harness's classifier/encoder/decoder (harness.py).

    The one-hot label's weights are ``class_scale`` times larger than the others, so
    that the bound differs clearly from class to class (mixing up which class goes
    with which example, e.g. a reshape instead of a transpose, shows)."""
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
    w["enc_w1"][:, x_dim:] *= class_scale
    w["dec_w1"][:, z_dim:] *= class_scale
    return w


SSVAE_KEYS = ("loss", "nelbo_u", "nelbo_l", "ce")


def ssvae_runs(ctx, n_u: int, n_l: int, alpha: float, repeats: int, label: str):
    w = ssvae_weights(ctx.rng)
    x_u, x_l = binary(ctx.rng, n_u), binary(ctx.rng, n_l)
    y_l = ctx.rng.integers(0, 4, size=n_l).astype(np.int64)
    got = call(ctx, "harness:ssvae_repeats", x_u, x_l, y_l, w, alpha, repeats,
               function="ssvae_loss", bound=True)
    want = ctx.reference("harness:ssvae_repeats", x_u, x_l, y_l, w, alpha, repeats)
    got = components(ctx, got, SSVAE_KEYS, repeats, "ssvae_loss", label)
    return got, {k: np.asarray(want[k]) for k in SSVAE_KEYS}


def check_ssvae(ctx, n_u: int, n_l: int, alpha: float, repeats: int, label: str) -> None:
    """The returned loss on average (its components are judged by 2g-terms)."""
    got, want = ssvae_runs(ctx, n_u, n_l, alpha, repeats, label)
    same_mean(ctx, got["loss"], want["loss"], f"ssvae_loss ({label}): loss")


@check(id="2g-ssvae", task="2g", points=1, timeout=60, seed=18,
       title="semi-supervised VAE loss with 4 classes: the returned loss")
@own_helpers_note
def ssvae_basic(ctx):
    # 300 calls: 2g-terms judges the same loss's components over 1,000
    check_ssvae(ctx, n_u=10, n_l=6, alpha=5.0, repeats=300, label="4 classes")


@check(id="2g-terms", task="2g", points=1, timeout=60, seed=18,
       title="semi-supervised VAE loss: exact ce, nelbo_u and nelbo_l on average, "
             "loss = nelbo_u + nelbo_l + alpha ce")
@own_helpers_note
def ssvae_terms(ctx):
    label, alpha = "4 classes", 5.0
    got, want = ssvae_runs(ctx, 10, 6, alpha, 1000, label)
    exact_sum(ctx, got["loss"], {"nelbo_u": (1.0, got["nelbo_u"]),
                                 "nelbo_l": (1.0, got["nelbo_l"]), "ce": (alpha, got["ce"])},
              "ssvae_loss", label, "loss")
    ctx.assert_close(got["ce"], want["ce"], rtol=1e-6, atol=1e-8,
                     what=f"ssvae_loss ({label}): ce (mean cross-entropy of the labelled batch)")
    same_mean(ctx, got["nelbo_l"], want["nelbo_l"], f"ssvae_loss ({label}): nelbo_l")
    same_mean(ctx, got["nelbo_u"], want["nelbo_u"], f"ssvae_loss ({label}): nelbo_u")
