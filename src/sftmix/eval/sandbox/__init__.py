"""The code sandbox: run untrusted model-written programs in an isolated child process.

``execute`` starts and limits a run, ``driver`` is the trusted program that runs
inside it, ``watch`` captures its output and hunts what it left behind.
"""

from sftmix.eval.sandbox.execute import (
    ExecResult,
    Limits,
    Program,
    SandboxPool,
    Status,
    namespaces_available,
    resolve_isolation,
    run_program,
    sandbox_uids,
)

__all__ = [
    "ExecResult",
    "Limits",
    "Program",
    "SandboxPool",
    "Status",
    "namespaces_available",
    "resolve_isolation",
    "run_program",
    "sandbox_uids",
]
