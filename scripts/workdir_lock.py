"""One step at a time in a working directory: a second `migrate` step started while one runs stops at once
and says which process holds the folder, instead of interleaving its writes with the first one's.

The lock is an advisory `flock` on `<workdir>/.migrate.lock`: the kernel releases it when the holder exits,
however it exits, so a killed run never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from scripts.errors import MigrateError

LOCK_FILE = ".migrate.lock"


@contextmanager
def holding_workdir(workdir: Path, step: str) -> Iterator[None]:
    """Hold the working directory's lock while `step` runs; no lock when the folder does not exist yet."""
    if not workdir.is_dir():
        yield
        return
    path = workdir / LOCK_FILE
    with open(path, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise MigrateError(f"{workdir} is in use by {holder}",
                               "wait for that command to finish (or stop it), then run this one again",
                               ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"`migrate {step}` (pid {os.getpid()})")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)
