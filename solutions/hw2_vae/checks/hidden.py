"""Hidden checks of homework 2 (kept in solutions/, never released).

They probe what the public checks leave out: the gradients of the
reparameterised sample and other batch shapes, points far from every mixture
component (where log(sum(exp(.))) underflows to -inf), extreme variances,
properties of the KL, batch sizes 1 and 50 (sum vs mean over the batch), the
IWAE bound's growth with k, log-weights of the order of -1e3, and a GMVAE
prior far from the encoder's posteriors. Helpers come from ``public.py``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from coursekit.grading.checks import check


def _load_public():
    """Import the sibling ``public.py`` for its helpers (works however this file is loaded)."""
    path = Path(__file__).with_name("public.py")
    spec = importlib.util.spec_from_file_location("_hw2_public_checks_helpers", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_public = _load_public()
RTOL, ATOL, Z = _public.RTOL, _public.ATOL, _public.Z
weights, binary, series = _public.weights, _public.binary, _public.series
same_mean, check_elbo, check_gmvae = _public.same_mean, _public.check_elbo, _public.check_gmvae
iwae_means = _public.iwae_means


@check(id="2a-hidden-reparam", task="2a", points=1, timeout=20, seed=20,
       title="gradients flow through the sample; any batch shape")
def reparam(ctx):
    m = np.array([1.0, -0.5, 2.0])
    v = np.array([0.5, 2.0, 1.5])
    n = 100_000
    got = ctx.call("harness:sample_moments", m, v, n)
    ctx.assert_true(isinstance(got, dict) and list(got.get("shape", [])) == [n, 3],
                    "sample_gaussian: the sample must have the shape of m")
    # d/dm mean ||z||^2 = 2 E z = 2 m;  d/dv = E[z eps / sqrt(v)] = 1
    grad_m, grad_v = np.asarray(got["grad_m"]), np.asarray(got["grad_v"])
    se_m, se_v = 2.0 * np.sqrt(v / n), np.sqrt((m**2 / v + 2.0) / n)
    ctx.assert_true(bool(np.all(np.abs(grad_m - 2 * m) <= Z * se_m + 1e-9)),
                    f"sample_gaussian: gradient of mean(z^2) w.r.t. m is {np.round(grad_m, 3)}, "
                    f"expected about 2 m = {2 * m}; is z = m + sqrt(v) * eps differentiable?")
    ctx.assert_true(bool(np.all(np.abs(grad_v - 1.0) <= Z * se_v + 1e-9)),
                    f"sample_gaussian: gradient of mean(z^2) w.r.t. v is {np.round(grad_v, 3)}, "
                    "expected about 1; the noise must not depend on v and z must be "
                    "differentiable in v (reparameterisation)")
    mb = ctx.rng.normal(size=(2, 5, 4))
    vb = ctx.rng.uniform(0.5, 2.0, size=(2, 5, 4))
    shape, moved = ctx.call("harness:sample_batch_shape", mb, vb)
    ctx.assert_true(list(shape) == [2, 5, 4] and bool(moved),
                    f"sample_gaussian: m and v of shape (2, 5, 4) gave a sample of shape "
                    f"{tuple(shape)} (expected (2, 5, 4), random)")


@check(id="2b-hidden-far", task="2b", points=1, timeout=10, seed=21,
       title="mixture log-density far from every component; tiny variances")
def mixture_far(ctx):
    m = ctx.rng.normal(size=(6, 4))
    v = ctx.rng.uniform(0.01, 0.05, size=(6, 4))
    z = 40.0 + 5.0 * ctx.rng.normal(size=(5, 4))  # log N(z; m_i, v_i) ~ -1e5
    got = ctx.call("log_normal_mixture", z, m, v)
    ctx.assert_close(got, ctx.reference("log_normal_mixture", z, m, v), RTOL, ATOL,
                     what="log_normal_mixture far from every component (use log-sum-exp)")
    x = ctx.rng.normal(size=(3, 50))
    mm, vv = x + 1e-4 * ctx.rng.normal(size=(3, 50)), np.full((3, 50), 1e-7)
    got = ctx.call("log_normal", x, mm, vv)
    ctx.assert_close(got, ctx.reference("log_normal", x, mm, vv), RTOL, ATOL,
                     what="log_normal with variances 1e-7 in 50 dimensions")


@check(id="2b-hidden-batch", task="2b", points=1, timeout=10, seed=22,
       title="mixture log-density: one component, batched points")
def mixture_batch(ctx):
    z = ctx.rng.normal(size=(3, 2, 5, 4))
    m, v = ctx.rng.normal(size=(1, 4)), ctx.rng.uniform(0.2, 2.0, size=(1, 4))
    got = ctx.call("log_normal_mixture", z, m, v)
    ctx.assert_close(got, ctx.reference("log_normal_mixture", z, m, v), RTOL, ATOL,
                     what="log_normal_mixture with k = 1, z (3, 2, 5, 4)")
    m, v = ctx.rng.normal(size=(10, 4)), ctx.rng.uniform(0.2, 2.0, size=(10, 4))
    got = ctx.call("log_normal_mixture", z, m, v)
    ctx.assert_close(got, ctx.reference("log_normal_mixture", z, m, v), RTOL, ATOL,
                     what="log_normal_mixture with k = 10, z (3, 2, 5, 4)")


@check(id="2c-hidden-props", task="2c", points=1, timeout=10, seed=23,
       title="KL >= 0, KL(q || q) = 0, wide range of variances")
def kl_props(ctx):
    qm, pm = 3 * ctx.rng.normal(size=(200, 3)), 3 * ctx.rng.normal(size=(200, 3))
    qv = np.exp(ctx.rng.uniform(-6, 4, size=(200, 3)))
    pv = np.exp(ctx.rng.uniform(-6, 4, size=(200, 3)))
    got = np.asarray(ctx.call("kl_normal", qm, qv, pm, pv), dtype=np.float64)
    ctx.assert_shape(got, (200,), what="kl_normal")
    ctx.assert_true(bool(np.all(got >= -1e-9)),
                    f"kl_normal: a KL divergence is never negative, got {got.min():.4g}")
    ctx.assert_close(got, ctx.reference("kl_normal", qm, qv, pm, pv), RTOL, ATOL,
                     what="kl_normal, variances from 2e-3 to 55")
    same = ctx.call("kl_normal", qm, qv, qm, qv)
    ctx.assert_close(same, np.zeros(200), rtol=0, atol=1e-9, what="kl_normal(q, q)")


@check(id="2d-hidden-batch", task="2d", points=1, timeout=20, seed=24,
       title="negative ELBO for batches of 1 and 50 (averages over the batch)")
def elbo_batches(ctx):
    check_elbo(ctx, batch=1, repeats=400, label="batch of 1")
    check_elbo(ctx, batch=50, repeats=200, label="batch of 50")


@check(id="2e-hidden-monotone", task="2e", points=1, timeout=30, seed=25,
       title="IWAE bound tightens with k and starts at the ELBO")
def iwae_monotone(ctx):
    w = weights(ctx.rng)
    x = binary(ctx.rng, 16)
    ks, repeats = [1, 2, 8, 32], 200
    got = iwae_means(ctx, ctx.call("harness:iwae_repeats", x, w, ks, repeats), ks, repeats,
                     "negative_iwae_bound")
    want = np.asarray(ctx.reference("harness:iwae_repeats", x, w, ks, repeats))
    for k, g, r in zip(ks, got, want):
        same_mean(ctx, g, r, f"negative_iwae_bound (k = {k})")
    means = [g.mean() for g in got]
    ses = [g.std(ddof=1) / np.sqrt(g.size) for g in got]
    for i in range(len(ks) - 1):
        ctx.assert_true(bool(means[i + 1] <= means[i] + Z * np.hypot(ses[i], ses[i + 1])),
                        f"negative_iwae_bound should not increase with k: k = {ks[i]} gives "
                        f"{means[i]:.4f}, k = {ks[i + 1]} gives {means[i + 1]:.4f}")
    elbo = ctx.call("harness:elbo_repeats", x, w, repeats)
    nelbo = series(ctx, elbo["nelbo"], repeats, "negative_elbo_bound") if isinstance(
        elbo, dict) and "nelbo" in elbo else None
    if nelbo is not None:  # the IWAE bound is at least as tight as the ELBO on average
        ctx.assert_true(bool(means[-1] <= nelbo.mean() + Z * ses[-1]),
                        f"negative_iwae_bound (k = {ks[-1]}) = {means[-1]:.4f} should be below "
                        f"the negative ELBO {nelbo.mean():.4f}")


@check(id="2e-hidden-far", task="2e", points=1, timeout=20, seed=26,
       title="IWAE bound with log-weights around -1e3 (log-sum-exp)")
def iwae_far(ctx):
    w = weights(ctx.rng, x_dim=40, dec_scale=6.0)
    x = binary(ctx.rng, 4, d=40)
    ks, repeats = [16], 100
    got = iwae_means(ctx, ctx.call("harness:iwae_repeats", x, w, ks, repeats), ks, repeats,
                     "negative_iwae_bound")
    want = np.asarray(ctx.reference("harness:iwae_repeats", x, w, ks, repeats))
    same_mean(ctx, got[0], want[0], "negative_iwae_bound with very unlikely data (k = 16)")


@check(id="2f-hidden-far", task="2f", points=1, timeout=20, seed=27,
       title="GMVAE negative ELBO with a prior far from the posteriors; batch of 30")
def gmvae_far(ctx):
    prior_m = 30.0 + ctx.rng.normal(size=(5, 3))
    prior_v = ctx.rng.uniform(0.02, 0.1, size=(5, 3))
    check_gmvae(ctx, prior_m, prior_v, batch=30, repeats=200, label="far prior")


@check(id="2g-hidden-batch", task="2g", points=1, timeout=20, seed=28,
       title="semi-supervised VAE loss: one labelled example, alpha = 0")
def ssvae_batches(ctx):
    _public.check_ssvae(ctx, n_u=25, n_l=1, alpha=0.0, repeats=300, label="n_l = 1, alpha = 0")
    _public.check_ssvae(ctx, n_u=1, n_l=20, alpha=0.5, repeats=300, label="n_u = 1")
