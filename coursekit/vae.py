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

* the helpers of homework 2 under their homework names, all from
  :mod:`coursekit.functional`: :func:`sample_gaussian` (``sample_normal_diag``),
  :func:`log_normal` (``log_normal_diag``), :func:`log_normal_mixture`,
  :func:`kl_normal` (``kl_normal_diag``), :func:`log_bernoulli_with_logits`
  (``log_bernoulli_logits``);
* :class:`VAE` (Bernoulli decoder with logits for binary images, or a Gaussian
  decoder for continuous data), with the NELBO, the ``k``-sample IWAE bound,
  sampling, encoding, decoding and reconstruction;
* :class:`GMVAE`: the prior is a uniform mixture of ``k`` learnable diagonal
  Gaussians and the KL is a single-sample Monte Carlo estimate;
* :class:`SSVAE`: the semi-supervised model ``p(y) p(z) p(x|y,z)`` with a
  classifier ``q(y|x)`` and an encoder ``q(z|x,y)`` (Kingma et al. 2014, "M2");
* :class:`AutoregressiveVAE`: a VAE whose decoder also sees the previous pixels,
  ``p(x|z) = prod_j p(x_j | x_<j, z)`` (MADE's masks), strong enough to ignore ``z``
  (posterior collapse at ``beta = 1``);
* two remedies for posterior collapse: :func:`kl_weight` / :class:`KLAnnealing`
  (warm the KL weight up from 0 to 1) and free bits (:func:`free_bits_kl`,
  ``VAE(..., free_bits=lambda)``);
* :func:`vae_loss` for :func:`coursekit.train.fit`. Evaluation (importance-sampled
  NLL, bits per dimension, active units) lives in :mod:`coursekit.metrics`.

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
from torch import nn

from coursekit import functional as F
from coursekit._validation import check_choice, check_count, check_number

VAR_FLOOR = 1e-5
LIKELIHOODS = ("bernoulli", "gaussian")

__all__ = [
    "GMVAE",
    "AutoregressiveVAE",
    "KLAnnealing",
    "SSVAE",
    "VAE",
    "free_bits_kl",
    "kl_normal",
    "kl_weight",
    "log_bernoulli_with_logits",
    "log_normal",
    "log_normal_mixture",
    "sample_gaussian",
    "vae_loss",
]


# --------------------------------------------------------------------------------------
# checks
# --------------------------------------------------------------------------------------
def _hidden_sizes(hidden) -> tuple[int, ...]:
    if isinstance(hidden, int) and not isinstance(hidden, bool):
        hidden = (hidden,)
    if not isinstance(hidden, Sequence) or any(
            isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in hidden):
        raise ValueError(f"hidden: expected a positive int or a sequence of them, got {hidden!r}")
    return tuple(hidden)


# --------------------------------------------------------------------------------------
# helpers: the shared functional layer under the names homework 2 uses
# --------------------------------------------------------------------------------------
sample_gaussian = F.sample_normal_diag
log_normal = F.log_normal_diag
log_normal_mixture = F.log_normal_mixture
kl_normal = F.kl_normal_diag
log_bernoulli_with_logits = F.log_bernoulli_logits


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
    return nn.functional.softplus(raw) + VAR_FLOOR


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
        free_bits: ``lambda >= 0`` nats per latent dimension; when positive the
            training objective uses :func:`free_bits_kl` instead of the KL (the KL
            that :meth:`negative_elbo` reports is still the true one).

    Shapes: ``x (batch, x_dim)``; ``z (..., z_dim)``.
    """

    def __init__(self, x_dim: int, z_dim: int, hidden=(256,), likelihood: str = "bernoulli",
                 beta: float = 1.0, *, free_bits: float = 0.0):
        super().__init__()
        self.x_dim = check_count(x_dim, "x_dim")
        self.z_dim = check_count(z_dim, "z_dim")
        hidden = _hidden_sizes(hidden)
        self.likelihood = check_choice(likelihood, "likelihood", LIKELIHOODS)
        self.beta = check_number(beta, "beta", low=0.0)
        self.free_bits = check_number(free_bits, "free_bits", low=0.0)
        self.encoder = GaussianEncoder(x_dim, z_dim, hidden)
        self.decoder = (BernoulliDecoder(z_dim, x_dim, hidden) if likelihood == "bernoulli"
                        else GaussianDecoder(z_dim, x_dim, hidden))

    def extra_repr(self) -> str:
        return (f"x_dim={self.x_dim}, z_dim={self.z_dim}, likelihood={self.likelihood!r}, "
                f"beta={self.beta}" + (f", free_bits={self.free_bits}" if self.free_bits else ""))

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
        x = x.to(device=p.device, dtype=p.dtype)
        # one reduction (and one device sync) per batch: min and max propagate NaN and inf
        low, high = torch.aminmax(x)
        low, high = float(low), float(high)
        if not (math.isfinite(low) and math.isfinite(high)):
            raise ValueError(f"{name}: expected finite values, got NaN or inf")
        if self.likelihood == "bernoulli":
            if low < 0 or high > 1:
                raise ValueError(
                    f"{name}: a Bernoulli decoder models pixel values in [0, 1], got values "
                    f"in [{low:g}, {high:g}]; binarise or rescale the data first "
                    "(e.g. load_digits(binarize='static'), or divide raw digit counts by 16)")
        return x

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
            return F._log_bernoulli_logits(x, out)
        return F._log_normal_diag(x, *out)

    def log_prior(self, z: torch.Tensor) -> torch.Tensor:
        """``log p(z) = log N(z; 0, I)``, ``(..., z_dim) -> (...)``."""
        return F._log_standard_normal(z)

    def kl(self, z, qm, qv) -> torch.Tensor:
        """``KL(q(z|x) || p(z))`` per sample ``(batch,)``: closed form here (``z`` unused)."""
        return F._kl_normal_diag(qm, qv, torch.zeros_like(qm), torch.ones_like(qv))

    def kl_per_dim(self, qm, qv) -> torch.Tensor:
        r"""``KL(q(z_j|x) || N(0, 1))`` for each dimension, ``(batch, z_dim)``:
        ``(v + m^2 - 1 - log v) / 2``."""
        return 0.5 * (qv + qm**2 - 1 - qv.log())

    def negative_elbo(self, x: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        r"""``(nelbo, kl, rec)``, scalars averaged over the batch.

        .. math::
            \mathrm{rec} = -\log p(x \mid z),\ z = \mu + \sigma\epsilon; \qquad
            \mathrm{kl} = \mathrm{KL}(q(z \mid x) \,\|\, p(z)); \qquad
            \mathrm{nelbo} = \mathrm{rec} + \beta\,\mathrm{kl}

        With ``free_bits > 0`` the objective is ``rec + beta * free_bits_kl(...)``
        (``kl`` is still the true KL).

        Args:
            x: ``(batch, x_dim)``.
        """
        x = self._check_x(x)
        qm, qv = self.encoder(x)
        z = F._sample_normal_diag(qm, qv)
        rec = -self.log_likelihood(x, z).mean()
        if self.free_bits > 0:
            kl_dims = self.kl_per_dim(qm, qv)
            kl = kl_dims.sum(-1).mean()
            return rec + self.beta * _free_bits_kl(kl_dims, self.free_bits), kl, rec
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
        k = check_count(k, "k")
        if chunk_size is None:
            chunk_size = max(1, 2**16 // x.shape[0])
        chunk_size = check_count(chunk_size, "chunk_size")
        qm, qv = self.encoder(x)
        out = []
        for start in range(0, k, chunk_size):
            n = min(chunk_size, k - start)
            z = F._sample_normal_diag(qm.expand(n, *qm.shape), qv.expand(n, *qv.shape))
            log_q = F._log_normal_diag(z, qm, qv)
            out.append(self.log_likelihood(x, z) + self.log_prior(z) - log_q)
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
        return -F._log_mean_exp(log_w, dim=0).mean()

    @torch.no_grad()
    def sample_z(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` draws from the prior, ``(n, z_dim)``."""
        n = check_count(n, "n")
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
        z = F._sample_normal_diag(qm, qv) if sample_z else qm
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
        self.k = check_count(k, "k")
        self.prior_means = nn.Parameter(torch.randn(k, z_dim) / math.sqrt(z_dim))
        # softplus(0.5413) = 1: every component starts with unit variance
        self.prior_raw_vars = nn.Parameter(torch.full((k, z_dim), 0.5413))

    @property
    def prior_vars(self) -> torch.Tensor:
        return _to_var(self.prior_raw_vars)

    def log_prior(self, z):
        return F._log_normal_mixture(z, self.prior_means, self.prior_vars)

    def kl_per_dim(self, qm, qv):
        raise NotImplementedError("a mixture prior does not factorise over latent dimensions: "
                                  "free bits need a per-dimension KL (use VAE)")

    def kl(self, z, qm, qv):
        """Single-sample Monte Carlo KL ``log q(z|x) - log p(z)`` at ``z``, ``(batch,)``."""
        return F._log_normal_diag(z, qm, qv) - self.log_prior(z)

    @torch.no_grad()
    def sample_z(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        n = check_count(n, "n")
        idx = torch.randint(self.k, (n,), device=self.prior_means.device, generator=generator)
        m, v = self.prior_means[idx], self.prior_vars[idx]
        return m + v.sqrt() * torch.randn(m.shape, dtype=m.dtype, device=m.device,
                                          generator=generator)


# --------------------------------------------------------------------------------------
# VAE with an autoregressive decoder
# --------------------------------------------------------------------------------------
class AutoregressiveBernoulliDecoder(nn.Module):
    r"""``p(x | z) = prod_j Bern(x_j; sigmoid(l_j(x_{<j}, z)))`` in the raster order.

    A MADE over the pixels whose first layer also receives ``z``:
    ``h = relu(M_1 x + W_z z + b_1)``, ``l = M_2 h + b_2`` (for ``ar_hidden=()``,
    ``l = M x + W_z z + b``: an FVSBN whose biases depend on ``z``), with MADE's masks
    ``M`` (:func:`~coursekit.autoregressive.masks.made_masks`). ``W_z`` starts at zero:
    the decoder starts as an autoregressive model of ``x`` alone and has to learn to
    use ``z``. ``forward(z, x) -> logits (..., x_dim)``, teacher-forced on ``x``.
    """

    def __init__(self, z_dim: int, x_dim: int, ar_hidden=(256,)):
        super().__init__()
        from coursekit.autoregressive.masks import MaskedLinear, made_masks

        ar_hidden = () if ar_hidden in ((), [], None, 0) else _hidden_sizes(ar_hidden)
        masks, _ = made_masks(torch.arange(x_dim), ar_hidden)
        sizes = (x_dim, *ar_hidden, x_dim)
        self.layers = nn.ModuleList()
        for (a, b), mask in zip(zip(sizes[:-1], sizes[1:]), masks):
            layer = MaskedLinear(a, b)
            layer.set_mask(mask)
            self.layers.append(layer)
        self.z_in = nn.Linear(z_dim, sizes[1], bias=False)
        nn.init.zeros_(self.z_in.weight)

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        h = self.layers[0](x.expand(*z.shape[:-1], x.shape[-1])) + self.z_in(z)
        for layer in self.layers[1:]:
            h = layer(torch.relu(h))
        return h


class AutoregressiveVAE(VAE):
    r"""A VAE whose Bernoulli decoder is autoregressive given ``z``:

    .. math:: p_\theta(x \mid z) = \prod_{j=1}^{D} p_\theta(x_j \mid x_{<j}, z)

    (:class:`AutoregressiveBernoulliDecoder`). Such a decoder can model the pixels'
    dependencies without ``z`` at all, which is what makes posterior collapse
    possible at ``beta = 1``. Encoder, prior, ELBO, IWAE bound, ``beta`` and
    ``free_bits`` are those of :class:`VAE`; ``log p(x|z)`` is exact (one
    teacher-forced pass); :meth:`sample` takes ``x_dim`` sequential passes.

    Args: as :class:`VAE` (Bernoulli only; ``hidden`` sizes the encoder), plus
    ``ar_hidden``: hidden sizes of the decoder's MADE (``()``: a masked linear layer,
    an FVSBN).
    """

    def __init__(self, x_dim: int, z_dim: int, hidden=(256,), ar_hidden=(256,),
                 beta: float = 1.0, *, free_bits: float = 0.0):
        super().__init__(x_dim, z_dim, hidden, "bernoulli", beta, free_bits=free_bits)
        self.decoder = AutoregressiveBernoulliDecoder(z_dim, x_dim, ar_hidden)

    def decode(self, z: torch.Tensor, x: torch.Tensor | None = None) -> torch.Tensor:
        """Logits of ``p(x_j | x_<j, z)``, ``(..., x_dim)``, given the pixels ``x``
        (teacher forcing; required: an autoregressive decoder has no output without them)."""
        if x is None:
            raise ValueError("x: an autoregressive decoder needs the pixels it conditions on "
                             "(use sample() to generate them)")
        return self.decoder(self._check_z(z), self._check_x(x))

    def log_likelihood(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return F._log_bernoulli_logits(x.expand(*z.shape[:-1], x.shape[-1]),
                                       self.decoder(z, x))

    @torch.no_grad()
    def _generate(self, z: torch.Tensor, mean: bool, generator) -> torch.Tensor:
        x = torch.zeros(*z.shape[:-1], self.x_dim, device=z.device, dtype=z.dtype)
        probs = torch.zeros_like(x)
        for j in range(self.x_dim):  # pixel j depends only on pixels < j: fill them in order
            probs[..., j] = torch.sigmoid(self.decoder(z, x)[..., j])
            x[..., j] = torch.bernoulli(probs[..., j], generator=generator)
        return probs if mean else x

    @torch.no_grad()
    def sample(self, n: int, mean: bool = False, generator: torch.Generator | None = None
               ) -> torch.Tensor:
        """``x ~ p(x)``, ``(n, x_dim)``, pixel by pixel. With ``mean=True`` the
        conditional probabilities ``p(x_j = 1 | x_<j, z)`` along the sampled image."""
        return self._generate(self.sample_z(n, generator), mean, generator)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, sample_z: bool = False) -> torch.Tensor:
        """Pixel probabilities of an image generated pixel by pixel from ``z = mu(x)``
        (or ``z ~ q(z|x)``), ``(batch, x_dim)``."""
        qm, qv = self.encode(x)
        z = F._sample_normal_diag(qm, qv) if sample_z else qm
        return self._generate(z, True, None)


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
        self.x_dim = check_count(x_dim, "x_dim")
        self.z_dim = check_count(z_dim, "z_dim")
        self.y_dim = check_count(y_dim, "y_dim", 2)
        hidden = _hidden_sizes(hidden)
        self.alpha = check_number(alpha, "alpha", low=0.0)
        self.gen_weight = check_number(gen_weight, "gen_weight", low=0.0)
        self.classifier = mlp(x_dim, y_dim, hidden)
        self.encoder = GaussianEncoder(x_dim, z_dim, hidden, y_dim)
        self.decoder = BernoulliDecoder(z_dim, x_dim, hidden, y_dim)

    likelihood = "bernoulli"  # the decoder's pixel model (read by the shared input check)
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
        return self.encoder(x, nn.functional.one_hot(y, self.y_dim).to(x.dtype))

    def decode(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Logits of ``p(x|y,z)``: ``z (batch, z_dim)``, ``y (batch,)`` -> ``(batch, x_dim)``."""
        y = self._check_y(y, z.shape[0])
        return self.decoder(z, nn.functional.one_hot(y, self.y_dim).to(z.dtype))

    def _rec_kl(self, x, y_onehot, eps=None):
        """Per-sample ``(rec, kl)`` for one-hot labels ``(..., batch, y_dim)``."""
        x_b = x.expand(*y_onehot.shape[:-1], x.shape[-1])
        qm, qv = self.encoder(x_b, y_onehot)
        if eps is None:
            eps = torch.randn_like(qm)
        z = qm + qv.sqrt() * eps
        rec = -F._log_bernoulli_logits(x_b, self.decoder(z, y_onehot))
        kl = F._kl_normal_diag(qm, qv, torch.zeros_like(qm), torch.ones_like(qv))
        return rec, kl

    def labelled_negative_elbo(self, x: torch.Tensor, y: torch.Tensor,
                               eps: torch.Tensor | None = None) -> torch.Tensor:
        """``-L(x, y)`` per sample, ``(batch,)`` (class doc); ``eps (batch, z_dim)`` optional
        noise for the reparameterised ``z``."""
        x = self._check_x(x)
        y = self._check_y(y, x.shape[0])
        rec, kl = self._rec_kl(x, nn.functional.one_hot(y, self.y_dim).to(x.dtype), eps)
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
        log_q = nn.functional.log_softmax(self.classifier(x), dim=-1)  # (batch, y_dim)
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
        ce = nn.functional.cross_entropy(logits, yl)
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
        p = next(self.parameters())
        z = torch.randn(len(y), self.z_dim, device=p.device, dtype=p.dtype)
        probs = torch.sigmoid(self.decode(z, y))
        return probs if mean else torch.bernoulli(probs)


# --------------------------------------------------------------------------------------
# remedies for posterior collapse
# --------------------------------------------------------------------------------------
def _free_bits_kl(kl_per_dim: torch.Tensor, free_bits: float) -> torch.Tensor:
    return kl_per_dim.mean(0).clamp_min(free_bits).sum()


def free_bits_kl(kl_per_dim: torch.Tensor, free_bits: float) -> torch.Tensor:
    r"""The free-bits KL term (Kingma et al. 2016, IAF): each latent dimension's KL,
    averaged over the batch, is clamped below at ``lambda`` nats,

    .. math::
        \sum_{j=1}^{d_z} \max\Big(\lambda,\ \frac1B \sum_{b=1}^B
        \mathrm{KL}\big(q(z_j \mid x_b) \,\|\, p(z_j)\big)\Big).

    A dimension that carries fewer than ``lambda`` nats gets no gradient pushing its
    KL further down, so the optimiser has no reason to switch it off; above
    ``lambda`` it is the ordinary KL. With ``lambda = 0`` it is the batch-mean KL.

    Args:
        kl_per_dim: ``(batch, z_dim)`` (e.g. :meth:`VAE.kl_per_dim`); free_bits: ``lambda >= 0``.

    Returns:
        A scalar.
    """
    if not isinstance(kl_per_dim, torch.Tensor) or kl_per_dim.dim() != 2:
        raise ValueError("kl_per_dim: expected a (batch, z_dim) tensor, got "
                         f"{tuple(getattr(kl_per_dim, 'shape', ())) or type(kl_per_dim).__name__}")
    free_bits = check_number(free_bits, "free_bits", low=0.0)
    return _free_bits_kl(kl_per_dim, free_bits)


def kl_weight(step: int, warmup_steps: int, start: float = 0.0) -> float:
    r"""KL annealing ("warm-up", Bowman et al. 2016; Sønderby et al. 2016): the weight
    of the KL term at training step ``t``,

    .. math:: \beta_t = \beta_0 + (1 - \beta_0) \min(1, t / T),

    rising linearly from ``start`` (``beta_0``) to 1 over ``warmup_steps`` (``T``),
    then 1: the objective is the ELBO from step ``T`` on.
    """
    step = check_number(step, "step", low=0)
    warmup_steps = check_count(warmup_steps, "warmup_steps")
    start = check_number(start, "start", low=0.0, high=1.0)
    return start + (1.0 - start) * min(1.0, step / warmup_steps)


class KLAnnealing:
    """A loss function for :func:`coursekit.train.fit` that warms ``model.beta`` up.

    Each call in training mode sets ``model.beta = kl_weight(step, warmup_steps, start)``
    and counts a step; calls in eval mode (validation) leave both alone. Returns
    :func:`vae_loss`'s dict plus ``"beta"``. After ``warmup_steps`` steps ``beta`` is 1.

    Example::

        fit(model, KLAnnealing(warmup_steps=500), loader, epochs=50)
    """

    def __init__(self, warmup_steps: int, start: float = 0.0):
        self.warmup_steps = check_count(warmup_steps, "warmup_steps")
        self.start = check_number(start, "start", low=0.0, high=1.0)
        self.step = 0

    def __call__(self, model: VAE, batch) -> dict[str, torch.Tensor]:
        if model.training:
            model.beta = kl_weight(self.step, self.warmup_steps, self.start)
            self.step += 1
        out = vae_loss(model, batch)
        out["beta"] = torch.tensor(float(model.beta))
        return out


# --------------------------------------------------------------------------------------
# training
# --------------------------------------------------------------------------------------
def vae_loss(model: VAE, batch) -> dict[str, torch.Tensor]:
    """Loss function for :func:`coursekit.train.fit`: ``{"loss": nelbo, "kl", "rec"}``.

    ``batch`` is ``x`` or an ``(x, y)`` pair (labels are ignored).
    """
    x = batch[0] if isinstance(batch, (list, tuple)) else batch
    nelbo, kl, rec = model.negative_elbo(x)
    return {"loss": nelbo, "kl": kl, "rec": rec}
