"""Hidden checks of homework 4 (kept in solutions/, never released).

They probe what the public checks leave out: batches of 1 and 40 with different
numbers of real and fake examples (a mean over the concatenated batch instead of
one mean each), float32 logits where ``log(sigmoid)`` underflows sooner, labels
of the conditional losses in other orders, images (batch, c, h, w) for the
interpolation and the penalty (a norm over the last axis only), other penalty
weights (including 0) and every function on another device (``meta``). Helpers
come from ``public.py``.

``GRADED_HELPERS`` (the source of correct helpers, written independently of the
reference solution) is sent to the harness by every check of 4c and 4f, public
or hidden, when grading: the losses then run with these helpers instead of the
student's, so one mistake costs points only in its own task. It lives here
because this file is never released: the helpers are the answers to 4a, 4b, 4e.
The penalty calls ``interpolates``: the harness provides it (the one it pins).
"""

from __future__ import annotations

import numpy as np

from coursekit.grading.check_kit import shapes_of, sibling_checks
from coursekit.grading.checks import check

GRADED_HELPERS = """
import torch
import torch.nn.functional as F


def discriminator_loss(real_logits, fake_logits):
    real_part = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    fake_part = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real_part + fake_part


def generator_loss(fake_logits):
    return -F.logsigmoid(fake_logits).mean()


def gradient_penalty(critic, real, fake):
    points = interpolates(real.detach(), fake.detach()).detach().requires_grad_()
    grads = torch.autograd.grad(critic(points).sum(), points, create_graph=True)[0]
    slopes = grads.reshape(grads.shape[0], -1).pow(2).sum(dim=1).sqrt()
    return (slopes - 1.0).pow(2).mean()
"""


_public = sibling_checks(__file__)  # public.py, for its helpers
call, any_device = _public.call, _public.any_device


@check(id="4a-hidden-batch", task="4a", points=1, timeout=20, seed=80,
       title="discriminator loss: 1 real and 40 fake logits, 40 and 1, float32 at +-200; "
             "any device")
def discriminator_batches(ctx):
    for n, m in ((1, 40), (40, 1)):
        _public.scores_case(ctx, "discriminator_loss", f"{n} real, {m} fake logits",
                            3.0 * ctx.rng.normal(size=n), 3.0 * ctx.rng.normal(size=m))
    _public.scores_case(ctx, "discriminator_loss", "float32 logits of +-200",
                        np.array([200.0, -200.0], dtype=np.float32),
                        np.array([-200.0, 200.0, 0.5], dtype=np.float32))
    any_device(ctx, "discriminator_loss")


@check(id="4b-hidden-batch", task="4b", points=1, timeout=20, seed=81,
       title="generator loss: batches of 1 and 40, float32 at -200; any device")
def generator_batches(ctx):
    for m in (1, 40):
        _public.scores_case(ctx, "generator_loss", f"{m} fake logits",
                            3.0 * ctx.rng.normal(size=m))
    _public.scores_case(ctx, "generator_loss", "float32 logits of -200 and 200",
                        np.array([-200.0, 200.0, -3.0], dtype=np.float32))
    any_device(ctx, "generator_loss")


@check(id="4c-hidden-batch", task="4c", points=1, timeout=20, seed=82,
       title="conditional losses: 7 real and 3 fake examples, 1 and 9; any device")
def conditional_batches(ctx):
    for n_real, n_fake in ((7, 3), (1, 9)):
        label = f"{n_real} real and {n_fake} fake examples"
        case = _public.conditional_case(ctx, n_real, n_fake)
        got, _ = _public.compare_conditional(ctx, "conditional_discriminator_loss", case, label)
        _public.assert_no_fake_grad(ctx, got, "conditional_discriminator_loss", label)
        got, want = _public.compare_conditional(ctx, "conditional_generator_loss", case, label)
        _public.compare_loss(ctx, got, want, "conditional_generator_loss", label, "fake_grad")
    shapes = shapes_of(_public.critic_weights(ctx.rng, 3, classes=_public.CLASSES))
    any_device(ctx, "conditional_discriminator_loss", shapes, bound=True)
    any_device(ctx, "conditional_generator_loss", shapes, bound=True)


@check(id="4d-hidden-shapes", task="4d", points=1, timeout=30, seed=83,
       title="interpolates: images (6, 1, 3, 3), one example, float32; any device")
def interpolates_shapes(ctx):
    for shape in ((6, 1, 3, 3), (1, 5)):
        real, fake = _public.segment_pair(ctx, shape)
        runs = call(ctx, "harness:interpolation_runs", real, fake, 40, function="interpolates")
        _public.mixing_weights(ctx, real, fake, runs, f"inputs of shape {shape}")
    real, fake = (a.astype(np.float32) for a in _public.segment_pair(ctx, (3, 2)))
    call(ctx, "harness:interpolation_runs", real, fake, 2, function="interpolates")
    any_device(ctx, "interpolates")


@check(id="4e-hidden-shapes", task="4e", points=1, timeout=30, seed=84,
       title="gradient penalty: images (5, 1, 2, 3), batches of 1 and 4 x 4; any device")
def penalty_shapes(ctx):
    for shape in ((5, 1, 2, 3), (1, 3), (4, 4)):
        _public.compare_penalty(ctx, _public.penalty_case(ctx, shape), f"inputs of shape {shape}")
    any_device(ctx, "gradient_penalty", shapes_of(_public.critic_weights(ctx.rng, 3)))


@check(id="4f-hidden-weights", task="4f", points=1, timeout=30, seed=85,
       title="WGAN-GP losses: gp_weight 0 and 2.5, batches of 1 and 9; any device")
def wgan_weights(ctx):
    for n, gp_weight in ((9, 0.0), (1, 2.5)):
        label = f"{n} examples, gp_weight {gp_weight:g}"
        got, _ = _public.compare_wgan(ctx, "wgan_critic_loss", _public.wgan_case(ctx, n), label,
                                      gp_weight=gp_weight)
        _public.assert_no_fake_grad(ctx, got, "wgan_critic_loss", label)
        got, want = _public.compare_wgan(ctx, "wgan_generator_loss", _public.wgan_case(ctx, n),
                                         label)
        _public.compare_loss(ctx, got, want, "wgan_generator_loss", label, "fake_grad")
    shapes = shapes_of(_public.critic_weights(ctx.rng, 3))
    any_device(ctx, "wgan_critic_loss", shapes, bound=True)
    any_device(ctx, "wgan_generator_loss", shapes)


@check(id="4g-hidden-batch", task="4g", points=1, timeout=20, seed=86,
       title="KL bound: 1 real and 30 fake scores, 30 and 1; the critic on a batch of 1; "
             "any device")
def kl_batches(ctx):
    for n, m in ((1, 30), (30, 1)):
        _public.scores_case(ctx, "kl_lower_bound", f"{n} real, {m} fake scores",
                            ctx.rng.normal(size=n), ctx.rng.normal(size=m) + 0.5)
    log_p, log_q = np.array([-1.5]), np.array([-0.25])
    got = call(ctx, "harness:apply", "kl_optimal_critic", log_p, log_q,
               function="kl_optimal_critic")
    want = ctx.reference("harness:apply", "kl_optimal_critic", log_p, log_q)
    ctx.assert_close(_public.as_array(ctx, got["value"], "kl_optimal_critic"),
                     np.asarray(want["value"]), _public.RTOL, _public.ATOL,
                     what="kl_optimal_critic (batch of 1)")
    any_device(ctx, "kl_lower_bound")
    any_device(ctx, "kl_optimal_critic")
