"""Hidden checks of homework 2 (kept in solutions/, never released).

They probe what the public checks leave out: the gradients of the
reparameterised sample and other batch shapes, points far from every mixture
component (where log(sum(exp(.))) underflows to -inf), extreme variances,
properties of the KL, batch sizes 1 and 50 (sum vs mean over the batch), the
IWAE bound's growth with k, log-weights of the order of -1e3, and a GMVAE
prior far from the encoder's posteriors. Helpers come from ``public.py``.

``GRADED_HELPERS`` (the source of correct helpers, written independently of the
reference solution) is sent to the harness by every check of 2d-2g, public or
hidden, when grading: the bounds then run with these helpers instead of the
student's, so one mistake costs points only in its own task. It lives here
because this file is never released: the helpers are the answers to 2a-2c.
"""

from __future__ import annotations

import numpy as np

from coursekit.grading.check_kit import shapes_of, sibling_checks
from coursekit.grading.checks import check

GRADED_HELPERS = """
import math

import torch
import torch.nn.functional as F


def _like(value, ref):
    # numbers become tensors; tensors are used as they are (on their own device)
    if isinstance(value, torch.Tensor):
        return value
    return torch.as_tensor(value, dtype=ref.dtype, device=ref.device)


def log_bernoulli_with_logits(x, logits):
    x, logits = torch.broadcast_tensors(_like(x, logits), logits)
    return (x * F.logsigmoid(logits) + (1.0 - x) * F.logsigmoid(-logits)).sum(dim=-1)


def sample_gaussian(m, v):
    v = _like(v, m)
    return m + v.sqrt() * torch.randn(torch.broadcast_shapes(m.shape, v.shape),
                                      dtype=m.dtype, device=m.device)


def log_normal(x, m, v):
    m, v = _like(m, x), _like(v, x)
    x, m, v = torch.broadcast_tensors(x, m, v)
    return -0.5 * (((x - m) ** 2) / v + v.log() + math.log(2.0 * math.pi)).sum(dim=-1)


def log_normal_mixture(z, m, v):
    per_component = log_normal(z[..., None, :], m, v)
    return per_component.logsumexp(dim=-1) - math.log(per_component.shape[-1])


def kl_normal(qm, qv, pm, pv):
    pm, pv, qv = _like(pm, qm), _like(pv, qm), _like(qv, qm)
    qm, qv, pm, pv = torch.broadcast_tensors(qm, qv, pm, pv)
    ratio = qv / pv
    return 0.5 * (ratio - ratio.log() + (qm - pm) ** 2 / pv - 1.0).sum(dim=-1)
"""


_public = sibling_checks(__file__)  # public.py, for its helpers
RTOL, ATOL, Z = _public.RTOL, _public.ATOL, _public.Z
weights, binary, series = _public.weights, _public.binary, _public.series
same_mean, check_elbo, check_gmvae = _public.same_mean, _public.check_elbo, _public.check_gmvae
iwae_means, iwae_call, call = _public.iwae_means, _public.iwae_call, _public.call
any_device = _public.any_device


@check(id="2a-hidden-reparam", task="2a", points=1, timeout=20, seed=20,
       title="gradients flow through the sample; any batch shape, any device")
def reparam(ctx):
    m = np.array([1.0, -0.5, 2.0])
    v = np.array([0.5, 2.0, 1.5])
    n = 100_000
    got = call(ctx, "harness:sample_moments", m, v, n, function="sample_gaussian")
    ctx.assert_true(isinstance(got, dict) and list(got.get("shape", [])) == [n, 3],
                    "sample_gaussian: the sample must have the shape of m")
    # d/dm mean ||z||^2 = 2 E z = 2 m;  d/dv = E[z eps / sqrt(v)] = 1
    grad_m, grad_v = np.asarray(got["grad_m"]), np.asarray(got["grad_v"])
    se_m, se_v = 2.0 * np.sqrt(v / n), np.sqrt((m**2 / v + 2.0) / n)
    ctx.assert_true(bool(np.all(np.abs(grad_m - 2 * m) <= Z * se_m + 1e-9)),
                    f"sample_gaussian: gradient of mean(z^2) w.r.t. m is {np.round(grad_m, 3)}, "
                    f"expected about 2 m = {2 * m}; z must be computed from m with torch "
                    "operations (no .detach(), .item(), numpy or torch.no_grad())")
    ctx.assert_true(bool(np.all(np.abs(grad_v - 1.0) <= Z * se_v + 1e-9)),
                    f"sample_gaussian: gradient of mean(z^2) w.r.t. v is {np.round(grad_v, 3)}, "
                    "expected about 1: draw eps ~ N(0, 1) independently of m and v "
                    "(torch.randn_like(m), not uniform noise such as torch.rand_like) and "
                    "return m + sqrt(v) * eps, differentiable in v (reparameterisation)")
    mb = ctx.rng.normal(size=(2, 5, 4))
    vb = ctx.rng.uniform(0.5, 2.0, size=(2, 5, 4))
    shape, moved = call(ctx, "harness:sample_batch_shape", mb, vb, function="sample_gaussian")
    ctx.assert_true(list(shape) == [2, 5, 4] and bool(moved),
                    f"sample_gaussian: m and v of shape (2, 5, 4) gave a sample of shape "
                    f"{tuple(shape)} (expected (2, 5, 4), random)")
    any_device(ctx, "sample_gaussian")


@check(id="2b-hidden-far", task="2b", points=1, timeout=10, seed=21,
       title="mixture log-density far from every component; tiny variances")
def mixture_far(ctx):
    m = ctx.rng.normal(size=(6, 4))
    v = ctx.rng.uniform(0.01, 0.05, size=(6, 4))
    z = 40.0 + 5.0 * ctx.rng.normal(size=(5, 4))  # log N(z; m_i, v_i) ~ -1e5
    got = call(ctx, "log_normal_mixture", z, m, v)
    ctx.assert_close(got, ctx.reference("log_normal_mixture", z, m, v), RTOL, ATOL,
                     what="log_normal_mixture far from every component (use log-sum-exp)")
    x = ctx.rng.normal(size=(3, 50))
    mm, vv = x + 1e-4 * ctx.rng.normal(size=(3, 50)), np.full((3, 50), 1e-7)
    got = call(ctx, "log_normal", x, mm, vv)
    ctx.assert_close(got, ctx.reference("log_normal", x, mm, vv), RTOL, ATOL,
                     what="log_normal with variances 1e-7 in 50 dimensions")


@check(id="2b-hidden-batch", task="2b", points=1, timeout=10, seed=22,
       title="mixture log-density: one component, batched points; any device")
def mixture_batch(ctx):
    z = ctx.rng.normal(size=(3, 2, 5, 4))
    m, v = ctx.rng.normal(size=(1, 4)), ctx.rng.uniform(0.2, 2.0, size=(1, 4))
    got = call(ctx, "log_normal_mixture", z, m, v)
    ctx.assert_close(got, ctx.reference("log_normal_mixture", z, m, v), RTOL, ATOL,
                     what="log_normal_mixture with k = 1, z (3, 2, 5, 4)")
    m, v = ctx.rng.normal(size=(10, 4)), ctx.rng.uniform(0.2, 2.0, size=(10, 4))
    got = call(ctx, "log_normal_mixture", z, m, v)
    ctx.assert_close(got, ctx.reference("log_normal_mixture", z, m, v), RTOL, ATOL,
                     what="log_normal_mixture with k = 10, z (3, 2, 5, 4)")
    any_device(ctx, "log_normal")
    any_device(ctx, "log_normal_mixture")


@check(id="2c-hidden-props", task="2c", points=1, timeout=10, seed=23,
       title="KL >= 0, KL(q || q) = 0, wide range of variances; any device")
def kl_props(ctx):
    qm, pm = 3 * ctx.rng.normal(size=(200, 3)), 3 * ctx.rng.normal(size=(200, 3))
    qv = np.exp(ctx.rng.uniform(-6, 4, size=(200, 3)))
    pv = np.exp(ctx.rng.uniform(-6, 4, size=(200, 3)))
    got = np.asarray(call(ctx, "kl_normal", qm, qv, pm, pv), dtype=np.float64)
    ctx.assert_shape(got, (200,), what="kl_normal")
    ctx.assert_true(bool(np.all(got >= -1e-9)),
                    f"kl_normal: a KL divergence is never negative, got {got.min():.4g}")
    ctx.assert_close(got, ctx.reference("kl_normal", qm, qv, pm, pv), RTOL, ATOL,
                     what="kl_normal, variances from 2e-3 to 55")
    same = call(ctx, "kl_normal", qm, qv, qm, qv)
    ctx.assert_close(same, np.zeros(200), rtol=0, atol=1e-9, what="kl_normal(q, q)")
    any_device(ctx, "kl_normal")


@check(id="2d-hidden-batch", task="2d", points=1, timeout=20, seed=24,
       title="negative ELBO for batches of 1 and 50 (averages over the batch); any device")
def elbo_batches(ctx):
    check_elbo(ctx, batch=1, repeats=400, label="batch of 1")
    check_elbo(ctx, batch=50, repeats=200, label="batch of 50")
    any_device(ctx, "negative_elbo_bound", shapes_of(weights(ctx.rng)), bound=True)


@check(id="2e-hidden-monotone", task="2e", points=1, timeout=30, seed=25,
       title="IWAE bound tightens with k, below the ELBO; any device")
def iwae_monotone(ctx):
    w = weights(ctx.rng)
    x = binary(ctx.rng, 16)
    ks, repeats = [1, 2, 8, 32], 200
    got = iwae_means(ctx, iwae_call(ctx, x, w, ks, repeats), ks, repeats, "negative_iwae_bound")
    want = np.asarray(ctx.reference("harness:iwae_repeats", x, w, ks, repeats))
    for k, g, r in zip(ks, got, want):
        same_mean(ctx, g, r, f"negative_iwae_bound (k = {k})")
    means = [g.mean() for g in got]
    ses = [g.std(ddof=1) / np.sqrt(g.size) for g in got]
    for i in range(len(ks) - 1):
        ctx.assert_true(bool(means[i + 1] <= means[i] + Z * np.hypot(ses[i], ses[i + 1])),
                        f"negative_iwae_bound should not increase with k: k = {ks[i]} gives "
                        f"{means[i]:.4f}, k = {ks[i + 1]} gives {means[i + 1]:.4f}")
    # the IWAE bound is at least as tight as the ELBO (of the reference: 2d is not judged here)
    nelbo = np.asarray(ctx.reference("harness:elbo_repeats", x, w, repeats)["nelbo"])
    ctx.assert_true(bool(means[-1] <= nelbo.mean() + Z * ses[-1]),
                    f"negative_iwae_bound (k = {ks[-1]}) = {means[-1]:.4f} should be below "
                    f"the negative ELBO {nelbo.mean():.4f}")
    any_device(ctx, "negative_iwae_bound", shapes_of(w), bound=True)


@check(id="2e-hidden-far", task="2e", points=1, timeout=20, seed=26,
       title="IWAE bound with log-weights around -1e3 (log-sum-exp)")
def iwae_far(ctx):
    # decoder biases of +-60 make half of the 40 pixels very unlikely: log-weights of
    # about -1e3 (exp underflows to 0); a narrow q(z|x) keeps their spread small, so the
    # standard error is below 0.1 nat and a bias of a nat or two shows
    w = weights(ctx.rng, x_dim=40, var_bias=(-5.0,))
    w["dec_b2"] = w["dec_b2"] + 60.0 * ctx.rng.choice([-1.0, 1.0], size=40)
    x = binary(ctx.rng, 4, d=40)
    ks, repeats = [16], 100
    got = iwae_means(ctx, iwae_call(ctx, x, w, ks, repeats), ks, repeats, "negative_iwae_bound")
    want = np.asarray(ctx.reference("harness:iwae_repeats", x, w, ks, repeats))
    same_mean(ctx, got[0], want[0], "negative_iwae_bound with very unlikely data (k = 16)")


@check(id="2f-hidden-far", task="2f", points=1, timeout=20, seed=27,
       title="GMVAE negative ELBO, prior far from the posteriors, batch of 30; any device")
def gmvae_far(ctx):
    prior_m = 30.0 + ctx.rng.normal(size=(5, 3))
    prior_v = ctx.rng.uniform(0.02, 0.1, size=(5, 3))
    check_gmvae(ctx, prior_m, prior_v, batch=30, repeats=200, label="far prior")
    any_device(ctx, "gmvae_negative_elbo_bound", shapes_of(weights(ctx.rng)), bound=True)


@check(id="2g-hidden-batch", task="2g", points=1, timeout=60, seed=28,
       title="semi-supervised VAE loss: one labelled example, alpha = 0; any device")
def ssvae_batches(ctx):
    _public.check_ssvae(ctx, n_u=25, n_l=1, alpha=0.0, repeats=300, label="n_l = 1, alpha = 0")
    _public.check_ssvae(ctx, n_u=1, n_l=20, alpha=0.5, repeats=300, label="n_u = 1")
    any_device(ctx, "ssvae_loss", shapes_of(_public.ssvae_weights(ctx.rng)), bound=True)
