"""Trusted side of the sandbox: start, talk to and kill a student's worker process.

One :class:`Sandbox` per submission. It copies ``submission.py`` (and the
homework's released ``harness.py``) into a fresh private folder, starts
``python -I -m coursekit.grading.worker`` in a new session (own process group),
and sends it one request per ``ctx.call``. Time limits are enforced here, by
the trusted process, on the worker's CPU time read from ``/proc`` (so a loaded
machine does not fail slow but acceptable code), with a generous wall-clock
backstop for code that sleeps: when a call overruns, the whole process group is killed
(and, when the worker runs under its own uid, every process of that uid), and
the next call starts a fresh worker. The worker confines itself to a
file-system allow-list before it imports the student's code (Landlock:
:mod:`coursekit.grading.isolation`); with ``require_isolation`` a worker that
cannot do so refuses to run it and :meth:`Sandbox.start` raises
:class:`~coursekit.grading.isolation.IsolationUnavailable`. Everything the student prints goes to a
pipe drained by a thread that keeps only the first ``output_limit`` bytes.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from coursekit.grading.checks import CheckError, CheckFailure, CheckTimeout
from coursekit.grading.isolation import IsolationUnavailable
from coursekit.grading.wire import PlainDataError, decode, encode

MAX_MESSAGE_BYTES = 256 * 1024 * 1024


@dataclass
class Limits:
    """Resource limits of one worker.

    Attributes:
        mem_bytes: address-space limit (RLIMIT_AS). torch alone maps ~0.7 GB
            of virtual memory after import, so keep this >= 2 GB.
        nproc: RLIMIT_NPROC for the worker's uid (threads count too).
        fsize_bytes: largest file the worker may write.
        output_limit: bytes of the student's stdout/stderr kept for the report.
        import_timeout: seconds allowed for importing torch + the submission.
        threads: torch intra-op threads in the worker.
        uid_base: when the grader runs as root, worker slot ``k`` runs as uid
            ``uid_base + k`` (an otherwise unused uid) and gid ``gid``.
        wall_factor, wall_margin: a call's time limit counts CPU seconds of the
            worker process (Linux; elsewhere wall-clock seconds), so a loaded
            machine does not fail slow but acceptable code; code that sleeps or
            waits uses no CPU and is stopped by the wall-clock backstop of
            ``limit * wall_factor + wall_margin`` seconds.
        confine: apply the worker's file-system allow-list (Landlock) and
            seccomp filter (:mod:`coursekit.grading.isolation`). False behaves
            like a machine without Landlock (tests, diagnosis): a sandbox that
            requires isolation then refuses to start.
    """

    mem_bytes: int = 4 * 1024**3
    nproc: int = 256
    fsize_bytes: int = 64 * 1024**2
    output_limit: int = 10_000
    import_timeout: float = 60.0
    threads: int = 1
    uid_base: int = 61000
    gid: int = 65534
    drop_privileges: bool = True
    wall_factor: float = 4.0
    wall_margin: float = 10.0
    confine: bool = True

    def __post_init__(self):
        for name in ("mem_bytes", "nproc", "fsize_bytes", "output_limit", "threads"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"Limits.{name}: expected an int > 0, got {value!r}")
        if not self.import_timeout > 0:
            raise ValueError(f"Limits.import_timeout: expected > 0, got {self.import_timeout!r}")
        if not self.wall_factor >= 1:
            raise ValueError(f"Limits.wall_factor: expected >= 1, got {self.wall_factor!r}")
        if not self.wall_margin >= 0:
            raise ValueError(f"Limits.wall_margin: expected >= 0, got {self.wall_margin!r}")


class _OutputDrain(threading.Thread):
    """Reads a pipe to EOF, keeping only the first ``limit`` bytes."""

    def __init__(self, fd: int, limit: int):
        super().__init__(daemon=True)
        self.fd, self.limit = fd, limit
        self.kept = bytearray()
        self.dropped = 0

    def run(self) -> None:
        try:
            while True:
                chunk = os.read(self.fd, 65536)
                if not chunk:
                    break
                room = self.limit - len(self.kept)
                if room > 0:
                    self.kept += chunk[:room]
                self.dropped += max(0, len(chunk) - max(room, 0))
        except OSError:
            pass
        finally:
            os.close(self.fd)

    def text(self) -> str:
        out = self.kept.decode("utf-8", errors="replace")
        if self.dropped:
            out += f"\n[... {self.dropped} more bytes of output not shown]"
        return out


def _is_inside(path: Path, parent: Path) -> bool:
    try:
        path.relative_to(parent)
        return True
    except ValueError:
        return False


def _running_as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def kill_uid(uid: int, patience: float = 10.0) -> int:
    """SIGKILL every live process owned by ``uid`` (Linux /proc); returns how many.

    A fork bomb keeps forking while it is being killed, so one sweep is not
    enough: each sweep first stops every process it finds (a stopped process
    cannot fork) and then kills them, and sweeps repeat until one finds no live
    process, or ``patience`` seconds have passed. Zombies (already dead, waiting
    for their parent to reap them) are not counted.
    """
    killed = 0
    if uid == 0 or not os.path.isdir("/proc"):
        return 0
    deadline = time.monotonic() + patience
    while True:
        found = live_pids_of(uid)
        for sig in (signal.SIGSTOP, signal.SIGKILL):
            for pid in found:
                try:
                    os.kill(pid, sig)
                except (ProcessLookupError, PermissionError):
                    continue
        killed += len(found)
        if not found or time.monotonic() > deadline:
            return killed
        time.sleep(0.02)


def live_pids_of(uid: int) -> list[int]:
    """Process ids owned by ``uid`` that are not zombies."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.stat(f"/proc/{entry}").st_uid != uid:
                continue
            with open(f"/proc/{entry}/stat", "rb") as stat:
                state = stat.read().rsplit(b")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state not in (b"Z", b"X"):
            pids.append(int(entry))
    return pids


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` (all its threads), from ``/proc``.

    None where ``/proc`` is unavailable (not Linux) or the process is gone.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS
    except (OSError, IndexError, ValueError):
        return None


def describe_call(name: str, args: tuple, kwargs: dict) -> str:
    """``name(array (5, 3) float64, k=10)``: a call with its arguments' shapes, not values."""

    def one(value) -> str:
        if hasattr(value, "shape") and hasattr(value, "dtype"):
            return f"array {tuple(value.shape)} {value.dtype}"
        if isinstance(value, (list, tuple)):
            return f"{type(value).__name__} of {len(value)}"
        if isinstance(value, dict):
            return f"dict with keys {sorted(map(str, value))[:8]}"
        text = repr(value)
        return text if len(text) <= 40 else text[:37] + "..."

    parts = [one(v) for v in args] + [f"{k}={one(v)}" for k, v in kwargs.items()]
    return f"{name}({', '.join(parts)})"


@dataclass
class Sandbox:
    """Runs one submission's functions in an isolated worker process.

    Args:
        submission: path of the student's ``submission.py``.
        harness: path of the homework's released ``checks/harness.py`` or None.
        hide: folders the worker must not see (covered by an empty tmpfs where
            the OS allows): the master ``solutions/``, the output folder, other
            submissions.
        limits: resource limits.
        slot: index of this worker among parallel jobs (picks its uid as root).
        forbidden: modules the submission may not use (``homework.json``'s
            ``forbidden_modules``); the worker refuses to load them.
        homework: the homework's id, named in the worker's refusal message.
        require_isolation: when the worker cannot confine itself to the
            file-system allow-list (:mod:`coursekit.grading.isolation`),
            :meth:`start` raises :class:`IsolationUnavailable` instead of
            running the student's code (the grader sets it; ``coursekit
            check``, where students run their own code, does not).

    :attr:`usage` lists, per worker message, what the student's code loaded:
    ``{"during": "import" or the called function, "imports": [...],
    "forbidden": [...]}`` (entries with something to report only).
    """

    submission: Path
    harness: Path | None = None
    hide: list = field(default_factory=list)
    limits: Limits = field(default_factory=Limits)
    slot: int = 0
    forbidden: list = field(default_factory=list)
    homework: str = "this homework"
    require_isolation: bool = False
    defences: dict = field(default_factory=dict, init=False)
    usage: list = field(default_factory=list, init=False)
    import_failure: CheckFailure | None = field(default=None, init=False)

    def __post_init__(self):
        self.submission = Path(self.submission)
        if not self.submission.is_file():
            raise ValueError(f"submission: expected a submission.py file, got {self.submission}")
        self._proc: subprocess.Popen | None = None
        self._dir: Path | None = None
        self._drain: _OutputDrain | None = None
        self._req_w = self._resp_r = -1
        self._buffer = b""
        self._next_id = 0
        self._uid: int | None = None
        self._uid_lock = -1
        self.output = ""
        self.starts = 0
        self.last_startup = 0.0
        self.last_cpu: float | None = None

    # -------------------------------------------------------------- lifecycle
    @property
    def uid(self) -> int | None:
        """The private uid of this sandbox's worker (root only), reserved machine-wide.

        Starting at ``uid_base + slot``, the first uid whose lock file
        (``/tmp/coursekit-sandbox-uids/<uid>.lock``, ``flock``) this process can
        take; held until :meth:`close`, so concurrent graders (other processes
        too) never share a uid and never kill each other's workers.
        """
        if not (_running_as_root() and self.limits.drop_privileges):
            return None
        if self._uid is None:
            import fcntl

            folder = Path(tempfile.gettempdir()) / "coursekit-sandbox-uids"
            folder.mkdir(mode=0o700, exist_ok=True)
            for k in range(1000):
                uid = self.limits.uid_base + (self.slot + k) % 1000
                fd = os.open(folder / f"{uid}.lock", os.O_RDWR | os.O_CREAT, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    os.close(fd)
                    continue
                self._uid, self._uid_lock = uid, fd
                kill_uid(uid)  # leftovers of a grader that was killed
                break
            else:
                raise RuntimeError("no free sandbox uid (1000 graders running?)")
        return self._uid

    def _prepare_dir(self) -> Path:
        folder = Path(tempfile.mkdtemp(prefix="coursekit-sandbox-"))
        shutil.copyfile(self.submission, folder / "submission.py")
        if self.harness is not None and Path(self.harness).is_file():
            shutil.copyfile(self.harness, folder / "harness.py")
        if self.uid is not None:
            for path in (folder, *folder.iterdir()):
                os.chown(path, self.uid, self.limits.gid)
        os.chmod(folder, 0o700)
        return folder

    def _hide_list(self, folder: Path) -> list[str]:
        keep = [folder.resolve(), Path(sys.prefix).resolve(), Path(__file__).resolve().parent]
        out = []
        for raw in self.hide:
            path = Path(raw).resolve()
            if path.is_dir() and not any(_is_inside(k, path) for k in keep):
                out.append(str(path))
        return sorted(set(out))

    def start(self) -> None:
        """Start a fresh worker and wait until the submission is imported.

        Raises :class:`CheckError`/:class:`CheckTimeout` (and remembers it in
        :attr:`import_failure`, so later calls fail at once) when the
        submission cannot be imported.
        """
        if self.import_failure is not None:
            raise self.import_failure
        self.close()
        self._dir = self._prepare_dir()
        req_r, self._req_w = os.pipe()
        self._resp_r, resp_w = os.pipe()
        out_r, out_w = os.pipe()
        config = {
            "sandbox": str(self._dir),
            "request_fd": req_r,
            "response_fd": resp_w,
            "hide": self._hide_list(self._dir),
            "mem_bytes": self.limits.mem_bytes,
            "nproc": self.limits.nproc,
            "fsize_bytes": self.limits.fsize_bytes,
            "threads": self.limits.threads,
            "uid": self.uid,
            "gid": self.limits.gid,
            "forbidden": [str(name) for name in self.forbidden],
            "homework": str(self.homework),
            "private": sorted({str(Path(p).resolve()) for p in self.hide}),
            "require_isolation": bool(self.require_isolation),
            "landlock": bool(self.limits.confine),
        }
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(self._dir),
            "TMPDIR": str(self._dir),
            "LANG": "C.UTF-8",
            "OMP_NUM_THREADS": str(self.limits.threads),
            "MKL_NUM_THREADS": str(self.limits.threads),
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONHASHSEED": "0",
        }
        self._proc = subprocess.Popen(
            [sys.executable, "-I", "-m", "coursekit.grading.worker", json.dumps(config)],
            stdin=subprocess.DEVNULL,
            stdout=out_w,
            stderr=out_w,
            pass_fds=(req_r, resp_w),
            cwd=str(self._dir),
            env=env,
            start_new_session=True,
            close_fds=True,
        )
        self.starts += 1
        for fd in (req_r, resp_w, out_w):
            os.close(fd)
        self._drain = _OutputDrain(out_r, self.limits.output_limit)
        self._drain.start()
        self._buffer = b""
        try:
            hello = self._read_message(self.limits.import_timeout, what="importing submission.py")
        except CheckTimeout as err:
            self.import_failure = CheckTimeout(
                f"importing submission.py took longer than {self.limits.import_timeout:g} s "
                "(does it run something slow or loop forever at import time?)"
            )
            self.close()
            raise self.import_failure from err
        except CheckError as err:
            self.import_failure = CheckError(f"submission.py could not be imported: {err}")
            self.close()
            raise self.import_failure from err
        if hello.get("type") == "isolation_failed":
            error = hello.get("error") if isinstance(hello.get("error"), dict) else {}
            self.close()
            raise IsolationUnavailable(str(error.get("message", "isolation failed"))[:2000])
        self._record_usage("import", hello)
        if hello.get("type") == "import_error":
            self.import_failure = CheckError(
                "submission.py could not be imported: " + _format_error(hello.get("error"))
            )
            self.close()
            raise self.import_failure
        if hello.get("type") != "ready":
            self.import_failure = CheckError("the worker sent an unexpected first message")
            self.close()
            raise self.import_failure
        defences = hello.get("defences")
        self.defences = defences if isinstance(defences, dict) else {}

    def close(self) -> None:
        """Kill the worker (whole process group, and its uid's processes) and clean up."""
        proc = self._proc
        self._proc = None
        if proc is not None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            if self.uid is not None:
                kill_uid(self.uid)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        for fd in (self._req_w, self._resp_r):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._req_w = self._resp_r = -1
        if self._drain is not None:
            self._drain.join(timeout=2)
            self.output = (self.output + self._drain.text())[-4 * self.limits.output_limit :]
            self._drain = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def release_uid(self) -> None:
        """Give the private uid back (after :meth:`close`)."""
        if self._uid_lock >= 0:
            os.close(self._uid_lock)
        self._uid, self._uid_lock = None, -1

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
        self.release_uid()

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # --------------------------------------------------------------- messages
    def _record_usage(self, during: str, message: dict) -> None:
        """Append the worker's report of loaded / refused modules to :attr:`usage`.

        The worker is untrusted: only lists of short strings are kept.
        """

        def names(key: str) -> list[str]:
            value = message.get(key)
            if not isinstance(value, list):
                return []
            return [v[:200] for v in value[:500] if isinstance(v, str)]

        imports, forbidden = names("imports"), names("forbidden")
        if imports or forbidden:
            self.usage.append({"during": during, "imports": imports, "forbidden": forbidden})

    def _exit_description(self) -> str:
        proc = self._proc
        if proc is None:
            return "the worker is not running"
        try:
            code = proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            return "the worker stopped answering"
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            hint = " (often: out of memory)" if -code == signal.SIGKILL else ""
            return f"the process running your code was killed by {name}{hint}"
        return f"the process running your code exited with code {code} (sys.exit or os._exit?)"

    def _read_message(self, timeout: float, what: str) -> dict:
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CheckTimeout(f"{what} took longer than the time limit ({timeout:.3g} s)")
            ready, _, _ = select.select([self._resp_r], [], [], left)
            if not ready:
                continue
            chunk = os.read(self._resp_r, 1 << 20)
            if not chunk:
                raise CheckError(f"{self._exit_description()} while {what}")
            self._buffer += chunk
            if len(self._buffer) > MAX_MESSAGE_BYTES:
                raise CheckError(f"the result of {what} is larger than 256 MB")
        line, self._buffer = self._buffer.split(b"\n", 1)
        try:
            message = json.loads(line)
        except ValueError as err:
            raise CheckError(f"the worker sent a malformed message while {what}") from err
        if not isinstance(message, dict):
            raise CheckError(f"the worker sent a malformed message while {what}")
        return message

    def _await_reply(self, request_id: int, label: str, call: str, timeout: float) -> dict:
        """Wait for the reply to ``request_id``, enforcing the CPU limit and the backstop.

        Sets :attr:`last_cpu` to the CPU seconds the worker used meanwhile (wall
        seconds where ``/proc`` is unavailable).
        """
        pid = self._proc.pid if self._proc is not None else -1
        began_wall = time.monotonic()
        began_cpu = process_cpu_seconds(pid)
        backstop = timeout * self.limits.wall_factor + self.limits.wall_margin
        if began_cpu is None:  # no /proc: the limit is wall-clock time
            backstop = timeout

        def used() -> float:
            now = process_cpu_seconds(pid) if began_cpu is not None else None
            return now - began_cpu if now is not None else time.monotonic() - began_wall

        try:
            while True:
                wall = time.monotonic() - began_wall
                self.last_cpu = used()
                if self.last_cpu > timeout:
                    raise CheckTimeout(
                        f"{label} used more than the time limit of {timeout:.3g} s of CPU time; "
                        f"it was running {call} (infinite loop, or a much slower method than "
                        "needed?)"
                    )
                if wall > backstop:
                    raise CheckTimeout(
                        f"{label} ran past the wall-clock time limit of {backstop:.3g} s while "
                        f"using only {self.last_cpu:.3g} s of CPU (does it sleep or wait, or is "
                        f"the machine overloaded?); it was running {call}"
                    )
                step = min(0.1, backstop - wall, max(timeout - self.last_cpu, 0.01))
                try:
                    reply = self._read_message(max(step, 0.001), label)
                except CheckTimeout:
                    continue
                if reply.get("id") == request_id:
                    return reply
        finally:
            self.last_cpu = used()

    def call(self, name: str, args: tuple, kwargs: dict, *, seed: int, timeout: float):
        """Run ``name(*args, **kwargs)`` in the worker; return decoded plain data.

        ``timeout`` counts CPU seconds of the worker (see :class:`Limits` for
        the wall-clock backstop); :attr:`last_cpu` tells how many the call used.
        Raises :class:`CheckFailure` when the student's function raised or
        returned something that is not plain data, :class:`CheckTimeout` when it
        ran past ``timeout`` (the worker is killed; the message names the
        function and the shapes of its arguments) and :class:`CheckError` when
        the worker died.
        """
        self.last_startup = 0.0
        self.last_cpu = None
        if not self.alive:
            began = time.monotonic()
            self.start()
            self.last_startup = time.monotonic() - began
        request_id = self._next_id
        self._next_id += 1
        try:
            payload = {
                "id": request_id,
                "name": name,
                "args": encode(list(args)),
                "kwargs": encode(dict(kwargs)),
                "seed": int(seed),
            }
        except PlainDataError as err:
            raise TypeError(f"ctx.call({name!r}): arguments must be plain data: {err}") from err
        data = (json.dumps(payload, allow_nan=False) + "\n").encode()
        label = "calling " + (name.split(":", 1)[1] if name.startswith("harness:") else name)
        try:
            view = memoryview(data)
            while view:
                _, writable, _ = select.select([], [self._req_w], [], timeout)
                if not writable:
                    raise CheckTimeout(f"{label} took longer than the time limit ({timeout:.3g} s)")
                view = view[os.write(self._req_w, view[: 1 << 16]) :]
            reply = self._await_reply(request_id, label, describe_call(name, args, kwargs), timeout)
        except BrokenPipeError as err:
            message = f"{self._exit_description()} while {label}"
            self.close()
            raise CheckError(message) from err
        except CheckTimeout:
            self.close()
            raise
        except CheckError:
            self.close()
            raise
        self._record_usage(name, reply)
        if reply.get("ok") is True:
            try:
                return decode(reply.get("value"))
            except PlainDataError as err:
                raise CheckFailure(f"{name} returned data that could not be read: {err}") from err
        error = reply.get("error")
        if isinstance(error, dict) and error.get("type") == "BadReturnValue":
            raise CheckFailure(
                f"{name} returned something that is not plain data: {error.get('message')}"
            )
        raise CheckFailure(f"{name} raised " + _format_error(error))


def _format_error(error) -> str:
    if not isinstance(error, dict):
        return "an error"
    kind = str(error.get("type", "Exception"))[:100]
    message = str(error.get("message", ""))[:2000]
    where = str(error.get("where", ""))[:300]
    text = f"{kind}: {message}" if message else kind
    if where:
        text += f" ({where})"
    return text
