r"""Probabilistic PCA and mixtures of PPCA (Tipping & Bishop, 1999), fitted to data.

.. math:: p(x) = N(x; \mu, W W^T + \sigma^2 I_d)

:class:`PPCA` has a closed-form maximum-likelihood fit and an EM fit;
:class:`MixturePPCA` runs the mixtures' shared EM loop
(:class:`coursekit.mixture.GaussianMixture`'s base) with a closed-form PPCA M-step
per component. Both follow scikit-learn's conventions: ``random_state``,
fitted attributes with a trailing underscore, ``NotFittedError`` before ``fit``.
"""

from __future__ import annotations

import math

import torch
import torch.distributions as D

from coursekit import functional as F
from coursekit._validation import as_data, as_generator, check_choice, check_count, check_number
from coursekit.exceptions import NotFittedError
from coursekit.latent.linear_gaussian import LinearGaussianModel
from coursekit.mixture import _EMMixture

__all__ = ["MixturePPCA", "PPCA"]


def _ppca_closed_form(S: torch.Tensor, q: int) -> tuple[torch.Tensor, float]:
    """ML ``W`` (``(d, q)``, orthogonal columns) and ``sigma^2`` from a covariance ``S``."""
    d = S.shape[0]
    evals, evecs = torch.linalg.eigh(S)
    evals, evecs = evals.flip(0), evecs.flip(1)
    noise = float(evals[q:].mean()) if q < d else 0.0
    noise = max(noise, 1e-8 * max(float(evals[0]), 1e-300))
    scale = torch.sqrt(torch.clamp(evals[:q] - noise, min=0.0))
    W = evecs[:, :q] * scale
    # a deterministic sign: the largest-magnitude entry of each column is positive
    idx = W.abs().argmax(0)
    signs = torch.sign(W[idx, torch.arange(q)])
    signs[signs == 0] = 1.0
    return W * signs, noise


class PPCA:
    r"""Probabilistic PCA (Tipping & Bishop, 1999).

    .. math::
        z \sim N(0, I_q),\quad x \mid z \sim N(W z + \mu, \sigma^2 I_d),\quad
        p(x) = N(x; \mu, W W^T + \sigma^2 I_d)

    ``fit(X, method="closed_form")`` uses the maximum-likelihood solution: with
    the sample covariance ``S = U Lambda U^T`` (``1/N`` normalisation, eigenvalues
    in decreasing order), ``sigma^2`` is the mean of the ``d - q`` discarded
    eigenvalues and ``W = U_q (Lambda_q - sigma^2 I)^{1/2}``.
    ``method="em"`` runs EM: the E-step computes the exact posterior
    ``q(z_n) = N(M^{-1} W^T (x_n - mu), sigma^2 M^{-1})`` (so the ELBO touches the
    log-likelihood), the M-step maximises the ELBO over ``W`` and ``sigma^2``:

    .. math::
        W \leftarrow \Big[\sum_n (x_n-\mu) E[z_n]^T\Big]\Big[\sum_n E[z_n z_n^T]\Big]^{-1},
        \quad
        \sigma^2 \leftarrow \frac{1}{Nd}\sum_n \big(\|x_n-\mu\|^2
        - 2 E[z_n]^T W^T (x_n-\mu) + \mathrm{tr}(E[z_n z_n^T] W^T W)\big)

    Attributes after ``fit``: ``W_`` ``(d, q)``, ``noise_variance_``, ``mean_`` ``(d,)``,
    ``n_iter_``, ``converged_``; for EM also ``lower_bounds_`` (mean ELBO per sample
    after each M-step, with the ``q`` of the preceding E-step) and
    ``log_likelihoods_`` (mean log-likelihood after each M-step). Coordinate ascent
    gives ``log_likelihoods_[t-1] <= lower_bounds_[t] <= log_likelihoods_[t]``.

    Args:
        n_components: latent dimension ``q`` with ``1 <= q < d``.
        max_iter, tol: EM stops when the mean log-likelihood improves by less than ``tol``.
        random_state: ``None``, an int or a ``torch.Generator``: draws EM's random initial
            ``W`` (the closed form uses no randomness).
    """

    def __init__(self, n_components: int, max_iter: int = 1000, tol: float = 1e-8,
                 random_state=0):
        self.n_components = check_count(n_components, "n_components")
        self.max_iter = check_count(max_iter, "max_iter")
        self.tol = check_number(tol, "tol", low=0.0)
        self.random_state = random_state

    # -- fitting -----------------------------------------------------------
    def _check_X(self, X, fitting=False) -> torch.Tensor:
        if not fitting:
            self._require_fitted()
        X = as_data(X, "X", None if fitting else self.W_.device,
                    None if fitting else self.W_.dtype)
        if fitting:
            if X.shape[1] <= self.n_components:
                raise ValueError(f"n_components: expected fewer than n_features="
                                 f"{X.shape[1]}, got {self.n_components}")
            if X.shape[0] < 2:
                raise ValueError(f"X: expected at least 2 samples, got {X.shape[0]}")
        elif X.shape[1] != self.W_.shape[0]:
            raise ValueError(f"X: expected {self.W_.shape[0]} features (as in fit), "
                             f"got {X.shape[1]}")
        return X

    def fit(self, X, method: str = "closed_form") -> PPCA:
        """Fit to ``X`` ``(n, d)`` by ``"closed_form"`` maximum likelihood or ``"em"``."""
        check_choice(method, "method", ("closed_form", "em"))
        X = self._check_X(X, fitting=True)
        if X.dtype != torch.float64:
            X = X.to(torch.float64)
        n, d = X.shape
        q = self.n_components
        self.mean_ = X.mean(0)
        Xc = X - self.mean_
        S = Xc.T @ Xc / n
        if method == "closed_form":
            self.W_, self.noise_variance_ = _ppca_closed_form(S, q)
            self.n_iter_, self.converged_ = 0, True
            # with the exact posterior as q the ELBO equals the log-likelihood
            self.log_likelihoods_ = [self.score(X)]
            self.lower_bounds_ = list(self.log_likelihoods_)
            return self
        gen = as_generator(self.random_state)
        scale = math.sqrt(float(torch.diagonal(S).mean()))
        self.W_ = scale * torch.randn(d, q, generator=gen, dtype=X.dtype).to(X.device)
        self.noise_variance_ = float(torch.diagonal(S).mean())
        self.lower_bounds_, self.log_likelihoods_ = [], []
        self.converged_ = False
        eye = torch.eye(q, dtype=X.dtype, device=X.device)
        for it in range(self.max_iter):
            # E-step: exact posterior N(Ez, s2 M^-1) for every point
            M = self.W_.T @ self.W_ + self.noise_variance_ * eye
            Minv = torch.linalg.inv(M)
            Ez = Xc @ self.W_ @ Minv                    # (n, q)
            cov = self.noise_variance_ * Minv          # (q, q), shared
            sum_Ezz = n * cov + Ez.T @ Ez              # sum_n E[z z^T]
            # M-step
            W = (Xc.T @ Ez) @ torch.linalg.inv(sum_Ezz)
            s2 = float(((Xc * Xc).sum() - 2.0 * (Ez * (Xc @ W)).sum()
                        + (sum_Ezz * (W.T @ W)).sum()) / (n * d))
            self.W_, self.noise_variance_ = W, s2
            self.lower_bounds_.append(float(self.elbo(X, Ez, cov).mean()))
            self.log_likelihoods_.append(self.score(X))
            self.n_iter_ = it + 1
            if it > 0 and abs(self.log_likelihoods_[-1] - self.log_likelihoods_[-2]) < self.tol:
                self.converged_ = True
                break
        return self

    # -- the fitted model ----------------------------------------------------
    def _require_fitted(self) -> None:
        if not hasattr(self, "W_"):
            raise NotFittedError("this PPCA is not fitted yet; call fit(X) first")

    def _model(self) -> LinearGaussianModel:
        self._require_fitted()
        return LinearGaussianModel(self.W_, self.mean_, self.noise_variance_)

    @property
    def lower_bound_(self) -> float:
        """The last entry of ``lower_bounds_``."""
        return self.lower_bounds_[-1]

    @property
    def covariance_(self) -> torch.Tensor:
        """``W W^T + sigma^2 I``, ``(d, d)``."""
        return self._model().covariance

    def score_samples(self, X) -> torch.Tensor:
        """``log p(x_n)`` for each row, ``(n, d) -> (n,)``."""
        return self._model().log_marginal(self._check_X(X))

    def score(self, X) -> float:
        """Mean log-likelihood per sample."""
        return float(self.score_samples(X).mean())

    def posterior(self, X) -> tuple[torch.Tensor, torch.Tensor]:
        """Exact ``p(z|x)``: means ``(n, q)`` and the shared covariance ``(q, q)``."""
        return self._model().posterior(self._check_X(X))

    def transform(self, X) -> torch.Tensor:
        """Posterior means ``E[z|x] = M^{-1} W^T (x - mu)``, ``(n, d) -> (n, q)``."""
        return self.posterior(X)[0]

    def elbo(self, X, q_mean, q_cov) -> torch.Tensor:
        """ELBO of Gaussian ``q(z_n) = N(q_mean[n], q_cov)`` per row (see
        :meth:`LinearGaussianModel.elbo`), ``(n,)``."""
        return self._model().elbo(self._check_X(X), q_mean, q_cov)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` samples ``(n, d)``."""
        return self._model().sample(n, generator)[0]


class MixturePPCA(_EMMixture):
    r"""Mixture of probabilistic PCA models fitted by EM (Tipping & Bishop, 1999).

    .. math::
        p(x) = \sum_{j=1}^K \pi_j\, N(x; \mu_j, W_j W_j^T + \sigma_j^2 I)

    EM is the mixtures' shared loop (:class:`coursekit.mixture.GaussianMixture`'s base
    class: ``n_init`` restarts, convergence when the mean log-likelihood changes by less
    than ``tol``, ``initialize``/``e_step``/``m_step`` for stepping by hand).
    E-step: responsibilities ``r_nj`` (log-sum-exp). M-step: ``pi_j = mean_n r_nj``,
    ``mu_j`` the responsibility-weighted mean, and ``(W_j, sigma_j^2)`` the closed-form
    PPCA solution for the weighted covariance
    ``S_j = sum_n r_nj (x_n - mu_j)(x_n - mu_j)^T / sum_n r_nj``: the exact maximiser of
    the expected complete log-likelihood over the PPCA family, so the log-likelihood
    never decreases.

    Initialisation: means are ``K`` data points chosen by k-means++ seeding
    (:func:`coursekit.functional.kmeans_plusplus`), weights uniform, ``W_j = 0`` and
    ``sigma_j^2`` the data's mean variance. EM finds a local optimum: try several seeds
    or ``n_init > 1``.

    Args:
        n_components: ``K``; n_latent: ``q < d``.
        max_iter, tol, n_init, random_state, device, verbose: as in
            :class:`~coursekit.mixture.GaussianMixture`.
        reg: added to every ``sigma_j^2`` (times the data's mean variance) so that a
            component collapsing onto few points stays proper.

    Fitted attributes: ``weights_ (K,)``, ``means_ (K, d)``, ``W_ (K, d, q)``,
    ``noise_variance_ (K,)``, ``lower_bounds_`` (mean log-likelihood per sample at each
    iteration, before its M-step), ``lower_bound_``, ``n_iter_``, ``converged_``.
    """

    _name = "MixturePPCA"

    def __init__(self, n_components: int, n_latent: int, *, max_iter: int = 200,
                 tol: float = 1e-6, reg: float = 1e-6, n_init: int = 1, random_state=0,
                 device=None, verbose: bool = False):
        self._init_common(n_components, tol, max_iter, n_init, "kmeans", random_state,
                          device, verbose)
        self.n_latent = check_count(n_latent, "n_latent")
        self.reg = check_number(reg, "reg", low=0.0)
        self.weights_ = self.means_ = self.W_ = self.noise_variance_ = None

    def __repr__(self) -> str:
        return f"MixturePPCA(n_components={self.n_components}, n_latent={self.n_latent})"

    def _check_X(self, X, fitting: bool = False) -> torch.Tensor:
        device = self.device if (fitting or not self._is_fitted()) else self._param_device()
        X = as_data(X, "X", device, torch.float64)
        if fitting and X.shape[1] <= self.n_latent:
            raise ValueError(f"n_latent: expected fewer than n_features={X.shape[1]}, "
                             f"got {self.n_latent}")
        if not fitting and self._is_fitted() and X.shape[1] != self.means_.shape[1]:
            raise ValueError(f"X: expected {self.means_.shape[1]} features (as in fit), "
                             f"got {X.shape[1]}")
        return X

    def _initialize(self, X: torch.Tensor, gen: torch.Generator) -> None:
        n, d = X.shape
        K, q = self.n_components, self.n_latent
        self._var_scale = float(X.var(0, correction=0).mean())
        self.means_, _ = F._kmeans_plusplus(X, K, gen)
        self.weights_ = torch.full((K,), 1.0 / K, dtype=X.dtype, device=X.device)
        self.W_ = torch.zeros(K, d, q, dtype=X.dtype, device=X.device)
        self.noise_variance_ = torch.full((K,), self._var_scale, dtype=X.dtype,
                                          device=X.device)

    def _log_prob_components(self, X: torch.Tensor) -> torch.Tensor:
        """``log N(x_n; mu_j, C_j)`` with ``C_j = W_j W_j^T + sigma_j^2 I``, ``(n, K)``."""
        eye = torch.eye(X.shape[1], dtype=X.dtype, device=X.device)
        C = self.W_ @ self.W_.mT + self.noise_variance_[:, None, None] * eye
        return D.MultivariateNormal(self.means_, covariance_matrix=C).log_prob(X[:, None, :])

    def m_step(self, X, log_resp) -> MixturePPCA:
        """M-step from log-responsibilities ``(n, K)`` (class doc); returns ``self``."""
        X = self._check_X(X, fitting=not self._is_fitted())
        if not hasattr(self, "_var_scale"):
            self._var_scale = float(X.var(0, correction=0).mean())
        return self._m_step(X, self._check_log_resp(X, log_resp))

    def _m_step(self, X: torch.Tensor, log_resp: torch.Tensor) -> MixturePPCA:
        resp = log_resp.exp()
        nk = resp.sum(0) + 10 * torch.finfo(X.dtype).eps
        self.weights_ = nk / nk.sum()
        self.means_ = (resp.T @ X) / nk[:, None]
        Ws, s2s = [], []
        for j in range(self.n_components):
            Xc = X - self.means_[j]
            W, s2 = _ppca_closed_form((Xc * resp[:, j:j + 1]).T @ Xc / nk[j], self.n_latent)
            Ws.append(W)
            s2s.append(s2 + self.reg * self._var_scale)
        self.W_ = torch.stack(Ws)
        self.noise_variance_ = torch.tensor(s2s, dtype=X.dtype, device=X.device)
        return self

    def _get_params(self):
        return (self.weights_, self.means_, self.W_, self.noise_variance_)

    def _set_params(self, params) -> None:
        self.weights_, self.means_, self.W_, self.noise_variance_ = params

    def _objective_from(self, mean_ll: float) -> float:
        return mean_ll

    def _n_parameters(self) -> int:
        K, d = self.means_.shape
        q = self.n_latent
        # W_j has d q - q (q - 1) / 2 free entries (rotations of z leave p(x) unchanged)
        return int(K * (d * q - q * (q - 1) // 2 + 1 + d) + K - 1)

    def sample(self, n_samples: int = 1, generator=None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(X, labels)`` of shapes ``(n_samples, d)`` and ``(n_samples,)``:
        ``j ~ Cat(weights_)``, ``z ~ N(0, I_q)``, ``x = mu_j + W_j z + sigma_j eps``."""
        n, gen, labels = self._sample_setup(n_samples, generator)
        mu = self.means_
        kw = {"generator": gen, "device": gen.device, "dtype": mu.dtype}
        z = torch.randn(n, self.n_latent, **kw).to(mu.device)
        eps = torch.randn(n, mu.shape[1], **kw).to(mu.device)
        x = (mu[labels] + (self.W_[labels] @ z.unsqueeze(-1)).squeeze(-1)
             + torch.sqrt(self.noise_variance_[labels])[:, None] * eps)
        return x, labels
