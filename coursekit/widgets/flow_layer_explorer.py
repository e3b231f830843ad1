r"""Flow layer explorer (lecture 06): watch a trained 2-D flow bend the plane layer by layer.

A flow's transform is a chain ``f = f_K o ... o f_1`` from data to noise
(:class:`~coursekit.flows.Compose` keeps ``f_1, ..., f_K`` in ``.transforms``; a flow
whose transform is not a ``Compose``, such as a CNF, is one layer). Sampling runs the
chain backwards, so the *positions* of the explorer are

.. math:: y_0 = z \sim N(0, I),\qquad y_k = f_{K-k+1}^{-1}(y_{k-1}),\qquad y_K = x ,

and position ``k`` is reached through layer :math:`L_k = f_{K-k+1}` (inverted). The
density of the intermediate variable follows from the change of variables,

.. math:: \log p_k(y_k) = \log N(z; 0, I) - \sum_{j=1}^{k}
   \log\Big|\det \frac{\partial y_j}{\partial y_{j-1}}\Big| ,

so ``p_0`` is the base density and ``p_K`` the model's :math:`p(x)`. On a grid of
positions ``y`` it is evaluated by mapping ``y`` back to ``z`` with the layers' data-to-noise
``forward``.

In the ``"noise → data"`` direction the app pushes base samples and a regular grid of
lines in ``z``-space through the layers; in ``"data → noise"`` it pulls data points and
a regular grid in data space back through them (each layer's ``forward``), which is how
the flow evaluates ``log p(x)``.
"""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.collections import LineCollection

from coursekit._validation import as_generator, check_count, check_number
from coursekit.flows.base import Compose, Flow
from coursekit.flows.glow import ActNorm
from coursekit.runtime import module_dtype_device
from coursekit.widgets.base import App

DIRECTIONS = ("noise → data", "data → noise")
SHOW = ("samples", "grid", "both")


def flow_layers(flow: Flow) -> list:
    """The layers of ``flow`` in noise-to-data order ``[L_1, ..., L_K] = [f_K, ..., f_1]``."""
    transform = flow.transform
    layers = list(transform.transforms) if isinstance(transform, Compose) else [transform]
    return layers[::-1]


def _grid_lines(extent: float, n_lines: int, n_steps: int) -> torch.Tensor:
    """A square grid of lines on ``[-extent, extent]^2``: ``(2 * n_lines, n_steps, 2)``
    (first the lines of constant first coordinate, then those of constant second)."""
    ticks = torch.linspace(-extent, extent, n_lines, dtype=torch.float64)
    along = torch.linspace(-extent, extent, n_steps, dtype=torch.float64)
    const, run = torch.meshgrid(ticks, along, indexing="ij")
    vertical = torch.stack([const, run], dim=-1)
    return torch.cat([vertical, vertical.flip(-1)], dim=0)


class FlowLayerExplorer(App):
    """Step through a trained 2-D flow one layer at a time.

    Args:
        flow: a trained :class:`~coursekit.flows.Flow` with ``features == 2``.
        data: optional data points ``(m, 2)`` (tensor or array); with data the app gets a
            ``direction`` control that can pull them back to noise.
        grid_extent: the half-width of the square window ``[-e, e]^2`` every position is
            drawn in; the regular grid of lines covers ``[-3e/4, 3e/4]^2`` of the starting
            space.
        n_points: how many base samples (and at most how many data points) to push.
        resolution: the density image's points per axis.
        seed: the seed of the base samples ``z``
            (the same ``z`` as ``flow.sample(n_points, generator=seed)``).
        layer: the starting position (default ``K``, data space).

    ``update(layer, show, direction)`` returns a dict with ``points`` ``(n, 2)`` and
    ``lines`` ``(2 * n_lines, n_steps, 2)`` at position ``layer``, ``colors`` ``(n,)``
    (each point's first coordinate where it started, to follow it), ``density``
    ``(resolution, resolution)`` (:math:`p_k` on the window, rows along the second
    coordinate), ``extent``, ``layer``, ``n_layers``, ``layer_name``, ``logdet_layers``
    ``(K,)`` (the mean noise-to-data :math:`\\log|\\det|` of each layer over the points),
    ``logdet_layer`` and ``logdet_total`` (this layer's, and the sum over layers
    ``1..layer``), ``show`` and ``direction``.
    """

    name = "flow-layers"
    figsize = (11.0, 4.8)

    def __init__(self, flow: Flow, data=None, grid_extent: float = 4.0, n_points: int = 1000,
                 resolution: int = 80, seed: int = 0, layer: int | None = None):
        super().__init__()
        if not isinstance(flow, Flow):
            raise TypeError(f"flow: expected a coursekit.flows.Flow, got {type(flow).__name__}")
        if flow.features != 2:
            raise ValueError(f"flow: expected a 2-D flow (features == 2), "
                             f"got features={flow.features}")
        if any(isinstance(m, ActNorm) and not bool(m.initialized) for m in flow.modules()):
            raise ValueError("flow: expected a trained flow, got one whose ActNorm layers are "
                             "not initialised yet (train it, or call log_prob on data, first)")
        self.flow = flow
        self.layers = flow_layers(flow)
        self.grid_extent = check_number(grid_extent, "grid_extent", 0.0, strict=True)
        self.n_points = check_count(n_points, "n_points")
        self.resolution = check_count(resolution, "resolution", 2)
        self.seed = seed
        self.dtype, self.device = module_dtype_device(flow)
        self.data = None if data is None else self._check_data(data)[: self.n_points]
        self._chains: dict[str, dict] = {}
        self._densities: dict[int, np.ndarray] = {}
        n_layers = len(self.layers)
        start = n_layers if layer is None else layer
        if isinstance(start, bool) or not isinstance(start, (int, np.integer)) or not (
                0 <= start <= n_layers):
            raise ValueError(f"layer: expected an int in [0, {n_layers}], got {layer!r}")
        self.slider("layer", 0, n_layers, 1, int(start), description="layer")
        self.choice("show", SHOW, "both")
        if self.data is not None:
            self.choice("direction", DIRECTIONS, DIRECTIONS[0])

    def _check_data(self, data) -> torch.Tensor:
        x = torch.as_tensor(np.asarray(data.detach().cpu() if isinstance(data, torch.Tensor)
                                       else data, dtype=np.float64))
        if x.dim() != 2 or x.shape[1] != 2 or len(x) == 0:
            raise ValueError(f"data: expected points of shape (m, 2), got {tuple(x.shape)}")
        if not torch.isfinite(x).all():
            raise ValueError("data: contains NaN or infinite values")
        return x

    def _to_flow(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(device=self.device, dtype=self.dtype)

    def base_samples(self) -> torch.Tensor:
        """The base samples ``z`` ``(n_points, 2)``, drawn as ``flow.sample`` draws them."""
        gen = as_generator(self.seed, "seed", self.device)
        with torch.no_grad():
            return self.flow.base.sample(self.n_points, generator=gen)

    @torch.no_grad()
    def chain(self, direction: str) -> dict:
        """Points and grid lines at every position ``0..K`` (cached per direction).

        Returns ``points`` (a list of ``K + 1`` arrays ``(n, 2)``), ``lines`` (``K + 1``
        arrays ``(2 * n_lines, n_steps, 2)``) and ``logdet`` ``(K, n)``: row ``k - 1`` is
        :math:`\\log|\\det \\partial y_k / \\partial y_{k-1}|` of layer ``L_k`` at each point.
        """
        if direction not in DIRECTIONS:
            raise ValueError(f"direction: expected one of {DIRECTIONS}, got {direction!r}")
        if direction == DIRECTIONS[1] and self.data is None:
            raise ValueError("direction: 'data → noise' needs data; pass data= to the app")
        if direction in self._chains:
            return self._chains[direction]
        lines0 = _grid_lines(0.75 * self.grid_extent, 13, 120)
        n_lines = lines0.shape[:2]
        if direction == DIRECTIONS[0]:
            y = torch.cat([self.base_samples(), self._to_flow(lines0.reshape(-1, 2))])
            states, logdets = [y], []
            for layer in self.layers:
                y, logabsdet = layer.inverse(y)
                states.append(y)
                logdets.append(logabsdet)
        else:
            y = self._to_flow(torch.cat([self.data, lines0.reshape(-1, 2)]))
            states, logdets = [y], []
            for layer in self.layers[::-1]:
                y, logabsdet = layer(y)
                states.append(y)
                logdets.append(-logabsdet)
            states, logdets = states[::-1], logdets[::-1]
        n = len(states[0]) - lines0.shape[0] * lines0.shape[1]
        arrays = [s.detach().cpu().double().numpy() for s in states]
        self._chains[direction] = {
            "points": [a[:n] for a in arrays],
            "lines": [a[n:].reshape(*n_lines, 2) for a in arrays],
            "logdet": torch.stack(logdets)[:, :n].detach().cpu().double().numpy()
            if logdets else np.zeros((0, n)),
        }
        return self._chains[direction]

    @torch.no_grad()
    def density(self, layer: int) -> np.ndarray:
        """:math:`p_k` on the window's grid ``(resolution, resolution)`` (cached):
        ``y`` is mapped back to ``z`` by ``forward`` of ``L_k, ..., L_1``."""
        if layer not in self._densities:
            e, r = self.grid_extent, self.resolution
            ticks = torch.linspace(-e, e, r, dtype=torch.float64)
            y2, y1 = torch.meshgrid(ticks, ticks, indexing="ij")
            y = self._to_flow(torch.stack([y1.reshape(-1), y2.reshape(-1)], dim=1))
            log_p = torch.zeros(len(y), dtype=y.dtype, device=y.device)
            for transform in self.layers[:layer][::-1]:
                y, logabsdet = transform(y)
                log_p = log_p + logabsdet
            log_p = log_p + self.flow.base.log_prob(y)
            self._densities[layer] = log_p.exp().cpu().double().numpy().reshape(r, r)
        return self._densities[layer]

    def update(self, layer=None, show="both", direction=DIRECTIONS[0]) -> dict:
        n_layers = len(self.layers)
        layer = n_layers if layer is None else layer
        if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)) or not (
                0 <= layer <= n_layers):
            raise ValueError(f"layer: expected an int in [0, {n_layers}], got {layer!r}")
        if show not in SHOW:
            raise ValueError(f"show: expected one of {SHOW}, got {show!r}")
        layer = int(layer)
        chain = self.chain(direction)
        start = 0 if direction == DIRECTIONS[0] else n_layers
        means = chain["logdet"].mean(axis=1)
        e = self.grid_extent
        return {
            "points": chain["points"][layer], "lines": chain["lines"][layer],
            "colors": chain["points"][start][:, 0], "density": self.density(layer),
            "extent": (-e, e, -e, e), "layer": layer, "n_layers": n_layers,
            "layer_name": type(self.layers[layer - 1]).__name__ if layer else "base N(0, I)",
            "logdet_layers": means,
            "logdet_layer": float(means[layer - 1]) if layer else 0.0,
            "logdet_total": float(means[:layer].sum()),
            "show": show, "direction": direction,
        }

    def draw(self, state: dict, fig) -> None:
        ax, ax_det = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.15, 1]})
        ax.imshow(state["density"], origin="lower", extent=state["extent"], cmap="Blues",
                  aspect="equal")
        if state["show"] in ("grid", "both"):
            ax.add_collection(LineCollection(state["lines"], colors="0.25", linewidths=0.6,
                                             alpha=0.7))
        if state["show"] in ("samples", "both"):
            ax.scatter(*state["points"].T, c=state["colors"], cmap="plasma", s=4, alpha=0.8)
        ax.set_xlim(*state["extent"][:2])
        ax.set_ylim(*state["extent"][2:])
        k, n_layers = state["layer"], state["n_layers"]
        where = ("base N(0, I)" if k == 0 else "data space" if k == n_layers
                 else f"after {state['layer_name']}")
        ax.set_title(f"position {k} of {n_layers} ({where})\n{state['direction']}; "
                     f"shading: density p_{k}; colour: where a point started", fontsize=10)
        ax.set_xlabel("y1")
        ax.set_ylabel("y2")
        means = state["logdet_layers"]
        ks = np.arange(1, n_layers + 1)
        colors = ["tab:orange" if j == k else "tab:blue" for j in ks]
        ax_det.bar(ks, means, color=colors, label="layer L_k")
        ax_det.plot(np.arange(n_layers + 1), np.concatenate([[0.0], np.cumsum(means)]),
                    "k.-", label="accumulated")
        ax_det.axhline(0.0, color="0.6", lw=0.8)
        ax_det.axvline(k, color="tab:orange", ls="--", lw=1)
        ax_det.set_xlabel("layer k (noise → data)")
        ax_det.set_ylabel("mean log|det ∂y_k/∂y_(k-1)|")
        ax_det.set_title("volume change per layer (mean over the points)", fontsize=10)
        ax_det.legend(fontsize=8)

    def summary(self, state: dict) -> str:
        k, n_layers = state["layer"], state["n_layers"]
        if k == 0:
            return (f"position 0 of {n_layers}: the base N(0, I); no layer applied yet "
                    f"(accumulated mean log|det| = 0)")
        return (f"position {k} of {n_layers}: layer {k} = <b>{state['layer_name']}</b>; "
                f"mean log|det| of this layer = {state['logdet_layer']:.3f}, "
                f"accumulated over layers 1..{k} = {state['logdet_total']:.3f} "
                f"(log p_{k}(y) = log N(z) − accumulated)")
