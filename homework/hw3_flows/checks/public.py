"""Public checks of homework 3 (released to students).

Every function of this homework is deterministic, so answers are compared with
the reference solution on seeded float64 inputs at ``rtol=1e-6``: far looser
than round-off differences between correct formulas, far tighter than any
typical mistake. Properties are checked too: the masks make each output depend
exactly on the inputs before it (the autoregressive property), inverses undo
their forward maps, and every log-determinant equals ``log|det J|`` of the
Jacobian of YOUR map computed by autograd (``torch.autograd.functional.jacobian``).

The networks handed to your functions are small fixed-architecture networks
(see ``harness.py``) rebuilt in the sandbox from weights sent here; the MADE
masks they use are computed with the course library (``coursekit.autoregressive``,
which your submission may not import).

One mistake costs points once, in its own task: when graded, the MAF functions
of 3d run with correct versions of ``made_forward``, ``made_inverse`` and
``log_standard_normal`` in place of yours, so a wrong 3b or 3c loses points
there only. These correct helpers are not released (they would be the answers
to 3b and 3c): here, without them, your MAF runs with your own helpers, and a
failure in 3b or 3c can show up in 3d too.
"""

from __future__ import annotations

import numpy as np

from coursekit.grading.check_kit import SandboxCalls, assert_trained_within_band
from coursekit.grading.checks import check

RTOL, ATOL = 1e-6, 1e-9
# nats: |test NLL - reference test NLL| allowed by the training check (see maf_train)
TRAIN_BAND = 0.2


# --------------------------------------------------------------------------- helpers


OWN_HELPERS_NOTE = (
    " [this check ran your MAF with your own made_forward/made_inverse; if a "
    "check of 3b or 3c fails, fix it first (when graded, 3d runs with correct "
    "helpers, so a helper mistake costs points only in its own task)]")
KIT = SandboxCalls(__file__, own_helpers_note=OWN_HELPERS_NOTE)
call, any_device, own_helpers_note = KIT.call, KIT.any_device, KIT.own_helpers_note


def run(ctx, function: str, x, params, bound: bool = False):
    """The student's ``function`` on ``x`` with networks/parameters ``params`` (harness)."""
    return call(ctx, "harness:apply", function, x, params, function=function, bound=bound)


def library_masks(order, hidden_sizes) -> list:
    """MADE masks from the course library (an independent computation), as float64."""
    import torch

    from coursekit.autoregressive.masks import made_masks

    masks, _ = made_masks(torch.as_tensor(np.asarray(order), dtype=torch.long),
                          list(hidden_sizes))
    return [m.numpy().astype(np.float64) for m in masks]


def made_weights(rng: np.random.Generator, order, hidden_sizes=(12, 12), scale=1.5) -> dict:
    """Random float64 weights of the harness's MADE network for an ordering.

    The output layer has 2 d rows, [mu; raw log-scale], both under the output mask.
    ``scale`` makes the shifts and log-scales vary clearly with the inputs (log-scales
    of order 1, so exp(alpha) and exp(-alpha) differ)."""
    masks = library_masks(order, hidden_sizes)
    masks[-1] = np.concatenate([masks[-1], masks[-1]], axis=0)
    w = {}
    for i, mask in enumerate(masks):
        w[f"w{i}"] = scale * rng.normal(size=mask.shape) / np.sqrt(mask.shape[1])
        w[f"b{i}"] = 0.3 * rng.normal(size=mask.shape[0])
        w[f"m{i}"] = mask
    return w


def maf_weights(rng: np.random.Generator, d: int, blocks: int, hidden_sizes=(10, 10),
                scale=1.2) -> list:
    """Weights of ``blocks`` MADE networks in the natural order (the MAF reverses between)."""
    return [made_weights(rng, np.arange(d), hidden_sizes, scale) for _ in range(blocks)]


def coupling_weights(rng: np.random.Generator, d: int, hidden=8, raw_shift=2.5) -> dict:
    """Weights of the harness's coupling network for d features.

    The raw log-scales are shifted by +-``raw_shift`` so that they spread over about
    (-4, 4), where the soft clamp s = 2 tanh(r / 2) differs clearly from r."""
    d_a, d_b = d // 2, d - d // 2
    w = {"w1": 1.5 * rng.normal(size=(hidden, d_a)) / np.sqrt(d_a),
         "b1": 0.2 * rng.normal(size=hidden),
         "w2": 1.5 * rng.normal(size=(2 * d_b, hidden)) / np.sqrt(hidden),
         "b2": 0.3 * rng.normal(size=2 * d_b)}
    w["b2"][:d_b] += raw_shift * np.resize([1.0, -1.0], d_b)
    return w


def pair(ctx, got, function: str):
    """A returned (output, logdet) pair as two float64 arrays."""
    if not isinstance(got, (list, tuple)) or len(got) != 2:
        ctx.fail(f"{function}: expected a pair (output, logdet)")
    return [np.asarray(ctx_array(ctx, g, function)) for g in got]


def ctx_array(ctx, value, what: str) -> np.ndarray:
    arr = np.asarray(value) if isinstance(value, np.ndarray) else value
    ctx.assert_shape(arr, np.shape(arr), what=what)  # fails unless numeric
    return np.asarray(arr, dtype=np.float64)


def compare_pair(ctx, got, want, function: str, label: str, names=("z", "logdet")) -> None:
    """Compare a returned (output, logdet) pair with the reference's, shapes first."""
    out, logdet = pair(ctx, got, function)
    want_out, want_logdet = (np.asarray(w, dtype=np.float64) for w in want)
    ctx.assert_shape(out, want_out.shape, what=f"{function} ({label}): {names[0]}")
    if logdet.shape != want_logdet.shape:
        ctx.fail(f"{function} ({label}): {names[1]} should have shape {want_logdet.shape} "
                 f"(one log-determinant per example: sum over the features, not over the "
                 f"batch), got shape {logdet.shape}")
    ctx.assert_close(out, want_out, RTOL, ATOL, what=f"{function} ({label}): {names[0]}")
    ctx.assert_close(logdet, want_logdet, RTOL, ATOL, what=f"{function} ({label}): {names[1]}")


def check_autograd(ctx, function: str, x, params, label: str, bound: bool = False) -> None:
    """The returned log-determinant equals log|det J| of the returned map (autograd)."""
    got = call(ctx, "harness:logdet_vs_autograd", function, x, params, function=function,
               bound=bound)
    if not isinstance(got, dict) or "logdet" not in got:
        ctx.fail(f"{function}: no result")
    logdet = ctx_array(ctx, got["logdet"], f"{function} ({label}): logdet")
    want = np.asarray(got["autograd"], dtype=np.float64)
    if logdet.shape != want.shape:
        ctx.fail(f"{function} ({label}): logdet should have shape {want.shape} (one per "
                 f"example), got {logdet.shape}")
    ctx.assert_close(logdet, want, rtol=1e-6, atol=1e-7,
                     what=f"{function} ({label}): your logdet vs log|det J| of your map "
                          f"computed by autograd")


def moons_arrays():
    """Two moons (train 2000, test 2000 points), float32 arrays, fixed seeds."""
    from coursekit.data import toy2d

    return toy2d("moons", 2000, seed=0).numpy(), toy2d("moons", 2000, seed=1).numpy()


# --------------------------------------------------------------------------- 3a

EXAMPLE_ORDER = np.array([1, 2, 0])  # x2, x3, x1


def masks_of(ctx, got, order, hidden_sizes, label: str) -> list:
    """The returned masks as float64 arrays, with the shapes checked."""
    n = len(order)
    sizes = [*hidden_sizes, n]
    ins = [n, *hidden_sizes]
    if not isinstance(got, (list, tuple)) or len(got) != len(sizes):
        ctx.fail(f"made_masks ({label}): expected a list of {len(sizes)} masks (one per layer, "
                 f"the last into the outputs), got {type(got).__name__}"
                 + (f" of {len(got)}" if isinstance(got, (list, tuple)) else ""))
    masks = []
    for i, (mask, rows, cols) in enumerate(zip(got, sizes, ins)):
        arr = ctx_array(ctx, mask, f"made_masks ({label}): mask {i}")
        ctx.assert_shape(arr, (rows, cols), what=f"made_masks ({label}): mask {i} "
                                                 "(out, in) like nn.Linear's weight")
        ctx.assert_true(bool(np.isin(arr, (0.0, 1.0)).all()),
                        f"made_masks ({label}): mask {i} must contain only 0s and 1s")
        masks.append(arr)
    return masks


def check_autoregressive(ctx, masks, order, label: str, complete: bool = True) -> None:
    """Output i is connected (through some path) to input j iff j comes before i."""
    path = masks[0]
    for mask in masks[1:]:
        path = np.minimum(mask @ path, 1.0)
    degree = np.empty(len(order), dtype=int)
    degree[np.asarray(order)] = np.arange(1, len(order) + 1)
    allowed = degree[:, None] > degree[None, :]
    leak = (path > 0) & ~allowed
    if leak.any():
        i, j = (int(v) for v in np.argwhere(leak)[0])
        ctx.fail(f"made_masks ({label}): output x{i + 1} depends on input x{j + 1}, which "
                 f"comes {'at the same place' if i == j else 'after it'} in the ordering "
                 f"{[int(o) + 1 for o in order]} (position {degree[j]} vs {degree[i]}): the "
                 "autoregressive property is broken; outputs may only see inputs of strictly "
                 "smaller degree")
    missing = allowed & (path == 0)
    if complete and missing.any():
        i, j = (int(v) for v in np.argwhere(missing)[0])
        ctx.fail(f"made_masks ({label}): output x{i + 1} cannot see input x{j + 1}, although "
                 f"x{j + 1} comes before it in the ordering {[int(o) + 1 for o in order]}: a "
                 "hidden unit must see inputs of degree <= its own")


def compare_degrees(ctx, order, hidden_sizes, label: str) -> None:
    got = call(ctx, "made_degrees", np.asarray(order, dtype=np.int64), list(hidden_sizes))
    want = ctx.reference("made_degrees", np.asarray(order, dtype=np.int64), list(hidden_sizes))
    if not isinstance(got, (list, tuple)) or len(got) != len(want):
        ctx.fail(f"made_degrees ({label}): expected a list of {len(want)} degree vectors "
                 "(the inputs', then one per hidden layer)")
    for i, (g, w) in enumerate(zip(got, want)):
        what = ("input degrees" if i == 0 else f"degrees of hidden layer {i}")
        ctx.assert_close(ctx_array(ctx, g, f"made_degrees ({label}): {what}"), w, 0, 0,
                         what=f"made_degrees ({label}): {what}")


def compare_masks(ctx, order, hidden_sizes, label: str, complete: bool = True) -> None:
    args = (np.asarray(order, dtype=np.int64), list(hidden_sizes))
    masks = masks_of(ctx, call(ctx, "made_masks", *args), order, hidden_sizes, label)
    check_autoregressive(ctx, masks, order, label, complete)
    want = ctx.reference("made_masks", *args)
    for i, (g, w) in enumerate(zip(masks, want)):
        ctx.assert_close(g, w, 0, 0, what=f"made_masks ({label}): mask {i}")


@check(id="3a-example", task="3a", points=1, timeout=10, seed=30,
       title="MADE degrees and masks: 3 variables in the order x2, x3, x1")
def masks_example(ctx):
    compare_degrees(ctx, EXAMPLE_ORDER, [4], "order x2, x3, x1; one hidden layer of 4")
    compare_masks(ctx, EXAMPLE_ORDER, [4], "order x2, x3, x1; one hidden layer of 4")


@check(id="3a-property", task="3a", points=1, timeout=10, seed=31,
       title="MADE masks: each output depends on exactly the inputs before it (5 variables)")
def masks_property(ctx):
    order = ctx.rng.permutation(5)
    compare_degrees(ctx, order, [8, 6], "5 variables, hidden layers 8 and 6")
    compare_masks(ctx, order, [8, 6], "5 variables, hidden layers 8 and 6")


# --------------------------------------------------------------------------- 3b


@check(id="3b-forward", task="3b", points=1, timeout=10, seed=32,
       title="MADE block, data to noise: z and log|det dz/dx|")
def made_forward_basic(ctx):
    order = ctx.rng.permutation(4)
    w = made_weights(ctx.rng, order)
    x = ctx.rng.normal(size=(6, 4))
    compare_pair(ctx, run(ctx, "made_forward", x, w),
                 ctx.reference("harness:apply", "made_forward", x, w), "made_forward",
                 "d = 4, batch of 6")


@check(id="3b-autograd", task="3b", points=1, timeout=20, seed=33,
       title="MADE block, data to noise: logdet is log|det J| of your map (autograd)")
def made_forward_autograd(ctx):
    order = ctx.rng.permutation(4)
    w = made_weights(ctx.rng, order)
    check_autograd(ctx, "made_forward", ctx.rng.normal(size=(5, 4)), w, "d = 4")


# --------------------------------------------------------------------------- 3c


def check_round_trip(ctx, order, batch: int, label: str, hidden_sizes=(12, 12)) -> None:
    """made_inverse(made_forward(x)) = x, with log-dets of opposite signs (forward by the
    reference), and the same x and log-det as the reference's inverse on fresh noise."""
    w = made_weights(ctx.rng, order, hidden_sizes)
    d = len(order)
    x0 = ctx.rng.normal(size=(batch, d))
    z, forward_logdet = ctx.reference("harness:apply", "made_forward", x0, w)
    got = run(ctx, "made_inverse", np.asarray(z), w)
    compare_pair(ctx, got, (x0, -np.asarray(forward_logdet)), "made_inverse",
                 f"{label}: z = made_forward(x) of the reference; expected x back and the "
                 "negative of the forward log-det", names=("x", "logdet"))
    z2 = ctx.rng.normal(size=(batch, d))
    compare_pair(ctx, run(ctx, "made_inverse", z2, w),
                 ctx.reference("harness:apply", "made_inverse", z2, w), "made_inverse",
                 f"{label}: z ~ N(0, I)", names=("x", "logdet"))


@check(id="3c-inverse", task="3c", points=1, timeout=10, seed=34,
       title="MADE block, noise to data: undoes the forward map (d = 4)")
def made_inverse_basic(ctx):
    check_round_trip(ctx, ctx.rng.permutation(4), 6, "d = 4")


@check(id="3c-autograd", task="3c", points=1, timeout=20, seed=35,
       title="MADE block, noise to data: logdet is log|det J| of your map (autograd)")
def made_inverse_autograd(ctx):
    order = ctx.rng.permutation(4)
    w = made_weights(ctx.rng, order)
    check_autograd(ctx, "made_inverse", ctx.rng.normal(size=(5, 4)), w, "d = 4")


# --------------------------------------------------------------------------- 3d


def compare_maf(ctx, d: int, blocks: int, batch: int, label: str) -> None:
    """maf_log_prob and maf_inverse of ``blocks`` random MADE blocks vs the reference."""
    nets = maf_weights(ctx.rng, d, blocks)
    x = 1.5 * ctx.rng.normal(size=(batch, d))
    got = ctx_array(ctx, run(ctx, "maf_log_prob", x, nets, bound=True),
                    f"maf_log_prob ({label})")
    want = np.asarray(ctx.reference("harness:apply", "maf_log_prob", x, nets))
    if got.shape != want.shape:
        ctx.fail(f"maf_log_prob ({label}): expected one log-density per example, shape "
                 f"{want.shape}, got {got.shape}")
    ctx.assert_close(got, want, RTOL, ATOL, what=f"maf_log_prob ({label})")
    z = ctx.rng.normal(size=(batch, d))
    compare_pair(ctx, run(ctx, "maf_inverse", z, nets, bound=True),
                 ctx.reference("harness:apply", "maf_inverse", z, nets), "maf_inverse", label,
                 names=("x", "logdet"))


@check(id="3d-log-prob", task="3d", points=1, timeout=20, seed=36,
       title="MAF of 5 MADE blocks: log p(x)")
@own_helpers_note
def maf_log_prob_basic(ctx):
    nets = maf_weights(ctx.rng, 3, 5)
    x = 1.5 * ctx.rng.normal(size=(8, 3))
    got = ctx_array(ctx, run(ctx, "maf_log_prob", x, nets, bound=True),
                    "maf_log_prob (5 blocks, d = 3)")
    want = np.asarray(ctx.reference("harness:apply", "maf_log_prob", x, nets))
    if got.shape != want.shape:
        ctx.fail(f"maf_log_prob (5 blocks, d = 3): expected one log-density per example, "
                 f"shape {want.shape}, got {got.shape}")
    ctx.assert_close(got, want, RTOL, ATOL, what="maf_log_prob (5 blocks, d = 3)")


@check(id="3d-inverse", task="3d", points=1, timeout=20, seed=37,
       title="MAF of 5 MADE blocks: noise to data, log|det dx/dz|")
@own_helpers_note
def maf_inverse_basic(ctx):
    nets = maf_weights(ctx.rng, 3, 5)
    z = ctx.rng.normal(size=(8, 3))
    compare_pair(ctx, run(ctx, "maf_inverse", z, nets, bound=True),
                 ctx.reference("harness:apply", "maf_inverse", z, nets), "maf_inverse",
                 "5 blocks, d = 3", names=("x", "logdet"))


TRAIN = {"blocks": 5, "steps": 200, "batch_size": 128, "lr": 1e-2, "init_seed": 0}
TRAIN_HIDDEN = [16, 16]


@check(id="3d-train", task="3d", points=2, timeout=30, seed=38,
       title="training a MAF of 5 blocks on two moons with your maf_log_prob")
@own_helpers_note
def maf_train(ctx):
    """Train with the student's maf_log_prob; the test NLL (measured by the harness's
    own code) must be within ``TRAIN_BAND`` nats of the reference's.

    Calibration: the reference, trained with these settings (200 Adam steps at learning
    rate 0.01, 5 blocks of hidden sizes 16, 16, batches of 128; about 1.3 s of CPU) for
    init seeds 0-9, reaches test NLLs of mean 2.64 nats, standard deviation 0.065 and
    range 2.53-2.71 (the true entropy of two moons is 2.09 nats: a few hundred steps do
    not converge, they only have to separate right from wrong). The same init seed is
    used here for the student and the reference, so a correct implementation differs
    from the reference only by round-off grown over the steps (0.00 nats for the correct
    variants of tests/hw3/correct); the band of 0.2 nats is 3 standard deviations across
    seeds, room for round-off that grows chaotically on other machines. The typical
    mistakes end far outside it (same settings): no reversal between blocks 3.84 nats,
    the log-det left out 10.28, log-dets summed over the batch 139.25.
    """
    x_train, x_test = moons_arrays()
    masks = library_masks(np.arange(2), TRAIN_HIDDEN)
    masks[-1] = np.concatenate([masks[-1], masks[-1]], axis=0)
    got = call(ctx, "harness:train_maf", x_train, x_test, masks, function="maf_log_prob",
               bound=True, **TRAIN)
    want = ctx.reference("harness:train_maf", x_train, x_test, masks, **TRAIN)
    assert_trained_within_band(
        ctx, got, want, "nll", TRAIN_BAND, "maf_log_prob",
        f"after {TRAIN['steps']} Adam steps on -mean(maf_log_prob) the test NLL on two moons")


# --------------------------------------------------------------------------- 3e


def planar_params(ctx, d: int, wu: float) -> dict:
    """u, w (d,) with w^T u = wu, and a scalar b."""
    w = ctx.rng.normal(size=d)
    u = ctx.rng.normal(size=d)
    u = u + (wu - w @ u) * w / (w @ w)
    return {"u": u, "w": w, "b": np.asarray(0.3)}


@check(id="3e-u-hat", task="3e", points=1, timeout=10, seed=39,
       title="planar flow: u_hat, with w^T u_hat > -1")
def planar_u_hat_basic(ctx):
    for wu in (-4.0, 0.5, 3.0):
        p = planar_params(ctx, 3, wu)
        got = ctx_array(ctx, call(ctx, "planar_u_hat", p["u"], p["w"]), "planar_u_hat")
        ctx.assert_close(got, ctx.reference("planar_u_hat", p["u"], p["w"]), RTOL, ATOL,
                         what=f"planar_u_hat (w^T u = {wu:g})")
        ctx.assert_true(bool(got @ p["w"] > -1.0),
                        f"planar_u_hat: w^T u_hat = {got @ p['w']:.4g} must be > -1")


@check(id="3e-planar", task="3e", points=1, timeout=10, seed=40,
       title="planar flow: f(z) and log|det df/dz| (w^T u < -1, so u_hat matters)")
def planar_basic(ctx):
    p = planar_params(ctx, 3, -3.0)
    z = ctx.rng.normal(size=(7, 3))
    compare_pair(ctx, run(ctx, "planar_flow", z, p),
                 ctx.reference("harness:apply", "planar_flow", z, p), "planar_flow",
                 "d = 3, batch of 7", names=("f", "logdet"))


# --------------------------------------------------------------------------- 3f


@check(id="3f-forward", task="3f", points=1, timeout=10, seed=41,
       title="affine coupling, data to noise: z and log|det dz/dx| (soft-clamped scales)")
def coupling_forward_basic(ctx):
    w = coupling_weights(ctx.rng, 4)
    x = ctx.rng.normal(size=(6, 4))
    compare_pair(ctx, run(ctx, "affine_coupling_forward", x, w),
                 ctx.reference("harness:apply", "affine_coupling_forward", x, w),
                 "affine_coupling_forward", "d = 4, batch of 6")


@check(id="3f-inverse", task="3f", points=1, timeout=10, seed=42,
       title="affine coupling, noise to data: undoes the forward map")
def coupling_inverse_basic(ctx):
    w = coupling_weights(ctx.rng, 4)
    x0 = ctx.rng.normal(size=(6, 4))
    z, forward_logdet = ctx.reference("harness:apply", "affine_coupling_forward", x0, w)
    compare_pair(ctx, run(ctx, "affine_coupling_inverse", np.asarray(z), w),
                 (x0, -np.asarray(forward_logdet)), "affine_coupling_inverse",
                 "d = 4: z = affine_coupling_forward(x) of the reference; expected x back "
                 "and the negative of the forward log-det", names=("x", "logdet"))
