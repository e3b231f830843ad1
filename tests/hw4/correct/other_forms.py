"""A correct hw4 in other equivalent forms: softplus written out with torch.where and
log1p, the weight drawn with uniform_ and applied to the fake side (eps ~ U(0, 1)
and 1 - eps have the same law), the penalty from the root of the squared norm, the
critic's gap written as minus (real minus fake), and the KL bound from exp(t) / e."""

import math

import torch


def _softplus(t):
    # log(1 + e^t) without overflow: t + log(1 + e^-t) for t > 0
    return torch.where(t > 0, t + torch.log1p(torch.exp(-t.abs())),
                       torch.log1p(torch.exp(-t.abs())))


def discriminator_loss(real_logits, fake_logits):
    return torch.mean(_softplus(-real_logits)) + torch.mean(_softplus(fake_logits))


def generator_loss(fake_logits):
    return torch.mean(_softplus(-fake_logits))


def conditional_discriminator_loss(discriminator, x_real, y_real, x_fake, y_fake):
    detached = x_fake.detach()
    return discriminator_loss(discriminator(x_real, y_real), discriminator(detached, y_fake))


def conditional_generator_loss(discriminator, x_fake, y_fake):
    return generator_loss(discriminator(x_fake, y_fake))


def interpolates(real, fake):
    eps = torch.empty_like(real.reshape(real.shape[0], -1)[:, :1]).uniform_(0.0, 1.0)
    eps = eps.reshape((real.shape[0],) + (1,) * (real.dim() - 1))
    return real + eps * (fake - real)


def gradient_penalty(critic, real, fake):
    x_hat = interpolates(real.detach(), fake.detach()).clone().requires_grad_()
    grad = torch.autograd.grad(critic(x_hat).sum(), [x_hat], create_graph=True)[0]
    squared = (grad * grad).reshape(len(grad), -1).sum(dim=-1)
    return torch.mean((torch.sqrt(squared) - 1.0) ** 2)


def wgan_critic_loss(critic, real, fake, gp_weight=10.0):
    penalty = gradient_penalty(critic, real, fake)
    return -(critic(real).mean() - critic(fake.detach()).mean()) + gp_weight * penalty


def wgan_generator_loss(critic, fake):
    return torch.mean(-critic(fake))


def kl_lower_bound(real_scores, fake_scores):
    return torch.mean(real_scores) - torch.mean(torch.exp(fake_scores)) / math.e


def kl_optimal_critic(log_p, log_q):
    return (log_p + 1.0) - log_q
