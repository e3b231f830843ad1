"""Mixture models fitted by EM: ``GaussianMixture`` and ``BernoulliMixture``.

Lecture 02 (maximum likelihood, EM and mixture models). The API follows
scikit-learn's ``sklearn.mixture.GaussianMixture`` (same constructor
arguments, fitted attributes and methods, same EM schedule), so a student can
compare the two line by line; the computation is PyTorch, runs on the device
of the data (or ``device=``), and works in log space throughout.

The model (``K`` components, data ``x: (d,)``)::

    z ~ Categorical(weights_)              p(z = k) = pi_k
    x | z = k ~ N(means_[k], covariances_[k])   (GaussianMixture)
    x | z = k ~ prod_j Bernoulli(means_[k, j])   (BernoulliMixture)

EM alternates

* E-step: responsibilities ``r_nk = p(z = k | x_n)``, computed as
  ``log r_nk = log pi_k + log p(x_n | k) - logsumexp_j(log pi_j + log p(x_n | j))``;
* M-step: ``pi_k = N_k / N``, ``mu_k = sum_n r_nk x_n / N_k`` and (Gaussian)
  ``Sigma_k = sum_n r_nk (x_n - mu_k)(x_n - mu_k)^T / N_k + reg_covar I``,
  with ``N_k = sum_n r_nk``.

Each EM iteration cannot decrease the mean log-likelihood; ``lower_bounds_``
records it per iteration so that a lecture can plot the monotone curve, and
the public :meth:`~GaussianMixture.initialize`, :meth:`~GaussianMixture.e_step`
and :meth:`~GaussianMixture.m_step` let a widget replay EM one step at a time::

    gm = GaussianMixture(3, random_state=0).initialize(X)
    for _ in range(10):
        log_resp, mean_ll = gm.e_step(X)
        gm.m_step(X, log_resp)

Scalars (``score``, ``bic``, ``aic``, ``lower_bound_``, the entries of
``lower_bounds_``) are Python floats, as in scikit-learn; arrays are torch tensors.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch

from coursekit import functional as F
from coursekit._validation import (
    as_data,
    as_generator,
    check_choice,
    check_count,
    check_floating_dtype,
    check_number,
)
from coursekit.exceptions import ConvergenceWarning, NotFittedError
from coursekit.functional import LOG_2PI
from coursekit.runtime import get_device

__all__ = ["BernoulliMixture", "ConvergenceWarning", "GaussianMixture", "data_point_means",
           "em_trace", "kmeans", "select_bernoulli_mixture"]

COVARIANCE_TYPES = ("full", "diag", "spherical", "tied")
INIT_PARAMS = ("kmeans", "random")
# rows are processed in chunks of at most this many (rows x K x d) elements: the
# temporaries stay in cache (measured fastest on a 2-core CPU for d=16, K=10)
_CHUNK_ELEMENTS = 2**18
_CHUNK_ELEMENTS_M_STEP = 2**20


# --------------------------------------------------------------------------------------
# k-means
# --------------------------------------------------------------------------------------
def kmeans(X, n_clusters: int, *, n_iter: int = 20, generator=None
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """k-means clustering: k-means++ seeding then Lloyd iterations (until labels are stable).

    Seeding is :func:`coursekit.functional.kmeans_plusplus`. Lloyd alternates
    ``labels = argmin_k ||x - c_k||^2`` and ``c_k = mean of its points``; an empty
    cluster is moved to the point farthest from its centre.

    Args:
        X: ``(n, d)`` tensor.
        n_clusters: ``K <= n``.
        n_iter: maximum number of Lloyd iterations.
        generator: ``torch.Generator``, an int seed or ``None``.

    Returns:
        ``(centers, labels)`` of shapes ``(K, d)`` and ``(n,)`` (int64).
    """
    X = as_data(X, "X")
    n_iter = check_count(n_iter, "n_iter", 0)
    centers, _ = F.kmeans_plusplus(X, n_clusters, generator)
    K = centers.shape[0]
    labels = F._sq_dist(X, centers).argmin(1)
    for _ in range(n_iter):
        counts = torch.bincount(labels, minlength=K).to(X.dtype)
        sums = X.new_zeros(K, X.shape[1]).index_add_(0, labels, X)
        new_centers = sums / counts.clamp_min(1).unsqueeze(1)
        empty = counts == 0
        if bool(empty.any()):
            far = F._sq_dist(X, new_centers).gather(1, labels[:, None]).squeeze(1)
            for k in torch.nonzero(empty).flatten().tolist():
                i = int(far.argmax())
                new_centers[k] = X[i]
                far[i] = -1.0
        centers = new_centers
        new_labels = F._sq_dist(X, centers).argmin(1)
        if torch.equal(new_labels, labels):
            break
        labels = new_labels
    return centers, labels


def data_point_means(x, n_components: int, seed: int) -> torch.Tensor:
    """``n_components`` distinct rows of ``x``, drawn uniformly without replacement with ``seed``.

    A simple EM initialisation (scikit-learn calls it ``"random_from_data"``):
    pass it as ``GaussianMixture(..., means_init=...)``. The rows are the first
    ``K`` of ``torch.randperm(n)`` drawn with a CPU generator seeded with ``seed``.

    Args:
        x: ``(n, d)``; n_components: ``1 <= K <= n``; seed: a non-negative int.

    Returns:
        ``(K, d)`` rows of ``x`` (same dtype and device).
    """
    x = as_data(x, "x")
    n = len(x)
    k = check_count(n_components, "n_components")
    if k > n:
        raise ValueError(f"n_components: expected an int in [1, n={n}], got {n_components!r}")
    gen = as_generator(seed, "seed")
    return x[torch.randperm(n, generator=gen).to(x.device)[:k]]


def _row_chunks(n: int, per_row: int, elements: int = _CHUNK_ELEMENTS):
    step = max(1, elements // max(per_row, 1))
    for start in range(0, n, step):
        yield slice(start, min(n, start + step))


# --------------------------------------------------------------------------------------
# common EM driver
# --------------------------------------------------------------------------------------
class _EMMixture:
    """Shared EM loop: ``n_init`` restarts, convergence on the change of the lower bound."""

    _name = "mixture"

    def _initial_responsibilities(self, X: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Starting responsibilities ``(n, K)``: one-hot k-means labels, or random rows."""
        n, K = X.shape[0], self.n_components
        if self.init_params == "kmeans":
            _, labels = kmeans(X, K, generator=gen)
            return torch.nn.functional.one_hot(labels, K).to(X.dtype)
        resp = F._uniform((n, K), gen, X)
        return resp / resp.sum(1, keepdim=True)
    def _init_common(self, n_components, tol, max_iter, n_init, init_params, random_state,
                     device, verbose):
        self.n_components = check_count(n_components, "n_components", 1)
        self.tol = check_number(tol, "tol", low=0.0)
        self.max_iter = check_count(max_iter, "max_iter", 0)
        self.n_init = check_count(n_init, "n_init", 1)
        self.init_params = check_choice(init_params, "init_params", INIT_PARAMS)
        if not isinstance(random_state, torch.Generator):
            as_generator(random_state)  # validates now; a generator is made at fit time
        self.random_state = random_state
        self.device = None if device is None else get_device(device)
        self.verbose = bool(verbose)
        self._rng: torch.Generator | None = None

    # subclasses implement: _check_X, _initialize(X, gen), e_step, m_step, _get_params,
    # _set_params, _objective_from(mean_ll), _n_parameters, _log_prob_components
    def _param_device(self):
        return self.means_.device

    def _is_fitted(self) -> bool:
        return getattr(self, "means_", None) is not None

    def _require_fitted(self) -> None:
        if not self._is_fitted():
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit(X) "
                                 "(or initialize(X) to step EM by hand) first")

    def _check_n_samples(self, X: torch.Tensor) -> None:
        n = X.shape[0]
        if n < 2:
            raise ValueError(f"X: expected at least 2 samples, got n_samples={n}")
        if self.n_components > n:
            raise ValueError(f"n_components: expected n_components <= n_samples, got "
                             f"n_components={self.n_components} > n_samples={n}")

    def initialize(self, X, generator=None):
        """Set initial parameters from ``X: (n, d)`` per ``init_params`` (and the ``*_init``).

        ``generator`` (a ``torch.Generator`` or seed) defaults to one made from
        ``random_state``. Returns ``self`` so that ``initialize(X).e_step(X)`` chains.
        """
        X = self._check_X(X, fitting=True)
        self._check_n_samples(X)
        gen = self._rng if generator is None and self._rng is not None else None
        if gen is None:
            gen = as_generator(self.random_state if generator is None else generator)
            self._rng = gen
        self._initialize(X, gen)
        return self

    def fit(self, X):
        """Fit by EM (the best of ``n_init`` runs, by final lower bound). ``X: (n, d)``."""
        self.fit_predict(X)
        return self

    def fit_predict(self, X) -> torch.Tensor:
        """Fit, then return the most probable component of every sample, ``(n,)`` int64.

        A final E-step with the selected parameters makes the labels equal to
        ``fit(X).predict(X)``.
        """
        X = self._check_X(X, fitting=True)
        self._check_n_samples(X)
        self._rng = as_generator(self.random_state)
        best_bound, best_params, best_bounds, best_objs = -math.inf, None, [], []
        best_n_iter, best_converged = 0, False
        for init in range(self.n_init):
            self._initialize(X, self._rng)
            bound, bounds, objectives = -math.inf, [], []
            converged, n_iter = False, 0
            for n_iter in range(1, self.max_iter + 1):
                prev = bound
                log_resp, mean_ll = self._e_step(X)
                bound = self._objective_from(mean_ll)
                bounds.append(mean_ll)
                objectives.append(bound)
                self._m_step(X, log_resp)
                if self.verbose:
                    print(f"{self._name} init {init} iter {n_iter}: lower bound {bound:.6f} "
                          f"(change {bound - prev:.3g})")
                if abs(bound - prev) < self.tol:
                    converged = True
                    break
            if self.max_iter == 0:
                bound = self._objective_from(self._e_step(X)[1])
            if bound > best_bound or best_params is None:
                best_bound, best_params = bound, self._get_params()
                best_bounds, best_objs = bounds, objectives
                best_n_iter, best_converged = n_iter, converged
        self._set_params(best_params)
        self.lower_bound_ = float(best_bound)
        self.lower_bounds_ = best_bounds
        self.objectives_ = best_objs
        self.n_iter_ = best_n_iter
        self.converged_ = best_converged
        if not self.converged_ and self.max_iter > 0:
            warnings.warn(
                f"{type(self).__name__}: EM did not converge in max_iter={self.max_iter} "
                f"iterations (tol={self.tol}); increase max_iter or tol",
                ConvergenceWarning, stacklevel=3)
        log_resp, _ = self._e_step(X)
        return log_resp.argmax(1)

    def _weighted_log_prob(self, X: torch.Tensor) -> torch.Tensor:
        """``log pi_k + log p(x_n | k)``, shape ``(n, K)``."""
        return self._log_prob_components(X) + torch.log(self.weights_)

    def e_step(self, X) -> tuple[torch.Tensor, float]:
        r"""E-step: log-responsibilities and the mean log-likelihood of the current parameters.

        .. math::
            \log r_{nk} = \log\pi_k + \log p(x_n|k) - \log p(x_n), \quad
            \log p(x_n) = \mathrm{logsumexp}_k(\log\pi_k + \log p(x_n|k))

        Args:
            X: ``(n, d)``.

        Returns:
            ``(log_resp, mean_log_likelihood)``: ``(n, K)`` tensor and a float.
        """
        self._require_fitted()
        return self._e_step(self._check_X(X))

    def _e_step(self, X: torch.Tensor) -> tuple[torch.Tensor, float]:
        """:meth:`e_step` on data already checked by ``_check_X``."""
        weighted = self._weighted_log_prob(X)
        log_norm = torch.logsumexp(weighted, 1)
        return weighted.sub_(log_norm.unsqueeze(1)), float(log_norm.mean())

    def _check_log_resp(self, X: torch.Tensor, log_resp) -> torch.Tensor:
        if not isinstance(log_resp, torch.Tensor):
            raise TypeError(f"log_resp: expected a torch.Tensor of shape (n, K), "
                            f"got {type(log_resp).__name__}")
        if log_resp.shape != (X.shape[0], self.n_components):
            raise ValueError(f"log_resp: expected shape ({X.shape[0]}, {self.n_components}), "
                             f"got {tuple(log_resp.shape)}")
        return log_resp.to(device=X.device, dtype=X.dtype)

    def score_samples(self, X) -> torch.Tensor:
        """Log-density of each sample, ``log p(x_n) = logsumexp_k(log pi_k + log p(x_n|k))``.

        ``X: (n, d)`` -> ``(n,)``.
        """
        self._require_fitted()
        return torch.logsumexp(self._weighted_log_prob(self._check_X(X)), 1)

    def score(self, X) -> float:
        """Mean log-likelihood per sample (nats), ``(1/n) sum_n log p(x_n)``."""
        return float(self.score_samples(X).mean())

    def predict_proba(self, X) -> torch.Tensor:
        """Posterior ``p(z = k | x_n)``, ``(n, K)``, each row summing to 1."""
        return self.e_step(X)[0].exp()

    def predict(self, X) -> torch.Tensor:
        """Most probable component ``argmax_k p(z = k | x_n)``, ``(n,)`` int64."""
        self._require_fitted()
        return self._weighted_log_prob(self._check_X(X)).argmax(1)

    def _sample_setup(self, n_samples, generator):
        self._require_fitted()
        n = check_count(n_samples, "n_samples", 1)
        if generator is None:
            if self._rng is None:
                self._rng = as_generator(self.random_state)
            gen = self._rng
        else:
            gen = as_generator(generator, "generator")
        weights = self.weights_.detach().to(device=gen.device, dtype=torch.float64)
        labels = torch.multinomial(weights, n, replacement=True, generator=gen)
        return n, gen, labels.to(self._param_device())

    def bic(self, X) -> float:
        """Bayesian information criterion ``-2 n score(X) + p log n`` (lower is better)."""
        X = self._check_X(X)
        n = X.shape[0]
        return -2.0 * self.score(X) * n + self._n_parameters() * math.log(n)

    def aic(self, X) -> float:
        """Akaike information criterion ``-2 n score(X) + 2 p`` (lower is better)."""
        X = self._check_X(X)
        return -2.0 * self.score(X) * X.shape[0] + 2.0 * self._n_parameters()

    def n_parameters(self) -> int:
        """Number of free parameters ``p`` (weights count ``K - 1``)."""
        self._require_fitted()
        return self._n_parameters()


# --------------------------------------------------------------------------------------
# Gaussian mixture
# --------------------------------------------------------------------------------------
class GaussianMixture(_EMMixture):
    r"""Gaussian mixture model fitted by EM, with scikit-learn's API and semantics.

    .. math:: p(x) = \sum_{k=1}^K \pi_k\, N(x; \mu_k, \Sigma_k)

    Args:
        n_components: number of components ``K``.
        covariance_type: ``"full"`` (``(K, d, d)``), ``"diag"`` (``(K, d)``),
            ``"spherical"`` (``(K,)``) or ``"tied"`` (one ``(d, d)`` for all).
        tol: stop when the mean log-likelihood changes by less than this.
        reg_covar: added to the diagonal of every covariance (keeps them positive definite).
        max_iter: maximum EM iterations per initialisation.
        n_init: number of initialisations; the one with the highest final bound is kept.
        init_params: ``"kmeans"`` (k-means++ then Lloyd in torch, hard responsibilities)
            or ``"random"`` (uniform random responsibilities, normalised).
        weights_init: ``(K,)``; means_init: ``(K, d)``; precisions_init: inverse
            covariances in the shape of ``covariance_type``. Given ones replace the
            values computed from the initial responsibilities.
        random_state: ``None``, an int seed or a ``torch.Generator``.
        device: where to compute (default: the device of the data given to ``fit``).
        dtype: floating dtype of the computation (default float64, like scikit-learn).
        verbose: print the lower bound at every iteration.

    Fitted attributes: ``weights_ (K,)``, ``means_ (K, d)``, ``covariances_``,
    ``precisions_cholesky_`` (upper-triangular ``U_k`` with precision ``U_k U_k^T``, or
    ``1/sqrt(variance)`` for diag/spherical), ``precisions_``, ``lower_bound_``,
    ``lower_bounds_`` (mean log-likelihood at each iteration, before its M-step),
    ``n_iter_``, ``converged_``.
    """

    _name = "GaussianMixture"

    def __init__(self, n_components: int = 1, *, covariance_type: str = "full",
                 tol: float = 1e-3, reg_covar: float = 1e-6, max_iter: int = 100,
                 n_init: int = 1, init_params: str = "kmeans", weights_init=None,
                 means_init=None, precisions_init=None, random_state=None, device=None,
                 dtype: torch.dtype = torch.float64, verbose: bool = False):
        self._init_common(n_components, tol, max_iter, n_init, init_params, random_state,
                          device, verbose)
        self.covariance_type = check_choice(covariance_type, "covariance_type",
                                            COVARIANCE_TYPES)
        self.reg_covar = check_number(reg_covar, "reg_covar", low=0.0)
        self.dtype = check_floating_dtype(dtype)
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.weights_ = self.means_ = self.covariances_ = self.precisions_cholesky_ = None

    def __repr__(self) -> str:
        return (f"GaussianMixture(n_components={self.n_components}, "
                f"covariance_type={self.covariance_type!r})")

    # ---------------------------------------------------------------- input checks
    def _check_X(self, X, fitting: bool = False) -> torch.Tensor:
        if fitting or not self._is_fitted():
            device = self.device
        else:
            device = self._param_device()
        X = as_data(X, "X", device, self.dtype)
        if not fitting and self._is_fitted() and X.shape[1] != self.means_.shape[1]:
            raise ValueError(f"X: expected {self.means_.shape[1]} features (as in fit), "
                             f"got shape {tuple(X.shape)}")
        return X

    def _param(self, value, name: str, shape: tuple, like: torch.Tensor) -> torch.Tensor:
        if isinstance(value, torch.Tensor):
            t = value.detach()
        else:
            try:
                t = torch.as_tensor(np.asarray(value, dtype=np.float64))
            except (TypeError, ValueError) as err:
                raise TypeError(f"{name}: expected an array of numbers, got {value!r:.80}") \
                    from err
        if tuple(t.shape) != shape:
            raise ValueError(f"{name}: expected shape {shape}, got {tuple(t.shape)}")
        t = t.to(device=like.device, dtype=like.dtype)
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"{name}: expected finite values, got NaN or inf")
        return t

    def _precisions_shape(self, d: int) -> tuple:
        K = self.n_components
        return {"full": (K, d, d), "diag": (K, d), "spherical": (K,),
                "tied": (d, d)}[self.covariance_type]

    # ---------------------------------------------------------------- parameters
    def _estimate_parameters(self, X: torch.Tensor, resp: torch.Tensor):
        """M-step formulas: ``(N_k, means, covariances)`` from responsibilities ``(n, K)``."""
        eps = torch.finfo(X.dtype).eps
        nk = resp.sum(0) + 10 * eps
        means = (resp.T @ X) / nk.unsqueeze(1)
        ct, K, d = self.covariance_type, self.n_components, X.shape[1]
        # centre the data: covariances are shift invariant and this limits cancellation
        center = X.mean(0)
        Xc = X - center
        mc = means - center
        eye = torch.eye(d, dtype=X.dtype, device=X.device)
        if ct == "full":
            second = X.new_zeros(K * d, d)
            for sl in _row_chunks(X.shape[0], K * d, _CHUNK_ELEMENTS_M_STEP):
                xc, r = Xc[sl], resp[sl]
                weighted = (r.unsqueeze(2) * xc.unsqueeze(1)).reshape(len(xc), K * d)
                second += weighted.T @ xc
            second = second.reshape(K, d, d) / nk.view(K, 1, 1)
            cov = second - mc.unsqueeze(2) * mc.unsqueeze(1)
            cov = 0.5 * (cov + cov.mT) + self.reg_covar * eye
        elif ct == "tied":
            cov = (Xc.T @ Xc - (nk.unsqueeze(1) * mc).T @ mc) / nk.sum()
            cov = 0.5 * (cov + cov.mT) + self.reg_covar * eye
        else:
            var = (resp.T @ (Xc * Xc)) / nk.unsqueeze(1) - mc * mc + self.reg_covar
            cov = var if ct == "diag" else var.mean(1)
        return nk, means, cov

    def _precision_cholesky_from_cov(self, cov: torch.Tensor) -> torch.Tensor:
        msg = ("Fitting the mixture model failed because some components have ill-defined "
               "empirical covariance (for instance caused by singleton or collapsed samples). "
               "Try fewer components, a larger reg_covar, or scaled data"
               + (" (or dtype=torch.float64)." if cov.dtype != torch.float64 else "."))
        if self.covariance_type in ("full", "tied"):
            L, info = torch.linalg.cholesky_ex(cov)
            if bool((info > 0).any()):
                raise ValueError(msg)
            eye = torch.eye(cov.shape[-1], dtype=cov.dtype, device=cov.device)
            eye = eye.expand_as(L) if L.dim() == 3 else eye
            return torch.linalg.solve_triangular(L, eye, upper=False).mT
        if bool((cov <= 0).any()):
            raise ValueError(msg)
        return cov.rsqrt()

    def _precision_cholesky_from_precisions(self, prec: torch.Tensor) -> torch.Tensor:
        if self.covariance_type in ("full", "tied"):
            # upper-triangular U with P = U U^T: Cholesky of the row/column-reversed matrix
            sym = (prec - prec.mT).abs().amax() <= 1e-8 * prec.abs().amax().clamp_min(1e-300)
            flipped = torch.flip(prec, (-2, -1))
            L, info = torch.linalg.cholesky_ex(flipped)
            if not bool(sym) or bool((info > 0).any()):
                raise ValueError("precisions_init: expected symmetric positive definite "
                                 "precision matrices")
            return torch.flip(L, (-2, -1))
        if bool((prec <= 0).any()):
            raise ValueError("precisions_init: expected strictly positive precisions, "
                             f"got min {float(prec.min())}")
        return prec.sqrt()

    def _cov_from_precision_cholesky(self, U: torch.Tensor) -> torch.Tensor:
        if self.covariance_type in ("full", "tied"):
            eye = torch.eye(U.shape[-1], dtype=U.dtype, device=U.device)
            eye = eye.expand_as(U) if U.dim() == 3 else eye
            U_inv = torch.linalg.solve_triangular(U, eye, upper=True)
            return U_inv.mT @ U_inv
        return 1.0 / (U * U)

    @property
    def precisions_(self) -> torch.Tensor | None:
        """Inverse covariances, in the shape of ``covariances_``."""
        U = self.precisions_cholesky_
        if U is None:
            return None
        if self.covariance_type in ("full", "tied"):
            return U @ U.mT
        return U * U

    def _initialize(self, X: torch.Tensor, gen: torch.Generator) -> None:
        n, d = X.shape
        K = self.n_components
        weights = means = cov = None
        need_resp = self.weights_init is None or self.means_init is None \
            or self.precisions_init is None
        if need_resp:
            resp = self._initial_responsibilities(X, gen)
            nk, means, cov = self._estimate_parameters(X, resp)
            weights = nk / n
        if self.weights_init is not None:
            weights = self._param(self.weights_init, "weights_init", (K,), X)
            if bool((weights < 0).any()) or abs(float(weights.sum()) - 1.0) > 1e-6:
                raise ValueError(f"weights_init: expected non-negative weights summing to 1, "
                                 f"got sum {float(weights.sum()):.6g}")
        if self.means_init is not None:
            means = self._param(self.means_init, "means_init", (K, d), X)
        self.weights_, self.means_ = weights, means
        if self.precisions_init is not None:
            prec = self._param(self.precisions_init, "precisions_init",
                               self._precisions_shape(d), X)
            self.precisions_cholesky_ = self._precision_cholesky_from_precisions(prec)
            self.covariances_ = self._cov_from_precision_cholesky(self.precisions_cholesky_)
        else:
            self.covariances_ = cov
            self.precisions_cholesky_ = self._precision_cholesky_from_cov(cov)

    def m_step(self, X, log_resp) -> GaussianMixture:
        r"""M-step: closed-form weights, means and covariances from log-responsibilities.

        .. math::
            N_k = \sum_n r_{nk},\ \pi_k = N_k / N,\ \mu_k = \frac{1}{N_k}\sum_n r_{nk} x_n,\
            \Sigma_k = \frac{1}{N_k}\sum_n r_{nk}(x_n-\mu_k)(x_n-\mu_k)^T + \epsilon I

        Args:
            X: ``(n, d)``; log_resp: ``(n, K)`` from :meth:`e_step`.

        Returns:
            ``self`` (parameters updated in place).
        """
        X = self._check_X(X, fitting=not self._is_fitted())
        return self._m_step(X, self._check_log_resp(X, log_resp))

    def _m_step(self, X: torch.Tensor, log_resp: torch.Tensor) -> GaussianMixture:
        nk, self.means_, self.covariances_ = self._estimate_parameters(X, log_resp.exp())
        self.weights_ = nk / nk.sum()
        self.precisions_cholesky_ = self._precision_cholesky_from_cov(self.covariances_)
        return self

    def _get_params(self):
        return (self.weights_, self.means_, self.covariances_, self.precisions_cholesky_)

    def _set_params(self, params) -> None:
        self.weights_, self.means_, self.covariances_, self.precisions_cholesky_ = params

    def _objective_from(self, mean_ll: float) -> float:
        return mean_ll

    # ---------------------------------------------------------------- densities
    def _log_prob_components(self, X: torch.Tensor) -> torch.Tensor:
        r"""``log N(x_n; mu_k, Sigma_k)``, shape ``(n, K)``.

        With ``Sigma_k^{-1} = U_k U_k^T``: ``-1/2 (d log 2 pi + ||U_k^T (x - mu_k)||^2)
        + sum_j log (U_k)_jj``.
        """
        n, d = X.shape
        K = self.n_components
        U, mu, ct = self.precisions_cholesky_, self.means_, self.covariance_type
        if ct == "full":
            log_det = torch.log(torch.diagonal(U, dim1=-2, dim2=-1)).sum(-1)  # (K,)
            U_cat = U.permute(1, 0, 2).reshape(d, K * d)  # x @ U_cat = [x U_1, ..., x U_K]
            mu_U = torch.einsum("ki,kij->kj", mu, U).reshape(K * d)  # [mu_1 U_1, ...]
            maha = X.new_empty(n, K)
            for sl in _row_chunks(n, K * d):
                y = X[sl] @ U_cat
                y.sub_(mu_U).square_()
                maha[sl] = y.view(-1, K, d).sum(-1)
        elif ct == "tied":
            log_det = torch.log(torch.diagonal(U)).sum().expand(K)
            y = (X @ U).unsqueeze(1) - (mu @ U).unsqueeze(0)
            maha = (y * y).sum(-1)
        elif ct == "diag":
            log_det = torch.log(U).sum(1)
            prec = U * U
            maha = ((X * X) @ prec.T - 2.0 * X @ (mu * prec).T + (mu * mu * prec).sum(1))
        else:  # spherical
            log_det = d * torch.log(U)
            prec = U * U
            maha = ((X * X).sum(1, keepdim=True) - 2.0 * X @ mu.T + (mu * mu).sum(1)) * prec
        return -0.5 * (d * LOG_2PI + maha) + log_det

    def _n_parameters(self) -> int:
        K, d = self.means_.shape
        cov = {"full": K * d * (d + 1) // 2, "diag": K * d, "tied": d * (d + 1) // 2,
               "spherical": K}[self.covariance_type]
        return int(cov + K * d + K - 1)

    def sample(self, n_samples: int = 1, generator=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw ``(X, labels)``: ``labels ~ Cat(weights_)``, ``X | k ~ N(means_[k], Sigma_k)``.

        Args:
            n_samples: number of samples.
            generator: ``torch.Generator`` or seed (default: the model's own generator,
                seeded from ``random_state`` at fit time).

        Returns:
            ``X: (n_samples, d)`` and ``labels: (n_samples,)`` int64, in random order.
        """
        n, gen, labels = self._sample_setup(n_samples, generator)
        mu = self.means_
        eps = torch.randn(n, mu.shape[1], generator=gen, device=gen.device,
                          dtype=mu.dtype).to(mu.device)
        ct, cov = self.covariance_type, self.covariances_
        if ct in ("diag", "spherical"):
            std = cov.sqrt() if ct == "diag" else cov.sqrt().unsqueeze(1)
            return mu[labels] + std[labels] * eps, labels
        L = torch.linalg.cholesky(cov)
        if ct == "tied":
            return mu[labels] + eps @ L.T, labels
        X = mu[labels].clone()
        for k in range(self.n_components):
            mask = labels == k
            X[mask] += eps[mask] @ L[k].T
        return X, labels


def em_trace(mixture: GaussianMixture, X, n_iter: int) -> dict[str, torch.Tensor]:
    r"""Run ``n_iter`` EM iterations from ``mixture``'s current parameters, keeping every step.

    Iteration ``t`` is one :meth:`~GaussianMixture.e_step` (responsibilities
    ``r_nk = pi_k N(x_n; mu_k, Sigma_k) / p(x_n)`` and the mean log-likelihood) and
    one :meth:`~GaussianMixture.m_step`; a last E-step scores the final parameters.
    The mean log-likelihood never decreases along the trace.

    Args:
        mixture: a :class:`GaussianMixture` already initialised
            (:meth:`~GaussianMixture.initialize`) or fitted; it is advanced in place.
        X: ``(n, d)``; n_iter: ``T >= 0``.

    Returns:
        dict of tensors, index 0 = the starting parameters, index ``t`` = after ``t``
        iterations: ``weights`` ``(T+1, K)``, ``means`` ``(T+1, K, d)``,
        ``covariances`` ``(T+1, *covariances_.shape)``, ``resp`` ``(T+1, n, K)``
        (responsibilities under each parameter set) and ``log_likelihood``
        ``(T+1,)`` (mean log-likelihood per point under each parameter set).
    """
    if not isinstance(mixture, GaussianMixture):
        raise TypeError(f"mixture: expected a GaussianMixture, got {type(mixture).__name__}")
    n_iter = check_count(n_iter, "n_iter", 0)
    mixture._require_fitted()
    X = mixture._check_X(X)
    weights, means, covs, resps, lls = [], [], [], [], []
    for t in range(n_iter + 1):
        log_resp, mean_ll = mixture._e_step(X)
        weights.append(mixture.weights_.clone())
        means.append(mixture.means_.clone())
        covs.append(mixture.covariances_.clone())
        resps.append(log_resp.exp())
        lls.append(mean_ll)
        if t < n_iter:
            mixture._m_step(X, log_resp)
    return {
        "weights": torch.stack(weights), "means": torch.stack(means),
        "covariances": torch.stack(covs), "resp": torch.stack(resps),
        "log_likelihood": torch.tensor(lls, dtype=torch.float64),
    }


# --------------------------------------------------------------------------------------
# Bernoulli mixture
# --------------------------------------------------------------------------------------
class BernoulliMixture(_EMMixture):
    r"""Mixture of independent Bernoullis for binary vectors, fitted by (MAP) EM.

    .. math::
        p(x) = \sum_{k=1}^K \pi_k \prod_{j=1}^D \mu_{kj}^{x_j} (1 - \mu_{kj})^{1 - x_j}

    The M-step smooths the pixel probabilities with ``alpha`` pseudo-counts
    (the MAP estimate under a Beta(1 + alpha, 1 + alpha) prior), which keeps
    them away from 0 and 1 so that a test image never gets ``log 0``:

    .. math:: \mu_{kj} = \frac{\sum_n r_{nk} x_{nj} + \alpha}{N_k + 2\alpha}

    EM then never decreases the penalised objective
    ``mean log-likelihood + (alpha / n) sum_kj log(mu_kj (1 - mu_kj))``, recorded in
    ``objectives_`` and used for convergence; ``lower_bounds_`` records the plain mean
    log-likelihood (equal to ``objectives_`` when ``alpha = 0``).

    Args:
        n_components: ``K``.
        max_iter, tol, n_init, random_state, device, verbose: as in :class:`GaussianMixture`.
        alpha: pseudo-count ``>= 0``.
        init_params: ``"kmeans"`` (hard responsibilities from k-means) or ``"random"``.
        dtype: floating dtype of the computation (default float64).

    Fitted attributes: ``weights_ (K,)``, ``means_ (K, D)`` (pixel probabilities),
    ``lower_bound_`` (final penalised objective), ``lower_bounds_``, ``objectives_``,
    ``n_iter_``, ``converged_``.
    """

    _name = "BernoulliMixture"
    _PROB_CLAMP = 1e-12

    def __init__(self, n_components: int, *, max_iter: int = 100, tol: float = 1e-4,
                 alpha: float = 1e-2, n_init: int = 1, init_params: str = "kmeans",
                 random_state=None, device=None, dtype: torch.dtype = torch.float64,
                 verbose: bool = False):
        self._init_common(n_components, tol, max_iter, n_init, init_params, random_state,
                          device, verbose)
        self.alpha = check_number(alpha, "alpha", low=0.0)
        self.dtype = check_floating_dtype(dtype)
        self.weights_ = self.means_ = None
        self._n_fit = None

    def __repr__(self) -> str:
        return f"BernoulliMixture(n_components={self.n_components}, alpha={self.alpha})"

    def _check_X(self, X, fitting: bool = False) -> torch.Tensor:
        device = self.device if (fitting or not self._is_fitted()) else self._param_device()
        X = as_data(X, "X", device, self.dtype)
        if bool(((X != 0) & (X != 1)).any()):
            raise ValueError("X: expected binary values in {0, 1} (binarise the data first, "
                             "e.g. load_digits(binarize='static'))")
        if not fitting and self._is_fitted() and X.shape[1] != self.means_.shape[1]:
            raise ValueError(f"X: expected {self.means_.shape[1]} features (as in fit), "
                             f"got shape {tuple(X.shape)}")
        return X

    def _log_means(self):
        mu = self.means_.clamp(self._PROB_CLAMP, 1 - self._PROB_CLAMP)
        return torch.log(mu), torch.log1p(-mu)

    def _log_prob_components(self, X: torch.Tensor) -> torch.Tensor:
        r"""``log p(x_n | k) = x_n . log mu_k + (1 - x_n) . log(1 - mu_k)``, ``(n, K)``."""
        log_mu, log_1m = self._log_means()
        return X @ (log_mu - log_1m).T + log_1m.sum(1)

    def _log_prior(self) -> float:
        if self.alpha == 0:
            return 0.0
        log_mu, log_1m = self._log_means()
        return float(self.alpha * (log_mu + log_1m).sum())

    def _objective_from(self, mean_ll: float) -> float:
        return mean_ll + self._log_prior() / self._n_fit

    def _initialize(self, X: torch.Tensor, gen: torch.Generator) -> None:
        self._n_fit = X.shape[0]
        self._m_step_resp(X, self._initial_responsibilities(X, gen))

    def _m_step_resp(self, X: torch.Tensor, resp: torch.Tensor) -> None:
        nk = resp.sum(0) + 10 * torch.finfo(X.dtype).eps
        self.weights_ = nk / nk.sum()
        self.means_ = (resp.T @ X + self.alpha) / (nk + 2 * self.alpha).unsqueeze(1)

    def m_step(self, X, log_resp) -> BernoulliMixture:
        r"""M-step: ``pi_k = N_k / N``, ``mu_kj = (sum_n r_nk x_nj + alpha) / (N_k + 2 alpha)``.

        Args:
            X: ``(n, D)`` binary; log_resp: ``(n, K)`` from :meth:`e_step`.

        Returns:
            ``self``.
        """
        X = self._check_X(X, fitting=not self._is_fitted())
        return self._m_step(X, self._check_log_resp(X, log_resp))

    def _m_step(self, X: torch.Tensor, log_resp: torch.Tensor) -> BernoulliMixture:
        self._n_fit = X.shape[0]
        self._m_step_resp(X, log_resp.exp())
        return self

    def _get_params(self):
        return (self.weights_, self.means_)

    def _set_params(self, params) -> None:
        self.weights_, self.means_ = params

    def _n_parameters(self) -> int:
        K, D = self.means_.shape
        return int(K * D + K - 1)

    def sample(self, n_samples: int = 1, generator=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw ``(X, labels)``: ``labels ~ Cat(weights_)``, ``X_j | k ~ Bernoulli(means_[k, j])``.

        Returns:
            ``X: (n_samples, D)`` in {0, 1} (float) and ``labels: (n_samples,)`` int64.
        """
        n, gen, labels = self._sample_setup(n_samples, generator)
        u = torch.rand(n, self.means_.shape[1], generator=gen, device=gen.device,
                       dtype=self.means_.dtype).to(self.means_.device)
        return (u < self.means_[labels]).to(self.means_.dtype), labels


def select_bernoulli_mixture(x_train, x_val, candidates=(1, 5, 10, 20, 40), *, n_init: int = 2,
                             max_iter: int = 200, random_state: int = 0, progress: bool = True):
    """Fit a :class:`BernoulliMixture` for each K in ``candidates``; keep the best on ``x_val``.

    This is the course's density baseline on binarised digits (lecture 02
    introduces it, later lectures compare against it), so every lecture calls
    this one function with the same defaults and reports the same number.

    Args:
        x_train, x_val: binary data ``(n, d)``.
        candidates: numbers of components to try.

    Returns:
        ``(model, table)``: the model with the lowest validation NLL and
        ``{K: (train_nll, val_nll)}`` in nats per example (NLL = -``score``).
    """
    from tqdm.auto import tqdm

    candidates = tuple(candidates)
    if not candidates:
        raise ValueError("candidates: expected at least one number of components, got none")
    table, models = {}, {}
    for k in tqdm(candidates, desc="Bernoulli mixtures", disable=not progress):
        model = BernoulliMixture(k, n_init=n_init, max_iter=max_iter,
                                 random_state=random_state).fit(x_train)
        models[k] = model
        table[k] = (-model.score(x_train), -model.score(x_val))
    best = min(table, key=lambda k: table[k][1])
    return models[best], table
