r"""Variational autoencoders (lecture 04, homework 2).

A VAE is a latent variable model with a neural decoder,

.. math::
    z \sim p(z) = N(0, I), \qquad x \mid z \sim p_\theta(x \mid z),

trained with an amortised Gaussian encoder
``q_phi(z|x) = N(mu_phi(x), diag sigma^2_phi(x))`` by minimising the negative ELBO

.. math::
    \mathrm{NELBO}(x) = \underbrace{-\mathbb E_{q}[\log p_\theta(x \mid z)]}_{\text{rec}}
    + \beta\, \underbrace{\mathrm{KL}(q_\phi(z \mid x) \,\|\, p(z))}_{\text{kl}}
    \;\ge\; -\log p_\theta(x) \quad (\beta = 1),

with one reparameterised sample ``z = mu + sigma * eps`` for the reconstruction
term and the closed-form KL between diagonal Gaussians.

Contents:

* helpers on the last dimension: :func:`sample_gaussian`, :func:`log_normal`,
  :func:`log_normal_mixture`, :func:`kl_normal`, :func:`log_bernoulli_with_logits`;
* :class:`VAE` (Bernoulli decoder with logits for binary images, or a Gaussian
  decoder for continuous data), with the NELBO, the ``k``-sample IWAE bound,
  sampling, encoding, decoding and reconstruction;
* :class:`GMVAE`: the prior is a uniform mixture of ``k`` learnable diagonal
  Gaussians and the KL is a single-sample Monte Carlo estimate;
* :class:`SSVAE`: the semi-supervised model ``p(y) p(z) p(x|y,z)`` with a
  classifier ``q(y|x)`` and an encoder ``q(z|x,y)`` (Kingma et al. 2014, "M2");
* :func:`estimate_nll`: the importance-sampled test negative log-likelihood,
  :func:`active_units`, and :func:`vae_loss` for :func:`coursekit.train.fit`.

Conventions: ``x`` is ``(batch, x_dim)``, ``z`` is ``(..., z_dim)``; variances
(not standard deviations, not log-variances) are passed around, and the
networks produce them as ``softplus(raw) + VAR_FLOOR``. Per-sample values are
summed over dimensions; losses are averaged over the batch. Everything runs on
the device of the model's parameters. Bad input raises ``ValueError`` naming
the argument.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

LOG_2PI = math.log(2.0 * math.pi)
VAR_FLOOR = 1e-5
LIKELIHOODS = ("bernoulli", "gaussian")

__all__ = [
    "GMVAE",
    "SSVAE",
    "VAE",
    "active_units",
    "estimate_nll",
    "kl_normal",
    "log_bernoulli_with_logits",
    "log_normal",
    "log_normal_mixture",
    "sample_gaussian",
    "vae_loss",
]


# --------------------------------------------------------------------------------------
# checks
# --------------------------------------------------------------------------------------
def _check_tensor(t, name: str) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(t).__name__}")
    if not t.is_floating_point():
        raise ValueError(f"{name}: expected a floating tensor, got dtype {t.dtype}")
    if t.dim() == 0:
        raise ValueError(f"{name}: expected at least one dimension (..., dim), got a scalar")
    return t


def _check_positive(var: torch.Tensor, name: str) -> None:
    if not bool((var > 0).all()):
        raise ValueError(f"{name}: expected strictly positive variances, "
                         f"got minimum {float(var.min()):.3g}")


def _check_broadcast(name: str, *tensors) -> None:
    try:
        torch.broadcast_shapes(*(t.shape for t in tensors))
    except RuntimeError as err:
        shapes = ", ".join(str(tuple(t.shape)) for t in tensors)
        raise ValueError(f"{name}: shapes {shapes} do not broadcast") from err


def _check_int(n, name: str, minimum: int = 1) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {n!r}")
    return n


def _check_beta(beta) -> float:
    try:
        b = float(beta)
    except (TypeError, ValueError) as err:
        raise ValueError(f"beta: expected a number >= 0, got {beta!r}") from err
    if not (math.isfinite(b) and b >= 0):
        raise ValueError(f"beta: expected a finite number >= 0, got {beta!r}")
    return b


def _hidden_sizes(hidden) -> tuple[int, ...]:
    if isinstance(hidden, int) and not isinstance(hidden, bool):
        hidden = (hidden,)
    if not isinstance(hidden, Sequence) or any(
            isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in hidden):
        raise ValueError(f"hidden: expected a positive int or a sequence of them, got {hidden!r}")
    return tuple(hidden)


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------
def sample_gaussian(mean: torch.Tensor, var: torch.Tensor,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Reparameterised sample ``z = mean + sqrt(var) * eps``, ``eps ~ N(0, I)``.

    Gradients flow to ``mean`` and ``var`` (the noise carries none).

    Args:
        mean, var: broadcastable tensors ``(..., d)``; ``var > 0``.
        generator: optional ``torch.Generator`` on the tensors' device.

    Returns:
        ``z`` with the broadcast shape.
    """
    mean, var = _check_tensor(mean, "mean"), _check_tensor(var, "var")
    _check_broadcast("mean/var", mean, var)
    _check_positive(var, "var")
    return _sample_gaussian(mean, var, generator)


def _sample_gaussian(mean, var, generator=None):
    shape = torch.broadcast_shapes(mean.shape, var.shape)
    eps = torch.randn(shape, dtype=mean.dtype, device=mean.device, generator=generator)
    return mean + var.sqrt() * eps


def log_normal(x: torch.Tensor, mean: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
    r"""Log-density of a diagonal Gaussian, summed over the last dimension.

    .. math::
        \log N(x; m, \mathrm{diag}\, v) = -\frac12 \sum_{j=1}^d
        \Big[\log(2\pi v_j) + \frac{(x_j - m_j)^2}{v_j}\Big]

    Args:
        x, mean, var: broadcastable ``(..., d)``; ``var > 0``.

    Returns:
        ``(...)`` (the broadcast shape without its last dimension).
    """
    for t, name in ((x, "x"), (mean, "mean"), (var, "var")):
        _check_tensor(t, name)
    _check_broadcast("x/mean/var", x, mean, var)
    _check_positive(var, "var")
    return _log_normal(x, mean, var)


def _log_normal(x, mean, var):
    return -0.5 * (LOG_2PI + torch.log(var) + (x - mean) ** 2 / var).sum(-1)


def log_normal_mixture(z: torch.Tensor, means: torch.Tensor, vars: torch.Tensor
                       ) -> torch.Tensor:
    r"""Log-density of a uniform mixture of ``k`` diagonal Gaussians.

    .. math::
        \log p(z) = \log \frac1k \sum_{i=1}^k N(z; m_i, \mathrm{diag}\, v_i)
        = \operatorname{logsumexp}_i \log N(z; m_i, v_i) - \log k

    Args:
        z: ``(..., d)``.
        means, vars: ``(k, d)`` (one mixture for every ``z``) or ``(..., k, d)``
            broadcastable with ``z[..., None, :]``; ``vars > 0``.

    Returns:
        ``(...)``.
    """
    for t, name in ((z, "z"), (means, "means"), (vars, "vars")):
        _check_tensor(t, name)
    if means.dim() < 2 or vars.dim() < 2:
        raise ValueError(f"means/vars: expected shape (k, d) or (..., k, d), got "
                         f"{tuple(means.shape)} and {tuple(vars.shape)}")
    _check_broadcast("z/means/vars", z.unsqueeze(-2), means, vars)
    _check_positive(vars, "vars")
    return _log_normal_mixture(z, means, vars)


def _log_normal_mixture(z, means, vars):
    k = means.shape[-2]
    return torch.logsumexp(_log_normal(z.unsqueeze(-2), means, vars), dim=-1) - math.log(k)


def kl_normal(qm: torch.Tensor, qv: torch.Tensor, pm: torch.Tensor, pv: torch.Tensor
              ) -> torch.Tensor:
    r"""``KL(N(qm, diag qv) || N(pm, diag pv))``, summed over the last dimension.

    .. math::
        \mathrm{KL} = \frac12 \sum_{j=1}^d \Big[\log\frac{p_{v,j}}{q_{v,j}}
        + \frac{q_{v,j} + (q_{m,j} - p_{m,j})^2}{p_{v,j}} - 1\Big]

    Args:
        qm, qv, pm, pv: broadcastable ``(..., d)``; variances ``> 0``.

    Returns:
        ``(...)``.
    """
    for t, name in ((qm, "qm"), (qv, "qv"), (pm, "pm"), (pv, "pv")):
        _check_tensor(t, name)
    _check_broadcast("qm/qv/pm/pv", qm, qv, pm, pv)
    _check_positive(qv, "qv")
    _check_positive(pv, "pv")
    return _kl_normal(qm, qv, pm, pv)


def _kl_normal(qm, qv, pm, pv):
    return 0.5 * (torch.log(pv) - torch.log(qv) + (qv + (qm - pm) ** 2) / pv - 1.0).sum(-1)


def log_bernoulli_with_logits(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    r"""Bernoulli log-likelihood from logits, summed over the last dimension.

    .. math::
        \log p(x) = \sum_j x_j \log \sigma(l_j) + (1 - x_j) \log(1 - \sigma(l_j))
        = -\sum_j \mathrm{BCEWithLogits}(l_j, x_j)

    computed from the logits (never from probabilities) so it stays finite.

    Args:
        x: ``(..., d)`` values in [0, 1] (binary for a proper likelihood).
        logits: broadcastable with ``x``.

    Returns:
        ``(...)``.
    """
    _check_tensor(x, "x")
    _check_tensor(logits, "logits")
    _check_broadcast("x/logits", x, logits)
    return _log_bernoulli(x, logits)


def _log_bernoulli(x, logits):
    x, logits = torch.broadcast_tensors(x, logits)
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)


# --------------------------------------------------------------------------------------
# networks
# --------------------------------------------------------------------------------------
def mlp(in_dim: int, out_dim: int, hidden=(256,), activation=nn.ELU) -> nn.Sequential:
    """``Linear -> activation`` for each hidden size, then a final ``Linear``.

    ``hidden=()`` gives a single linear map (used by the tests' linear-Gaussian VAE).
    """
    sizes = (in_dim, *_hidden_sizes(hidden))
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), activation()]
    layers.append(nn.Linear(sizes[-1], out_dim))
    return nn.Sequential(*layers)


def _to_var(raw: torch.Tensor) -> torch.Tensor:
    """Network output -> variance: ``softplus(raw) + VAR_FLOOR`` (smooth, always > 0)."""
    return F.softplus(raw) + VAR_FLOOR


class GaussianEncoder(nn.Module):
    r"""``q(z | x[, y]) = N(mu(x, y), diag var(x, y))`` from an MLP on ``[x, y]``.

    ``forward(x, y=None) -> (mean, var)``, each ``(batch, z_dim)``.
    """

    def __init__(self, x_dim: int, z_dim: int, hidden=(256,), y_dim: int = 0):
        super().__init__()
        self.z_dim = z_dim
        self.net = mlp(x_dim + y_dim, 2 * z_dim, hidden)

    def forward(self, x, y=None):
        h = self.net(x if y is None else torch.cat([x, y], dim=-1))
        mean, raw = h.split(self.z_dim, dim=-1)
        return mean, _to_var(raw)


class BernoulliDecoder(nn.Module):
    """``p(x | z[, y]) = Bernoulli(sigmoid(logits(z, y)))``; ``forward -> logits (..., x_dim)``."""

    def __init__(self, z_dim: int, x_dim: int, hidden=(256,), y_dim: int = 0):
        super().__init__()
        self.net = mlp(z_dim + y_dim, x_dim, hidden)

    def forward(self, z, y=None):
        if y is not None:
            y = y.expand(*z.shape[:-1], y.shape[-1])
            z = torch.cat([z, y], dim=-1)
        return self.net(z)


class GaussianDecoder(nn.Module):
    """``p(x | z) = N(mean(z), diag var(z))``; ``forward -> (mean, var)``, each ``(..., x_dim)``."""

    def __init__(self, z_dim: int, x_dim: int, hidden=(256,)):
        super().__init__()
        self.x_dim = x_dim
        self.net = mlp(z_dim, 2 * x_dim, hidden)

    def forward(self, z):
        mean, raw = self.net(z).split(self.x_dim, dim=-1)
        return mean, _to_var(raw)


# --------------------------------------------------------------------------------------
# VAE
# --------------------------------------------------------------------------------------
class VAE(nn.Module):
    r"""A VAE with prior ``N(0, I)``, Gaussian encoder and Bernoulli or Gaussian decoder.

    Args:
        x_dim: data dimension (64 for 8x8 digits).
        z_dim: latent dimension.
        hidden: hidden sizes of the encoder and decoder MLPs (an int or a sequence).
        likelihood: ``"bernoulli"`` (decoder outputs logits; ``x`` in {0, 1}) or
            ``"gaussian"`` (decoder outputs a mean and a diagonal variance).
        beta: weight of the KL term in :meth:`negative_elbo` (``beta = 1`` is the
            ELBO; ``beta > 1`` trades reconstruction for a posterior closer to
            the prior, and far enough collapses it).

    Shapes: ``x (batch, x_dim)``; ``z (..., z_dim)``.
    """

    def __init__(self, x_dim: int, z_dim: int, hidden=(256,), likelihood: str = "bernoulli",
                 beta: float = 1.0):
        super().__init__()
        self.x_dim = _check_int(x_dim, "x_dim")
        self.z_dim = _check_int(z_dim, "z_dim")
        hidden = _hidden_sizes(hidden)
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood: expected one of {LIKELIHOODS}, got {likelihood!r}")
        self.likelihood = likelihood
        self.beta = _check_beta(beta)
        self.encoder = GaussianEncoder(x_dim, z_dim, hidden)
        self.decoder = (BernoulliDecoder(z_dim, x_dim, hidden) if likelihood == "bernoulli"
                        else GaussianDecoder(z_dim, x_dim, hidden))

    def extra_repr(self) -> str:
        return (f"x_dim={self.x_dim}, z_dim={self.z_dim}, likelihood={self.likelihood!r}, "
                f"beta={self.beta}")

    # -- shapes and devices ---------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def _check_x(self, x, name: str = "x") -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
        if x.dim() != 2 or x.shape[1] != self.x_dim:
            raise ValueError(f"{name}: expected shape (batch, {self.x_dim}), "
                             f"got {tuple(x.shape)}")
        if x.shape[0] == 0:
            raise ValueError(f"{name}: expected at least one row, got an empty batch")
        p = next(self.parameters())
        return x.to(device=p.device, dtype=p.dtype)

    def _check_z(self, z) -> torch.Tensor:
        if not isinstance(z, torch.Tensor):
            raise TypeError(f"z: expected a torch.Tensor, got {type(z).__name__}")
        if z.dim() < 1 or z.shape[-1] != self.z_dim:
            raise ValueError(f"z: expected shape (..., {self.z_dim}), got {tuple(z.shape)}")
        p = next(self.parameters())
        return z.to(device=p.device, dtype=p.dtype)

    # -- the model ------------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``q(z|x)``: ``(mean, var)``, each ``(batch, z_dim)``."""
        return self.encoder(self._check_x(x))

    def decode(self, z: torch.Tensor):
        """``p(x|z)``: logits ``(..., x_dim)`` (Bernoulli) or ``(mean, var)`` (Gaussian)."""
        return self.decoder(self._check_z(z))

    def log_likelihood(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        r"""``log p(x|z)`` summed over pixels; ``x (batch, x_dim)``, ``z (..., batch, z_dim)``
        -> ``(..., batch)``."""
        out = self.decoder(z)
        if self.likelihood == "bernoulli":
            return _log_bernoulli(x, out)
        return _log_normal(x, *out)

    def log_prior(self, z: torch.Tensor) -> torch.Tensor:
        """``log p(z) = log N(z; 0, I)``, ``(..., z_dim) -> (...)``."""
        return -0.5 * (LOG_2PI + z * z).sum(-1)

    def kl(self, z, qm, qv) -> torch.Tensor:
        """``KL(q(z|x) || p(z))`` per sample ``(batch,)``: closed form here (``z`` unused)."""
        return _kl_normal(qm, qv, torch.zeros_like(qm), torch.ones_like(qv))

    def negative_elbo(self, x: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        r"""``(nelbo, kl, rec)``, scalars averaged over the batch.

        .. math::
            \mathrm{rec} = -\log p(x \mid z),\ z = \mu + \sigma\epsilon; \qquad
            \mathrm{kl} = \mathrm{KL}(q(z \mid x) \,\|\, p(z)); \qquad
            \mathrm{nelbo} = \mathrm{rec} + \beta\,\mathrm{kl}

        Args:
            x: ``(batch, x_dim)``.
        """
        x = self._check_x(x)
        qm, qv = self.encoder(x)
        z = _sample_gaussian(qm, qv)
        rec = -self.log_likelihood(x, z).mean()
        kl = self.kl(z, qm, qv).mean()
        return rec + self.beta * kl, kl, rec

    def log_weights(self, x: torch.Tensor, k: int, chunk_size: int | None = None
                    ) -> torch.Tensor:
        r"""Log importance weights ``log p(x, z_i) - log q(z_i|x)``, ``z_i ~ q(z|x)``.

        Args:
            x: ``(batch, x_dim)``; k: samples per ``x``;
            chunk_size: samples decoded at once (default: about 2^16 rows per chunk).

        Returns:
            ``(k, batch)``.
        """
        x = self._check_x(x)
        k = _check_int(k, "k")
        if chunk_size is None:
            chunk_size = max(1, 2**16 // x.shape[0])
        chunk_size = _check_int(chunk_size, "chunk_size")
        qm, qv = self.encoder(x)
        out = []
        for start in range(0, k, chunk_size):
            n = min(chunk_size, k - start)
            z = _sample_gaussian(qm.expand(n, *qm.shape), qv.expand(n, *qv.shape))
            out.append(self.log_likelihood(x, z) + self.log_prior(z) - _log_normal(z, qm, qv))
        return torch.cat(out, dim=0)

    def negative_iwae_bound(self, x: torch.Tensor, k: int, chunk_size: int | None = None
                            ) -> torch.Tensor:
        r"""Negative ``k``-sample IWAE bound, averaged over the batch (a scalar).

        .. math::
            -\mathcal L_k(x) = -\log \frac1k \sum_{i=1}^k
            \frac{p(x, z_i)}{q(z_i \mid x)}, \qquad z_i \sim q(z \mid x)

        ``L_1`` is the ELBO (with a Monte Carlo KL); ``L_k`` is non-decreasing in ``k``
        and tends to ``log p(x)``. The log-sum-exp runs over all ``k`` samples even
        when they are drawn in chunks. ``beta`` plays no role here.
        """
        log_w = self.log_weights(x, k, chunk_size)
        return -(torch.logsumexp(log_w, dim=0) - math.log(k)).mean()

    @torch.no_grad()
    def sample_z(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` draws from the prior, ``(n, z_dim)``."""
        n = _check_int(n, "n")
        p = next(self.parameters())
        return torch.randn(n, self.z_dim, device=p.device, dtype=p.dtype, generator=generator)

    @torch.no_grad()
    def sample(self, n: int, mean: bool = False, generator: torch.Generator | None = None
               ) -> torch.Tensor:
        """``x ~ p(x)`` by ancestral sampling, ``(n, x_dim)``.

        With ``mean=True`` return the decoder's mean instead of a draw (pixel
        probabilities for a Bernoulli decoder), which is what image grids show.
        """
        z = self.sample_z(n, generator)
        return self._emit(self.decoder(z), mean, generator)

    def _emit(self, out, mean: bool, generator):
        if self.likelihood == "bernoulli":
            probs = torch.sigmoid(out)
            return probs if mean else torch.bernoulli(probs, generator=generator)
        m, v = out
        return m if mean else m + v.sqrt() * torch.randn(m.shape, dtype=m.dtype,
                                                         device=m.device, generator=generator)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, sample_z: bool = False) -> torch.Tensor:
        """Decoder mean at ``z = mu(x)`` (or at ``z ~ q(z|x)`` with ``sample_z``),
        ``(batch, x_dim)``: pixel probabilities for a Bernoulli decoder."""
        qm, qv = self.encode(x)
        z = _sample_gaussian(qm, qv) if sample_z else qm
        return self._emit(self.decoder(z), True, None)


class GMVAE(VAE):
    r"""VAE whose prior is a uniform mixture of ``k`` diagonal Gaussians.

    .. math:: p(z) = \frac1k \sum_{i=1}^k N(z; m_i, \mathrm{diag}\, v_i)

    with learnable ``m_i`` and ``v_i``. The KL term has no closed form, so
    :meth:`negative_elbo` uses the single-sample estimate
    ``log q(z|x) - log p(z)`` at the same ``z`` as the reconstruction term
    (log-sum-exp over the components).

    Args: as :class:`VAE`, plus ``k`` (number of prior components).
    Attributes: ``prior_means (k, z_dim)``; ``prior_vars`` (property, ``(k, z_dim)``).
    """

    def __init__(self, x_dim: int, z_dim: int, hidden=(256,), likelihood: str = "bernoulli",
                 beta: float = 1.0, k: int = 10):
        super().__init__(x_dim, z_dim, hidden, likelihood, beta)
        self.k = _check_int(k, "k")
        self.prior_means = nn.Parameter(torch.randn(k, z_dim) / math.sqrt(z_dim))
        # softplus(0.5413) = 1: every component starts with unit variance
        self.prior_raw_vars = nn.Parameter(torch.full((k, z_dim), 0.5413))

    @property
    def prior_vars(self) -> torch.Tensor:
        return _to_var(self.prior_raw_vars)

    def log_prior(self, z):
        return _log_normal_mixture(z, self.prior_means, self.prior_vars)

    def kl(self, z, qm, qv):
        """Single-sample Monte Carlo KL ``log q(z|x) - log p(z)`` at ``z``, ``(batch,)``."""
        return _log_normal(z, qm, qv) - self.log_prior(z)

    @torch.no_grad()
    def sample_z(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        n = _check_int(n, "n")
        idx = torch.randint(self.k, (n,), device=self.prior_means.device, generator=generator)
        m, v = self.prior_means[idx], self.prior_vars[idx]
        return m + v.sqrt() * torch.randn(m.shape, dtype=m.dtype, device=m.device,
                                          generator=generator)


# --------------------------------------------------------------------------------------
# semi-supervised VAE
# --------------------------------------------------------------------------------------
class SSVAE(nn.Module):
    r"""Semi-supervised VAE ("M2"): ``p(y) p(z) p(x|y,z)`` with ``q(y|x) q(z|x,y)``.

    ``p(y)`` is uniform over ``y_dim`` classes, ``p(z) = N(0, I)``, ``p(x|y,z)``
    Bernoulli with logits, ``q(y|x)`` a categorical classifier and ``q(z|x,y)``
    a diagonal Gaussian. For a labelled pair the negative ELBO is

    .. math::
        -\mathcal L(x, y) = -\log p(x \mid y, z) + \mathrm{KL}(q(z \mid x, y) \| p(z))
        + \log y_{\dim}, \qquad z \sim q(z \mid x, y);

    for an unlabelled ``x`` the label is summed out under ``q(y|x)``:

    .. math::
        -\mathcal U(x) = \sum_y q(y \mid x)\,[-\mathcal L(x, y)] - H(q(y \mid x))
        = \sum_y q(y \mid x)\,[\mathrm{rec}_y + \mathrm{kl}_y]
        + \mathrm{KL}(q(y \mid x) \,\|\, p(y)).

    The training loss is ``gen_weight * (mean_u[-U] + mean_l[-L]) + alpha *
    mean_l[-log q(y|x)]``; ``gen_weight = 0`` trains the classifier alone on
    the labelled data (the baseline the lecture compares with).

    Args:
        x_dim, z_dim, hidden: as :class:`VAE`; y_dim: number of classes;
        alpha: weight of the labelled classification term; gen_weight: 1 or 0
        (any number >= 0) to switch the generative term on or off.
    """

    def __init__(self, x_dim: int, z_dim: int, y_dim: int = 10, hidden=(256,),
                 alpha: float = 1.0, gen_weight: float = 1.0):
        super().__init__()
        self.x_dim = _check_int(x_dim, "x_dim")
        self.z_dim = _check_int(z_dim, "z_dim")
        self.y_dim = _check_int(y_dim, "y_dim", 2)
        hidden = _hidden_sizes(hidden)
        self.alpha = _check_nonneg(alpha, "alpha")
        self.gen_weight = _check_nonneg(gen_weight, "gen_weight")
        self.classifier = mlp(x_dim, y_dim, hidden)
        self.encoder = GaussianEncoder(x_dim, z_dim, hidden, y_dim)
        self.decoder = BernoulliDecoder(z_dim, x_dim, hidden, y_dim)

    _check_x = VAE._check_x

    def _check_y(self, y, batch: int) -> torch.Tensor:
        if not isinstance(y, torch.Tensor) or y.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"y: expected an integer tensor of labels, got "
                             f"{getattr(y, 'dtype', type(y).__name__)}")
        if y.shape != (batch,):
            raise ValueError(f"y: expected shape ({batch},) to match x, got {tuple(y.shape)}")
        if bool(((y < 0) | (y >= self.y_dim)).any()):
            raise ValueError(f"y: expected labels in [0, {self.y_dim}), got "
                             f"min {int(y.min())}, max {int(y.max())}")
        return y.to(next(self.parameters()).device)

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of ``q(y|x)``, ``(batch, y_dim)``."""
        return self.classifier(self._check_x(x))

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Most probable class under ``q(y|x)``, ``(batch,)``."""
        with torch.no_grad():
            return self.classify(x).argmax(-1)

    def encode(self, x: torch.Tensor, y: torch.Tensor):
        """``q(z|x,y)``: ``(mean, var)`` each ``(batch, z_dim)``; ``y`` integer labels."""
        x = self._check_x(x)
        y = self._check_y(y, x.shape[0])
        return self.encoder(x, F.one_hot(y, self.y_dim).to(x.dtype))

    def decode(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Logits of ``p(x|y,z)``: ``z (batch, z_dim)``, ``y (batch,)`` -> ``(batch, x_dim)``."""
        y = self._check_y(y, z.shape[0])
        return self.decoder(z, F.one_hot(y, self.y_dim).to(z.dtype))

    def _rec_kl(self, x, y_onehot, eps=None):
        """Per-sample ``(rec, kl)`` for one-hot labels ``(..., batch, y_dim)``."""
        x_b = x.expand(*y_onehot.shape[:-1], x.shape[-1])
        qm, qv = self.encoder(x_b, y_onehot)
        if eps is None:
            eps = torch.randn_like(qm)
        z = qm + qv.sqrt() * eps
        rec = -_log_bernoulli(x_b, self.decoder(z, y_onehot))
        kl = _kl_normal(qm, qv, torch.zeros_like(qm), torch.ones_like(qv))
        return rec, kl

    def labelled_negative_elbo(self, x: torch.Tensor, y: torch.Tensor,
                               eps: torch.Tensor | None = None) -> torch.Tensor:
        """``-L(x, y)`` per sample, ``(batch,)`` (class doc); ``eps (batch, z_dim)`` optional
        noise for the reparameterised ``z``."""
        x = self._check_x(x)
        y = self._check_y(y, x.shape[0])
        rec, kl = self._rec_kl(x, F.one_hot(y, self.y_dim).to(x.dtype), eps)
        return rec + kl + math.log(self.y_dim)

    def unlabelled_negative_elbo(self, x: torch.Tensor, eps: torch.Tensor | None = None
                                 ) -> torch.Tensor:
        """``-U(x)`` per sample, ``(batch,)`` (class doc): every class is decoded, with
        one ``z`` per class; ``eps (y_dim, batch, z_dim)`` optional noise."""
        x = self._check_x(x)
        n = x.shape[0]
        eye = torch.eye(self.y_dim, dtype=x.dtype, device=x.device)
        y_all = eye[:, None, :].expand(self.y_dim, n, self.y_dim)  # (y_dim, batch, y_dim)
        rec, kl = self._rec_kl(x, y_all, eps)  # (y_dim, batch)
        log_q = F.log_softmax(self.classifier(x), dim=-1)  # (batch, y_dim)
        q = log_q.exp()
        kl_y = (q * (log_q + math.log(self.y_dim))).sum(-1)
        return (q * (rec + kl).T).sum(-1) + kl_y

    def loss(self, x_unlabelled: torch.Tensor, x_labelled: torch.Tensor,
             y_labelled: torch.Tensor) -> dict[str, torch.Tensor]:
        """The training objective (class doc) and its pieces, batch means.

        Returns ``{"loss", "nelbo_u", "nelbo_l", "ce", "acc_l"}``; ``acc_l`` is the
        classifier's accuracy on the labelled batch (no gradient).
        """
        xl = self._check_x(x_labelled, "x_labelled")
        yl = self._check_y(y_labelled, xl.shape[0])
        logits = self.classifier(xl)
        ce = F.cross_entropy(logits, yl)
        out = {"ce": ce, "acc_l": (logits.argmax(-1) == yl).float().mean().detach()}
        total = self.alpha * ce
        if self.gen_weight > 0:
            xu = self._check_x(x_unlabelled, "x_unlabelled")
            out["nelbo_u"] = self.unlabelled_negative_elbo(xu).mean()
            out["nelbo_l"] = self.labelled_negative_elbo(xl, yl).mean()
            total = total + self.gen_weight * (out["nelbo_u"] + out["nelbo_l"])
        out["loss"] = total
        return out

    @torch.no_grad()
    def sample(self, y: torch.Tensor, mean: bool = True) -> torch.Tensor:
        """One image per label in ``y`` ``(n,)`` from ``p(x|y,z)``, ``z ~ N(0, I)``."""
        z = torch.randn(len(y), self.z_dim, device=next(self.parameters()).device)
        probs = torch.sigmoid(self.decode(z, y))
        return probs if mean else torch.bernoulli(probs)


def _check_nonneg(value, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name}: expected a number >= 0, got {value!r}") from err
    if not (math.isfinite(v) and v >= 0):
        raise ValueError(f"{name}: expected a finite number >= 0, got {value!r}")
    return v


# --------------------------------------------------------------------------------------
# evaluation and training helpers
# --------------------------------------------------------------------------------------
@torch.no_grad()
def estimate_nll(model: VAE, x: torch.Tensor, k: int = 1000, batch_size: int = 100,
                 reduction: str = "mean", chunk_size: int | None = None) -> torch.Tensor:
    r"""Importance-sampled negative log-likelihood with ``q(z|x)`` as proposal.

    .. math::
        -\log \hat p(x) = -\log \frac1k \sum_{i=1}^k \frac{p(x, z_i)}{q(z_i \mid x)},
        \qquad z_i \sim q(z \mid x)

    ``hat p(x)`` is unbiased, so ``-log hat p(x)`` is an over-estimate of the NLL in
    expectation (it equals ``-L_k``), and approaches the true NLL as ``k`` grows.

    Args:
        model: a :class:`VAE` or :class:`GMVAE` (anything with ``log_weights(x, k)``).
        x: ``(n, x_dim)``; k: importance samples per ``x``;
        batch_size: rows of ``x`` per pass; reduction: ``"mean"`` (nats per
        example, a scalar) or ``"none"`` (``(n,)``).
    """
    if not hasattr(model, "log_weights"):
        raise ValueError(f"model: expected a VAE with log_weights(x, k), "
                         f"got {type(model).__name__}")
    k = _check_int(k, "k")
    batch_size = _check_int(batch_size, "batch_size")
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction: expected 'mean' or 'none', got {reduction!r}")
    x = model._check_x(x)
    was_training = model.training
    model.eval()
    try:
        parts = [-(torch.logsumexp(model.log_weights(xb, k, chunk_size), 0) - math.log(k))
                 for xb in x.split(batch_size)]
    finally:
        model.train(was_training)
    nll = torch.cat(parts)
    return nll.mean() if reduction == "mean" else nll


@torch.no_grad()
def active_units(model, x: torch.Tensor, threshold: float = 1e-2
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Which latent dimensions carry information about ``x`` (Burda et al. 2016).

    A unit ``j`` is active when ``Cov_x(E_{q(z|x)}[z_j]) > threshold``: its
    posterior mean moves with the input. Collapsed units have ``q(z_j|x) = p(z_j)``
    for every ``x``, so their mean is constant.

    Returns:
        ``(activity, active)``: the variances ``(z_dim,)`` and a boolean mask.
    """
    mean, _ = model.encode(x)
    activity = mean.var(dim=0, unbiased=True)
    return activity, activity > threshold


def vae_loss(model: VAE, batch) -> dict[str, torch.Tensor]:
    """Loss function for :func:`coursekit.train.fit`: ``{"loss": nelbo, "kl", "rec"}``.

    ``batch`` is ``x`` or an ``(x, y)`` pair (labels are ignored).
    """
    x = batch[0] if isinstance(batch, (list, tuple)) else batch
    nelbo, kl, rec = model.negative_elbo(x)
    return {"loss": nelbo, "kl": kl, "rec": rec}
