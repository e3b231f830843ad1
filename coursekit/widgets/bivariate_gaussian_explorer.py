r"""Bivariate Gaussian explorer: a joint density, a slice through it, and the
conditional and marginal distributions of the first coordinate.

For ``x = (x_1, x_2) ~ N(mu, Sigma)`` with standard deviations ``s_1, s_2`` and
correlation ``rho`` (so ``Sigma_12 = rho s_1 s_2``), conditioning on
``x_2 = x_b`` gives (lecture 01)

.. math::
    p(x_1 | x_2 = x_b) = N\big(\mu_1 + \rho \tfrac{s_1}{s_2}(x_b - \mu_2),\;
    s_1^2 (1 - \rho^2)\big), \qquad p(x_1) = N(\mu_1, s_1^2).

The app evaluates the joint density on a grid, cuts it along the line
``x_2 = x_b`` and normalises that cut numerically
(:func:`coursekit.probability.grid_moments`), so the picture shows both the
closed form and the "slice and renormalise" definition of a conditional.
"""

from __future__ import annotations

import numpy as np
import torch

from coursekit.functional import log_normal_diag
from coursekit.probability import (
    bivariate_gaussian_cov,
    gaussian_conditional,
    gaussian_log_prob,
    grid_moments,
)
from coursekit.widgets.base import App


def _normal_density(x, mean: float, var: float) -> np.ndarray:
    """``N(x; mean, var)`` elementwise on the plotting grid ``x`` ``(m,)`` (or a number)."""
    x = np.atleast_1d(np.asarray(x, dtype=np.float64))
    return np.exp(log_normal_diag(x[:, None], [mean], [var]).numpy())


class BivariateGaussianExplorer(App):
    """Joint density of a 2-D Gaussian, the slice ``x_2 = x_b``, ``p(x_1 | x_b)`` and ``p(x_1)``.

    ``update(mu1, mu2, sigma1, sigma2, rho, x_b)`` returns a dict with

    * ``X``, ``Y``, ``density``: ``(r, r)`` grid of the joint density;
    * ``x1``: ``(m,)`` grid along the first axis;
    * ``slice``: ``(m,)`` the joint density along ``x_2 = x_b``, divided by its
      trapezoid integral (the conditional obtained numerically);
    * ``conditional``, ``marginal``: ``(m,)`` closed-form densities on ``x1``;
    * ``cond_mean``, ``cond_var`` (closed form, from
      :func:`coursekit.probability.gaussian_conditional`) and ``slice_mean``,
      ``slice_var`` (moments of the numerically normalised slice);
    * ``mean`` ``(2,)`` and ``cov`` ``(2, 2)``.
    """

    name = "bivariate-gaussian"
    figsize = (10.0, 4.2)

    def __init__(self, mu1=0.0, mu2=0.0, sigma1=1.0, sigma2=1.0, rho=0.7, x_b=1.0,
                 resolution: int = 120, n_line: int = 600):
        super().__init__()
        self.resolution, self.n_line = resolution, n_line
        self.slider("mu1", -3, 3, 0.05, mu1, description="μ₁")
        self.slider("mu2", -3, 3, 0.05, mu2, description="μ₂")
        self.slider("sigma1", 0.2, 3, 0.05, sigma1, description="σ₁")
        self.slider("sigma2", 0.2, 3, 0.05, sigma2, description="σ₂")
        self.slider("rho", -0.95, 0.95, 0.05, rho, description="ρ")
        self.slider("x_b", -6, 6, 0.05, x_b, description="x_b (x₂ =)")

    def update(self, mu1=0.0, mu2=0.0, sigma1=1.0, sigma2=1.0, rho=0.7, x_b=1.0) -> dict:
        mu1, mu2, sigma1, sigma2, rho, x_b = map(float, (mu1, mu2, sigma1, sigma2, rho, x_b))
        cov_t = bivariate_gaussian_cov(sigma1, sigma2, rho)
        cov = cov_t.numpy()
        mean = np.array([mu1, mu2])
        # closed form via the library (lecture 01 derives it)
        cm, cv = gaussian_conditional(torch.tensor(mean), cov_t, [0],
                                      torch.tensor([x_b], dtype=torch.float64))
        cond_mean, cond_var = float(cm[0]), float(cv[0, 0])

        x1_lo, x1_hi = mu1 - 4.5 * sigma1, mu1 + 4.5 * sigma1
        # make sure the slice's mass lies on the 1-D grid even for extreme x_b
        x1_lo = min(x1_lo, cond_mean - 6 * np.sqrt(cond_var))
        x1_hi = max(x1_hi, cond_mean + 6 * np.sqrt(cond_var))
        x2_lo = min(mu2 - 4.5 * sigma2, x_b - 0.5)
        x2_hi = max(mu2 + 4.5 * sigma2, x_b + 0.5)
        extent = (x1_lo, x1_hi, x2_lo, x2_hi)

        xs = np.linspace(x1_lo, x1_hi, self.resolution)
        ys = np.linspace(x2_lo, x2_hi, self.resolution)
        X, Y = np.meshgrid(xs, ys)
        pts = torch.tensor(np.stack([X.ravel(), Y.ravel()], 1))
        mean_t = torch.tensor(mean)
        density = np.exp(gaussian_log_prob(pts, mean_t, cov_t).numpy()).reshape(X.shape)

        x1 = np.linspace(x1_lo, x1_hi, self.n_line)
        line = torch.tensor(np.stack([x1, np.full_like(x1, x_b)], 1))
        joint_on_slice = np.exp(gaussian_log_prob(line, mean_t, cov_t).numpy())
        # the slice's integral is p(x_2 = x_b), the normaliser
        z, slice_mean, slice_var = grid_moments(joint_on_slice, x1)
        slice_density = joint_on_slice / z
        return {
            "mean": mean, "cov": cov, "x_b": x_b, "extent": extent,
            "X": X, "Y": Y, "density": density,
            "x1": x1, "slice": slice_density, "slice_normaliser": z,
            "conditional": _normal_density(x1, cond_mean, cond_var),
            "marginal": _normal_density(x1, mu1, sigma1**2),
            "cond_mean": cond_mean, "cond_var": cond_var,
            "slice_mean": slice_mean, "slice_var": slice_var,
            "marginal_x2_at_xb": float(_normal_density(x_b, mu2, sigma2**2)[0]),
        }

    def draw(self, state, fig):
        ax1 = fig.add_subplot(1, 2, 1)
        ax1.contour(state["X"], state["Y"], state["density"], levels=8, cmap="viridis")
        ax1.axhline(state["x_b"], color="tab:red", lw=1.5, label=r"slice $x_2 = x_b$")
        ax1.plot(*state["mean"], "k+", ms=10)
        ax1.set_xlim(*state["extent"][:2])
        ax1.set_ylim(*state["extent"][2:])
        ax1.set_xlabel("$x_1$")
        ax1.set_ylabel("$x_2$")
        ax1.set_title("joint density $p(x_1, x_2)$")
        ax1.legend(loc="upper left", fontsize=8)

        ax2 = fig.add_subplot(1, 2, 2)
        x1 = state["x1"]
        ax2.plot(x1, state["marginal"], color="tab:blue", label="marginal $p(x_1)$")
        ax2.plot(x1, state["conditional"], color="tab:red",
                 label=r"conditional $p(x_1 \mid x_b)$ (formula)")
        ax2.plot(x1[::12], state["slice"][::12], "o", ms=3, color="k",
                 label="slice / its integral")
        ax2.axvline(state["cond_mean"], color="tab:red", ls=":", lw=1)
        ax2.set_xlabel("$x_1$")
        ax2.set_title("1-D views of $x_1$")
        ax2.legend(fontsize=8)
        fig.tight_layout()

    def summary(self, state) -> str:
        return (
            f"Conditional p(x₁ | x₂ = {state['x_b']:.2f}): mean = {state['cond_mean']:.4f}, "
            f"variance = {state['cond_var']:.4f} (formula); "
            f"slice renormalised numerically: mean = {state['slice_mean']:.4f}, "
            f"variance = {state['slice_var']:.4f}.<br>"
            f"Marginal p(x₁): mean = {state['mean'][0]:.4f}, "
            f"variance = {state['cov'][0, 0]:.4f}. The slice's integral "
            f"{state['slice_normaliser']:.4f} equals p(x₂ = x_b) = "
            f"{state['marginal_x2_at_xb']:.4f}."
        )
