r"""The optimal discriminator and the value of the GAN game in 1-D (lecture 07).

For a fixed generator density ``p_G`` the discriminator maximising

.. math:: V(G, D) = E_{p_{data}}[\log D(x)] + E_{p_G}[\log(1 - D(x))]

is :math:`D^*(x) = p_{data}(x) / (p_{data}(x) + p_G(x))`, and at that discriminator

.. math:: V(G, D^*) = 2\,\mathrm{JSD}(p_{data} \,\|\, p_G) - \log 4 \in [-\log 4, 0],

lowest (``-log 4``, with ``D* = 1/2`` everywhere) exactly when ``p_G = p_data`` and
approaching ``0`` (``JSD -> log 2``) as the two densities stop overlapping.

Here ``p_data(x) = ½ N(x; -s/2, σ_d²) + ½ N(x; s/2, σ_d²)`` (mode separation ``s``; a
single Gaussian ``N(0, σ_d²)`` at ``s = 0``) and ``p_G(x) = N(x; μ, σ²)``. The maths
comes from the library: the densities from :func:`coursekit.probability.bimodal_log_prob`,
``D*`` from :func:`coursekit.gan.optimal_discriminator` and the JSD from
:func:`coursekit.gan.jensen_shannon` (trapezoidal rule on the plotting grid).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from coursekit._validation import check_count, check_number
from coursekit.gan import jensen_shannon, optimal_discriminator
from coursekit.probability import bimodal_log_prob
from coursekit.widgets.base import App

LOG4 = math.log(4.0)
_TAIL = 10.0  # the grid reaches this many standard deviations beyond every mode
_PLOT_TAIL = 4.0  # the figure shows this many


def _log_density(mode1: float, mode2: float, std: float):
    """``x (m,) tensor -> log p(x) (m,) float64 tensor`` for the equal-weight mixture
    ``½ N(mode1, std²) + ½ N(mode2, std²)`` (a Gaussian when ``mode1 == mode2``)."""
    def log_p(x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(bimodal_log_prob(x.numpy(), mode1, mode2, 0.5, std))
    return log_p


class OptimalDiscriminatorExplorer(App):
    r"""Move a Gaussian generator ``p_G = N(μ, σ²)`` against a (bimodal) data density and
    watch the optimal discriminator ``D*`` and the game's value ``V(G, D*)``.

    Controls: ``mean`` (μ), ``std`` (σ), ``separation`` (``s``, the distance between the
    data's two modes; ``0`` makes ``p_data = N(0, σ_d²)``). ``data_std`` (σ_d) and the
    number of grid points ``n_grid`` are fixed when the app is built.

    ``update(mean, std, separation)`` returns a dict with ``x`` ``(n_grid,)`` (the grid),
    ``p_data``, ``p_model`` (the densities on ``x``), ``d_star`` (``D*(x)``, all
    ``(n_grid,)``), ``jsd`` (``JSD(p_data || p_G)`` in nats, in ``[0, log 2]``), ``value``
    (``V(G, D*) = 2 JSD - log 4``) and ``params``. Bad values raise a ``ValueError``
    naming the argument (``std`` must be positive, ``separation`` non-negative).
    """

    name = "optimal-discriminator"
    figsize = (8.0, 5.5)

    def __init__(self, mean: float = 2.0, std: float = 1.0, separation: float = 3.0, *,
                 data_std: float = 0.7, n_grid: int = 2001):
        super().__init__()
        self.data_std = check_number(data_std, "data_std", low=0.0, strict=True)
        self.n_grid = check_count(n_grid, "n_grid", minimum=3)
        self._check(mean, std, separation)
        self.slider("mean", -8.0, 8.0, 0.1, mean, description="μ of p_G")
        self.slider("std", 0.1, 3.0, 0.05, std, description="σ of p_G")
        self.slider("separation", 0.0, 6.0, 0.1, separation, description="data modes apart")

    @staticmethod
    def _check(mean, std, separation) -> tuple[float, float, float]:
        return (check_number(mean, "mean"),
                check_number(std, "std", low=0.0, strict=True),
                check_number(separation, "separation", low=0.0))

    def grid(self, mean: float, std: float, separation: float) -> np.ndarray:
        """The increasing grid ``(n_grid,)``: ``_TAIL`` standard deviations past every mode
        of both densities, so the quadrature of the JSD misses no mass."""
        half = separation / 2
        lo = min(-half - _TAIL * self.data_std, mean - _TAIL * std)
        hi = max(half + _TAIL * self.data_std, mean + _TAIL * std)
        return np.linspace(lo, hi, self.n_grid)

    def update(self, mean: float = 2.0, std: float = 1.0, separation: float = 3.0) -> dict:
        mean, std, separation = self._check(mean, std, separation)
        x = torch.from_numpy(self.grid(mean, std, separation))
        log_p_data = _log_density(-separation / 2, separation / 2, self.data_std)
        log_p_model = _log_density(mean, mean, std)
        lp, lq = log_p_data(x), log_p_model(x)
        jsd = jensen_shannon(log_p_data, log_p_model, x)
        return {
            "params": dict(mean=mean, std=std, separation=separation, data_std=self.data_std),
            "x": x.numpy(),
            "p_data": lp.exp().numpy(),
            "p_model": lq.exp().numpy(),
            "d_star": optimal_discriminator(lp, lq).numpy(),
            "jsd": jsd,
            "value": 2 * jsd - LOG4,
        }

    def draw(self, state, fig):
        x = state["x"]
        ax = fig.add_subplot(2, 1, 1)
        ax.fill_between(x, state["p_data"], color="0.8", label="p_data")
        ax.plot(x, state["p_data"], color="0.35", lw=1)
        ax.plot(x, state["p_model"], color="tab:red", lw=2, label="p_G")
        ax.set_ylabel("density")
        ax.legend(fontsize=8, loc="upper right")
        ax.set_title(f"JSD(p_data ‖ p_G) = {state['jsd']:.4f} nats (≤ log 2 = {math.log(2):.4f});"
                     f"  V(G, D*) = 2 JSD − log 4 = {state['value']:.4f}", fontsize=10)
        ax2 = fig.add_subplot(2, 1, 2, sharex=ax)
        ax2.plot(x, state["d_star"], color="tab:blue", lw=2,
                 label="D*(x) = p_data / (p_data + p_G)")
        ax2.axhline(0.5, color="0.5", ls="--", lw=1, label="1/2 (p_G = p_data)")
        ax2.set_ylim(-0.05, 1.05)
        ax2.set_xlabel("x")
        ax2.set_ylabel("D*(x)")
        ax2.legend(fontsize=8, loc="best")
        params = state["params"]
        half = params["separation"] / 2
        ax.set_xlim(min(-half - _PLOT_TAIL * params["data_std"],
                        params["mean"] - _PLOT_TAIL * params["std"]),
                    max(half + _PLOT_TAIL * params["data_std"],
                        params["mean"] + _PLOT_TAIL * params["std"]))
        fig.tight_layout()

    def summary(self, state) -> str:
        return (f"JSD(p_data ‖ p_G) = <b>{state['jsd']:.4f}</b> nats (between 0 and "
                f"log 2 = {math.log(2):.4f}); V(G, D*) = 2 JSD − log 4 = "
                f"<b>{state['value']:.4f}</b> (−log 4 = {-LOG4:.4f} when p_G = p_data, "
                "→ 0 as they separate).")
