"""The course's results table on binarised digits: test NLL, parameters, training time.

Every density model of the course on the same data: the fixed digits split,
binarised once (``load_digits(split, binarize="static")``), test NLL in nats per
image. Exact for the independent-pixel model, the Bernoulli mixture and every
autoregressive model; an importance-sampled estimate (k = 1000, an upper bound in
expectation) for the VAE. Every network trains on dynamically binarised training
digits (a fresh Bernoulli draw every epoch) and is scored on the static test
split. Each trainable model keeps the epoch with the best
validation NLL (:class:`coursekit.train.EarlyStopping`) and records its test NLL
after every epoch against the training seconds so far, the NLL-against-time curve.

Usage::

    .venv/bin/python benchmarks/digits_nll.py                 # all models
    .venv/bin/python benchmarks/digits_nll.py --only nade made

Writes ``results/digits_nll.md`` (the table), ``results/digits_nll.json`` (rows and
curves; lecture 05 reads the VAE's row from it) and ``results/digits_nll.png``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import time
from pathlib import Path

import torch

from coursekit.autoregressive import count_parameters, nll_loss
from coursekit.data import digits_loader, load_digits
from coursekit.metrics import estimate_nll
from coursekit.mixture import select_bernoulli_mixture
from coursekit.train import EarlyStopping, fit

RESULTS = Path(__file__).resolve().parent / "results"


def data():
    return {split: load_digits(split, binarize="static")[0] for split in ("train", "val", "test")}


def independent_pixels(d) -> dict:
    """Per-pixel Bernoulli with add-one (Laplace) smoothing: p_j = (sum_n x_nj + 1) / (N + 2)."""
    start = time.perf_counter()
    p = (d["train"].sum(0) + 1) / (len(d["train"]) + 2)
    seconds = time.perf_counter() - start
    ll = d["test"] @ p.log() + (1 - d["test"]) @ (1 - p).log()
    return {"nll": float(-ll.mean()), "params": 64, "seconds": seconds, "kind": "exact"}


def bernoulli_mixture(d) -> dict:
    start = time.perf_counter()
    model, _ = select_bernoulli_mixture(d["train"], d["val"], progress=False)
    seconds = time.perf_counter() - start
    k = model.n_components
    return {"nll": float(-model.score(d["test"])), "params": k * 64 + k - 1,
            "seconds": seconds, "kind": "exact", "note": f"K={k} chosen on val"}


def vae(d) -> dict:
    """Lecture 04's VAE: z_dim 16, one hidden layer of 256, dynamic binarisation."""
    from coursekit.vae import VAE, vae_loss

    torch.manual_seed(0)
    model = VAE(64, 16, hidden=256)
    loader = digits_loader("train", batch_size=64, binarize="dynamic", seed=0)
    hist = fit(model, vae_loss, loader, epochs=100, lr=1e-3, progress=False)
    torch.manual_seed(2)
    nll = float(estimate_nll(model, d["test"], k=1000))
    return {"nll": nll, "params": count_parameters(model), "seconds": hist.seconds,
            "kind": "IS estimate, k=1000", "note": "100 epochs, as lecture 04"}


def trained_model(name: str, build, epochs: int, lr: float, loss=nll_loss, patience=15,
                  weight_decay: float = 0.0, score=None, batch_size: int = 64,
                  gamma: float | None = None, pixels: dict | None = None):
    """A runner training ``build()`` with early stopping on the validation NLL.

    ``score(model, x) -> (batch,)`` replaces ``model.log_prob`` where the model is
    evaluated otherwise (an ensemble over orderings); ``gamma`` multiplies the learning
    rate after every epoch; ``pixels`` are the training loader's ``load_digits``
    options, redrawn every epoch (default: dynamic binarisation; benchmarks/digits_bpd.py
    passes ``{"dequantize": True}``)."""

    def run(d) -> dict:
        torch.manual_seed(0)
        model = build()
        log_prob = (lambda x: score(model, x)) if score else model.log_prob
        curve: list[tuple[float, float]] = []
        stopper = EarlyStopping(model, lambda: -log_prob(d["val"]).mean(), patience=patience)
        start = time.perf_counter()

        def callback(epoch, history):
            stop = stopper(epoch, history)
            with torch.no_grad():
                model.eval()
                curve.append((time.perf_counter() - start, float(-log_prob(d["test"]).mean())))
                model.train()
            return stop

        opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
        scheduler = None if gamma is None else torch.optim.lr_scheduler.ExponentialLR(opt, gamma)
        # fresh binarisations every epoch, as the VAE trains: without them every flexible
        # model overfits the 1,197 fixed images (MADE: 24.06 static, 22.35 dynamic)
        loader = digits_loader("train", batch_size=batch_size, seed=0,
                               **(pixels or {"binarize": "dynamic"}))
        fit(model, loss, loader, epochs=epochs, optimizer=opt, scheduler=scheduler,
            progress=False, callback=callback)
        seconds = time.perf_counter() - start
        stopper.restore()
        model.eval()
        with torch.no_grad():
            nll = float(-log_prob(d["test"]).mean())
        return {"nll": nll, "params": count_parameters(model), "seconds": seconds,
                "kind": "exact", "note": f"best val epoch {stopper.best_epoch + 1}",
                "curve": curve}

    run.__name__ = name
    return run


def ar_models() -> dict:
    """Settings found by short searches on the validation split (lecture 05's defaults)."""
    from coursekit import autoregressive as ar

    return {
        "FVSBN": trained_model("FVSBN", lambda: ar.FVSBN(64), epochs=300, lr=1e-2,
                               patience=20),
        "NADE": trained_model("NADE", lambda: ar.NADE(64, hidden=100), epochs=300, lr=1e-2,
                              patience=20),
        "MADE": trained_model("MADE", lambda: ar.MADE(64, hidden_sizes=(500,)), epochs=300,
                              lr=3e-3, patience=20),
        "MADE, 16 orderings": trained_model(
            "MADE, 16 orderings",
            lambda: ar.MADE(64, hidden_sizes=(500,), num_masks=16, seed=0), epochs=500,
            lr=3e-3, loss=ar.order_agnostic_loss, patience=30,
            score=lambda model, x: model.log_prob_ensemble(x)),
        "PixelCNN": trained_model("PixelCNN", lambda: ar.PixelCNN(64), epochs=100, lr=1e-2,
                                  gamma=0.95, patience=8),
        "GatedPixelCNN": trained_model("GatedPixelCNN", lambda: ar.GatedPixelCNN(64),
                                       epochs=100, lr=1e-2, gamma=0.95, patience=8),
        "CausalTransformer": trained_model("CausalTransformer",
                                           lambda: ar.CausalTransformer(64), epochs=100,
                                           lr=5e-3, batch_size=16, gamma=0.95, patience=8),
    }


def runners() -> dict:
    return {"independent pixels": independent_pixels, "Bernoulli mixture": bernoulli_mixture,
            "VAE": vae, **ar_models()}


def write(rows: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    machine = (f"{platform.machine()}, {torch.get_num_threads()} torch threads, "
               f"torch {torch.__version__}, Python {platform.python_version()}")
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    meta = {"machine": machine, "date": stamp, "data": "digits, static binarisation, test split"}
    (out / "digits_nll.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    lines = ["# Binarised digits: test NLL of every model in the course", "",
             f"Measured by `benchmarks/digits_nll.py` on {stamp} ({machine}).",
             "Test split of the fixed digits split (300 images), static binarisation; "
             "nats per image, lower is better. Every network trains on dynamically "
             "binarised training digits (a fresh draw each epoch); the autoregressive models "
             "keep their best validation epoch, the VAE trains its 100 epochs as lecture 04 "
             "does. Training seconds are wall time on this machine, which other jobs shared "
             "(compare them within one run only).", "",
             "| model | test NLL | how | parameters | train s | note |",
             "|---|---:|---|---:|---:|---|"]
    for name, r in sorted(rows.items(), key=lambda kv: -kv[1]["nll"]):
        lines.append(f"| {name} | {r['nll']:.2f} | {r['kind']} | {r['params']:,} | "
                     f"{r['seconds']:.1f} | {r.get('note', '')} |")
    (out / "digits_nll.md").write_text("\n".join(lines) + "\n")
    plot_curves(rows, out / "digits_nll.png", top=30)


def plot_curves(rows: dict, path: Path, ylabel: str = "test NLL (nats / image)",
                top: float | None = None) -> None:
    """Test NLL against training seconds for the trained rows, a dashed line for the rest
    (the y axis stops at ``top`` or 1 nat above the worst row, whichever is lower)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for name, r in rows.items():
        if r.get("curve"):
            t, nll = zip(*r["curve"])
            ax.plot(t, nll, label=name)
        else:
            ax.axhline(r["nll"], ls="--", lw=1, color="gray")
            ax.text(ax.get_xlim()[1] if ax.lines else 1, r["nll"], f" {name}", va="bottom",
                    fontsize=8, color="gray")
    ax.set_xscale("log")
    worst = max(r["nll"] for r in rows.values()) + 1
    ax.set_ylim(top=worst if top is None else min(top, worst))
    ax.set_xlabel("training seconds")
    ax.set_ylabel(ylabel)
    if any(r.get("curve") for r in rows.values()):
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def run_table(description: str, data, runners: dict, write, stem: str, describe,
              argv=None) -> None:
    """The command line of a results-table benchmark: run every runner (or ``--only``
    some, keeping the other rows of ``<out>/<stem>.json``) on ``data()`` and rewrite the
    table after each; ``describe(row)`` is the progress line's summary."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--only", nargs="*", help="run only these models (keep the rest)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    d = data()
    previous = args.out / f"{stem}.json"
    rows = json.loads(previous.read_text())["rows"] if args.only and previous.exists() else {}
    for name, run in runners.items():
        if args.only and name not in args.only:
            continue
        rows[name] = run(d)
        print(f"{name:26s} {describe(rows[name])}", flush=True)
        write(rows, args.out)


def main(argv=None) -> None:
    run_table(__doc__.splitlines()[0], data, runners(), write, "digits_nll",
              lambda r: f"{r['nll']:7.2f} nats  {r['seconds']:7.1f} s", argv)


if __name__ == "__main__":
    main()
