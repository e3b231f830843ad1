"""The check decorator, the ctx API and the judging helpers (no sandbox involved)."""

from __future__ import annotations

import numpy as np
import pytest

from coursekit.grading.checks import (
    CheckContext,
    CheckFailure,
    CheckTimeout,
    check,
    collect_checks,
)


class FakeCaller:
    """Stands in for the sandbox: returns queued values, records what it was asked."""

    def __init__(self, *values, cost=0.0, clock=None):
        self.values = list(values)
        self.calls = []
        self.cost = cost
        self.clock = clock

    def call(self, name, args, kwargs, *, seed, timeout):
        self.calls.append((name, args, kwargs, seed, timeout))
        if self.clock is not None:
            self.clock.now += self.cost
        return self.values.pop(0)


class FakeReference:
    def __init__(self, value):
        self.value = value
        self.calls = []

    def call(self, check_id, index, name, args, kwargs, *, seed):
        self.calls.append((check_id, index, name, seed))
        return self.value


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def make_spec(**overrides):
    params = dict(id="1a-basic", task="1a", points=2, timeout=5, seed=3, title="t")
    params.update(overrides)

    @check(**params)
    def body(ctx):
        return None

    return collect_checks({"body": body})[0]


def test_decorator_attaches_spec_and_keeps_function():
    @check(id="x-1", task="x", points=1.5, timeout=2, seed=7)
    def my_check(ctx):
        return "ran"

    specs = collect_checks({"a": 1, "my_check": my_check}, hidden=True)
    assert len(specs) == 1
    spec = specs[0]
    assert (spec.id, spec.task, spec.points, spec.timeout, spec.seed) == ("x-1", "x", 1.5, 2.0, 7)
    assert spec.title == "x-1" and spec.hidden is True
    assert my_check(None) == "ran"


@pytest.mark.parametrize(
    "bad, exc, words",
    [
        (dict(id=""), TypeError, "id"),
        (dict(id="a b"), ValueError, "id"),
        (dict(task=3), TypeError, "task"),
        (dict(points=0), ValueError, "points"),
        (dict(points="2"), TypeError, "points"),
        (dict(timeout=-1), ValueError, "timeout"),
        (dict(seed=-2), ValueError, "seed"),
        (dict(seed=2**31), ValueError, "seed"),
        (dict(title=5), TypeError, "title"),
    ],
)
def test_decorator_rejects_bad_arguments(bad, exc, words):
    params = dict(id="ok", task="1a", points=1, timeout=1, seed=0, title="")
    params.update(bad)
    with pytest.raises(exc, match=words):
        check(**params)


def test_rng_is_seeded_and_calls_get_increasing_seeds():
    spec = make_spec(seed=11)
    caller = FakeCaller(1.0, 2.0)
    ref = FakeReference(1.0)
    ctx = CheckContext(spec, caller, ref)
    assert ctx.rng.normal() == np.random.default_rng(11).normal()
    ctx.call("f", np.ones(2), k=1)
    ctx.call("g")
    ctx.reference("f", np.ones(2))
    assert [c[3] for c in caller.calls] == [11, 12]
    assert caller.calls[0][0] == "f" and caller.calls[0][2] == {"k": 1}
    assert ref.calls == [("1a-basic", 0, "f", 11)]


def test_timeout_budget_is_shared_by_all_calls_of_a_check():
    clock = Clock()
    spec = make_spec(timeout=5)
    caller = FakeCaller(1, 2, 3, cost=3.0, clock=clock)
    ctx = CheckContext(spec, caller, FakeReference(0), clock=clock)
    ctx.call("f")
    ctx.call("f")
    assert caller.calls[1][4] == pytest.approx(2.0)
    with pytest.raises(CheckTimeout, match="5 s"):
        ctx.call("f")


def ctx_for_judging():
    return CheckContext(make_spec(), FakeCaller(), FakeReference(0))


def test_assert_close_accepts_close_values():
    ctx = ctx_for_judging()
    want = np.array([1.0, 2.0, 3.0])
    ctx.assert_close(want + 1e-9, want, rtol=1e-6, atol=1e-8)
    ctx.assert_close({"a": [want, 1.0]}, {"a": [want, 1.0 + 1e-12]})


def test_assert_close_reports_shape_mismatch():
    ctx = ctx_for_judging()
    with pytest.raises(CheckFailure, match=r"expected shape \(3,\), got \(3, 1\)"):
        ctx.assert_close(np.zeros((3, 1)), np.zeros(3), what="mean")


def test_assert_close_reports_nan_clearly():
    ctx = ctx_for_judging()
    got = np.array([1.0, np.nan, 3.0])
    with pytest.raises(CheckFailure, match=r"log-density: contains NaN \(1 of 3.*index \(1,\)"):
        ctx.assert_close(got, np.array([1.0, 2.0, 3.0]), what="log-density")


def test_assert_close_reports_largest_difference():
    ctx = ctx_for_judging()
    with pytest.raises(CheckFailure) as info:
        ctx.assert_close(np.array([1.0, 2.5, 3.1]), np.array([1.0, 2.0, 3.0]), what="x")
    message = str(info.value)
    assert "2 of 3 values differ" in message
    assert "index (1,)" in message and "expected 2" in message and "got 2.5" in message


@pytest.mark.parametrize("got", ["1.0", None, {"a": 1}, np.array(["a"])])
def test_assert_close_rejects_non_numbers(got):
    ctx = ctx_for_judging()
    with pytest.raises(CheckFailure, match="expected numbers"):
        ctx.assert_close(got, np.array(1.0))


def test_assert_close_dict_keys_and_lengths():
    ctx = ctx_for_judging()
    with pytest.raises(CheckFailure, match="expected keys"):
        ctx.assert_close({"b": 1.0}, {"a": 1.0})
    with pytest.raises(CheckFailure, match="expected 2 items, got 1"):
        ctx.assert_close([np.ones(1)], [np.ones(1), np.ones(1)])


def test_assert_shape_with_wildcards():
    ctx = ctx_for_judging()
    ctx.assert_shape(np.zeros((4, 2)), (None, 2))
    with pytest.raises(CheckFailure, match=r"expected shape \(\*, 3\), got \(4, 2\)"):
        ctx.assert_shape(np.zeros((4, 2)), (None, 3))
    with pytest.raises(CheckFailure, match=r"expected shape \(3,\), got \(3, 1\)"):
        ctx.assert_shape(np.zeros((3, 1)), (3,))


def test_assert_true_and_fail():
    ctx = ctx_for_judging()
    ctx.assert_true(np.bool_(True), "unused")
    with pytest.raises(CheckFailure, match="variance must be positive"):
        ctx.assert_true(False, "variance must be positive")
    with pytest.raises(TypeError, match="condition"):
        ctx.assert_true(np.array([True]), "m")
    with pytest.raises(CheckFailure, match="nope"):
        ctx.fail("nope")
