"""Where a submission's code runs: resource limits and, when the grader is root, a box.

Both sides of the process boundary use this file. The grader builds a
configuration (:func:`configure`); ``child.py`` hands it to :func:`enter`
before it runs a single line of the submission. This file imports only the
standard library, because the child loads it as a plain script module, without
importing the rest of coursekit.

Every submission gets :class:`Limits`: address space, CPU time, processes,
file size, and (as root) the size of its private ``/tmp``. When the grader runs
as root, :func:`enter` also

1. moves the process into new mount, network, IPC and UTS namespaces: no
   network at all (not even loopback), and a view of the filesystem of its own;
2. in that view, covers with empty read-only ``tmpfs`` mounts every path to hide
   (the solutions folder, the repository's ``.git``, the submissions and output
   folders, ``/run``) and every folder that others may not traverse (such as
   ``/root`` when Python lives in ``/root/.pyenv``), putting back inside them
   only what Python needs (its installation, ``site-packages``, coursekit);
   ``/tmp``, ``/var/tmp`` and ``/dev/shm`` become small private ``tmpfs``;
   ``/proc`` is mounted again with ``hidepid=invisible``, so the process sees
   only its own processes, not the grader's command line; everything else is
   remounted read-only;
3. drops to an unprivileged user of its own, uid ``SANDBOX_UID_BASE + pid``
   (no account has such a uid; :func:`sandbox_uid` checks), with no groups and
   ``no_new_privs`` (set-uid programs cannot give root back). One uid per
   submission means that concurrent submissions cannot signal, trace or
   exhaust the process quota of one another, and that the grader can end
   every process a submission left behind with :func:`kill_user`.

When namespaces are not available (a container without ``CAP_SYS_ADMIN``) step 3
still happens and the report says what is missing. When the grader is not root,
only the limits apply: the submission runs as the grader's user. See
``docs/grading.md`` for what each mode guarantees.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import math
import os
import signal
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

if os.name == "posix":
    import grp
    import pwd
    import resource

__all__ = [
    "SANDBOX_UID_BASE",
    "Limits",
    "SandboxError",
    "configure",
    "enter",
    "kill_user",
    "sandbox_uid",
]

SANDBOX_UID_BASE = 2_000_000_000
SCRATCH = ("/tmp", "/var/tmp", "/dev/shm")
ALWAYS_HIDDEN = ("/run",)
WORKDIR = "/tmp/submission"

_CLONE_NEWNS = 0x00020000
_CLONE_NEWUTS = 0x04000000
_CLONE_NEWIPC = 0x08000000
_CLONE_NEWNET = 0x40000000
_MS_RDONLY = 1
_MS_NOSUID = 2
_MS_NODEV = 4
_MS_NOEXEC = 8
_MS_REMOUNT = 32
_MS_BIND = 4096
_MS_REC = 16384
_MS_PRIVATE = 1 << 18
_MNT_DETACH = 2
_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}.get(os.uname().machine, -1) \
    if os.name == "posix" else -1
_PR_SET_PDEATHSIG = 1
_PR_SET_NO_NEW_PRIVS = 38
_LIMIT_NAMES = ({resource.RLIMIT_AS: "memory", resource.RLIMIT_CPU: "CPU time",
                 resource.RLIMIT_FSIZE: "file size", resource.RLIMIT_NPROC: "processes",
                 resource.RLIMIT_CORE: "core dumps"} if os.name == "posix" else {})


class SandboxError(RuntimeError):
    """The grader could not set up the process a submission runs in."""


@dataclass(frozen=True)
class Limits:
    """What one submission's process may use.

    Parameters
    ----------
    memory_mb : int
        Address space (``RLIMIT_AS``) in MiB that the submission may map beyond what
        its process holds when its first cell starts (Python, NumPy and, in a warm
        start, the modules the grader loaded for it: :mod:`.zygote`), so the same
        notebook has the same room either way. It counts what is mapped, not only
        what is touched: a notebook that imports torch itself maps about 3 GiB.
    cpu_seconds : float, optional
        CPU time (``RLIMIT_CPU``); by default the submission's wall-clock timeout.
    processes : int
        Processes and threads (``RLIMIT_NPROC``) beyond those the user already
        runs (as root, the submission's own user runs none).
    file_mb : int
        Largest file the process may write (``RLIMIT_FSIZE``).
    disk_mb : int
        Size of each private ``tmpfs`` (``/tmp``, which holds the working folder,
        ``/var/tmp``, ``/dev/shm``) when running as root.
    """

    memory_mb: int = 6144
    cpu_seconds: float | None = None
    processes: int = 64
    file_mb: int = 64
    disk_mb: int = 512

    def __post_init__(self) -> None:
        for name in ("memory_mb", "processes", "file_mb", "disk_mb"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        cpu = self.cpu_seconds
        if cpu is not None and (isinstance(cpu, bool) or not isinstance(cpu, (int, float))
                                or not math.isfinite(cpu) or cpu <= 0):
            raise ValueError(f"cpu_seconds must be a positive number or None, got {cpu!r}")


def sandbox_uid(pid: int) -> int:
    """The uid (and gid) a submission whose process is ``pid`` runs as, when root.

    Raises
    ------
    SandboxError
        If an account or group already has that number.
    """
    uid = SANDBOX_UID_BASE + pid
    for lookup, what in ((pwd.getpwuid, "user"), (grp.getgrgid, "group")):
        with contextlib.suppress(KeyError):
            raise SandboxError(f"uid {uid} is taken by the {what} {lookup(uid)[0]!r}; "
                               f"coursekit needs {SANDBOX_UID_BASE} and above to be free")
    return uid


def kill_user(uid: int) -> None:
    """SIGKILL every process of ``uid``: what a submission started, even in another session.

    ``kill(-1)`` sent as that user reaches exactly the processes it may signal:
    its own. (The shell that sends it has the grader's unlimited process quota,
    so a submission at its limit cannot stop it.)
    """
    subprocess.run(["/bin/sh", "-c", "kill -9 -1"], user=uid, group=uid, extra_groups=[],
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=False, timeout=30)


def configure(limits: Limits, *, cpu_seconds: float, uid: int | None, workdir: str,
              hide: list[str], package_dir: str) -> dict:
    """The plain-data configuration :func:`enter` takes (sent to the child as JSON).

    ``uid`` is None when the submission runs as the grader's own user; ``workdir``
    is its working folder when no private ``/tmp`` can be made; ``hide`` lists
    the paths it must not see; ``package_dir`` is coursekit's folder, kept visible.
    """
    return {"limits": {**asdict(limits), "cpu_seconds": cpu_seconds}, "uid": uid,
            "workdir": workdir, "hide": sorted(hide), "package_dir": package_dir}


# The child's side ---------------------------------------------------------------------

def enter(config: dict) -> dict:
    """Set up this process as ``config`` says; return a report of what holds.

    Called once by ``child.py`` before any submitted code runs. The report has
    ``user`` (the uid, or ``"grader"``), ``namespaces``, ``network``
    (``"off"``/``"on"``), ``processes`` (``"own"``/``"all"``: which others it
    can see), ``hidden`` (the paths covered) and ``unenforced`` (limits the
    system refused).

    Raises
    ------
    SandboxError
        If a step that should work fails, or the unprivileged user could not
        read what Python needs.
    """
    uid = config["uid"]
    report = {"user": "grader" if uid is None else uid, "namespaces": False, "network": "on",
              "processes": "all", "view": "host", "visible": [], "hidden": []}
    workdir = config["workdir"]
    # Caches and temporary files (matplotlib's font list...) go to the private folder
    # the process started in, never into a student's homework folder (``check``).
    private = os.getcwd()
    needed = _needed_paths(config["package_dir"])
    seccomp = _seccomp() if uid is not None else None  # loaded while the host is in view
    if uid is not None and _unshare(_CLONE_NEWNS | _CLONE_NEWNET | _CLONE_NEWIPC | _CLONE_NEWUTS):
        report.update(namespaces=True, network="off")
        try:
            report["visible"], report["hidden"], own = _allow_list_view(config, needed, uid)
            report["view"] = "allow-list"
        except SandboxError as exc:  # e.g. a root file system pivot_root cannot leave
            report["view"] = f"deny-list (no allow-list view: {exc})"
            report["hidden"] = _private_view(config, needed)
            own = _remount_proc()
        if own:
            report["processes"] = "own"
        workdir = WORKDIR
        os.mkdir(workdir, 0o700)
        os.chown(workdir, uid, uid)
    report["unenforced"] = _set_limits(config["limits"], own_processes=0 if uid is not None
                                       else _count_own_tasks(), mapped=_mapped_bytes())
    if uid is not None:
        _become(uid)
        report["syscalls"] = _filter_syscalls(seccomp)
        unreadable = [p for p in needed if not os.access(p, os.R_OK)]
        if unreadable:
            raise SandboxError(
                f"the unprivileged user (uid {uid}) cannot read {', '.join(unreadable)}, which "
                "Python needs: make them readable by others, or grade where the grader can "
                "create namespaces (root with CAP_SYS_ADMIN)")
    if uid is not None:
        private = workdir  # the sandbox's own tmpfs
    os.chdir(workdir)
    os.environ.update(HOME=private, TMPDIR=private, MPLCONFIGDIR=private)
    return report


@functools.cache
def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                           ctypes.c_char_p]
    return libc


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise SandboxError(f"{what} failed: {os.strerror(errno)}")


def _bytes(text: str | None) -> bytes | None:
    return None if text is None else os.fsencode(text)


def _mount(source: str | None, target: str, fstype: str | None, flags: int,
           data: str | None = None) -> None:
    _check(_libc().mount(_bytes(source), _bytes(target), _bytes(fstype), flags, _bytes(data)),
           f"mount {target}")


def _unshare(flags: int) -> bool:
    """Enter new namespaces; False where the system does not allow it."""
    if not sys.platform.startswith("linux"):
        return False
    if _libc().unshare(flags) != 0:
        return False
    _mount(None, "/", None, _MS_REC | _MS_PRIVATE)  # nothing done here reaches the host
    return True


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _needed_paths(package_dir: str) -> list[str]:
    """Folders the submission's Python must read: its installation, packages, coursekit."""
    grader_root = str(Path(package_dir).parent)
    paths = {sys.base_prefix, sys.base_exec_prefix, sys.prefix, sys.exec_prefix,
             os.path.dirname(sys.executable), package_dir}
    paths |= {p for p in sys.path[1:] if p and p != grader_root}  # [0] is child.py's folder
    found = set()
    for path in paths:
        for variant in (os.path.abspath(path), os.path.realpath(path)):
            if os.path.exists(variant):
                found.add(variant)
    return sorted(found)


def _blocked_ancestors(path: str) -> list[str]:
    """Folders above ``path`` that users other than their owner may not enter."""
    blocked, parent = [], os.path.dirname(path)
    while parent != "/":
        if not os.stat(parent).st_mode & 0o001:
            blocked.append(parent)
        parent = os.path.dirname(parent)
    return blocked


SYSTEM_PATHS = ("/usr/lib", "/usr/lib64", "/usr/lib32", "/usr/libx32", "/usr/share/fonts",
                "/usr/share/zoneinfo", "/lib", "/lib64", "/lib32", "/libx32",
                "/etc/ld.so.cache", "/etc/localtime", "/sys/devices/system/cpu")
"""What a box shows of the system besides Python: shared libraries and the loader's
cache, fonts and time zones, the CPU topology (read by torch's cpuinfo). A path that
is a symbolic link on the host (``/lib`` on a merged-/usr system) is the same link."""
DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")


def _allow_list_view(config: dict, needed: list[str], uid: int) -> tuple[list[str], list[str],
                                                                          bool]:
    """Make this process's root a new, read-only ``tmpfs`` holding only what it needs.

    Into it go, read-only and at their own paths, ``needed`` (Python, its packages,
    coursekit) and :data:`SYSTEM_PATHS`; the :data:`DEVICES`; a ``/proc`` showing only
    its user's processes; an ``/etc`` with only the loader's cache and ``passwd`` and
    ``group`` naming root and the box's user; and private ``tmpfs`` scratch space for
    ``/tmp``, ``/var/tmp`` and ``/dev/shm``. Nothing else of the host exists inside:
    the old root is detached after ``pivot_root``. A path of ``config["hide"]`` that is
    inside one of those is covered as well.

    Returns the host paths made visible, those covered, and whether ``/proc`` shows
    only its own processes.
    """
    sources = sorted({p for p in (*needed, *SYSTEM_PATHS, *DEVICES) if os.path.lexists(p)})
    links = {p: os.readlink(p) for p in sources if os.path.islink(p)}
    # handles first: a source may lie under a folder the new view covers (/tmp, say)
    handles = {p: os.open(p, os.O_PATH) for p in sources if p not in links}
    root = os.path.join(os.getcwd(), "box")
    os.mkdir(root, 0o755)
    flags = _MS_NOSUID | _MS_NODEV
    _mount("tmpfs", root, "tmpfs", flags, "size=1m,mode=0755")
    size = config["limits"]["disk_mb"]
    scratch = {"/tmp": 0o1777, "/var/tmp": 0o1777, "/dev/shm": 0o1777}
    for path in sorted({*sources, *scratch, "/proc"}, key=lambda p: (p.count("/"), p)):
        target = root + path
        os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
        if path in links:
            os.symlink(links[path], target)
        elif path in scratch:
            os.makedirs(target, mode=0o755, exist_ok=True)
            _mount("tmpfs", target, "tmpfs", flags, f"size={size}m,mode={scratch[path]:o}")
        elif path == "/proc":
            os.makedirs(target, mode=0o555, exist_ok=True)
        else:
            if os.path.isdir(f"/proc/self/fd/{handles[path]}"):
                os.makedirs(target, mode=0o755, exist_ok=True)
            else:
                Path(target).touch(mode=0o444)
            _mount(f"/proc/self/fd/{handles[path]}", target, None, _MS_BIND | _MS_REC)
            os.close(handles.pop(path))
            device = path in DEVICES
            _mount(None, target, None, _MS_REMOUNT | _MS_BIND | _MS_RDONLY | _MS_NOSUID
                   | (0 if device else _MS_NODEV))
    etc = os.path.join(root, "etc")
    os.makedirs(etc, mode=0o755, exist_ok=True)
    Path(etc, "passwd").write_text(f"root:x:0:0:root:/:/nonexistent\n"
                                   f"student:x:{uid}:{uid}:student:{WORKDIR}:/nonexistent\n")
    Path(etc, "group").write_text(f"root:x:0:\nstudent:x:{uid}:\n")
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        os.symlink(target, os.path.join(root, "dev", name))
    old = os.path.join(root, ".old")
    os.mkdir(old, 0o700)
    os.chdir(root)
    _check(_libc().syscall(_SYS_PIVOT_ROOT, b".", b".old"), "pivot_root")
    os.chdir("/")
    _check(_libc().umount2(b"/.old", _MNT_DETACH), "umount /.old")
    os.rmdir("/.old")
    own = _remount_proc()
    covered = []
    for path in sorted(config["hide"], key=lambda p: (p.count("/"), p)):
        if os.path.lexists(path) and not os.path.islink(path):
            _cover(path, False, [], 1)
            covered.append(path)
    _mount(None, "/", None, _MS_REMOUNT | _MS_RDONLY | flags)
    return sources, covered, own


def _private_view(config: dict, needed: list[str]) -> list[str]:
    """Cover what must not be seen, give private scratch space, make the rest read-only."""
    kinds = {}
    for path in (*config["hide"], *ALWAYS_HIDDEN):
        if os.path.lexists(path):
            kinds[os.path.realpath(path)] = "hidden"
    for path in needed:
        for folder in _blocked_ancestors(path):
            kinds.setdefault(folder, "hidden")
    for path in SCRATCH:
        if os.path.isdir(path) and not os.path.islink(path):
            kinds[path] = "scratch"
    for path in sorted(kinds, key=lambda p: (p.count("/"), p)):
        if os.path.lexists(path):  # else it is under a folder covered already
            keep = [p for p in needed if _inside(p, path) and p != path]
            _cover(path, kinds[path] == "scratch", keep, config["limits"]["disk_mb"])
    _read_only(skip=[p for p, kind in kinds.items() if kind == "scratch"])
    return sorted(p for p, kind in kinds.items() if kind == "hidden")


def _cover(path: str, scratch: bool, keep: list[str], size_mb: int) -> None:
    """Mount an empty tmpfs on ``path`` (a writable one for scratch), then bind the
    ``keep`` paths back inside it; a file is covered by ``/dev/null`` instead."""
    if not os.path.isdir(path):
        _mount("/dev/null", path, None, _MS_BIND)
        return
    handles = [(p, os.open(p, os.O_PATH)) for p in keep]  # before the cover hides them
    flags = _MS_NOSUID | _MS_NODEV
    if scratch:
        _mount("tmpfs", path, "tmpfs", flags, f"size={size_mb}m,mode=1777")
    else:
        _mount("tmpfs", path, "tmpfs", flags | _MS_NOEXEC, "size=1m,mode=0711")
    for kept, handle in handles:
        parent = os.path.dirname(kept)
        os.makedirs(parent, mode=0o711, exist_ok=True)
        if os.path.isdir(f"/proc/self/fd/{handle}"):
            os.makedirs(kept, mode=0o711, exist_ok=True)
        else:
            Path(kept).touch(mode=0o444)
        _mount(f"/proc/self/fd/{handle}", kept, None, _MS_BIND | _MS_REC)
        os.close(handle)
    if not scratch:
        _mount(None, path, None, _MS_REMOUNT | _MS_RDONLY | flags | _MS_NOEXEC)


def _read_only(skip: list[str]) -> None:
    """Remount every mount read-only and without set-uid, except ``/proc`` and ``skip``."""
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        mounts = [line.split() for line in f]
    for fields in mounts:
        target = fields[4].encode().decode("unicode_escape")  # "\040" is a space
        if target in skip or _inside(target, "/proc"):
            continue
        options = fields[5].split(",")
        flags = _MS_REMOUNT | _MS_BIND | _MS_RDONLY | _MS_NOSUID
        flags |= _MS_NODEV if "nodev" in options else 0
        flags |= _MS_NOEXEC if "noexec" in options else 0
        with contextlib.suppress(SandboxError):  # a mount covered by a later one
            _mount(None, target, None, flags)


def _remount_proc() -> bool:
    """Mount a new ``/proc``: one showing only this user's processes where the kernel
    allows it (one procfs per mount: Linux 5.8+), else every process; True in the first
    case."""
    flags = _MS_NOSUID | _MS_NODEV | _MS_NOEXEC
    major, minor = (int(x) for x in os.uname().release.split(".")[:2])
    if (major, minor) >= (5, 8):
        with contextlib.suppress(SandboxError):
            _mount("proc", "/proc", "proc", flags, "hidepid=invisible")
            return True
    _mount("proc", "/proc", "proc", flags)
    return False


def _count_own_tasks() -> int:
    """Processes and threads of this user now (what ``RLIMIT_NPROC`` counts)."""
    uid, count = str(os.getuid()), 0
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                status = dict(line.split(":", 1) for line in
                              Path(entry.path, "status").read_text().splitlines() if ":" in line)
                if status.get("Uid", "").split()[:1] == [uid]:
                    count += int(status.get("Threads", "1"))
    return count


def _mapped_bytes() -> int:
    """The address space this process maps now (``VmSize``; 0 where ``/proc`` lacks it)."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    return 0


def _set_limits(limits: dict[str, Any], own_processes: int, mapped: int = 0) -> list[str]:
    """Set the resource limits (the address space ``memory_mb`` beyond the ``mapped``
    bytes the process holds already); return the names of those this system refused."""
    mib, refused = 2**20, []
    cpu = math.ceil(limits["cpu_seconds"])
    nproc = own_processes + limits["processes"]
    memory = mapped + limits["memory_mb"] * mib
    for which, soft, hard in (
            (resource.RLIMIT_AS, memory, memory),
            (resource.RLIMIT_CPU, cpu, cpu + 2),  # SIGXCPU, then SIGKILL two seconds later
            (resource.RLIMIT_FSIZE, limits["file_mb"] * mib, limits["file_mb"] * mib),
            (resource.RLIMIT_NPROC, nproc, nproc),
            (resource.RLIMIT_CORE, 0, 0)):
        try:
            _, current_hard = resource.getrlimit(which)
            if current_hard != resource.RLIM_INFINITY:
                soft, hard = min(soft, current_hard), min(hard, current_hard)
            resource.setrlimit(which, (soft, hard))
        except (ValueError, OSError):  # e.g. macOS refuses an address-space limit
            refused.append(_LIMIT_NAMES[which])
    return refused


DENIED_SYSCALLS = (
    "ptrace", "mount", "umount2", "pivot_root", "chroot", "unshare", "setns", "mount_setattr",
    "fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree", "keyctl", "add_key",
    "request_key", "bpf", "perf_event_open", "userfaultfd", "kexec_load", "kexec_file_load",
    "init_module", "finit_module", "delete_module", "swapon", "swapoff", "reboot", "acct",
    "quotactl", "syslog", "open_by_handle_at", "name_to_handle_at", "iopl", "ioperm",
    "settimeofday", "clock_settime", "adjtimex", "vhangup",
)
"""System calls a submission's process may not make (they fail with ``EPERM``): tracing,
mounting and new namespaces, the kernel keyring, BPF and performance counters, kernel
modules, and the machine's clock and power. ``clone`` with a ``CLONE_NEW*`` flag fails the
same way; ``clone3`` (whose flags a filter cannot read) fails with ``ENOSYS``, so the C
library falls back to ``clone`` for threads and processes."""
_CLONE_NEW = (0x00000080, 0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000,
              0x20000000, 0x40000000)  # TIME, NS, CGROUP, UTS, IPC, USER, PID, NET


def _seccomp() -> Any:
    """The libseccomp binding (``pyseccomp``), or the reason it cannot be used. Loaded
    before the box is built: finding the library runs ``ldconfig``, which the box lacks."""
    try:
        import pyseccomp
    except (ImportError, OSError) as exc:
        return f"not filtered (no libseccomp: {type(exc).__name__}: {exc})"
    return pyseccomp


def _filter_syscalls(seccomp: Any) -> str:
    """Install the filter of :data:`DENIED_SYSCALLS` (needs ``no_new_privs``, set by
    :func:`_become`); return what holds, for the report."""
    if isinstance(seccomp, str):
        return seccomp
    import errno

    rules = seccomp.SyscallFilter(seccomp.ALLOW)
    deny = seccomp.ERRNO(errno.EPERM)
    for name in DENIED_SYSCALLS:
        with contextlib.suppress(Exception):  # a call this architecture does not have
            rules.add_rule(deny, name)
    for flag in _CLONE_NEW:
        rules.add_rule(deny, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
    with contextlib.suppress(Exception):
        rules.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    try:
        rules.load()
    except OSError as exc:
        raise SandboxError(f"the system call filter could not be loaded: {exc}") from exc
    return "filtered"


def _become(uid: int) -> None:
    """Drop every privilege: the unprivileged ``uid``, no groups, no way back."""
    linux = sys.platform.startswith("linux")
    if linux:
        _check(_libc().prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(NO_NEW_PRIVS)")
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)  # as root, sets the real, effective and saved ids
    if linux:  # after the uid change, which clears it: die with the grader
        _check(_libc().prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(PDEATHSIG)")
