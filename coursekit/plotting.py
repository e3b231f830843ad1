"""Plots the lectures share: densities on a grid, samples, image grids, curves.

All plotting functions take an optional matplotlib ``ax`` and return it, so
notebooks can compose figures; nothing here calls ``plt.show()``.
:func:`gaussian_ellipse` returns the points of a covariance ellipse to draw.
"""

from __future__ import annotations

from collections.abc import Callable

import matplotlib.pyplot as plt
import numpy as np
import torch

from coursekit._validation import check_count, check_device
from coursekit.train.history import smooth


def _to_numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def density_grid(
    log_prob: Callable[[torch.Tensor], torch.Tensor],
    extent: tuple[float, float, float, float] = (-4.0, 4.0, -4.0, 4.0),
    resolution: int = 150,
    device=None,
    dtype=torch.float32,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Evaluate ``log_prob`` on a regular grid.

    Args:
        log_prob: maps points ``(m, 2)`` to log-densities ``(m,)``.
        extent: ``(xmin, xmax, ymin, ymax)``.
        resolution: grid points per axis.

    Returns:
        ``(X, Y, logp)``, each ``(resolution, resolution)`` NumPy arrays
        (``X`` varies along columns, as in ``np.meshgrid``).
    """
    if len(extent) != 4 or not (extent[0] < extent[1] and extent[2] < extent[3]):
        raise ValueError(f"extent: expected (xmin, xmax, ymin, ymax) with min < max, got {extent}")
    check_count(resolution, "resolution", 2)
    device = check_device(device)
    xs = torch.linspace(extent[0], extent[1], resolution, dtype=dtype)
    ys = torch.linspace(extent[2], extent[3], resolution, dtype=dtype)
    Y, X = torch.meshgrid(ys, xs, indexing="ij")
    pts = torch.stack([X.reshape(-1), Y.reshape(-1)], dim=1)
    if device is not None:
        pts = pts.to(device)
    with torch.no_grad():
        logp = log_prob(pts)
    logp = _to_numpy(logp).reshape(resolution, resolution)
    return X.numpy(), Y.numpy(), logp


def plot_density(
    log_prob: Callable[[torch.Tensor], torch.Tensor],
    extent=(-4.0, 4.0, -4.0, 4.0),
    ax=None,
    resolution: int = 150,
    kind: str = "heatmap",
    cmap: str = "viridis",
    title: str | None = None,
    device=None,
):
    """Show exp(log_prob) as a heat map (``kind="heatmap"``) or contours."""
    if kind not in ("heatmap", "contour"):
        raise ValueError(f"kind: expected 'heatmap' or 'contour', got {kind!r}")
    ax = ax or plt.gca()
    X, Y, logp = density_grid(log_prob, extent, resolution, device=device)
    p = np.exp(logp)
    if kind == "heatmap":
        ax.imshow(p, origin="lower", extent=extent, cmap=cmap, aspect="auto")
    else:
        ax.contour(X, Y, p, levels=8, cmap=cmap)
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    if title:
        ax.set_title(title)
    return ax


def plot_samples(
    x,
    ax=None,
    log_prob: Callable | None = None,
    extent=None,
    c=None,
    s: float = 3.0,
    alpha: float = 0.6,
    title: str | None = None,
    **scatter_kwargs,
):
    """Scatter 2-D samples ``x`` ``(n, 2)``, over a density if ``log_prob`` is given."""
    x = _to_numpy(x)
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"x: expected samples of shape (n, 2), got {x.shape}")
    ax = ax or plt.gca()
    if extent is None:
        lo, hi = x.min(axis=0), x.max(axis=0)
        pad = 0.1 * (hi - lo) + 1e-6
        extent = (lo[0] - pad[0], hi[0] + pad[0], lo[1] - pad[1], hi[1] + pad[1])
    if log_prob is not None:
        plot_density(log_prob, extent, ax=ax, cmap="Greys")
    ax.scatter(x[:, 0], x[:, 1], s=s, alpha=alpha, c=c, **scatter_kwargs)
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_aspect("equal")
    if title:
        ax.set_title(title)
    return ax


def gaussian_ellipse(mean, cov, n_std: float = 2.0, n_points: int = 100) -> np.ndarray:
    r"""Points of the ellipse ``{x : (x - mean)^T cov^{-1} (x - mean) = n_std^2}`` (to draw).

    With ``cov = V diag(lam) V^T`` (eigen-decomposition) the ellipse is
    ``mean + n_std V diag(sqrt(lam)) [cos t, sin t]``: its semi-axes point along
    the eigenvectors and have lengths ``n_std sqrt(lam)``.

    Args:
        mean: ``(2,)``; cov: ``(2, 2)`` symmetric positive definite (arrays or tensors).

    Returns:
        ``(n_points, 2)`` array (closed: the last point equals the first).
    """
    mean = _to_numpy(mean).astype(np.float64)
    cov = _to_numpy(cov).astype(np.float64)
    if mean.shape != (2,):
        raise ValueError(f"mean: expected shape (2,), got {mean.shape}")
    if cov.shape != (2, 2):
        raise ValueError(f"cov: expected shape (2, 2), got {cov.shape}")
    lam, vecs = np.linalg.eigh(0.5 * (cov + cov.T))
    if not lam.min() > 0:
        raise ValueError(f"cov: expected a positive definite matrix, got eigenvalues {lam}")
    t = np.linspace(0, 2 * np.pi, n_points)
    circle = np.stack([np.cos(t), np.sin(t)], 1)
    return mean + n_std * (circle * np.sqrt(lam)) @ vecs.T


def image_grid(
    images,
    nrow: int | None = None,
    ax=None,
    shape: tuple[int, int] = (8, 8),
    cmap: str = "gray_r",
    vmin: float | None = 0.0,
    vmax: float | None = None,
    pad: int = 1,
    title: str | None = None,
    gap_color: str = "#b8c4d6",
):
    """Tile images into one picture, separated by ``pad`` pixels of ``gap_color``.

    Args:
        images: ``(n, h*w)`` flat vectors (or one ``(h*w,)`` vector), ``(n, h, w)``
            or ``(n, 1, h, w)``.
        nrow: images per row (default: about square).
        shape: ``(h, w)`` used to unflatten flat vectors (8x8 digits by default).
        gap_color: colour of the gaps; a light blue-grey by default, because a
            white gap next to the white background of digits drawn with
            ``gray_r`` would make neighbouring tiles run together.
    """
    imgs = _to_numpy(images).astype(np.float32)
    if imgs.ndim == 1:  # one flat image
        imgs = imgs[None]
    if imgs.ndim == 2:
        if imgs.shape[1] != shape[0] * shape[1]:
            raise ValueError(f"images: flat vectors of length {imgs.shape[1]} do not match "
                             f"shape={shape}")
        imgs = imgs.reshape(-1, *shape)
    elif imgs.ndim == 4 and imgs.shape[1] == 1:
        imgs = imgs[:, 0]
    elif imgs.ndim != 3:
        raise ValueError(f"images: expected (n, h*w), (n, h, w) or (n, 1, h, w), got {imgs.shape}")
    n, h, w = imgs.shape
    if n == 0:
        raise ValueError("images: expected at least one image, got 0")
    nrow = nrow or int(np.ceil(np.sqrt(n)))
    ncol_rows = int(np.ceil(n / nrow))
    vmax = float(imgs.max()) if vmax is None else vmax
    canvas = np.full((ncol_rows * (h + pad) + pad, nrow * (w + pad) + pad), np.nan, np.float32)
    for i in range(n):
        r, c = divmod(i, nrow)
        canvas[pad + r * (h + pad): pad + r * (h + pad) + h,
               pad + c * (w + pad): pad + c * (w + pad) + w] = imgs[i]
    ax = ax or plt.gca()
    cm = plt.get_cmap(cmap).with_extremes(bad=gap_color)
    ax.imshow(canvas, cmap=cm, vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)
    return ax


def plot_history(history, ax=None, keys=("loss",), smooth_window: int | None = None):
    """Training curves of a :class:`coursekit.train.History` (or a dict of lists).

    Per-step values are drawn faintly with a moving average on top, at the steps
    where they were logged; validation values are placed at the steps where they
    were logged (without those, at the end of each epoch).
    """
    ax = ax or plt.gca()
    train = history.train if hasattr(history, "train") else dict(history)
    val = getattr(history, "val", {})
    for key in keys:
        if key not in train:
            raise ValueError(f"keys: {key!r} was not logged; logged: {sorted(train)}")
        values = train[key]
        steps = _logged_at(history, "train_steps", key, len(values), 1.0)
        line = ax.plot(steps, values, alpha=0.25)[0]
        ax.plot(steps, smooth(values, smooth_window), color=line.get_color(),
                label=f"train {key}")
        if key in val and val[key]:
            per_epoch = len(values) / len(val[key])
            ax.plot(_logged_at(history, "val_steps", key, len(val[key]), per_epoch), val[key],
                    "o--", color=line.get_color(), markersize=3, label=f"val {key}")
    ax.set_xlabel("step")
    ax.legend()
    return ax


def _logged_at(history, field: str, key: str, n: int, spacing: float) -> np.ndarray:
    """Steps of ``n`` logged values: ``history.<field>[key]`` if recorded, else evenly spaced."""
    steps = getattr(history, field, {}).get(key)
    if steps is not None and len(steps) == n:
        return np.asarray(steps)
    return spacing * np.arange(1, n + 1)
