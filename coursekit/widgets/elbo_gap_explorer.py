r"""ELBO gap explorer: move a Gaussian ``q(z)`` over a fixed 1-D posterior ``p(z|x)``
and watch ``log p(x)`` split into the ELBO and the KL gap.

.. math::
    \log p(x) = \underbrace{\mathbb E_q[\log p(x, z)] + H(q)}_{\mathrm{ELBO}(q)}
    + \underbrace{\mathrm{KL}(q \,\|\, p(z \mid x))}_{\ge 0}

Every quantity is computed by quadrature on a fine grid (no sampling,
:func:`coursekit.latent.quadrature.elbo_by_quadrature` on the example posteriors
of :mod:`coursekit.latent.quadrature`), so the two bars always add up to ``log p(x)``.
"""

from __future__ import annotations

import numpy as np

from coursekit.latent.quadrature import POSTERIORS, elbo_by_quadrature, log_joint
from coursekit.widgets.base import App


class ELBOGapExplorer(App):
    r"""A 1-D posterior ``p(z|x)`` and a Gaussian ``q = N(mean, std^2)``.

    ``update(posterior, mean, std)`` returns the grid ``z``, the densities
    ``p_post`` and ``q`` on it, and (all by quadrature of the *unnormalised* joint)
    ``log_px = log int p(x, z) dz``, ``elbo = int q (log p(x, z) - log q)`` and
    ``kl = int q log(q / p(z|x))`` where ``p(z|x) = p(x, z) / p(x)`` uses the
    quadrature ``log_px``; ``elbo + kl == log_px`` up to rounding.

    Args:
        posterior: ``"unimodal"`` or ``"bimodal"``; mean, std: initial ``q``.
        lo, hi, n_grid: the quadrature grid (trapezoid rule); wide enough to hold
            every q the sliders allow (mean +- 6, std <= 4) to 1e-9 of its mass.
    """

    name = "elbo-gap"
    figsize = (9.0, 3.6)

    def __init__(self, posterior: str = "bimodal", mean: float = 0.0, std: float = 1.0,
                 lo: float = -46.0, hi: float = 46.0, n_grid: int = 20001):
        super().__init__()
        if posterior not in POSTERIORS:
            raise ValueError(f"posterior: expected one of {tuple(POSTERIORS)}, got {posterior!r}")
        if not lo < hi:
            raise ValueError(f"lo, hi: expected lo < hi, got {lo}, {hi}")
        if isinstance(n_grid, bool) or not isinstance(n_grid, int) or n_grid < 101:
            raise ValueError(f"n_grid: expected an int >= 101, got {n_grid!r}")
        self.z = np.linspace(lo, hi, n_grid)
        self.choice("posterior", POSTERIORS, posterior, description="p(z|x)")
        # quadrature is fast: redraw while a handle is dragged
        self.slider("mean", -6, 6, 0.05, mean, description="q mean", continuous_update=True)
        self.slider("std", 0.1, 4.0, 0.05, std, description="q std", continuous_update=True)

    def update(self, posterior="bimodal", mean=0.0, std=1.0) -> dict:
        z = self.z
        gap = elbo_by_quadrature(z, log_joint(z, posterior), mean, std)
        return {
            "posterior": posterior, "mean": float(mean), "std": float(std), "z": z,
            "p_post": np.exp(gap["log_post"]), "q": np.exp(gap["log_q"]),
            "log_px": gap["log_px"], "elbo": gap["elbo"], "kl": gap["kl"],
            "q_mass": gap["q_mass"],
        }

    def draw(self, state, fig):
        ax1, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 1]})
        z = state["z"]
        ax1.plot(z, state["p_post"], color="k", label="p(z|x)")
        ax1.fill_between(z, state["q"], alpha=0.35, color="tab:orange",
                         label=f"q = N({state['mean']:.2f}, {state['std']:.2f}²)")
        ax1.set_xlim(-8, 8)
        ax1.set_xlabel("z")
        ax1.legend(loc="upper left", fontsize=8)
        ax1.set_title(f"{state['posterior']} posterior")
        # a bar from 0 down to log p(x): the ELBO part and the KL part
        elbo, kl, log_px = state["elbo"], state["kl"], state["log_px"]
        ax2.bar([0], [elbo], color="tab:blue", label=f"ELBO = {elbo:.3f}")
        ax2.bar([0], [kl], bottom=[elbo], color="tab:red", label=f"KL = {kl:.3f}")
        ax2.axhline(log_px, color="k", ls="--", label=f"log p(x) = {log_px:.3f}")
        ax2.set_xticks([])
        ax2.set_ylim(min(elbo, log_px) - 0.5, 0.5)
        ax2.legend(fontsize=7, loc="lower center")
        ax2.set_title("ELBO + KL = log p(x)")
        fig.tight_layout()

    def summary(self, state) -> str:
        return (f"log p(x) = {state['log_px']:.4f} &nbsp; = &nbsp; ELBO {state['elbo']:.4f} "
                f"+ KL(q || p(z|x)) {state['kl']:.4f}")
