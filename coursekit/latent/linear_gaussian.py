r"""The linear-Gaussian latent variable model, where every quantity has a closed form.

.. math:: z \sim N(0, I_k), \qquad x \mid z \sim N(W z + b, \sigma^2 I_d)

Its marginal, posterior and ELBO are exact, so every estimator of lecture 03 can be
checked against the truth; :class:`~coursekit.latent.PPCA` fits it to data.
"""

from __future__ import annotations

import math

import torch
import torch.distributions as D

from coursekit import functional as F
from coursekit._validation import as_float_tensor, check_count, check_finite, check_number
from coursekit.functional import LOG_2PI

__all__ = ["LinearGaussianModel"]


def _tensor(x, name: str, like: torch.Tensor | None = None) -> torch.Tensor:
    """``x`` as a finite floating tensor, with the dtype and device of ``like`` if given."""
    t = as_float_tensor(x, name)
    if like is not None:
        t = t.to(dtype=like.dtype, device=like.device)
    check_finite(t, name)
    return t


class LinearGaussianModel:
    r"""``z ~ N(0, I_k)``, ``x | z ~ N(W z + b, sigma^2 I_d)``: everything in closed form.

    .. math::
        p(x) &= N(x; b, W W^T + \sigma^2 I_d) \\
        p(z \mid x) &= N(z; M^{-1} W^T (x - b),\ \sigma^2 M^{-1}),
        \qquad M = W^T W + \sigma^2 I_k

    Args:
        W: ``(d, k)``; b: ``(d,)``; noise_variance: ``sigma^2 > 0``.
    """

    def __init__(self, W, b, noise_variance: float):
        W = _tensor(W, "W")
        if W.dim() != 2:
            raise ValueError(f"W: expected shape (d, k), got shape {tuple(W.shape)}")
        b = _tensor(b, "b", W)
        if b.shape != (W.shape[0],):
            raise ValueError(f"b: expected shape ({W.shape[0]},) to match W's d, "
                             f"got shape {tuple(b.shape)}")
        s2 = check_number(noise_variance, "noise_variance", low=0.0, strict=True)
        self.W, self.b, self.noise_variance = W, b, s2
        self.d, self.k = W.shape

    def _x(self, x) -> torch.Tensor:
        x = _tensor(x, "x", self.W)
        if x.dim() < 1 or x.shape[-1] != self.d:
            raise ValueError(f"x: expected shape (..., d={self.d}), got shape {tuple(x.shape)}")
        return x

    def _z(self, z) -> torch.Tensor:
        z = _tensor(z, "z", self.W)
        if z.dim() < 1 or z.shape[-1] != self.k:
            raise ValueError(f"z: expected shape (..., k={self.k}), got shape {tuple(z.shape)}")
        return z

    @property
    def covariance(self) -> torch.Tensor:
        """Marginal covariance ``W W^T + sigma^2 I``, ``(d, d)``."""
        eye = torch.eye(self.d, dtype=self.W.dtype, device=self.W.device)
        return self.W @ self.W.T + self.noise_variance * eye

    def prior(self) -> D.Distribution:
        """``p(z) = N(0, I_k)`` as an ``Independent(Normal)`` with event shape ``(k,)``."""
        zero = torch.zeros(self.k, dtype=self.W.dtype, device=self.W.device)
        return D.Independent(D.Normal(zero, torch.ones_like(zero)), 1)

    def marginal(self) -> D.MultivariateNormal:
        """``p(x) = N(b, W W^T + sigma^2 I)``."""
        return D.MultivariateNormal(self.b, covariance_matrix=self.covariance)

    def log_marginal(self, x) -> torch.Tensor:
        """Exact ``log p(x)``; ``x: (..., d) -> (...)``."""
        return self.marginal().log_prob(self._x(x))

    def log_likelihood(self, x, z) -> torch.Tensor:
        r"""``log p(x|z) = log N(x; W z + b, sigma^2 I)``; ``x: (..., d)``, ``z: (..., k)``
        broadcast to ``(...)``."""
        x, z = self._x(x), self._z(z)
        diff = x - (z @ self.W.T + self.b)
        return -0.5 * (self.d * (LOG_2PI + math.log(self.noise_variance))
                       + (diff * diff).sum(-1) / self.noise_variance)

    def log_prior(self, z) -> torch.Tensor:
        """``log N(z; 0, I)``, ``(..., k) -> (...)``."""
        return F._log_standard_normal(self._z(z))

    def log_joint(self, x, z) -> torch.Tensor:
        """``log p(x, z) = log p(x|z) + log p(z)``; broadcast like :meth:`log_likelihood`."""
        return self.log_likelihood(x, z) + self.log_prior(z)

    def posterior(self, x) -> tuple[torch.Tensor, torch.Tensor]:
        """Exact posterior ``p(z|x)``: mean ``(..., k)`` and covariance ``(k, k)``
        (the same for every ``x``)."""
        x = self._x(x)
        eye = torch.eye(self.k, dtype=self.W.dtype, device=self.W.device)
        M = self.W.T @ self.W + self.noise_variance * eye
        L = torch.linalg.cholesky(M)
        cov = self.noise_variance * torch.cholesky_inverse(L)
        mean = torch.cholesky_solve(((x - self.b) @ self.W).unsqueeze(-1), L).squeeze(-1)
        return mean, 0.5 * (cov + cov.T)

    def posterior_distribution(self, x) -> D.MultivariateNormal:
        """``p(z|x)`` as a ``MultivariateNormal`` with batch shape ``x.shape[:-1]``."""
        mean, cov = self.posterior(x)
        return D.MultivariateNormal(mean, covariance_matrix=cov)

    def elbo(self, x, q_mean, q_cov) -> torch.Tensor:
        r"""Exact ELBO of a Gaussian ``q(z) = N(m, S)``.

        .. math::
            \mathrm{ELBO} = \mathbb E_q[\log p(x|z)] - \mathrm{KL}(q \,\|\, N(0, I)),\quad
            \mathbb E_q[\log p(x|z)] = -\tfrac d2 \log(2\pi\sigma^2)
            - \frac{\|x - b - W m\|^2 + \mathrm{tr}(W^T W S)}{2\sigma^2}

        Args:
            x: ``(..., d)``; q_mean: ``(..., k)``; q_cov: ``(..., k, k)`` (or ``(k, k)``).

        Returns:
            ``(...)``.
        """
        x, m = self._x(x), self._z(q_mean)
        S = _tensor(q_cov, "q_cov", self.W)
        if S.dim() < 2 or S.shape[-2:] != (self.k, self.k):
            raise ValueError(f"q_cov: expected shape (..., {self.k}, {self.k}), "
                             f"got shape {tuple(S.shape)}")
        diff = x - self.b - m @ self.W.T
        WtW = self.W.T @ self.W
        trace = (WtW * S).sum((-2, -1))
        expected_ll = -0.5 * (self.d * (LOG_2PI + math.log(self.noise_variance))
                              + ((diff * diff).sum(-1) + trace) / self.noise_variance)
        L = torch.linalg.cholesky(S)
        logdet = 2.0 * torch.log(torch.diagonal(L, dim1=-2, dim2=-1)).sum(-1)
        kl = 0.5 * (torch.diagonal(S, dim1=-2, dim2=-1).sum(-1) + (m * m).sum(-1)
                    - self.k - logdet)
        return expected_ll - kl

    def sample(self, n: int, generator: torch.Generator | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Ancestral sampling: ``(x, z)`` of shapes ``(n, d)`` and ``(n, k)``."""
        n = check_count(n, "n")
        kw = {"dtype": self.W.dtype, "device": self.W.device, "generator": generator}
        z = torch.randn(n, self.k, **kw)
        x = z @ self.W.T + self.b + math.sqrt(self.noise_variance) * torch.randn(n, self.d, **kw)
        return x, z
