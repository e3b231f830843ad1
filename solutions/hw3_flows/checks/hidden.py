"""Hidden checks of homework 3 (kept in solutions/, never released).

They probe what the public checks leave out: other orderings, sizes and layer
counts of MADE (two variables, no hidden layer, hidden layers narrower than
n - 1), batches of 1 and 40 (sums over the batch instead of the features),
more variables for the sequential inverse, MAFs of 1 to 3 blocks, a planar
layer checked against autograd with a batch size different from the dimension,
an odd number of features in the coupling layer (d // 2 unchanged) and every
function on another device (``meta``). Helpers come from ``public.py``.

``GRADED_HELPERS`` (the source of correct helpers, written independently of the
reference solution) is sent to the harness by every check of 3d, public or
hidden, when grading: the MAF then runs with these helpers instead of the
student's, so one mistake costs points only in its own task. It lives here
because this file is never released: the helpers are the answers to 3b and 3c.
"""

from __future__ import annotations

import numpy as np

from coursekit.grading.check_kit import shapes_of, sibling_checks
from coursekit.grading.checks import check

GRADED_HELPERS = """
import math

import torch


def log_standard_normal(z):
    return -0.5 * (z.pow(2) + math.log(2.0 * math.pi)).sum(dim=-1)


def made_forward(x, net):
    shift, log_scale = net(x)
    return (x - shift) / log_scale.exp(), -log_scale.sum(dim=-1)


def made_inverse(z, net):
    # d passes from x = z (any start works: pass k fixes the k-th variable of the order)
    x = z.clone()
    for _ in range(z.shape[-1]):
        shift, log_scale = net(x)
        x = z * log_scale.exp() + shift
    return x, log_scale.sum(dim=-1)
"""


_public = sibling_checks(__file__)  # public.py, for its helpers
call, run, any_device = _public.call, _public.run, _public.any_device
compare_pair, compare_masks, compare_degrees = (_public.compare_pair, _public.compare_masks,
                                                _public.compare_degrees)
made_weights, maf_weights, coupling_weights = (_public.made_weights, _public.maf_weights,
                                               _public.coupling_weights)
check_autograd, check_round_trip = _public.check_autograd, _public.check_round_trip


@check(id="3a-hidden-cases", task="3a", points=1, timeout=20, seed=50,
       title="MADE masks: 2 variables, no hidden layer, narrow and deep hidden layers")
def masks_cases(ctx):
    cases = [
        ([1, 0], [3], True),
        (list(ctx.rng.permutation(4)), [], True),
        (list(ctx.rng.permutation(6)), [3], False),  # too narrow to connect everything
        (list(ctx.rng.permutation(5)), [7, 4, 9], True),
    ]
    for order, sizes, complete in cases:
        label = f"order {[int(o) + 1 for o in order]}, hidden sizes {sizes}"
        compare_degrees(ctx, order, sizes, label)
        compare_masks(ctx, order, sizes, label, complete)


@check(id="3b-hidden-batch", task="3b", points=1, timeout=20, seed=51,
       title="MADE block, data to noise: batches of 1 and 40, d = 7; any device")
def made_forward_batches(ctx):
    order = ctx.rng.permutation(7)
    w = made_weights(ctx.rng, order, (14,))
    for batch in (1, 40):
        x = ctx.rng.normal(size=(batch, 7))
        compare_pair(ctx, run(ctx, "made_forward", x, w),
                     ctx.reference("harness:apply", "made_forward", x, w), "made_forward",
                     f"d = 7, batch of {batch}")
    any_device(ctx, "made_forward", shapes_of(w))


@check(id="3c-hidden-order", task="3c", points=1, timeout=30, seed=52,
       title="MADE block, noise to data: d = 7 in other orders, batches of 1 and 30; "
             "any device")
def made_inverse_orders(ctx):
    check_round_trip(ctx, ctx.rng.permutation(7), 1, "d = 7, batch of 1", (14,))
    check_round_trip(ctx, ctx.rng.permutation(7), 30, "d = 7, batch of 30", (14, 14))
    any_device(ctx, "made_inverse", shapes_of(made_weights(ctx.rng, np.arange(4))))


@check(id="3d-hidden-blocks", task="3d", points=1, timeout=30, seed=53,
       title="MAF of 1, 2 and 3 blocks, d = 4, batches of 1 and 10; any device")
def maf_blocks(ctx):
    for blocks, batch in ((1, 10), (2, 1), (3, 10)):
        _public.compare_maf(ctx, 4, blocks, batch, f"{blocks} block(s), d = 4, batch {batch}")
    nets = shapes_of(maf_weights(ctx.rng, 3, 2))
    any_device(ctx, "maf_log_prob", nets, bound=True)
    any_device(ctx, "maf_inverse", nets, bound=True)


@check(id="3e-hidden-autograd", task="3e", points=1, timeout=20, seed=54,
       title="planar flow: logdet is log|det J| (autograd), d = 4, batch of 6; any device")
def planar_autograd(ctx):
    for wu in (-6.0, 2.0):
        p = _public.planar_params(ctx, 4, wu)
        p["b"] = np.asarray(-0.7)
        check_autograd(ctx, "planar_flow", ctx.rng.normal(size=(6, 4)), p,
                       f"d = 4, w^T u = {wu:g}")
        z = ctx.rng.normal(size=(6, 4))
        compare_pair(ctx, run(ctx, "planar_flow", z, p),
                     ctx.reference("harness:apply", "planar_flow", z, p), "planar_flow",
                     f"d = 4, batch of 6, w^T u = {wu:g}", names=("f", "logdet"))
    any_device(ctx, "planar_u_hat")
    any_device(ctx, "planar_flow")


@check(id="3f-hidden-odd", task="3f", points=1, timeout=20, seed=55,
       title="affine coupling with d = 5 (2 unchanged, 3 transformed): both directions, "
             "autograd log-dets; any device")
def coupling_odd(ctx):
    w = coupling_weights(ctx.rng, 5, raw_shift=4.0)
    x = ctx.rng.normal(size=(7, 5))
    for name in ("affine_coupling_forward", "affine_coupling_inverse"):
        compare_pair(ctx, run(ctx, name, x, w), ctx.reference("harness:apply", name, x, w),
                     name, "d = 5, batch of 7", names=("out", "logdet"))
        check_autograd(ctx, name, x[:4], w, "d = 5")
        any_device(ctx, name, shapes_of(w))
