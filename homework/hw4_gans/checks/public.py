"""Public checks of homework 4 (released to students).

Every function of this homework but ``interpolates`` is deterministic, so answers
are compared with the reference solution on seeded float64 inputs at
``rtol=1e-6``: far looser than round-off differences between correct formulas,
far tighter than any typical mistake. A loss is judged by its value AND by its
gradients: with respect to the network's parameters (what the player learns
from) and with respect to the generated examples (what would reach the
generator), so that a missing or misplaced ``detach`` shows. ``interpolates`` is
random: its outputs are judged statistically (every point on its segment, one
mixing weight per example, uniform on (0, 1), independent across examples and
calls). The f-GAN bound is also checked against the true KL divergence of two
Gaussians.

The networks handed to your functions are small fixed-architecture networks
(see ``harness.py``) rebuilt in the sandbox from weights sent here.

One mistake costs points once, in its own task: when graded, the conditional
losses of 4c run with correct ``discriminator_loss`` and ``generator_loss``, and
the WGAN-GP critic loss of 4f with a correct ``gradient_penalty``, in place of
yours. These correct helpers are not released (they are answers): here, without
them, your functions run with your own helpers, and a failure in 4a, 4b or 4e can
show up in 4c or 4f too. The checks of 4e and 4f always use the harness's own
``interpolates`` (with mixing weights chosen here), never yours.
"""

from __future__ import annotations

import numpy as np

from coursekit.grading.check_kit import SandboxCalls
from coursekit.grading.checks import check

RTOL, ATOL = 1e-6, 1e-9
Z = 6.0  # standard errors allowed in statistical comparisons
CLASSES = 4

OWN_HELPERS_NOTE = (
    " [this check ran your function with your own helpers (discriminator_loss, "
    "generator_loss, gradient_penalty); if a check of 4a, 4b or 4e fails, fix it first "
    "(when graded, 4c and 4f run with correct helpers, so a helper mistake costs points "
    "only in its own task)]")
KIT = SandboxCalls(__file__, own_helpers_note=OWN_HELPERS_NOTE)
call, any_device, own_helpers_note = KIT.call, KIT.any_device, KIT.own_helpers_note


# --------------------------------------------------------------------------- helpers


def critic_weights(rng: np.random.Generator, d: int, hidden: int = 10, classes: int = 0,
                   class_scale: float = 3.0) -> dict:
    """Random float64 weights of the harness's critic for ``d`` features (+ ``classes``
    one-hot columns, ``class_scale`` times larger so that the label clearly matters)."""
    w1 = 1.5 * rng.normal(size=(hidden, d + classes)) / np.sqrt(d)
    w1[:, d:] *= class_scale
    return {"w1": w1, "b1": 0.3 * rng.normal(size=hidden),
            "w2": 1.2 * rng.normal(size=hidden) / np.sqrt(hidden), "b2": np.asarray(0.2)}


def as_array(ctx, value, what: str) -> np.ndarray:
    """A returned value as a float64 array (fails unless numeric)."""
    arr = np.asarray(value) if isinstance(value, np.ndarray) else value
    ctx.assert_shape(arr, np.shape(arr), what=what)  # fails unless numeric
    return np.asarray(arr, dtype=np.float64)


def compare_value(ctx, got, want, function: str, label: str) -> None:
    value = as_array(ctx, got["value"], f"{function} ({label})")
    ctx.assert_close(value, np.asarray(want["value"], dtype=np.float64), RTOL, ATOL,
                     what=f"{function} ({label}): the loss")


def compare_grads(ctx, got: list, want: list, function: str, label: str, what: str) -> None:
    for i, (g, w) in enumerate(zip(got, want)):
        ctx.assert_close(as_array(ctx, g, what), np.asarray(w, dtype=np.float64), RTOL, ATOL,
                         what=f"{function} ({label}): {what}"
                              + (f" (tensor {i})" if len(want) > 1 else ""))


def compare_loss(ctx, got, want, function: str, label: str, grads: str) -> None:
    """Value and the gradients ``grads`` (a key of the harness's result) vs the reference."""
    if not isinstance(got, dict) or "value" not in got:
        ctx.fail(f"{function} ({label}): no result")
    compare_value(ctx, got, want, function, label)
    names = {"grads": "gradient with respect to the inputs",
             "param_grads": "gradient with respect to the network's parameters",
             "fake_grad": "gradient with respect to the generated examples"}
    g, w = got[grads], want[grads]
    compare_grads(ctx, g if isinstance(g, list) else [g], w if isinstance(w, list) else [w],
                  function, label, names[grads])


def scores_case(ctx, function: str, label: str, *arrays) -> None:
    """A loss of raw scores (4a, 4b, 4g): value and gradients vs the reference."""
    got = call(ctx, "harness:apply", function, *arrays, function=function)
    want = ctx.reference("harness:apply", function, *arrays)
    compare_loss(ctx, got, want, function, label, "grads")


def assert_no_fake_grad(ctx, got, function: str, label: str) -> None:
    grad = as_array(ctx, got["fake_grad"], f"{function} ({label})")
    ctx.assert_true(bool(np.all(grad == 0)),
                    f"{function} ({label}): the loss sends gradients into the generated "
                    f"examples (largest {np.abs(grad).max():.3g}); the critic's or "
                    "discriminator's update must not reach the generator: use "
                    "x_fake.detach() inside this loss")


# --------------------------------------------------------------------------- 4a


@check(id="4a-basic", task="4a", points=1, timeout=10, seed=60,
       title="discriminator loss: value and gradients, 7 real and 5 fake logits")
def discriminator_basic(ctx):
    real, fake = 2.0 * ctx.rng.normal(size=7), 2.0 * ctx.rng.normal(size=5) - 1.0
    scores_case(ctx, "discriminator_loss", "7 real, 5 fake logits", real, fake)


@check(id="4a-stable", task="4a", points=1, timeout=10, seed=61,
       title="discriminator loss: finite and exact for logits of +-1000")
def discriminator_stable(ctx):
    real = np.array([1000.0, -1000.0, 3.0, -40.0])
    fake = np.array([-1000.0, 1000.0, 40.0])
    scores_case(ctx, "discriminator_loss", "logits of +-1000 and +-40", real, fake)


# --------------------------------------------------------------------------- 4b


@check(id="4b-basic", task="4b", points=1, timeout=10, seed=62,
       title="non-saturating generator loss: value and gradient")
def generator_basic(ctx):
    scores_case(ctx, "generator_loss", "6 fake logits", 2.0 * ctx.rng.normal(size=6) - 1.0)


@check(id="4b-saturation", task="4b", points=1, timeout=10, seed=63,
       title="non-saturating generator loss: full gradient where the discriminator rejects "
             "the fakes, finite at +-1000")
def generator_saturation(ctx):
    """Rejected fakes (logits -30 .. -5) must still get gradients of size about 1/m each."""
    logits = np.array([-1000.0, -30.0, -12.0, -5.0, 1000.0])
    got = call(ctx, "harness:apply", "generator_loss", logits, function="generator_loss")
    want = ctx.reference("harness:apply", "generator_loss", logits)
    grad = as_array(ctx, got["grads"][0], "generator_loss: gradient")
    ctx.assert_true(
        grad.shape == logits.shape and bool(np.all(grad[:4] < -0.9 / logits.size)),
        f"generator_loss: on fakes that the discriminator rejects (logits {logits[:4]}) the "
        f"gradient per logit should be about -1/m = {-1 / logits.size:.3g}, got {grad[:4]}: "
        "the minimax loss log(1 - D) saturates there; use -log D")
    compare_loss(ctx, got, want, "generator_loss", "logits of -1000 .. 1000", "grads")


# --------------------------------------------------------------------------- 4c


def conditional_case(ctx, n_real: int, n_fake: int):
    """Weights of a conditional discriminator and a batch where each fake's label differs
    from the real label at the same position (so the pairing matters)."""
    w = critic_weights(ctx.rng, 3, classes=CLASSES)
    x_real, x_fake = ctx.rng.normal(size=(n_real, 3)), ctx.rng.normal(size=(n_fake, 3))
    y_real = ctx.rng.integers(0, CLASSES, size=n_real)
    y_fake = (np.resize(y_real, n_fake) + ctx.rng.integers(1, CLASSES, size=n_fake)) % CLASSES
    return w, x_real, y_real.astype(np.int64), x_fake, y_fake.astype(np.int64)


def compare_conditional(ctx, function: str, case, label: str) -> tuple[dict, dict]:
    got = call(ctx, "harness:conditional", function, case[0], CLASSES, *case[1:],
               function=function, bound=True)
    want = ctx.reference("harness:conditional", function, case[0], CLASSES, *case[1:])
    compare_loss(ctx, got, want, function, label, "param_grads")
    return got, want


@check(id="4c-discriminator", task="4c", points=1, timeout=10, seed=64,
       title="conditional discriminator loss: real pairs, fake pairs with their own labels, "
             "no gradient into the generator")
@own_helpers_note
def conditional_discriminator(ctx):
    label = "6 real and 6 fake examples, 4 classes"
    got, _ = compare_conditional(ctx, "conditional_discriminator_loss",
                                 conditional_case(ctx, 6, 6), label)
    assert_no_fake_grad(ctx, got, "conditional_discriminator_loss", label)


@check(id="4c-generator", task="4c", points=1, timeout=10, seed=65,
       title="conditional generator loss: value, gradients into the generated examples")
@own_helpers_note
def conditional_generator(ctx):
    label = "6 fake examples, 4 classes"
    got, want = compare_conditional(ctx, "conditional_generator_loss",
                                    conditional_case(ctx, 6, 6), label)
    compare_loss(ctx, got, want, "conditional_generator_loss", label, "fake_grad")


# --------------------------------------------------------------------------- 4d


def segment_pair(ctx, shape: tuple):
    """Real and fake examples that differ by at least 0.5 in every feature."""
    fake = ctx.rng.normal(size=shape)
    gap = ctx.rng.uniform(0.5, 2.0, size=shape) * ctx.rng.choice([-1.0, 1.0], size=shape)
    return fake + gap, fake


def mixing_weights(ctx, real, fake, runs, label: str) -> np.ndarray:
    """The weights eps (repeats, batch) of the returned points, after checking that each
    point lies on its segment with one weight in [0, 1] for all of its features."""
    runs = as_array(ctx, runs, f"interpolates ({label})")
    batch = real.shape[0]
    per_feature = ((runs - fake) / (real - fake)).reshape(runs.shape[0], batch, -1)
    spread = per_feature.max(axis=2) - per_feature.min(axis=2)
    if spread.max() > 1e-6:
        r, i = (int(v) for v in np.unravel_index(np.argmax(spread), spread.shape))
        ctx.fail(f"interpolates ({label}): example {i} is not on the segment between its real "
                 f"and fake versions: its features were mixed with different weights "
                 f"{np.round(per_feature[r, i], 4).tolist()} (call {r + 1}); draw ONE weight "
                 "per example, shape (batch, 1, ...), shared by all of its features")
    eps = per_feature.mean(axis=2)
    ctx.assert_true(bool(np.all((eps >= -1e-9) & (eps <= 1 + 1e-9))),
                    f"interpolates ({label}): mixing weights outside [0, 1], e.g. "
                    f"{eps[(eps < 0) | (eps > 1)][:3].round(4).tolist()}: eps ~ Uniform(0, 1)")
    return eps


@check(id="4d-segment", task="4d", points=1, timeout=20, seed=66,
       title="interpolates: every point on its segment, one weight per example "
             "(5 x 3 points, 4 x 4 points)")
def interpolates_segment(ctx):
    for shape in ((5, 3), (4, 4)):
        real, fake = segment_pair(ctx, shape)
        runs = call(ctx, "harness:interpolation_runs", real, fake, 50, function="interpolates")
        mixing_weights(ctx, real, fake, runs, f"{shape[0]} examples of {shape[1]} features")


def check_uniform(ctx, eps: np.ndarray, label: str) -> None:
    """eps (repeats, batch): Uniform(0, 1), independent across examples and calls."""
    flat = eps.ravel()
    n = flat.size
    checks = [("mean", flat.mean(), 0.5, np.sqrt(1 / 12 / n)),
              ("variance", flat.var(), 1 / 12, np.sqrt(1 / 180 / n))]
    for name, value, want, se in checks:
        ctx.assert_true(bool(abs(value - want) <= Z * se),
                        f"interpolates ({label}): the mixing weights' {name} over {n} draws is "
                        f"{value:.4f}, Uniform(0, 1) gives {want:.4f} (allowed {Z * se:.4f})")
    # Kolmogorov-Smirnov distance to Uniform(0, 1); 1.95 / sqrt(n) is its 0.1 % level
    s = np.sort(flat)
    ks = max(np.max(np.arange(1, n + 1) / n - s), np.max(s - np.arange(n) / n))
    ctx.assert_true(bool(ks <= 1.95 / np.sqrt(n)),
                    f"interpolates ({label}): the mixing weights are not Uniform(0, 1) "
                    f"(Kolmogorov-Smirnov distance {ks:.4f} over {n} draws, allowed "
                    f"{1.95 / np.sqrt(n):.4f})")
    limit = Z / np.sqrt(eps.shape[0])
    across = np.corrcoef(eps[:, 0], eps[:, 1])[0, 1]
    ctx.assert_true(bool(abs(across) <= limit),
                    f"interpolates ({label}): the weights of examples 1 and 2 have correlation "
                    f"{across:.3f} over {eps.shape[0]} calls (independent draws: |r| <= "
                    f"{limit:.3f}); draw one weight PER EXAMPLE, not one for the batch")
    between = np.corrcoef(eps[:-1, 0], eps[1:, 0])[0, 1]
    ctx.assert_true(bool(abs(between) <= limit),
                    f"interpolates ({label}): consecutive calls give correlated weights "
                    f"(r = {between:.3f}); draw fresh weights in every call")


@check(id="4d-uniform", task="4d", points=1, timeout=30, seed=67,
       title="interpolates: the weights are Uniform(0, 1), independent across examples "
             "and calls (1,000 calls)")
def interpolates_uniform(ctx):
    real, fake = segment_pair(ctx, (4, 2))
    runs = call(ctx, "harness:interpolation_runs", real, fake, 1000, function="interpolates")
    check_uniform(ctx, mixing_weights(ctx, real, fake, runs, "4 examples of 2 features"),
                  "4 examples of 2 features")


# --------------------------------------------------------------------------- 4e


def penalty_case(ctx, shape: tuple, hidden: int = 10):
    d = int(np.prod(shape[1:]))
    return (critic_weights(ctx.rng, d, hidden), ctx.rng.normal(size=shape),
            ctx.rng.normal(size=shape), ctx.rng.uniform(0.05, 0.95, size=shape[0]))


def compare_penalty(ctx, case, label: str) -> None:
    got = call(ctx, "harness:penalty", *case, function="gradient_penalty")
    want = ctx.reference("harness:penalty", *case)
    compare_loss(ctx, got, want, "gradient_penalty", label, "param_grads")


@check(id="4e-penalty", task="4e", points=2, timeout=20, seed=68,
       title="gradient penalty: value and its gradient for the critic (6 examples of 3 "
             "features, mixing weights fixed by the check)")
def penalty_basic(ctx):
    compare_penalty(ctx, penalty_case(ctx, (6, 3)), "6 examples of 3 features")


# --------------------------------------------------------------------------- 4f


def wgan_case(ctx, n: int, d: int = 3):
    return (critic_weights(ctx.rng, d), ctx.rng.normal(size=(n, d)) + 0.5,
            ctx.rng.normal(size=(n, d)), ctx.rng.uniform(0.05, 0.95, size=n))


def compare_wgan(ctx, function: str, case, label: str,
                 gp_weight: float = 10.0) -> tuple[dict, dict]:
    got = call(ctx, "harness:wgan", function, *case, gp_weight=gp_weight, function=function,
               bound=True)
    want = ctx.reference("harness:wgan", function, *case, gp_weight=gp_weight)
    compare_loss(ctx, got, want, function, label, "param_grads")
    return got, want


@check(id="4f-critic", task="4f", points=1, timeout=20, seed=69,
       title="WGAN-GP critic loss: value, the critic's gradient, no gradient into the generator")
@own_helpers_note
def wgan_critic(ctx):
    label = "6 examples, gp_weight 10"
    got, _ = compare_wgan(ctx, "wgan_critic_loss", wgan_case(ctx, 6), label)
    assert_no_fake_grad(ctx, got, "wgan_critic_loss", label)


@check(id="4f-generator", task="4f", points=1, timeout=10, seed=70,
       title="WGAN generator loss: value, gradients into the generated examples")
def wgan_generator(ctx):
    label = "6 fake examples"
    case = wgan_case(ctx, 6)
    got, want = compare_wgan(ctx, "wgan_generator_loss", case, label)
    compare_loss(ctx, got, want, "wgan_generator_loss", label, "fake_grad")


TRAIN = {"steps": 100, "batch_size": 128, "hidden": 64, "lr": 3e-3, "gp_weight": 10.0,
         "init_seed": 0}
SHIFT = (0.6, 0.0)  # the fake ring is the real one moved by SHIFT: W1 = |SHIFT| = 0.6
TRAIN_BAND = 0.05  # |your critic's W1 estimate - the reference's| allowed (see critic_train)


def ring_arrays(n: int, seed: int, shift=(0.0, 0.0)) -> np.ndarray:
    """The ring of 8 Gaussians (radius 1, sigma 0.01) of lecture 07, moved by ``shift``."""
    from coursekit.data import toy2d

    return toy2d("ring8", n, seed=seed).numpy() + np.asarray(shift, dtype=np.float32)


@check(id="4f-train", task="4f", points=2, timeout=30, seed=71,
       title="training a WGAN-GP critic with your loss: its estimate of W1 between the ring "
             "of 8 Gaussians and the same ring moved by 0.6")
@own_helpers_note
def critic_train(ctx):
    """Train a critic with the student's wgan_critic_loss between the ring and the ring
    moved by 0.6 (a translation, so W1 = 0.6 exactly); the checks compute its estimate
    E_P[critic] - E_Q[critic] on 2,000 + 2,000 held-out points, which must be within
    ``TRAIN_BAND`` of the reference's.

    Calibration (the reference, these settings: 100 Adam steps at learning rate 3e-3,
    betas (0.5, 0.9), two tanh layers of 64, batches of 128, gp_weight 10; about 0.3 s
    of CPU): over init seeds 0-9 the estimate is 0.548-0.648, mean 0.604, standard
    deviation 0.027, against the true 0.6. The student and the reference share the init
    seed, so a correct loss differs only by round-off (the critic evaluated on the
    concatenated batch: 1e-4); the band of 0.05 is about two standard deviations across
    seeds. The typical mistakes end far outside it at seed 0 (0.615): gp_weight left
    out 0.823, no penalty 15.8, sums instead of means 3.67, the sign flipped -0.635.
    """
    real, fake = ring_arrays(4000, 0), ring_arrays(4000, 1, SHIFT)
    points = np.concatenate([ring_arrays(2000, 2), ring_arrays(2000, 3, SHIFT)])
    got = call(ctx, "harness:train_critic", real, fake, points, function="wgan_critic_loss",
               bound=True, **TRAIN)
    want = ctx.reference("harness:train_critic", real, fake, points, **TRAIN)
    ctx.assert_true(isinstance(got, dict) and bool(got.get("finite")),
                    "training with wgan_critic_loss produced a non-finite loss")
    scores = as_array(ctx, got["scores"], "the trained critic's scores")
    reference = np.asarray(want["scores"], dtype=np.float64)
    got_w1 = scores[:2000].mean() - scores[2000:].mean()
    want_w1 = reference[:2000].mean() - reference[2000:].mean()
    ctx.assert_true(
        bool(abs(got_w1 - want_w1) <= TRAIN_BAND),
        f"after {TRAIN['steps']} Adam steps on your wgan_critic_loss the critic's estimate of "
        f"W1 (its mean score on the ring minus that on the moved ring, measured by the "
        f"checks) is {got_w1:.3f}; the true W1 is 0.6, the reference's critic reaches "
        f"{want_w1:.3f} and {TRAIN_BAND} either side is allowed")


# --------------------------------------------------------------------------- 4g


@check(id="4g-bound", task="4g", points=1, timeout=10, seed=72,
       title="KL lower bound: value and gradients, 7 real and 5 fake scores")
def kl_bound_basic(ctx):
    real, fake = ctx.rng.normal(size=7) + 1.0, ctx.rng.normal(size=5)
    scores_case(ctx, "kl_lower_bound", "7 real, 5 fake scores", real, fake)


@check(id="4g-critic", task="4g", points=1, timeout=10, seed=73,
       title="the optimal KL critic T* = f'(p/q)")
def kl_critic_basic(ctx):
    log_p, log_q = ctx.rng.normal(size=6) - 2.0, ctx.rng.normal(size=6) - 2.0
    got = call(ctx, "harness:apply", "kl_optimal_critic", log_p, log_q,
               function="kl_optimal_critic")
    want = ctx.reference("harness:apply", "kl_optimal_critic", log_p, log_q)
    value = as_array(ctx, got["value"], "kl_optimal_critic")
    ctx.assert_shape(value, (6,), what="kl_optimal_critic: one score per point")
    ctx.assert_close(value, np.asarray(want["value"]), RTOL, ATOL, what="kl_optimal_critic")


def gaussian_log_density(x, mean: float, std: float) -> np.ndarray:
    return -0.5 * ((x - mean) / std) ** 2 - np.log(std) - 0.5 * np.log(2 * np.pi)


@check(id="4g-tight", task="4g", points=1, timeout=20, seed=74,
       title="your bound with your optimal critic estimates KL(N(0.5, 1.2^2) || N(0, 1)) "
             "without bias")
def kl_bound_tight(ctx):
    """With T = T*, E_P[T] - E_Q[exp(T - 1)] = KL(P || Q) exactly, so the Monte Carlo
    bound on 20,000 + 20,000 samples must agree with the closed form within 6 standard
    errors; a wrong conjugate or a critic off by a constant misses it by far more."""
    (m1, s1), (m0, s0) = (0.5, 1.2), (0.0, 1.0)
    true_kl = np.log(s0 / s1) + (s1**2 + (m1 - m0) ** 2) / (2 * s0**2) - 0.5
    n = 20000
    x_p, x_q = ctx.rng.normal(m1, s1, size=n), ctx.rng.normal(m0, s0, size=n)
    t = {}
    for name, x in (("p", x_p), ("q", x_q)):
        got = call(ctx, "harness:apply", "kl_optimal_critic", gaussian_log_density(x, m1, s1),
                   gaussian_log_density(x, m0, s0), function="kl_optimal_critic")
        t[name] = as_array(ctx, got["value"], "kl_optimal_critic")
        ctx.assert_shape(t[name], (n,), what="kl_optimal_critic: one score per point")
    got = call(ctx, "harness:apply", "kl_lower_bound", t["p"], t["q"], function="kl_lower_bound")
    bound = float(as_array(ctx, got["value"], "kl_lower_bound"))
    se = np.sqrt(t["p"].var() / n + np.exp(t["q"] - 1).var() / n)
    ctx.assert_true(bool(abs(bound - true_kl) <= Z * se),
                    f"kl_lower_bound(T*(x_p), T*(x_q)) = {bound:.4f} with your kl_optimal_critic, "
                    f"but KL(P || Q) = {true_kl:.4f} in closed form (allowed {Z * se:.4f}): at "
                    "the optimal critic the bound is tight")
