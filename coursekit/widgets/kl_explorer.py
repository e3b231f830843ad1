"""Forward vs reverse KL: fit one Gaussian to a two-component mixture (lecture 01).

The target is ``p(x) = w N(x; m_1, s^2) + (1 - w) N(x; m_2, s^2)``; the model is
a single Gaussian ``q(x) = N(x; mu, sigma^2)``. The maths lives in
:mod:`coursekit.probability`: :func:`~coursekit.probability.forward_fit` (moment
matching, mode covering), :func:`~coursekit.probability.reverse_fit` (multi-start
L-BFGS on :func:`~coursekit.probability.reverse_kl`, mode seeking) and
:func:`~coursekit.probability.forward_kl`. The app draws both fits over ``p`` and
reports both KL directions of both; fits are cached per slider setting, so moving
a slider back is instant and a new setting costs a few milliseconds.
"""

from __future__ import annotations

import numpy as np

from coursekit.functional import log_normal_diag
from coursekit.probability import (
    bimodal_log_prob,
    forward_fit,
    forward_kl,
    reverse_fit,
    reverse_kl,
)
from coursekit.widgets.base import App


def _normal_density(x: np.ndarray, mean: float, std: float) -> np.ndarray:
    """``N(x; mean, std^2)`` on the plotting grid ``x`` ``(m,)``."""
    return np.exp(log_normal_diag(x[:, None], [mean], [std**2]).numpy())


class KLExplorer(App):
    """Fit one Gaussian to a bimodal target by forward and by reverse KL.

    ``update(mode1, mode2, weight, sigma)`` returns a dict with ``x`` ``(m,)``,
    ``target`` (density of p on ``x``), ``forward``/``reverse`` (the two fitted
    densities on ``x``), ``forward_params``/``reverse_params`` (``(mean, std)``)
    and ``kl``: ``{"forward": {"p||q": ..., "q||p": ...}, "reverse": {...}}``
    where ``"forward"`` is the moment-matched q and ``"reverse"`` the
    reverse-KL q.
    """

    name = "kl-explorer"
    figsize = (8.0, 4.0)

    def __init__(self, mode1=-2.0, mode2=2.0, weight=0.5, sigma=0.6, n_plot: int = 500):
        super().__init__()
        self.n_plot = n_plot
        self.slider("mode1", -5, 5, 0.1, mode1, description="mode 1")
        self.slider("mode2", -5, 5, 0.1, mode2, description="mode 2")
        self.slider("weight", 0.05, 0.95, 0.05, weight, description="weight w")
        self.slider("sigma", 0.2, 2.0, 0.05, sigma, description="comp. σ")

    def update(self, mode1=-2.0, mode2=2.0, weight=0.5, sigma=0.6) -> dict:
        mode1, mode2, weight, sigma = (round(float(v), 6) for v in (mode1, mode2, weight, sigma))
        fwd = forward_fit(mode1, mode2, weight, sigma)
        rev = reverse_fit(mode1, mode2, weight, sigma)
        span = max(abs(mode1 - mode2), 1.0)
        x = np.linspace(min(mode1, mode2) - 4 * sigma - 0.3 * span,
                        max(mode1, mode2) + 4 * sigma + 0.3 * span, self.n_plot)
        args = (mode1, mode2, weight, sigma)
        kl = {
            name: {"p||q": forward_kl(*params, *args), "q||p": reverse_kl(*params, *args)}
            for name, params in (("forward", fwd), ("reverse", rev))
        }
        return {
            "params": dict(mode1=mode1, mode2=mode2, weight=weight, sigma=sigma),
            "x": x,
            "target": np.exp(bimodal_log_prob(x, *args)),
            "forward": _normal_density(x, *fwd),
            "reverse": _normal_density(x, *rev),
            "forward_params": fwd,
            "reverse_params": rev,
            "kl": kl,
        }

    def draw(self, state, fig):
        ax = fig.add_subplot(1, 1, 1)
        x = state["x"]
        ax.fill_between(x, state["target"], color="0.85", label="target p (mixture)")
        ax.plot(x, state["target"], color="0.4", lw=1)
        kl = state["kl"]
        ax.plot(x, state["forward"], color="tab:blue", lw=2,
                label=f"argmin KL(p||q): KL(p||q) = {kl['forward']['p||q']:.3f}")
        ax.plot(x, state["reverse"], color="tab:red", lw=2, ls="--",
                label=f"argmin KL(q||p): KL(q||p) = {kl['reverse']['q||p']:.3f}")
        ax.set_xlabel("x")
        ax.set_ylabel("density")
        ax.set_title("forward KL covers the modes, reverse KL picks one")
        ax.legend(fontsize=8, loc="upper right")
        fig.tight_layout()

    def summary(self, state) -> str:
        kl = state["kl"]
        (mf, sf), (mr, sr) = state["forward_params"], state["reverse_params"]
        return (
            "<table><tr><th>fit</th><th>mean</th><th>std</th><th>KL(p‖q)</th>"
            "<th>KL(q‖p)</th></tr>"
            f"<tr><td>forward (moment matching)</td><td>{mf:.3f}</td><td>{sf:.3f}</td>"
            f"<td><b>{kl['forward']['p||q']:.4f}</b></td><td>{kl['forward']['q||p']:.4f}</td></tr>"
            f"<tr><td>reverse (optimised)</td><td>{mr:.3f}</td><td>{sr:.3f}</td>"
            f"<td>{kl['reverse']['p||q']:.4f}</td><td><b>{kl['reverse']['q||p']:.4f}</b></td>"
            "</tr></table>"
        )
