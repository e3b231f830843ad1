"""An energy-based model of the 8x8 digits: samples, energies, flip detection and bits/dim.

A :class:`coursekit.ebm.DigitsEnergy` (three 3x3 convolutions, SiLU) is trained with
``train_ebm(..., objective="replay")`` (contrastive divergence with a replay buffer of
Langevin chains, Du & Mordatch 2019) on the 1,197 training digits, dequantised afresh
every epoch (pixels (k + u) / 17 in [0, 1], ``digits_loader(dequantize=True)``). The
Langevin sampler takes a large step on the gradient with little noise
(x <- x - h grad E + s sqrt(2h) xi, clipped to [0, 1]), the usual image-EBM recipe; its
stationary law is then p_T(x) ∝ exp(-E(x) / T) at the temperature T = s^2, not exp(-E).
The settings are the ``SETTINGS`` table below (``full`` for this table, ``lecture`` for
the short run lecture 08 can afford).

Measured on the trained energy (one torch thread, this machine, shared with other jobs):

* the energy (mean +- sd) of the training digits (dequantised, seed 0), the test digits
  (dequantised, seed 1) and 300 uniform-noise images;
* anomaly detection by the score -E(x): the AUROC of the 300 real test digits against
  the same digits flipped left-right, and upside down,
  P(score(real) > score(flipped)) + 0.5 P(tie) over all pairs;
* samples: 64 states of the replay buffer and 64 fresh chains from uniform noise
  (``model.sample``), next to real test digits (``results/digits_ebm.png``);
* the test NLL of two densities on the box [0, 1]^64, the literal p(x) = exp(-E(x)) / Z
  and the tempered p_T = exp(-E(x) / T) / Z_T that the sampler (and so the training)
  targets: log Z by annealed importance sampling,
  ``estimate_log_partition(energy, 64, n_samples, n_steps, bounds=(0, 1))`` at two
  numbers of annealing steps (their agreement is the check), then NLL = mean E(x_test)
  (/ T) + log Z on the dequantised test digits, moved to the 17-level pixels as
  ``digits_bpd.py`` does for continuous models (+ 64 log 17 nats) and given in bits per
  dimension with the AIS standard error. AIS's log Z-hat is a stochastic *lower* bound
  on log Z (in expectation, by Jensen), so this NLL is an optimistic *estimate* (it may
  fall below the true value), not a bound.

Usage::

    .venv/bin/python benchmarks/digits_ebm.py                       # the full run
    .venv/bin/python benchmarks/digits_ebm.py --setting lecture --out /tmp/ebm
    .venv/bin/python benchmarks/digits_ebm.py --set steps=300 lr=1e-3 --out /tmp/ebm

``digits_bpd.py --only "EBM (replay)"`` runs :func:`experiment` too and adds the
tempered model's bits/dim to ``results/digits_bpd.md``.

Writes ``results/digits_ebm.md``, ``results/digits_ebm.json`` and
``results/digits_ebm.png``.
"""

from __future__ import annotations

import argparse
import ast
import datetime
import json
import math
import platform
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from coursekit.data import load_digits  # noqa: E402
from coursekit.data.digits import N_LEVELS, digits_loader  # noqa: E402
from coursekit.ebm import DigitsEnergy, estimate_log_partition, train_ebm  # noqa: E402
from coursekit.plotting import image_grid  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
D = 64
LOG_BINS = D * math.log(N_LEVELS)  # nats from the [0, 1) scale to unit-width bins

# train_ebm's keywords (objective="replay"; ``channels`` for DigitsEnergy, ``batch`` for
# digits_loader) and the fresh chains drawn after training (``sample_steps``).
SETTINGS = {
    "full": dict(channels=(32, 64, 64), batch=128, steps=1000, lr=5e-4, betas=(0.0, 0.999),
                 n_langevin=30, step_size=3.0, noise_scale=0.01, reinit_prob=0.05,
                 l2=0.1, clip_grad_norm=1.0, sample_steps=60),
    "lecture": dict(channels=(32, 64, 64), batch=64, steps=300, lr=1e-3,
                    betas=(0.0, 0.999), n_langevin=20, step_size=3.0, noise_scale=0.01,
                    reinit_prob=0.05, l2=0.1, clip_grad_norm=1.0, sample_steps=60),
}
AIS_STEPS = (1000, 4000)
AIS_SAMPLES = 256


def auroc(real: torch.Tensor, other: torch.Tensor) -> float:
    """P(real > other) + 0.5 P(tie) over all pairs of scores."""
    greater = (real[:, None] > other[None, :]).double().mean()
    ties = (real[:, None] == other[None, :]).double().mean()
    return float(greater + 0.5 * ties)


def flip(x: torch.Tensor, dim: int) -> torch.Tensor:
    """``(n, 64)`` digits mirrored along the image's rows (dim -1: left-right) or columns
    (dim -2: upside down)."""
    return x.reshape(-1, 8, 8).flip(dim).reshape(-1, D)


def stats(e: torch.Tensor) -> list[float]:
    return [float(e.mean()), float(e.std())]


def train(setting: dict, seed: int = 0):
    """Train a DigitsEnergy; returns ``(model, trainer, seconds)``."""
    kw = {k: v for k, v in setting.items() if k not in ("channels", "batch", "sample_steps")}
    torch.manual_seed(seed)
    model = DigitsEnergy(setting["channels"])
    loader = digits_loader("train", batch_size=setting["batch"], dequantize=True, seed=seed)
    start = time.perf_counter()
    trainer = train_ebm(model, loader, objective="replay", seed=seed, progress=False, **kw)
    return model.eval(), trainer, time.perf_counter() - start


@torch.no_grad()
def likelihood(energy, x_test: torch.Tensor, ais_steps, ais_samples: int) -> dict:
    """AIS log Z on [0, 1]^64 at each number of steps and the test NLL / bits per dim."""
    e_test = energy(x_test).double()
    out = {"runs": []}
    for n_steps in ais_steps:
        start = time.perf_counter()
        est = estimate_log_partition(energy, D, ais_samples, n_steps, bounds=(0.0, 1.0),
                                     seed=0)
        nll = float(e_test.mean()) + est.log_z + LOG_BINS
        out["runs"].append(dict(n_steps=n_steps, log_z=est.log_z, stderr=est.stderr,
                                nll=nll, bpd=nll / (D * math.log(2)),
                                bpd_stderr=est.stderr / (D * math.log(2)),
                                seconds=time.perf_counter() - start))
    # the test set's own sampling error of the mean energy, in bits per dimension
    out["test_se_bpd"] = float(e_test.std() / math.sqrt(len(e_test)) / (D * math.log(2)))
    return out


def experiment(name: str = "full", seed: int = 0, ais_steps=AIS_STEPS,
               ais_samples: int = AIS_SAMPLES, out: Path = RESULTS, **overrides) -> dict:
    """Train, measure, write ``<out>/digits_ebm.{md,json,png}``; returns the result.
    ``overrides`` replace entries of ``SETTINGS[name]``."""
    setting = dict(SETTINGS[name], **overrides)
    model, trainer, seconds = train(setting, seed)
    x_train = load_digits("train", dequantize=True, seed=0)[0]
    x_test = load_digits("test", dequantize=True, seed=1)[0]
    noise = torch.rand(300, D, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        e = {"train": model.energy(x_train), "test": model.energy(x_test),
             "uniform noise": model.energy(noise)}
        score = -e["test"]
        auc = {"left-right flip": auroc(score, -model.energy(flip(x_test, -1))),
               "upside down": auroc(score, -model.energy(flip(x_test, -2)))}
    start = time.perf_counter()
    fresh = model.sample(64, n_steps=setting["sample_steps"], step_size=setting["step_size"],
                         noise_scale=setting["noise_scale"], generator=seed + 1)
    sample_seconds = time.perf_counter() - start
    buffer = trainer.state["buffer"].states
    pick = torch.randperm(len(buffer), generator=torch.Generator().manual_seed(seed))[:64]
    with torch.no_grad():
        e["buffer samples"] = model.energy(buffer[pick])
        e["fresh samples"] = model.energy(fresh)
    temperature = setting["noise_scale"] ** 2
    lik = {"literal exp(-E)": likelihood(model.energy, x_test, ais_steps, ais_samples),
           f"tempered exp(-E/T), T = {temperature:g}":
               likelihood(lambda x: model.energy(x) / temperature, x_test, ais_steps,
                          ais_samples)}
    result = dict(setting=name, settings=setting, seed=seed, ais_samples=ais_samples,
                  train_s=seconds,
                  sample_s=sample_seconds, params=sum(p.numel() for p in model.parameters()
                                                      if p is not model.log_z),
                  energies={k: stats(v) for k, v in e.items()}, auroc=auc,
                  temperature=temperature, likelihood=lik)
    machine = (f"{platform.machine()}, {torch.get_num_threads()} torch thread, "
               f"torch {torch.__version__}, Python {platform.python_version()}")
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    result = dict(result, date=stamp, machine=machine)
    out.mkdir(parents=True, exist_ok=True)
    (out / "digits_ebm.json").write_text(json.dumps(result, indent=1))
    write(result, out)
    plot(out / "digits_ebm.png", buffer[pick], fresh, x_test, setting["sample_steps"])
    return result


def converged(runs: list[dict]) -> bool:
    """Do the AIS runs' log Z agree within 3 joint standard errors (+ 0.05 nats), each
    with a standard error below 0.5 (above it a few chains carry all the weight and the
    standard error means little; a necessary check, not a sufficient one)?"""
    a, b = runs[0], runs[-1]
    return (max(a["stderr"], b["stderr"]) < 0.5
            and abs(a["log_z"] - b["log_z"]) <= 3 * math.hypot(a["stderr"], b["stderr"]) + 0.05)


def write(result: dict, out: Path) -> None:
    """``<out>/digits_ebm.md`` from a result (also what ``--rewrite`` redoes)."""
    stamp, machine = result["date"], result["machine"]
    s = {k: tuple(v) if isinstance(v, list) else v for k, v in result["settings"].items()}
    call = ", ".join(f"{k}={v!r}" for k, v in s.items()
                     if k not in ("channels", "batch", "sample_steps"))
    lines = ["# An energy-based model of the 8x8 digits", "",
             f"Measured by `benchmarks/digits_ebm.py` (setting `{result['setting']}`) on "
             f"{stamp} ({machine}; this machine, shared with other jobs, so the seconds "
             f"are indicative).", "",
             f"Model: `DigitsEnergy(channels={s['channels']!r})`, "
             f"{result['params']:,} parameters (without `log_z`). Training: "
             f"`train_ebm(model, digits_loader('train', batch_size={s['batch']}, "
             f"dequantize=True, seed=0), objective='replay', {call}, seed=0)`: "
             f"**{result['train_s']:.1f} s**. Fresh samples: `model.sample(64, n_steps="
             f"{s['sample_steps']}, step_size={s['step_size']}, noise_scale="
             f"{s['noise_scale']})`, {result['sample_s']:.1f} s. The sampler's stationary "
             f"law is exp(-E/T) with T = noise_scale^2 = {result['temperature']:g}.", "",
             "## Energies (lower = more probable)", "",
             "| images | mean E | sd |", "|---|---:|---:|"]
    for k, (m, sd) in result["energies"].items():
        lines.append(f"| {k} | {m:.3f} | {sd:.3f} |")
    lines += ["", "## Flip detection by the score -E (300 test digits)", "",
              "| real vs | AUROC |", "|---|---:|"]
    for k, v in result["auroc"].items():
        lines.append(f"| {k} | {v:.3f} |")
    lines += ["", "## Test NLL by annealed importance sampling", "",
              "log Z on [0, 1]^64 by `estimate_log_partition(energy, 64, n_samples, n_steps, "
              "bounds=(0, 1), seed=0)`; NLL = mean E(test) + log Z + 64 log 17 nats "
              "(the 17-level pixels, as in `digits_bpd.md`); bits/dim = NLL / (64 log 2), "
              "+- AIS's standard error (the test set's own error is given separately). "
              "**AIS's log Z-hat is a stochastic lower bound on log Z in expectation, so "
              "these NLLs are optimistic estimates, not bounds**; the two numbers of "
              "annealing steps show how far AIS has converged (more steps, larger "
              "log Z-hat in expectation).", "",
              "| density | AIS chains x steps | log Z +- se | NLL (nats / image) | "
              "bits / dim +- AIS se | test-set se (bits/dim) | AIS s | AIS agrees "
              "across steps |",
              "|---|---|---:|---:|---:|---:|---:|---|"]
    for k, lik in result["likelihood"].items():
        ok = converged(lik["runs"])
        for r in lik["runs"]:
            lines.append(f"| {k} | {result.get('ais_samples', AIS_SAMPLES)} x {r['n_steps']} | "
                         f"{r['log_z']:.2f} +- "
                         f"{r['stderr']:.2f} | {r['nll']:.1f} | {r['bpd']:.3f} +- "
                         f"{r['bpd_stderr']:.3f} | {lik['test_se_bpd']:.3f} | "
                         f"{r['seconds']:.0f} | {'yes' if ok else '**no: not converged**'} |")
    lines += ["", "'AIS agrees across steps' asks that the two numbers of annealing steps "
              "agree within 3 joint standard errors + 0.05 nats and that each standard "
              "error is below 0.5 (a standard error near 1 means one chain carries all "
              "the weight). Where this fails AIS has not converged: its log Z is still far "
              "below log Z and the NLL is meaningless (only the direction is known: the "
              "true NLL is higher). Passing is necessary, not sufficient."]
    lines += ["", "Reference rows of `digits_bpd.md` (same test split and dequantisation): "
              "uniform pixels 4.087 bits/dim, independent pixels 2.434.", "",
              "Samples: `digits_ebm.png` (replay buffer | fresh chains from noise | "
              "test digits)."]
    (out / "digits_ebm.md").write_text("\n".join(lines) + "\n")


def plot(path: Path, buffer, fresh, x_test, sample_steps: int) -> None:
    fig, axes = plt.subplots(1, 3, figsize=(10.5, 3.9))
    image_grid(buffer.reshape(-1, 8, 8), nrow=8, ax=axes[0], vmax=1.0,
               title="replay buffer")
    image_grid(fresh.reshape(-1, 8, 8), nrow=8, ax=axes[1], vmax=1.0,
               title=f"fresh chains ({sample_steps} steps)")
    image_grid(x_test[:64].reshape(-1, 8, 8), nrow=8, ax=axes[2], vmax=1.0,
               title="test digits")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def bpd_row(result: dict) -> dict:
    """``digits_bpd.py``'s row: the literal density exp(-E) / Z at the most AIS steps
    (the tempered density's AIS is reported in ``digits_ebm.md``, and only here too when
    its two numbers of annealing steps agree)."""
    literal = result["likelihood"]["literal exp(-E)"]["runs"]
    best = max(literal, key=lambda r: r["n_steps"])
    key = next(k for k in result["likelihood"] if k.startswith("tempered"))
    tempered = result["likelihood"][key]["runs"]
    t_best = max(tempered, key=lambda r: r["n_steps"])
    t_note = (f"tempered exp(-E/T), T={result['temperature']:g}: {t_best['bpd']:.3f}"
              if converged(tempered) else
              f"tempered exp(-E/T), T={result['temperature']:g}: AIS not converged")
    return {"nll": best["nll"], "bpd": best["bpd"], "params": result["params"],
            "seconds": result["train_s"], "kind": "AIS estimate (dequantised)",
            "note": (f"literal exp(-E); AIS {result.get('ais_samples', AIS_SAMPLES)}x"
                     f"{best['n_steps']}, +-{best['bpd_stderr']:.3f} bits/dim, an "
                     f"optimistic estimate; {t_note}; see digits_ebm.md")}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--setting", choices=list(SETTINGS), default="full")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                   help="override settings, e.g. --set steps=300 step_size=10.0")
    p.add_argument("--ais-steps", type=int, nargs="+", default=list(AIS_STEPS))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--rewrite", action="store_true",
                   help="only rewrite digits_ebm.md from the recorded .json")
    args = p.parse_args()
    torch.set_num_threads(1)
    if args.rewrite:
        write(json.loads((args.out / "digits_ebm.json").read_text()), args.out)
        return
    overrides = {k: ast.literal_eval(v) for k, v in (a.split("=", 1) for a in args.set)}
    r = experiment(args.setting, args.seed, args.ais_steps, out=args.out, **overrides)
    print(json.dumps({k: r[k] for k in ("train_s", "energies", "auroc")}, indent=1))
    for k, lik in r["likelihood"].items():
        for run in lik["runs"]:
            print(f"{k}: AIS {run['n_steps']} steps log Z {run['log_z']:.2f} +- "
                  f"{run['stderr']:.2f}  {run['bpd']:.3f} bits/dim ({run['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
