"""Child processes that cannot outlive the test run.

Why: a pytest killed with SIGKILL (CI timeout, OOM, Ctrl-\\) never runs fixture teardown, and a leftover
registry or dockerd would hold ports, mounts and disk. ``PR_SET_PDEATHSIG`` makes the kernel send the
child SIGTERM when its parent dies, so cleanup does not depend on Python getting a chance to run.
"""

from __future__ import annotations

import ctypes
import signal

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """``preexec_fn`` for :class:`subprocess.Popen`: SIGTERM this child when the parent exits.

    Linux ties this to the *thread* that forked: start servers from the main thread (pytest fixtures do).
    """
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
