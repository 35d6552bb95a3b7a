"""Child processes that do not outlive their parent (Linux's ``PR_SET_PDEATHSIG``): the
processes `icli run` and `icli worker` start, and the RQ scheduler the worker forks. A parent
killed with SIGKILL cleans up nothing; its children get SIGTERM from the kernel instead, so
none is left holding a port, a socket or the scheduler's lock in Redis."""

from __future__ import annotations

import contextlib
import ctypes
import signal

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:  # pragma: no cover - runs in the child (before exec, or forked)
    """Ask the kernel for SIGTERM in this process when its parent dies, even by SIGKILL.

    Set in the child after the fork (the setting is not inherited by a fork, and is kept
    across exec); where prctl is missing (not Linux) nothing happens."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
