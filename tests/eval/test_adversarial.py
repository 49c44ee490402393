"""Hostile programs against the sandbox: each must be contained and scored as a failure.

Every program is a "completion" for ``add(a, b)`` followed by the check
``assert add(2, 3) == 5``; none of them solves it honestly, so a pass means the
scoring was fooled, and the host-side assertions check the containment itself.
After each run no process of the run may remain (checked in ``/proc``).
"""

from __future__ import annotations

import os
import secrets
import socket
import sys
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from sftmix.eval.sandbox import (
    Limits,
    Program,
    SandboxPool,
    Status,
    namespaces_available,
    run_program,
    sandbox_uids,
)

pytestmark = pytest.mark.skipif(
    not namespaces_available(),
    reason="the hostile suite needs the namespaces isolation (root and unshare)",
)

ROOT = Path(__file__).resolve().parents[2]
TOKEN = secrets.token_hex(8)
CHECK = "assert add(2, 3) == 5\n"
LIMITS = Limits(timeout_s=1.5, memory_bytes=512 << 20)
WRONG = "def add(a, b):\n    return 0\n"


def leftover_sandbox_processes() -> list[str]:
    """Processes (zombies included) running as one of this test process's sandbox uids."""
    uids = sandbox_uids()
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            status = Path(entry.path, "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if any(int(uid) in uids for uid in fields["Uid"].split()):
            found.append(f"{entry.name}: {fields['Name'].strip()} {fields['State'].strip()}")
    return found


@pytest.fixture(autouse=True)
def no_stray_processes() -> Iterator[None]:
    assert leftover_sandbox_processes() == []
    yield
    assert leftover_sandbox_processes() == []


@pytest.fixture(scope="module")
def victim() -> Iterator[Path]:
    """A root-owned directory the sandbox can see but must not change, with a secret in it."""
    folder = Path(tempfile.mkdtemp(prefix="sftmix-victim-", dir=sys.prefix))
    folder.chmod(0o755)
    (folder / "keep.txt").write_text("keep")
    (folder / "keep.txt").chmod(0o644)
    (folder / "secret.txt").write_text(TOKEN)
    (folder / "secret.txt").chmod(0o600)
    yield folder
    for child in folder.iterdir():
        child.unlink()
    folder.rmdir()


@pytest.fixture(scope="module")
def listener() -> Iterator[tuple[int, list[bytes]]]:
    """A real TCP server on loopback that records whatever reaches it."""
    received: list[bytes] = []
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                received.append(conn.recv(1024))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], received
    stop.set()
    thread.join()
    server.close()


HOSTILE: dict[str, str] = {
    "fork_bomb": "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
    "memory_bomb": "x = bytearray(8 << 30)\n" + WRONG,
    "memory_creep": "chunks = []\nwhile True:\n    chunks.append(' ' * (16 << 20))\n",
    "infinite_loop": "while True:\n    pass\n",
    "busy_threads": "import threading\n"
                    "def spin():\n    while True:\n        pass\n"
                    "for _ in range(4):\n    threading.Thread(target=spin).start()\n",
    "deep_recursion": "def add(a, b):\n    return add(a, b)\n",
    "c_stack_overflow": "import sys\nsys.setrecursionlimit(10 ** 8)\n"
                        "def down(n):\n    return down(n + 1) + 1\ndown(0)\n",
    "disk_filler_one_file": "with open('big', 'wb') as f:\n    f.write(b'x' * (32 << 20))\n",
    "disk_filler_many_files": "i = 0\nwhile True:\n    with open(f'f{i}', 'wb') as f:\n"
                              "        f.write(b'x' * (8 << 20))\n    i += 1\n",
    "write_into_project": f"open({str(ROOT / ('escape-' + TOKEN))!r}, 'w').write('x')\n" + WRONG,
    "write_host_tmp": f"open('/tmp/escape-{TOKEN}', 'w').write('x')\n"
                      f"open('/dev/shm/escape-{TOKEN}', 'w').write('x')\n" + WRONG,
    "delete_outside": "import os, shutil\nVICTIM = '{victim}'\n"
                      "for name in os.listdir(VICTIM):\n"
                      "    try:\n        os.remove(os.path.join(VICTIM, name))\n"
                      "    except OSError:\n        pass\n"
                      "shutil.rmtree(VICTIM)\n",
    "read_secret_file": "print(open('{victim}/secret.txt').read())\n",
    "read_parent_env": "import os\nprint(dict(os.environ))\n"
                       "for pid in os.listdir('/proc'):\n    try:\n"
                       "        print(open(f'/proc/{{pid}}/environ', 'rb').read())\n"
                       "    except OSError:\n        pass\n" + WRONG,
    "read_parent_proc": "import os\nppid = os.getppid()\n"
                        "print(ppid, open(f'/proc/{{ppid}}/cmdline', 'rb').read())\n",
    "read_home": "import os\nprint(os.listdir(os.path.expanduser('~')), os.listdir('/root'))\n"
                 "print(open('/root/.bash_history').read())\n",
    "open_socket": "import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=1)\n"
                   f"s.sendall(b'{TOKEN}')\n",
    "raw_socket_module": "import _socket\ns = _socket.socket()\n"
                         f"s.connect(('127.0.0.1', {{port}}))\ns.send(b'{TOKEN}')\n",
    "internet": "import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=1)\n",
    "kill_parent": "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n"
                   "os.kill(1, signal.SIGKILL)\n" + WRONG,
    "kill_everything": "import os, signal\nos.kill(-1, signal.SIGKILL)\n",
    "ignore_sigterm": "import signal\nfor s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, "
                      "signal.SIGXCPU, signal.SIGALRM):\n    signal.signal(s, signal.SIG_IGN)\n"
                      "while True:\n    pass\n",
    "daemon_grandchild": "import os, time\nif os.fork() == 0:\n    os.setsid()\n"
                         "    if os.fork() == 0:\n        time.sleep(60)\n    os._exit(0)\n"
                         + WRONG,
    "output_flood": "while True:\n    print('x' * 1000)\n",
    "huge_single_line": "import sys\nsys.stdout.write('y' * (64 << 20))\n" + WRONG,
    "sys_exit_before_tests": WRONG + "import sys\nsys.exit(0)\n",
    "os_exit_before_tests": WRONG + "import os\nos._exit(0)\n",
    "os_exit_in_atexit": WRONG + "import atexit, os\natexit.register(os._exit, 0)\n",
    "excepthook_exit_zero": WRONG + "import os, sys\nsys.excepthook = lambda *a: os._exit(0)\n",
    "override_check": WRONG + "def check(candidate):\n    pass\n",
    "override_builtins": WRONG + "import builtins\nbuiltins.abs = lambda x: 0\n"
                         "builtins.AssertionError = KeyboardInterrupt\nabs = lambda x: 0\n",
    "shadow_assertion_error": WRONG + "AssertionError = SystemExit\nimport sys\n"
                              "sys.excepthook = lambda *a: None\n",
    "swallow_tests_in_string": WRONG + "'''\n",
    "raise_rlimits": "import resource\nresource.setrlimit(resource.RLIMIT_AS, "
                     "(resource.RLIM_INFINITY, resource.RLIM_INFINITY))\n",
    "thread_bomb": "import threading, time\nwhile True:\n"
                   "    threading.Thread(target=time.sleep, args=(100,), daemon=True).start()\n",
    "become_root": "import os\nos.setuid(0)\n" + WRONG,
    "mount_escape": "import subprocess\n"
                    "subprocess.run(['mount', '-t', 'tmpfs', 'none', '/mnt'], check=True)\n",
    "nested_user_namespace": "import subprocess\n"
                             "subprocess.run(['unshare', '-r', '--mount', 'mount', '-t', 'tmpfs',"
                             " 'none', '/tmp'], check=True)\n",
    "forge_marker": "import os\ndata = os.read(0, 1 << 20)\n"
                    "for fd in range(3, 64):\n    try:\n        os.write(fd, data or b'0' * 32)\n"
                    "    except OSError:\n        pass\n" + WRONG + "os._exit(0)\n",
}
# Output-based checks: the secret must not appear in what the program printed.
MUST_NOT_PRINT_SECRET = {"read_secret_file", "read_parent_env", "read_parent_proc", "read_home"}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_program_is_contained_and_fails(
        name: str, victim: Path, listener: tuple[int, list[bytes]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    port, received = listener
    monkeypatch.setenv("SFTMIX_TEST_SECRET", TOKEN)  # must not reach the sandbox
    source = HOSTILE[name].replace("{victim}", str(victim)).replace("{port}", str(port))
    source = source.replace("{{", "{").replace("}}", "}")
    result = run_program(Program(source, check=CHECK, expose=("add",)), LIMITS)

    assert result.status in (Status.FAILED, Status.TIMEOUT), (name, result)
    assert result.reason, result
    assert not result.marker
    # Containment, seen from the host.
    assert (victim / "keep.txt").read_text() == "keep"
    assert not (ROOT / f"escape-{TOKEN}").exists()
    assert not Path(f"/tmp/escape-{TOKEN}").exists()
    assert not Path(f"/dev/shm/escape-{TOKEN}").exists()
    assert received == []
    if name in MUST_NOT_PRINT_SECRET:
        assert TOKEN not in result.stdout + result.stderr
    assert len(result.stdout) <= LIMITS.output_bytes + 100
    assert len(result.stderr) <= LIMITS.output_bytes + 100


def test_expected_reasons_for_typical_attacks() -> None:
    cases = {
        "memory_bomb": "MemoryError",
        "deep_recursion": "RecursionError",
        "disk_filler_one_file": "File too large",
        "sys_exit_before_tests": "no completion marker",
        "override_check": "AssertionError",
        "swallow_tests_in_string": "SyntaxError",
        "raise_rlimits": "ValueError",
        "open_socket": "OSError",
    }
    programs = [Program(HOSTILE[n].replace("{port}", "9"), check=CHECK) for n in cases]
    # Generous wall time, so that a busy machine cannot turn these into timeouts.
    limits = Limits(timeout_s=20.0, memory_bytes=LIMITS.memory_bytes)
    results = SandboxPool(workers=4, limits=limits).map(programs)
    for (name, expected), result in zip(cases.items(), results, strict=True):
        assert expected in result.reason, (name, result.reason)


def test_output_flood_is_capped_and_marked_truncated() -> None:
    result = run_program(Program(HOSTILE["huge_single_line"], check=CHECK), LIMITS)
    assert result.output_truncated
    assert "bytes omitted" in result.stdout
    assert result.stdout.startswith("y") and result.stdout.rstrip().endswith("y")


@pytest.mark.slow
def test_harness_still_healthy_after_a_concurrent_barrage() -> None:
    barrage = [Program(HOSTILE[n], check=CHECK) for n in
               ("fork_bomb", "thread_bomb", "memory_creep", "output_flood", "daemon_grandchild")]
    honest = [Program("def add(a, b):\n    return a + b\n", check=CHECK)] * 6
    with ThreadPoolExecutor(2) as both:  # the honest ones run while the barrage does
        attacked = both.submit(SandboxPool(workers=5, limits=LIMITS).map, barrage)
        calm = both.submit(SandboxPool(workers=3, limits=Limits(timeout_s=30.0)).map, honest)
        attacked_results, honest_results = attacked.result(), calm.result()
    assert [r.status for r in attacked_results].count(Status.PASSED) == 0
    assert all(r.passed for r in honest_results), honest_results
