"""Steps in one working directory do not interleave their writes. A step that writes the working directory's
own files (download, analyze: they also refresh the copies in every app) runs alone; a step that writes one
app folder runs alone on that app, and side by side with steps on the working directory's other apps (the
demo builds its sync and async apps at once). A step that cannot start says which process holds what it needs.

The locks are advisory `flock`s on files in the working directory: `.migrate.lock` (exclusive for a
workdir step, shared by app steps) and `.migrate.<app>.lock` (exclusive, one per app). The kernel releases a
lock when its holder exits, however it exits, so a killed run never leaves a stale lock behind.
"""

from __future__ import annotations

import argparse
import fcntl
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from scripts.core.errors import MigrateError

LOCK_FILE = ".migrate.lock"
FIX = "wait for that command to finish (or stop it), then run this one again"


def app_lock_file(app: Path) -> Path:
    return app.parent / f".migrate.{app.name}.lock"


def target_app(args: argparse.Namespace, writes: str) -> Path | None:
    """The app folder an app step will write (as `find_app` picks it), or None: the whole working directory
    (a workdir step, or an app step that will itself refuse an ambiguous or missing app)."""
    from scripts.core.layout import APP_MARKER, app_folders

    if writes != "app":
        return None
    if getattr(args, "app", None) is not None:
        app = Path(args.app).resolve()
        return app if (app / APP_MARKER).is_dir() else None  # not an app: the step refuses it, nothing is written
    name = getattr(args, "app_name", None)
    if args.command == "scaffold" and name:
        # A name the step will refuse (a path, `..`) must not place a lock file outside the working directory.
        return (args.workdir / name).resolve() if Path(name).name == name and name not in (".", "..") else None
    apps = app_folders(args.workdir)
    return apps[0].resolve() if len(apps) == 1 else None


@contextmanager
def holding_step_locks(args: argparse.Namespace, writes: str) -> Iterator[None]:
    """Hold what the step `args.command` writes for as long as it runs."""
    step = f"`migrate {args.command}` (pid {os.getpid()})"
    app = target_app(args, writes)
    with ExitStack() as held:
        if app is None:
            held.enter_context(_flock(args.workdir / LOCK_FILE, fcntl.LOCK_EX, step, args.workdir))
        elif app.parent.is_dir():
            held.enter_context(_flock(app.parent / LOCK_FILE, fcntl.LOCK_SH, None, app.parent))
            held.enter_context(_flock(app_lock_file(app), fcntl.LOCK_EX, step, app))
        yield


@contextmanager
def _flock(path: Path, mode: int, holder: str | None, folder: Path) -> Iterator[None]:
    """`path` locked in `mode` for `folder` (what a refusal names); `holder` noted in it while held (exclusive
    locks only). No lock when the folder does not exist yet, or cannot take the file: the step itself will say
    what is wrong with the folder."""
    if not path.parent.is_dir():
        yield
        return
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        yield
        return
    try:
        try:
            fcntl.flock(descriptor, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            raise MigrateError(f"{folder} is in use by {_holders(path, descriptor)}", FIX) from None
        if holder is not None:
            _note_holder(descriptor, holder)
        try:
            yield
        finally:
            if holder is not None:
                _note_holder(descriptor, "")
    finally:
        os.close(descriptor)  # closing releases the lock


def _app_of(lock: Path) -> Path:
    return lock.parent / lock.name.removeprefix(".migrate.").removesuffix(".lock")


def _holders(path: Path, descriptor: int) -> str:
    """Who holds `path`: the note of an exclusive holder, else (the working directory's lock, shared by app
    steps) the notes of the app locks held now."""
    noted = os.pread(descriptor, 4096, 0).decode("utf-8", "replace").strip()
    if noted or path.name != LOCK_FILE:
        return noted or "another process"
    held = []
    for app_lock in sorted(path.parent.glob(".migrate.*.lock")):
        with open(app_lock, "rb") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                note = lock.read(4096).decode("utf-8", "replace").strip() or "a step"
                held.append(f"{note} on {_app_of(app_lock).name}")
    return ", ".join(held) or "another process"


def _note_holder(descriptor: int, holder: str) -> None:
    """Say who holds the lock, for a second run's message; only a courtesy, so a full disk does not stop it.
    Unbuffered writes, so nothing is left to fail when the file closes."""
    try:
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, holder.encode("utf-8"), 0)
    except OSError:
        pass
