r"""Estimator variance explorer: naive Monte Carlo vs importance sampling for ``p(x)``.

On a linear-Gaussian model (``z ~ N(0, I_2)``, ``x | z ~ N(W z + b, s^2 I_5)``) the
marginal ``p(x)`` is known exactly. Both estimators

.. math::
    \hat p_{\text{naive}} = \frac1K \sum_i p(x \mid z_i),\ z_i \sim p(z);
    \qquad
    \hat p_{\text{IS}} = \frac1K \sum_i \frac{p(x, z_i)}{q(z_i)},\ z_i \sim q

are unbiased; the app repeats each many times and shows the spread of
``hat p / p(x)``. The proposal ``q`` is the exact posterior shifted by
``offset`` posterior standard deviations (along every latent axis) and with its
standard deviations multiplied by ``scale``: ``offset=0, scale=1`` is the
posterior itself, for which every importance weight equals ``p(x)``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.distributions as D

from coursekit.latent import LinearGaussianModel, is_log_marginal, naive_mc_log_marginal
from coursekit.widgets.base import App

SAMPLE_COUNTS = (1, 3, 10, 30, 100, 300, 1000)


def default_model(seed: int = 0) -> tuple[LinearGaussianModel, torch.Tensor]:
    """The app's model and observed ``x``: a posterior much narrower than the prior."""
    gen = torch.Generator().manual_seed(seed)
    W = 2.0 * torch.randn(5, 2, generator=gen, dtype=torch.float64)
    b = torch.randn(5, generator=gen, dtype=torch.float64)
    model = LinearGaussianModel(W, b, 0.2)
    x = model.sample(1, generator=gen)[0][0]
    return model, x


class EstimatorVarianceExplorer(App):
    """Spread of naive-MC and importance-sampling estimates of ``p(x)``.

    ``update(offset, scale, n_samples, n_repeats, seed)`` returns ``naive`` and
    ``importance`` (arrays ``(n_repeats,)`` of ``hat p / p(x)``), ``log_px``, and for
    each estimator its mean, variance and standard error of the mean
    (``naive_mean``, ``naive_var``, ``naive_se``, ``is_mean``, ``is_var``, ``is_se``).
    """

    name = "estimator-variance"
    figsize = (9.0, 3.6)

    def __init__(self, offset: float = 1.0, scale: float = 1.5, n_samples: int = 10,
                 n_repeats: int = 500, seed: int = 0):
        super().__init__()
        self.model, self.x = default_model()
        self.log_px = float(self.model.log_marginal(self.x))
        self.post_mean, self.post_cov = self.model.posterior(self.x)
        self.slider("offset", 0.0, 5.0, 0.25, offset, description="q offset (sd)",
                    continuous_update=True)
        self.slider("scale", 0.3, 5.0, 0.1, scale, description="q scale", continuous_update=True)
        self.choice("n_samples", SAMPLE_COUNTS, n_samples, description="K samples", kind="slider",
                    continuous_update=True)
        self.slider("n_repeats", 100, 2000, 100, n_repeats, description="repeats")
        self.slider("seed", 0, 20, 1, seed)

    def proposal(self, offset: float, scale: float, n_repeats: int) -> D.MultivariateNormal:
        """``q``: the posterior shifted by ``offset`` sds and scaled by ``scale``."""
        std = torch.sqrt(torch.diagonal(self.post_cov))
        mean = self.post_mean + offset * std
        cov = scale ** 2 * self.post_cov
        return D.MultivariateNormal(mean.expand(n_repeats, -1), covariance_matrix=cov)

    def update(self, offset=1.0, scale=1.5, n_samples=10, n_repeats=500, seed=0) -> dict:
        offset, scale = float(offset), float(scale)
        if not math.isfinite(offset):
            raise ValueError(f"offset: expected a finite number, got {offset!r}")
        if not (math.isfinite(scale) and scale > 0):
            raise ValueError(f"scale: expected a positive number, got {scale!r}")
        for name, v in (("n_samples", n_samples), ("n_repeats", n_repeats)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name}: expected a positive int, got {v!r}")
        n_repeats = int(n_repeats)
        x = self.x
        with torch.random.fork_rng(devices=[]):   # leave the caller's random state alone
            torch.manual_seed(int(seed))
            prior = self.model.prior().expand((n_repeats,))
            log_naive = naive_mc_log_marginal(lambda z: self.model.log_likelihood(x, z),
                                              prior, int(n_samples))
            q = self.proposal(offset, scale, n_repeats)
            log_is = is_log_marginal(lambda z: self.model.log_joint(x, z), q, int(n_samples))
        naive = torch.exp(log_naive - self.log_px).numpy()
        imp = torch.exp(log_is - self.log_px).numpy()
        out = {"naive": naive, "importance": imp, "log_px": self.log_px,
               "offset": offset, "scale": scale, "n_samples": int(n_samples),
               "n_repeats": n_repeats}
        for key, vals in (("naive", naive), ("is", imp)):
            out[f"{key}_mean"] = float(vals.mean())
            out[f"{key}_var"] = float(vals.var(ddof=1)) if n_repeats > 1 else 0.0
            out[f"{key}_se"] = math.sqrt(out[f"{key}_var"] / n_repeats)
        return out

    def draw(self, state, fig):
        axes = fig.subplots(1, 2, sharey=False)
        hi = max(float(np.quantile(state["naive"], 0.99)),
                 float(np.quantile(state["importance"], 0.99)), 2.0)
        bins = np.linspace(0.0, hi, 40)
        for ax, key, short, color in ((axes[0], "naive", "naive", "tab:gray"),
                                      (axes[1], "importance", "is", "tab:green")):
            vals = np.clip(state[key], 0, hi)
            ax.hist(vals, bins=bins, color=color, alpha=0.8)
            ax.axvline(1.0, color="k", ls="--", label="truth")
            ax.axvline(state[f"{short}_mean"], color="tab:red",
                       label=f"mean {state[f'{short}_mean']:.3f}")
            title = "naive MC (z ~ prior)" if key == "naive" else "importance sampling (z ~ q)"
            ax.set_title(f"{title}\nvar = {state[f'{short}_var']:.3g}", fontsize=9)
            ax.set_xlabel("estimate / p(x)")
            ax.legend(fontsize=7)
        fig.tight_layout()

    def summary(self, state) -> str:
        return (f"log p(x) = {state['log_px']:.3f}; K = {state['n_samples']}, "
                f"{state['n_repeats']} repeats. Naive: mean {state['naive_mean']:.3f} "
                f"± {state['naive_se']:.3f}, variance {state['naive_var']:.3g}. "
                f"IS: mean {state['is_mean']:.3f} ± {state['is_se']:.3f}, "
                f"variance {state['is_var']:.3g}.")
