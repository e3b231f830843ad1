"""coursekit.mixture.GaussianMixture vs scikit-learn's, side by side in one process.

Same data, same initial parameters (``weights_init``, ``means_init``,
``precisions_init``), full covariances and a fixed number of EM iterations
(``tol=0``), so both run exactly the same algorithm. Reports the final mean
log-likelihood of each, the largest parameter difference and the wall-time
ratio (scikit-learn time / coursekit time; > 1 means coursekit is faster).
Runs are interleaved and repeated; the table gives the best and the median
time of each (the best is the least disturbed by other processes).

Usage::

    .venv/bin/python benchmarks/gmm_vs_sklearn.py            # N=100000, d=16, K=10, 20 iters
    .venv/bin/python benchmarks/gmm_vs_sklearn.py --n 20000 --repeats 1 --out /tmp/x.md

CUDA rows are added when a GPU is present, otherwise the table says so.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import time
import warnings
from pathlib import Path

import numpy as np
import sklearn
import torch
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from coursekit.mixture import GaussianMixture

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "gmm_vs_sklearn.md"


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


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def nproc() -> str:
    try:
        return subprocess.run(["nproc"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return str(os.cpu_count())


def run_sklearn(X, init, k, iters):
    t = time.perf_counter()
    gm = SkGaussianMixture(k, covariance_type="full", max_iter=iters, tol=0.0, **init).fit(X)
    return time.perf_counter() - t, gm


def run_coursekit(X, init, k, iters, device, dtype):
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    sync()
    t = time.perf_counter()
    gm = GaussianMixture(k, covariance_type="full", max_iter=iters, tol=0.0, device=device,
                         dtype=dtype, **init).fit(X)
    sync()
    return time.perf_counter() - t, gm


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
    load_before = os.getloadavg()
    configs = [("scikit-learn", "cpu", "float64")]
    configs += [("coursekit", "cpu", "float64"), ("coursekit", "cpu", "float32")]
    if torch.cuda.is_available():
        configs += [("coursekit", "cuda", "float64"), ("coursekit", "cuda", "float32")]
        run_coursekit(Xt, init, args.k, 2, "cuda", torch.float64)  # warm up CUDA
    times = {c: [] for c in configs}
    models = {}
    for rep in range(args.repeats):
        for c in configs:  # interleaved, so background load hits every config alike
            lib, device, dtype = c
            if lib == "scikit-learn":
                dt, gm = run_sklearn(X, init, args.k, args.iters)
            else:
                dt, gm = run_coursekit(Xt, init, args.k, args.iters, device,
                                       getattr(torch, dtype))
            times[c].append(dt)
            models[c] = gm
            print(f"repeat {rep}: {lib:12s} {device:4s} {dtype}: {dt:.3f} s", flush=True)
    load_after = os.getloadavg()

    sk = models[configs[0]]
    sk_ll = float(sk.score(X))
    sk_best = min(times[configs[0]])
    rows = []
    for c in configs:
        lib, device, dtype = c
        gm = models[c]
        if lib == "scikit-learn":
            ll, dmax = sk_ll, 0.0
        else:
            ll = gm.score(Xt.to(gm.means_.device))
            dmax = max(float(np.abs(gm.means_.double().cpu().numpy() - sk.means_).max()),
                       float(np.abs(gm.covariances_.double().cpu().numpy()
                                    - sk.covariances_).max()))
        best, med = min(times[c]), statistics.median(times[c])
        rows.append(f"| {lib} | {device} | {dtype} | {ll:.8f} | {ll - sk_ll:+.2e} | "
                    f"{dmax:.1e} | {best:.3f} | {med:.3f} | {sk_best / best:.2f} |")

    lines = [
        "# GaussianMixture: coursekit vs scikit-learn",
        "",
        f"Generated by `benchmarks/gmm_vs_sklearn.py` on "
        f"{datetime.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}.",
        "",
        f"Problem: N = {args.n:,} samples, d = {args.d}, K = {args.k}, full covariances, "
        f"{args.iters} EM iterations (`tol=0`), identical `weights_init`/`means_init`/"
        f"`precisions_init`; {args.repeats} interleaved repeats per configuration, "
        "run in one process.",
        "",
        "| library | device | dtype | final mean log-lik | vs sklearn | max param diff "
        "| best time (s) | median time (s) | speed-up vs sklearn (best) |",
        "|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        "Speed-up = scikit-learn's best wall time / this configuration's best wall time "
        "(> 1: coursekit faster). Max param diff = largest absolute difference from "
        "scikit-learn's fitted `means_` and `covariances_`.",
        "",
    ]
    if not torch.cuda.is_available():
        lines += ["CUDA: not available on this machine, GPU rows skipped.", ""]
    lines += [
        "Machine:",
        "",
        f"- CPU: {cpu_model()}; `nproc` = {nproc()}; torch threads = {torch.get_num_threads()}",
        f"- load average (1 min) before/after: {load_before[0]:.2f} / {load_after[0]:.2f} "
        "(the machine is shared, so timings carry noise)",
        f"- Python {platform.python_version()}, torch {torch.__version__}, "
        f"scikit-learn {sklearn.__version__}, NumPy {np.__version__}",
    ]
    if torch.cuda.is_available():
        lines.append(f"- GPU: {torch.cuda.get_device_name()}")
    text = "\n".join(lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
