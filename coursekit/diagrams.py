r"""Diagrams drawn in code (matplotlib): graphical models, the reparameterisation
computation graph and the Jensen gap.

Every function draws into ``ax`` (a new figure when ``None``) and returns the Axes. The
artists it adds carry a ``gid`` that names what they show, so tests (and curious readers)
can check that the picture holds what it claims:

* ``node:<name>`` for a node's patch, ``edge:<a>-><b>`` for an arrow,
  ``plate:<label>`` for a plate's rectangle;
* :func:`reparameterisation_graph` prefixes its two panels' gids with ``original:`` and
  ``reparam:`` and names the gradient arrows ``grad:<a>-><b>``;
* :func:`jensen_gap` marks ``curve``, ``chord``, ``points`` and ``gap``.

Conventions (Bishop, ch. 8; Kingma and Welling 2014): observed variables are shaded,
latent variables white circles, deterministic quantities diamonds, parameters small black
dots; a plate is a rectangle around variables repeated ``N`` times, with ``N`` in its
corner. Dashed arrows are inference (``q``) arrows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Circle, FancyArrowPatch, Rectangle, RegularPolygon

__all__ = ["graphical_model", "ssvae_graph", "local_global_graph", "reparameterisation_graph",
           "jensen_gap", "NODE_KINDS"]

NODE_KINDS = ("latent", "observed", "partial", "deterministic", "parameter")
_RADIUS = 0.32
_FILL = {"latent": "white", "observed": "0.75", "partial": "0.9", "deterministic": "white",
         "parameter": "black"}


def _axes(ax, figsize=(4, 3)):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def _node_spec(name, spec) -> dict:
    """Normalise ``(x, y)``, ``(x, y, kind)`` or a dict ``{"xy", "kind", "label"}``."""
    if isinstance(spec, Mapping):
        out = dict(spec)
    elif isinstance(spec, Sequence) and len(spec) in (2, 3):
        out = {"xy": tuple(spec[:2])}
        if len(spec) == 3:
            out["kind"] = spec[2]
    else:
        raise ValueError(f"nodes[{name!r}]: expected (x, y), (x, y, kind) or a dict with "
                         f"'xy', got {spec!r}")
    if "xy" not in out or len(out["xy"]) != 2:
        raise ValueError(f"nodes[{name!r}]: expected an 'xy' pair, got {spec!r}")
    kind = out.get("kind", "latent")
    if kind is True or kind is False:                 # (x, y, observed) with a bool
        kind = "observed" if kind else "latent"
    if kind not in NODE_KINDS:
        raise ValueError(f"nodes[{name!r}]: kind must be one of {NODE_KINDS}, got {kind!r}")
    out["kind"] = kind
    out.setdefault("label", name)
    out["xy"] = (float(out["xy"][0]), float(out["xy"][1]))
    return out


def _draw_node(ax, name, spec, prefix=""):
    x, y = spec["xy"]
    kind = spec["kind"]
    r = _RADIUS * (0.25 if kind == "parameter" else 1.0)
    if kind == "deterministic":
        patch = RegularPolygon((x, y), numVertices=4, radius=r * 1.25, facecolor="white",
                               edgecolor="black", lw=1.5)
    else:
        patch = Circle((x, y), r, facecolor=_FILL[kind], edgecolor="black", lw=1.5,
                       hatch="///" if kind == "partial" else None)
    patch.set_gid(f"{prefix}node:{name}")
    ax.add_patch(patch)
    if kind == "parameter":
        ax.text(x, y + 0.2, spec["label"], ha="center", va="bottom", fontsize=12)
    else:
        ax.text(x, y, spec["label"], ha="center", va="center", fontsize=13, zorder=5)
    return r * (1.25 if kind == "deterministic" else 1.0)


def _arrow(ax, p, q, r_p, r_q, gid, offset=0.0, **style):
    (x0, y0), (x1, y1) = p, q
    d = math.hypot(x1 - x0, y1 - y0)
    if d == 0:
        raise ValueError(f"{gid}: an edge needs two distinct positions")
    ux, uy = (x1 - x0) / d, (y1 - y0) / d
    # shift sideways (perpendicular to the edge) by ``offset``, e.g. a gradient beside an edge
    x0, y0, x1, y1 = x0 - uy * offset, y0 + ux * offset, x1 - uy * offset, y1 + ux * offset
    kw = {"arrowstyle": "-|>", "mutation_scale": 14, "lw": 1.4, "color": "black"}
    kw.update(style)
    arrow = FancyArrowPatch((x0 + ux * r_p, y0 + uy * r_p), (x1 - ux * r_q, y1 - uy * r_q),
                            **kw)
    arrow.set_gid(gid)
    ax.add_patch(arrow)
    return arrow


def graphical_model(nodes: Mapping, edges: Sequence = (), plates: Sequence = (), ax=None,
                    title: str | None = None, prefix: str = ""):
    """Draw a directed graphical model.

    Args:
        nodes: ``{name: spec}``; a spec is ``(x, y)``, ``(x, y, kind)`` (``kind`` one of
            :data:`NODE_KINDS`, or a bool: observed or not) or a dict with ``"xy"``,
            ``"kind"`` (default ``"latent"``) and ``"label"`` (default the name; TeX allowed).
        edges: ``(parent, child)`` pairs, or ``(parent, child, style)`` with a dict of
            :class:`~matplotlib.patches.FancyArrowPatch` options (``{"linestyle": "--"}``
            for an inference arrow).
        plates: ``(node_names, label)`` pairs: a rectangle around those nodes with ``label``
            (the repeat count, e.g. ``"N"``) in its lower-right corner. Nested plates work
            when the inner one lists fewer nodes (each plate pads around its own nodes).
        ax: where to draw (a new figure when ``None``).
        title: an optional title.
        prefix: prepended to every gid (to draw two graphs in one Axes).

    Returns:
        The Axes.
    """
    if not isinstance(nodes, Mapping) or not nodes:
        raise ValueError(f"nodes: expected a non-empty mapping name -> spec, got {nodes!r}")
    ax = _axes(ax)
    specs = {name: _node_spec(name, spec) for name, spec in nodes.items()}
    radius = {name: _draw_node(ax, name, spec, prefix) for name, spec in specs.items()}
    for edge in edges:
        if len(edge) not in (2, 3):
            raise ValueError(f"edges: expected (parent, child[, style]), got {edge!r}")
        a, b = edge[0], edge[1]
        for end in (a, b):
            if end not in specs:
                raise ValueError(f"edges: {end!r} is not a node (nodes: {list(specs)})")
        style = dict(edge[2]) if len(edge) == 3 else {}
        _arrow(ax, specs[a]["xy"], specs[b]["xy"], radius[a], radius[b],
               f"{prefix}edge:{a}->{b}", **style)
    xs = [s["xy"][0] for s in specs.values()]
    ys = [s["xy"][1] for s in specs.values()]
    lo_x, hi_x, lo_y, hi_y = min(xs) - 0.6, max(xs) + 0.6, min(ys) - 0.6, max(ys) + 0.6
    for members, label in plates:
        missing = [m for m in members if m not in specs]
        if missing or not members:
            raise ValueError(f"plates: {missing or members!r} are not nodes of the graph")
        px = [specs[m]["xy"][0] for m in members]
        py = [specs[m]["xy"][1] for m in members]
        pad = 0.55
        rect = Rectangle((min(px) - pad, min(py) - pad - 0.15), max(px) - min(px) + 2 * pad,
                         max(py) - min(py) + 2 * pad + 0.15, fill=False, lw=1.2,
                         edgecolor="0.2")
        rect.set_gid(f"{prefix}plate:{label}")
        ax.add_patch(rect)
        ax.text(max(px) + pad - 0.08, min(py) - pad - 0.08, str(label), ha="right",
                va="bottom", fontsize=11)
        lo_x, hi_x = min(lo_x, min(px) - pad - 0.1), max(hi_x, max(px) + pad + 0.1)
        lo_y, hi_y = min(lo_y, min(py) - pad - 0.25), max(hi_y, max(py) + pad + 0.1)
    if not prefix:
        ax.set_xlim(lo_x, hi_x)
        ax.set_ylim(lo_y, hi_y)
        ax.set_aspect("equal")
        ax.axis("off")
    if title:
        ax.set_title(title)
    return ax


def local_global_graph(ax=None):
    """Two latent variable models side by side (two Axes when ``ax`` is None; pass a pair
    of Axes otherwise): a *local* latent ``z_i`` per data point inside the plate (a VAE,
    PPCA, a mixture: ``p(x_i, z_i) = p(z_i) p(x_i | z_i)``, parameters θ outside) and a
    *global* latent θ shared by all points (Bayesian regression: ``p(θ) ∏ p(x_i | θ)``).

    Returns:
        The two Axes.
    """
    if ax is None:
        _, ax = plt.subplots(1, 2, figsize=(7, 3))
    left, right = ax
    graphical_model({"theta": {"xy": (-1.2, -0.4), "kind": "parameter", "label": r"$\theta$"},
                     "z": {"xy": (0, 0.8), "label": r"$z_i$"},
                     "x": {"xy": (0, -0.4), "kind": "observed", "label": r"$x_i$"}},
                    [("theta", "x"), ("z", "x")], [(["z", "x"], "N")], ax=left,
                    title="local latents $z_i$")
    graphical_model({"theta": {"xy": (0, 1.1), "label": r"$\theta$"},
                     "x": {"xy": (0, -0.4), "kind": "observed", "label": r"$x_i$"}},
                    [("theta", "x")], [(["x"], "N")], ax=right,
                    title=r"a global latent $\theta$")
    return ax


def ssvae_graph(ax=None):
    r"""The semi-supervised VAE (Kingma et al. 2014, model M2) as a graphical model.

    Generative model (solid): :math:`p(y)\,p(z)\,p_\theta(x\mid y, z)`, with ``x`` observed,
    ``z`` latent and the label ``y`` observed for the labelled examples only (hatched:
    partly observed). Inference model (dashed): :math:`q_\phi(y\mid x)` and
    :math:`q_\phi(z\mid x, y)`. One plate over the ``N`` examples; θ, φ outside.

    Returns:
        The Axes.
    """
    ax = _axes(ax, figsize=(4.5, 3.5))
    nodes = {"y": {"xy": (-1, 1), "kind": "partial", "label": "$y$"},
             "z": {"xy": (1, 1), "label": "$z$"},
             "x": {"xy": (0, -0.3), "kind": "observed", "label": "$x$"},
             "theta": {"xy": (-2.2, -0.3), "kind": "parameter", "label": r"$\theta$"},
             "phi": {"xy": (2.2, -0.3), "kind": "parameter", "label": r"$\phi$"}}
    dashed = {"linestyle": "--", "color": "tab:blue"}
    edges = [("y", "x"), ("z", "x"), ("theta", "x"),
             ("x", "y", dict(dashed, connectionstyle="arc3,rad=-0.3")),
             ("x", "z", dict(dashed, connectionstyle="arc3,rad=0.3")),
             ("y", "z", dashed), ("phi", "z", dashed)]
    graphical_model(nodes, edges, [(["y", "z", "x"], "N")], ax=ax,
                    title="SSVAE: p(y) p(z) p(x|y,z); q(y|x) q(z|x,y) dashed")
    return ax


def reparameterisation_graph(ax=None):
    r"""The reparameterisation trick as two computation graphs.

    Left (``original:``): :math:`z\sim\mathcal N(\mu,\sigma^2)` is a random node; the
    gradient of :math:`f(z)` cannot flow back through the sampling step to μ, σ.
    Right (``reparam:``): the randomness moves into :math:`\varepsilon\sim\mathcal N(0,1)`
    and :math:`z=\mu+\sigma\varepsilon` is deterministic, so
    :math:`\partial f/\partial\mu=f'(z)` and :math:`\partial f/\partial\sigma=f'(z)\,\varepsilon`
    flow back (red arrows ``grad:f->z``, ``grad:z->mu``, ``grad:z->sigma``); no gradient
    goes to ε.

    Returns:
        The Axes.
    """
    ax = _axes(ax, figsize=(8, 3.6))
    left = {"mu": {"xy": (0, 1.4), "kind": "deterministic", "label": r"$\mu$"},
            "sigma": {"xy": (1.4, 1.4), "kind": "deterministic", "label": r"$\sigma$"},
            "z": {"xy": (0.7, 0.2), "kind": "latent", "label": "$z$"},
            "f": {"xy": (0.7, -1.0), "kind": "deterministic", "label": "$f$"}}
    graphical_model(left, [("mu", "z"), ("sigma", "z"), ("z", "f")], ax=ax,
                    prefix="original:")
    ax.text(1.1, -0.4, r"$\nabla_{\mu,\sigma}$ blocked" + "\n(sampling)", color="tab:red",
            fontsize=9, ha="left", va="center")
    dx = 4.2
    right = {"mu": {"xy": (dx - 0.6, 1.4), "kind": "deterministic", "label": r"$\mu$"},
             "sigma": {"xy": (dx + 0.9, 1.4), "kind": "deterministic", "label": r"$\sigma$"},
             "eps": {"xy": (dx + 2.4, 1.4), "kind": "latent", "label": r"$\varepsilon$"},
             "z": {"xy": (dx + 0.9, 0.2), "kind": "deterministic", "label": "$z$"},
             "f": {"xy": (dx + 0.9, -1.0), "kind": "deterministic", "label": "$f$"}}
    graphical_model(right, [("mu", "z"), ("sigma", "z"), ("eps", "z"), ("z", "f")], ax=ax,
                    prefix="reparam:")
    red = {"color": "tab:red", "linestyle": "--"}
    xy = {k: v["xy"] for k, v in right.items()}
    r = _RADIUS * 1.25
    _arrow(ax, xy["f"], xy["z"], r, r, "grad:f->z", offset=0.3, **red)
    _arrow(ax, xy["z"], xy["mu"], r, r, "grad:z->mu", offset=-0.3, **red)
    _arrow(ax, xy["z"], xy["sigma"], r, r, "grad:z->sigma", offset=-0.3, **red)
    ax.text(dx + 1.5, -0.6, r"$\partial f/\partial\mu = f'(z)$" + "\n"
            + r"$\partial f/\partial\sigma = f'(z)\,\varepsilon$", color="tab:red", fontsize=9,
            ha="left", va="center")
    ax.text(xy["eps"][0], xy["eps"][1] + 0.45, r"$\varepsilon\sim\mathcal{N}(0,1)$",
            ha="center", fontsize=9)
    ax.text(0.7, 2.3, "original: z ~ N(μ, σ²)", ha="center", fontsize=11)
    ax.text(dx + 0.9, 2.3, "reparameterised: z = μ + σ ε", ha="center", fontsize=11)
    ax.set_xlim(-1.2, dx + 3.4)
    ax.set_ylim(-1.6, 2.6)
    ax.set_aspect("equal")
    ax.axis("off")
    return ax


def jensen_gap(ax=None, x1: float = 0.5, x2: float = 4.0, weight: float = 0.5):
    r"""Jensen's inequality for the concave log: the chord lies below the curve.

    With :math:`\bar x = w x_1 + (1-w) x_2`, the curve at the mean, :math:`\log\bar x`, is
    above the chord at the mean, :math:`w\log x_1 + (1-w)\log x_2`; the vertical segment
    ``gap`` between them is the Jensen gap :math:`\log\mathbb E[X]-\mathbb E[\log X]\ge 0`
    for the two-point distribution :math:`P(X=x_1)=w`. Its length is in the legend.

    Returns:
        The Axes.
    """
    if not (x1 > 0 and x2 > 0) or x1 == x2:
        raise ValueError(f"x1, x2: expected two distinct positive numbers, got {x1!r}, {x2!r}")
    if not 0 < weight < 1:
        raise ValueError(f"weight: expected a number in (0, 1), got {weight!r}")
    ax = _axes(ax, figsize=(5, 3.5))
    lo, hi = min(x1, x2), max(x1, x2)
    xs = np.linspace(lo * 0.5, hi * 1.25, 400)
    (curve,) = ax.plot(xs, np.log(xs), "k", lw=2, label=r"$\log x$")
    curve.set_gid("curve")
    (chord,) = ax.plot([x1, x2], [math.log(x1), math.log(x2)], color="tab:blue", lw=1.5,
                       label="chord")
    chord.set_gid("chord")
    pts = ax.scatter([x1, x2], [math.log(x1), math.log(x2)], color="tab:blue", zorder=5)
    pts.set_gid("points")
    mean = weight * x1 + (1 - weight) * x2
    mean_log = weight * math.log(x1) + (1 - weight) * math.log(x2)
    gap = math.log(mean) - mean_log
    (seg,) = ax.plot([mean, mean], [mean_log, math.log(mean)], color="tab:red", lw=3,
                     label=f"gap = log E[X] − E[log X] = {gap:.3f}")
    seg.set_gid("gap")
    ax.scatter([mean, mean], [mean_log, math.log(mean)], color="tab:red", zorder=6, s=15)
    ax.annotate(r"$\log\mathbb{E}[X]$", (mean, math.log(mean)), xytext=(-70, 12),
                textcoords="offset points", fontsize=10)
    ax.annotate(r"$\mathbb{E}[\log X]$", (mean, mean_log), xytext=(8, -16),
                textcoords="offset points", fontsize=10)
    ax.axvline(mean, color="0.7", lw=0.8, ls=":")
    ax.set_xlabel("x")
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(f"Jensen: P(X = {x1:g}) = {weight:g}, P(X = {x2:g}) = {1 - weight:g}")
    return ax
