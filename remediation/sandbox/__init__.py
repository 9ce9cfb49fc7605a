"""The sandbox: test a patch on a throw-away checkout of a service, isolated from Quench.

- `patches`: the rules a patch must pass before anything is created (`patch_problems`,
  `path_problem`, `patch_paths`).
- `runner`: the run itself (`run_patch` → `SandboxResult`): worktree, `git apply`, the
  type check and the test command, clean-up (`sweep_stale_sandboxes` for what killed
  workers left).
- `process`: one command with its limits, timeout, process-group kill and bounded output.
- `isolation`: bubblewrap (no network, read-only system, Quench's data and home hidden,
  own PID namespace) and whether it is available (`isolation_status`).
- `typecheck`: when a type check runs and which of its errors a patch added.
"""

from remediation.sandbox.isolation import IsolationStatus, isolation_status, sandbox_health, warn_if_unisolated
from remediation.sandbox.patches import patch_paths, patch_problems, path_problem
from remediation.sandbox.runner import (
    ERROR,
    FAILED,
    INVALID_PATCH,
    PASSED,
    TESTS,
    TIMED_OUT,
    TYPE_CHECK,
    SandboxResult,
    run_patch,
    sandbox_environment,
    sweep_stale_sandboxes,
)

__all__ = [
    "ERROR",
    "FAILED",
    "INVALID_PATCH",
    "PASSED",
    "TESTS",
    "TIMED_OUT",
    "TYPE_CHECK",
    "IsolationStatus",
    "SandboxResult",
    "isolation_status",
    "patch_paths",
    "patch_problems",
    "path_problem",
    "run_patch",
    "sandbox_health",
    "sandbox_environment",
    "sweep_stale_sandboxes",
    "warn_if_unisolated",
]
