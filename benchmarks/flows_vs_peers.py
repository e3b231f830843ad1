"""coursekit's MAF, RealNVP and NSF against nflows and zuko, side by side in one process.

Same architecture as far as the libraries allow (depth, hidden widths, ReLU
conditioners, ordering/mask alternation, spline bins and bound; every remaining
difference is listed in the results file), same optimiser (Adam, lr 1e-3, cosine
decay to 0), same data (the same stream of fresh batches of 256 points from a
:mod:`coursekit.data.toy2d` distribution, one seeded generator per run) and the same
number of steps. Reported per dataset, architecture and library: the test NLL in
nats on 10,000 fresh points (seed 12345) beside the true entropy, the median wall
time of one training step (sampling the batch excluded: forward, backward, Adam
step), the parameter count, and the ratio coursekit / peer of the median step time
(< 1: coursekit faster). One torch thread. Libraries are run interleaved per
architecture, so a change of machine load hits all alike.

The peers are optional and not dependencies of the project::

    .venv/bin/pip install nflows zuko

A peer that is not installed is skipped with a message.

Usage::

    .venv/bin/python benchmarks/flows_vs_peers.py                  # 600 steps, moons + 8gaussians
    .venv/bin/python benchmarks/flows_vs_peers.py --steps 200 --datasets rings --out /tmp/x.md

Writes ``results/flows_vs_peers.md``.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import platform
import statistics
import time
from functools import partial
from pathlib import Path

import torch
from torch import nn

from coursekit.data.toy2d import TOY2D, get_toy2d
from coursekit.flows import MAF, NSF, RealNVP

RESULTS = Path(__file__).resolve().parent / "results"
BATCH, LR, N_TEST, TEST_SEED = 256, 1e-3, 10_000, 12345
HIDDEN = (64, 64)
# coursekit's defaults: MAF 5 blocks, RealNVP 8 couplings, NSF 4 couplings of 8 bins on [-5, 5]
DEPTH = {"MAF": 5, "RealNVP": 8, "NSF": 4}
BINS, BOUND = 8, 5.0


class _ReluMLP(nn.Sequential):
    """``n_in -> 64 -> 64 -> n_out`` (ReLU); nflows calls its conditioners as
    ``net(x, context)``, the context (None here) is ignored."""

    def __init__(self, n_in: int, n_out: int):
        sizes = (n_in, *HIDDEN)
        layers: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        super().__init__(*layers, nn.Linear(sizes[-1], n_out))

    def forward(self, x, context=None):
        return super().forward(x)


# ---------------------------------------------------------------- builders
def coursekit_model(arch: str):
    cls = {"MAF": MAF, "RealNVP": RealNVP, "NSF": NSF}[arch]
    model = cls(2, layers=DEPTH[arch], hidden=HIDDEN)
    return model, model.log_prob


def nflows_model(arch: str):
    from nflows.distributions.normal import StandardNormal
    from nflows.flows.base import Flow
    from nflows.transforms import (
        AffineCouplingTransform,
        CompositeTransform,
        MaskedAffineAutoregressiveTransform,
        PiecewiseRationalQuadraticCouplingTransform,
        ReversePermutation,
    )

    layers = []
    for i in range(DEPTH[arch]):
        # nflows mask: > 0 = transformed; coursekit "even" (layer 0) transforms feature 0
        mask = torch.tensor([1, 0] if i % 2 == 0 else [0, 1])
        if arch == "MAF":
            if i > 0:
                layers.append(ReversePermutation(2))
            # initial masked layer + num_blocks=1 masked block = two hidden layers of 64
            layers.append(MaskedAffineAutoregressiveTransform(
                2, hidden_features=HIDDEN[0], num_blocks=len(HIDDEN) - 1,
                use_residual_blocks=False, activation=torch.relu))
        elif arch == "RealNVP":
            layers.append(AffineCouplingTransform(mask, _ReluMLP))
        else:
            layers.append(PiecewiseRationalQuadraticCouplingTransform(
                mask, _ReluMLP, num_bins=BINS, tails="linear", tail_bound=BOUND))
    model = Flow(CompositeTransform(layers), StandardNormal([2]))
    return model, model.log_prob


def zuko_model(arch: str):
    import zuko
    from zuko.distributions import DiagNormal
    from zuko.flows import Flow, GeneralCouplingTransform, UnconditionalDistribution
    from zuko.transforms import MonotonicRQSTransform

    kw = dict(hidden_features=HIDDEN, activation=nn.ReLU)
    if arch == "MAF":
        model = zuko.flows.MAF(2, transforms=DEPTH[arch], randperm=False, **kw)
    elif arch == "RealNVP":
        # zuko's mask marks the *conditioning* features; True at 1 = feature 0 transformed
        masks = [torch.tensor([False, True]), torch.tensor([True, False])]
        model = Flow([GeneralCouplingTransform(2, mask=masks[i % 2], **kw)
                      for i in range(DEPTH[arch])],
                     UnconditionalDistribution(DiagNormal, torch.zeros(2), torch.ones(2),
                                               buffer=True))
    else:
        # zuko.flows.NSF is autoregressive; a coupling NSF is built from its parts
        masks = [torch.tensor([False, True]), torch.tensor([True, False])]
        model = Flow([GeneralCouplingTransform(
            2, mask=masks[i % 2], univariate=partial(MonotonicRQSTransform, bound=BOUND),
            shapes=[(BINS,), (BINS,), (BINS - 1,)], **kw) for i in range(DEPTH[arch])],
            UnconditionalDistribution(DiagNormal, torch.zeros(2), torch.ones(2), buffer=True))
    return model, lambda x: model().log_prob(x)


LIBRARIES = {"coursekit": (None, coursekit_model), "nflows": ("nflows", nflows_model),
             "zuko": ("zuko", zuko_model)}


def available(lib: str) -> str | None:
    """The installed version, or None (with a message) when the peer is missing."""
    dist = LIBRARIES[lib][0]
    if dist is None:
        return "repo"
    try:
        __import__(dist)
        return importlib.metadata.version(dist)
    except Exception as exc:  # ImportError, or a broken install
        print(f"skipping {lib}: not importable ({type(exc).__name__}: {exc}); "
              f"install it with `.venv/bin/pip install {dist}`")
        return None


# ---------------------------------------------------------------- one run
def run(lib: str, arch: str, dist, steps: int, seed: int, x_test) -> dict:
    torch.manual_seed(seed)
    model, log_prob = LIBRARIES[lib][1](arch)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    gen = torch.Generator().manual_seed(seed)
    times = []
    model.train()
    for _ in range(steps):
        x = dist.sample(BATCH, seed=gen)
        t0 = time.perf_counter()
        loss = -log_prob(x).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
        sched.step()
    model.eval()
    with torch.no_grad():
        nll = float(torch.cat([-log_prob(c) for c in x_test.split(2500)]).mean())
    return dict(library=lib, arch=arch, params=sum(p.numel() for p in model.parameters()),
                step_ms=1000 * statistics.median(times), nll=nll)


DIFFERENCES = """\
## What differs between the implementations

Common to all three: standard-normal base, ReLU conditioners with two hidden layers of
64, the same depth (MAF 5 blocks, RealNVP 8 couplings, NSF 4 couplings), alternating
masks / reversed orderings starting with the same one, float32, the log-density computed
in one pass in the data-to-noise direction. The parameter counts are identical.

* **MAF, scale parameterisation.** coursekit: `z = (x - mu) exp(-alpha)` with
  `alpha = 3 tanh(raw / 3)` (log-scale soft-clamped to (-3, 3)). nflows 0.14
  (`MaskedAffineAutoregressiveTransform`): `z = s x + shift` with
  `s = softplus(raw) + 1e-3` (no upper bound; starts near 0.69, so the untrained flow
  is not the identity). zuko (`MonotonicAffineTransform`): `z = exp(a) x + b` with
  `a = raw / (1 + |raw / ln 1e-3|)` (soft bound, |a| < 6.9).
* **MAF, MADE.** coursekit and zuko: plain masked MLPs. nflows: `MADE` with
  `use_residual_blocks=False, num_blocks=1` (an initial masked layer + one masked block =
  two hidden layers of 64), ReLU. The permutation between blocks: coursekit and nflows
  insert an explicit `ReversePermutation`; zuko alternates the MADE order
  (`randperm=False`); in 2-D all three give the same dependency structure. Each library
  assigns hidden-unit degrees its own way.
* **RealNVP.** coursekit: `z_B = x_B exp(s) + t`, `s = 2 tanh(raw / 2)`. nflows
  (`AffineCouplingTransform`): `z_B = x_B (sigmoid(raw + 2) + 1e-3) + t` (scale in
  (0.001, 1.001): one layer can only contract in the data-to-noise direction). zuko
  (`GeneralCouplingTransform`, default `MonotonicAffineTransform`): log-scale soft bound as
  in its MAF. zuko's own `RealNVP` class starts with the other mask, so the flow is
  assembled from `GeneralCouplingTransform` with coursekit's mask order (feature 0
  transformed first).
* **NSF.** All three: rational-quadratic spline couplings, 8 bins on [-5, 5], identity
  outside (linear tails), `3K - 1` conditioner outputs per transformed feature (boundary
  derivatives fixed to 1), minimum bin width/height/derivative 1e-3 (zuko: minimum slope
  1e-3). coursekit zero-initialises each conditioner's last layer (every layer starts as
  the identity); nflows and zuko keep PyTorch's default initialisation (nflows warns
  "Inputs to the softmax are not scaled down"). `zuko.flows.NSF` is *autoregressive* (a
  MAF with spline univariates), so zuko's coupling NSF is assembled from
  `GeneralCouplingTransform(univariate=MonotonicRQSTransform)`.
* **Overhead.** zuko builds a fresh `torch.distributions` object (`model()`) on every
  call; nflows and coursekit are plain modules.
"""


def write(rows, args, versions, out: Path, entropies: dict, done: bool) -> None:
    machine = (f"{platform.machine()}, {torch.get_num_threads()} torch thread, "
               f"torch {torch.__version__}, Python {platform.python_version()}")
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    libs = [lib for lib in LIBRARIES if versions.get(lib)]
    peers = [lib for lib in libs if lib != "coursekit"]
    lines = ["# Flows: coursekit vs nflows and zuko", ""]
    if not done:
        lines += ["**PARTIAL: the run had not finished when this file was written.**", ""]
    lines += [
        f"Generated by `benchmarks/flows_vs_peers.py` on {now}.", "",
        f"Machine: {machine}.", "",
        "Versions: " + ", ".join(f"{lib} {versions[lib]}" for lib in libs) + ".", "",
        f"Settings: {args.steps} Adam steps (lr {LR}, cosine decay to 0), batch {BATCH} of "
        f"fresh samples (the same stream for every library), test set {N_TEST:,} fresh "
        f"points (seed {TEST_SEED}), hidden {HIDDEN}, depth {DEPTH}, NSF {BINS} bins on "
        f"[-{BOUND}, {BOUND}]. Step time = median over the {args.steps} steps of forward + "
        f"backward + Adam (sampling excluded); ratio = coursekit / peer (< 1: coursekit "
        f"faster). Test NLL in nats; H(p) is the true entropy (the lower bound).", "",
        "| dataset | H(p) | arch | library | params | step ms | ratio ck/peer | test NLL | "
        "NLL - H |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ck = next((c for c in rows if c["dataset"] == r["dataset"] and c["arch"] == r["arch"]
                   and c["library"] == "coursekit"), None)
        ratio = "1.00" if r["library"] == "coursekit" else (
            f"{ck['step_ms'] / r['step_ms']:.2f}" if ck else "-")
        h = entropies[r["dataset"]]
        lines.append(f"| {r['dataset']} | {h:.3f} | {r['arch']} | {r['library']} | "
                     f"{r['params']:,} | {r['step_ms']:.2f} | {ratio} | {r['nll']:.4f} | "
                     f"{r['nll'] - h:+.4f} |")
    missing = [lib for lib in LIBRARIES if not versions.get(lib)]
    if missing:
        lines += ["", f"Skipped (not installed): {', '.join(missing)}."]
    if peers:
        lines += ["", "Peers were installed into the venv only for this benchmark "
                  "(`.venv/bin/pip install nflows zuko`); they are not project dependencies."]
    lines += ["", DIFFERENCES]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--datasets", nargs="+", default=["moons", "8gaussians"], choices=TOY2D)
    p.add_argument("--archs", nargs="+", default=list(DEPTH), choices=list(DEPTH))
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=RESULTS / "flows_vs_peers.md")
    args = p.parse_args()
    torch.set_num_threads(1)
    versions = {lib: available(lib) for lib in LIBRARIES}
    rows, entropies = [], {}
    for d in args.datasets:
        dist = get_toy2d(d)
        entropies[d] = float(dist.entropy())
        x_test = dist.sample(N_TEST, seed=TEST_SEED)
        for arch in args.archs:
            for lib in LIBRARIES:
                if not versions[lib]:
                    continue
                try:
                    r = run(lib, arch, dist, args.steps, args.seed, x_test)
                except Exception as exc:
                    print(f"{d} {arch} {lib}: failed ({type(exc).__name__}: {exc})")
                    continue
                r["dataset"] = d
                rows.append(r)
                print(f"{d:>11} {arch:>8} {lib:>9} params={r['params']:>6} "
                      f"step={r['step_ms']:.2f} ms nll={r['nll']:.4f}", flush=True)
            write(rows, args, versions, args.out, entropies, done=False)
    write(rows, args, versions, args.out, entropies, done=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
