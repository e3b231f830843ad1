r"""Pixel-by-pixel sampler (lecture 05): watch an autoregressive model draw a digit.

Sampling follows the chain rule one pixel at a time, in the model's ordering:

.. math:: x_{o_i} \sim p\big(x_{o_i} \mid x_{o_1}, \dots, x_{o_{i-1}}\big),
   \quad i = 1, \dots, n,

one network evaluation per pixel. Fixing the first rows to a test digit's pixels and
sampling the rest completes (inpaints) the digit. The app runs the whole
trajectory once per setting and the ``step`` slider moves through it, showing the
conditional probability ``p(x_j = 1 | earlier pixels)`` of each pixel when it was
drawn.
"""

from __future__ import annotations

import matplotlib
import numpy as np
import torch
from matplotlib.patches import Rectangle

from coursekit.autoregressive.base import AutoregressiveModel, BernoulliOutput
from coursekit.widgets.base import App


@torch.no_grad()
def sampling_trajectory(model: AutoregressiveModel, observed: torch.Tensor,
                        n_observed: int, seed: int) -> dict:
    """Sample one image in ``model.ordering``, keeping the first ``n_observed`` pixels
    of the ordering at ``observed``'s values.

    Returns NumPy arrays: ``order`` ``(n,)``, ``prob`` ``(n,)`` (``p(x_j = 1 |
    earlier)`` at each step, in the ordering), ``value`` ``(n,)`` (the pixel kept or
    drawn at each step) and ``log_prob`` ``(n,)`` (its log-probability under the model).
    """
    p = next(model.parameters())
    gen = torch.Generator(device=p.device).manual_seed(int(seed))
    order = model.ordering.tolist()
    x = torch.zeros(1, model.features, device=p.device, dtype=p.dtype)
    obs = observed.to(device=p.device, dtype=p.dtype).reshape(1, -1)
    probs, values = [], []
    was_training = model.training
    model.eval()
    try:
        for step, j in enumerate(order):
            prob = torch.sigmoid(model.conditional_params(x)[0, j, 0])
            u = torch.rand((), generator=gen, device=p.device, dtype=p.dtype)
            x[0, j] = obs[0, j] if step < n_observed else (u < prob).to(p.dtype)
            probs.append(float(prob))
            values.append(float(x[0, j]))
    finally:
        model.train(was_training)
    prob, value = np.array(probs), np.array(values)
    log_prob = np.log(np.where(value == 1, prob, 1 - prob))
    return {"order": np.array(order), "prob": prob, "value": value, "log_prob": log_prob}


class PixelSampler(App):
    """Step through sampling a digit with a trained binary autoregressive model.

    Args:
        model: an :class:`~coursekit.autoregressive.AutoregressiveModel` with a
            Bernoulli output over a square image (``features = side**2``).
        x: images ``(m, features)`` whose first rows can be fixed (e.g. test digits).
        index, rows, seed, step: the controls' starting values.

    ``update(index, rows, seed, step)`` returns a dict with ``original`` and
    ``canvas`` (``(side, side)``; pixels not drawn yet are NaN), ``prob_map``
    (``(side, side)``: each drawn pixel's ``p(x_j = 1 | earlier)``, NaN elsewhere),
    ``next`` (the flat index of the pixel drawn at this step, or None when done),
    ``next_prob``, ``n_observed``, ``step`` and ``log_prob`` (of the pixels drawn so far,
    observed ones excluded).
    """

    name = "pixel-sampler"
    figsize = (10.0, 3.6)

    def __init__(self, model: AutoregressiveModel, x: torch.Tensor, index: int = 0,
                 rows: int = 4, seed: int = 0, step: int | None = None):
        super().__init__()
        if not isinstance(model, AutoregressiveModel) or not isinstance(model.output,
                                                                         BernoulliOutput):
            raise TypeError("model: expected a coursekit AutoregressiveModel with a "
                            f"Bernoulli output, got {type(model).__name__}")
        side = int(round(model.features ** 0.5))
        if side * side != model.features:
            raise ValueError(f"model: expected a square image (features = side**2), "
                             f"got features={model.features}")
        if not isinstance(x, torch.Tensor) or x.dim() != 2 or x.shape[1] != model.features:
            raise ValueError(f"x: expected a tensor of shape (m, {model.features}), got "
                             f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x)}")
        self.model, self.x, self.side = model, x, side
        self._cache: dict[tuple, dict] = {}
        n = model.features
        self.int_text("index", index, 0, len(x) - 1, description="test digit")
        self.slider("rows", 0, side, 1, rows, description="rows given")
        self.slider("seed", 0, 20, 1, seed)
        self.slider("step", 0, n, 1, n if step is None else step, continuous_update=True)
        self.button("next", "next pixel ▶", lambda: self.advance(1))
        self.button("restart", "⟲ first sampled pixel",
                    lambda: self._set_step(self.controls["rows"].value * side))

    def _set_step(self, value: int) -> int:
        slider = self.controls["step"]
        slider.value = int(np.clip(value, slider.min, slider.max))
        return slider.value

    def advance(self, delta: int) -> int:
        """Move the ``step`` slider by ``delta``; returns the new step."""
        return self._set_step(self.controls["step"].value + delta)

    def trajectory(self, index: int, rows: int, seed: int) -> dict:
        key = (int(index), int(rows), int(seed))
        if key not in self._cache:
            self._cache[key] = sampling_trajectory(self.model, self.x[key[0]],
                                                   key[1] * self.side, key[2])
        return self._cache[key]

    def update(self, index=0, rows=4, seed=0, step=64) -> dict:
        n, side = self.model.features, self.side
        if not 0 <= int(index) < len(self.x):
            raise ValueError(f"index: expected an int in [0, {len(self.x) - 1}], got {index!r}")
        if not 0 <= int(step) <= n:
            raise ValueError(f"step: expected an int in [0, {n}], got {step!r}")
        n_observed = int(rows) * side
        traj = self.trajectory(index, rows, seed)
        t = max(int(step), n_observed)  # the given rows are always there
        done = traj["order"][:t]
        canvas = np.full(n, np.nan)
        canvas[done] = traj["value"][:t]
        prob_map = np.full(n, np.nan)
        prob_map[done] = traj["prob"][:t]
        nxt = int(traj["order"][t]) if t < n else None
        return {
            "original": self.x[int(index)].detach().cpu().numpy().reshape(side, side),
            "canvas": canvas.reshape(side, side), "prob_map": prob_map.reshape(side, side),
            "next": nxt, "next_prob": None if nxt is None else float(traj["prob"][t]),
            "n_observed": n_observed, "step": t,
            "log_prob": float(traj["log_prob"][n_observed:t].sum()),
        }

    def draw(self, state: dict, fig) -> None:
        axes = fig.subplots(1, 3)
        side = self.side
        axes[0].imshow(state["original"], cmap="gray_r", vmin=0, vmax=1)
        axes[0].axhline(state["n_observed"] // side - 0.5, color="tab:blue", lw=2)
        axes[0].set_title("digit; rows above line given", fontsize=10)
        canvas = np.ma.masked_invalid(state["canvas"])
        cmap = matplotlib.colormaps["gray_r"].with_extremes(bad="#cfe3f5")
        axes[1].imshow(canvas, cmap=cmap, vmin=0, vmax=1)
        axes[1].set_title(f"sample: {state['step']} of {side * side} pixels", fontsize=10)
        probs = np.ma.masked_invalid(state["prob_map"])
        im = axes[2].imshow(probs, cmap="viridis", vmin=0, vmax=1)
        axes[2].set_title("p(pixel = 1 | earlier)", fontsize=10)
        fig.colorbar(im, ax=axes[2], fraction=0.046)
        if state["next"] is not None:
            r, c = divmod(state["next"], side)
            for ax in axes[1:]:
                ax.add_patch(Rectangle(
                    (c - 0.5, r - 0.5), 1, 1, fill=False, edgecolor="tab:red", lw=2))
        for ax in axes:
            ax.set_xticks([])
            ax.set_yticks([])

    def summary(self, state: dict) -> str:
        drawn = state["step"] - state["n_observed"]
        text = (f"{state['n_observed']} pixels given, {drawn} sampled; "
                f"log p(sampled pixels | given) = {state['log_prob']:.2f} nats")
        if state["next"] is not None:
            r, c = divmod(state["next"], self.side)
            text += (f"; next pixel (row {r}, col {c}): "
                     f"p(x = 1 | earlier) = {state['next_prob']:.3f}")
        return text
