"""A correct hw2 submission with different but equivalent formulas.

sigma = exp(log(v) / 2); log-density expanded term by term; the mixture's
log-sum-exp shifted by hand; KL as cross-entropy minus entropy; the ELBO's KL
written for the standard normal prior; the IWAE samples drawn one at a time in
a loop (on a batch of copies of x); the GMVAE's KL at a second, independent
sample (still an unbiased estimate).
"""

import math

import torch
import torch.nn.functional as F


def sample_gaussian(m, v):
    eps = torch.randn(m.shape, dtype=m.dtype, device=m.device)
    return torch.exp(0.5 * torch.log(v)) * eps + m


def log_normal(x, m, v):
    x, m, v = torch.broadcast_tensors(x, m, v)  # a (1,)-shaped v counts in every dimension
    d = x.shape[-1]
    maha = ((x - m) ** 2 / v).sum(-1)
    log_det = torch.log(v).sum(-1)
    return -0.5 * d * math.log(2 * math.pi) - 0.5 * log_det - 0.5 * maha


def log_normal_mixture(z, m, v):
    comps = torch.stack([log_normal(z, m[i], v[i]) for i in range(m.shape[0])], dim=-1)
    top = comps.max(dim=-1, keepdim=True).values
    return (top + torch.log(torch.exp(comps - top).mean(-1, keepdim=True))).squeeze(-1)


def kl_normal(qm, qv, pm, pv):
    cross_entropy = 0.5 * (torch.log(2 * math.pi * pv) + (qv + (qm - pm) ** 2) / pv)
    entropy = 0.5 * torch.log(2 * math.pi * math.e * qv)
    return (cross_entropy - entropy).sum(-1)


def _rec(x, logits):
    return F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none").sum(-1)


def negative_elbo_bound(x, encoder, decoder):
    qm, qv = encoder(x)
    z = sample_gaussian(qm, qv)
    rec = _rec(x, decoder(z)).mean()
    kl = 0.5 * (qm**2 + qv - 1.0 - torch.log(qv)).sum(-1).mean()
    return rec + kl, kl, rec


def negative_iwae_bound(x, encoder, decoder, k):
    xs = x.repeat(k, 1)  # (k * batch, x_dim): encoder sees the copies
    qm, qv = encoder(xs)
    logs = []
    for i in range(k):
        rows = slice(i * x.shape[0], (i + 1) * x.shape[0])
        z = sample_gaussian(qm[rows], qv[rows])
        log_p = -_rec(x, decoder(z)) + log_normal(z, torch.zeros_like(z), torch.ones_like(z))
        logs.append(log_p - log_normal(z, qm[rows], qv[rows]))
    log_w = torch.stack(logs, dim=1)  # (batch, k)
    return -(torch.logsumexp(log_w, dim=1) - math.log(k)).mean()


def gmvae_negative_elbo_bound(x, encoder, decoder, prior_m, prior_v):
    qm, qv = encoder(x)
    z_rec = sample_gaussian(qm, qv)
    z_kl = sample_gaussian(qm, qv)
    rec = _rec(x, decoder(z_rec)).mean()
    kl = (log_normal(z_kl, qm, qv) - log_normal_mixture(z_kl, prior_m, prior_v)).mean()
    return rec + kl, kl, rec


def ssvae_loss(x_u, x_l, y_l, classifier, encoder, decoder, alpha):
    """Loop over classes; KL(q(y|x) || uniform) written out; ce via nll_loss."""
    logits = classifier(x_u)
    n_classes = logits.shape[-1]
    probs = torch.softmax(logits, -1)
    log_probs = torch.log_softmax(logits, -1)

    def neg_elbo_l(x, y_onehot):
        qm, qv = encoder(x, y_onehot)
        z = sample_gaussian(qm, qv)
        kl = 0.5 * (qm**2 + qv - 1.0 - torch.log(qv)).sum(-1)
        return _rec(x, decoder(z, y_onehot)) + kl

    expected = torch.zeros(len(x_u), dtype=x_u.dtype, device=x_u.device)
    for c in range(n_classes):
        y_c = F.one_hot(torch.full((len(x_u),), c, device=x_u.device), n_classes).to(x_u.dtype)
        expected = expected + probs[:, c] * neg_elbo_l(x_u, y_c)
    kl_y = (probs * (log_probs + math.log(n_classes))).sum(-1)
    nelbo_u = (expected + kl_y).mean()
    y_l1 = F.one_hot(y_l, n_classes).to(x_l.dtype)
    nelbo_l = (neg_elbo_l(x_l, y_l1) + math.log(n_classes)).mean()
    ce = F.nll_loss(torch.log_softmax(classifier(x_l), -1), y_l)
    return nelbo_u + nelbo_l + alpha * ce, nelbo_u, nelbo_l, ce
