"""Toy density explorer: pick a 2-D data set, a sample size and a seed, and
see the samples over the true density, with the entropy (the best test NLL any
model can reach) next to the Monte Carlo estimate -mean log p(x) from the
samples drawn."""

from __future__ import annotations

from functools import cache

import numpy as np

from coursekit.data.toy2d import TOY2D, get_toy2d
from coursekit.plotting import density_grid
from coursekit.widgets.base import App


@cache
def _grid(name: str, resolution: int):
    dist = get_toy2d(name)
    return density_grid(dist.log_prob, dist.extent, resolution)


class ToyDensityExplorer(App):
    """Samples from :func:`coursekit.data.toy2d` over the true density.

    ``update(dataset, n, seed, show_density)`` returns ``samples`` ``(n, 2)``,
    the density grid ``density`` (or None), ``extent``, ``entropy`` (nats) and
    ``mc_entropy`` = -mean log p(samples) with its standard error.
    """

    name = "toy-density"
    figsize = (5.0, 5.0)

    def __init__(self, dataset: str = "moons", n: int = 1000, seed: int = 0,
                 resolution: int = 120):
        super().__init__()
        self.resolution = resolution
        self.choice("dataset", TOY2D, dataset, description="data set")
        self.slider("n", 50, 5000, 50, n, description="samples")
        self.slider("seed", 0, 20, 1, seed)
        self.checkbox("show_density", True, description="show true density")

    def update(self, dataset="moons", n=1000, seed=0, show_density=True) -> dict:
        dist = get_toy2d(dataset)
        x = dist.sample(int(n), seed=int(seed))
        logp = dist.log_prob(x).double().numpy()
        finite = np.isfinite(logp)
        return {
            "dataset": dataset,
            "samples": x.numpy(),
            "density": np.exp(_grid(dataset, self.resolution)[2]) if show_density else None,
            "extent": dist.extent,
            "entropy": dist.entropy(),
            "mc_entropy": float(-logp[finite].mean()),
            "mc_stderr": float(logp[finite].std() / np.sqrt(finite.sum())),
            "description": dist.description,
        }

    def draw(self, state, fig):
        ax = fig.add_subplot(1, 1, 1)
        if state["density"] is not None:
            ax.imshow(state["density"], origin="lower", extent=state["extent"],
                      cmap="Blues", aspect="auto")
        x = state["samples"]
        ax.scatter(x[:, 0], x[:, 1], s=3, c="tab:orange", alpha=0.6)
        ax.set_xlim(*state["extent"][:2])
        ax.set_ylim(*state["extent"][2:])
        ax.set_aspect("equal")
        ax.set_title(f"{state['dataset']}: H = {state['entropy']:.3f} nats")

    def summary(self, state) -> str:
        return (
            f"<b>{state['dataset']}</b>: {state['description']}.<br>"
            f"True entropy H(p) = {state['entropy']:.4f} nats; "
            f"-mean log p over these {len(state['samples'])} samples = "
            f"{state['mc_entropy']:.4f} ± {state['mc_stderr']:.4f}."
        )
