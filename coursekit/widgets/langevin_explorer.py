r"""Langevin explorer (lecture 08): move particles down an energy landscape with noise.

The landscape is the energy :math:`E(x) = -\log p(x)` of a known 2-D density (an
isotropic Gaussian mixture, so :math:`p`, :math:`E` and :math:`\nabla E` are exact).
A fixed, seeded set of particles starts either uniform over the plotted box or inside one
mode, and every particle takes ``n_steps`` steps of

.. math:: x \leftarrow x - h\,\nabla E(x) + \sigma\sqrt{2h}\,\xi,
          \qquad \xi \sim \mathcal N(0, I),

the unadjusted Langevin algorithm (ULA, :func:`coursekit.ebm.langevin_sample`) with step
size :math:`h` and noise scale :math:`\sigma`. With :math:`\sigma = 1` the chains target
:math:`p` (with a bias that grows with :math:`h`); a smaller :math:`\sigma` targets the
colder :math:`p^{1/\sigma^2}`; :math:`\sigma = 0` is gradient descent on :math:`E`, which
collapses every particle onto the minimum of its basin. MALA (:func:`coursekit.ebm.mala_sample`,
through :func:`coursekit.mcmc.langevin`) proposes the same move and accepts it with the
Metropolis-Hastings probability for the target :math:`p^{1/\sigma^2}` (the same chain as
MALA on :math:`E/\sigma^2` with step :math:`h\sigma^2`), which removes the step-size bias;
at :math:`\sigma = 0` there is no randomness to correct and both samplers are gradient
descent.

What the lesson shows: small steps are unbiased but slow; large ULA steps inflate the
modes (or blow up, when :math:`h` exceeds twice the mode's variance); and however good the
local moves, chains almost never cross the high-energy barrier between well-separated
modes, so the particles keep the mode shares they started with ("two modes (far)" or
"8gaussians" from "one mode") while close modes mix.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import torch

from coursekit._validation import check_choice, check_count, check_number
from coursekit.data.toy2d import get_toy2d, mode_centres
from coursekit.ebm import langevin_sample
from coursekit.mcmc import langevin
from coursekit.runtime import one_torch_thread
from coursekit.widgets.base import App

STEP_SIZES = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5)
SAMPLERS = ("ULA", "MALA")
STARTS = ("uniform", "one mode")
FLOOR_REPEATS = 5


# -- the landscapes: equal-variance isotropic Gaussian mixtures --------------------------
def _landscape(name: str) -> dict:
    """``centres (k, 2)``, ``sigma``, ``weights (k,)``, ``extent`` and a description."""
    if name == "8gaussians":
        centres, sigma = mode_centres("8gaussians")
        return {"centres": centres, "sigma": sigma, "weights": torch.full((8,), 1 / 8,
                                                                          dtype=torch.float64),
                "extent": get_toy2d("8gaussians").extent,
                "description": get_toy2d("8gaussians").description}
    half = {"two modes (close)": 0.8, "two modes (far)": 2.0}[name]
    return {"centres": torch.tensor([[-half, 0.0], [half, 0.0]], dtype=torch.float64),
            "sigma": 0.5, "weights": torch.tensor([0.3, 0.7], dtype=torch.float64),
            "extent": (-4.0, 4.0, -3.0, 3.0),
            "description": f"two Gaussians (standard deviation 0.5) centred at (±{half:g}, 0) "
                           "with weights 0.3 (left) and 0.7 (right)"}


DATASETS = ("8gaussians", "two modes (close)", "two modes (far)")


class _MixtureLogProb(torch.autograd.Function):
    """log p of an isotropic mixture with its gradient computed in the forward pass
    (``sum_j r_j (c_j - x) / sigma^2``, ``r`` the responsibilities): the backward pass is
    one product, which keeps 500 particles x 500 steps well under a second."""

    @staticmethod
    def forward(ctx, x, centres, sigma, log_w):
        cross = x @ centres.T  # (n, k)
        d2 = (x * x).sum(1, keepdim=True) - 2 * cross + (centres * centres).sum(1)
        log_k = -0.5 * d2 / sigma ** 2 + log_w
        lse = torch.logsumexp(log_k, dim=1)
        resp = torch.exp(log_k - lse[:, None])
        ctx.save_for_backward((resp @ centres - x) / sigma ** 2)
        return lse - math.log(2 * math.pi) - 2 * math.log(sigma)

    @staticmethod
    def backward(ctx, grad_out):
        (grad,) = ctx.saved_tensors
        return grad_out[:, None] * grad, None, None, None


def mixture_log_prob(x: torch.Tensor, centres: torch.Tensor, sigma: float,
                     weights: torch.Tensor) -> torch.Tensor:
    r""":math:`\log\sum_j w_j\,\mathcal N(x; c_j, \sigma^2 I)` for ``x (n, 2)``, differentiable
    in ``x`` once (the toy data sets' own ``log_prob`` detaches)."""
    return _MixtureLogProb.apply(x, centres.to(x), float(sigma), weights.to(x).log())


def _distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Euclidean distances from exact differences (not the ``|a|^2 + |b|^2 - 2ab`` shortcut,
    which loses digits)."""
    return torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist")


def _within(x: torch.Tensor) -> torch.Tensor:
    """The mean distance over distinct pairs of rows of ``x``."""
    return _distances(x, x).sum() / (len(x) * (len(x) - 1))


def energy_distance(x, y, *, within_y: float | None = None) -> float:
    r"""The (squared) energy distance :math:`2\,\mathbb E\|X-Y\| - \mathbb E\|X-X'\|
    - \mathbb E\|Y-Y'\|` between the laws of ``x (n, 2)`` and ``y (m, 2)``, each
    expectation the unbiased average over distinct pairs (so it is near 0, either sign,
    for two samples of one law, and 0 in expectation; positive when the laws differ).
    ``within_y``: :math:`\mathbb E\|Y-Y'\|` if already known (a fixed reference sample)."""
    x, y = torch.as_tensor(x, dtype=torch.float64), torch.as_tensor(y, dtype=torch.float64)
    wy = _within(y) if within_y is None else within_y
    return float(2 * _distances(x, y).mean() - _within(x) - wy)


@cache
def _reference(dataset: str, seed: int, n_ref: int, n: int) -> dict:
    """Exact samples of the landscape (``n_ref``), their mean log p, and the typical energy
    distance of ``n`` other exact samples to them (the root mean square over
    ``FLOOR_REPEATS`` draws: what a perfect sampler's particles show)."""
    land = _landscape(dataset)
    gen = torch.Generator().manual_seed(seed + 1_000_003)
    ref = _mixture_draw(land, n_ref, gen)
    within = float(_within(ref))
    floor = [energy_distance(_mixture_draw(land, n, gen), ref, within_y=within)
             for _ in range(FLOOR_REPEATS)]
    logp = mixture_log_prob(ref, land["centres"], land["sigma"], land["weights"])
    return {"samples": ref.numpy(), "within": within, "mean_log_p": float(logp.mean()),
            "floor": float(np.sqrt(np.mean(np.square(floor))))}


def _mixture_draw(land: dict, n: int, gen: torch.Generator, component: int | None = None):
    if component is None:
        idx = torch.multinomial(land["weights"], n, replacement=True, generator=gen)
    else:
        idx = torch.full((n,), component, dtype=torch.long)
    noise = torch.randn(n, 2, generator=gen, dtype=torch.float64)
    return land["centres"][idx] + land["sigma"] * noise


@cache
def _energy_grid(dataset: str, resolution: int):
    land = _landscape(dataset)
    x0, x1, y0, y1 = land["extent"]
    xs = torch.linspace(x0, x1, resolution, dtype=torch.float64)
    ys = torch.linspace(y0, y1, resolution, dtype=torch.float64)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    pts = torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)
    energy = -mixture_log_prob(pts, land["centres"], land["sigma"], land["weights"])
    return xs.numpy(), ys.numpy(), energy.reshape(resolution, resolution).numpy()


class LangevinExplorer(App):
    r"""Langevin / MALA particles on the energy landscape of a 2-D Gaussian mixture.

    Controls: ``dataset`` (one of :data:`DATASETS`), ``start`` (``"uniform"`` over the box,
    or ``"one mode"``: exact draws from the mixture's first component, the left (lighter)
    one of the two-mode landscapes, the one at ``(2, 0)`` of ``8gaussians``),
    ``step_size`` :math:`h` (a slider over :data:`STEP_SIZES`), ``n_steps`` (0 to 500),
    ``noise`` :math:`\sigma` (0 to 1) and ``sampler`` (``"ULA"`` or ``"MALA"``).

    ``update(...)`` is a pure function of the controls (every random draw comes from
    ``seed``) and returns a dict with ``start`` ``(n, 2)`` and ``particles`` ``(n, 2)`` (the
    states before and after the steps), ``paths`` ``(n_steps + 1, n_paths, 2)`` (the first
    ``n_paths`` particles' trajectories), ``xs``, ``ys``, ``energy`` (the grid of
    :math:`E`, ``energy[i, j]`` at ``(xs[j], ys[i])``), ``centres`` ``(k, 2)``, ``weights``
    ``(k,)``, ``extent``, ``log_p`` ``(n,)`` (the particles' exact log-density),
    ``mean_log_p`` and ``exact_mean_log_p`` (that of ``n_ref`` exact samples), ``mode``
    ``(n,)`` and ``start_mode`` ``(n,)`` (each particle's mode region, the component of
    highest responsibility, after and before), ``occupancy`` ``(k,)`` (the share of
    particles in each mode region), ``modes_visited`` (regions holding at least one
    particle), ``crossed`` (the share of particles that ended in another mode region than
    they started in), ``occupancy_kl`` (:math:`\mathrm{KL}(\text{occupancy}\,\|\,w)`),
    ``energy_distance`` (:func:`energy_distance` of the particles to the exact samples) and
    ``energy_distance_floor`` (the same for ``n`` exact samples), ``acceptance`` (MALA's
    mean acceptance rate; ``None`` for ULA, for zero steps and for noise 0, which is
    gradient descent for both samplers), ``description`` (of the landscape) and the control
    values: ``dataset``, ``start_kind`` (the ``start`` control), ``step_size``, ``n_steps``,
    ``noise`` and ``sampler``.

    Unstable ULA steps (``h`` above twice a mode's variance: 0.08 for ``8gaussians``) would
    overflow; the chains are clipped to a square three times the plotted box, so they bounce
    at its edges instead, far from every mode (a huge energy distance, a hugely negative
    mean log p).
    """

    name = "langevin-explorer"
    figsize = (10.0, 4.6)

    def __init__(self, dataset: str = "8gaussians", start: str = "uniform",
                 step_size: float = 0.01, n_steps: int = 200, noise: float = 1.0,
                 sampler: str = "ULA", *, n_particles: int = 500, n_paths: int = 8,
                 n_ref: int = 2000, seed: int = 0, resolution: int = 120):
        super().__init__()
        self.n_particles = check_count(n_particles, "n_particles", minimum=2)
        self.n_paths = check_count(n_paths, "n_paths", minimum=0)
        if self.n_paths > self.n_particles:
            raise ValueError(f"n_paths: expected at most n_particles = {self.n_particles}, "
                             f"got {n_paths!r}")
        self.n_ref = check_count(n_ref, "n_ref", minimum=2)
        self.seed = check_count(seed, "seed", minimum=0)
        self.resolution = check_count(resolution, "resolution", minimum=2)
        self._check(dataset, start, step_size, n_steps, noise, sampler)
        check_choice(step_size, "step_size", STEP_SIZES)  # the slider offers only these
        if n_steps > 500:
            raise ValueError(f"n_steps: expected an int in [0, 500], got {n_steps!r}")
        if noise > 1:
            raise ValueError(f"noise: expected a number in [0, 1], got {noise!r}")
        for name in DATASETS:  # so that no control change pays for the reference samples
            _reference(name, self.seed, self.n_ref, self.n_particles)
            _energy_grid(name, self.resolution)
        self.choice("dataset", DATASETS, dataset, description="landscape")
        self.choice("start", STARTS, start, description="start")
        self.choice("step_size", STEP_SIZES, step_size, description="step size h",
                    kind="slider")
        self.slider("n_steps", 0, 500, 10, n_steps, description="steps")
        self.slider("noise", 0.0, 1.0, 0.05, noise, description="noise σ")
        self.choice("sampler", SAMPLERS, sampler, description="sampler")

    @staticmethod
    def _check(dataset, start, step_size, n_steps, noise, sampler):
        check_choice(dataset, "dataset", DATASETS)
        check_choice(start, "start", STARTS)
        check_choice(sampler, "sampler", SAMPLERS)
        h = check_number(step_size, "step_size", low=0.0, strict=True)
        n_steps = check_count(n_steps, "n_steps", minimum=0)
        sigma = check_number(noise, "noise", low=0.0)
        return h, n_steps, sigma

    # -- logic ----------------------------------------------------------------------
    def starting_points(self, dataset: str, start: str) -> torch.Tensor:
        """The seeded starting particles ``(n_particles, 2)`` (float64)."""
        land = _landscape(dataset)
        gen = torch.Generator().manual_seed(self.seed)
        if start == "one mode":
            return _mixture_draw(land, self.n_particles, gen, component=0)
        x0, x1, y0, y1 = land["extent"]
        u = torch.rand(self.n_particles, 2, generator=gen, dtype=torch.float64)
        return torch.stack([x0 + (x1 - x0) * u[:, 0], y0 + (y1 - y0) * u[:, 1]], dim=1)

    @staticmethod
    def energy_fn(dataset: str):
        """``E(x) = -log p(x)`` of the landscape, ``(n, 2) -> (n,)``, differentiable."""
        land = _landscape(dataset)
        return lambda x: -mixture_log_prob(x, land["centres"], land["sigma"], land["weights"])

    @staticmethod
    def mode_of(x: torch.Tensor, dataset: str) -> np.ndarray:
        """Each point's mode region: the component of highest responsibility, ``(n,)``."""
        land = _landscape(dataset)
        d2 = ((x[:, None, :] - land["centres"][None]) ** 2).sum(-1)
        score = -0.5 * d2 / land["sigma"] ** 2 + land["weights"].log()
        return score.argmax(1).numpy()

    def run_chains(self, dataset, start, step_size, n_steps, noise, sampler):
        """``(path (n_steps + 1, n, 2), acceptance or None)`` for the settings."""
        h, n_steps, sigma = self._check(dataset, start, step_size, n_steps, noise, sampler)
        x0 = self.starting_points(dataset, start)
        energy = self.energy_fn(dataset)
        gen = torch.Generator().manual_seed(self.seed + 1)
        if n_steps == 0:
            return x0[None], None
        if sampler == "MALA" and sigma > 0:
            # MALA for p^(1/sigma^2): the proposal is the ULA step above
            res = langevin(lambda x: -energy(x) / sigma ** 2, x0, n_steps, h * sigma ** 2,
                           metropolis=True, thin=1, generator=gen)
            return torch.cat([x0[None], res.samples]), float(res.accept_rate.mean())
        box = 3 * max(abs(v) for v in _landscape(dataset)["extent"])  # unstable steps stay finite
        path = langevin_sample(energy, x0, n_steps, h, noise_scale=sigma, bounds=(-box, box),
                               generator=gen, return_path=True)
        return path, None

    def update(self, dataset: str = "8gaussians", start: str = "uniform",
               step_size: float = 0.01, n_steps: int = 200, noise: float = 1.0,
               sampler: str = "ULA") -> dict:
        with one_torch_thread():  # 500 particles in 2-D: one thread is fastest
            path, acceptance = self.run_chains(dataset, start, step_size, n_steps, noise,
                                               sampler)
        land = _landscape(dataset)
        ref = _reference(dataset, self.seed, self.n_ref, self.n_particles)
        x = path[-1]
        log_p = mixture_log_prob(x, land["centres"], land["sigma"], land["weights"])
        k = len(land["centres"])
        mode, start_mode = self.mode_of(x, dataset), self.mode_of(path[0], dataset)
        occupancy = np.bincount(mode, minlength=k) / len(mode)
        w = land["weights"].numpy()
        pos = occupancy > 0
        xs, ys, energy = _energy_grid(dataset, self.resolution)
        return {
            "dataset": dataset, "start_kind": start, "step_size": float(step_size),
            "n_steps": int(n_steps), "noise": float(noise), "sampler": sampler,
            "description": land["description"],
            "start": path[0].numpy(), "particles": x.numpy(),
            "paths": path[:, : self.n_paths].numpy(),
            "xs": xs, "ys": ys, "energy": energy, "extent": land["extent"],
            "centres": land["centres"].numpy(), "weights": w,
            "log_p": log_p.numpy(), "mean_log_p": float(log_p.mean()),
            "exact_mean_log_p": ref["mean_log_p"],
            "mode": mode, "start_mode": start_mode, "occupancy": occupancy,
            "modes_visited": int(pos.sum()), "crossed": float((mode != start_mode).mean()),
            "occupancy_kl": float((occupancy[pos] * np.log(occupancy[pos] / w[pos])).sum()),
            "energy_distance": energy_distance(x, ref["samples"], within_y=ref["within"]),
            "energy_distance_floor": ref["floor"],
            "acceptance": acceptance,
        }

    # -- figure and summary ---------------------------------------------------------
    def draw(self, state, fig):
        ax = fig.add_subplot(1, 2, 1)
        e = state["energy"]
        low = math.floor(e.min())
        levels = np.arange(low, low + 16.0)  # one nat apart; the plateaus far away clipped
        cs = ax.contourf(state["xs"], state["ys"], np.clip(e, low, levels[-1]),
                         levels=levels, cmap="viridis_r", alpha=0.8)
        fig.colorbar(cs, ax=ax, label="energy E(x) = -log p(x)", fraction=0.046, pad=0.04)
        for j in range(state["paths"].shape[1]):
            p = state["paths"][:, j]
            ax.plot(p[:, 0], p[:, 1], lw=0.7, color="white", alpha=0.6)
        x = state["particles"]
        ax.scatter(x[:, 0], x[:, 1], s=4, color="tab:red", label="particles", zorder=3)
        x0, x1, y0, y1 = state["extent"]
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        ax.set_aspect("equal")
        ax.set_title(f"{state['sampler']}, h = {state['step_size']:g}, σ = "
                     f"{state['noise']:g}, {state['n_steps']} steps", fontsize=9)

        ax2 = fig.add_subplot(1, 2, 2)
        k = len(state["weights"])
        idx = np.arange(k)
        ax2.bar(idx - 0.2, state["weights"], 0.4, label="true weight", color="0.6")
        ax2.bar(idx + 0.2, state["occupancy"], 0.4, label="particles", color="tab:red")
        ax2.set_xticks(idx)
        ax2.set_xlabel("mode")
        ax2.set_ylabel("share")
        ax2.set_ylim(0, 1)
        ax2.legend(fontsize=8)
        ax2.set_title(f"mode shares: KL(particles ‖ true) = {state['occupancy_kl']:.3f}",
                      fontsize=9)
        fig.tight_layout()

    def summary(self, state) -> str:
        acc = state["acceptance"]
        acc_text = "—" if acc is None else f"{acc:.3f}"
        return (
            f"<b>{state['dataset']}</b>: {state['description']}; start: "
            f"{state['start_kind']}.<br>"
            f"mean log p: particles {state['mean_log_p']:.3f}, exact samples "
            f"{state['exact_mean_log_p']:.3f}; "
            f"modes holding particles {state['modes_visited']}/{len(state['weights'])}, "
            f"particles that changed mode {state['crossed']:.1%}; "
            f"KL(mode shares ‖ true weights) {state['occupancy_kl']:.3f}.<br>"
            f"energy distance to exact samples {state['energy_distance']:.4f} "
            f"(exact samples of the same size: {state['energy_distance_floor']:.4f}); "
            f"MALA acceptance rate {acc_text}."
        )
