"""coursekit.mixture.GaussianMixture vs scikit-learn's, side by side in one process.

Same data, same initial parameters (``weights_init``, ``means_init``,
``precisions_init``; the diag case uses the diagonals of the full ones) and a fixed
number of EM iterations (``tol=0``), so both run exactly the same algorithm, for
``covariance_type`` full and diag. coursekit is timed with NumPy input (NumPy
attributes come back, as from scikit-learn) and with a torch tensor.

Reports, per configuration: the final mean log-likelihood and its difference from
scikit-learn's (must be within 1e-4), the largest parameter difference, the median
wall time of the repeats and the time ratio coursekit / scikit-learn (< 1: coursekit
is faster). Runs are interleaved (every configuration once per repeat, so background
load hits all alike) and the whole table is measured twice: first with one thread
for both libraries (torch and the BLAS under NumPy, through threadpoolctl), the
ratio least disturbed by a loaded machine, then with the default thread count. The
result file is rewritten after each of the two phases.

Usage::

    .venv/bin/python benchmarks/gmm_vs_sklearn.py      # N=100000, d=16, K=10, 20 iterations
    .venv/bin/python benchmarks/gmm_vs_sklearn.py --n 20000 --repeats 3 --out /tmp/x.md

CUDA rows (float64 and float32 tensors on the GPU) are added when a GPU is present.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import time
import warnings
from pathlib import Path

import numpy as np
import sklearn
import torch
from sklearn.mixture import GaussianMixture as SkGaussianMixture
from threadpoolctl import threadpool_info, threadpool_limits

from coursekit.mixture import GaussianMixture

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "gmm_vs_sklearn.md"
LL_TOLERANCE = 1e-4


def make_problem(n: int, d: int, k: int, seed: int = 0):
    """Data from a random K-component full-covariance mixture and shared initial parameters."""
    rng = np.random.RandomState(seed)
    centers = rng.randn(k, d) * 4.0
    mix = rng.randn(k, d, d) / np.sqrt(d)
    z = rng.randint(k, size=n)
    X = centers[z] + np.einsum("nd,nde->ne", rng.randn(n, d), mix[z]) + 0.3 * rng.randn(n, d)
    weights = np.full(k, 1.0 / k)
    means = X[rng.choice(n, k, replace=False)]
    precisions = np.stack([np.linalg.inv(np.cov(X.T))] * k)
    return X, dict(weights_init=weights, means_init=means, precisions_init=precisions)


def init_for(init: dict, covariance_type: str) -> dict:
    if covariance_type == "diag":
        return {**init, "precisions_init": np.stack([np.diag(p)
                                                     for p in init["precisions_init"]])}
    return init


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def blas_of_numpy() -> str:
    infos = [f"{i.get('internal_api')} ({i.get('num_threads')} threads)"
             for i in threadpool_info() if i.get("user_api") == "blas"]
    return ", ".join(infos) or "unknown"


def timed_fit(config, X, Xt, init, k, iters):
    """One fit; returns (seconds, fitted model, mean log-likelihood on the training data)."""
    lib, ct, kind, device, dtype = config
    if lib == "scikit-learn":
        t = time.perf_counter()
        gm = SkGaussianMixture(k, covariance_type=ct, max_iter=iters, tol=0.0, **init).fit(X)
        dt = time.perf_counter() - t
        return dt, gm, float(gm.score(X))
    data = X if kind == "numpy" else Xt.to(device)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    sync()
    t = time.perf_counter()
    gm = GaussianMixture(k, covariance_type=ct, max_iter=iters, tol=0.0, device=device,
                         dtype=getattr(torch, dtype), **init).fit(data)
    sync()
    dt = time.perf_counter() - t
    return dt, gm, gm.score(data)


def measure(configs, X, Xt, inits, args, threads: int | None):
    """Interleaved repeats of every configuration under one thread setting."""
    saved = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    times = {c: [] for c in configs}
    fits = {}
    try:
        with threadpool_limits(threads):
            for rep in range(args.repeats):
                for c in configs:
                    dt, gm, ll = timed_fit(c, X, Xt, inits[c[1]], args.k, args.iters)
                    times[c].append(dt)
                    fits[c] = (gm, ll)
                    print(f"threads={threads or saved} repeat {rep}: {' '.join(c)}: {dt:.3f} s",
                          flush=True)
    finally:
        torch.set_num_threads(saved)
    return times, fits


def table(configs, times, fits, threads_label: str) -> tuple[list[str], list[str]]:
    rows, failures = [], []
    for c in configs:
        lib, ct, kind, device, dtype = c
        sk_c = ("scikit-learn", ct, "numpy", "cpu", "float64")
        sk_gm, sk_ll = fits[sk_c]
        gm, ll = fits[c]
        to_np = (lambda a: a.double().cpu().numpy() if isinstance(a, torch.Tensor)
                 else np.asarray(a, dtype=np.float64))
        dmax = max(float(np.abs(to_np(gm.means_) - sk_gm.means_).max()),
                   float(np.abs(to_np(gm.covariances_) - sk_gm.covariances_).max()))
        med, sk_med = statistics.median(times[c]), statistics.median(times[sk_c])
        diff = ll - sk_ll
        if dtype == "float64" and abs(diff) > LL_TOLERANCE:
            failures.append(f"{' '.join(c)}: log-likelihood differs by {diff:+.2e}")
        runs = ", ".join(f"{t:.2f}" for t in times[c])
        rows.append(f"| {threads_label} | {ct} | {lib} | {kind} | {device} | {dtype} | "
                    f"{ll:.8f} | {diff:+.1e} | {dmax:.0e} | {runs} | {med:.2f} | "
                    f"{med / sk_med:.2f} |")
    return rows, failures


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--d", type=int, default=16)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")  # ConvergenceWarning: the iteration count is fixed on purpose

    X, init = make_problem(args.n, args.d, args.k)
    Xt = torch.from_numpy(X)
    inits = {ct: init_for(init, ct) for ct in ("full", "diag")}
    configs = []
    for ct in ("full", "diag"):
        configs += [("scikit-learn", ct, "numpy", "cpu", "float64"),
                    ("coursekit", ct, "numpy", "cpu", "float64"),
                    ("coursekit", ct, "tensor", "cpu", "float64")]
    cuda_configs = []
    if torch.cuda.is_available():
        for ct in ("full", "diag"):
            cuda_configs += [("coursekit", ct, "tensor", "cuda", "float64"),
                             ("coursekit", ct, "tensor", "cuda", "float32")]
        timed_fit(cuda_configs[0], X, Xt, inits["full"], args.k, 2)  # warm up CUDA

    default_threads = torch.get_num_threads()
    load_before = os.getloadavg()
    # one thread first: the ratio least disturbed by load; the report is rewritten after
    # each phase, so a long default-thread phase on a loaded machine loses nothing
    phases = [("1", 1, configs), (f"default ({default_threads})", None,
                                    configs + cuda_configs)]
    done = []
    for label, threads, phase_configs in phases:
        times, fits = measure(phase_configs, X, Xt, inits, args, threads)
        done.append((label, phase_configs, times, fits))
        write_report(args, done, len(phases), default_threads, load_before)


def write_report(args, done, n_phases, default_threads, load_before) -> None:
    load_after = os.getloadavg()
    rows, failures = [], []
    for label, phase_configs, times, fits in done:
        r, f = table(phase_configs, times, fits, label)
        rows += r
        failures += f

    def ratio(times, ct, kind):
        ck = statistics.median(times[("coursekit", ct, kind, "cpu", "float64")])
        sk = statistics.median(times[("scikit-learn", ct, "numpy", "cpu", "float64")])
        return f"{ck / sk:.2f}"

    lines = [
        "# GaussianMixture: coursekit vs scikit-learn",
        "",
        f"Generated by `benchmarks/gmm_vs_sklearn.py` on "
        f"{datetime.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}.",
        "",
        f"Problem: N = {args.n:,} samples, d = {args.d}, K = {args.k}, {args.iters} EM "
        "iterations (`tol=0`), identical `weights_init`/`means_init`/`precisions_init` "
        f"(diag: their diagonals); {args.repeats} interleaved repeats per configuration "
        "and thread setting, in one process. coursekit is fitted on the NumPy array "
        "(NumPy attributes back) and on a torch tensor of it.",
        "",
        "Time ratio = coursekit median time / scikit-learn median time under the same "
        "thread setting (< 1: coursekit faster):",
        "",
        "| covariance | input | " + " | ".join(f"ratio, threads = {d[0]}" for d in done) + " |",
        "|---|---|" + "---|" * len(done),
    ]
    for ct in ("full", "diag"):
        for kind in ("numpy", "tensor"):
            lines.append(f"| {ct} | {kind} | "
                         + " | ".join(ratio(d[2], ct, kind) for d in done) + " |")
    if len(done) < n_phases:
        lines += ["", f"(Phase {len(done) + 1} of {n_phases}, the default thread count, "
                      "was still running when this file was written.)"]
    lines += [
        "",
        f"Log-likelihood check (float64, |coursekit - scikit-learn| <= {LL_TOLERANCE:g}): "
        + ("passed for every configuration." if not failures
           else "FAILED: " + "; ".join(failures)),
        "",
        "All runs:",
        "",
        "| threads | covariance | library | input | device | dtype | final mean log-lik "
        "| vs sklearn | max param diff | times (s) | median (s) | ratio |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        "Max param diff = largest absolute difference from scikit-learn's fitted `means_` "
        "and `covariances_`.",
        "",
    ]
    if not torch.cuda.is_available():
        lines += ["CUDA: not available on this machine, GPU rows skipped.", ""]
    lines += [
        "Machine:",
        "",
        f"- 2-core CPU VM ({cpu_model()}; `os.cpu_count()` = {os.cpu_count()}), shared with "
        "other jobs: load average (1 min) at start / at this write "
        f"{load_before[0]:.2f} / {load_after[0]:.2f}, so absolute times carry noise; the "
        "interleaved repeats and the 1-thread ratio are the robust numbers",
        f"- default threads: torch {default_threads}; NumPy BLAS {blas_of_numpy()}",
        f"- Python {platform.python_version()}, torch {torch.__version__}, "
        f"scikit-learn {sklearn.__version__}, NumPy {np.__version__}",
    ]
    if torch.cuda.is_available():
        lines.append(f"- GPU: {torch.cuda.get_device_name()}")
    text = "\n".join(lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text, flush=True)


if __name__ == "__main__":
    main()
