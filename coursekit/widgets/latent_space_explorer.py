"""Latent-space explorer for a VAE with a two-dimensional latent space (lecture 04).

With ``z`` in the plane everything the model has learned can be drawn at once:

* the decoder ``p(x|z)`` as a grid of images, one per point of a regular grid
  over ``[-extent, extent]^2`` (pixel probabilities ``sigmoid(logits)``);
* the encoder as the posterior means ``E_q[z|x]`` of test digits, coloured by
  their label: the classes form regions although no label was used in training;
* one live decode: sliders choose ``z = (z1, z2)``, marked on both panels;
* an interpolation between two test digits (chosen by index): the decoded
  images along ``z(s) = (1 - s) mu(x_a) + s mu(x_b)`` for ``s`` in [0, 1], with
  the ``t`` slider marking one point of the path.
"""

from __future__ import annotations

import numpy as np
import torch

from coursekit.functional import log_standard_normal
from coursekit.widgets.base import App

_IMAGE_SHAPE = (8, 8)


def _decode_probs(model, z: torch.Tensor) -> np.ndarray:
    """Pixel probabilities ``sigmoid(model.decode(z))`` as a NumPy array."""
    p = next(model.parameters())
    with torch.no_grad():
        logits = model.decode(z.to(device=p.device, dtype=p.dtype))
    return torch.sigmoid(logits).cpu().numpy()


class LatentSpaceExplorer(App):
    """Explore a trained 2-D-latent Bernoulli :class:`coursekit.vae.VAE` on 8x8 digits.

    Args:
        model: a ``VAE`` with ``z_dim == 2`` and ``likelihood == "bernoulli"``.
        x: images to encode, ``(n, 64)`` (e.g. the binarised test digits).
        y: their labels ``(n,)`` (colours only).
        extent: the latent grid and sliders cover ``[-extent, extent]^2``.
        grid_size: images per axis of the decoded grid.
        steps: images in the interpolation strip.

    ``update(z1, z2, index_a, index_b, t)`` returns a dict with ``z`` ``(2,)``,
    ``image`` ``(8, 8)`` (decoded at ``z``), ``grid`` ``(grid_size, grid_size, 8, 8)``
    with ``grid_z`` ``(grid_size, grid_size, 2)`` (row 0 is the top, i.e. the
    largest ``z2``), ``encodings`` ``(n, 2)``, ``labels``, ``z_a``/``z_b`` (encoder
    means of the two digits), ``path`` ``(steps, 2)``, ``interpolation``
    ``(steps, 8, 8)``, ``z_t`` and ``image_t`` (the decoded image at ``t``).
    """

    name = "vae-latent"
    figsize = (11.0, 6.2)

    def __init__(self, model, x: torch.Tensor, y: torch.Tensor, extent: float = 3.0,
                 grid_size: int = 15, steps: int = 10, index_a: int = 0, index_b: int = 1):
        super().__init__()
        if getattr(model, "z_dim", None) != 2:
            raise ValueError(f"model: expected a VAE with z_dim=2, got z_dim="
                             f"{getattr(model, 'z_dim', None)!r}")
        if getattr(model, "likelihood", None) != "bernoulli":
            raise ValueError("model: expected a VAE with a Bernoulli decoder (digits)")
        if not isinstance(x, torch.Tensor) or x.dim() != 2 or x.shape[1] != model.x_dim:
            raise ValueError(f"x: expected a tensor of shape (n, {model.x_dim}), got "
                             f"{getattr(x, 'shape', type(x).__name__)}")
        if not isinstance(y, torch.Tensor) or y.shape != (x.shape[0],):
            raise ValueError(f"y: expected labels of shape ({x.shape[0]},), got "
                             f"{getattr(y, 'shape', type(y).__name__)}")
        if not extent > 0:
            raise ValueError(f"extent: expected a positive number, got {extent!r}")
        for value, label in ((grid_size, "grid_size"), (steps, "steps")):
            if isinstance(value, bool) or not isinstance(value, int) or value < 2:
                raise ValueError(f"{label}: expected an int >= 2, got {value!r}")
        n = x.shape[0]
        for value, label in ((index_a, "index_a"), (index_b, "index_b")):
            if not 0 <= value < n:
                raise ValueError(f"{label}: expected an index in [0, {n}), got {value!r}")
        self.model, self.x, self.extent = model, x, float(extent)
        self.grid_size, self.steps = grid_size, steps
        self.labels = y.cpu().numpy()
        was_training = model.training
        model.eval()
        with torch.no_grad():
            self.encodings = model.encode(x)[0].cpu().numpy()
        model.train(was_training)
        self.grid_z, self.grid = self._latent_grid()
        self._cache: dict = {}
        # a redraw takes a few tenths of a second on a laptop CPU: update on release
        self.slider("z1", -self.extent, self.extent, 0.05, 0.0)
        self.slider("z2", -self.extent, self.extent, 0.05, 0.0)
        self.int_text("index_a", index_a, 0, n - 1, description="digit a")
        self.int_text("index_b", index_b, 0, n - 1, description="digit b")
        self.slider("t", 0.0, 1.0, 0.05, 0.5, description="a → b")

    def _latent_grid(self):
        g = self.grid_size
        axis = torch.linspace(-self.extent, self.extent, g)
        z2, z1 = torch.meshgrid(axis.flip(0), axis, indexing="ij")  # row 0 = top = max z2
        grid_z = torch.stack([z1, z2], dim=-1)  # (g, g, 2)
        images = _decode_probs(self.model, grid_z.reshape(-1, 2))
        return grid_z.numpy(), images.reshape(g, g, *_IMAGE_SHAPE)

    def _interpolation(self, index_a: int, index_b: int):
        key = (index_a, index_b)
        if key not in self._cache:
            z_a = torch.as_tensor(self.encodings[index_a])
            z_b = torch.as_tensor(self.encodings[index_b])
            s = torch.linspace(0.0, 1.0, self.steps)[:, None]
            path = (1 - s) * z_a + s * z_b
            images = _decode_probs(self.model, path).reshape(self.steps, *_IMAGE_SHAPE)
            self._cache = {key: (z_a.numpy(), z_b.numpy(), path.numpy(), images)}
        return self._cache[key]

    def update(self, z1=0.0, z2=0.0, index_a=0, index_b=1, t=0.5) -> dict:
        n = len(self.labels)
        index_a, index_b = int(index_a), int(index_b)
        for value, label in ((index_a, "index_a"), (index_b, "index_b")):
            if not 0 <= value < n:
                raise ValueError(f"{label}: expected an index in [0, {n}), got {value}")
        if not 0.0 <= float(t) <= 1.0:
            raise ValueError(f"t: expected a number in [0, 1], got {t!r}")
        z = np.array([z1, z2], dtype=np.float32)
        image = _decode_probs(self.model, torch.from_numpy(z)[None])[0].reshape(_IMAGE_SHAPE)
        z_a, z_b, path, interpolation = self._interpolation(index_a, index_b)
        z_t = ((1 - t) * z_a + t * z_b).astype(np.float32)
        image_t = _decode_probs(self.model, torch.from_numpy(z_t)[None])[0].reshape(_IMAGE_SHAPE)
        return {
            "z": z, "image": image, "grid": self.grid, "grid_z": self.grid_z,
            "encodings": self.encodings, "labels": self.labels, "extent": self.extent,
            "index_a": index_a, "index_b": index_b, "label_a": int(self.labels[index_a]),
            "label_b": int(self.labels[index_b]), "z_a": z_a, "z_b": z_b, "path": path,
            "interpolation": interpolation, "t": float(t), "z_t": z_t, "image_t": image_t,
        }

    @staticmethod
    def _tile(images: np.ndarray, pad: int = 1) -> np.ndarray:
        """``(rows, cols, h, w)`` -> one canvas with NaN gutters."""
        rows, cols, h, w = images.shape
        canvas = np.full((rows * (h + pad) - pad, cols * (w + pad) - pad), np.nan)
        for r in range(rows):
            for c in range(cols):
                canvas[r * (h + pad): r * (h + pad) + h, c * (w + pad): c * (w + pad) + w] = \
                    images[r, c]
        return canvas

    def draw(self, state, fig):
        import matplotlib.pyplot as plt

        e = state["extent"]
        cmap = plt.get_cmap("gray_r").with_extremes(bad="white")
        gs = fig.add_gridspec(2, 3, height_ratios=[3.2, 1.0], width_ratios=[1.15, 1.0, 0.7])
        ax_enc = fig.add_subplot(gs[0, 0])
        enc = state["encodings"]
        sc = ax_enc.scatter(enc[:, 0], enc[:, 1], c=state["labels"], cmap="tab10", vmin=-0.5,
                            vmax=9.5, s=9, alpha=0.8)
        fig.colorbar(sc, ax=ax_enc, ticks=range(10), fraction=0.046, pad=0.02)
        path = state["path"]
        ax_grid = fig.add_subplot(gs[0, 1])
        ax_grid.imshow(self._tile(state["grid"]), cmap=cmap, vmin=0, vmax=1,
                       extent=(-e, e, -e, e), interpolation="nearest")
        for ax in (ax_enc, ax_grid):
            ax.plot(path[:, 0], path[:, 1], "-", color="tab:gray", lw=1.2)
            ax.plot(*state["z_a"], "s", color="black", ms=6)
            ax.plot(*state["z_b"], "D", color="black", ms=6)
            ax.plot(*state["z_t"], "o", mfc="none", mec="tab:purple", ms=10, mew=2)
            ax.plot(*state["z"], "X", color="tab:red", ms=12, mec="white")
            ax.set_xlim(-e, e)
            ax.set_ylim(-e, e)
            ax.set_aspect("equal")
            ax.set_xlabel("$z_1$")
        ax_enc.set_ylabel("$z_2$")
        ax_enc.set_title("test digits: encoder means")
        ax_grid.set_title("decoder over the latent plane")
        ax_img = fig.add_subplot(gs[0, 2])
        ax_img.imshow(state["image"], cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
        ax_img.set_title(f"decode z = ({state['z'][0]:.2f}, {state['z'][1]:.2f})",
                         color="tab:red")
        ax_img.set_xticks([])
        ax_img.set_yticks([])
        ax_strip = fig.add_subplot(gs[1, :])
        strip = state["interpolation"][None]
        ax_strip.imshow(self._tile(strip), cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
        steps = strip.shape[1]
        ax_strip.set_xticks([i * 9 + 3.5 for i in range(steps)])
        ax_strip.set_xticklabels([f"{s:.2f}" for s in np.linspace(0, 1, steps)])
        ax_strip.set_yticks([])
        ax_strip.set_title(f"interpolation: digit a (#{state['index_a']}, label "
                           f"{state['label_a']}) → digit b (#{state['index_b']}, label "
                           f"{state['label_b']}); ○ marks t = {state['t']:.2f}")
        fig.tight_layout()

    def summary(self, state) -> str:
        z = state["z"]
        return (f"z = ({z[0]:.2f}, {z[1]:.2f}); prior density log N(z; 0, I) = "
                f"{float(log_standard_normal(z)):.2f}. "
                f"Digit a: #{state['index_a']} (label {state['label_a']}) at "
                f"({state['z_a'][0]:.2f}, {state['z_a'][1]:.2f}); digit b: #{state['index_b']} "
                f"(label {state['label_b']}) at ({state['z_b'][0]:.2f}, {state['z_b'][1]:.2f}).")
