"""Writing autograder checks: the ``@check`` decorator, the ``ctx`` API and ``CheckFailure``.

A check is a plain function of one argument, ``ctx``, that runs in the TRUSTED
process (the one that decides scores). It builds inputs from ``ctx.rng``, asks
the student's code for an answer with :meth:`CheckContext.call` (which runs in
a separate sandbox process and returns plain data only), asks the reference
solution with :meth:`CheckContext.reference`, and judges with the ``assert_*``
helpers::

    from coursekit.grading.checks import check

    @check(id="1a-basic", task="1a", points=2, timeout=10, seed=0,
           title="log-density of a 3-D Gaussian")
    def gaussian_log_density_basic(ctx):
        x = ctx.rng.normal(size=(5, 3))
        mean, cov = np.zeros(3), np.eye(3)
        got = ctx.call("gaussian_log_density", x, mean, cov)
        want = ctx.reference("gaussian_log_density", x, mean, cov)
        ctx.assert_close(got, want, rtol=1e-6, atol=1e-8, what="log-density")

Contract:

* A check passes (full ``points``) when it returns without raising, and fails
  (0 points) when it raises :class:`CheckFailure`; the failure's message is
  shown to the student, so it says what was expected and what was given.
* ``timeout`` (seconds) bounds the total CPU time of the check's student calls
  (measured on the worker process, so a loaded machine does not fail slow but
  acceptable code); code that sleeps or waits is stopped by a wall-clock
  backstop (:class:`coursekit.grading.sandbox.Limits`).
* ``seed`` seeds ``ctx.rng`` (a :class:`numpy.random.Generator`); the n-th
  ``ctx.call``/``ctx.reference`` of a check also runs with torch, numpy and
  ``random`` seeded to ``seed + n`` so that stochastic functions can be compared.
* The ARGUMENTS of ``ctx.reference`` must not depend on what ``ctx.call``
  returned: on the student side the reference values are replayed from
  ``checks/public_expected.json``, recorded by ``coursekit release``.
* Arguments may be numpy arrays (converted to torch tensors of the same dtype),
  ``bool``/``int``/``float``/``str``/``None`` and lists, tuples and
  ``str``-keyed dicts of those. Results come back as numpy arrays (torch
  tensors are converted), Python scalars, ``str``, ``None`` and the same
  containers; anything else is rejected and the check fails.
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

CHECK_ATTRIBUTE = "__coursekit_check__"
# a check's calls use seed + n; seed_everything accepts seeds below 2**32
MAX_SEED = 2**31


class CheckFailure(Exception):
    """The student's answer is wrong; ``str(err)`` is the student-facing message."""

    status = "fail"


class CheckTimeout(CheckFailure):
    """The student's code ran past the check's time limit."""

    status = "timeout"


class CheckError(CheckFailure):
    """The student's code could not be run (import error, crash, killed worker)."""

    status = "error"


@dataclass(frozen=True)
class CheckSpec:
    """One registered check: metadata plus the function that runs it."""

    id: str
    task: str
    points: float
    timeout: float
    seed: int
    title: str
    func: Callable[[CheckContext], Any] = field(repr=False, compare=False)
    hidden: bool = False

    def with_hidden(self, hidden: bool) -> CheckSpec:
        return CheckSpec(
            self.id, self.task, self.points, self.timeout, self.seed, self.title, self.func, hidden
        )


def _require_str(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise TypeError(f"check(): {name} must be a non-empty str, got {value!r}")
    return value


def check(
    *,
    id: str,
    task: str,
    points: float,
    timeout: float = 10.0,
    seed: int = 0,
    title: str = "",
) -> Callable[[Callable], Callable]:
    """Register a function as an autograder check (see the module docstring).

    Args:
        id: unique id within the homework, e.g. ``"1a-basic"``; letters, digits,
            ``-``, ``_`` and ``.`` only.
        task: the task this check scores, a key of ``homework.json``'s ``tasks``.
        points: points awarded when the check passes (> 0).
        timeout: CPU seconds allowed for all the check's student calls together (> 0).
        seed: seed of ``ctx.rng`` and of the student/reference calls, an int in
            ``[0, 2**31)`` (call ``n`` uses ``seed + n``, which
            :func:`coursekit.runtime.seed_everything` accepts below ``2**32``).
        title: one-line description shown in reports (defaults to the id).

    Returns a decorator that attaches a :class:`CheckSpec` to the function and
    returns the function unchanged.
    """
    _require_str("id", id)
    if not all(ch.isalnum() or ch in "-_." for ch in id):
        raise ValueError(f"check(): id must use letters, digits, '-', '_' or '.', got {id!r}")
    _require_str("task", task)
    if isinstance(points, bool) or not isinstance(points, numbers.Real):
        raise TypeError(f"check(): points must be a number, got {type(points).__name__}")
    if not points > 0 or not math.isfinite(points):
        raise ValueError(f"check(): points must be a finite number > 0, got {points!r}")
    if isinstance(timeout, bool) or not isinstance(timeout, numbers.Real):
        raise TypeError(f"check(): timeout must be a number of seconds, got {timeout!r}")
    if not timeout > 0 or not math.isfinite(timeout):
        raise ValueError(f"check(): timeout must be a finite number of seconds > 0, got {timeout}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed < MAX_SEED:
        raise ValueError(f"check(): seed must be an int in [0, 2**31), got {seed!r}")
    if not isinstance(title, str):
        raise TypeError(f"check(): title must be a str, got {type(title).__name__}")

    def decorate(func: Callable) -> Callable:
        if not callable(func):
            raise TypeError(f"@check: expected a function, got {type(func).__name__}")
        spec = CheckSpec(
            id=id,
            task=task,
            points=float(points),
            timeout=float(timeout),
            seed=int(seed),
            title=title or id,
            func=func,
        )
        setattr(func, CHECK_ATTRIBUTE, spec)
        return func

    return decorate


def collect_checks(namespace: dict, hidden: bool = False) -> list[CheckSpec]:
    """The checks defined in a module namespace, in definition order."""
    specs = []
    for value in namespace.values():
        spec = getattr(value, CHECK_ATTRIBUTE, None)
        if isinstance(spec, CheckSpec):
            specs.append(spec.with_hidden(hidden))
    return specs


# --------------------------------------------------------------------------- judging


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape} and dtype {value.dtype}"
    if value is None:
        return "None"
    return type(value).__name__


def _as_numeric_array(value: Any, what: str) -> np.ndarray:
    """Numbers, bools and numeric arrays as a numpy array; anything else fails the check."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biufc":
            raise CheckFailure(f"{what}: expected numbers, got an array of dtype {value.dtype}")
        return value
    if type(value) in (bool, int, float):
        return np.asarray(value)
    if isinstance(value, (list, tuple)):
        try:
            arr = np.asarray(value)
        except (ValueError, TypeError):
            arr = None
        if arr is not None and arr.dtype.kind in "biuf":
            return arr
    raise CheckFailure(
        f"{what}: expected numbers (a tensor/array or a float), got {_describe(value)}"
    )


def _fmt_index(index: tuple) -> str:
    return "" if index == () else f" at index {tuple(int(i) for i in index)}"


def _compare(got: Any, want: Any, rtol: float, atol: float, what: str) -> None:
    if isinstance(want, dict):
        if not isinstance(got, dict):
            raise CheckFailure(f"{what}: expected a dict, got {_describe(got)}")
        if set(got) != set(want):
            raise CheckFailure(
                f"{what}: expected keys {sorted(want)}, got keys {sorted(map(str, got))}"
            )
        for key in want:
            _compare(got[key], want[key], rtol, atol, f"{what}[{key!r}]")
        return
    if isinstance(want, (list, tuple)) and any(
        isinstance(v, (np.ndarray, dict, list, tuple, str)) or v is None for v in want
    ):
        if not isinstance(got, (list, tuple)):
            raise CheckFailure(f"{what}: expected a {type(want).__name__}, got {_describe(got)}")
        if len(got) != len(want):
            raise CheckFailure(f"{what}: expected {len(want)} items, got {len(got)}")
        for i, (g, w) in enumerate(zip(got, want)):
            _compare(g, w, rtol, atol, f"{what}[{i}]")
        return
    if want is None or isinstance(want, str):
        if type(got) is not type(want) or got != want:
            raise CheckFailure(f"{what}: expected {want!r}, got {got!r}")
        return
    want_arr = _as_numeric_array(want, f"{what} (reference)")
    got_arr = _as_numeric_array(got, what)
    if got_arr.shape != want_arr.shape:
        raise CheckFailure(f"{what}: expected shape {want_arr.shape}, got {got_arr.shape}")
    if got_arr.dtype.kind in "fc" and np.isnan(got_arr).any() and not np.isnan(want_arr).any():
        count = int(np.isnan(got_arr).sum())
        first = tuple(np.argwhere(np.isnan(got_arr))[0]) if got_arr.ndim else ()
        raise CheckFailure(
            f"{what}: contains NaN ({count} of {got_arr.size} values, first{_fmt_index(first)}); "
            "expected finite numbers"
        )
    g = got_arr.astype(np.complex128 if got_arr.dtype.kind == "c" else np.float64)
    w = want_arr.astype(np.complex128 if want_arr.dtype.kind == "c" else np.float64)
    ok = np.isclose(g, w, rtol=rtol, atol=atol, equal_nan=True)
    if not ok.all():
        bad = ~ok
        with np.errstate(invalid="ignore"):
            diff = np.where(bad, np.abs(g - w), -np.inf)
            diff = np.where(np.isnan(diff), np.inf, diff)
        index = np.unravel_index(int(np.argmax(diff)), g.shape) if g.ndim else ()
        g_at, w_at = g[index], w[index]
        raise CheckFailure(
            f"{what}: {int(bad.sum())} of {g.size} values differ from the expected values "
            f"(rtol={rtol:g}, atol={atol:g}); largest difference{_fmt_index(index)}: "
            f"expected {w_at.real if w.dtype.kind != 'c' else w_at:.6g}, "
            f"got {g_at.real if g.dtype.kind != 'c' else g_at:.6g}"
        )


class CheckContext:
    """What a check function receives as ``ctx``.

    Built by the grader; check authors use :attr:`rng`, :meth:`call`,
    :meth:`reference` and the ``assert_*`` helpers.

    Args:
        spec: the check being run.
        caller: object with ``call(name, args, kwargs, *, seed, timeout)`` that
            runs the student's function in the sandbox and returns plain data
            (raises :class:`CheckFailure` subclasses on errors/timeouts).
        reference: object with ``call(check_id, index, name, args, kwargs, *, seed)``
            returning the reference solution's plain-data result.
        clock: monotonic clock (injectable for tests).
    """

    def __init__(
        self, spec: CheckSpec, caller, reference, clock: Callable[[], float] | None = None
    ):
        self.spec = spec
        self.rng = np.random.default_rng(spec.seed)
        self._caller = caller
        self._reference = reference
        self._clock = clock or time.monotonic
        self._student_time = 0.0
        self._n_calls = 0
        self._n_refs = 0

    @property
    def time_left(self) -> float:
        """Seconds the student's code still has within this check's timeout."""
        return max(0.0, self.spec.timeout - self._student_time)

    def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Run ``submission.<name>(*args, **kwargs)`` in the sandbox; return plain data.

        ``name`` may be ``"harness:<function>"`` to run a function of the
        homework's released ``checks/harness.py`` inside the sandbox instead.
        """
        if not isinstance(name, str) or not name:
            raise TypeError(f"ctx.call: name must be a non-empty str, got {name!r}")
        if self.time_left <= 0:
            raise CheckTimeout(
                f"time limit of {self.spec.timeout:g} s for this check was used up "
                f"before calling {name}"
            )
        seed = self.spec.seed + self._n_calls
        self._n_calls += 1
        start = self._clock()
        try:
            return self._caller.call(name, args, kwargs, seed=seed, timeout=self.time_left)
        finally:
            cpu = getattr(self._caller, "last_cpu", None)
            if isinstance(cpu, (int, float)):  # the sandbox measured the call's CPU time
                self._student_time += max(0.0, float(cpu))
            else:
                # a fresh worker's start-up (importing torch) is not the student's time
                startup = getattr(self._caller, "last_startup", 0.0) or 0.0
                self._student_time += max(0.0, self._clock() - start - startup)

    def reference(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """The reference solution's result for the same call (plain data, trusted)."""
        if not isinstance(name, str) or not name:
            raise TypeError(f"ctx.reference: name must be a non-empty str, got {name!r}")
        index = self._n_refs
        self._n_refs += 1
        seed = self.spec.seed + index
        return self._reference.call(self.spec.id, index, name, args, kwargs, seed=seed)

    # judging helpers -------------------------------------------------------------
    def assert_close(
        self, got: Any, want: Any, rtol: float = 1e-5, atol: float = 1e-8, what: str = "result"
    ) -> None:
        """Fail unless ``got`` matches ``want`` elementwise within ``atol + rtol*|want|``.

        Shapes must match exactly; NaN in ``got`` (where ``want`` has none) fails
        with its own message; lists/tuples/dicts are compared item by item.
        """
        _compare(got, want, float(rtol), float(atol), what)

    def assert_shape(self, got: Any, shape: tuple, what: str = "result") -> None:
        """Fail unless ``got`` is numeric with exactly this shape (``None`` = any size)."""
        arr = _as_numeric_array(got, what)
        shape = tuple(shape)
        if len(arr.shape) != len(shape) or any(
            s is not None and s != g for s, g in zip(shape, arr.shape)
        ):
            shown = "(" + ", ".join("*" if s is None else str(s) for s in shape)
            shown += ",)" if len(shape) == 1 else ")"
            raise CheckFailure(f"{what}: expected shape {shown}, got {arr.shape}")

    def assert_true(self, condition: Any, message: str) -> None:
        """Fail with ``message`` unless ``condition`` is true (a Python/numpy bool)."""
        if not isinstance(condition, (bool, np.bool_)):
            raise TypeError(
                f"ctx.assert_true: condition must be a bool computed in the check, "
                f"got {type(condition).__name__}"
            )
        if not condition:
            raise CheckFailure(message)

    def fail(self, message: str) -> None:
        """Fail the check with a student-facing message."""
        raise CheckFailure(message)
