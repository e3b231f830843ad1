"""File-system allow-list for student code: Landlock (Linux >= 5.13) and a small seccomp filter.

Standard library only (the untrusted worker imports it). The worker calls
:func:`lock_down` after importing numpy/torch and before importing the
student's ``submission.py``; from then on its process (and every process it
starts) can

* read (and execute) only the Python installation, the folders of
  ``sys.path`` (site-packages), the course package (minus the homework's
  forbidden modules), a few system folders (``/usr/lib``, ``/usr/bin``, ...,
  ``/etc/ld.so.cache``), ``/proc``, ``/sys/devices/system/cpu`` and its own
  scratch folder;
* write, create and delete only inside its scratch folder (and write
  ``/dev/null``);
* not connect or bind TCP sockets (Landlock ABI >= 4), not signal processes
  outside the sandbox nor reach abstract unix sockets (ABI >= 6), not ptrace
  anything outside the sandbox (every ABI);
* not change owners, modes, times or extended attributes of any file, nor
  create ``AF_UNIX`` sockets (seccomp; Landlock does not cover metadata), on
  x86_64 and aarch64.

This is an allow-list: a copy of the reference solution anywhere else on the
machine (another checkout, a backup in ``/tmp``, a colleague's home) cannot be
read, whether the grader runs as root or as an ordinary user. Landlock needs
no privileges and survives ``setuid``; a sandboxed process cannot undo it, nor
mount or unmount anything.

:func:`available` reports what this machine offers (``coursekit doctor``);
:func:`require` is the trusted process's pre-flight check: grading refuses to
run without isolation unless the instructor says it is unsafe.
"""

from __future__ import annotations

import os
import sys

# --------------------------------------------------------------------- Landlock
SYS_CREATE_RULESET, SYS_ADD_RULE, SYS_RESTRICT_SELF = 444, 445, 446  # same on every arch
CREATE_RULESET_VERSION = 1
RULE_PATH_BENEATH = 1
PR_SET_NO_NEW_PRIVS = 38

FS_EXECUTE = 1 << 0
FS_WRITE_FILE = 1 << 1
FS_READ_FILE = 1 << 2
FS_READ_DIR = 1 << 3
FS_TRUNCATE = 1 << 14  # ABI 3
FS_IOCTL_DEV = 1 << 15  # ABI 5
FILE_RIGHTS = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV
READ = FS_EXECUTE | FS_READ_FILE | FS_READ_DIR
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1  # ABI 4
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1  # ABI 6

# System locations a Python process (and the programs it may start) needs to read.
SYSTEM_READ = [
    "/usr/lib", "/usr/lib64", "/usr/lib32", "/usr/libexec", "/usr/local/lib",
    "/usr/bin", "/usr/sbin", "/usr/local/bin", "/lib", "/lib64", "/bin", "/sbin",
    "/usr/share/zoneinfo", "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d",
    "/etc/localtime", "/etc/passwd", "/etc/group", "/etc/nsswitch.conf",
    "/proc", "/sys/devices/system/cpu", "/sys/devices/system/node", "/sys/fs/cgroup",
    "/dev/zero", "/dev/random", "/dev/urandom", "/dev/full",
]  # fmt: skip
SYSTEM_WRITE = ["/dev/null"]


class IsolationUnavailable(RuntimeError):
    """Student code cannot be isolated here and the instructor did not accept that."""


def _libc():
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return ctypes, libc


def landlock_abi() -> int:
    """The kernel's Landlock ABI version (0: not Linux, not compiled in or disabled)."""
    if not sys.platform.startswith("linux"):
        return 0
    try:
        ctypes, libc = _libc()
        abi = libc.syscall(
            ctypes.c_long(SYS_CREATE_RULESET), None, ctypes.c_size_t(0),
            ctypes.c_uint32(CREATE_RULESET_VERSION),
        )  # fmt: skip
    except (OSError, AttributeError):
        return 0
    return int(abi) if abi > 0 else 0


def _fs_handled(abi: int) -> int:
    handled = (1 << 13) - 1  # ABI 1: EXECUTE .. MAKE_SYM
    if abi >= 2:
        handled |= 1 << 13  # REFER
    if abi >= 3:
        handled |= FS_TRUNCATE
    if abi >= 5:
        handled |= FS_IOCTL_DEV
    return handled


def _inside(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip(os.sep) + os.sep)


class _Rules:
    """Collects ``(path, access)`` rules; folders containing a denied path are refined."""

    def __init__(self, deny: list[str], exclude: list[str]):
        self.deny = [os.path.realpath(p) for p in deny]
        # exclude: files/folders to leave out of allowed trees; a path ending in
        # "." stands for every file starting with it (compiled "<stem>.*.pyc")
        self.exclude = [
            os.path.realpath(p[:-1]) + "." if p.endswith(".") else os.path.realpath(p)
            for p in exclude
        ]
        self.rules: dict[str, int] = {}

    def _excluded(self, path: str) -> bool:
        return any(
            path.startswith(e) if e.endswith(".") else _inside(path, e) for e in self.exclude
        )

    def allow(self, path: str, access: int = READ) -> bool:
        """Allow ``access`` beneath ``path`` unless it is or contains a denied path."""
        real = os.path.realpath(path)
        if not os.path.exists(real) or any(_inside(real, d) for d in self.deny):
            return False
        if any(_inside(d, real) for d in self.deny):
            return False  # e.g. a course root on sys.path: see allow_loaded
        self._allow_tree(real, access)
        return True

    def _allow_tree(self, real: str, access: int) -> None:
        if self._excluded(real):
            return
        holds = [e for e in self.exclude if e.startswith(real + os.sep)]
        if not holds or not os.path.isdir(real):
            self.rules[real] = self.rules.get(real, 0) | access
            return
        self.rules[real] = self.rules.get(real, 0) | (access & FS_READ_DIR)
        try:
            children = os.listdir(real)
        except OSError:
            return
        for child in children:
            self._allow_tree(os.path.join(real, child), access)

    def allow_loaded(self, folder: str) -> None:
        """Only the top-level modules already imported from ``folder`` (it holds a denied path)."""
        folder = os.path.realpath(folder)
        for module in list(sys.modules.values()):
            file = getattr(module, "__file__", None)
            if not isinstance(file, str):
                continue
            real = os.path.realpath(file)
            if _inside(real, folder) and real != folder:
                top = os.path.join(folder, os.path.relpath(real, folder).split(os.sep)[0])
                self.allow(top)


def plan(scratch: str, deny: list[str], exclude: list[str]) -> dict[str, int]:
    """The rules of the worker's allow-list: ``{real path: access bits}``.

    Args:
        scratch: the only folder the student may write to.
        deny: folders that must stay unreadable even if they lie inside an
            allowed folder (``solutions/``, the output folder, other submissions).
        exclude: files and folders left out of allowed folders (the forbidden
            modules of the homework, see ``ImportGuard.paths``).
    """
    rules = _Rules(deny, exclude)
    roots = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix]
    roots += [p for p in sys.path if p]
    for module_name in ("coursekit", "numpy", "torch"):
        module = sys.modules.get(module_name)
        for folder in getattr(module, "__path__", []) or []:
            roots.append(folder)
    for root in roots:
        if os.path.isdir(root) and not rules.allow(root):
            rules.allow_loaded(root)
    for path in SYSTEM_READ:
        rules.allow(path)
    everything = _fs_handled(99)
    real_scratch = os.path.realpath(scratch)
    rules.rules[real_scratch] = everything
    for path in SYSTEM_WRITE:
        if os.path.exists(path):
            rules.rules[os.path.realpath(path)] = READ | FS_WRITE_FILE | FS_TRUNCATE | FS_IOCTL_DEV
    return rules.rules


def lock_down(scratch: str, deny: list[str], exclude: list[str]) -> dict:
    """Restrict this process (and its future children) to the allow-list of :func:`plan`.

    Returns a summary for the result's defences. Raises :class:`OSError` when
    Landlock is unavailable or a system call fails (the caller decides whether
    that is fatal).
    """
    abi = landlock_abi()
    if abi < 1:
        raise OSError("Landlock is not available on this kernel")
    ctypes, libc = _libc()
    fs = _fs_handled(abi)

    class RulesetAttr(ctypes.Structure):
        _fields_ = [("fs", ctypes.c_uint64), ("net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]

    class PathBeneath(ctypes.Structure):
        _pack_ = 1
        _fields_ = [("allowed", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]

    attr = RulesetAttr(fs, 0, 0)
    size = 8
    notes = ["file-system allow-list"]
    if abi >= 4:
        attr.net = NET_BIND_TCP | NET_CONNECT_TCP
        size = 16
        notes.append("TCP bind/connect denied")
    if abi >= 6:
        attr.scoped = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL
        size = 24
        notes.append("signals and abstract unix sockets scoped to the sandbox")

    def call(number, *args) -> int:
        result = libc.syscall(ctypes.c_long(number), *args)
        if result < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"landlock syscall {number}: {os.strerror(err)}")
        return int(result)

    rules = plan(scratch, deny, exclude)
    ruleset = call(
        SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0)
    )
    try:
        for path, access in sorted(rules.items()):
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                allowed = access & fs
                if not os.path.isdir(path):
                    allowed &= FILE_RIGHTS
                rule = PathBeneath(allowed, fd)
                call(
                    SYS_ADD_RULE, ctypes.c_int(ruleset), ctypes.c_int(RULE_PATH_BENEATH),
                    ctypes.byref(rule), ctypes.c_uint32(0),
                )  # fmt: skip
            finally:
                os.close(fd)
        if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"prctl(PR_SET_NO_NEW_PRIVS): {os.strerror(err)}")
        call(SYS_RESTRICT_SELF, ctypes.c_int(ruleset), ctypes.c_uint32(0))
    finally:
        os.close(ruleset)
    return {"abi": abi, "rules": len(rules), "write": [os.path.realpath(scratch)], "applies": notes}


# ---------------------------------------------------------------------- seccomp
_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
# chmod/chown/utime/xattr families, then socket (refused for AF_UNIX only)
_DENIED = {
    "x86_64": [90, 91, 92, 93, 94, 132, 235, 261, 260, 268, 280, 188, 189, 190, 197, 198, 199,
               452, 463, 466],
    "aarch64": [52, 53, 54, 55, 88, 5, 6, 7, 14, 15, 16, 452, 463, 466],
}  # fmt: skip
_SOCKET = {"x86_64": 41, "aarch64": 198}


def deny_metadata_changes() -> str:
    """seccomp filter: chmod/chown/utime/xattr calls and ``socket(AF_UNIX)`` fail with EPERM.

    Landlock controls reading and writing file contents, not metadata: without
    this a student running as the grader's user could make the course's files
    world-writable. Returns what was applied; raises :class:`OSError`.
    """
    import platform
    import struct

    machine = platform.machine()
    if not sys.platform.startswith("linux") or machine not in _AUDIT_ARCH:
        raise OSError(f"no seccomp filter for {sys.platform}/{machine}")
    ctypes, libc = _libc()
    ld_abs, jeq, jge, ret = 0x20, 0x15, 0x35, 0x06
    allow, eperm, enosys = 0x7FFF0000, 0x00050000 | 1, 0x00050000 | 38
    denied = _DENIED[machine]
    prog: list[tuple[int, int, int, int]] = [(ld_abs, 0, 0, 4)]  # arch
    prog.append((jeq, 1, 0, _AUDIT_ARCH[machine]))
    prog.append((ret, 0, 0, enosys))  # foreign ABI (i386 on x86_64)
    prog.append((ld_abs, 0, 0, 0))  # syscall number
    if machine == "x86_64":
        prog.append((jge, 0, 1, 0x40000000))  # x32 ABI
        prog.append((ret, 0, 0, enosys))
    for k, number in enumerate(denied):
        # jump to the EPERM return placed after the remaining tests
        remaining = len(denied) - k - 1
        prog.append((jeq, remaining + 4, 0, number))
    prog.append((jeq, 0, 2, _SOCKET[machine]))
    prog.append((ld_abs, 0, 0, 16))  # args[0] (low 32 bits, little endian)
    prog.append((jeq, 1, 0, 1))  # AF_UNIX
    prog.append((ret, 0, 0, allow))
    prog.append((ret, 0, 0, eperm))
    raw = b"".join(struct.pack("=HBBI", *insn) for insn in prog)
    buffer = ctypes.create_string_buffer(raw, len(raw))

    class Prog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = Prog(len(prog), ctypes.cast(buffer, ctypes.c_void_p))
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
    PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl(PR_SET_SECCOMP): {os.strerror(err)}")
    return "chmod/chown/utime/xattr and AF_UNIX sockets denied"


# ------------------------------------------------------------ what is available
def userns_available() -> bool:
    """Whether this process may create a user namespace (checked in a forked child)."""
    if not sys.platform.startswith("linux") or not hasattr(os, "fork"):
        return False
    pid = os.fork()
    if pid == 0:  # pragma: no cover  (child)
        code = 1
        try:
            _, libc = _libc()
            code = 0 if libc.unshare(0x10000000) == 0 else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.WEXITSTATUS(status) == 0 if os.WIFEXITED(status) else False


def available(check_userns: bool = True) -> dict:
    """What this machine offers the grading sandbox.

    ``check_userns=False`` skips the user-namespace probe (it forks).

    ``{"platform", "root", "landlock_abi", "isolated": bool, "mechanism": str,
    "protects": [...], "missing": [...]}``; ``isolated`` is True when student
    code can be confined to the allow-list (Landlock).
    """
    abi = landlock_abi()
    root = hasattr(os, "geteuid") and os.geteuid() == 0
    linux = sys.platform.startswith("linux")
    out: dict = {"platform": sys.platform, "root": root, "landlock_abi": abi}
    protects, missing = [], []
    if abi >= 1:
        protects.append(
            f"Landlock ABI {abi}: reads limited to an allow-list, writes to a scratch "
            "folder only, no ptrace outside the sandbox"
        )
        (protects if abi >= 4 else missing).append("TCP connect/bind denied (Landlock ABI >= 4)")
        (protects if abi >= 6 else missing).append(
            "signals/abstract sockets scoped (Landlock ABI >= 6)"
        )
    else:
        why = "not enabled in this kernel" if linux else f"Linux only, not {sys.platform}"
        missing.append(f"Landlock (file-system allow-list): {why}")
    if linux:
        protects.append("seccomp: no chmod/chown/xattr/utime, no AF_UNIX sockets")
        if root:
            protects.append("private uid per worker, network and mount namespaces")
        elif check_userns and userns_available():
            protects.append("network and mount namespaces (user namespace)")
        else:
            missing.append("user namespaces (network isolation)")
    out["isolated"] = abi >= 1
    out["mechanism"] = f"landlock ABI {abi}" if abi >= 1 else "none"
    out["protects"], out["missing"] = protects, missing
    return out


UNSAFE_FLAG = "--unsafe-no-isolation"
UNSAFE_ENV = "COURSEKIT_UNSAFE_NO_ISOLATION"


def require(unsafe: bool = False) -> dict:
    """Pre-flight check of the trusted process before grading.

    Returns :func:`available`'s report plus ``"unsafe"``. Raises
    :class:`IsolationUnavailable` when student code cannot be confined to the
    allow-list and neither ``unsafe`` nor the environment variable
    ``COURSEKIT_UNSAFE_NO_ISOLATION=1`` (for test suites on such machines) says
    to grade anyway.
    """
    unsafe = bool(unsafe) or os.environ.get(UNSAFE_ENV, "") == "1"
    report = {**available(check_userns=False), "unsafe": unsafe}
    if not report["isolated"] and not unsafe:
        raise IsolationUnavailable(
            "student code cannot be isolated on this machine ("
            + "; ".join(report["missing"])
            + "): it could read other copies of the solutions and, when you grade as an "
            "ordinary user, change your files. Grade on Linux >= 5.13 with Landlock enabled "
            f"(see `coursekit doctor`), or pass {UNSAFE_FLAG} (or set {UNSAFE_ENV}=1) to grade "
            "anyway"
        )
    return report


def describe(defences: dict, unsafe: bool) -> str:
    """One line for reports: the protections a worker actually applied."""
    parts = []
    landlock = defences.get("landlock")
    if isinstance(landlock, dict):
        applies = ", ".join(landlock.get("applies", []))
        parts.append(f"landlock ABI {landlock.get('abi')} ({applies})")
    else:
        parts.append(f"NO file-system allow-list ({landlock or 'landlock not applied'})")
    if isinstance(defences.get("seccomp"), str) and "denied" in defences["seccomp"]:
        parts.append("seccomp")
    if defences.get("namespaces") == "net+mount":
        parts.append("net+mount namespaces")
    user = str(defences.get("user", ""))
    if user.startswith("uid "):
        parts.append(f"private {user.split(' gid')[0]}")
    text = " + ".join(parts)
    return text + (f" [graded with {UNSAFE_FLAG}]" if unsafe else "")


def doctor_row() -> tuple[bool, str]:
    """``(isolated, detail)`` for ``coursekit doctor``'s "grading isolation" row."""
    report = available()
    who = "as root" if report["root"] else "as this user"
    if report["isolated"]:
        detail = f"{report['mechanism']} {who}: " + "; ".join(report["protects"])
        if report["missing"]:
            detail += " (not available: " + "; ".join(report["missing"]) + ")"
        return True, detail
    return False, (
        f"none {who} ({'; '.join(report['missing'])}); `coursekit grade` refuses to run "
        f"without {UNSAFE_FLAG} (students' `coursekit check` is unaffected)"
    )
