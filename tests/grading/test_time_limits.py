"""Time limits count the worker's CPU time, with a wall-clock backstop for sleeping code."""

from __future__ import annotations

import time

import numpy as np
import pytest

from coursekit.grading.checks import CheckTimeout
from coursekit.grading.sandbox import Limits, Sandbox

CODE = """
import time


def spin(x, n=1):
    while True:
        pass


def doze(x):
    time.sleep(2.0)  # like being descheduled on a loaded machine: no CPU used
    return x


def sleep_forever(x):
    while True:
        time.sleep(60)
"""

LIMITS = Limits(mem_bytes=3 * 1024**3, wall_factor=1.0, wall_margin=3.0)
# this shared 2-core machine may give a busy loop a quarter of a core: a roomy backstop
ROOMY = Limits(mem_bytes=3 * 1024**3, wall_factor=3.0, wall_margin=60.0)


@pytest.fixture(scope="module")
def submission(tmp_path_factory):
    """A submission with a busy loop, a short sleep and an endless sleep."""
    path = tmp_path_factory.mktemp("timing") / "submission.py"
    path.write_text(CODE)
    return path


def test_busy_loop_times_out_on_cpu_time_naming_function_and_shapes(submission):
    with Sandbox(submission, limits=ROOMY) as box:
        with pytest.raises(CheckTimeout) as caught:
            box.call("spin", (np.zeros((5, 3)),), {"n": 4}, seed=0, timeout=1.0)
    message = str(caught.value)
    for part in ("CPU time", "spin(array (5, 3) float64, n=4)"):
        assert part in message, f"timeout message: expected {part!r} in it, got {message!r}"


def test_sleeping_does_not_count_against_the_limit(submission):
    with Sandbox(submission, limits=LIMITS) as box:
        got = box.call("doze", (np.ones(3),), {}, seed=0, timeout=1.0)
        cpu = box.last_cpu
    assert np.array_equal(got, np.ones(3)), f"doze result: expected ones(3), got {got!r}"
    assert cpu is not None and cpu < 1.0, f"CPU seconds of doze: expected < 1, got {cpu}"


def test_sleep_forever_is_stopped_by_the_wall_clock_backstop(submission):
    with Sandbox(submission, limits=LIMITS) as box:
        began = time.monotonic()
        with pytest.raises(CheckTimeout) as caught:
            box.call("sleep_forever", (np.zeros(2),), {}, seed=0, timeout=1.0)
        waited = time.monotonic() - began
        alive = box.alive
    message = str(caught.value)
    assert "wall-clock" in message and "sleep_forever(array (2,) float64)" in message, (
        f"backstop message: expected wall-clock and the call, got {message!r}"
    )
    assert 3.5 <= waited < 30, f"seconds until killed: expected about 4 (1 * 1 + 3), got {waited}"
    assert not alive, "worker after the backstop: expected killed, got alive"
