r"""GAN training stepper (lecture 07): play the adversarial game one step at a time.

A tiny generator ``G: z ~ N(0, I_2) -> x`` and discriminator (critic) ``D`` (MLPs from
:mod:`coursekit.gan`) play on a 2-D mixture of narrow Gaussians built to show mode
collapse (``ring8``, ``grid25``; also ``8gaussians``). Each step is one Adam update of
one player on a fresh minibatch, with the objectives of
:func:`coursekit.gan.critic_and_generator_losses`:

* critic step: minimise ``L_D(D(x), D(G(z)))`` over ``D``'s parameters, i.e.
  ``-E log D(x) - E log(1 - D(G(z)))`` (``minimax`` and ``nonsaturating``, with
  ``D = sigmoid(logit)``) or ``E f(G(z)) - E f(x) + λ E(‖∇f(x̂)‖ - 1)²`` (``wgan-gp``, the
  penalty from :func:`coursekit.gan.gradient_penalty`);
* generator step: minimise ``E log(1 - D(G(z)))`` (``minimax``), ``-E log D(G(z))``
  (``nonsaturating``) or ``-E f(G(z))`` (``wgan-gp``) over ``G``'s parameters.

The figure shows the discriminator's surface on a grid (``sigmoid(logit)``, the
probability of "data", for the classic losses; the raw critic value ``f`` for WGAN-GP)
as a filled contour, the data, the generator's samples from a fixed set of 1,000
noise vectors on top, and the mode coverage of those samples
(:func:`coursekit.metrics.mode_coverage`: modes captured out of ``k``, share of
high-quality samples, reverse KL of the captured modes' shares to uniform); a second
panel plots both players' losses against the number of steps.

Everything random (the initial weights, the data, every minibatch and ``z``) comes
from ``seed``, so two fresh apps with the same seed take identical steps.
"""

from __future__ import annotations

import numpy as np
import torch

from coursekit._validation import check_choice, check_count, check_number
from coursekit.data.toy2d import get_toy2d, mode_centres, toy2d
from coursekit.gan import (
    Discriminator,
    Generator,
    critic_and_generator_losses,
    gradient_penalty,
)
from coursekit.metrics import mode_coverage
from coursekit.runtime import one_torch_thread
from coursekit.train import optimizer_step
from coursekit.widgets.base import App

DATASETS = ("ring8", "grid25", "8gaussians")
LOSS_CHOICES = ("minimax", "nonsaturating", "wgan-gp")
LEARNING_RATES = (1e-4, 3e-4, 1e-3, 3e-3)
TRAIN_CLICK = 50  # steps per click of "train 50 steps"


class GANTrainingStepper(App):
    r"""Step a small GAN on 2-D mode-collapse data and watch the discriminator and samples.

    Controls: ``dataset`` (one of :data:`DATASETS`), ``loss`` (one of :data:`LOSS_CHOICES`,
    names of :data:`coursekit.gan.LOSSES`), ``lr`` (both players' Adam learning rate) and
    the buttons "critic step", "generator step", "train 50 steps" (50 critic steps, each
    ``n_critic``-th followed by a generator step: they alternate for the classic losses,
    ``n_critic = 5`` for ``wgan-gp`` unless given) and "reset".

    State: changing ``dataset`` or ``loss`` **resets** both networks, their optimisers and
    the random stream to the seeded start (a discriminator trained for one objective
    means nothing under another: logits vs critic values); changing ``lr`` **keeps** the
    networks and Adam's moment estimates and only changes the step size from then on.

    Plain methods (what the buttons call; each returns the figure's data, as ``update``):
    :meth:`critic_step`, :meth:`generator_step`, :meth:`train` ``(n)`` and :meth:`reset`.

    ``update(dataset, loss, lr)`` applies the settings (see above) and returns a dict
    with ``data`` ``(n_data, 2)``, ``samples`` ``(n_eval, 2)`` (the generator on its fixed
    evaluation noise), ``xs``, ``ys`` ``(resolution,)`` and ``surface``
    ``(resolution, resolution)`` (``surface[i, j]`` at ``(xs[j], ys[i])``; in ``[0, 1]``
    for the classic losses, raw critic values for ``wgan-gp``), ``surface_label``,
    ``coverage`` (the :class:`~coursekit.metrics.ModeCoverage` of ``samples``),
    ``k`` (the number of modes), ``critic_steps``, ``generator_steps``,
    ``d_history`` and ``g_history`` (``(steps, 2)`` arrays of ``(steps of both players so
    far, loss)``, one row per step of that player),
    ``extent``, ``dataset``, ``loss`` and ``lr``.
    """

    name = "gan-stepper"
    figsize = (10.0, 4.6)

    def __init__(self, dataset: str = "ring8", loss: str = "nonsaturating", lr: float = 1e-3,
                 *, seed: int = 0, hidden=(64, 64), batch_size: int = 256, n_data: int = 2000,
                 n_eval: int = 1000, resolution: int = 60, gp_weight: float = 10.0,
                 n_critic: int | None = None, betas: tuple[float, float] = (0.5, 0.999)):
        super().__init__()
        self.seed = check_count(seed, "seed", minimum=0)
        self.hidden = hidden
        self.batch_size = check_count(batch_size, "batch_size")
        self.n_data = check_count(n_data, "n_data")
        self.n_eval = check_count(n_eval, "n_eval")
        self.resolution = check_count(resolution, "resolution", minimum=2)
        self.gp_weight = check_number(gp_weight, "gp_weight", low=0.0)
        self._n_critic = None if n_critic is None else check_count(n_critic, "n_critic")
        self.betas = betas
        check_choice(lr, "lr", LEARNING_RATES)  # the dropdown offers only these
        self._configure(dataset, loss, lr, force_reset=True)
        self.choice("dataset", DATASETS, dataset, description="data set")
        self.choice("loss", LOSS_CHOICES, loss)
        self.choice("lr", LEARNING_RATES, lr, description="learning rate")
        self.button("critic", "critic step", lambda: self._click(self.critic_step))
        self.button("generator", "generator step", lambda: self._click(self.generator_step))
        self.button("train", f"train {TRAIN_CLICK} steps",
                    lambda: self._click(lambda: self.train(TRAIN_CLICK)))
        self.button("reset", "reset", lambda: self._click(self.reset))

    # -- settings and state ---------------------------------------------------------
    @staticmethod
    def _check(dataset, loss, lr) -> tuple[str, str, float]:
        check_choice(dataset, "dataset", DATASETS)
        check_choice(loss, "loss", LOSS_CHOICES)
        return dataset, loss, check_number(lr, "lr", low=0.0, strict=True)

    def _configure(self, dataset, loss, lr, force_reset: bool = False) -> None:
        """Apply the settings: a new data set or loss resets, a new ``lr`` does not."""
        dataset, loss, lr = self._check(dataset, loss, lr)
        changed = force_reset or (dataset, loss) != (self.dataset, self.loss)
        self.dataset, self.loss, self.lr = dataset, loss, lr
        if changed:
            self.reset()
        else:
            for opt in (self.d_optimizer, self.g_optimizer):
                for group in opt.param_groups:
                    group["lr"] = lr

    def reset(self) -> dict:
        """Rebuild both networks, their Adam optimisers, the data and the random stream
        from ``seed`` (the same start every time); returns the figure's data."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self.generator = Generator(2, 2, hidden=self.hidden)
            self.discriminator = Discriminator(2, hidden=self.hidden)
        self.d_optimizer = torch.optim.Adam(self.discriminator.parameters(), self.lr,
                                            betas=self.betas)
        self.g_optimizer = torch.optim.Adam(self.generator.parameters(), self.lr,
                                            betas=self.betas)
        self.rng = torch.Generator().manual_seed(self.seed)
        self.z_eval = torch.randn(self.n_eval, 2,
                                  generator=torch.Generator().manual_seed(self.seed + 1))
        self.data = toy2d(self.dataset, self.n_data, seed=self.seed).float()
        self.critic_loss_fn, self.generator_loss_fn = critic_and_generator_losses(self.loss)
        self.critic_steps = self.generator_steps = 0
        self.d_history: list[tuple[int, float]] = []
        self.g_history: list[tuple[int, float]] = []
        self.last_critic_batch: dict | None = None
        return self.snapshot()

    # -- the two players' steps -----------------------------------------------------
    def critic_objective(self, real: torch.Tensor, fake: torch.Tensor,
                         penalty_seed: int = 0) -> torch.Tensor:
        r"""The discriminator's loss on ``real`` and ``fake`` ``(batch, 2)``: the critic loss
        of ``loss``, plus ``gp_weight`` times :func:`~coursekit.gan.gradient_penalty` (its
        interpolation weights drawn from ``penalty_seed``) for ``wgan-gp``."""
        value = self.critic_loss_fn(self.discriminator(real), self.discriminator(fake))
        if self.loss == "wgan-gp":
            rng = torch.Generator().manual_seed(penalty_seed)
            value = value + self.gp_weight * gradient_penalty(self.discriminator, real, fake,
                                                              generator=rng)
        return value

    def _data_batch(self) -> torch.Tensor:
        idx = torch.randint(0, len(self.data), (self.batch_size,), generator=self.rng)
        return self.data[idx]

    def _critic_update(self) -> float:
        real = self._data_batch()
        with torch.no_grad():
            fake = self.generator.sample(self.batch_size, generator=self.rng)
        penalty_seed = int(torch.randint(0, 2**31 - 1, (1,), generator=self.rng))
        value = self.critic_objective(real, fake, penalty_seed)
        self.last_critic_batch = {"real": real, "fake": fake, "penalty_seed": penalty_seed,
                                  "loss": value.item()}
        optimizer_step(self.d_optimizer, value)
        self.critic_steps += 1
        self.d_history.append((self.critic_steps + self.generator_steps, value.item()))
        return value.item()

    def _generator_update(self) -> float:
        fake = self.generator.sample(self.batch_size, generator=self.rng)
        value = self.generator_loss_fn(self.discriminator(fake))
        optimizer_step(self.g_optimizer, value)
        self.discriminator.zero_grad(set_to_none=True)  # the backward pass went through D
        self.generator_steps += 1
        self.g_history.append((self.critic_steps + self.generator_steps, value.item()))
        return value.item()

    def critic_step(self) -> dict:
        """One Adam step of the discriminator (critic) on a fresh batch of data and of
        generated samples; the generator is untouched. The batch, the penalty's seed
        and the loss before the step are kept in ``last_critic_batch``. Returns the
        figure's data."""
        self._critic_update()
        return self.snapshot()

    def generator_step(self) -> dict:
        """One Adam step of the generator on fresh noise against the current
        discriminator (which is untouched). Returns the figure's data."""
        self._generator_update()
        return self.snapshot()

    @property
    def n_critic(self) -> int:
        """Critic steps per generator step in :meth:`train`: the ``n_critic`` given to the
        constructor, else 5 for ``wgan-gp`` (Gulrajani et al.) and 1 for the classic losses."""
        if self._n_critic is not None:
            return self._n_critic
        return 5 if self.loss == "wgan-gp" else 1

    def train(self, n: int = TRAIN_CLICK) -> dict:
        """``n`` critic steps, each followed by a generator step when the critic's step
        count is a multiple of ``n_critic`` (the schedule of :func:`coursekit.gan.gan_step`,
        whose steps are critic steps); returns the figure's data. Runs on one torch
        thread (restored afterwards): these networks are too small to gain from more,
        and on a busy machine extra threads make a click take seconds."""
        n = check_count(n, "n")
        with one_torch_thread():  # the tiny networks run fastest on one thread
            for _ in range(n):
                self._critic_update()
                if self.critic_steps % self.n_critic == 0:
                    self._generator_update()
        return self.snapshot()

    # -- what the figure shows ------------------------------------------------------
    @torch.no_grad()
    def samples(self) -> torch.Tensor:
        """The generator on its fixed evaluation noise: ``(n_eval, 2)``."""
        return self.generator(self.z_eval)

    @torch.no_grad()
    def surface(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(xs, ys, values)``: the discriminator on the data set's extent,
        ``values[i, j]`` at ``(xs[j], ys[i])``; ``sigmoid(logit)`` for the classic losses,
        the raw critic value for ``wgan-gp``."""
        x0, x1, y0, y1 = get_toy2d(self.dataset).extent
        xs = torch.linspace(x0, x1, self.resolution)
        ys = torch.linspace(y0, y1, self.resolution)
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        scores = self.discriminator(torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1))
        if self.loss != "wgan-gp":
            scores = torch.sigmoid(scores)
        return xs.numpy(), ys.numpy(), scores.reshape(self.resolution, self.resolution).numpy()

    def snapshot(self) -> dict:
        """The figure's data for the current networks (see the class doc)."""
        samples = self.samples()
        centres, sigma = mode_centres(self.dataset)
        xs, ys, values = self.surface()
        return {
            "dataset": self.dataset,
            "loss": self.loss,
            "lr": self.lr,
            "data": self.data.numpy(),
            "samples": samples.numpy(),
            "xs": xs,
            "ys": ys,
            "surface": values,
            "surface_label": ("critic value f(x)" if self.loss == "wgan-gp"
                              else "D(x) = sigmoid(logit)"),
            "coverage": mode_coverage(samples, centres, sigma),
            "k": len(centres),
            "critic_steps": self.critic_steps,
            "generator_steps": self.generator_steps,
            "d_history": np.array(self.d_history, dtype=float).reshape(-1, 2),
            "g_history": np.array(self.g_history, dtype=float).reshape(-1, 2),
            "extent": get_toy2d(self.dataset).extent,
        }

    def update(self, dataset: str = "ring8", loss: str = "nonsaturating",
               lr: float = 1e-3) -> dict:
        self._configure(dataset, loss, lr)
        return self.snapshot()

    @staticmethod
    def coverage_text(state) -> str:
        """The mode-coverage line: modes captured / k, high-quality share, reverse KL."""
        cov = state["coverage"]
        return (f"modes {cov.modes}/{state['k']}, high quality {cov.high_quality:.1%}, "
                f"reverse KL {cov.reverse_kl:.3f}")

    def draw(self, state, fig):
        ax = fig.add_subplot(1, 2, 1)
        classic = state["loss"] != "wgan-gp"
        levels = np.linspace(0.0, 1.0, 11) if classic else 15
        cs = ax.contourf(state["xs"], state["ys"], state["surface"], levels=levels,
                         cmap="RdBu_r", alpha=0.75)
        fig.colorbar(cs, ax=ax, label=state["surface_label"], fraction=0.046, pad=0.04)
        data, samples = state["data"], state["samples"]
        ax.scatter(data[:, 0], data[:, 1], s=3, color="k", alpha=0.35, label="data")
        ax.scatter(samples[:, 0], samples[:, 1], s=4, color="tab:orange", label="G(z)")
        x0, x1, y0, y1 = state["extent"]
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        ax.set_aspect("equal")
        ax.legend(fontsize=7, loc="upper right", markerscale=2)
        ax.set_title(f"{state['dataset']}, {state['loss']}: {self.coverage_text(state)}",
                     fontsize=9)

        ax2 = fig.add_subplot(1, 2, 2)
        for key, label, color in (("d_history", "critic loss", "tab:blue"),
                                  ("g_history", "generator loss", "tab:orange")):
            h = state[key]
            ax2.plot(h[:, 0], h[:, 1], lw=1, color=color, label=label)
        ax2.set_xlabel("steps (critic + generator)")
        ax2.set_ylabel("loss")
        ax2.set_title(f"{state['critic_steps']} critic / {state['generator_steps']} "
                      f"generator steps, lr {state['lr']:g}", fontsize=9)
        if state["critic_steps"] or state["generator_steps"]:
            ax2.legend(fontsize=8)
        fig.tight_layout()

    def summary(self, state) -> str:
        """No HTML summary: the coverage numbers are in the figure's title.

        The project's summary is a function of the control values (the browser suite
        recomputes it as ``summary(update(**controls))`` on a separate app after every
        click), while this app's numbers also depend on the buttons pressed so far."""
        return ""
