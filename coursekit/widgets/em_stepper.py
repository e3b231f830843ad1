"""EM stepper: walk through the EM iterations of a Gaussian mixture on 2-D toy data.

EM for ``p(x) = sum_k pi_k N(x; mu_k, Sigma_k)`` alternates (lecture 02)

* E-step: ``r_nk = p(z = k | x_n) = pi_k N(x_n; mu_k, Sigma_k) / p(x_n)``;
* M-step: ``pi_k = N_k / N``, ``mu_k = sum_n r_nk x_n / N_k``,
  ``Sigma_k = sum_n r_nk (x_n - mu_k)(x_n - mu_k)^T / N_k`` with ``N_k = sum_n r_nk``.

The app replays EM with :func:`coursekit.mixture.em_trace` (one
:meth:`~coursekit.mixture.GaussianMixture.e_step` and
:meth:`~coursekit.mixture.GaussianMixture.m_step` per iteration) once per setting
(data set, K, seed, initialisation), keeping the parameters after every iteration,
and the iteration slider / buttons move through that stored history. Points are
coloured by their responsibilities (a mix of the component colours), each
component is drawn as its 2-sigma ellipse
``{x : (x - mu)^T Sigma^{-1} (x - mu) = 4}`` (:func:`coursekit.plotting.gaussian_ellipse`)
and the log-likelihood curve marks the current iteration.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from coursekit.data.toy2d import TOY2D, get_toy2d
from coursekit.mixture import GaussianMixture, data_point_means, em_trace
from coursekit.plotting import gaussian_ellipse
from coursekit.widgets.base import App

DATASETS = ("8gaussians", "moons", "pinwheel", "circles", "2spirals")
INITS = ("data points", "kmeans", "random resp")
_PALETTE = np.array([
    [0.12, 0.47, 0.71], [1.00, 0.50, 0.05], [0.17, 0.63, 0.17], [0.84, 0.15, 0.16],
    [0.58, 0.40, 0.74], [0.55, 0.34, 0.29], [0.89, 0.47, 0.76], [0.50, 0.50, 0.50],
    [0.74, 0.74, 0.13], [0.09, 0.75, 0.81],
])
MAX_K = len(_PALETTE)


@lru_cache(maxsize=64)
def em_history(dataset: str, n: int, n_components: int, seed: int, init: str,
               n_iter: int) -> dict:
    """Run ``n_iter`` EM iterations with ``GaussianMixture`` and keep every step.

    Returns a dict of NumPy arrays: ``x`` ``(n, 2)``; ``weights`` ``(T+1, K)``,
    ``means`` ``(T+1, K, 2)``, ``covariances`` ``(T+1, K, 2, 2)`` (index 0 = the
    initialisation, index t = after t EM iterations); ``resp`` ``(T+1, n, K)``
    the responsibilities under each parameter set and ``log_likelihood``
    ``(T+1,)`` the mean log-likelihood per point under each parameter set.
    """
    if dataset not in TOY2D:
        raise ValueError(f"dataset: expected one of {TOY2D}, got {dataset!r}")
    if not 1 <= n_components <= MAX_K:
        raise ValueError(f"n_components: expected an int in [1, {MAX_K}], got {n_components!r}")
    if init not in INITS:
        raise ValueError(f"init: expected one of {INITS}, got {init!r}")
    x = get_toy2d(dataset).sample(n, seed=seed).double()
    means_init = None
    if init == "data points":
        # K distinct data points as means; weights and covariances from random
        # responsibilities (so every component starts broad, about the data's spread)
        means_init = data_point_means(x, n_components, seed)
    gm = GaussianMixture(n_components, covariance_type="full",
                         init_params="kmeans" if init == "kmeans" else "random",
                         means_init=means_init, random_state=seed, reg_covar=1e-6)
    gm.initialize(x)
    trace = {k: v.numpy() for k, v in em_trace(gm, x, n_iter).items()}
    return {"x": x.numpy(), **trace}


class EMStepper(App):
    """Step through EM for a Gaussian mixture on a 2-D toy data set.

    ``update(dataset, n_components, seed, init, iteration)`` returns a dict with
    ``x`` ``(n, 2)``, ``resp`` ``(n, K)`` (responsibilities at this iteration),
    ``colors`` ``(n, 3)`` (responsibility-weighted component colours),
    ``weights`` ``(K,)``, ``means`` ``(K, 2)``, ``covariances`` ``(K, 2, 2)``,
    ``ellipses`` ``(K, m, 2)`` (2-sigma), ``log_likelihood`` ``(T+1,)`` (the
    whole curve) and ``iteration``.

    Initialisations: ``"data points"`` (K random data points as means, broad
    covariances), ``"kmeans"`` (k-means clusters, already close to a solution)
    or ``"random resp"`` (uniformly random responsibilities: every mean starts
    near the data's centre, and EM has to break the symmetry).
    """

    name = "em-stepper"
    figsize = (10.0, 4.5)

    def __init__(self, dataset: str = "8gaussians", n_components: int = 8, seed: int = 0,
                 init: str = "data points", n: int = 400, n_iter: int = 60):
        super().__init__()
        self.n, self.n_iter = n, n_iter
        self.choice("dataset", DATASETS, dataset, description="data set")
        self.slider("n_components", 1, MAX_K, 1, n_components, description="K")
        self.slider("seed", 0, 20, 1, seed)
        self.choice("init", INITS, init)
        # the history is stored: stepping through it is instant, so redraw while dragging
        self.slider("iteration", 0, n_iter, 1, 0, continuous_update=True)
        self.button("back", "◀ step back", lambda: self.step(-1))
        self.button("forward", "step forward ▶", lambda: self.step(+1))

    def step(self, delta: int) -> int:
        """Move the iteration slider by ``delta`` (clipped); returns the new iteration.

        When the app is shown, the slider's observer redraws the figure.
        """
        slider = self.controls["iteration"]
        slider.value = int(np.clip(slider.value + delta, slider.min, slider.max))
        return slider.value

    def update(self, dataset="8gaussians", n_components=8, seed=0, init="data points",
               iteration=0) -> dict:
        if not 0 <= int(iteration) <= self.n_iter:
            raise ValueError(f"iteration: expected an int in [0, {self.n_iter}], "
                             f"got {iteration!r}")
        hist = em_history(dataset, self.n, int(n_components), int(seed), init, self.n_iter)
        t = int(iteration)
        resp = hist["resp"][t]
        covs = hist["covariances"][t]
        means = hist["means"][t]
        return {
            "dataset": dataset,
            "iteration": t,
            "x": hist["x"],
            "resp": resp,
            "colors": np.clip(resp @ _PALETTE[: resp.shape[1]], 0, 1),
            "weights": hist["weights"][t],
            "means": means,
            "covariances": covs,
            "ellipses": np.stack([gaussian_ellipse(m, c) for m, c in zip(means, covs)]),
            "log_likelihood": hist["log_likelihood"],
            "extent": get_toy2d(dataset).extent,
        }

    def draw(self, state, fig):
        ax = fig.add_subplot(1, 2, 1)
        x = state["x"]
        ax.scatter(x[:, 0], x[:, 1], s=6, c=state["colors"])
        for k, ell in enumerate(state["ellipses"]):
            ax.plot(ell[:, 0], ell[:, 1], color=_PALETTE[k], lw=2)
            ax.plot(*state["means"][k], "x", color="k", ms=6)
        ax.set_xlim(*state["extent"][:2])
        ax.set_ylim(*state["extent"][2:])
        ax.set_aspect("equal")
        ax.set_title(f"{state['dataset']}, iteration {state['iteration']}")

        ax2 = fig.add_subplot(1, 2, 2)
        ll = state["log_likelihood"]
        ax2.plot(np.arange(len(ll)), ll, "-", color="tab:blue")
        t = state["iteration"]
        ax2.plot([t], [ll[t]], "o", color="tab:red", ms=8)
        ax2.set_xlabel("EM iteration")
        ax2.set_ylabel("mean log-likelihood (nats)")
        ax2.set_title("log-likelihood never decreases")
        fig.tight_layout()

    def summary(self, state) -> str:
        t, ll = state["iteration"], state["log_likelihood"]
        weights = ", ".join(f"{w:.2f}" for w in state["weights"])
        change = "" if t == 0 else f" (change since previous: {ll[t] - ll[t - 1]:+.2e})"
        return (f"Iteration {t}: mean log-likelihood {ll[t]:.4f} nats{change}; "
                f"final after {len(ll) - 1}: {ll[-1]:.4f}.<br>Mixture weights π: {weights}.")
