"""The sandbox worker: runs ONE student's submission in its own process.

Started by the trusted grader as ``python -I -m coursekit.grading.worker CONFIG``
(``CONFIG`` is a JSON object, see :func:`main`). It

1. imports numpy and torch (as the invoking user),
2. hardens itself (:func:`harden`): new network and mount namespaces where the
   OS allows, empty tmpfs over the paths it must not see (``solutions/``, the
   output folder, other submissions), resource limits (address space, number
   of processes, file size, no core dumps) and, when started as root, drops to
   an unprivileged uid with no groups,
3. confines itself to a file-system allow-list (:func:`confine`: Landlock,
   reads limited to the Python installation, site-packages and the course
   package, writes to its scratch folder only; seccomp against chmod/chown;
   see :mod:`coursekit.grading.isolation`) and, when the trusted process
   requires isolation, stops with ``{"type": "isolation_failed"}`` if that
   failed,
4. installs :class:`ImportGuard` (an audit hook that records every module
   loaded from now on and refuses the homework's forbidden modules), imports
   ``submission`` from its private sandbox folder, then
5. answers requests ``{"id", "name", "args", "kwargs", "seed"}`` read from the
   request pipe with ``{"id", "ok": true, "value"}`` or
   ``{"id", "ok": false, "error": {"type", "message", "where"}}`` written to the
   response pipe, one JSON document per line. Every reply (and the first
   message, about the import) also carries ``"imports"`` (modules loaded
   meanwhile) and ``"forbidden"`` (forbidden modules the code tried to use).

Everything that crosses the boundary uses the wire format of
:mod:`coursekit.grading.wire` (JSON; numpy arrays as base64 with a whitelisted
numeric dtype; no pickle). Each call runs with Python, NumPy and torch seeded by
:func:`coursekit.runtime.seed_everything`, exactly as the reference runs.

Of :mod:`coursekit.grading` this module imports only :mod:`~coursekit.grading.wire`
and :mod:`~coursekit.grading.isolation` (standard library only); it never imports the
grader, the checks or the reference.
"""

from __future__ import annotations

import json
import os
import sys
import traceback

# isolation is imported now: after dropping privileges the package may be unreadable
from coursekit.grading import isolation
from coursekit.grading.wire import PlainDataError, decode, encode
from coursekit.runtime import seed_everything

# ---------------------------------------------------------------------- hardening
CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 0x4000
MS_PRIVATE = 0x40000


def _blocking_ancestor(path: str) -> str | None:
    """The highest folder above ``path`` that other users cannot traverse."""
    import stat

    parts = os.path.realpath(path).split(os.sep)
    for i in range(2, len(parts) + 1):
        folder = os.sep.join(parts[:i]) or os.sep
        try:
            mode = os.stat(folder).st_mode
        except OSError:
            return None
        if not mode & stat.S_IXOTH:
            return folder
    return None


def _expose_interpreter() -> list[str]:
    """Make the Python installation reachable after dropping privileges.

    When the interpreter lives in a folder other users cannot enter (pyenv under
    ``/root`` is common in containers), cover that folder with a read-only
    tmpfs that contains only read-only bind mounts of what Python needs. Runs
    inside the worker's private mount namespace, so nothing changes outside.
    """
    needed = {os.path.realpath(p) for p in [sys.prefix, sys.base_prefix, *sys.path] if p}
    needed = {p for p in needed if os.path.isdir(p)}
    needed = {p for p in needed if not any(p != q and p.startswith(q + os.sep) for q in needed)}
    groups: dict[str, list[str]] = {}
    for path in needed:
        blocker = _blocking_ancestor(path)
        if blocker is not None and blocker != path:
            groups.setdefault(blocker, []).append(path)
    exposed = []
    for blocker, paths in sorted(groups.items()):
        fds = {p: os.open(p, os.O_RDONLY | os.O_DIRECTORY) for p in paths}
        try:
            err = _mount(b"tmpfs", blocker.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, b"mode=755")
            if err is not None:
                continue
            for path, fd in sorted(fds.items()):
                os.makedirs(path, mode=0o755, exist_ok=True)
                src = f"/proc/self/fd/{fd}".encode()
                if _mount(src, path.encode(), None, MS_BIND | MS_REC, None) is None:
                    _mount(b"none", path.encode(), None, MS_BIND | MS_REMOUNT | MS_RDONLY, None)
                    exposed.append(path)
            _mount(b"none", blocker.encode(), None, MS_REMOUNT | MS_RDONLY, None)
        finally:
            for fd in fds.values():
                os.close(fd)
    return exposed


def _unshare(flags: int) -> str | None:
    """``unshare(2)``; returns None on success or the error text."""
    if hasattr(os, "unshare"):  # Python 3.12+
        try:
            os.unshare(flags)
            return None
        except OSError as err:
            return str(err)
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(flags) != 0:
            return os.strerror(ctypes.get_errno())
        return None
    except (OSError, AttributeError) as err:
        return str(err)


def _mount(source: bytes, target: bytes, fstype: bytes | None, flags: int, opts: bytes | None):
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mount(source, target, fstype, flags, opts) != 0:
        return os.strerror(ctypes.get_errno())
    return None


def _cover(paths: list[str]) -> list[str]:
    """Make forbidden modules' files empty for every process of this mount namespace.

    A folder gets an empty read-only tmpfs, a file a read-only bind mount of
    ``/dev/null``; a path ending in ``.`` stands for the compiled files
    ``<path>*.pyc``. This stops what the audit hook cannot see: another
    program started by the student reading the module. Returns what was covered.
    """
    import glob

    covered = []
    for path in paths:
        targets = sorted(glob.glob(glob.escape(path) + "*.pyc")) if path.endswith(".") else [path]
        for target in targets:
            if os.path.isdir(target):
                flags = MS_RDONLY | MS_NOSUID | MS_NODEV
                err = _mount(b"tmpfs", os.fsencode(target), b"tmpfs", flags, b"size=4k,mode=555")
            elif os.path.isfile(target):
                err = _mount(b"/dev/null", os.fsencode(target), None, MS_BIND, None)
                if err is None:
                    flags = MS_BIND | MS_REMOUNT | MS_RDONLY
                    _mount(b"none", os.fsencode(target), None, flags, None)
            else:
                continue
            if err is None:
                covered.append(target)
    return covered


def harden(config: dict) -> dict:
    """Apply every defence this OS allows; return what was applied (for the report).

    ``config`` keys: ``hide`` (paths to cover with an empty read-only tmpfs),
    ``cover`` (forbidden modules' files, see :func:`_cover`),
    ``mem_bytes`` (RLIMIT_AS), ``nproc`` (RLIMIT_NPROC), ``fsize_bytes``
    (RLIMIT_FSIZE), ``uid``/``gid`` (used when running as root). Failures are
    recorded, not raised: the sandbox degrades to what the OS offers.
    """
    applied: dict = {}
    is_linux = sys.platform.startswith("linux")
    is_root = hasattr(os, "geteuid") and os.geteuid() == 0
    if is_linux:
        flags = CLONE_NEWNET | CLONE_NEWNS
        err = _unshare(flags if is_root else flags | CLONE_NEWUSER)
        applied["namespaces"] = "net+mount" if err is None else f"unavailable ({err})"
        if err is None:
            err = _mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None)
            hidden = []
            for path in config.get("hide", []):
                if err is None and os.path.isdir(path):
                    err = _mount(
                        b"tmpfs",
                        os.fsencode(path),
                        b"tmpfs",
                        MS_RDONLY | MS_NOSUID | MS_NODEV,
                        b"size=4k,mode=000",
                    )
                    if err is None:
                        hidden.append(path)
            applied["hidden_paths"] = hidden if err is None else f"failed ({err})"
            if err is None and is_root and config.get("uid") is not None:
                applied["exposed_read_only"] = _expose_interpreter()
            if err is None and config.get("cover"):
                applied["covered_forbidden"] = _cover(config["cover"])
    else:
        applied["namespaces"] = f"unavailable on {sys.platform}"
    import resource

    def limit(name: str, value: int | None) -> None:
        if value is None or not hasattr(resource, name):
            return
        try:
            resource.setrlimit(getattr(resource, name), (value, value))
            applied[name] = value
        except (ValueError, OSError) as err:
            applied[name] = f"failed ({err})"

    limit("RLIMIT_CORE", 0)
    limit("RLIMIT_AS", config.get("mem_bytes"))
    limit("RLIMIT_FSIZE", config.get("fsize_bytes"))
    if is_root and config.get("uid") is not None:
        try:
            # NPROC counts per real uid: set it after choosing the uid but before
            # switching, so the limit applies to the new (unprivileged) user.
            limit("RLIMIT_NPROC", config.get("nproc"))
            os.setgroups([])
            os.setgid(int(config["gid"]))
            os.setuid(int(config["uid"]))
            applied["user"] = f"uid {os.getuid()} gid {os.getgid()}"
        except OSError as err:
            applied["user"] = f"could not drop privileges ({err})"
    else:
        # Without a private uid, RLIMIT_NPROC would count all of this user's
        # processes and threads, so it is left alone (the process group is killed).
        applied["user"] = f"unchanged (uid {os.getuid()})" if hasattr(os, "getuid") else "n/a"
    return applied


def confine(sandbox: str, private: list[str], forbidden_files: list[str]) -> dict:
    """Landlock allow-list and seccomp filter (:mod:`coursekit.grading.isolation`).

    From here on the process reads only the Python installation, site-packages,
    the course package minus ``forbidden_files`` and a few system files, and
    writes only inside ``sandbox``; ``private`` folders (``solutions/``, the
    output folder, other submissions) stay unreadable even where they lie
    inside an allowed folder. Returns ``{"landlock": ..., "seccomp": ...}``:
    what was applied, or ``"failed (...)"``.
    """
    applied: dict = {}
    try:
        applied["landlock"] = isolation.lock_down(sandbox, private, forbidden_files)
    except OSError as err:
        applied["landlock"] = f"failed ({err})"
    try:
        applied["seccomp"] = isolation.deny_metadata_changes()
    except OSError as err:
        applied["seccomp"] = f"failed ({err})"
    return applied


# ------------------------------------------------------------- forbidden modules
class ImportGuard:
    """Audit hook that records imports and refuses the homework's forbidden modules.

    Installed with :func:`sys.addaudithook` (which cannot be removed) before the
    submission is imported. Every ``import`` audit event (raised when a module
    is actually loaded by ``import``, ``from ... import`` or ``__import__``)
    is recorded. Loading a forbidden module (or a submodule of one) raises
    :class:`ImportError`: from the hook, or from this object as the first
    finder on :data:`sys.meta_path` (:func:`importlib.import_module` raises no
    ``import`` event); opening one of its files raises :class:`PermissionError`
    (reading the source to ``exec`` it).
    :meth:`take` returns and clears what happened since the last call, so the
    worker can report it with the import of the submission and with each call.

    Args:
        forbidden: module names, e.g. ``["coursekit.probability"]``.
        homework: the homework's id, for the message.
    """

    def __init__(self, forbidden: list[str], homework: str):
        import importlib.util

        self.forbidden = tuple(str(name) for name in forbidden)
        self.homework = homework
        self.paths: dict[str, str] = {}  # file or package folder -> forbidden module
        for name in self.forbidden:
            try:
                spec = importlib.util.find_spec(name)
            except (ImportError, ValueError):
                spec = None
            if spec is None or not spec.origin or not os.path.isfile(spec.origin):
                continue
            origin = os.path.realpath(spec.origin)
            if spec.submodule_search_locations:
                self.paths[os.path.dirname(origin)] = name
            else:
                self.paths[origin] = name
                stem = os.path.splitext(os.path.basename(origin))[0]
                self.paths[os.path.join(os.path.dirname(origin), "__pycache__", stem + ".")] = name
        self.imports: list[str] = []
        self.used: list[str] = []
        self.known: set[str] = set()

    def install(self) -> None:
        """Start recording: remember what is loaded now, add the audit hook and the finder."""
        self.known = set(sys.modules)
        sys.addaudithook(self)
        sys.meta_path.insert(0, self)

    def find_spec(self, name: str, path=None, target=None) -> None:
        """Import-system finder: refuses forbidden modules, finds nothing else.

        :func:`importlib.import_module` raises no ``import`` audit event and the
        covered files are not found by the normal finders, so this is where such
        an attempt is recorded.
        """
        hit = self.match(name)
        if hit is not None:
            self.used.append(hit)
            raise ImportError(self.refuse(hit))

    def match(self, module: str) -> str | None:
        """The forbidden module that ``module`` is (or is inside), else None."""
        for name in self.forbidden:
            if module == name or module.startswith(name + "."):
                return name
        return None

    def match_path(self, path: str) -> str | None:
        """The forbidden module whose source or compiled file ``path`` is, else None."""
        real = os.path.realpath(path)
        for prefix, name in self.paths.items():
            if real == prefix or real.startswith(prefix if prefix.endswith(".") else prefix + "/"):
                return name
        return None

    def refuse(self, name: str) -> str:
        """The student-facing message for using ``name``."""
        return (
            f"{name} may not be used in {self.homework}: its tasks must be implemented, "
            "not delegated to the course library (a task whose code uses it scores 0)"
        )

    def __call__(self, event: str, args: tuple) -> None:
        """The audit hook."""
        if event == "import" and args and isinstance(args[0], str):
            self.imports.append(args[0])
            hit = self.match(args[0])
            if hit is not None:
                self.used.append(hit)
                raise ImportError(self.refuse(hit))
        elif event == "open" and self.paths and args and isinstance(args[0], (str, bytes)):
            hit = self.match_path(os.fsdecode(args[0]))
            if hit is not None:
                self.used.append(hit)
                raise PermissionError(self.refuse(hit))

    def take(self) -> dict:
        """``{"imports": [...], "forbidden": [...]}`` since the last call (each name once).

        Besides the audit events, modules that appeared in ``sys.modules``
        meanwhile count as imported (:func:`importlib.import_module` loads
        without an ``import`` event; opening a forbidden file is refused anyway).
        """
        loaded = [name for name in list(sys.modules) if name not in self.known]
        self.known.update(loaded)
        for name in loaded:
            hit = self.match(name)
            if hit is not None:
                self.used.append(hit)
        out = {
            "imports": list(dict.fromkeys(self.imports + loaded))[:500],
            "forbidden": list(dict.fromkeys(self.used)),
        }
        self.imports, self.used = [], []
        return out


# ------------------------------------------------------------------ student calls
def _where(tb, student_files: set[str]) -> str:
    """``submission.py, line 12: <code>`` for the innermost frame in a student file."""
    found = ""
    for frame in traceback.extract_tb(tb):
        if os.path.realpath(frame.filename) in student_files:
            code = (frame.line or "").strip()
            found = f"{os.path.basename(frame.filename)}, line {frame.lineno}"
            if code:
                found += f": {code[:200]}"
    return found


def _error(exc: BaseException, student_files: set[str]) -> dict:
    message = str(exc)
    if isinstance(exc, SyntaxError) and exc.filename:
        where = f"{os.path.basename(exc.filename)}, line {exc.lineno}"
        if exc.text:
            where += f": {exc.text.strip()[:200]}"
        message = exc.msg
    else:
        where = _where(exc.__traceback__, student_files)
    return {"type": type(exc).__name__, "message": message[:2000], "where": where}


def _send(fd: int, message: dict) -> None:
    data = (json.dumps(message, allow_nan=False, separators=(",", ":")) + "\n").encode()
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def main(argv: list[str] | None = None) -> int:
    """Worker entry point; ``argv[0]`` is the JSON config.

    Config keys: ``sandbox`` (folder holding ``submission.py`` and optionally
    ``harness.py``), ``request_fd``/``response_fd`` (pipe ends), ``threads``
    (torch intra-op threads) and the keys of :func:`harden`.
    """
    argv = sys.argv[1:] if argv is None else argv
    config = json.loads(argv[0])
    req_fd, resp_fd = int(config["request_fd"]), int(config["response_fd"])
    # Student code gets /dev/null as stdin; the pipes stay on private fds.
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)

    import numpy  # noqa: F401  (imported before hardening: needs no extra rights later)
    import torch

    torch.set_num_threads(int(config.get("threads", 1)))
    seed_everything(0)  # loads numpy.random now, so the guard does not blame it on the student
    guard = ImportGuard(config.get("forbidden", []), str(config.get("homework", "this homework")))
    applied = harden({**config, "cover": sorted(guard.paths)})
    sandbox = os.path.realpath(config["sandbox"])
    os.chdir(sandbox)
    os.environ["HOME"] = sandbox
    sys.path.insert(0, sandbox)
    sys.dont_write_bytecode = True  # (-I ignores PYTHONDONTWRITEBYTECODE)
    student_files = {os.path.join(sandbox, "submission.py"), os.path.join(sandbox, "harness.py")}
    if config.get("landlock", True):
        applied.update(confine(sandbox, config.get("private", []), sorted(guard.paths)))
    if config.get("require_isolation") and not isinstance(applied.get("landlock"), dict):
        message = f"student code could not be isolated: landlock {applied.get('landlock')}"
        _send(resp_fd, {"type": "isolation_failed", "error": {"message": message[:2000]}})
        return 4
    guard.install()
    applied["forbidden_modules"] = list(guard.forbidden)

    try:
        import submission  # noqa: F401  (the student's module)
    except BaseException as exc:  # noqa: BLE001  (SystemExit at import is the student's bug)
        error = _error(exc, student_files)
        _send(resp_fd, {"type": "import_error", "error": error, **guard.take()})
        return 3
    _send(resp_fd, {"type": "ready", "defences": applied, "pid": os.getpid(), **guard.take()})

    reader = os.fdopen(req_fd, "rb", buffering=0)
    buffer = b""
    while True:
        while b"\n" not in buffer:
            chunk = reader.read(1 << 20)
            if not chunk:
                return 0
            buffer += chunk
        line, buffer = buffer.split(b"\n", 1)
        request = json.loads(line)
        reply: dict = {"id": request["id"]}
        try:
            name = request["name"]
            if name.startswith("harness:"):
                import harness  # the homework's released harness, runs here with the student

                func = getattr(harness, name.split(":", 1)[1], None)
            else:
                func = getattr(submission, name, None)
            if not callable(func):
                raise AttributeError(f"submission.py does not define a function {name!r}")
            args = decode(request["args"], to_torch=True)
            kwargs = decode(request["kwargs"], to_torch=True)
            seed_everything(int(request["seed"]))
            value = func(*args, **kwargs)
            try:
                reply["value"] = encode(value)
                reply["ok"] = True
            except PlainDataError as exc:
                reply["ok"] = False
                reply["error"] = {"type": "BadReturnValue", "message": str(exc), "where": ""}
        except BaseException as exc:  # noqa: BLE001  (SystemExit/KeyboardInterrupt included)
            reply["ok"] = False
            reply["error"] = _error(exc, student_files)
        reply.update(guard.take())
        try:
            _send(resp_fd, reply)
        except (ValueError, TypeError) as exc:  # e.g. NaN slipped into an error message
            _send(
                resp_fd,
                {
                    "id": request["id"],
                    "ok": False,
                    "error": {"type": "BadReturnValue", "message": str(exc), "where": ""},
                    "imports": reply["imports"],
                    "forbidden": reply["forbidden"],
                },
            )


if __name__ == "__main__":
    sys.exit(main())
