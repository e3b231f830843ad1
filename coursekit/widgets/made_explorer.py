r"""MADE connectivity explorer (lecture 05): masks that make an autoencoder autoregressive.

MADE gives every input its position in the ordering as a *degree* ``1..n``, every
hidden unit a degree in ``[1, n-1]``, and keeps a weight only where it cannot
carry information backwards in the ordering:

* into a hidden unit of degree ``d``: from units of degree ``<= d``;
* into output ``j`` (degree of input ``x_j``): from hidden units of degree ``< m(x_j)``.

The app draws the network with only the connections the masks keep, each unit
labelled with its degree, and the input-output connectivity (the product of the
masks): row ``j`` lists the inputs output ``j`` can reach, which are exactly the
variables before ``x_j`` in the ordering.
"""

from __future__ import annotations

import numpy as np
import torch

from coursekit.autoregressive.masks import connectivity, made_masks
from coursekit.widgets.base import App

ORDERINGS = ("natural", "reversed", "shifted", "random")


def make_ordering(kind: str, features: int, seed: int = 0) -> list[int]:
    """An ordering of ``range(features)`` (0-based variable indices, first to last).

    ``"shifted"`` is ``x_2, x_3, ..., x_n, x_1``: with three variables it is the
    worked example ``x_2, x_3, x_1``.
    """
    if kind not in ORDERINGS:
        raise ValueError(f"ordering: expected one of {ORDERINGS}, got {kind!r}")
    if kind == "natural":
        return list(range(features))
    if kind == "reversed":
        return list(range(features))[::-1]
    if kind == "shifted":
        return list(range(1, features)) + [0]
    gen = torch.Generator().manual_seed(int(seed))
    return torch.randperm(features, generator=gen).tolist()


def _conditional(j: int, parents: list[int]) -> str:
    given = ", ".join(f"x{i + 1}" for i in parents)
    return f"p(x{j + 1} | {given})" if given else f"p(x{j + 1})"


class MADEExplorer(App):
    """Choose an ordering and hidden degrees; see MADE's masks and what each output sees.

    ``update(features, ordering, hidden, layers, degrees, seed)`` returns a dict with
    ``order`` (variable indices, first to last), ``degrees`` (one ``(units,)`` array per
    layer, inputs first), ``masks`` (one ``(out, in)`` 0/1 array per layer),
    ``connectivity`` ``(n, n)`` (output ``j`` row, input ``i`` column) and ``parents``
    (for each variable, the inputs its output depends on, in the ordering).
    """

    name = "made-explorer"
    figsize = (11.0, 4.6)

    def __init__(self, features: int = 3, ordering: str = "shifted", hidden: int = 4,
                 layers: int = 1, degrees: str = "cycle", seed: int = 0):
        super().__init__()
        self.slider("features", 2, 6, 1, features, description="variables n")
        self.choice("ordering", ORDERINGS, ordering)
        self.slider("hidden", 1, 8, 1, hidden, description="units/layer")
        self.slider("layers", 1, 2, 1, layers, description="hidden layers")
        self.choice("degrees", ("cycle", "random"), degrees, description="hidden degrees")
        self.slider("seed", 0, 9, 1, seed)

    def update(self, features=3, ordering="shifted", hidden=4, layers=1, degrees="cycle",
               seed=0) -> dict:
        n = int(features)
        order = make_ordering(ordering, n, seed)
        gen = torch.Generator().manual_seed(int(seed) + 1)
        masks, degs = made_masks(order, [int(hidden)] * int(layers), generator=gen,
                                 mode=degrees)
        conn = connectivity(masks).numpy()
        parents = [[i for i in order if conn[j, i] > 0] for j in range(n)]
        return {"order": order, "degrees": [d.numpy() for d in degs],
                "masks": [m.numpy() for m in masks], "connectivity": conn,
                "parents": parents}

    def draw(self, state: dict, fig) -> None:
        ax_net, ax_conn = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.6, 1]})
        self._draw_network(state, ax_net)
        order = state["order"]
        # rows and columns in the ordering: the autoregressive property is then a
        # strictly lower-triangular matrix
        in_order = state["connectivity"][np.ix_(order, order)]
        ax_conn.imshow(in_order, cmap="Greens", vmin=0, vmax=1.4)
        ax_conn.set_xticks(range(len(order)), [f"x{i + 1}" for i in order])
        ax_conn.set_yticks(range(len(order)), [f"out x{j + 1}" for j in order])
        ax_conn.set_xlabel("input (in the ordering)")
        ax_conn.set_title("output j reaches input i (green)")

    @staticmethod
    def _draw_network(state: dict, ax) -> None:
        degrees, masks = state["degrees"], state["masks"]
        columns = degrees + [degrees[0]]  # the outputs carry the inputs' degrees
        names = ["input"] + [f"hidden {k}" for k in range(1, len(degrees))] + ["output"]

        def xs(k):
            m = len(columns[k])
            return np.linspace(0, 1, m) if m > 1 else np.array([0.5])

        for k, mask in enumerate(masks):  # edges of layer k: column k -> column k + 1
            out_idx, in_idx = np.nonzero(mask)
            for o, i in zip(out_idx, in_idx):
                ax.plot([xs(k)[i], xs(k + 1)[o]], [k, k + 1], color="0.6", lw=0.8, zorder=1)
        for k, degs in enumerate(columns):
            ax.scatter(xs(k), np.full(len(degs), k), s=420, c="white", edgecolors="k",
                       zorder=2)
            for x, d in zip(xs(k), degs):
                ax.text(x, k, str(int(d)), ha="center", va="center", fontsize=9, zorder=3)
            ax.text(-0.12, k, names[k], ha="right", va="center")
        n = len(degrees[0])
        for i in range(n):
            ax.text(xs(0)[i], -0.35, f"x{i + 1}", ha="center", va="top")
            ax.text(xs(len(columns) - 1)[i], len(columns) - 0.7, f"x̂{i + 1}",
                    ha="center", va="bottom")
        ax.set_xlim(-0.55, 1.1)
        ax.set_ylim(-0.8, len(columns) - 0.3)
        ax.axis("off")
        ax.set_title("MADE: units labelled with their degree")

    def summary(self, state: dict) -> str:
        order = ", ".join(f"x{i + 1}" for i in state["order"])
        parts = [_conditional(i, state["parents"][i]) for i in state["order"]]
        kept = sum(int(m.sum()) for m in state["masks"])
        total = sum(m.size for m in state["masks"])
        return (f"ordering {order}: p(x) = {' '.join(parts)}; "
                f"{kept} of {total} weights kept")
