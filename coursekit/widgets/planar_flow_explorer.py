r"""Planar flow explorer (lecture 06): one planar map bending N(0, I), and when it folds.

The planar map (Rezende & Mohamed, 2015) sends noise ``z`` to data ``x``,

.. math:: x = z + \hat u\, h(w^\top z + b),\qquad h = \tanh,\qquad
   \det \frac{\partial x}{\partial z} = 1 + h'(w^\top z + b)\, \hat u^\top w ,

and moves points only along :math:`\hat u`. The determinant is smallest where
:math:`h' = 1`, so the map is invertible iff :math:`w^\top \hat u \ge -1`; otherwise the
plane folds over itself in a band around :math:`w^\top z + b = 0`, where the
determinant is negative. The constraint
:math:`\hat u = u + [m(w^\top u) - w^\top u]\, w / \|w\|^2`, :math:`m(a) = -1 +
\operatorname{softplus}(a)` (:meth:`~coursekit.flows.PlanarTransform.u_hat`) makes
:math:`w^\top \hat u > -1` for every ``u``.

The density of ``x`` sums over all preimages ``z_i`` of ``x`` (one when invertible, up to
three in a fold):

.. math:: p(x) = \sum_i \frac{N(z_i; 0, I)}{|1 + h'(w^\top z_i + b)\, \hat u^\top w|} .

Every preimage has :math:`z_i = x - \hat u\, h(\alpha_i + b)` where :math:`\alpha_i = w^\top
z_i` solves :math:`g(\alpha) = \alpha + c \tanh(\alpha + b) - w^\top x = 0`,
:math:`c = w^\top \hat u`; ``g`` is monotone on at most three intervals split at its
turning points, and bisection finds the root in each interval where ``g`` changes sign.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from matplotlib.collections import LineCollection

from coursekit.flows.planar import PlanarTransform
from coursekit.widgets.base import App

_BISECTION_STEPS = 50  # a bracket of width <= 2 |c| + 2 < 40 down to below 1e-13


def planar_det(z: torch.Tensor, u_hat: torch.Tensor, w: torch.Tensor,
               b: torch.Tensor) -> torch.Tensor:
    r"""The signed Jacobian determinant :math:`1 + h'(w^\top z + b)\, \hat u^\top w` of the
    planar map at ``z`` ``(n, 2)``: ``(n,)``."""
    return 1.0 + (1.0 - torch.tanh(z @ w + b) ** 2) * (w @ u_hat)


def _turning_points(c: float, b: float) -> list[float]:
    r"""Where :math:`g'(\alpha) = 1 + c\, h'(\alpha + b)` vanishes: two points when
    :math:`c < -1`, none otherwise."""
    if c >= -1.0:
        return []
    a_star = math.atanh(math.sqrt(1.0 + 1.0 / c))
    return [-b - a_star, -b + a_star]


@torch.no_grad()
def planar_preimages(x: torch.Tensor, u_hat: torch.Tensor, w: torch.Tensor,
                     b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """All preimages ``z`` of ``x`` ``(n, 2)`` under the planar map (see the module doc).

    Returns ``z`` ``(3, n, 2)`` (one row per monotone piece of ``g``) and ``found``
    ``(3, n)``, True where that piece holds a root (so ``found.sum(0)`` counts the
    preimages; the other rows of ``z`` are NaN).
    """
    c, bias = float(w @ u_hat), float(b)
    t = x @ w
    # every root lies in [t - |c|, t + |c|]; the margin makes the signs at the ends strict
    ends = [t - abs(c) - 1.0] + [torch.full_like(t, a) for a in _turning_points(c, bias)]
    ends += [t + abs(c) + 1.0]

    def g(alpha, target):
        return alpha + c * torch.tanh(alpha + bias) - target

    zs, found = [], []
    for k in range(3):
        if k + 1 >= len(ends):
            zs.append(torch.full_like(x, math.nan))
            found.append(torch.zeros_like(t, dtype=torch.bool))
            continue
        lo = torch.clamp(ends[k], ends[0], ends[-1])
        hi = torch.clamp(ends[k + 1], ends[0], ends[-1])
        has_root = (g(lo, t) * g(hi, t) < 0) & (lo < hi)
        lo, hi, target = lo[has_root], hi[has_root], t[has_root]  # bisect where a root is
        sign_lo = torch.sign(g(lo, target))
        for _ in range(_BISECTION_STEPS):
            mid = 0.5 * (lo + hi)
            same = torch.sign(g(mid, target)) == sign_lo
            lo, hi = torch.where(same, mid, lo), torch.where(same, hi, mid)
        z = torch.full_like(x, math.nan)
        z[has_root] = x[has_root] - torch.tanh(0.5 * (lo + hi) + bias)[:, None] * u_hat
        zs.append(z)
        found.append(has_root)
    return torch.stack(zs), torch.stack(found)


def planar_density(x: torch.Tensor, u_hat: torch.Tensor, w: torch.Tensor,
                   b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r""":math:`p(x) = \sum_i N(z_i) / |\det(z_i)|` over the preimages of ``x`` ``(n, 2)``.

    Returns ``(density (n,), number of preimages (n,))``."""
    z, found = planar_preimages(x, u_hat, w, b)
    flat = z.reshape(-1, 2)
    normal = torch.exp(-0.5 * (flat ** 2).sum(1)) / (2 * math.pi)
    terms = (normal / planar_det(flat, u_hat, w, b).abs()).reshape(found.shape)
    return torch.where(found, terms, 0.0).sum(0), found.sum(0)


class PlanarFlowExplorer(App):
    """One planar map applied to N(0, I) in 2-D: the warped grid, p(x) and the fold.

    Args: the controls' starting values (``u = (u1, u2)``, ``w = (w1, w2)``, ``b``,
    ``constrained``), ``z_extent`` (the half-width of the square ``z``-window; the grid of
    lines covers ``[-3, 3]^2``) and ``resolution`` (points per axis of the ``z``- and
    ``x``-grids).

    ``update(u1, u2, w1, w2, b, constrained)`` returns a dict with ``u``, ``u_hat``, ``w``
    ``(2,)``, ``b``, ``wu`` (:math:`w^\\top u`), ``wu_hat`` (:math:`w^\\top \\hat u`),
    ``z_lines`` and ``x_lines`` ``(26, n_steps, 2)`` (the grid and its image), ``z_extent``
    and ``z_det`` ``(resolution, resolution)`` (the determinant on the ``z``-grid),
    ``min_det`` (its minimum), ``x_extent``, ``density`` and ``preimages``
    ``(resolution, resolution)`` (p(x) and the number of preimages on the ``x``-grid; rows
    along the second coordinate), ``invertible`` (:math:`w^\\top \\hat u \\ge -1`) and
    ``fold_x`` (the values ``s`` of the lines :math:`w^\\top x = s` bounding the folded
    region, empty without a fold). With ``w = 0`` the map is the translation by
    ``u tanh(b)`` and ``u`` is used as is (the constraint divides by :math:`\\|w\\|^2`).
    """

    name = "planar-flow"
    figsize = (11.0, 5.0)

    def __init__(self, u1: float = -1.2, u2: float = 0.6, w1: float = 1.5, w2: float = 0.5,
                 b: float = 0.0, constrained: bool = True, z_extent: float = 4.0,
                 resolution: int = 150):
        super().__init__()
        self.z_extent, self.resolution = float(z_extent), int(resolution)
        for name, value in (("u1", u1), ("u2", u2), ("w1", w1), ("w2", w2), ("b", b)):
            self.slider(name, -3.0, 3.0, 0.1, value)
        self.checkbox("constrained", constrained, description="constrain û (invertible)")

    def layer(self, u1, u2, w1, w2, b, constrained) -> PlanarTransform:
        """The :class:`~coursekit.flows.PlanarTransform` with these parameters (float64)."""
        layer = PlanarTransform(2, constrained=bool(constrained)).double()
        with torch.no_grad():
            layer.u.copy_(torch.tensor([float(u1), float(u2)]))
            layer.w.copy_(torch.tensor([float(w1), float(w2)]))
            layer.b.fill_(float(b))
        return layer

    def _grid(self, extent: float) -> torch.Tensor:
        ticks = torch.linspace(-extent, extent, self.resolution, dtype=torch.float64)
        y2, y1 = torch.meshgrid(ticks, ticks, indexing="ij")
        return torch.stack([y1.reshape(-1), y2.reshape(-1)], dim=1)

    @torch.no_grad()
    def update(self, u1=-1.2, u2=0.6, w1=1.5, w2=0.5, b=0.0, constrained=True) -> dict:
        layer = self.layer(u1, u2, w1, w2, b, constrained)
        w, bias = layer.w.detach(), layer.b.detach()
        u_hat = (layer.u_hat() if bool(w @ w > 0) else layer.u).detach()
        r = self.resolution
        z_grid = self._grid(self.z_extent)
        z_det = planar_det(z_grid, u_hat, w, bias).reshape(r, r)
        # x = z + u_hat tanh(.) moves points by less than |u_hat| along each axis
        x_extent = float(max(5.0, math.ceil(3.5 + u_hat.abs().max().item())))
        density, preimages = planar_density(self._grid(x_extent), u_hat, w, bias)
        ticks = torch.linspace(-3.0, 3.0, 13, dtype=torch.float64)
        along = torch.linspace(-3.0, 3.0, 150, dtype=torch.float64)
        const, run = torch.meshgrid(ticks, along, indexing="ij")
        vertical = torch.stack([const, run], dim=-1)
        z_lines = torch.cat([vertical, vertical.flip(-1)])
        x_lines = z_lines + torch.tanh(z_lines @ w + bias)[..., None] * u_hat
        c = float(w @ u_hat)
        fold_x = [a + c * math.tanh(a + float(bias)) for a in _turning_points(c, float(bias))]
        return {
            "u": layer.u.detach().numpy(), "u_hat": u_hat.numpy(), "w": w.numpy(),
            "b": float(bias), "wu": float(w @ layer.u), "wu_hat": c,
            "z_lines": z_lines.numpy(), "x_lines": x_lines.numpy(),
            "z_extent": self.z_extent, "z_det": z_det.numpy(),
            "min_det": float(z_det.min()), "x_extent": x_extent,
            "density": density.reshape(r, r).numpy(),
            "preimages": preimages.reshape(r, r).numpy(),
            "invertible": c >= -1.0, "fold_x": fold_x, "constrained": bool(constrained),
        }

    def draw(self, state: dict, fig) -> None:
        ax_z, ax_x = fig.subplots(1, 2)
        ez, ex = state["z_extent"], state["x_extent"]
        z_box, x_box = (-ez, ez, -ez, ez), (-ex, ex, -ex, ex)
        normal = np.exp(-0.5 * self._grid(ez).pow(2).sum(1).numpy()) / (2 * np.pi)
        ax_z.imshow(normal.reshape(self.resolution, -1), origin="lower", extent=z_box,
                    cmap="Blues", aspect="equal")
        fold = np.ma.masked_where(state["z_det"] > 0, np.ones_like(state["z_det"]))
        ax_z.imshow(fold, origin="lower", extent=z_box, cmap="Reds", vmin=0, vmax=1.5,
                    alpha=0.3, aspect="equal")
        ax_z.add_collection(LineCollection(state["z_lines"], colors="0.3", linewidths=0.6))
        ax_z.annotate("", xy=state["w"], xytext=(0, 0),
                      arrowprops=dict(arrowstyle="->", color="tab:green", lw=2))
        ax_z.text(*state["w"], " w", color="tab:green", fontsize=11)
        ax_z.set_title("z ~ N(0, I); red: det ≤ 0 (the fold)", fontsize=10)

        ax_x.imshow(state["density"], origin="lower", extent=x_box, cmap="Blues",
                    aspect="equal", vmax=np.quantile(state["density"], 0.995))
        folded = np.ma.masked_where(state["preimages"] < 2,
                                    np.ones_like(state["preimages"], dtype=float))
        ax_x.imshow(folded, origin="lower", extent=x_box, cmap="Reds", vmin=0, vmax=1.5,
                    alpha=0.2, aspect="equal")
        ax_x.add_collection(LineCollection(state["x_lines"], colors="0.3", linewidths=0.6))
        w = state["w"]
        for s in state["fold_x"]:
            point = s * w / (w @ w)
            ax_x.axline(point, point + np.array([-w[1], w[0]]), color="tab:red", lw=1.2)
        ax_x.annotate("", xy=state["u_hat"], xytext=(0, 0),
                      arrowprops=dict(arrowstyle="->", color="tab:orange", lw=2))
        ax_x.text(*state["u_hat"], " û", color="tab:orange", fontsize=11)
        status = "invertible" if state["invertible"] else "folds: 3 preimages in red band"
        ax_x.set_title(f"x = z + û tanh(wᵀz + b): p(x), {status}", fontsize=10)
        for ax, box, name in ((ax_z, z_box, "z"), (ax_x, x_box, "x")):
            ax.set_xlim(*box[:2])
            ax.set_ylim(*box[2:])
            ax.set_xlabel(f"{name}1")
            ax.set_ylabel(f"{name}2")

    def summary(self, state: dict) -> str:
        verdict = ("<b>invertible</b> (wᵀû ≥ −1)" if state["invertible"]
                   else "<b>not invertible</b>: wᵀû < −1, the plane folds")
        return (f"wᵀu = {state['wu']:.3f}, wᵀû = {state['wu_hat']:.3f} "
                f"({'constrained' if state['constrained'] else 'unconstrained: û = u'}); "
                f"minimum det ∂x/∂z over the z-grid = {state['min_det']:.3f}; {verdict}")
