"""Energy-based models on the eight toy 2-D densities: test NLL against the true entropy.

Every objective of :data:`coursekit.ebm.OBJECTIVES` (contrastive divergence ``cd``,
persistent ``pcd``, replay-buffer ``replay``, exact and sliced score matching ``sm`` /
``ssm``, denoising score matching ``dsm``, noise-contrastive estimation ``nce``) trains
an :class:`coursekit.ebm.EnergyMLP` (three hidden layers of 128, SiLU; chains start
uniform in [-4.5, 4.5]^2) on each of the eight :data:`coursekit.data.toy2d.TOY2D`
distributions, with Adam (cosine decay of the learning rate to 0) on batches of 256 from
a training set of 100,000 points drawn from the known distribution (seed 1), using
:func:`coursekit.ebm.ebm_step` inside :class:`coursekit.train.Trainer` (what
:func:`coursekit.ebm.train_ebm` does, plus the learning-rate schedule, which
``train_ebm`` does not offer). Each objective has its own number of steps and sampler /
noise settings (the ``SETTINGS`` table below, chosen by short pilot runs on 8gaussians and
moons to stay within about a minute per run on one CPU thread).

The model density is the energy restricted to the box B = [-4.5, 4.5]^2, which holds
every toy distribution's samples (the widest, moons, reaches |x| = 3.53 in 100,000
draws): p(x) = exp(-E(x)) / Z_B, a proper density whatever the energy does outside B.
log Z_B is the midpoint rule on a 400 x 400 grid (:func:`coursekit.ebm.
grid_log_partition`); two checks per model are reported: the same box at 200 x 200
(the quadrature error) and the box [-9, 9]^2 at 600 x 600 (the mass the energy puts
outside B, as the fraction 1 - Z_B / Z_[-9,9]). The test NLL (nats) is the mean of
E(x) + log Z_B over 10,000 fresh test points (seed 12345); H(p) is the true entropy, so
the gap NLL - H(p) = KL(p || p_model) up to test-set noise (about +-0.01).

Besides the grid, each trained energy's log Z is estimated by annealed importance
sampling, ``estimate_log_partition(model.energy, 2, n_samples=512, n_steps=500,
init_std=2.0)`` (unbounded, from N(0, 2^2 I); compared with the grid on [-9, 9]^2,
which is the same integral up to the mass beyond that box), with its standard error;
for ``nce`` the learned ``model.log_z`` is reported beside the grid's log Z_B as well.
Train seconds are wall time on one torch thread of a shared machine.

Usage::

    .venv/bin/python benchmarks/ebm_toy2d.py                        # everything
    .venv/bin/python benchmarks/ebm_toy2d.py --only moons --objectives dsm nce \\
        --steps 500 --out /tmp/x.md
    # redo some runs on top of the recorded table, keeping the others
    .venv/bin/python benchmarks/ebm_toy2d.py --only rings --objectives replay --keep

Writes ``results/ebm_toy2d.md`` and ``results/ebm_toy2d.json``, rewritten after every
dataset (a partial table is labelled as such).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import platform
import time
from pathlib import Path

import torch

from coursekit.data.toy2d import TOY2D, get_toy2d
from coursekit.ebm import (
    OBJECTIVES,
    EnergyMLP,
    dsm_loss,
    ebm_step,
    estimate_log_partition,
    fitted_gaussian,
    grid_log_partition,
)
from coursekit.train import Trainer, optimizer_step

RESULTS = Path(__file__).resolve().parent / "results"
GOAL = 0.1
BATCH = 256
N_TRAIN = 100_000
TRAIN_SEED = 1
N_TEST = 10_000
TEST_SEED = 12345
EXTENT = 4.5          # the box B = [-EXTENT, EXTENT]^2 of the model's support
RESOLUTION = 400      # grid cells per axis for log Z_B
AIS = dict(n_samples=512, n_steps=500, init_std=2.0)

# Per objective: Adam's learning rate, the number of steps and ebm_step's keywords.
# ``dsm`` anneals its noise level geometrically from ``sigma_max`` to ``sigma`` over the
# first ``anneal`` fraction of the steps, then stays at ``sigma`` (a fixed small sigma
# fits each mode's score but leaves the energy between modes to chance).
SETTINGS = {
    "cd": dict(lr=1e-3, steps=800, n_langevin=20, step_size=0.005, l2=0.0),
    "pcd": dict(lr=1e-3, steps=800, n_langevin=20, step_size=0.005, l2=0.0),
    "replay": dict(lr=1e-3, steps=800, n_langevin=20, step_size=0.005, l2=0.0),
    "sm": dict(lr=1e-3, steps=2000),
    "ssm": dict(lr=1e-3, steps=2000, n_projections=1),
    "dsm": dict(lr=1e-3, steps=5000, sigma=0.1, sigma_max=1.0, anneal=0.5),
    "nce": dict(lr=1e-3, steps=5000, noise_ratio=1),
}


def annealed_dsm_step(model, optimizer, steps: int, sigma: float, sigma_max: float,
                      anneal: float, rng):
    """:func:`coursekit.ebm.dsm_loss` at sigma_max * (sigma / sigma_max) ** min(t / (anneal
    * steps), 1) at step t: ``ebm_step``'s ``dsm`` with a noise schedule."""

    def step(trainer, batch):
        t = min(trainer.step / (anneal * steps), 1.0)
        x = batch[0] if isinstance(batch, (list, tuple)) else batch
        loss = dsm_loss(model.energy, x, sigma_max * (sigma / sigma_max) ** t, generator=rng)
        optimizer_step(optimizer, loss)
        return {"loss": loss}

    return step


def train(dataset: str, objective: str, settings: dict, seed: int):
    """Train one energy; returns ``(model, train seconds)``."""
    kw = dict(settings)
    lr, steps = kw.pop("lr"), kw.pop("steps")
    x = get_toy2d(dataset).sample(N_TRAIN, seed=TRAIN_SEED)
    torch.manual_seed(seed)
    model = EnergyMLP(2, extent=EXTENT)
    if objective == "nce":
        kw["noise"] = fitted_gaussian(x, kw.pop("inflate", 1.0))
    params = [p for name, p in model.named_parameters()
              if objective == "nce" or name != "log_z"]
    opt = torch.optim.Adam(params, lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    rng = torch.Generator().manual_seed(seed)
    if "sigma_max" in kw:
        step = annealed_dsm_step(model, opt, steps, rng=rng, **kw)
    else:
        step = ebm_step(model, opt, objective, rng=rng, **kw)
    trainer = Trainer(step, x, models={"model": model}, optimizers={"model": opt},
                      schedulers={"model": sched}, schedule_every="step",
                      batch_size=BATCH, seed=seed, progress=False)
    start = time.perf_counter()
    trainer.run(steps=steps)
    return model.eval(), time.perf_counter() - start


@torch.no_grad()
def evaluate(model, x_test: torch.Tensor, entropy: float, ais: bool) -> dict:
    """Test NLL on the box B, the grid checks, AIS and (for NCE) the learned log Z."""
    energy = model.energy
    log_z = grid_log_partition(energy, EXTENT, RESOLUTION)
    log_z_coarse = grid_log_partition(energy, EXTENT, RESOLUTION // 2)
    log_z_wide = grid_log_partition(energy, 2 * EXTENT, 3 * RESOLUTION // 2)
    nll = float(torch.cat([energy(c) for c in x_test.split(2500)]).double().mean()) + log_z
    row = dict(nll=nll, entropy=entropy, gap=nll - entropy, log_z=log_z,
               log_z_coarse=log_z_coarse, log_z_wide=log_z_wide,
               outside=-math.expm1(log_z - log_z_wide),
               learned_log_z=float(model.log_z.detach()))
    if ais:
        start = time.perf_counter()
        est = estimate_log_partition(energy, 2, seed=0, **AIS)
        row.update(ais_log_z=est.log_z, ais_stderr=est.stderr,
                   ais_s=time.perf_counter() - start)
    return row


def fmt_settings(objective: str, s: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in s.items() if k != "steps")


def write(rows, args, done: bool, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    order = list(TOY2D)
    rows = sorted(rows, key=lambda r: (order.index(r["dataset"]),
                                       OBJECTIVES.index(r["objective"])))
    entropies = {r["dataset"]: r["entropy"] for r in rows}
    datasets = [d for d in TOY2D if d in entropies]
    objectives = [o for o in OBJECTIVES if any(r["objective"] == o for r in rows)]
    machine = (f"{platform.machine()} ({platform.processor() or 'cpu'}), "
               f"{torch.get_num_threads()} torch thread, torch {torch.__version__}, "
               f"Python {platform.python_version()}")
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = ["# Energy-based models on the toy 2-D densities: test NLL vs the true entropy",
             ""]
    if not done:
        lines += [f"**PARTIAL: {len(datasets)} of {len(TOY2D)} datasets (objectives: "
                  f"{', '.join(objectives)}) done when this file was written.**", ""]
    lines += [
        f"Generated by `benchmarks/ebm_toy2d.py` on {now}"
        + (" (with --keep: rows this run did not redo come from earlier runs; the "
           "machine was shared, so compare train seconds within one run only)."
           if args.keep else "."), "",
        f"Machine: {machine}; measured on this machine, which other jobs shared.", "",
        f"Model: EnergyMLP (128, 128, 128), SiLU, p(x) = exp(-E(x)) / Z_B on the box "
        f"B = [-{EXTENT}, {EXTENT}]^2. Adam with cosine decay to 0, batch {BATCH} from "
        f"{N_TRAIN:,} training points; steps and settings per objective under All runs "
        f"(Langevin: x <- x - h grad E + sqrt(2h) noise, `step_size` = h). log Z_B by "
        f"the midpoint rule on {RESOLUTION}^2 cells. Test set: {N_TEST:,} fresh points "
        f"(seed {TEST_SEED}). NLL and entropy in nats; gap = NLL - H(p) (= KL(p || q) "
        f"up to test-set noise, about +-0.01).", "",
        "## Gap NLL - H(p) (nats)", "",
        "| dataset | H(p) | " + " | ".join(objectives) + f" | best | within {GOAL} |",
        "|---|---|" + "---|" * len(objectives) + "---|---|",
    ]
    reached = 0
    for d in datasets:
        by = {r["objective"]: r for r in rows if r["dataset"] == d}
        best = min(by.values(), key=lambda r: r["gap"])
        ok = best["gap"] <= GOAL
        reached += ok
        cells = [f"{by[o]['gap']:+.3f}" if o in by else "-" for o in objectives]
        lines.append(f"| {d} | {entropies[d]:.3f} | " + " | ".join(cells)
                     + f" | {best['objective']} {best['gap']:+.3f} | "
                     f"{'yes' if ok else 'no'} |")
    lines += ["", f"Best objective within {GOAL} nats of the entropy on **{reached} of "
              f"{len(datasets)}** datasets at this budget.", "",
              "## log Z: grid checks, AIS and NCE's learned log Z", "",
              f"grid = log Z_B ({RESOLUTION}^2 cells); coarse - grid: the same box at "
              f"{RESOLUTION // 2}^2 cells minus it (quadrature error); outside: the "
              f"fraction of exp(-E)'s mass on [-{2 * EXTENT:g}, {2 * EXTENT:g}]^2 that "
              f"lies outside B. AIS: log Z over the plane from N(0, 2^2 I), "
              f"{AIS['n_samples']} chains, {AIS['n_steps']} annealing steps, +- its "
              f"standard error, compared with the grid on [-{2 * EXTENT:g}, "
              f"{2 * EXTENT:g}]^2 (wide). AIS's log Z is a stochastic lower bound "
              f"in expectation. NCE: the learned `log_z` parameter against the grid's "
              f"log Z_B.", "",
              "| dataset | objective | grid log Z_B | coarse - grid | outside | "
              "wide grid | AIS log Z +- se | AIS - wide | NCE log_z - grid |",
              "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ais = (f"{r['ais_log_z']:.3f} +- {r['ais_stderr']:.3f} | "
               f"{r['ais_log_z'] - r['log_z_wide']:+.3f}" if "ais_log_z" in r else "- | -")
        nce = (f"{r['learned_log_z']:.3f} - {r['log_z']:.3f} = "
               f"{r['learned_log_z'] - r['log_z']:+.3f}" if r["objective"] == "nce" else "")
        outside = f"{r['outside']:.1e}" if abs(r["outside"]) >= 1e-6 else "< 1e-6"
        lines.append(f"| {r['dataset']} | {r['objective']} | {r['log_z']:.3f} | "
                     f"{r['log_z_coarse'] - r['log_z']:+.1e} | {outside} | "
                     f"{r['log_z_wide']:.3f} | {ais} | {nce} |")
    with_ais = [r for r in rows if "ais_log_z" in r]
    if with_ais:
        diffs = [r["ais_log_z"] - r["log_z_wide"] for r in with_ais]
        within = sum(abs(d) <= 2 * r["ais_stderr"] for d, r in zip(diffs, with_ais))
        lines += ["", f"AIS - wide grid: mean {sum(diffs) / len(diffs):+.4f}, largest "
                  f"|difference| {max(map(abs, diffs)):.3f}; within 2 standard errors in "
                  f"{within} of {len(with_ais)} runs."]
    lines += ["", "## All runs", "",
              "| dataset | objective | steps | settings | params | train s | test NLL | "
              "H(p) | gap |",
              "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['dataset']} | {r['objective']} | {r['steps']} | "
                     f"{fmt_settings(r['objective'], r['settings'])} | {r['params']:,} | "
                     f"{r['train_s']:.1f} | {r['nll']:.4f} | {r['entropy']:.4f} | "
                     f"{r['gap']:+.4f} |")
    out.write_text("\n".join(lines) + "\n")
    out.with_suffix(".json").write_text(json.dumps(
        {"date": now, "machine": machine, "batch": BATCH, "n_train": N_TRAIN,
         "n_test": N_TEST, "extent": EXTENT, "resolution": RESOLUTION, "ais": AIS,
         "complete": done, "rows": rows}, indent=1))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--only", nargs="+", default=list(TOY2D), choices=TOY2D)
    p.add_argument("--objectives", nargs="+", default=list(OBJECTIVES), choices=OBJECTIVES)
    p.add_argument("--steps", type=int, default=None,
                   help="override every objective's number of steps")
    p.add_argument("--no-ais", action="store_true", help="skip the AIS estimates")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=RESULTS / "ebm_toy2d.md")
    p.add_argument("--keep", action="store_true",
                   help="keep the previous table's runs that this one does not redo")
    p.add_argument("--rewrite", action="store_true",
                   help="only rewrite the table from the recorded .json (no training)")
    args = p.parse_args()
    torch.set_num_threads(1)
    if args.rewrite:
        recorded = json.loads(args.out.with_suffix(".json").read_text())
        args.keep = False
        write(recorded["rows"], args, recorded["complete"], args.out)
        return
    rows = []
    previous = args.out.with_suffix(".json")
    if args.keep and previous.exists():
        redo = {(d, o) for d in args.only for o in args.objectives}
        rows = [r for r in json.loads(previous.read_text())["rows"]
                if (r["dataset"], r["objective"]) not in redo]
    for d in args.only:
        dist = get_toy2d(d)
        entropy = float(dist.entropy())
        x_test = dist.sample(N_TEST, seed=TEST_SEED)
        for objective in args.objectives:
            settings = dict(SETTINGS[objective])
            if args.steps is not None:
                settings["steps"] = args.steps
            model, secs = train(d, objective, settings, args.seed)
            row = dict(dataset=d, objective=objective, steps=settings["steps"],
                       settings=settings, params=sum(q.numel() for q in model.parameters()),
                       train_s=secs, **evaluate(model, x_test, entropy, not args.no_ais))
            rows.append(row)
            ais = (f" AIS {row['ais_log_z']:.3f}+-{row['ais_stderr']:.3f} vs wide grid "
                   f"{row['log_z_wide']:.3f}" if "ais_log_z" in row else "")
            print(f"{d:>12} {objective:>6} nll={row['nll']:.4f} H={entropy:.4f} "
                  f"gap={row['gap']:+.4f} {secs:.1f}s{ais}", flush=True)
        write(rows, args, done={r["dataset"] for r in rows} >= set(TOY2D), out=args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
