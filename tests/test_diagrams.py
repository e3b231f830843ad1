"""Tests that coursekit.diagrams draws what it claims: node patches by kind, arrows
between the right nodes, plates around their members with the count label, the
reparameterisation graph's gradient arrows, the Jensen gap's endpoints."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.patches import Circle, FancyArrowPatch, Rectangle, RegularPolygon  # noqa: E402

from coursekit import diagrams  # noqa: E402


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def by_gid(ax, prefix):
    ax.figure.canvas.draw()          # renders every label (a TeX typo fails here)
    return {p.get_gid(): p for p in ax.patches if (p.get_gid() or "").startswith(prefix)}


def texts(ax):
    return [t.get_text() for t in ax.texts]


def test_graphical_model_nodes_edges_plates():
    ax = diagrams.graphical_model(
        {"z": (0, 1), "x": (0, 0, "observed"), "t": {"xy": (1, 1), "kind": "parameter",
                                                     "label": r"$\theta$"}},
        [("z", "x"), ("t", "x", {"linestyle": "--"})], [(["z", "x"], "N")])
    nodes = by_gid(ax, "node:")
    assert set(nodes) == {"node:z", "node:x", "node:t"}
    assert isinstance(nodes["node:z"], Circle) and isinstance(nodes["node:x"], Circle)
    # observed shaded, latent white, parameter black
    assert nodes["node:z"].get_facecolor()[:3] == (1.0, 1.0, 1.0)
    assert nodes["node:x"].get_facecolor()[:3] == pytest.approx((0.75, 0.75, 0.75))
    assert nodes["node:t"].get_facecolor()[:3] == (0.0, 0.0, 0.0)
    edges = by_gid(ax, "edge:")
    assert set(edges) == {"edge:z->x", "edge:t->x"}
    assert all(isinstance(e, FancyArrowPatch) for e in edges.values())
    assert edges["edge:t->x"].get_linestyle() == "--"
    # the arrow starts at the parent's rim and ends at the child's rim
    start, end = edges["edge:z->x"]._posA_posB
    assert start[1] == pytest.approx(1 - 0.32) and end[1] == pytest.approx(0.32)
    plates = by_gid(ax, "plate:")
    assert list(plates) == ["plate:N"] and isinstance(plates["plate:N"], Rectangle)
    rect = plates["plate:N"]
    x0, y0, w, h = rect.get_x(), rect.get_y(), rect.get_width(), rect.get_height()
    for cx, cy in ((0, 1), (0, 0)):             # both members inside
        assert x0 < cx < x0 + w and y0 < cy < y0 + h
    assert not (x0 < 1 < x0 + w and y0 < 1 < y0 + h)   # theta outside
    assert "N" in texts(ax) and r"$\theta$" in texts(ax)


def test_graphical_model_bad_input():
    with pytest.raises(ValueError, match="not a node"):
        diagrams.graphical_model({"z": (0, 0)}, [("z", "x")])
    with pytest.raises(ValueError, match="kind"):
        diagrams.graphical_model({"z": (0, 0, "hidden")})
    with pytest.raises(ValueError, match="plates"):
        diagrams.graphical_model({"z": (0, 0)}, plates=[(["x"], "N")])
    with pytest.raises(ValueError, match="nodes"):
        diagrams.graphical_model({})


def test_local_global_graph():
    left, right = diagrams.local_global_graph()
    assert set(by_gid(left, "node:")) == {"node:theta", "node:z", "node:x"}
    assert set(by_gid(right, "node:")) == {"node:theta", "node:x"}
    assert set(by_gid(left, "edge:")) == {"edge:theta->x", "edge:z->x"}
    assert set(by_gid(right, "edge:")) == {"edge:theta->x"}
    # local: z inside the plate; global: theta outside, a latent (white circle)
    rect = by_gid(left, "plate:")["plate:N"]
    assert rect.contains_point(left.transData.transform((0, 0.8)))
    rect_r = by_gid(right, "plate:")["plate:N"]
    assert not rect_r.contains_point(right.transData.transform((0, 1.1)))
    assert by_gid(right, "node:")["node:theta"].get_facecolor()[:3] == (1.0, 1.0, 1.0)


def test_ssvae_graph():
    ax = diagrams.ssvae_graph()
    nodes = by_gid(ax, "node:")
    assert set(nodes) == {"node:x", "node:y", "node:z", "node:theta", "node:phi"}
    assert nodes["node:y"].get_hatch() == "///"          # partly observed label
    edges = by_gid(ax, "edge:")
    generative = {g for g, e in edges.items() if e.get_linestyle() in ("-", "solid")}
    inference = {g for g, e in edges.items() if e.get_linestyle() == "--"}
    assert generative == {"edge:y->x", "edge:z->x", "edge:theta->x"}
    assert inference == {"edge:x->y", "edge:x->z", "edge:y->z", "edge:phi->z"}
    assert list(by_gid(ax, "plate:")) == ["plate:N"]


def test_reparameterisation_graph():
    ax = diagrams.reparameterisation_graph()
    orig = by_gid(ax, "original:node:")
    rep = by_gid(ax, "reparam:node:")
    assert isinstance(orig["original:node:z"], Circle)          # random node
    assert isinstance(rep["reparam:node:z"], RegularPolygon)    # deterministic node
    assert isinstance(rep["reparam:node:eps"], Circle)          # the noise is the random one
    grads = set(by_gid(ax, "grad:"))
    assert grads == {"grad:f->z", "grad:z->mu", "grad:z->sigma"}   # nothing flows to eps
    assert set(by_gid(ax, "reparam:edge:")) == {"reparam:edge:mu->z", "reparam:edge:sigma->z",
                                                "reparam:edge:eps->z", "reparam:edge:z->f"}
    assert any("blocked" in t for t in texts(ax))


def test_jensen_gap_endpoints():
    x1, x2, w = 0.5, 4.0, 0.3
    ax = diagrams.jensen_gap(x1=x1, x2=x2, weight=w)
    lines = {ln.get_gid(): ln for ln in ax.lines}
    gap = lines["gap"]
    mean = w * x1 + (1 - w) * x2
    assert np.allclose(gap.get_xdata(), [mean, mean])
    lo, hi = gap.get_ydata()
    assert hi == pytest.approx(math.log(mean))
    assert lo == pytest.approx(w * math.log(x1) + (1 - w) * math.log(x2))
    assert hi > lo
    assert np.allclose(lines["curve"].get_ydata(), np.log(lines["curve"].get_xdata()))
    assert np.allclose(lines["chord"].get_xdata(), [x1, x2])
    assert f"{hi - lo:.3f}" in gap.get_label()
    with pytest.raises(ValueError, match="weight"):
        diagrams.jensen_gap(weight=1.0)
    with pytest.raises(ValueError, match="x1"):
        diagrams.jensen_gap(x1=-1.0)
