"""Homework 4: generative adversarial networks (GAN losses, a conditional GAN, WGAN-GP, f-GAN).

Write the body of every function below (the parts that raise
``NotImplementedError``). Everything is plain PyTorch and must work for any
floating dtype, any device and any batch size; each docstring gives the shapes
and the equation to implement.

Conventions used throughout (the same as the lecture's library):

* A discriminator returns one raw score per example, a LOGIT ``l``, shape
  ``(batch,)``; its probability that the example is real is ``D = sigmoid(l)``.
  A WGAN critic returns an unbounded score ``(batch,)``.
* Losses are AVERAGED over the batch and returned as 0-dim tensors. A loss is
  what its player MINIMISES.
* Work with logits, never with probabilities: ``log sigmoid(l) = -softplus(-l)``
  and ``log(1 - sigmoid(l)) = -softplus(l)`` hold for every ``l``, while
  ``torch.log(torch.sigmoid(l))`` becomes ``-inf`` once ``sigmoid`` rounds to 0.
* ``discriminator``, ``critic`` and ``generator`` arguments are given networks
  (callables); you never build or train them here.

Every task is graded on its own: when graded, the conditional losses of 4c run
with correct versions of ``discriminator_loss`` and ``generator_loss``, and the
WGAN-GP critic loss of 4f with a correct ``gradient_penalty``, in place of
yours, so a mistake in one task costs points only there. Call these helpers by
their names (they are looked up when your function runs). ``coursekit check``
cannot do that (the correct helpers are not released): there your functions use
your own helpers, so fix the earlier tasks first. The checks of 4e and 4f fix
the points that ``interpolates`` returns (so that your penalty can be compared
with the reference's); your 4d is judged by 4d's checks only.

Run ``coursekit check hw4`` (or the check cells in the notebook) to see your
public-check score.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: F401 (F.softplus, for 4a and 4b)

# --------------------------------------------------------------------------
# 4a  The discriminator's loss
# --------------------------------------------------------------------------


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """The discriminator's binary cross-entropy: real examples are labelled 1, fakes 0.

    L_D = -(1/n) sum_i log D(x_i) - (1/m) sum_j log(1 - D(x~_j)),   D = sigmoid(logit)

    one average over the n real examples PLUS one over the m fakes (n and m may
    differ). Use ``log D = -softplus(-l)`` and ``log(1 - D) = -softplus(l)``: the
    loss must stay finite for logits of any size.

    Args:
        real_logits: (n,) the discriminator's logits on real examples.
        fake_logits: (m,) its logits on generated examples.

    Returns:
        0-dim tensor.
    """
    ### HINT: two means of softplus terms, one over each batch
    ### BEGIN SOLUTION
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
    ### END SOLUTION


# --------------------------------------------------------------------------
# 4b  The generator's non-saturating loss
# --------------------------------------------------------------------------


def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """The generator's NON-SATURATING loss (Goodfellow et al., 2014):

    L_G = -(1/m) sum_j log D(G(z_j))

    not the minimax loss (1/m) sum_j log(1 - D(G(z_j))), whose gradient vanishes
    exactly when the discriminator rejects the fakes confidently (large negative
    logits), which is how training starts. Finite for logits of any size.

    Args:
        fake_logits: (m,) the discriminator's logits on generated examples.

    Returns:
        0-dim tensor.
    """
    ### HINT: one line with F.softplus
    ### BEGIN SOLUTION
    return F.softplus(-fake_logits).mean()
    ### END SOLUTION


# --------------------------------------------------------------------------
# 4c  A class-conditional GAN's losses
# --------------------------------------------------------------------------


def conditional_discriminator_loss(discriminator, x_real: torch.Tensor, y_real: torch.Tensor,
                                   x_fake: torch.Tensor, y_fake: torch.Tensor) -> torch.Tensor:
    """The discriminator's loss of a class-conditional GAN.

    A conditional discriminator judges PAIRS: ``discriminator(x, y) -> (batch,)``
    logits, real if x is a real example OF CLASS y. Real pairs are (x_real,
    y_real); fake pairs are (x_fake, y_fake), the generator's samples with the
    labels they were generated for. Then

    L_D = discriminator_loss(logits of the real pairs, logits of the fake pairs).

    The discriminator's update must not send gradients into the generator:
    ``x_fake`` comes out of the generator with its graph, so cut it
    (``x_fake.detach()``) before the discriminator sees it here.

    Args:
        discriminator: callable ``(x (batch, d), y (batch,) int64) -> (batch,)``.
        x_real: (n, d) real examples; y_real: (n,) int64 their classes.
        x_fake: (m, d) generated examples; y_fake: (m,) int64 the classes they were
            generated for.

    Returns:
        0-dim tensor (through ``discriminator_loss``).
    """
    ### HINT: two calls of discriminator, then discriminator_loss
    ### BEGIN SOLUTION
    real_logits = discriminator(x_real, y_real)
    fake_logits = discriminator(x_fake.detach(), y_fake)
    return discriminator_loss(real_logits, fake_logits)
    ### END SOLUTION


def conditional_generator_loss(discriminator, x_fake: torch.Tensor,
                               y_fake: torch.Tensor) -> torch.Tensor:
    """The generator's non-saturating loss of a class-conditional GAN.

    L_G = generator_loss(discriminator(x_fake, y_fake)): the generator is rewarded
    when its samples pass as real examples OF THE CLASS THEY WERE ASKED FOR. Its
    gradient must reach the generator through ``x_fake`` (no ``detach`` here).

    Args:
        discriminator: callable ``(x (batch, d), y (batch,) int64) -> (batch,)``.
        x_fake: (m, d) generated examples (with their graph); y_fake: (m,) int64.

    Returns:
        0-dim tensor (through ``generator_loss``).
    """
    ### HINT: one line
    ### BEGIN SOLUTION
    return generator_loss(discriminator(x_fake, y_fake))
    ### END SOLUTION


# --------------------------------------------------------------------------
# 4d  Random points between real and fake examples
# --------------------------------------------------------------------------


def interpolates(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Points on the segments between real and fake examples (WGAN-GP, Gulrajani et al., 2017):

    x^_i = eps_i * real_i + (1 - eps_i) * fake_i,    eps_i ~ Uniform(0, 1)

    with ONE eps_i per example, shared by all of its features (so x^_i lies on the
    segment from fake_i to real_i), drawn independently for every example and
    every call (use torch's global random generator).

    Args:
        real, fake: (batch, ...) tensors of the same shape (any number of feature
            dimensions: (batch, d) points or (batch, c, h, w) images).

    Returns:
        (batch, ...) tensor, same shape, dtype and device as ``real``.
    """
    ### HINT: torch.rand of shape (batch, 1, ..., 1) with real's dtype and device
    ### BEGIN SOLUTION
    shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    eps = torch.rand(shape, dtype=real.dtype, device=real.device)
    return eps * real + (1 - eps) * fake
    ### END SOLUTION


# --------------------------------------------------------------------------
# 4e  The gradient penalty
# --------------------------------------------------------------------------


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """WGAN-GP's two-sided gradient penalty:

    GP = (1/n) sum_i ( ||grad_x critic(x^_i)||_2 - 1 )^2,   x^ = interpolates(real, fake)

    * draw the points with ``interpolates(real, fake)`` (by that name: the checks
      fix the points it returns), on DETACHED inputs, and make them require grad;
    * the gradient of EACH example's score with respect to ITS OWN input: the
      gradient of ``scores.sum()`` gives all of them at once (the examples do not
      interact), while ``scores.mean()`` would divide every one by n;
    * the norm of each example's gradient over all of its features: shape (n,);
    * the penalty is part of the critic's loss, so it must be differentiable with
      respect to the critic's parameters: ``torch.autograd.grad(...,
      create_graph=True)``.

    Args:
        critic: callable ``(batch, ...) -> (batch,)`` scores.
        real, fake: (n, ...) tensors of the same shape.

    Returns:
        0-dim tensor, with a graph back to the critic's parameters.
    """
    ### HINT: torch.autograd.grad(scores.sum(), x_hat, create_graph=True)[0]
    ### BEGIN SOLUTION
    x_hat = interpolates(real.detach(), fake.detach()).requires_grad_(True)
    scores = critic(x_hat)
    (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
    norms = grad.flatten(1).norm(dim=1)
    return ((norms - 1.0) ** 2).mean()
    ### END SOLUTION


# --------------------------------------------------------------------------
# 4f  The WGAN-GP losses
# --------------------------------------------------------------------------


def wgan_critic_loss(critic, real: torch.Tensor, fake: torch.Tensor,
                     gp_weight: float = 10.0) -> torch.Tensor:
    """The WGAN-GP critic's loss (minimised by the critic):

    L_C = (1/m) sum_j critic(fake_j) - (1/n) sum_i critic(real_i) + gp_weight * GP

    with GP = gradient_penalty(critic, real, fake). Minimising the first two terms
    makes the critic's mean score on real examples exceed that on fakes by as much
    as it can: the penalty keeps it close to 1-Lipschitz, so that the gap estimates
    the Wasserstein-1 distance. Detach ``fake`` (the critic's update must not reach
    the generator).

    Args:
        critic: callable ``(batch, ...) -> (batch,)`` scores.
        real: (n, ...) real examples; fake: (n, ...) generated ones.
        gp_weight: the penalty's weight lambda (10 in the paper).

    Returns:
        0-dim tensor.
    """
    ### HINT: three terms; gradient_penalty does the interpolation
    ### BEGIN SOLUTION
    fake = fake.detach()
    gap = critic(fake).mean() - critic(real).mean()
    return gap + gp_weight * gradient_penalty(critic, real, fake)
    ### END SOLUTION


def wgan_generator_loss(critic, fake: torch.Tensor) -> torch.Tensor:
    """The WGAN generator's loss: L_G = -(1/m) sum_j critic(fake_j).

    The generator raises the critic's score of its samples; its gradient reaches
    the generator through ``fake`` (no detach here).

    Args:
        critic: callable ``(batch, ...) -> (batch,)``.
        fake: (m, ...) generated examples (with their graph).

    Returns:
        0-dim tensor.
    """
    ### HINT: one line
    ### BEGIN SOLUTION
    return -critic(fake).mean()
    ### END SOLUTION


# --------------------------------------------------------------------------
# 4g  f-GAN: a variational lower bound on the KL divergence
# --------------------------------------------------------------------------


def kl_lower_bound(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """The f-GAN lower bound (Nowozin et al., 2016) on KL(P || Q), P the data, Q the model.

    For a convex f with f(1) = 0 and its convex (Fenchel) conjugate
    f*(t) = sup_u [u t - f(u)], every function T gives

        D_f(P || Q) >= E_{x~P}[T(x)] - E_{x~Q}[f*(T(x))].

    For the KL divergence f(u) = u log u, whose conjugate is f*(t) = exp(t - 1).
    With T the critic's raw score (the identity output activation suits KL, whose
    f* is defined on all reals), the Monte Carlo estimate of the bound is

        (1/n) sum_i T(x_i) - (1/m) sum_j exp(T(x~_j) - 1),  x_i ~ P, x~_j ~ Q.

    The critic maximises it; at its best, T*(x) = f'(p(x)/q(x)) = 1 + log(p(x)/q(x)),
    the bound equals the KL divergence.

    Args:
        real_scores: (n,) T on examples from P; fake_scores: (m,) T on examples from Q.

    Returns:
        0-dim tensor.
    """
    ### HINT: one line; mind the -1 inside the exponential
    ### BEGIN SOLUTION
    return real_scores.mean() - torch.exp(fake_scores - 1.0).mean()
    ### END SOLUTION


def kl_optimal_critic(log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """The critic that makes the KL bound tight: T*(x) = f'(p(x)/q(x)) with f(u) = u log u.

    Args:
        log_p, log_q: (batch,) log-densities of P and Q at the same points.

    Returns:
        (batch,) T*(x) = 1 + log p(x) - log q(x).
    """
    ### HINT: f'(u) = log u + 1
    ### BEGIN SOLUTION
    return 1.0 + log_p - log_q
    ### END SOLUTION
