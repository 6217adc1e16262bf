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

from scripts.core.errors import MigrateError

LOCK_FILE = ".migrate.lock"


@contextmanager
def holding_workdir(workdir: Path, step: str) -> Iterator[None]:
    """Hold the working directory's lock while `step` runs; no lock when the folder does not exist yet."""
    if not workdir.is_dir():
        yield
        return
    path = workdir / LOCK_FILE
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:  # a read-only or full folder: the step itself will say what is wrong with it
        yield
        return
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(descriptor, 4096, 0).decode("utf-8", "replace").strip() or "another process"
            raise MigrateError(f"{workdir} is in use by {holder}",
                               "wait for that command to finish (or stop it), then run this one again") from None
        _note_holder(descriptor, f"`migrate {step}` (pid {os.getpid()})")
        try:
            yield
        finally:
            _note_holder(descriptor, "")
    finally:
        os.close(descriptor)  # closing releases the lock


def _note_holder(descriptor: int, holder: str) -> None:
    """Say who holds the lock, for a second run's message; only a courtesy, so a full disk does not stop it.
    Unbuffered writes, so nothing is left to fail when the file closes."""
    try:
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, holder.encode("utf-8"), 0)
    except OSError:
        pass
