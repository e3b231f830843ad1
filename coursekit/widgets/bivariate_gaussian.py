r"""Bivariate Gaussian explorer: a joint density, a slice through it, and the
conditional and marginal distributions of the first coordinate.

For ``x = (x_1, x_2) ~ N(mu, Sigma)`` with standard deviations ``s_1, s_2`` and
correlation ``rho`` (so ``Sigma_12 = rho s_1 s_2``), conditioning on
``x_2 = x_b`` gives (lecture 01)

.. math::
    p(x_1 | x_2 = x_b) = N\big(\mu_1 + \rho \tfrac{s_1}{s_2}(x_b - \mu_2),\;
    s_1^2 (1 - \rho^2)\big), \qquad p(x_1) = N(\mu_1, s_1^2).

The app evaluates the joint density on a grid, cuts it along the line
``x_2 = x_b`` and normalises that cut numerically, so the picture shows both
the closed form and the "slice and renormalise" definition of a conditional.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.integrate import trapezoid

from coursekit.probability import gaussian_conditional, gaussian_log_prob
from coursekit.widgets.base import App


def _check_params(sigma1, sigma2, rho):
    for name, value in (("sigma1", sigma1), ("sigma2", sigma2)):
        if not value > 0:
            raise ValueError(f"{name}: expected a positive standard deviation, got {value!r}")
    if not -1 < rho < 1:
        raise ValueError(f"rho: expected a correlation in (-1, 1), got {rho!r}")


def bivariate_cov(sigma1: float, sigma2: float, rho: float) -> np.ndarray:
    """The covariance ``[[s1^2, rho s1 s2], [rho s1 s2, s2^2]]`` as a ``(2, 2)`` array."""
    _check_params(sigma1, sigma2, rho)
    c = rho * sigma1 * sigma2
    return np.array([[sigma1**2, c], [c, sigma2**2]], dtype=np.float64)


def _normal_pdf(x, mean, var):
    return np.exp(-0.5 * (x - mean) ** 2 / var) / np.sqrt(2 * np.pi * var)


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
        import ipywidgets as widgets

        self.resolution, self.n_line = resolution, n_line

        def slider(value, lo, hi, desc, step=0.05):
            return widgets.FloatSlider(value=value, min=lo, max=hi, step=step,
                                       description=desc, continuous_update=False)

        self.controls = {
            "mu1": slider(mu1, -3, 3, "μ₁"),
            "mu2": slider(mu2, -3, 3, "μ₂"),
            "sigma1": slider(sigma1, 0.2, 3, "σ₁"),
            "sigma2": slider(sigma2, 0.2, 3, "σ₂"),
            "rho": slider(rho, -0.95, 0.95, "ρ"),
            "x_b": slider(x_b, -6, 6, "x_b (x₂ =)"),
        }

    def update(self, mu1=0.0, mu2=0.0, sigma1=1.0, sigma2=1.0, rho=0.7, x_b=1.0) -> dict:
        mu1, mu2, sigma1, sigma2, rho, x_b = map(float, (mu1, mu2, sigma1, sigma2, rho, x_b))
        cov = bivariate_cov(sigma1, sigma2, rho)
        mean = np.array([mu1, mu2])
        # closed form via the library (lecture 01 derives it)
        cm, cv = gaussian_conditional(torch.tensor(mean), torch.tensor(cov), [0],
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
        mean_t, cov_t = torch.tensor(mean), torch.tensor(cov)
        density = np.exp(gaussian_log_prob(pts, mean_t, cov_t).numpy()).reshape(X.shape)

        x1 = np.linspace(x1_lo, x1_hi, self.n_line)
        line = torch.tensor(np.stack([x1, np.full_like(x1, x_b)], 1))
        joint_on_slice = np.exp(gaussian_log_prob(line, mean_t, cov_t).numpy())
        z = trapezoid(joint_on_slice, x1)  # = p(x_2 = x_b), the normaliser
        slice_density = joint_on_slice / z
        slice_mean = float(trapezoid(x1 * slice_density, x1))
        slice_var = float(trapezoid((x1 - slice_mean) ** 2 * slice_density, x1))
        return {
            "mean": mean, "cov": cov, "x_b": x_b, "extent": extent,
            "X": X, "Y": Y, "density": density,
            "x1": x1, "slice": slice_density, "slice_normaliser": float(z),
            "conditional": _normal_pdf(x1, cond_mean, cond_var),
            "marginal": _normal_pdf(x1, mu1, sigma1**2),
            "cond_mean": cond_mean, "cond_var": cond_var,
            "slice_mean": slice_mean, "slice_var": slice_var,
            "marginal_x2_at_xb": float(_normal_pdf(x_b, mu2, sigma2**2)),
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
