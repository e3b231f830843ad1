r"""Contrastive-divergence stepper (lecture 08): train a small energy model one update at a time.

A small :class:`coursekit.ebm.EnergyMLP` :math:`E_\theta` (SiLU, hidden ``(64, 64)``) is
fit to a 2-D toy data set by maximum likelihood through contrastive divergence: each
update is one Adam step on :func:`coursekit.ebm.cd_loss`,

.. math:: \overline{E_\theta(x_{data})} - \overline{E_\theta(x^-)}
          + \alpha\,\big(\overline{E_\theta(x_{data})^2} + \overline{E_\theta(x^-)^2}\big),

on a fresh data batch and a batch of "negative" samples :math:`x^-` from Langevin chains
(:func:`coursekit.ebm.langevin_sample`, :math:`x \leftarrow x - h\nabla E_\theta(x) +
\sqrt{2h}\,\xi`). Its gradient estimates that of the negative log-likelihood, as long as
the chains represent :math:`p_\theta`. Where the chains start is the whole difference:

* ``CD-1``, ``CD-10``: ``k`` Langevin steps from the data batch itself (Hinton, 2002). The
  chains never leave the data, so low-energy regions far from the data (which hold model
  mass) are never visited, never pushed up, and stay;
* ``persistent`` (PCD, Tieleman 2008): ``batch_size`` chains, started uniform in the box,
  continue from one update to the next (10 steps per update);
* ``replay buffer`` (Du & Mordatch, 2019): chains drawn from a
  :class:`coursekit.ebm.ReplayBuffer` of past samples, 5% of them restarted from uniform
  noise (10 steps per update).

The figure shows the model density :math:`e^{-E_\theta}/Z` (normalised on the grid) with
the data and the last update's chain samples, and the mean energies of the data and of the
samples against the update count. The model's NLL on a fixed held-out set uses
:math:`\log Z` from :func:`coursekit.ebm.grid_log_partition` over the box, next to the
true entropy :math:`H(p)`, the lowest NLL any model reaches.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import torch

from coursekit._validation import check_choice, check_count, check_number
from coursekit.data.toy2d import get_toy2d
from coursekit.ebm import EnergyMLP, ReplayBuffer, cd_loss, grid_log_partition, langevin_sample
from coursekit.runtime import one_torch_thread
from coursekit.train import optimizer_step
from coursekit.widgets.base import App

DATASETS = ("8gaussians", "moons", "checkerboard")
FAR_DENSITY = 1e-3  # "far from the data": where the true density is below this
CHAINS = ("CD-1", "CD-10", "persistent", "replay buffer")
CHAIN_TEXT = {
    "CD-1": "CD-1: one Langevin step from the data batch",
    "CD-10": "CD-10: ten Langevin steps from the data batch",
    "persistent": "persistent chains (PCD): the same chains continue across updates",
    "replay buffer": "replay buffer: chains restart from past samples, 5% from uniform noise",
}
TRAIN_CLICK = 50  # updates per click of "train 50 steps"


@cache
def _far_cells(dataset: str, extent: float, resolution: int) -> np.ndarray:
    """The grid cells (``(resolution, resolution)`` bool, rows along y) whose midpoint has
    true density below :data:`FAR_DENSITY`."""
    h = 2 * extent / resolution
    axis = torch.linspace(-extent + h / 2, extent - h / 2, resolution, dtype=torch.float64)
    gy, gx = torch.meshgrid(axis, axis, indexing="ij")
    log_p = get_toy2d(dataset).log_prob(torch.stack([gx.reshape(-1), gy.reshape(-1)], 1))
    return (log_p < math.log(FAR_DENSITY)).reshape(resolution, resolution).numpy()


class ContrastiveDivergenceStepper(App):
    r"""Train an :class:`~coursekit.ebm.EnergyMLP` by contrastive divergence, one click at a time.

    Controls: ``dataset`` (one of :data:`DATASETS`), ``chains`` (one of :data:`CHAINS`) and
    the buttons "step" (one update), "train 50 steps" and "reset". Changing ``dataset`` or
    ``chains`` **resets** the network, Adam, the chains and the random stream to the seeded
    start (the same start for every chain type).

    Plain methods (what the buttons call; each returns the figure's data, as ``update``):
    :meth:`step`, :meth:`train` ``(n)`` and :meth:`reset`. :meth:`chain_samples` and
    :meth:`objective` are the two halves of an update; ``last_batch`` keeps the data batch,
    the chains' starts and samples and the loss of the last update.

    ``update(dataset, chains)`` applies the settings and returns a dict with ``data``
    ``(n_data, 2)`` (the training set), ``samples`` (the last update's chain samples,
    ``(batch_size, 2)``, or ``(0, 2)`` before the first), ``xs``, ``ys`` ``(resolution,)``
    and ``density`` ``(resolution, resolution)`` (:math:`e^{-E}/Z` at the midpoints of a
    grid over the box, ``density[i, j]`` at ``(xs[j], ys[i])``, normalised so that
    ``density.sum() * cell == 1``), ``cell`` (a grid cell's area), ``log_z``
    (:func:`~coursekit.ebm.grid_log_partition` over the box), ``nll`` (the mean of
    :math:`E(x) + \log Z` over the fixed held-out set), ``far_mass`` (the model's mass,
    ``density.sum() * cell`` over the cells where the true density is below
    :data:`FAR_DENSITY`: spurious mass far from the data), ``entropy`` (the data set's true
    entropy), ``updates``, ``history`` (``(updates, 4)``: update number, loss, mean energy
    of the data batch, mean energy of the samples, one row per update), ``extent``,
    ``dataset``, ``chains`` and ``description``.
    """

    name = "cd-stepper"
    figsize = (10.0, 4.6)

    def __init__(self, dataset: str = "8gaussians", chains: str = "CD-1", *, seed: int = 0,
                 hidden=(64, 64), lr: float = 1e-2, batch_size: int = 128,
                 n_data: int = 2000, n_test: int = 1000, step_size: float = 0.01,
                 n_langevin: int = 10, reinit_prob: float = 0.05, buffer_size: int = 2000,
                 l2: float = 0.1, extent: float = 4.0, resolution: int = 80,
                 z_resolution: int = 200):
        super().__init__()
        self.seed = check_count(seed, "seed", minimum=0)
        self.hidden = tuple(check_count(h, "hidden") for h in hidden)
        self.lr = check_number(lr, "lr", low=0.0, strict=True)
        self.batch_size = check_count(batch_size, "batch_size")
        self.n_data = check_count(n_data, "n_data")
        self.n_test = check_count(n_test, "n_test")
        self.step_size = check_number(step_size, "step_size", low=0.0, strict=True)
        self.n_langevin = check_count(n_langevin, "n_langevin")
        self.reinit_prob = check_number(reinit_prob, "reinit_prob", low=0.0, high=1.0)
        self.buffer_size = check_count(buffer_size, "buffer_size")
        self.l2 = check_number(l2, "l2", low=0.0)
        self.extent = check_number(extent, "extent", low=0.0, strict=True)
        self.resolution = check_count(resolution, "resolution", minimum=2)
        self.z_resolution = check_count(z_resolution, "z_resolution", minimum=2)
        self.dataset = self.chains = None
        self._configure(dataset, chains)
        for name in DATASETS:  # the true entropies take seconds once: not on a click
            get_toy2d(name).entropy()
            _far_cells(name, self.extent, self.resolution)
        self.choice("dataset", DATASETS, dataset, description="data set")
        self.choice("chains", CHAINS, chains, description="chains")
        self.button("step", "step", lambda: self._click(self.step))
        self.button("train", f"train {TRAIN_CLICK} steps",
                    lambda: self._click(lambda: self.train(TRAIN_CLICK)))
        self.button("reset", "reset", lambda: self._click(self.reset))

    # -- settings and state ---------------------------------------------------------
    def _configure(self, dataset, chains) -> None:
        """Apply the settings: any change resets (a model half-trained with other chains
        or on other data says nothing about these)."""
        check_choice(dataset, "dataset", DATASETS)
        check_choice(chains, "chains", CHAINS)
        if (dataset, chains) != (self.dataset, self.chains):
            self.dataset, self.chains = dataset, chains
            self.reset()

    @property
    def k(self) -> int:
        """Langevin steps per update: 1 for CD-1, else ``n_langevin``."""
        return 1 if self.chains == "CD-1" else self.n_langevin

    def reset(self) -> dict:
        """Rebuild the network, Adam, the data, the chains and the random stream from
        ``seed`` (the same start every time); returns the figure's data."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self.model = EnergyMLP(2, hidden=self.hidden, extent=self.extent)
        params = [p for name, p in self.model.named_parameters() if name != "log_z"]
        self.optimizer = torch.optim.Adam(params, lr=self.lr)
        self.rng = torch.Generator().manual_seed(self.seed)
        dist = get_toy2d(self.dataset)
        self.data = dist.sample(self.n_data, seed=self.seed)
        self.test = dist.sample(self.n_test, seed=self.seed + 1)
        init = torch.Generator().manual_seed(self.seed + 2)
        self.buffer = None
        if self.chains == "persistent":
            self.buffer = ReplayBuffer(self.model.initial(self.batch_size, init), 0.0)
        elif self.chains == "replay buffer":
            self.buffer = ReplayBuffer(self.model.initial(self.buffer_size, init),
                                       self.reinit_prob)
        self.updates = 0
        self.history: list[tuple[float, float, float, float]] = []
        self.last_batch: dict | None = None
        return self.snapshot()

    # -- one update -----------------------------------------------------------------
    def chain_samples(self, batch: torch.Tensor):
        """``(start, samples, index)``: where this update's chains start (the batch for
        CD-k, the persistent chains, or draws from the replay buffer), where ``k`` Langevin
        steps take them, and the buffer rows they go back to (``None`` for CD-k). Uses and
        advances the app's random stream; does not write the buffer."""
        if self.chains in ("CD-1", "CD-10"):
            start, index = batch, None
        elif self.chains == "persistent":
            index = torch.arange(len(self.buffer))
            start = self.buffer.states.clone()
        else:
            restart = self.model.initial(len(batch), self.rng)
            start, index = self.buffer.sample(len(batch), restart, self.rng)
        samples = langevin_sample(self.model.energy, start, self.k, self.step_size,
                                  generator=self.rng)
        return start, samples, index

    def objective(self, batch: torch.Tensor, samples: torch.Tensor) -> torch.Tensor:
        """:func:`~coursekit.ebm.cd_loss` of the data ``batch`` and the chain ``samples``
        (with the ``l2`` energy penalty), with a graph to the network's parameters."""
        return cd_loss(self.model.energy(batch), self.model.energy(samples), l2=self.l2)

    def _update(self) -> float:
        idx = torch.randint(0, len(self.data), (self.batch_size,), generator=self.rng)
        batch = self.data[idx]
        start, samples, index = self.chain_samples(batch)
        if index is not None:
            self.buffer.update(index, samples)
        e_data, e_samples = self.model.energy(batch), self.model.energy(samples)
        loss = cd_loss(e_data, e_samples, l2=self.l2)
        self.last_batch = {"data": batch, "start": start, "samples": samples,
                           "loss": loss.item()}
        optimizer_step(self.optimizer, loss)
        self.updates += 1
        self.history.append((self.updates, loss.item(), e_data.mean().item(),
                             e_samples.mean().item()))
        return loss.item()

    def step(self) -> dict:
        """One Adam update on a fresh data batch and fresh chain samples; returns the
        figure's data."""
        return self.train(1)

    def train(self, n: int = TRAIN_CLICK) -> dict:
        """``n`` updates, on one torch thread (restored afterwards: the network is too small
        to gain from more); returns the figure's data."""
        n = check_count(n, "n")
        with one_torch_thread():
            for _ in range(n):
                self._update()
        return self.snapshot()

    # -- what the figure shows ------------------------------------------------------
    def grid(self) -> tuple[np.ndarray, np.ndarray, float]:
        """``(axis, cell)``: the midpoints of ``resolution`` cells along each axis of the box
        ``[-extent, extent]`` and the area of one cell."""
        h = 2 * self.extent / self.resolution
        axis = np.linspace(-self.extent + h / 2, self.extent - h / 2, self.resolution)
        return axis, h * h

    @torch.no_grad()
    def snapshot(self) -> dict:
        """The figure's data for the current network (see the class doc)."""
        with one_torch_thread():
            axis, cell = self.grid()
            t = torch.as_tensor(axis, dtype=torch.float32)
            gy, gx = torch.meshgrid(t, t, indexing="ij")
            e = self.model.energy(torch.stack([gx.reshape(-1), gy.reshape(-1)], 1)).double()
            log_density = -e - torch.logsumexp(-e, 0) - math.log(cell)
            density = log_density.exp().reshape(self.resolution, self.resolution).numpy()
            log_z = grid_log_partition(self.model.energy, extent=self.extent,
                                       resolution=self.z_resolution)
            nll = float(self.model.energy(self.test).double().mean()) + log_z
        samples = (self.last_batch["samples"].numpy() if self.last_batch is not None
                   else np.zeros((0, 2), dtype=np.float32))
        dist = get_toy2d(self.dataset)
        return {
            "dataset": self.dataset,
            "chains": self.chains,
            "description": dist.description,
            "data": self.data.numpy(),
            "samples": samples,
            "xs": axis, "ys": axis, "density": density, "cell": cell,
            "log_z": log_z, "nll": nll, "entropy": dist.entropy(),
            "far_mass": float(density[_far_cells(self.dataset, self.extent,
                                                 self.resolution)].sum() * cell),
            "updates": self.updates,
            "history": np.array(self.history, dtype=float).reshape(-1, 4),
            "extent": (-self.extent, self.extent, -self.extent, self.extent),
        }

    def update(self, dataset: str = "8gaussians", chains: str = "CD-1") -> dict:
        self._configure(dataset, chains)
        return self.snapshot()

    @staticmethod
    def nll_text(state) -> str:
        """The figure's title lines: updates, held-out NLL next to the true entropy, and the
        model's mass far from the data."""
        return (f"{state['updates']} updates: test NLL {state['nll']:.3f} nats "
                f"(H(p) = {state['entropy']:.3f})\n"
                f"model mass far from the data: {state['far_mass']:.1%}")

    def draw(self, state, fig):
        ax = fig.add_subplot(1, 2, 1)
        x0, x1, y0, y1 = state["extent"]
        im = ax.imshow(state["density"], origin="lower", extent=state["extent"],
                       cmap="Blues", interpolation="nearest")
        fig.colorbar(im, ax=ax, label="model density exp(-E)/Z", fraction=0.046, pad=0.04)
        data, samples = state["data"], state["samples"]
        ax.scatter(data[:, 0], data[:, 1], s=2, color="k", alpha=0.3, label="data")
        if len(samples):
            ax.scatter(samples[:, 0], samples[:, 1], s=6, color="tab:orange",
                       label="chain samples")
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        ax.set_aspect("equal")
        ax.legend(fontsize=7, loc="upper right", markerscale=2)
        ax.set_title(f"{state['dataset']}, {state['chains']}\n{self.nll_text(state)}",
                     fontsize=8)

        ax2 = fig.add_subplot(1, 2, 2)
        h = state["history"]
        ax2.plot(h[:, 0], h[:, 2], lw=1, color="k", label="mean E(data)")
        ax2.plot(h[:, 0], h[:, 3], lw=1, color="tab:orange", label="mean E(samples)")
        ax2.set_xlabel("updates")
        ax2.set_ylabel("energy")
        ax2.set_title(f"{state['updates']} updates ({state['chains']})", fontsize=9)
        if state["updates"]:
            ax2.legend(fontsize=8)
        fig.tight_layout()

    def summary(self, state) -> str:
        """The settings and the target only: the update count and the NLL are in the
        figure's title, since the browser suite recomputes the summary as
        ``summary(update(**controls))`` on a fresh app, which has pressed no buttons."""
        return (f"<b>{state['dataset']}</b>: {state['description']}.<br>"
                f"{CHAIN_TEXT[state['chains']]}. The lowest test NLL any model can reach is "
                f"the entropy H(p) = {state['entropy']:.3f} nats; the model's test NLL "
                f"(with log Z on a grid over the box) and its mass far from the data "
                f"(where p(x) < {FAR_DENSITY:g}) are in the figure's title.")
