"""Forward vs reverse KL: fit one Gaussian to a two-component mixture.

The target is ``p(x) = w N(x; m_1, s^2) + (1 - w) N(x; m_2, s^2)``; the model is
a single Gaussian ``q(x) = N(x; mu, sigma^2)``.

* Forward KL, ``min_q KL(p || q)``: since ``KL(p||q) = -H(p) - E_p[log q]`` the
  minimiser matches moments (mode covering):

  .. math::
      \\mu = w m_1 + (1 - w) m_2, \\qquad
      \\sigma^2 = s^2 + w (1 - w) (m_1 - m_2)^2.

* Reverse KL, ``min_q KL(q || p) = -H(q) - E_q[log p]``, has no closed form.
  ``H(q) = 1/2 log(2 pi e sigma^2)`` is exact and ``E_q[log p]`` is computed by
  Gauss-Legendre quadrature on ``mu +- 12 sigma``, split where the two weighted
  components are equal (``log p`` bends sharply there when the modes are far
  apart), so the objective is smooth and accurate in ``(mu, log sigma)``;
  it is minimised with L-BFGS from several starts (each mode and the moment
  match) and the best local minimum kept. It tends to lock onto one mode
  (mode seeking) when the modes are far apart.

Both KL directions of both fits are reported; ``KL(p || q)`` is integrated on a
fine grid. Results are cached per slider setting, so moving a slider back is
instant and a new setting costs a few milliseconds.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.integrate import trapezoid
from scipy.optimize import minimize
from scipy.special import logsumexp

from coursekit.widgets.base import App

_GL_X, _GL_W = np.polynomial.legendre.leggauss(96)
_LOG_2PI = np.log(2 * np.pi)


def _check_target(weight, sigma):
    if not 0 < weight < 1:
        raise ValueError(f"weight: expected a mixture weight in (0, 1), got {weight!r}")
    if not sigma > 0:
        raise ValueError(f"sigma: expected a positive component std, got {sigma!r}")


def target_log_prob(x, mode1: float, mode2: float, weight: float, sigma: float) -> np.ndarray:
    """``log p(x)`` of the two-component mixture; ``x`` any shape, returns the same shape."""
    _check_target(weight, sigma)
    x = np.asarray(x, dtype=np.float64)
    comps = np.stack([
        np.log(weight) - 0.5 * ((x - mode1) / sigma) ** 2,
        np.log1p(-weight) - 0.5 * ((x - mode2) / sigma) ** 2,
    ])
    return logsumexp(comps, axis=0) - 0.5 * _LOG_2PI - np.log(sigma)


def normal_log_prob(x, mu: float, std: float) -> np.ndarray:
    """``log N(x; mu, std^2)`` elementwise."""
    x = np.asarray(x, dtype=np.float64)
    return -0.5 * ((x - mu) / std) ** 2 - 0.5 * _LOG_2PI - np.log(std)


def forward_fit(mode1, mode2, weight, sigma) -> tuple[float, float]:
    """The minimiser of ``KL(p || q)`` over Gaussians: ``(mean, std)`` of ``p``."""
    _check_target(weight, sigma)
    mean = weight * mode1 + (1 - weight) * mode2
    var = sigma**2 + weight * (1 - weight) * (mode1 - mode2) ** 2
    return float(mean), float(np.sqrt(var))


def _crossover(mode1, mode2, weight, sigma) -> float | None:
    """The x where ``w N(x; m1, s^2) = (1 - w) N(x; m2, s^2)`` (None if m1 = m2)."""
    if mode1 == mode2:
        return None
    return 0.5 * (mode1 + mode2) + sigma**2 * np.log((1 - weight) / weight) / (mode1 - mode2)


def reverse_kl(mu, std, mode1, mode2, weight, sigma) -> float:
    """``KL(q || p)`` for ``q = N(mu, std^2)``: ``-H(q) - E_q[log p]`` by quadrature."""
    entropy_q = 0.5 * (1 + _LOG_2PI) + np.log(std)
    lo, hi = mu - 12 * std, mu + 12 * std
    cut = _crossover(mode1, mode2, weight, sigma)
    edges = [lo, cut, hi] if cut is not None and lo < cut < hi else [lo, hi]
    cross = 0.0
    for a, b in zip(edges[:-1], edges[1:]):
        x = 0.5 * (b - a) * _GL_X + 0.5 * (a + b)
        f = np.exp(normal_log_prob(x, mu, std)) * target_log_prob(x, mode1, mode2, weight, sigma)
        cross += 0.5 * (b - a) * float(np.dot(_GL_W, f))
    return float(-entropy_q - cross)


def forward_kl(mu, std, mode1, mode2, weight, sigma, n_grid: int = 4001) -> float:
    """``KL(p || q)`` for ``q = N(mu, std^2)``, integrated on a grid covering ``p``."""
    lo = min(mode1, mode2) - 10 * sigma
    hi = max(mode1, mode2) + 10 * sigma
    x = np.linspace(lo, hi, n_grid)
    logp = target_log_prob(x, mode1, mode2, weight, sigma)
    return float(trapezoid(np.exp(logp) * (logp - normal_log_prob(x, mu, std)), x))


@lru_cache(maxsize=512)
def reverse_fit(mode1, mode2, weight, sigma) -> tuple[float, float]:
    """The best ``(mean, std)`` found for ``min KL(q || p)`` (multi-start L-BFGS)."""
    _check_target(weight, sigma)
    m_f, s_f = forward_fit(mode1, mode2, weight, sigma)
    starts = [(mode1, np.log(sigma)), (mode2, np.log(sigma)), (m_f, np.log(s_f))]

    def objective(theta):
        return reverse_kl(theta[0], np.exp(theta[1]), mode1, mode2, weight, sigma)

    best = None
    for start in starts:
        res = minimize(objective, np.array(start, dtype=np.float64), method="L-BFGS-B")
        if best is None or res.fun < best.fun:
            best = res
    return float(best.x[0]), float(np.exp(best.x[1]))


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
        import ipywidgets as widgets

        self.n_plot = n_plot

        def slider(value, lo, hi, desc, step=0.1):
            return widgets.FloatSlider(value=value, min=lo, max=hi, step=step,
                                       description=desc, continuous_update=False)

        self.controls = {
            "mode1": slider(mode1, -5, 5, "mode 1"),
            "mode2": slider(mode2, -5, 5, "mode 2"),
            "weight": slider(weight, 0.05, 0.95, "weight w", step=0.05),
            "sigma": slider(sigma, 0.2, 2.0, "comp. σ", step=0.05),
        }

    def update(self, mode1=-2.0, mode2=2.0, weight=0.5, sigma=0.6) -> dict:
        mode1, mode2, weight, sigma = (round(float(v), 6) for v in (mode1, mode2, weight, sigma))
        _check_target(weight, sigma)
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
            "target": np.exp(target_log_prob(x, *args)),
            "forward": np.exp(normal_log_prob(x, *fwd)),
            "reverse": np.exp(normal_log_prob(x, *rev)),
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
