"""Pieces that every homework's checks use (trusted side, imported by ``checks/*.py``).

* :func:`graded_helpers`: the source of the correct helpers that the grader swaps
  in for a student's own (``GRADED_HELPERS`` in ``checks/hidden.py``, absent from
  the released homework), so that one mistake costs points in one task only.
* :class:`SandboxCalls`: ``ctx.call`` into the harness with failure messages that
  name the student's function (not the harness), optional graded helpers, the
  any-device probe, and a note on checks that ran the student's own helpers.
* :func:`shapes_of`: the shapes of weight arrays, for the harness's meta-device probe.
* :func:`assert_trained_within_band`: a training check's verdict (finite, and within a
  band of the reference's score).
* :func:`sibling_checks`: the hidden checks' way to reuse ``public.py``'s helpers.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import re
from pathlib import Path

import numpy as np

from coursekit.grading.checks import CheckError, CheckFailure

DEVICE_NOTE = ("; called with float32 tensors on another device than the CPU (PyTorch's "
               "'meta' device), your code must create every new tensor on the inputs' device "
               "and dtype (torch.zeros_like(x), torch.ones_like(x), or device=x.device, "
               "dtype=x.dtype), never with a bare torch.zeros(n) or torch.tensor(...)")


def graded_helpers(checks_file: str | Path) -> str | None:
    """Source text of ``GRADED_HELPERS`` in ``hidden.py`` next to ``checks_file``, or None
    where the hidden checks are absent (a student's copy)."""
    path = Path(checks_file).with_name("hidden.py")
    if not path.is_file():
        return None
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(
                getattr(t, "id", None) == "GRADED_HELPERS" for t in node.targets):
            return ast.literal_eval(node.value)
    return None


def student_message(text: str, function: str) -> str:
    """A failure message of the sandbox, naming the student's ``function`` (not the
    harness) and showing the hint of an untouched skeleton only once."""
    text = re.sub(r"^harness:\w+ raised ", f"{function} raised ", text)
    text = re.sub(r" \(harness\.py, line \d+:[^)]*\)$", "", text)
    # "NotImplementedError: hint (submission.py, line 12: raise NotImplementedError(...))"
    return re.sub(r"(\(submission\.py, line \d+): raise NotImplementedError\(.*\)$",
                  r"\1)", text)


def sibling_checks(checks_file: str | Path, name: str = "public.py"):
    """The module ``name`` next to ``checks_file``, imported by path (the checks are not
    a package; this works however the grader loaded ``checks_file``)."""
    path = Path(checks_file).with_name(name)
    module_name = f"_{path.parent.parent.name}_{path.stem}_checks_helpers"
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def assert_trained_within_band(ctx, got, want, key: str, band: float, function: str,
                               result: str) -> None:
    """A training check's verdict: the student's run (``got``, a dict from the harness
    with ``finite`` and ``key``) had a finite loss throughout, and its ``key`` is within
    ``band`` nats of the reference's (``want``). ``result`` says what was measured, e.g.
    ``"after 300 Adam steps with your f the test NELBO"``."""
    ctx.assert_true(isinstance(got, dict) and bool(got.get("finite")),
                    f"training with {function} produced a non-finite loss")
    got_value, want_value = float(got[key]), float(want[key])
    ctx.assert_true(
        bool(abs(got_value - want_value) <= band),
        f"{result} is {got_value:.3f} nats (measured by the harness, not by your function); "
        f"the reference reaches {want_value:.3f} and {band} nats either side are allowed",
    )


def shapes_of(params):
    """The shapes of a dict (or a list of dicts) of weight arrays, as lists of ints."""
    if isinstance(params, list):
        return [shapes_of(p) for p in params]
    return {k: [int(n) for n in np.shape(v)] for k, v in params.items()}


class SandboxCalls:
    """Calls from one homework's checks into its harness.

    Args:
        checks_file: ``__file__`` of the checks module (``hidden.py`` is looked up
            next to it for the graded helpers).
        own_helpers_note: appended to a failure of a check decorated with
            :meth:`own_helpers_note` when the student's own helpers were used.
        device_note: appended to failures of :meth:`any_device`.
    """

    def __init__(self, checks_file: str | Path, own_helpers_note: str = "",
                 device_note: str = DEVICE_NOTE):
        self.helpers = graded_helpers(checks_file)
        self.note, self.device_note = own_helpers_note, device_note

    def call(self, ctx, name: str, *args, function: str | None = None, bound: bool = False,
             note: str = "", **kwargs):
        """``ctx.call`` whose failure messages name the student's ``function``. With
        ``bound=True`` the graded helpers are passed to the harness when present."""
        function = function or name
        if bound and self.helpers is not None:
            kwargs["helpers"] = self.helpers
        try:
            return ctx.call(name, *args, **kwargs)
        except CheckError:
            raise
        except CheckFailure as err:
            if type(err) is not CheckFailure:
                raise
            ctx.fail(student_message(str(err), function) + note)

    def any_device(self, ctx, function: str, shapes=None, bound: bool = False) -> None:
        """``function`` on float32 tensors of the ``meta`` device must return float32
        tensors there (the docstrings promise any device and any floating dtype); the
        harness's ``meta_probe`` runs it and reports each output's (device, dtype)."""
        got = self.call(ctx, "harness:meta_probe", function, shapes, function=function,
                        bound=bound, note=self.device_note)
        got = [list(item) for item in got] if isinstance(got, (list, tuple)) else got
        bad = ([item for item in got if item != ["meta", "float32"]]
               if isinstance(got, list) else [got])
        ctx.assert_true(not bad, f"{function} returned {bad} (device, dtype) for float32 "
                                 f"inputs on the 'meta' device; expected ['meta', 'float32']"
                        + self.device_note)

    def own_helpers_note(self, func):
        """Decorator for checks that run the student's function with graded helpers: where
        the student's own helpers were used instead (no graded helpers here), a failure
        message says so."""
        @functools.wraps(func)
        def wrapper(ctx):
            try:
                return func(ctx)
            except CheckFailure as err:
                if type(err) is not CheckFailure or self.helpers is not None:
                    raise
                raise CheckFailure(str(err) + self.note) from None
        return wrapper
