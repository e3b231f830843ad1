"""Mode collapse of the course's GANs on the ring of 8 and the grid of 25 Gaussians.

The protocol of PacGAN's Table 1 (Lin et al., 2018), which follows VEEGAN's:

* data: ``ring8`` (8 Gaussians on a circle of radius 1, sigma 0.01) and ``grid25``
  (25 Gaussians on {-4, -2, 0, 2, 4}^2, sigma 0.05), a training set of 100,000 points;
* after training, 2,500 generator samples are scored by
  :func:`coursekit.metrics.mode_coverage` (a sample is high quality within 3 sigma of
  its nearest mode; a mode is captured by one high-quality sample; reverse KL of the
  captured-mode histogram against the uniform one);
* 10 trials (seeds 0-9), reported as mean ± standard deviation (PacGAN's table gives
  the standard error, std / sqrt(10); both are in the JSON).

The course's networks are smaller and trained far shorter than PacGAN's (a generator
of 4 x 400 ReLU units and a maxout discriminator trained for 400 epochs, 400,000
steps, on GPUs): here both networks are MLPs with three hidden layers of 128
units (ReLU, LeakyReLU 0.2), a 2-D latent, Adam with betas (0.5, 0.999) and learning
rate 1e-3 divided by 10 for the last 20 % of the steps, batches of 256, ``--steps``
steps on one CPU thread. The data is divided
by its standard deviation for training and the samples multiplied back for scoring.

Variants (all non-saturating):

* ``GAN``: the plain game;
* ``PacGAN2``: the discriminator judges packs of two samples;
* ``GAN+R1``: the plain game with the R1 penalty ``gamma/2 E_data |grad D|^2``
  (Mescheder et al., 2018; ``--r1`` sets gamma).

The issue's goal for the best variant: at least 7.9/8 and 24.5/25 modes, at least
90 % high-quality samples and reverse KL at most 0.07 on both data sets.

Usage::

    .venv/bin/python benchmarks/gan_mode_coverage.py                 # everything
    .venv/bin/python benchmarks/gan_mode_coverage.py --datasets ring8 --variants GAN+R1
    .venv/bin/python benchmarks/gan_mode_coverage.py --variants GAN+R1 --r1 0.1  # gamma 0.1
    .venv/bin/python benchmarks/gan_mode_coverage.py --report        # table from the JSON

Each finished run is added to ``results/gan_mode_coverage.json`` at once (runs of
other variants, data sets and seeds are kept, so several processes can share the
work) and seed 0's 2,500 samples go to ``<samples>/<variant>_<dataset>.npy`` (the
variant ``GAN+R1-gamma0.1`` for a gamma other than 1), so that the metric can be
recomputed independently. ``--report`` writes
``results/gan_mode_coverage.md`` from the JSON and ``.png`` (the first seed's samples).
"""

from __future__ import annotations

import argparse
import datetime
import fcntl
import json
import math
import platform
import time
from pathlib import Path

import numpy as np
import torch

from coursekit.data import MODE_COLLAPSE, mode_centres, toy2d
from coursekit.gan import Discriminator, Generator, train_gan
from coursekit.metrics import mode_coverage

RESULTS = Path(__file__).resolve().parent / "results"
N_TRAIN = 100_000
N_SAMPLES = 2_500
HIDDEN = (128, 128, 128)
VARIANTS = {"GAN": {"pack": 1, "r1": False}, "PacGAN2": {"pack": 2, "r1": False},
            "GAN+R1": {"pack": 1, "r1": True}}
PUBLISHED = {  # PacGAN, Table 1: mean ± standard error over 10 trials
    "ring8": {"GAN": ((6.3, 0.5), (98.2, 0.2), (0.45, 0.09)),
              "PacGAN2": ((7.9, 0.1), (95.6, 2.0), (0.07, 0.03)),
              "PacGAN4": ((7.8, 0.1), (95.9, 1.4), (0.07, 0.02))},
    "grid25": {"GAN": ((17.3, 0.8), (94.8, 0.7), (0.70, 0.07)),
               "PacGAN2": ((23.8, 0.7), (91.3, 0.8), (0.13, 0.04)),
               "PacGAN4": ((24.8, 0.2), (93.6, 0.6), (0.04, 0.01))},
}
GOAL = {"ring8": 7.9, "grid25": 24.5, "high_quality": 0.90, "reverse_kl": 0.07}


def run(dataset: str, variant: str, seed: int, steps: int, r1: float) -> tuple[dict, np.ndarray]:
    """Train one GAN; returns its scores and its 2,500 samples (data units)."""
    torch.manual_seed(seed)
    setting = VARIANTS[variant]
    generator = Generator(2, 2, HIDDEN)
    discriminator = Discriminator(2, HIDDEN, pack=setting["pack"])
    data = toy2d(dataset, N_TRAIN, seed=1000 + seed)
    scale = float(data.std())
    start = time.perf_counter()
    train_gan(generator, discriminator, data / scale, steps=steps, batch_size=256, lr=1e-3,
              lr_drops=(0.8,), r1_weight=r1 if setting["r1"] else 0.0, seed=seed,
              progress=False)
    seconds = time.perf_counter() - start
    with torch.no_grad():
        samples = generator.sample(N_SAMPLES, generator=torch.Generator().manual_seed(seed)) * scale
    centres, sigma = mode_centres(dataset)
    score = mode_coverage(samples, centres, sigma)
    return ({"dataset": dataset, "variant": variant, "seed": seed, "steps": steps,
             "r1": r1 if setting["r1"] else 0.0, "modes": score.modes,
             "high_quality": score.high_quality, "reverse_kl": score.reverse_kl,
             "seconds": seconds, "counts": score.counts.tolist()}, samples.numpy())


def sample_name(variant: str, r1: float) -> str:
    """The samples' file stem: the variant, and gamma where it is not the default 1."""
    return variant if r1 in (0.0, 1.0) else f"{variant}-gamma{r1:g}"


def record(path: Path, row: dict) -> None:
    """Add ``row`` to the JSON under a file lock, replacing an earlier run of the same key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as lock:  # the JSON itself is the lock; "a" leaves it intact
        fcntl.flock(lock, fcntl.LOCK_EX)
        text = path.read_text()
        doc = json.loads(text) if text.strip() else {"runs": []}
        key = (row["dataset"], row["variant"], row["seed"], row["steps"], row["r1"])
        doc["runs"] = [r for r in doc["runs"]
                       if (r["dataset"], r["variant"], r["seed"], r["steps"], r["r1"]) != key]
        doc["runs"].append(row)
        doc["machine"] = f"{platform.machine()}, 1 torch thread per run, torch {torch.__version__}"
        path.write_text(json.dumps(doc, indent=1) + "\n")


def summarise(runs: list[dict]) -> dict:
    """Mean, standard deviation and standard error of each column over the seeds."""
    out = {"trials": len(runs), "seconds": float(np.mean([r["seconds"] for r in runs]))}
    for key in ("modes", "high_quality", "reverse_kl"):
        values = np.array([r[key] for r in runs], dtype=float)
        std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        out[key] = (float(values.mean()), std, std / math.sqrt(len(values)))
    return out


def report(path: Path, out: Path, samples_dir: Path) -> None:
    doc = json.loads(path.read_text())
    groups: dict[tuple, list[dict]] = {}
    for r in doc["runs"]:
        groups.setdefault((r["dataset"], r["variant"], r["steps"], r["r1"]), []).append(r)
    lines = ["# GANs on the ring of 8 and the grid of 25 Gaussians: mode coverage", "",
             f"Measured by `benchmarks/gan_mode_coverage.py` on {doc['machine']}, "
             f"written {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC. "
             "PacGAN's protocol: 2,500 samples per trial, high quality within 3 sigma of "
             "the nearest mode, reverse KL of the mode histogram; ours is mean ± standard "
             "deviation over the seeds (standard error in brackets), PacGAN's is mean ± "
             "standard error over 10 trials. Training seconds are wall time of one thread on a "
             "machine that ran two benchmark processes and other jobs at once (compare them "
             "within one table only).", ""]
    for dataset in MODE_COLLAPSE:
        k = 8 if dataset == "ring8" else 25
        lines += [f"## {dataset}", "",
                  f"| model | trials | modes (max {k}) | high-quality samples | reverse KL "
                  "| train s per run |", "|---|---:|---:|---:|---:|---:|"]
        for (ds, variant, steps, r1), runs in sorted(groups.items()):
            if ds != dataset:
                continue
            s = summarise(runs)
            name = f"{variant} (γ={r1:g})" if r1 else variant
            m, q, kl = s["modes"], s["high_quality"], s["reverse_kl"]
            lines.append(
                f"| course: {name}, {steps:,} steps | {s['trials']} "
                f"| {m[0]:.1f} ± {m[1]:.1f} ({m[2]:.1f}) "
                f"| {100 * q[0]:.1f} ± {100 * q[1]:.1f} ({100 * q[2]:.1f}) % "
                f"| {kl[0]:.3f} ± {kl[1]:.3f} ({kl[2]:.3f}) | {s['seconds']:.0f} |")
        for variant, (m, q, kl) in PUBLISHED[dataset].items():
            lines.append(f"| PacGAN paper: {variant} | 10 | {m[0]:.1f} ({m[1]:.1f}) "
                         f"| {q[0]:.1f} ({q[1]:.1f}) % | {kl[0]:.2f} ({kl[1]:.2f}) "
                         "| GPU, 400 epochs |")
        lines.append("")
    lines += [f"Goal for the best variant: at least {GOAL['ring8']}/8 and {GOAL['grid25']}/25 "
              f"modes, at least {100 * GOAL['high_quality']:.0f} % high-quality samples and "
              f"reverse KL at most {GOAL['reverse_kl']} on both data sets.", ""]
    out.write_text("\n".join(lines))
    print("\n".join(lines))
    plot_samples(samples_dir, out.with_suffix(".png"))


def plot_samples(samples_dir: Path, out: Path) -> None:
    """The first seed's samples of every variant over the true modes' 3-sigma circles."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stems = {f.stem.rsplit("_", 1)[0] for f in samples_dir.glob("*.npy")}
    variants = sorted(stems, key=lambda s: (list(VARIANTS).index(s.split("-")[0]), s))
    if not variants:
        return
    fig, axes = plt.subplots(len(MODE_COLLAPSE), len(variants), squeeze=False,
                             figsize=(3.2 * len(variants), 6.4))
    for col, variant in enumerate(variants):
        for row, dataset in enumerate(MODE_COLLAPSE):
            ax = axes[row, col]
            centres, sigma = mode_centres(dataset)
            for c in centres:
                ax.add_patch(plt.Circle(tuple(c.tolist()), 3 * sigma, color="tab:red",
                                        fill=False, lw=0.8))
            path = samples_dir / f"{variant}_{dataset}.npy"
            if path.exists():
                x = np.load(path)
                ax.scatter(x[:, 0], x[:, 1], s=1, alpha=0.4)
            lim = 1.4 if dataset == "ring8" else 5.0
            ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal", xticks=[], yticks=[])
            ax.set_title(f"{variant}, {dataset}", fontsize=9)
    fig.suptitle("first seed: 2,500 samples; red circles: 3 sigma around each mode", fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--datasets", nargs="+", default=list(MODE_COLLAPSE), choices=MODE_COLLAPSE)
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--seeds", nargs="+", type=int, default=list(range(10)))
    p.add_argument("--steps", type=int, default=10_000)
    p.add_argument("--r1", type=float, default=1.0, help="gamma of GAN+R1")
    p.add_argument("--json", type=Path, default=RESULTS / "gan_mode_coverage.json")
    p.add_argument("--samples", type=Path, default=RESULTS / "gan_mode_coverage")
    p.add_argument("--report", action="store_true", help="only write the table from the JSON")
    args = p.parse_args()
    if not args.report:
        torch.set_num_threads(1)
        for variant in args.variants:
            for dataset in args.datasets:
                for seed in args.seeds:
                    row, samples = run(dataset, variant, seed, args.steps, args.r1)
                    record(args.json, row)
                    if seed == 0:  # the first seed of the protocol
                        args.samples.mkdir(parents=True, exist_ok=True)
                        np.save(args.samples / f"{sample_name(variant, row['r1'])}_{dataset}.npy",
                                samples)
                    print(f"{variant:8s} {dataset:6s} seed {seed}: {row['modes']} modes, "
                          f"{100 * row['high_quality']:.1f} % high quality, reverse KL "
                          f"{row['reverse_kl']:.3f}, {row['seconds']:.0f} s", flush=True)
    report(args.json, args.json.with_suffix(".md"), args.samples)


if __name__ == "__main__":
    main()
