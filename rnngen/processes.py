"""Whether a process of this machine still runs: what lets a run clean up after one killed midway (a
model folder half written, a corpus half prepared) without touching the work of one still going."""

from __future__ import annotations

import os


def process_is_gone(pid: int) -> bool:
    """True when no process ``pid`` runs on this machine; False when one does (another user's too), or
    where that cannot be asked without harm."""
    if os.name != "posix":
        return False  # os.kill elsewhere would end the process rather than look for it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False
