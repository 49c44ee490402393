"""The trusted prologue and epilogue that runs *inside* each sandboxed interpreter.

:mod:`sftmix.eval.sandbox` starts ``python -I [-S] -c <this file's text>`` (or,
for its own interpreter, a bootstrap that executes this file's code object
sent ahead on stdin) and sends a ``marshal`` payload on stdin (built in: no
import cost). This file must
therefore stay self-contained (standard library only, no sftmix imports). In order, it:

1. reads the payload, then points stdin at ``/dev/null`` so the untrusted code
   cannot re-read the payload (it carries the completion nonce);
2. when running in fresh namespaces as root: mounts private size-limited
   ``tmpfs`` on the world-writable directories, makes the interpreter's own
   directories reachable for the unprivileged user (hiding their ancestors),
   creates the working directory and sets ``no_new_privs``;
3. sets the resource limits (soft = hard, so they cannot be raised again);
4. drops to the run's own unprivileged uid/gid with no supplementary groups;
5. sets ``no_new_privs`` and installs a seccomp filter that refuses new
   namespaces (``unshare``/``clone`` with a ``CLONE_NEW*`` flag, ``setns``;
   ``clone3``, whose flags a filter cannot see, answers ENOSYS so that the C
   library falls back to ``clone``), in both isolation modes;
6. without a network namespace, replaces the socket constructors (not a
   security boundary; see docs/sandbox.md);
7. executes the program in a fresh ``__main__`` namespace, then the check code
   in a namespace built from the program's globals but with *pristine*
   builtins (captured before the program ran) and freshly compiled test code,
   so that redefining ``check``, ``assert``-related names or builtins does not
   neuter the tests;
8. writes the nonce to the completion-marker fd. The caller counts a run as
   passed only with exit status 0 *and* the nonce, so ``sys.exit(0)`` or
   ``os._exit(0)`` before the checks finish is a failure.
"""

from __future__ import annotations

import builtins
import marshal
import os
import resource
import struct
import sys

TYPE_CHECKING = False  # importing typing would cost start-up time in every run
if TYPE_CHECKING:
    from typing import Any, NoReturn

SETUP_FAILED = 97  # exit status for a sandbox that could not be set up (not the program's fault)
MS_BIND, MS_REC, MS_MOVE = 4096, 16384, 8192
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2
# Every namespace a process could create: NEWTIME, NEWNS, NEWCGROUP, NEWUTS, NEWIPC,
# NEWUSER, NEWPID, NEWNET. A user namespace is the one an unprivileged program can
# create on its own (and with it the others); none of them is needed to score code.
CLONE_NEW_ANY = 0x80 | 0x20000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 \
    | 0x20000000 | 0x40000000
# machine -> (AUDIT_ARCH_*, {syscall: number}) for the architectures the filter knows.
SYSCALLS = {
    "x86_64": (0xC000003E, {"clone": 56, "unshare": 272, "setns": 308, "clone3": 435}),
    "aarch64": (0xC00000B7, {"clone": 220, "unshare": 97, "setns": 268, "clone3": 435}),
}


def _fail_setup(message: str) -> NoReturn:
    sys.stderr.write("sftmix-sandbox-setup: " + message + "\n")
    sys.stderr.flush()
    os._exit(SETUP_FAILED)


def _mount(libc: Any, source: str, target: str, fstype: str | None, flags: int,
           options: str | None) -> None:
    rc = libc.mount(source.encode(), target.encode(),
                    fstype.encode() if fstype else None, flags,
                    options.encode() if options else None)
    if rc != 0:
        import ctypes

        _fail_setup(f"mount {source} on {target} failed: {os.strerror(ctypes.get_errno())}")


def _blocked_ancestor(path: str) -> str | None:
    """The highest ancestor of ``path`` that others cannot traverse, or None."""
    parts = os.path.abspath(path).split(os.sep)[1:]
    current = ""
    for part in parts[:-1]:
        current += os.sep + part
        if not os.stat(current).st_mode & 0o001:
            return current
    return None


def _private_filesystem(libc: Any, payload: dict[str, Any]) -> None:
    size = payload["disk_bytes"]
    roots = {os.path.realpath(p) for p in (sys.base_prefix, sys.base_exec_prefix,
                                           sys.prefix, sys.exec_prefix,
                                           os.path.dirname(os.path.realpath(sys.executable)))}
    roots = {r for r in roots if not any(r != o and r.startswith(o + os.sep) for o in roots)}
    targets = [t for t in ("/tmp", "/var/tmp", "/dev/shm", "/run/lock") if os.path.isdir(t)]
    # An interpreter or virtual environment that lives under one of those
    # directories (a checkout in /tmp, say) would vanish under the fresh tmpfs:
    # hold it by a file descriptor and bind it back at its path afterwards.
    kept = {r: os.open(r, os.O_PATH | os.O_DIRECTORY) for r in roots
            if any(r == t or r.startswith(t + os.sep) for t in targets)}
    for target in targets:
        _mount(libc, "tmpfs", target, "tmpfs", 0, f"size={size},mode=1777")
    for root, fd in kept.items():
        os.makedirs(root, mode=0o755, exist_ok=True)
        _mount(libc, f"/proc/self/fd/{fd}", root, None, MS_BIND | MS_REC, None)
        os.close(fd)
    # The unprivileged user must still be able to import the standard library
    # and site-packages; when an ancestor (e.g. /root) is closed, bind the
    # interpreter's directories aside, hide the ancestor under an empty tmpfs
    # and move them back to their original paths.
    moves = []
    for index, root in enumerate(sorted(roots)):
        blocked = _blocked_ancestor(root)
        if blocked is None:
            continue
        stage = f"/tmp/.sftmix-stage-{index}"
        os.mkdir(stage)
        _mount(libc, root, stage, None, MS_BIND | MS_REC, None)
        moves.append((stage, root, blocked))
    for _, _, blocked in moves:
        if _blocked_ancestor(blocked + os.sep + "x") == blocked:
            _mount(libc, "tmpfs", blocked, "tmpfs", 0, "size=1m,mode=0755")
    for stage, root, _ in moves:
        os.makedirs(root, mode=0o755, exist_ok=True)
        _mount(libc, stage, root, None, MS_MOVE, None)
        os.rmdir(stage)


def _count_own_tasks() -> int:
    uid, count = os.getuid(), 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if os.stat(entry.path).st_uid == uid:
                    count += len(os.listdir(entry.path + "/task"))
            except OSError:
                pass
    return count


def _refuse_sockets(module: Any) -> None:
    message = "network access is disabled in the sandbox"

    class RefusedSocket(module.socket):  # a class still, so that ssl & co. can subclass it
        def __init__(self, *args: object, **kwargs: object) -> None:
            raise PermissionError(message)

    def refused(*args: object, **kwargs: object) -> NoReturn:
        raise PermissionError(message)

    module.socket = module.SocketType = RefusedSocket
    for name in ("create_connection", "create_server", "socketpair", "fromfd"):
        setattr(module, name, refused)


def _patch_after_exec(loader: Any) -> None:
    original = loader.exec_module

    def exec_module(module: Any) -> None:
        original(module)
        _refuse_sockets(module)

    loader.exec_module = exec_module


class _SocketGuard:
    """Patches ``socket`` when, and only if, the program imports it.

    Importing ``socket`` up front would cost every run several milliseconds.
    """

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != "socket":
            return None
        for finder in sys.meta_path:
            spec = None if finder is self else finder.find_spec(name, path, target)
            if spec is not None and spec.loader is not None:
                _patch_after_exec(spec.loader)
                return spec
        return None


def _bpf(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def _seccomp_program() -> bytes | None:
    """A classic-BPF seccomp filter refusing namespace creation (None: unknown machine).

    Syscalls of another ABI than the native one (i386 on x86_64, x32 numbers) are
    refused outright: their numbers differ, and no Python program needs them.
    """
    known = SYSCALLS.get(os.uname().machine)
    if known is None:
        return None
    arch, nr = known
    ld_w, jeq, jset, jge, ret = 0x20, 0x15, 0x45, 0x35, 0x06
    allow, eperm, enosys = 0x7FFF0000, 0x00050000 | 1, 0x00050000 | 38
    return b"".join((
        _bpf(ld_w, 4),                           # 0: arch
        _bpf(jeq, arch, 1, 0),                   # 1
        _bpf(ret, eperm),                        # 2: foreign ABI
        _bpf(ld_w, 0),                           # 3: syscall number
        _bpf(jge, 0x40000000, 0, 1),             # 4: x32 numbers
        _bpf(ret, eperm),                        # 5
        _bpf(jeq, nr["clone3"], 0, 1),           # 6
        _bpf(ret, enosys),                       # 7
        _bpf(jeq, nr["setns"], 0, 1),            # 8
        _bpf(ret, eperm),                        # 9
        _bpf(jeq, nr["unshare"], 1, 0),          # 10
        _bpf(jeq, nr["clone"], 0, 3),            # 11
        _bpf(ld_w, 16),                          # 12: low half of the first argument (flags)
        _bpf(jset, CLONE_NEW_ANY, 0, 1),         # 13
        _bpf(ret, eperm),                        # 14
        _bpf(ret, allow),                        # 15
    ))


def _deny_namespaces(libc: Any) -> None:
    """Install the filter; it holds for the program and every process it starts."""
    import ctypes

    program = _seccomp_program()
    if program is None:
        return
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        _fail_setup("prctl(PR_SET_NO_NEW_PRIVS) failed")
    filters = ctypes.create_string_buffer(program, len(program))

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = SockFprog(len(program) // 8, ctypes.cast(filters, ctypes.c_void_p))
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        _fail_setup(f"seccomp filter refused: {os.strerror(ctypes.get_errno())}")


def _set_limits(rlimits: dict[str, int]) -> None:
    for name, value in rlimits.items():
        kind = getattr(resource, name)
        _, ceiling = resource.getrlimit(kind)
        # CPU: SIGXCPU at the soft limit, SIGKILL a second later if it is ignored.
        soft, hard = value, value + 1 if name == "RLIMIT_CPU" else value
        if ceiling != resource.RLIM_INFINITY:  # never ask for more than we may have
            soft, hard = min(soft, ceiling), min(hard, ceiling)
        resource.setrlimit(kind, (soft, hard))


def _isolate(payload: dict[str, Any]) -> None:
    """Everything between reading the payload and running untrusted code."""
    import ctypes

    uid, workdir = payload["uid"], payload["workdir"]
    libc = ctypes.CDLL(None, use_errno=True)
    if payload["namespaces"]:
        _private_filesystem(libc, payload)
        os.makedirs(workdir, mode=0o700)
        os.chown(workdir, uid, uid)
        if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            _fail_setup("prctl(PR_SET_NO_NEW_PRIVS) failed")
    os.chdir(workdir)
    if payload["nproc_headroom"] is not None and os.getuid() != 0:
        # Same uid as the caller: RLIMIT_NPROC counts all of its processes and
        # threads, so the limit is what exists now plus the run's allowance.
        # (Root is exempt from RLIMIT_NPROC, so there is nothing to count.)
        payload["rlimits"]["RLIMIT_NPROC"] = _count_own_tasks() + payload["nproc_headroom"]
    _set_limits(payload["rlimits"])
    if uid is not None and os.getuid() != uid:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    _deny_namespaces(libc)
    if payload["block_sockets"]:
        sys.meta_path.insert(0, _SocketGuard())


def main() -> None:
    payload = marshal.load(sys.stdin.buffer)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    run_exec, run_compile, write = builtins.exec, builtins.compile, os.write
    pristine = dict(builtins.__dict__)
    nonce, marker_fd = payload.pop("nonce").encode(), payload["marker_fd"]
    try:
        _isolate(payload)
    except Exception as exc:  # the sandbox's failure, not the program's
        _fail_setup(f"{type(exc).__name__}: {exc}")

    program, check, expose = payload["program"], payload["check"], set(payload["expose"])
    del payload
    namespace = {"__name__": "__main__", "__builtins__": builtins}
    run_exec(run_compile(program, "<program>", "exec", dont_inherit=True, optimize=0), namespace)
    if check:
        tests = {k: v for k, v in namespace.items() if k not in pristine or k in expose}
        tests["__builtins__"] = dict(pristine)
        tests["__name__"] = "__main__"
        run_exec(run_compile(check, "<check>", "exec", dont_inherit=True, optimize=0), tests)
    write(marker_fd, nonce)


if __name__ == "__main__":
    main()
