r"""Probabilistic PCA and mixtures of PPCA (Tipping & Bishop, 1999), fitted to data.

.. math:: p(x) = N(x; \mu, W W^T + \sigma^2 I_d)

:class:`PPCA` has a closed-form maximum-likelihood fit and an EM fit;
:class:`MixturePPCA` runs the mixtures' shared EM loop
(:class:`coursekit.mixture.GaussianMixture`'s base) with a closed-form PPCA M-step
per component. Both are scikit-learn estimators computing in torch
(:class:`coursekit.estimator.TorchEstimator`): ``get_params``/``clone``/pipelines,
parameters validated in ``fit``, ``random_state``, fitted attributes with a trailing
underscore, ``NotFittedError`` before ``fit``. **Array in, same array out**: fitted
on NumPy, ``W_``, ``mean_``, ``means_``, ... are NumPy arrays (float32 stays float32);
fitted on a tensor, they are tensors on its device; each method answers in the kind
of its own ``X``.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import torch
import torch.distributions as D
from sklearn.base import DensityMixin, TransformerMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions

from coursekit import functional as F
from coursekit._validation import check_choice
from coursekit.estimator import FittedArray, TorchEstimator
from coursekit.latent.linear_gaussian import LinearGaussianModel
from coursekit.mixture import _EMMixture

__all__ = ["MixturePPCA", "PPCA"]

METHODS = ("closed_form", "em")


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


class PPCA(TransformerMixin, DensityMixin, TorchEstimator):
    r"""Probabilistic PCA (Tipping & Bishop, 1999).

    .. math::
        z \sim N(0, I_q),\quad x \mid z \sim N(W z + \mu, \sigma^2 I_d),\quad
        p(x) = N(x; \mu, W W^T + \sigma^2 I_d)

    ``method="closed_form"`` uses the maximum-likelihood solution: with
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

    Attributes after ``fit``: ``W_`` ``(d, q)``, ``noise_variance_`` (float), ``mean_``
    ``(d,)``, ``n_features_in_``, ``n_iter_``, ``converged_``, ``lower_bounds_`` (mean
    ELBO per sample after each M-step, with the ``q`` of the preceding E-step) and
    ``log_likelihoods_`` (mean log-likelihood after each M-step); the closed form
    records one entry in each. Coordinate ascent gives
    ``log_likelihoods_[t-1] <= lower_bounds_[t] <= log_likelihoods_[t]``.

    Args:
        n_components: latent dimension ``q`` with ``1 <= q < d``.
        method: ``"closed_form"`` or ``"em"`` (``fit(X, method=...)`` overrides it for
            one fit, as the lectures call it).
        max_iter, tol: EM stops when the mean log-likelihood improves by less than ``tol``.
        random_state: ``None``, an int, a ``numpy.random.RandomState`` or a
            ``torch.Generator``: draws EM's random initial ``W`` (the closed form uses no
            randomness).
        device, dtype: as in :class:`coursekit.mixture.GaussianMixture`.
    """

    _parameter_constraints: dict = {
        **TorchEstimator._parameter_constraints,
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "method": [StrOptions(set(METHODS))],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0.0, None, closed="left")],
    }

    W_ = FittedArray()
    mean_ = FittedArray()

    def __init__(self, n_components: int = 1, *, method: str = "closed_form",
                 max_iter: int = 1000, tol: float = 1e-8, random_state=0, device=None,
                 dtype: torch.dtype | None = None):
        self.n_components = n_components
        self.method = method
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.device = device
        self.dtype = dtype

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    def _expected_failed_checks(self) -> dict[str, str]:
        return {"check_transformer_n_iter": "the default closed-form fit does no iterations "
                                            "(n_iter_ = 0); EM is method='em'"}

    # -- fitting -----------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, method: str | None = None) -> PPCA:
        """Fit to ``X`` ``(n, d)`` by ``"closed_form"`` maximum likelihood or ``"em"``
        (``method`` overrides the constructor's ``method`` for this fit; ``y`` is ignored).
        """
        method = self.method if method is None else check_choice(method, "method", METHODS)
        X = self._fit_input(X, min_samples=2)
        n, d = X.shape
        q = self.n_components
        if d <= q:
            raise ValueError(f"n_components: expected fewer than n_features={d}, got {q} "
                             f"(n_features = {d})")
        mean = X.mean(0)
        Xc = X - mean
        S = Xc.T @ Xc / n
        if method == "closed_form":
            W, self.noise_variance_ = _ppca_closed_form(S, q)
            self._fitted.update(W_=W, mean_=mean)
            self.n_iter_, self.converged_ = 0, True
            # with the exact posterior as q the ELBO equals the log-likelihood
            self.log_likelihoods_ = [self._mean_ll(X)]
            self.lower_bounds_ = list(self.log_likelihoods_)
            return self
        gen = self._generator()
        scale = math.sqrt(float(torch.diagonal(S).mean()))
        W = scale * torch.randn(d, q, generator=gen, dtype=X.dtype).to(X.device)
        s2 = float(torch.diagonal(S).mean())
        self._fitted.update(W_=W, mean_=mean)
        self.noise_variance_ = s2
        self.lower_bounds_, self.log_likelihoods_ = [], []
        self.converged_ = False
        eye = torch.eye(q, dtype=X.dtype, device=X.device)
        for it in range(self.max_iter):
            # E-step: exact posterior N(Ez, s2 M^-1) for every point
            M = W.T @ W + s2 * eye
            Minv = torch.linalg.inv(M)
            Ez = Xc @ W @ Minv                         # (n, q)
            cov = s2 * Minv                            # (q, q), shared
            sum_Ezz = n * cov + Ez.T @ Ez              # sum_n E[z z^T]
            # M-step
            W = (Xc.T @ Ez) @ torch.linalg.inv(sum_Ezz)
            s2 = float(((Xc * Xc).sum() - 2.0 * (Ez * (Xc @ W)).sum()
                        + (sum_Ezz * (W.T @ W)).sum()) / (n * d))
            self._fitted["W_"], self.noise_variance_ = W, s2
            model = self._model()
            self.lower_bounds_.append(float(model.elbo(X, Ez, cov).mean()))
            self.log_likelihoods_.append(float(model.log_marginal(X).mean()))
            self.n_iter_ = it + 1
            if it > 0 and abs(self.log_likelihoods_[-1] - self.log_likelihoods_[-2]) < self.tol:
                self.converged_ = True
                break
        return self

    # -- the fitted model ----------------------------------------------------
    def _model(self) -> LinearGaussianModel:
        self._require_fitted()
        return LinearGaussianModel(self._fitted["W_"], self._fitted["mean_"],
                                   self.noise_variance_)

    def _mean_ll(self, X: torch.Tensor) -> float:
        return float(self._model().log_marginal(X).mean())

    @property
    def lower_bound_(self) -> float:
        """The last entry of ``lower_bounds_``."""
        return self.lower_bounds_[-1]

    @property
    def covariance_(self):
        """``W W^T + sigma^2 I``, ``(d, d)``."""
        return self._export(self._model().covariance)

    def score_samples(self, X):
        """``log p(x_n)`` for each row, ``(n, d) -> (n,)``."""
        return self._output(self._model().log_marginal(self._input(X)), X)

    def score(self, X, y=None) -> float:
        """Mean log-likelihood per sample; ``y`` is ignored."""
        return self._mean_ll(self._input(X))

    def posterior(self, X) -> tuple:
        """Exact ``p(z|x)``: means ``(n, q)`` and the shared covariance ``(q, q)``."""
        mean, cov = self._model().posterior(self._input(X))
        return self._output(mean, X), self._output(cov, X)

    def transform(self, X):
        """Posterior means ``E[z|x] = M^{-1} W^T (x - mu)``, ``(n, d) -> (n, q)``."""
        return self._output(self._model().posterior(self._input(X))[0], X)

    def elbo(self, X, q_mean, q_cov):
        """ELBO of Gaussian ``q(z_n) = N(q_mean[n], q_cov)`` per row (see
        :meth:`LinearGaussianModel.elbo`), ``(n,)``."""
        Xt = self._input(X)
        q_mean, q_cov = (torch.as_tensor(v).to(device=Xt.device, dtype=Xt.dtype)
                         for v in (q_mean, q_cov))
        return self._output(self._model().elbo(Xt, q_mean, q_cov), X)

    def sample(self, n: int, generator: torch.Generator | None = None):
        """``n`` samples ``(n, d)`` (in the kind of the fitted attributes); ``generator``
        defaults to one made from ``random_state``."""
        return self._output(self._model().sample(n, self._generator(generator))[0], None)


class MixturePPCA(_EMMixture):
    r"""Mixture of probabilistic PCA models fitted by EM (Tipping & Bishop, 1999).

    .. math::
        p(x) = \sum_{j=1}^K \pi_j\, N(x; \mu_j, W_j W_j^T + \sigma_j^2 I)

    EM is the mixtures' shared loop (:class:`coursekit.mixture.GaussianMixture`'s base
    class: ``n_init`` restarts or ``warm_start``, convergence when the mean log-likelihood
    changes by less than ``tol``, ``initialize``/``e_step``/``m_step`` for stepping by
    hand). E-step: responsibilities ``r_nj`` (log-sum-exp). M-step: ``pi_j = mean_n r_nj``,
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
        max_iter, tol, n_init, random_state, warm_start, verbose, verbose_interval, device,
            dtype: as in :class:`~coursekit.mixture.GaussianMixture`.
        reg: added to every ``sigma_j^2`` (times the data's mean variance) so that a
            component collapsing onto few points stays proper.

    Fitted attributes (NumPy arrays or tensors, as the ``X`` given to ``fit``):
    ``weights_ (K,)``, ``means_ (K, d)``, ``W_ (K, d, q)``, ``noise_variance_ (K,)``;
    ``n_features_in_``, ``lower_bounds_`` (mean log-likelihood per sample at each
    iteration, before its M-step), ``lower_bound_``, ``n_iter_``, ``converged_``.
    """

    _name = "MixturePPCA"
    _param_names = ("weights_", "means_", "W_", "noise_variance_")
    _parameter_constraints: dict = {
        **_EMMixture._parameter_constraints,
        "n_latent": [Interval(Integral, 1, None, closed="left")],
        "reg": [Interval(Real, 0.0, None, closed="left")],
    }

    weights_ = FittedArray()
    means_ = FittedArray()
    W_ = FittedArray()
    noise_variance_ = FittedArray()

    def __init__(self, n_components: int = 1, n_latent: int = 1, *, max_iter: int = 200,
                 tol: float = 1e-6, reg: float = 1e-6, n_init: int = 1, random_state=0,
                 warm_start: bool = False, verbose: int = 0, verbose_interval: int = 10,
                 device=None, dtype: torch.dtype | None = None):
        self.n_components = n_components
        self.n_latent = n_latent
        self.max_iter = max_iter
        self.tol = tol
        self.reg = reg
        self.n_init = n_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.device = device
        self.dtype = dtype

    def _start_fit(self, X: torch.Tensor) -> None:
        d = X.shape[1]
        if d <= self.n_latent:
            raise ValueError(f"n_latent: expected fewer than n_features={d}, "
                             f"got {self.n_latent} (n_features = {d})")
        self._var_scale = float(X.var(0, correction=0).mean())

    def _initialize(self, X: torch.Tensor, gen: torch.Generator) -> None:
        n, d = X.shape
        K, q = self.n_components, self.n_latent
        means, _ = F._kmeans_plusplus(X, K, gen)
        kw = {"dtype": X.dtype, "device": X.device}
        self._set_params((torch.full((K,), 1.0 / K, **kw), means, torch.zeros(K, d, q, **kw),
                          torch.full((K,), self._var_scale, **kw)))

    def _log_prob_components(self, X: torch.Tensor) -> torch.Tensor:
        """``log N(x_n; mu_j, C_j)`` with ``C_j = W_j W_j^T + sigma_j^2 I``, ``(n, K)``."""
        _, means, W, s2 = self._get_params()
        eye = torch.eye(X.shape[1], dtype=X.dtype, device=X.device)
        C = W @ W.mT + s2[:, None, None] * eye
        return D.MultivariateNormal(means, covariance_matrix=C).log_prob(X[:, None, :])

    def _m_step(self, X: torch.Tensor, log_resp: torch.Tensor) -> MixturePPCA:
        """M-step from log-responsibilities ``(n, K)`` (class doc); returns ``self``."""
        resp = log_resp.exp()
        nk = resp.sum(0) + 10 * torch.finfo(X.dtype).eps
        means = (resp.T @ X) / nk[:, None]
        Ws, s2s = [], []
        for j in range(self.n_components):
            Xc = X - means[j]
            W, s2 = _ppca_closed_form((Xc * resp[:, j:j + 1]).T @ Xc / nk[j], self.n_latent)
            Ws.append(W)
            s2s.append(s2 + self.reg * self._var_scale)
        self._set_params((nk / nk.sum(), means, torch.stack(Ws),
                          torch.tensor(s2s, dtype=X.dtype, device=X.device)))
        return self

    def _objective_from(self, mean_ll: float) -> float:
        return mean_ll

    def _n_parameters(self) -> int:
        K, d = self._fitted["means_"].shape
        q = self.n_latent
        # W_j has d q - q (q - 1) / 2 free entries (rotations of z leave p(x) unchanged)
        return int(K * (d * q - q * (q - 1) // 2 + 1 + d) + K - 1)

    def sample(self, n_samples: int = 1, generator=None) -> tuple:
        """``(X, labels)`` of shapes ``(n_samples, d)`` and ``(n_samples,)``:
        ``j ~ Cat(weights_)``, ``z ~ N(0, I_q)``, ``x = mu_j + W_j z + sigma_j eps``."""
        n, gen, labels = self._sample_setup(n_samples, generator)
        _, mu, W, s2 = self._get_params()
        kw = {"generator": gen, "device": gen.device, "dtype": mu.dtype}
        z = torch.randn(n, self.n_latent, **kw).to(mu.device)
        eps = torch.randn(n, mu.shape[1], **kw).to(mu.device)
        x = (mu[labels] + (W[labels] @ z.unsqueeze(-1)).squeeze(-1)
             + torch.sqrt(s2[labels])[:, None] * eps)
        return self._output(x, None), self._output(labels, None)
