"""Writes that either happen whole or not at all, and survive a crash once they returned.

A file is written to a temporary name in its own folder, flushed to disk, given the mode of the file it
replaces, and renamed over it; then the folder is flushed so the rename itself survives a power cut. A
write that fails (disk full, read-only folder) removes its temporary file and raises a `MigrateError` that
names the file and the cause, so the user learns which write failed and the old file is still whole.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import stat
import tempfile
from pathlib import Path

from scripts.core.errors import MigrateError

# New files get the usual mode less the umask, as `open(path, "w")` would give them; mkstemp's 0600
# made every rewritten pyproject.toml and databricks.yml private to its owner.
NEW_FILE_MODE = 0o666


def write_text(path: Path, text: str, new_file_mode: int = NEW_FILE_MODE) -> None:
    """Write `text` to `path` through a temporary file in the same folder and an atomic rename."""
    write_bytes(path, text.encode("utf-8"), new_file_mode)


def write_bytes(path: Path, data: bytes, new_file_mode: int = NEW_FILE_MODE) -> None:
    """Write `data` to `path` atomically and durably; an existing file keeps its mode."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        kept_mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else None
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, new_file_mode)
        try:
            with os.fdopen(descriptor, "wb") as stream:
                stream.write(data)
                stream.flush()
                os.fsync(stream.fileno())
            if kept_mode is not None:
                os.chmod(temporary, kept_mode)
            os.replace(temporary, path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        sync_folder(path.parent)
    except OSError as error:
        raise write_failed(path, error) from error


def sync_folder(folder: Path) -> None:
    """Flush a folder's entries (a rename, a new file) to disk; file systems that cannot are left as they are."""
    try:
        descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):  # e.g. EINVAL on file systems without directory fsync
            os.fsync(descriptor)
    finally:
        os.close(descriptor)


def describe(error: OSError) -> str:
    """`No space left on device (ENOSPC)`: the system's words and the code a search finds."""
    name = errno.errorcode.get(error.errno or 0)
    reason = error.strerror or str(error)
    return f"{reason} ({name})" if name else reason


def fix_for(folder: Path, error: OSError) -> str:
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"free space on the disk that holds {folder} (`df -h {folder}`), then run the command again"
    if error.errno == errno.EFBIG:
        return "the file is larger than this system allows (`ulimit -f`); raise the limit, then run again"
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"make {folder} writable for your user (or pass another --workdir), then run the command again"
    return f"check that {folder} exists and is writable, then run the command again"


def write_failed(path: Path, error: OSError) -> MigrateError:
    return MigrateError(f"could not write {path}: {describe(error)}; the previous file, if any, is unchanged",
                        fix_for(path.parent, error))


def staging_dir(target: Path) -> Path:
    """A new empty folder beside `target`, on the same file system, to build it in before `replace_dir`."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    except OSError as error:
        raise write_failed(target, error) from error


def replace_dir(staged: Path, target: Path) -> None:
    """Move a fully built `staged` folder to `target`, replacing what was there.

    The old folder is first renamed aside and only deleted once the new one is in place, so at every
    moment `target` is either the old complete folder or the new complete one.
    """
    aside = None
    if target.exists():
        aside = target.with_name(f".{target.name}.old-{os.getpid()}")
        if aside.exists():
            shutil.rmtree(aside)
        os.replace(target, aside)
    try:
        os.replace(staged, target)
    except BaseException:
        if aside is not None:
            os.replace(aside, target)
        raise
    sync_folder(target.parent)
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)
