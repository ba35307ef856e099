"""One writer per run folder: a lock file created exclusively, holding the writer's pid.

Two processes training into one folder would interleave metrics and overwrite each other's
summary. `RunLock` creates `<run>/.lock` with O_EXCL (the operating system lets exactly one
process create it). A lock left by a process that died (kill -9, power cut) is stale: the pid
no longer runs on this machine, so the next writer takes it over and says so.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from pathlib import Path

from .errors import UserError

log = logging.getLogger(__name__)
LOCK_FILE = ".lock"


class RunLocked(UserError):
    """Another live process is writing this run."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # it exists but belongs to someone else
    return True


class RunLock:
    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / LOCK_FILE
        self.held = False

    def acquire(self) -> RunLock:
        me = {"pid": os.getpid(), "host": socket.gethostname()}
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = self._owner()
                if owner and (owner.get("host") != me["host"] or _alive(int(owner["pid"]))):
                    raise RunLocked(
                        f"{self.path.parent} is being written by process {owner['pid']} on "
                        f"{owner['host']}; wait for it to finish (or stop it) before resuming"
                    ) from None
                log.warning(
                    "taking over the stale lock of %s (its process is gone)", self.path.parent
                )
                self.path.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(me, f)
            self.held = True
            return self
        raise RunLocked(f"could not lock {self.path.parent}; try again")

    def _owner(self) -> dict | None:
        try:
            owner = json.loads(self.path.read_text(encoding="utf-8"))
            int(owner["pid"])
            return owner
        except (OSError, ValueError, KeyError, TypeError):
            return None  # unreadable: written by a process killed mid-write, so stale

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
