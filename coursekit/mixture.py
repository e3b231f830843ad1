"""Mixture models fitted by EM: ``GaussianMixture`` and ``BernoulliMixture``.

Lecture 02 (maximum likelihood, EM and mixture models). ``GaussianMixture`` *is* a
scikit-learn estimator (:class:`coursekit.estimator.TorchEstimator`: ``get_params``,
``clone``, ``Pipeline``, ``GridSearchCV``, parameters validated in ``fit``) with the
constructor arguments, fitted attributes, methods and EM schedule of
``sklearn.mixture.GaussianMixture``, so a student can compare the two line by line;
the computation is PyTorch, runs on the device of the data (or ``device=``), and works
in log space throughout.

**Array in, same array out** (the rule of :mod:`coursekit.estimator`): fitted on a
NumPy array, the fitted attributes (``weights_``, ``means_``, ``covariances_``, ...)
are NumPy arrays; fitted on a tensor, they are tensors on the tensor's device. The
dtype follows scikit-learn (float32 stays float32, other inputs become float64)
unless ``dtype=`` is given. Each method answers in the kind of its own ``X``
(``predict(X_numpy)`` is a NumPy array, ``predict(X_tensor)`` a tensor); ``sample``
answers in the kind of the fitted attributes. Scalars (``score``, ``bic``, ``aic``,
``lower_bound_``, the entries of ``lower_bounds_``) are Python floats.

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
"""

from __future__ import annotations

import math
import time
import warnings
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import DensityMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions

from coursekit import functional as F
from coursekit._validation import as_data, as_generator, check_count
from coursekit.estimator import FittedArray, TorchEstimator
from coursekit.exceptions import ConvergenceWarning, NotFittedError
from coursekit.functional import LOG_2PI

__all__ = ["BernoulliMixture", "ConvergenceWarning", "GaussianMixture", "NotFittedError",
           "data_point_means", "em_trace", "kmeans", "select_bernoulli_mixture"]

COVARIANCE_TYPES = ("full", "diag", "spherical", "tied")
INIT_PARAMS = ("kmeans", "k-means++", "random", "random_from_data")
# rows are processed in chunks of at most this many (rows x K x d) elements: the
# temporaries stay in cache (measured fastest on a 2-core CPU for d=16, K=10)
_CHUNK_ELEMENTS = 2**18
_CHUNK_ELEMENTS_M_STEP = 2**20
# largest cached feature matrix (bytes) for the fast float64 EM path of full/diag mixtures
_FEATURE_BYTES = 2**28


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
class _EMMixture(DensityMixin, TorchEstimator):
    """Shared EM loop: ``n_init`` restarts (or a warm start), convergence on the change of
    the objective, verbose progress; subclasses supply the model.

    Subclasses implement ``_initialize(X, gen)``, ``_e_step``-ready ``_log_prob_components``,
    ``_m_step(X, log_resp)``, ``_param_names`` (the fitted arrays forming the parameter
    set), ``_objective_from(mean_ll)``, ``_n_parameters`` and may override
    ``_prepare_X(X)`` (checks/transforms every ``X`` tensor) and ``_start_fit(X)``.
    """

    _name = "mixture"
    _param_names: tuple[str, ...] = ()
    _parameter_constraints: dict = {
        **TorchEstimator._parameter_constraints,
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0.0, None, closed="left")],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "warm_start": ["boolean"],
        "verbose": ["verbose"],
        "verbose_interval": [Interval(Integral, 1, None, closed="left")],
    }

    # ----------------------------------------------------------------- hooks
    def _prepare_X(self, X: torch.Tensor) -> torch.Tensor:
        """Model-specific checks/transforms of a validated ``(n, d)`` tensor."""
        return X

    def _start_fit(self, X: torch.Tensor) -> None:
        """Called once per ``fit``/``initialize`` with the training data."""

    def _make_fit_cache(self, X: torch.Tensor):
        """Data-only quantities reused by every EM iteration of one ``fit`` (or None)."""
        return None

    def _cached(self, X: torch.Tensor):
        """The fit cache if it was made for this very tensor ``X``, else None."""
        cache = self.__dict__.get("_fit_cache")
        return cache if cache is not None and cache["X"] is X else None

    def _fit_X(self, X) -> torch.Tensor:
        Xt = self._prepare_X(self._fit_input(X))
        n = Xt.shape[0]
        if n < 2:
            raise ValueError(f"X: expected at least 2 samples, got n_samples={n}")
        if self.n_components > n:
            raise ValueError(f"n_components: expected n_components <= n_samples, got "
                             f"n_components={self.n_components} > n_samples={n}")
        self._start_fit(Xt)
        return Xt

    def _X(self, X) -> torch.Tensor:
        return self._prepare_X(self._input(X))

    def _get_params(self) -> tuple[torch.Tensor, ...]:
        return tuple(self._fitted[k] for k in self._param_names)

    def _set_params(self, params) -> None:
        self._fitted.update(zip(self._param_names, params))

    def _initial_responsibilities(self, X: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Starting responsibilities ``(n, K)`` per ``init_params`` (scikit-learn's options):

        * ``"kmeans"``: one-hot labels of k-means (k-means++ seeding, Lloyd iterations);
        * ``"k-means++"``: only the ``K`` k-means++ seeds, one per component (one-hot);
        * ``"random"``: uniform random rows, normalised;
        * ``"random_from_data"``: ``K`` distinct data points drawn uniformly, one per
          component (one-hot); every other row has no responsibility.
        """
        n, K = X.shape[0], self.n_components
        init = self.init_params
        if init == "kmeans":
            _, labels = kmeans(X, K, generator=gen)
            return torch.nn.functional.one_hot(labels, K).to(X.dtype)
        if init == "random":
            resp = F._uniform((n, K), gen, X)
            return resp / resp.sum(1, keepdim=True)
        if init == "k-means++":
            _, idx = F._kmeans_plusplus(X, K, gen)
        else:  # random_from_data
            idx = torch.randperm(n, generator=gen, device=gen.device)[:K].to(X.device)
        resp = X.new_zeros(n, K)
        resp[idx, torch.arange(K, device=X.device)] = 1.0
        return resp

    # ----------------------------------------------------------------- fitting
    def initialize(self, X, generator=None):
        """Validate the parameters and set initial ones from ``X: (n, d)`` per ``init_params``
        (and the ``*_init`` arguments), without EM iterations.

        ``generator`` (a ``torch.Generator`` or an int seed) defaults to one made from
        ``random_state``. Returns ``self`` so that ``initialize(X).e_step(X)`` chains.
        """
        self._validate_params()
        Xt = self._fit_X(X)
        self._initialize(Xt, self._generator(generator))
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit by EM (the best of ``n_init`` runs, by final objective). ``X: (n, d)``;
        ``y`` is ignored. With ``warm_start=True`` a fitted model continues from its
        parameters (one run of at most ``max_iter`` iterations). Returns ``self``."""
        self._fit(X)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_predict(self, X, y=None):
        """Fit, then return the most probable component of every sample, ``(n,)`` int64.

        A final E-step with the selected parameters makes the labels equal to
        ``fit(X).predict(X)``. ``y`` is ignored.
        """
        Xt = self._fit(X)
        return self._output(self._weighted_log_prob(Xt).argmax(1), X)

    def _fit(self, X) -> torch.Tensor:
        warm = self.warm_start and self.__sklearn_is_fitted__()
        if warm:
            # after initialize() there is no bound yet: continue from -inf
            previous = self._get_params()
            prev_bound = self.__dict__.get("lower_bound_", -math.inf)
            d_prev = self.n_features_in_
        Xt = self._fit_X(X)
        if warm:
            if Xt.shape[1] != d_prev:
                raise ValueError(f"X: expected {d_prev} features to continue the warm start, "
                                 f"got {Xt.shape[1]}")
            previous = [p.to(device=Xt.device, dtype=Xt.dtype) if p.is_floating_point()
                        else p.to(Xt.device) for p in previous]
        gen = None if warm else self._generator()
        self._fit_cache = self._make_fit_cache(Xt)
        try:
            best = self._em_runs(Xt, warm, previous if warm else None,
                                 prev_bound if warm else -math.inf, gen)
        finally:
            del self._fit_cache
        bound, params, bounds, objectives, n_iter, converged = best
        self._set_params(params)
        self.lower_bound_ = float(bound)
        self.lower_bounds_ = bounds
        self.objectives_ = objectives
        self.n_iter_ = n_iter
        self.converged_ = converged
        if not converged and self.max_iter > 0:
            warnings.warn(
                f"{type(self).__name__}: EM did not converge in max_iter={self.max_iter} "
                f"iterations (tol={self.tol}); increase max_iter or tol",
                ConvergenceWarning, stacklevel=4)
        return Xt

    def _em_runs(self, Xt, warm, previous, prev_bound, gen):
        """The EM runs of one fit: ``(bound, params, bounds, objectives, n_iter, converged)``
        of the best."""
        best = None
        for init in range(1 if warm else self.n_init):
            t0 = t_iter = time.perf_counter()
            if self.verbose:
                print(f"{self._name}: initialization {init}")
            if warm:
                self._set_params(previous)
            else:
                self._initialize(Xt, gen)
            bound = prev_bound
            bounds, objectives, converged, n_iter = [], [], False, 0
            for n_iter in range(1, self.max_iter + 1):
                prev = bound
                log_resp, mean_ll = self._e_step(Xt)
                bound = self._objective_from(mean_ll)
                bounds.append(mean_ll)
                objectives.append(bound)
                self._m_step(Xt, log_resp)
                if self.verbose and n_iter % self.verbose_interval == 0:
                    now = time.perf_counter()
                    extra = (f", {now - t_iter:.3f} s, objective {bound:.6f}"
                             if self.verbose > 1 else "")
                    print(f"  iteration {n_iter}: change {bound - prev:.3g}{extra}")
                    t_iter = now
                if abs(bound - prev) < self.tol:
                    converged = True
                    break
            if self.max_iter == 0:
                bound = self._objective_from(self._e_step(Xt)[1])
            if self.verbose:
                extra = (f" in {time.perf_counter() - t0:.3f} s, objective {bound:.6f}"
                         if self.verbose > 1 else "")
                print(f"{self._name}: initialization {init} "
                      f"{'converged' if converged else 'did not converge'}{extra}")
            if best is None or bound > best[0]:
                best = (bound, self._get_params(), bounds, objectives, n_iter, converged)
        return best

    # ----------------------------------------------------------------- E-step and scores
    def _weighted_log_prob(self, X: torch.Tensor) -> torch.Tensor:
        """``log pi_k + log p(x_n | k)``, shape ``(n, K)``."""
        return self._log_prob_components(X) + torch.log(self._fitted["weights_"])

    def e_step(self, X) -> tuple:
        r"""E-step: log-responsibilities and the mean log-likelihood of the current parameters.

        .. math::
            \log r_{nk} = \log\pi_k + \log p(x_n|k) - \log p(x_n), \quad
            \log p(x_n) = \mathrm{logsumexp}_k(\log\pi_k + \log p(x_n|k))

        Args:
            X: ``(n, d)``.

        Returns:
            ``(log_resp, mean_log_likelihood)``: ``(n, K)`` (NumPy or tensor, as ``X``)
            and a float.
        """
        log_resp, mean_ll = self._e_step(self._X(X))
        return self._output(log_resp, X), mean_ll

    def _e_step(self, X: torch.Tensor) -> tuple[torch.Tensor, float]:
        """:meth:`e_step` on a checked tensor."""
        weighted = self._weighted_log_prob(X)
        log_norm = torch.logsumexp(weighted, 1)
        return weighted.sub_(log_norm.unsqueeze(1)), float(log_norm.mean())

    def m_step(self, X, log_resp):
        r"""M-step: the parameters maximising the expected complete log-likelihood under
        ``exp(log_resp)``, from ``X: (n, d)`` and ``log_resp: (n, K)`` (:meth:`e_step`).

        On a model that is neither fitted nor initialised, this validates the parameters
        and takes ``X`` as the training data. Returns ``self`` (updated in place).
        """
        if self.__sklearn_is_fitted__():
            Xt = self._X(X)
        else:
            self._validate_params()
            Xt = self._fit_X(X)
        return self._m_step(Xt, self._check_log_resp(Xt, log_resp))

    def _check_log_resp(self, X: torch.Tensor, log_resp) -> torch.Tensor:
        if not isinstance(log_resp, (torch.Tensor, np.ndarray)):
            raise TypeError(f"log_resp: expected a torch.Tensor or NumPy array of shape "
                            f"(n, K), got {type(log_resp).__name__}")
        if tuple(log_resp.shape) != (X.shape[0], self.n_components):
            raise ValueError(f"log_resp: expected shape ({X.shape[0]}, {self.n_components}), "
                             f"got {tuple(log_resp.shape)}")
        return torch.as_tensor(log_resp).to(device=X.device, dtype=X.dtype)

    def score_samples(self, X):
        """Log-density of each sample, ``log p(x_n) = logsumexp_k(log pi_k + log p(x_n|k))``.

        ``X: (n, d)`` -> ``(n,)``.
        """
        return self._output(torch.logsumexp(self._weighted_log_prob(self._X(X)), 1), X)

    def score(self, X, y=None) -> float:
        """Mean log-likelihood per sample (nats), ``(1/n) sum_n log p(x_n)``; ``y`` ignored."""
        return float(torch.logsumexp(self._weighted_log_prob(self._X(X)), 1).mean())

    def predict_proba(self, X):
        """Posterior ``p(z = k | x_n)``, ``(n, K)``, each row summing to 1."""
        return self._output(self._e_step(self._X(X))[0].exp_(), X)

    def predict(self, X):
        """Most probable component ``argmax_k p(z = k | x_n)``, ``(n,)`` int64."""
        return self._output(self._weighted_log_prob(self._X(X)).argmax(1), X)

    def _sample_setup(self, n_samples, generator):
        self._require_fitted()
        n = check_count(n_samples, "n_samples", 1)
        gen = self._generator(generator)
        weights = self._fitted["weights_"].detach().to(device=gen.device, dtype=torch.float64)
        labels = torch.multinomial(weights, n, replacement=True, generator=gen)
        return n, gen, labels.to(self._device)

    def bic(self, X) -> float:
        """Bayesian information criterion ``-2 n score(X) + p log n`` (lower is better)."""
        Xt = self._X(X)
        n = Xt.shape[0]
        mean_ll = float(torch.logsumexp(self._weighted_log_prob(Xt), 1).mean())
        return -2.0 * mean_ll * n + self._n_parameters() * math.log(n)

    def aic(self, X) -> float:
        """Akaike information criterion ``-2 n score(X) + 2 p`` (lower is better)."""
        Xt = self._X(X)
        mean_ll = float(torch.logsumexp(self._weighted_log_prob(Xt), 1).mean())
        return -2.0 * mean_ll * Xt.shape[0] + 2.0 * self._n_parameters()

    def n_parameters(self) -> int:
        """Number of free parameters ``p`` (weights count ``K - 1``)."""
        self._require_fitted()
        return self._n_parameters()



# --------------------------------------------------------------------------------------
# Gaussian mixture
# --------------------------------------------------------------------------------------
class GaussianMixture(_EMMixture):
    r"""Gaussian mixture model fitted by EM, a scikit-learn estimator computing in torch.

    .. math:: p(x) = \sum_{k=1}^K \pi_k\, N(x; \mu_k, \Sigma_k)

    Args:
        n_components: number of components ``K``.
        covariance_type: ``"full"`` (``(K, d, d)``), ``"diag"`` (``(K, d)``),
            ``"spherical"`` (``(K,)``) or ``"tied"`` (one ``(d, d)`` for all).
        tol: stop when the mean log-likelihood changes by less than this.
        reg_covar: added to the diagonal of every covariance (keeps them positive definite;
            a component without responsibility gets exactly this variance).
        max_iter: maximum EM iterations per initialisation.
        n_init: number of initialisations; the one with the highest final bound is kept.
        init_params: starting responsibilities (scikit-learn's options): ``"kmeans"``
            (k-means++ then Lloyd in torch, hard responsibilities), ``"k-means++"`` (the
            seeds only), ``"random"`` (uniform random rows, normalised) or
            ``"random_from_data"`` (``K`` random data points).
        weights_init: ``(K,)``; means_init: ``(K, d)``; precisions_init: inverse
            covariances in the shape of ``covariance_type``. Given ones replace the
            values computed from the initial responsibilities.
        random_state: ``None``, an int, a ``numpy.random.RandomState`` or a
            ``torch.Generator`` (see :func:`coursekit.estimator.torch_generator`).
        warm_start: if true, a fitted model's next ``fit`` starts from its parameters
            (``n_init`` is then ignored).
        verbose: 0 silent, 1 prints each initialisation and every ``verbose_interval``-th
            iteration, 2 also times and the objective.
        verbose_interval: iterations between two progress lines.
        device: where to compute (default: the device of the data given to ``fit``).
        dtype: floating torch dtype of the computation and the fitted attributes
            (default: scikit-learn's rule, float32 stays float32, others become float64).

    Fitted attributes (NumPy arrays or tensors, as the ``X`` given to ``fit``):
    ``weights_ (K,)``, ``means_ (K, d)``, ``covariances_``, ``precisions_cholesky_``
    (upper-triangular ``U_k`` with precision ``U_k U_k^T``, or ``1/sqrt(variance)`` for
    diag/spherical), ``precisions_``; and ``n_features_in_``, ``lower_bound_``,
    ``lower_bounds_`` (mean log-likelihood at each iteration, before its M-step),
    ``n_iter_``, ``converged_``.
    """

    _name = "GaussianMixture"
    _param_names = ("weights_", "means_", "covariances_", "precisions_cholesky_")
    _parameter_constraints: dict = {
        **_EMMixture._parameter_constraints,
        "covariance_type": [StrOptions(set(COVARIANCE_TYPES))],
        "reg_covar": [Interval(Real, 0.0, None, closed="left")],
        "init_params": [StrOptions(set(INIT_PARAMS))],
        "weights_init": ["array-like", None],
        "means_init": ["array-like", None],
        "precisions_init": ["array-like", None],
    }

    weights_ = FittedArray()
    means_ = FittedArray()
    covariances_ = FittedArray()
    precisions_cholesky_ = FittedArray()

    def __init__(self, n_components: int = 1, *, covariance_type: str = "full",
                 tol: float = 1e-3, reg_covar: float = 1e-6, max_iter: int = 100,
                 n_init: int = 1, init_params: str = "kmeans", weights_init=None,
                 means_init=None, precisions_init=None, random_state=None,
                 warm_start: bool = False, verbose: int = 0, verbose_interval: int = 10,
                 device=None, dtype: torch.dtype | None = None):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.device = device
        self.dtype = dtype

    # ---------------------------------------------------------------- input checks
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

    # ---------------------------------------------------------------- fast path
    def _make_fit_cache(self, X: torch.Tensor):
        r"""Features of the centred data ``x_c = x - c`` computed once per fit (float64,
        full/diag, when they fit in ``_FEATURE_BYTES``): ``F = [q(x_c), x_c]`` with
        ``q(x_c)`` the products ``x_ci x_cj`` (``i <= j``; full) or squares ``x_ci^2``
        (diag). Both EM steps are then one matrix product with ``F``:

        * M-step: ``R^T F = [sum_n r_nk q(x_cn), sum_n r_nk x_cn]`` (second moments, sums);
        * E-step: ``||U_k^T (x - mu_k)||^2 = q(x_c) . w_k - 2 x_c^T P_k m_k + m_k^T P_k m_k``
          with ``P_k = U_k U_k^T``, ``m_k = mu_k - c`` and ``w_k`` the entries of ``P_k``
          (off-diagonal ones doubled).

        In float32 the expansion of the E-step loses too many digits, so float32 (and
        spherical/tied) use the direct formulas.
        """
        ct = self.covariance_type
        if X.dtype != torch.float64 or ct not in ("full", "diag"):
            return None
        n, d = X.shape
        m = d * (d + 1) // 2 if ct == "full" else d
        if n * (m + d) * X.element_size() > _FEATURE_BYTES:
            return None
        center = X.mean(0)
        Xc = X - center
        if ct == "full":
            iu, ju = torch.triu_indices(d, d, device=X.device)
            quad, start = X.new_empty(n, m), 0
            for i in range(d):  # columns x_ci x_cj, j >= i, in triu_indices order
                quad[:, start:start + d - i] = Xc[:, i:i + 1] * Xc[:, i:]
                start += d - i
        else:
            iu = ju = None
            quad = Xc * Xc
        return {"X": X, "center": center, "F": torch.cat([quad, Xc], 1), "iu": iu, "ju": ju}

    # ---------------------------------------------------------------- parameters
    def _estimate_parameters(self, X: torch.Tensor, resp: torch.Tensor):
        r"""M-step formulas: ``(N_k, means, covariances)`` from responsibilities ``(n, K)``.

        With ``c`` the data mean, ``X_c = X - c``, ``s_k = sum_n r_nk x_cn`` and
        ``N_k = sum_n r_nk`` (``+ 10 eps`` in the divisions, as scikit-learn), the means are
        ``mu_k = (s_k + N_k c) / N_k`` and, with ``m_k = mu_k - c`` (exactly the centred mean
        used), the scatter about ``mu_k`` is expanded without bias::

            sum_n r_nk (x_cn - m_k)(x_cn - m_k)^T = S_k - m_k s_k^T - s_k m_k^T + N_k m_k m_k^T

        (``S_k = sum_n r_nk x_cn x_cn^T``), then divided by ``N_k + 10 eps``. A component
        without responsibility therefore gets the covariance ``reg_covar I``, not the
        negative ``-c^2`` that ``S_k / N_k - m_k^2`` gives when ``N_k`` is ~0.
        """
        eps = torch.finfo(X.dtype).eps
        nk_raw = resp.sum(0)
        nk = nk_raw + 10 * eps
        ct, K, d = self.covariance_type, self.n_components, X.shape[1]
        cache = self._cached(X)
        if cache is not None:
            center = cache["center"]
            moments = resp.T @ cache["F"]                            # (K, m + d)
            s1 = moments[:, -d:]
            if ct == "full":
                second = X.new_empty(K, d, d)
                second[:, cache["iu"], cache["ju"]] = moments[:, :-d]
                second[:, cache["ju"], cache["iu"]] = moments[:, :-d]
            else:
                second = moments[:, :-d]
        else:
            # centre the data: covariances are shift invariant and this limits cancellation
            center = X.mean(0)
            Xc = X - center
            s1 = resp.T @ Xc                                         # (K, d)
            second = None
        means = (s1 + nk_raw.unsqueeze(1) * center) / nk.unsqueeze(1)
        mc = means - center
        eye = torch.eye(d, dtype=X.dtype, device=X.device)
        if ct == "full":
            if second is None:
                second = X.new_zeros(K * d, d)
                for sl in _row_chunks(X.shape[0], K * d, _CHUNK_ELEMENTS_M_STEP):
                    xc, r = Xc[sl], resp[sl]
                    weighted = (r.unsqueeze(2) * xc.unsqueeze(1)).reshape(len(xc), K * d)
                    second.addmm_(weighted.T, xc)
            cross = mc.unsqueeze(2) * s1.unsqueeze(1)                # m_k s_k^T
            scatter = (second.reshape(K, d, d) - cross - cross.mT
                       + nk_raw.view(K, 1, 1) * mc.unsqueeze(2) * mc.unsqueeze(1))
            cov = scatter / nk.view(K, 1, 1)
            cov = 0.5 * (cov + cov.mT) + self.reg_covar * eye
        elif ct == "tied":
            cov = (Xc.T @ Xc - (nk.unsqueeze(1) * mc).T @ mc) / nk.sum()
            cov = 0.5 * (cov + cov.mT) + self.reg_covar * eye
        else:
            if second is None:
                second = resp.T @ (Xc * Xc)
            scatter = second - 2.0 * mc * s1 + nk_raw.unsqueeze(1) * mc * mc
            var = scatter / nk.unsqueeze(1) + self.reg_covar
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
    def precisions_(self):
        """Inverse covariances, in the shape (and array kind) of ``covariances_``."""
        self._require_fitted()
        U = self._fitted["precisions_cholesky_"]
        if self.covariance_type in ("full", "tied"):
            return self._export(U @ U.mT)
        return self._export(U * U)

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
        if self.precisions_init is not None:
            prec = self._param(self.precisions_init, "precisions_init",
                               self._precisions_shape(d), X)
            U = self._precision_cholesky_from_precisions(prec)
            cov = self._cov_from_precision_cholesky(U)
        else:
            U = self._precision_cholesky_from_cov(cov)
        self._set_params((weights, means, cov, U))

    def _m_step(self, X: torch.Tensor, log_resp: torch.Tensor) -> GaussianMixture:
        nk, means, cov = self._estimate_parameters(X, log_resp.exp())
        self._set_params((nk / nk.sum(), means, cov, self._precision_cholesky_from_cov(cov)))
        return self

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
        U, mu = self._fitted["precisions_cholesky_"], self._fitted["means_"]
        ct = self.covariance_type
        cache = self._cached(X)
        if cache is not None:
            mc = mu - cache["center"]
            if ct == "full":
                log_det = torch.log(torch.diagonal(U, dim1=-2, dim2=-1)).sum(-1)
                P = U @ U.mT
                Pm = (P @ mc.unsqueeze(2)).squeeze(2)                 # (K, d)
                iu, ju = cache["iu"], cache["ju"]
                w = P[:, iu, ju] * torch.where(iu == ju, 1.0, 2.0).to(P.dtype)
            else:
                log_det = torch.log(U).sum(1)
                w = U * U
                Pm = mc * w
            coef = torch.cat([w, -2.0 * Pm], 1)                       # (K, m + d)
            maha = torch.addmm((mc * Pm).sum(1), cache["F"], coef.T)
            return -0.5 * (d * LOG_2PI + maha) + log_det
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
        K, d = self._fitted["means_"].shape
        cov = {"full": K * d * (d + 1) // 2, "diag": K * d, "tied": d * (d + 1) // 2,
               "spherical": K}[self.covariance_type]
        return int(cov + K * d + K - 1)

    def sample(self, n_samples: int = 1, generator=None) -> tuple:
        """Draw ``(X, labels)``: ``labels ~ Cat(weights_)``, ``X | k ~ N(means_[k], Sigma_k)``.

        Args:
            n_samples: number of samples.
            generator: ``torch.Generator`` or int seed (default: one made from
                ``random_state``, so an int ``random_state`` gives the same draws each call,
                as in scikit-learn).

        Returns:
            ``X: (n_samples, d)`` and ``labels: (n_samples,)`` int64, in the kind of the
            fitted attributes (NumPy arrays or tensors).
        """
        n, gen, labels = self._sample_setup(n_samples, generator)
        mu = self._fitted["means_"]
        eps = torch.randn(n, mu.shape[1], generator=gen, device=gen.device,
                          dtype=mu.dtype).to(mu.device)
        ct, cov = self.covariance_type, self._fitted["covariances_"]
        if ct in ("diag", "spherical"):
            std = cov.sqrt() if ct == "diag" else cov.sqrt().unsqueeze(1)
            X = mu[labels] + std[labels] * eps
        else:
            L = torch.linalg.cholesky(cov)
            if ct == "tied":
                X = mu[labels] + eps @ L.T
            else:
                X = mu[labels].clone()
                for k in range(self.n_components):
                    mask = labels == k
                    X[mask] += eps[mask] @ L[k].T
        return self._output(X, None), self._output(labels, None)


def em_trace(mixture: GaussianMixture, X, n_iter: int) -> dict:
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
        dict of arrays (NumPy or tensors, as ``X``), index 0 = the starting parameters,
        index ``t`` = after ``t`` iterations: ``weights`` ``(T+1, K)``, ``means``
        ``(T+1, K, d)``, ``covariances`` ``(T+1, *covariances_.shape)``, ``resp``
        ``(T+1, n, K)`` (responsibilities under each parameter set) and
        ``log_likelihood`` ``(T+1,)`` (mean log-likelihood per point under each
        parameter set, float64).
    """
    if not isinstance(mixture, GaussianMixture):
        raise TypeError(f"mixture: expected a GaussianMixture, got {type(mixture).__name__}")
    n_iter = check_count(n_iter, "n_iter", 0)
    Xt = mixture._X(X)
    weights, means, covs, resps, lls = [], [], [], [], []
    fitted = mixture._fitted
    for t in range(n_iter + 1):
        log_resp, mean_ll = mixture._e_step(Xt)
        weights.append(fitted["weights_"].clone())
        means.append(fitted["means_"].clone())
        covs.append(fitted["covariances_"].clone())
        resps.append(log_resp.exp())
        lls.append(mean_ll)
        if t < n_iter:
            mixture._m_step(Xt, log_resp)
    trace = {"weights": torch.stack(weights), "means": torch.stack(means),
             "covariances": torch.stack(covs), "resp": torch.stack(resps),
             "log_likelihood": torch.tensor(lls, dtype=torch.float64, device=Xt.device)}
    return {k: mixture._output(v, X) for k, v in trace.items()}


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
        max_iter, tol, n_init, random_state, warm_start, verbose, verbose_interval,
            device, dtype: as in :class:`GaussianMixture`.
        alpha: pseudo-count ``>= 0``.
        init_params: ``"kmeans"``, ``"k-means++"``, ``"random"`` or ``"random_from_data"``
            (as in :class:`GaussianMixture`).
        binarize: ``None`` (``X`` must already be binary, in {0, 1}) or a threshold:
            every ``X`` is replaced by ``X > binarize`` (as scikit-learn's ``BernoulliNB``).

    Fitted attributes (NumPy arrays or tensors, as the ``X`` given to ``fit``):
    ``weights_ (K,)``, ``means_ (K, D)`` (pixel probabilities); ``n_features_in_``,
    ``lower_bound_`` (final penalised objective), ``lower_bounds_``, ``objectives_``,
    ``n_iter_``, ``converged_``.
    """

    _name = "BernoulliMixture"
    _PROB_CLAMP = 1e-12
    _param_names = ("weights_", "means_")
    _parameter_constraints: dict = {
        **_EMMixture._parameter_constraints,
        "alpha": [Interval(Real, 0.0, None, closed="left")],
        "init_params": [StrOptions(set(INIT_PARAMS))],
        "binarize": [None, Interval(Real, None, None, closed="neither")],
    }

    weights_ = FittedArray()
    means_ = FittedArray()

    def __init__(self, n_components: int = 1, *, max_iter: int = 100, tol: float = 1e-4,
                 alpha: float = 1e-2, n_init: int = 1, init_params: str = "kmeans",
                 binarize: float | None = None, random_state=None, warm_start: bool = False,
                 verbose: int = 0, verbose_interval: int = 10, device=None,
                 dtype: torch.dtype | None = None):
        self.n_components = n_components
        self.max_iter = max_iter
        self.tol = tol
        self.alpha = alpha
        self.n_init = n_init
        self.init_params = init_params
        self.binarize = binarize
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.device = device
        self.dtype = dtype

    def _prepare_X(self, X: torch.Tensor) -> torch.Tensor:
        if self.binarize is not None:
            return (X > self.binarize).to(X.dtype)
        if bool(((X != 0) & (X != 1)).any()):
            raise ValueError("X: expected binary values in {0, 1} (binarise the data first, "
                             "e.g. load_digits(binarize='static'), or pass binarize=0.5)")
        return X

    def _start_fit(self, X: torch.Tensor) -> None:
        self._n_fit = X.shape[0]

    def _log_means(self):
        mu = self._fitted["means_"]
        clamp = max(self._PROB_CLAMP, torch.finfo(mu.dtype).eps)
        mu = mu.clamp(clamp, 1 - clamp)
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
        self._m_step_resp(X, self._initial_responsibilities(X, gen))

    def _m_step_resp(self, X: torch.Tensor, resp: torch.Tensor) -> None:
        nk = resp.sum(0) + 10 * torch.finfo(X.dtype).eps
        self._set_params((nk / nk.sum(),
                          (resp.T @ X + self.alpha) / (nk + 2 * self.alpha).unsqueeze(1)))

    def _m_step(self, X: torch.Tensor, log_resp: torch.Tensor) -> BernoulliMixture:
        r"""M-step: ``pi_k = N_k / N``, ``mu_kj = (sum_n r_nk x_nj + alpha) / (N_k + 2 alpha)``."""
        self._n_fit = X.shape[0]
        self._m_step_resp(X, log_resp.exp())
        return self

    def _n_parameters(self) -> int:
        K, D = self._fitted["means_"].shape
        return int(K * D + K - 1)

    def sample(self, n_samples: int = 1, generator=None) -> tuple:
        """Draw ``(X, labels)``: ``labels ~ Cat(weights_)``, ``X_j | k ~ Bernoulli(means_[k, j])``.

        Returns:
            ``X: (n_samples, D)`` in {0, 1} (float) and ``labels: (n_samples,)`` int64, in
            the kind of the fitted attributes.
        """
        n, gen, labels = self._sample_setup(n_samples, generator)
        mu = self._fitted["means_"]
        u = torch.rand(n, mu.shape[1], generator=gen, device=gen.device,
                       dtype=mu.dtype).to(mu.device)
        return self._output((u < mu[labels]).to(mu.dtype), None), self._output(labels, None)


def select_bernoulli_mixture(x_train, x_val, candidates=(1, 5, 10, 20, 40), *, n_init: int = 2,
                             max_iter: int = 200, random_state: int = 0, progress: bool = True):
    """Fit a :class:`BernoulliMixture` for each K in ``candidates``; keep the best on ``x_val``.

    This is the course's density baseline on binarised digits (lecture 02
    introduces it, later lectures compare against it), so every lecture calls
    this one function with the same defaults and reports the same number. The
    models compute in float64 whatever the dtype of the data.

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
        model = BernoulliMixture(k, n_init=n_init, max_iter=max_iter, random_state=random_state,
                                 dtype=torch.float64).fit(x_train)
        models[k] = model
        table[k] = (-model.score(x_train), -model.score(x_val))
    best = min(table, key=lambda k: table[k][1])
    return models[best], table
