"""The course's results table on 17-level digits: bits per dimension of the flows.

The digits' pixels are integers k in {0, ..., 16}. Continuous models (the flows
of lecture 06 and a full-covariance Gaussian) are fitted to dequantised pixels
y = (k + u) / 17, u ~ U[0, 1)^64, and scored on the test split dequantised once
(seed 1): -E_u[log p(y)] + 64 log 17 nats is an upper bound on the discrete
NLL -log P(k) (Jensen), reported in bits per dimension, ``coursekit.metrics.
bits_per_dim(nll_y, 64, n_levels=17)``. Discrete baselines are exact: uniform
pixels (log2 17 = 4.09 bits) and independent categorical pixels with add-one
smoothing. Every flow trains on freshly dequantised training digits each epoch
and keeps the epoch with the best validation bound
(:class:`coursekit.train.EarlyStopping`), as ``digits_nll.py``'s networks do.

Usage::

    .venv/bin/python benchmarks/digits_bpd.py                 # all models
    .venv/bin/python benchmarks/digits_bpd.py --only RealNVP MAF
    .venv/bin/python benchmarks/digits_bpd.py --only "EBM (replay)"   # digits_ebm.py's EBM

Writes ``results/digits_bpd.md`` (the table), ``results/digits_bpd.json`` (rows and
curves; lecture 06 reads it) and ``results/digits_bpd.png``.
"""

from __future__ import annotations

import datetime
import json
import math
import platform
import time
from pathlib import Path

import torch
from digits_nll import plot_curves, run_table, trained_model

from coursekit.data import load_digits
from coursekit.data.digits import N_LEVELS
from coursekit.flows import MAF, NSF, Compose, Flow, Glow, LogitTransform, RealNVP
from coursekit.metrics import bits_per_dim

D = 64
LOG_BINS = D * math.log(N_LEVELS)  # nats from the [0, 1) scale back to unit-width bins


def data() -> dict:
    """Dequantised val and test pixels (one fixed draw each) and the integer levels."""
    d = {split: load_digits(split, dequantize=True, seed=seed)[0]
         for split, seed in (("val", 2), ("test", 1))}
    d["levels"] = {split: torch.round(load_digits(split)[0] * (N_LEVELS - 1)).long()
                   for split in ("train", "test")}
    return d


def to_bins(row: dict) -> dict:
    """A row measured on the [0, 1) scale, moved to unit-width bins and given its bits."""
    row["nll"] += LOG_BINS
    row["curve"] = [(t, nll + LOG_BINS) for t, nll in row.get("curve", [])]
    row["bpd"] = float(bits_per_dim(row["nll"], D))
    return row


def uniform(d) -> dict:
    nll = LOG_BINS
    return {"nll": nll, "bpd": float(bits_per_dim(nll, D)), "params": 0, "seconds": 0.0,
            "kind": "exact"}


def independent_levels(d) -> dict:
    """Per-pixel categorical over the 17 levels, add-one smoothing."""
    start = time.perf_counter()
    counts = torch.nn.functional.one_hot(d["levels"]["train"], N_LEVELS).sum(0) + 1.0
    log_p = (counts / counts.sum(-1, keepdim=True)).log()  # (64, 17)
    seconds = time.perf_counter() - start
    nll = float(-log_p.gather(1, d["levels"]["test"].T).sum(0).mean())
    return {"nll": nll, "bpd": float(bits_per_dim(nll, D)), "params": D * (N_LEVELS - 1),
            "seconds": seconds, "kind": "exact"}


def gaussian(d) -> dict:
    """Full-covariance Gaussian, maximum likelihood on one dequantised training draw
    (plus 1e-6 on the diagonal, below the dequantisation noise's variance 1/(12 * 17^2))."""
    start = time.perf_counter()
    y = load_digits("train", dequantize=True, seed=0)[0].double()
    cov = torch.cov(y.T, correction=0) + 1e-6 * torch.eye(D, dtype=y.dtype)
    model = torch.distributions.MultivariateNormal(y.mean(0), covariance_matrix=cov)
    seconds = time.perf_counter() - start
    nll = float(-model.log_prob(d["test"].double()).mean())
    return to_bins({"nll": nll, "params": D + D * (D + 1) // 2, "seconds": seconds,
                    "kind": "bound (dequantised)"})


def flow(name: str, build, epochs: int, lr: float, patience: int = 15):
    """A runner for the flow ``build()`` behind RealNVP's fixed logit (``LogitTransform``:
    the pixels' unit cube to the real line, its log-determinant in the likelihood)."""

    def logit_flow():
        return Flow(Compose(LogitTransform(0.05), build().transform), D)

    train = trained_model(name, logit_flow, epochs=epochs, lr=lr, patience=patience,
                          batch_size=128, pixels={"dequantize": True})

    def run(d) -> dict:
        row = train(d)
        row["kind"] = "bound (dequantised)"
        return to_bins(row)

    run.__name__ = name
    return run


def ebm(d) -> dict:
    """The replay-trained DigitsEnergy of ``digits_ebm.py`` (which also writes its own
    results), on one torch thread; its log Z is an AIS estimate, so its row is an
    optimistic estimate, not a bound. Add it alone with ``--only "EBM (replay)"``."""
    from digits_ebm import bpd_row, experiment

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return bpd_row(experiment("full"))
    finally:
        torch.set_num_threads(threads)


def runners() -> dict:
    """Sizes a few times lecture 06's (which trains RealNVP for 300 steps on a CPU)."""
    return {
        "uniform pixels": uniform,
        "independent pixels": independent_levels,
        "full-covariance Gaussian": gaussian,
        "RealNVP": flow("RealNVP", lambda: RealNVP(D, layers=8, hidden=(256, 256)),
                        epochs=300, lr=1e-3),
        "MAF": flow("MAF", lambda: MAF(D, layers=5, hidden=(256, 256)), epochs=300, lr=1e-3),
        "Glow": flow("Glow", lambda: Glow(D, layers=6, hidden=(256, 256)), epochs=300, lr=1e-3),
        "NSF": flow("NSF", lambda: NSF(D, layers=4, bins=8, hidden=(256, 256)), epochs=300,
                    lr=1e-3),
        "EBM (replay)": ebm,
    }


def write(rows: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    machine = (f"{platform.machine()}, {torch.get_num_threads()} torch threads, "
               f"torch {torch.__version__}, Python {platform.python_version()}")
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    meta = {"machine": machine, "date": stamp,
            "data": "digits, 17 levels, test split dequantised once (seed 1)"}
    (out / "digits_bpd.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    lines = ["# 17-level digits: bits per dimension", "",
             f"Measured by `benchmarks/digits_bpd.py` on {stamp} ({machine}).",
             "Test split of the fixed digits split (300 images, pixels 0..16); bits per "
             "dimension of the discrete pixels, lower is better. Exact for the discrete "
             "baselines; for the continuous models an upper bound, -E_u log p((k + u) / 17) "
             "+ 64 log 17 nats, with the test pixels dequantised once. Flows train on "
             "freshly dequantised digits every epoch and keep their best validation epoch. "
             "Training seconds are wall time on this machine, which other jobs may have "
             "shared (compare them within one run only). Not comparable with "
             "`digits_nll.md`, whose pixels are binary."
             + (" The EBM's log Z is an annealed-importance-sampling estimate, a "
                "stochastic lower bound on log Z, so its row is an optimistic estimate, "
                "not a bound (details in `digits_ebm.md`)."
                if any(r["kind"].startswith("AIS") for r in rows.values()) else ""), "",
             "| model | bits / dim | NLL (nats / image) | how | parameters | train s | note |",
             "|---|---:|---:|---|---:|---:|---|"]
    for name, r in sorted(rows.items(), key=lambda kv: -kv[1]["bpd"]):
        lines.append(f"| {name} | {r['bpd']:.3f} | {r['nll']:.1f} | {r['kind']} | "
                     f"{r['params']:,} | {r['seconds']:.1f} | {r.get('note', '')} |")
    (out / "digits_bpd.md").write_text("\n".join(lines) + "\n")
    plot_curves(rows, out / "digits_bpd.png", ylabel="test NLL (nats / image, 17-level bins)")


def main(argv=None) -> None:
    run_table(__doc__.splitlines()[0], data, runners(), write, "digits_bpd",
              lambda r: f"{r['bpd']:6.3f} bits/dim  {r['seconds']:7.1f} s", argv)


if __name__ == "__main__":
    main()
