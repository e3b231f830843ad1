"""Where ``ctx.reference`` gets its values: live from ``solutions/`` or replayed from a file.

* :class:`LiveReference` imports the master ``solutions/<hw>/submission.py`` in
  the trusted process and calls it (arguments converted to torch exactly as the
  sandbox converts them, results converted back to plain numpy data). Results
  are cached per (check, call index, arguments), so a batch of 100 students
  runs the reference once per check.
* :class:`RecordingReference` wraps a live one and remembers every result;
  ``coursekit release`` writes them to ``homework/<hw>/checks/public_expected.json``.
* :class:`ReplayReference` serves those recorded results on the student side
  (no ``solutions/``); it refuses when the check asks with different arguments
  than were recorded (the public checks were edited after release).
* :class:`InProcessCaller` plays the student with the reference solution, which
  is how release records values and verifies that the solution passes.
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading
from pathlib import Path

from coursekit.grading.checks import CheckFailure
from coursekit.grading.homework import load_module
from coursekit.grading.wire import decode, encode
from coursekit.runtime import seed_everything

EXPECTED_FORMAT = 1


def call_key(name: str, args: tuple, kwargs: dict) -> str:
    """A stable hash of a call's name and plain-data arguments."""
    text = json.dumps(encode([name, list(args), dict(kwargs)]), sort_keys=True, allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class LiveReference:
    """Calls the master solution in this (trusted) process."""

    def __init__(self, master_dir: Path, harness: Path | None = None):
        self.master_dir = Path(master_dir)
        path = self.master_dir / "submission.py"
        if not path.is_file():
            raise ValueError(f"reference solution: expected {path}")
        self._lock = threading.Lock()
        self._cache: dict = {}
        tag = abs(hash(str(path.resolve())))
        with self._lock:
            self.submission = load_module(path, f"coursekit_reference_{tag}")
            self.harness = None
            if harness is not None and Path(harness).is_file():
                saved = sys.modules.get("submission")
                sys.modules["submission"] = self.submission
                try:
                    self.harness = load_module(Path(harness), f"coursekit_harness_{tag}")
                finally:
                    if saved is None:
                        sys.modules.pop("submission", None)
                    else:
                        sys.modules["submission"] = saved

    def run(self, name: str, args: tuple, kwargs: dict, seed: int):
        """Call the reference function; return plain data (decoded like a student's)."""
        if name.startswith("harness:"):
            if self.harness is None:
                raise ValueError(f"ctx.reference({name!r}): this homework has no checks/harness.py")
            func = getattr(self.harness, name.split(":", 1)[1], None)
        else:
            func = getattr(self.submission, name, None)
        if not callable(func):
            raise ValueError(f"ctx.reference: the reference solution has no function {name!r}")
        t_args = decode(encode(list(args)), to_torch=True)
        t_kwargs = decode(encode(dict(kwargs)), to_torch=True)
        import torch

        with torch.random.fork_rng(devices=[]):
            seed_everything(seed)
            value = func(*t_args, **t_kwargs)
        return decode(encode(value))

    def call(self, check_id: str, index: int, name: str, args: tuple, kwargs: dict, *, seed: int):
        key = (check_id, index, seed, call_key(name, args, kwargs))
        with self._lock:
            if key not in self._cache:
                self._cache[key] = self.run(name, args, kwargs, seed)
            return self._cache[key]


class RecordingReference:
    """A live reference that records ``{check_id: [{name, key, value}, ...]}``."""

    def __init__(self, live: LiveReference):
        self.live = live
        self.records: dict[str, list] = {}

    def call(self, check_id: str, index: int, name: str, args: tuple, kwargs: dict, *, seed: int):
        value = self.live.call(check_id, index, name, args, kwargs, seed=seed)
        entries = self.records.setdefault(check_id, [])
        if index != len(entries):
            raise RuntimeError(f"reference calls of {check_id} were recorded out of order")
        entries.append({"name": name, "key": call_key(name, args, kwargs), "value": encode(value)})
        return value

    def dumps(self) -> str:
        """The recorded values as deterministic JSON text."""
        data = {"format": EXPECTED_FORMAT, "checks": self.records}
        return json.dumps(data, indent=1, sort_keys=True, allow_nan=False) + "\n"


class ReplayReference:
    """Serves reference values recorded by ``coursekit release``."""

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ValueError(
                f"{self.path} is missing: the released homework needs it for the public checks "
                "(instructors: run `coursekit release`)"
            ) from None
        if not isinstance(data, dict) or data.get("format") != EXPECTED_FORMAT:
            raise ValueError(f"{self.path}: unknown format (re-run `coursekit release`)")
        self.checks = data.get("checks", {})

    def call(self, check_id: str, index: int, name: str, args: tuple, kwargs: dict, *, seed: int):
        entries = self.checks.get(check_id, [])
        if index >= len(entries) or entries[index].get("key") != call_key(name, args, kwargs):
            raise CheckFailure(
                f"no recorded expected value for this check (call {index} of {name}); "
                "were the public checks edited? Get a fresh copy of the homework's checks/ folder"
            )
        return decode(entries[index]["value"])


class InProcessCaller:
    """Plays the student with the reference solution (used by release to record)."""

    def __init__(self, live: LiveReference):
        self.live = live

    def call(self, name: str, args: tuple, kwargs: dict, *, seed: int, timeout: float):
        return self.live.run(name, args, kwargs, seed)
