"""coursekit.grading.check_kit: the pieces every homework's checks share."""

import pytest

from coursekit.grading.check_kit import (
    SandboxCalls,
    assert_trained_within_band,
    graded_helpers,
    shapes_of,
    sibling_checks,
    student_message,
)
from coursekit.grading.checks import CheckError, CheckFailure


class FakeContext:
    """What the kit uses of a check's context: call, fail, assert_true."""

    def __init__(self, answer=None, raises=None):
        self.answer, self.raises, self.calls = answer, raises, []

    def call(self, name, *args, **kwargs):
        self.calls.append((name, args, kwargs))
        if self.raises is not None:
            raise self.raises
        return self.answer

    def fail(self, message):
        raise CheckFailure(message)

    def assert_true(self, condition, message):
        if not condition:
            raise CheckFailure(message)


@pytest.fixture
def checks_dir(tmp_path):
    (tmp_path / "hidden.py").write_text('x = 1\nGRADED_HELPERS = """\ndef f():\n    pass\n"""\n')
    return tmp_path


def test_graded_helpers_come_from_hidden_py_and_are_none_without_it(checks_dir, tmp_path_factory):
    assert graded_helpers(checks_dir / "public.py") == "\ndef f():\n    pass\n"
    assert graded_helpers(tmp_path_factory.mktemp("student") / "public.py") is None


def test_student_message_names_the_function_and_shows_the_hint_once():
    raw = ("harness:train raised NotImplementedError: use the chain rule "
           "(submission.py, line 12: raise NotImplementedError(\"use the chain rule\"))")
    assert student_message(raw, "made_forward") == (
        "made_forward raised NotImplementedError: use the chain rule (submission.py, line 12)")
    assert student_message("harness:x raised ValueError: bad (harness.py, line 3: y = g + 1)",
                           "f") == "f raised ValueError: bad"


def test_shapes_of_dicts_and_lists_of_dicts():
    import numpy as np

    w = {"a": np.zeros((2, 3)), "b": np.zeros(4)}
    assert shapes_of(w) == {"a": [2, 3], "b": [4]}
    assert shapes_of([w, {"c": np.zeros((1, 1))}]) == [{"a": [2, 3], "b": [4]}, {"c": [1, 1]}]


def test_bound_calls_pass_the_graded_helpers_only_where_they_exist(checks_dir, tmp_path):
    ctx = FakeContext(answer=3)
    assert SandboxCalls(checks_dir / "public.py").call(ctx, "harness:g", 1, bound=True) == 3
    assert ctx.calls[-1] == ("harness:g", (1,), {"helpers": "\ndef f():\n    pass\n"})
    SandboxCalls(checks_dir / "public.py").call(ctx, "g", 1)
    assert ctx.calls[-1] == ("g", (1,), {})
    SandboxCalls(tmp_path / "nowhere" / "public.py").call(ctx, "harness:g", 1, bound=True)
    assert ctx.calls[-1] == ("harness:g", (1,), {})


def test_failures_name_the_function_and_errors_pass_through(checks_dir):
    kit = SandboxCalls(checks_dir / "public.py")
    ctx = FakeContext(raises=CheckFailure("harness:g raised ValueError: no"))
    with pytest.raises(CheckFailure, match="^my_function raised ValueError: no; see$"):
        kit.call(ctx, "harness:g", function="my_function", note="; see")
    crash = CheckError("the worker died")
    with pytest.raises(CheckError) as err:
        kit.call(FakeContext(raises=crash), "g")
    assert err.value is crash


def test_any_device_accepts_meta_float32_only(checks_dir):
    kit = SandboxCalls(checks_dir / "public.py", device_note=" [device note]")
    kit.any_device(FakeContext(answer=[["meta", "float32"], ("meta", "float32")]), "f")
    with pytest.raises(CheckFailure, match=r"f returned \[\['cpu', 'float32'\]\].*\[device note\]"):
        kit.any_device(FakeContext(answer=[["meta", "float32"], ["cpu", "float32"]]), "f")


def test_own_helpers_note_only_where_the_students_helpers_ran(checks_dir, tmp_path):
    def failing(ctx):
        raise CheckFailure("wrong")

    student = SandboxCalls(tmp_path / "student" / "public.py", own_helpers_note=" [own]")
    with pytest.raises(CheckFailure, match=r"^wrong \[own\]$"):
        student.own_helpers_note(failing)(None)
    grader = SandboxCalls(checks_dir / "public.py", own_helpers_note=" [own]")
    with pytest.raises(CheckFailure, match="^wrong$"):
        grader.own_helpers_note(failing)(None)


def test_sibling_checks_imports_the_file_next_to_the_caller(checks_dir):
    (checks_dir / "public.py").write_text("TOLERANCE = 0.25\n")
    module = sibling_checks(checks_dir / "hidden.py")
    assert module.TOLERANCE == 0.25 and module.__file__ == str(checks_dir / "public.py")


def test_training_verdict_needs_a_finite_run_within_the_band():
    ctx = FakeContext()
    assert_trained_within_band(ctx, {"finite": True, "nll": 2.7}, {"nll": 2.6}, "nll", 0.2,
                               "f", "after 5 steps the NLL")
    with pytest.raises(CheckFailure, match="^training with f produced a non-finite loss$"):
        assert_trained_within_band(ctx, {"finite": False, "nll": 2.6}, {"nll": 2.6}, "nll",
                                   0.2, "f", "after 5 steps the NLL")
    with pytest.raises(CheckFailure, match=r"^after 5 steps the NLL is 2\.900 nats \(measured "
                                           r"by the harness.*reaches 2\.600 and 0\.2 nats"):
        assert_trained_within_band(ctx, {"finite": True, "nll": 2.9}, {"nll": 2.6}, "nll",
                                   0.2, "f", "after 5 steps the NLL")
