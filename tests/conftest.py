"""Shared pytest configuration: the gpu marker, the notebook time report."""

from __future__ import annotations

import os

import matplotlib
import pytest

matplotlib.use("Agg")

NOTEBOOK_TIMES = pytest.StashKey[dict]()


def pytest_configure(config):
    config.stash[NOTEBOOK_TIMES] = {}


@pytest.fixture(scope="session")
def notebook_times(pytestconfig) -> dict[str, float]:
    """Notebook path -> wall time in seconds, printed at the end of the run."""
    return pytestconfig.stash[NOTEBOOK_TIMES]


def pytest_collection_modifyitems(config, items):
    import torch

    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device (none here)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    times = config.stash.get(NOTEBOOK_TIMES, {})
    if not times:
        return
    tr = terminalreporter
    tr.section("notebook wall times")
    width = max(len(k) for k in times)
    for name, seconds in sorted(times.items()):
        flag = "  (over the 3-minute budget)" if seconds > 180 else ""
        tr.write_line(f"{name:<{width}}  {seconds:7.1f} s{flag}")
    tr.write_line(f"{'total':<{width}}  {sum(times.values()):7.1f} s")
    report_dir = os.environ.get("COURSEKIT_REPORT_DIR")
    if report_dir:
        os.makedirs(report_dir, exist_ok=True)
        with open(os.path.join(report_dir, "notebook_times.md"), "w") as fh:
            fh.write("| notebook | seconds |\n|---|---|\n")
            for name, seconds in sorted(times.items()):
                fh.write(f"| {name} | {seconds:.1f} |\n")
