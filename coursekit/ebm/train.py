r"""Training an energy model through the general loop (:class:`coursekit.train.Trainer`).

=============  =====================================================================
objective      each step minimises
=============  =====================================================================
``cd``         :func:`cd_loss` with CD-k samples: ``n_langevin`` Langevin steps that
               start at the batch itself (Hinton, 2002)
``pcd``        the same, with ``batch_size`` persistent chains that continue from one
               step to the next (Tieleman, 2008)
``replay``     the same, chains restarted from a :class:`ReplayBuffer` of past samples,
               ``reinit_prob`` of them from noise (Du & Mordatch, 2019)
``sm``         :func:`score_matching_loss`, exact trace
``ssm``        :func:`score_matching_loss`, sliced (``n_projections`` per point)
``dsm``        :func:`dsm_loss` at noise level ``sigma``
``nce``        :func:`nce_loss` against a Gaussian with the data's mean and covariance
               (``noise_ratio`` noise points per data point); learns ``model.log_z``
=============  =====================================================================

Only ``nce`` trains ``model.log_z``; the other objectives never see :math:`Z`.
"""

from __future__ import annotations

import torch

from coursekit._validation import check_choice, check_count, check_number
from coursekit.ebm.objectives import cd_loss, dsm_loss, nce_loss, score_matching_loss
from coursekit.ebm.sampling import ReplayBuffer, langevin_sample
from coursekit.train import Trainer, optimizer_step

__all__ = ["OBJECTIVES", "SAMPLING_OBJECTIVES", "ebm_step", "fitted_gaussian", "train_ebm"]

SAMPLING_OBJECTIVES = ("cd", "pcd", "replay")
OBJECTIVES = SAMPLING_OBJECTIVES + ("sm", "ssm", "dsm", "nce")


def fitted_gaussian(x: torch.Tensor, inflate: float = 1.0
                    ) -> torch.distributions.MultivariateNormal:
    """``N(mean, inflate^2 cov)`` of the rows of ``x: (n, d)``: NCE's default noise."""
    mean = x.mean(0)
    cov = torch.cov(x.T).reshape(x.shape[1], x.shape[1])
    cov = cov + 1e-4 * cov.diagonal().mean() * torch.eye(x.shape[1], dtype=x.dtype,
                                                         device=x.device)
    return torch.distributions.MultivariateNormal(mean, covariance_matrix=inflate ** 2 * cov)


def _data(batch) -> torch.Tensor:
    return batch[0] if isinstance(batch, (list, tuple)) else batch


def _noise_sample(noise, m: int, rng: torch.Generator | None) -> torch.Tensor:
    """``noise.sample((m,))``, seeded from ``rng`` (a distribution's ``sample`` draws from
    torch's global RNG, which is forked so that the caller's stream is left alone)."""
    if rng is None:
        return noise.sample((m,))
    seed = int(torch.randint(2 ** 62, (), generator=rng, device=rng.device))
    with torch.random.fork_rng(devices=[rng.device] if rng.device.type == "cuda" else []):
        torch.manual_seed(seed)
        return noise.sample((m,))


def ebm_step(model, optimizer, objective: str, *, n_langevin: int = 20,
             step_size: float = 0.01, noise_scale: float = 1.0, reinit_prob: float = 0.05,
             l2: float = 0.1, sigma: float = 0.1, n_projections: int = 1, noise=None,
             noise_ratio: int = 1, clip_grad_norm: float | None = None,
             rng: torch.Generator | None = None):
    """The step function ``(trainer, batch) -> {"loss": ...}`` for one of :data:`OBJECTIVES`.

    ``pcd`` and ``replay`` keep their chains in ``trainer.state["buffer"]`` (a
    :class:`ReplayBuffer`; created on the first step; ``cd`` starts from the batch and
    keeps none); the sampling objectives log the mean energy of the data (``e_data``) and
    of the samples (``e_model``) besides the loss. ``nce`` needs
    ``noise``, a distribution with ``sample`` and ``log_prob``.
    """
    check_choice(objective, "objective", OBJECTIVES)
    n_langevin = check_count(n_langevin, "n_langevin")
    if objective == "nce" and noise is None:
        raise ValueError("noise: expected a distribution with sample() and log_prob() for nce")
    noise_ratio = check_count(noise_ratio, "noise_ratio")
    reinit_prob = check_number(reinit_prob, "reinit_prob", low=0.0, high=1.0)
    bounds = model.bounds if model.clip else None

    def chains(trainer, x):
        if objective == "cd":
            return x, None
        buffer = trainer.state.get("buffer")
        if objective == "pcd":
            if buffer is None:
                buffer = trainer.state["buffer"] = ReplayBuffer(model.initial(len(x), rng), 0.0)
            index = torch.arange(len(buffer), device=buffer.states.device)
            return buffer.states.clone(), index
        if buffer is None:
            buffer = trainer.state["buffer"] = ReplayBuffer(model.initial(10_000, rng),
                                                            reinit_prob)
        return buffer.sample(len(x), model.initial(len(x), rng), rng)

    def step(trainer, batch):
        x = _data(batch)
        logged = {}
        if objective in SAMPLING_OBJECTIVES:
            start, index = chains(trainer, x)
            samples = langevin_sample(model.energy, start, n_langevin, step_size,
                                      noise_scale=noise_scale, bounds=bounds, generator=rng)
            if index is not None:
                trainer.state["buffer"].update(index, samples)
            e_data, e_model = model.energy(x), model.energy(samples)
            loss = cd_loss(e_data, e_model, l2=l2)
            logged = {"e_data": e_data.mean(), "e_model": e_model.mean()}
        elif objective in ("sm", "ssm"):
            loss = score_matching_loss(model.energy, x, method="exact" if objective == "sm"
                                       else "sliced", n_projections=n_projections,
                                       generator=rng)
        elif objective == "dsm":
            loss = dsm_loss(model.energy, x, sigma, generator=rng)
        else:
            y = _noise_sample(noise, noise_ratio * len(x), rng).to(x)
            loss = nce_loss(model.log_prob(x), noise.log_prob(x), model.log_prob(y),
                            noise.log_prob(y))
        optimizer_step(optimizer, loss, clip_grad_norm=clip_grad_norm)
        return {"loss": loss, **logged}

    return step


def train_ebm(model, data, *, objective: str = "replay", steps: int = 2000,
              batch_size: int = 128, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
              n_langevin: int = 20, step_size: float = 0.01, noise_scale: float = 1.0,
              reinit_prob: float = 0.05, l2: float = 0.1, sigma: float = 0.1,
              n_projections: int = 1, noise=None, noise_ratio: int = 1,
              clip_grad_norm: float | None = None, cosine_decay: bool = False,
              seed: int | None = 0, evaluate=None, evaluate_every: int = 100,
              progress: bool = True, desc: str = "EBM") -> Trainer:
    r"""Train ``model`` (an :class:`~coursekit.ebm.EnergyModel`) on ``data`` with ``objective``.

    Args:
        data: ``x (n, features)``, ``(x, y)`` (labels ignored), or anything
            :class:`~coursekit.train.Trainer` batches.
        objective: one of :data:`OBJECTIVES` (see the module's table).
        n_langevin, step_size, noise_scale: the sampler of ``cd``/``pcd``/``replay``
            (:func:`~coursekit.ebm.langevin_sample`; ``bounds`` from the model).
        reinit_prob: ``replay``'s chance to restart a chain from noise.
        l2: :func:`cd_loss`'s energy regulariser.
        sigma: ``dsm``'s noise level. n_projections: ``ssm``'s projections per point.
        noise, noise_ratio: ``nce``'s noise distribution (default: :func:`fitted_gaussian`
            of the data) and noise points per data point.
        lr, betas, clip_grad_norm: Adam and optional gradient clipping.
        cosine_decay: decay the learning rate to 0 along a cosine over ``steps``.
        seed: seeds the shuffling, the chains and the noise (``None``: the global RNG).
        evaluate, evaluate_every: ``(trainer) -> {"name": value}``, logged in
            ``trainer.history.val`` every ``evaluate_every`` steps.

    Returns the :class:`~coursekit.train.Trainer`; ``trainer.history.train["loss"]`` is the
    curve, ``trainer.state["buffer"]`` the chains of the sampling objectives, and
    ``trainer.run(steps=more)`` continues.
    """
    check_choice(objective, "objective", OBJECTIVES)
    device = next(model.parameters()).device
    rng = None if seed is None else torch.Generator(device=device).manual_seed(seed)
    if objective == "nce" and noise is None:
        x = _data(data) if isinstance(data, (torch.Tensor, list, tuple)) else None
        if not isinstance(x, torch.Tensor):
            raise ValueError("noise: expected a distribution for nce when data is not a tensor")
        noise = fitted_gaussian(x.to(device, next(model.parameters()).dtype))
    params = [p for name, p in model.named_parameters() if objective == "nce" or name != "log_z"]
    optimizer = torch.optim.Adam(params, lr=check_number(lr, "lr", low=0.0, strict=True),
                                 betas=betas)
    step = ebm_step(model, optimizer, objective, n_langevin=n_langevin, step_size=step_size,
                    noise_scale=noise_scale, reinit_prob=reinit_prob, l2=l2, sigma=sigma,
                    n_projections=n_projections, noise=noise, noise_ratio=noise_ratio,
                    clip_grad_norm=clip_grad_norm, rng=rng)
    steps = check_count(steps, "steps")
    schedulers = ({"model": torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)}
                  if cosine_decay else None)
    trainer = Trainer(step, data, models={"model": model}, optimizers={"model": optimizer},
                      schedulers=schedulers, schedule_every="step", batch_size=batch_size,
                      seed=seed, progress=progress, desc=desc)
    if evaluate is not None:
        trainer.every(check_count(evaluate_every, "evaluate_every"), evaluate)
    trainer.run(steps=steps)
    return trainer
