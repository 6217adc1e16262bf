"""Atomic writes: a full disk or a size limit names the file and the cause, leaves nothing half-written, and a
rewritten file keeps its mode."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from scripts.core import atomic
from scripts.core.errors import MigrateError
from tests.conftest import REPO, run_migrate

ANALYZE_FIXTURES = Path(__file__).parent / "fixtures" / "analyze"


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.fixture
def small_disk(tmp_path):
    """A 256 KiB tmpfs mounted for the test: a real disk that fills up. Needs root, as on this project's machines."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def fill(disk: Path) -> None:
    """Write until the disk refuses a byte more."""
    descriptor = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(descriptor, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def test_a_rewritten_file_keeps_its_mode_and_a_new_file_gets_the_usual_one(tmp_path):
    shared = tmp_path / "pyproject.toml"
    shared.write_text("old\n")
    shared.chmod(0o644)
    atomic.write_text(shared, "new\n")
    assert (shared.read_text(), mode_of(shared)) == ("new\n", 0o644)

    executable = tmp_path / "run.sh"
    executable.write_text("#!/bin/sh\n")
    executable.chmod(0o750)
    atomic.write_text(executable, "#!/bin/sh\necho hi\n")
    assert mode_of(executable) == 0o750

    created = tmp_path / "databricks.yml"
    atomic.write_text(created, "bundle: {}\n")
    assert mode_of(created) == 0o666 & ~current_umask()

    private = tmp_path / ".env"
    atomic.write_text(private, "TOKEN=x\n", new_file_mode=0o600)
    assert mode_of(private) == 0o600


def test_a_full_disk_names_the_file_and_keeps_the_old_one_whole(small_disk):
    report = small_disk / "migration" / "reports" / "download.json"
    atomic.write_text(report, '{"old": true}\n')
    fill(small_disk)
    with pytest.raises(MigrateError) as raised:
        atomic.write_text(report, "x" * 100_000)
    assert str(report) in raised.value.message and "ENOSPC" in raised.value.message
    assert "free space" in raised.value.fix
    assert report.read_text() == '{"old": true}\n'
    assert sorted(path.name for path in report.parent.iterdir()) == ["download.json"], "no temporary file is left"


def test_a_file_size_limit_is_a_clear_error_too(tmp_path):
    """RLIMIT_FSIZE in a child process: the write fails with EFBIG through the same code path."""
    target = tmp_path / "manifest.json"
    script = textwrap.dedent(f"""
        import resource, signal, sys
        from pathlib import Path
        from scripts.core import atomic
        from scripts.core.errors import MigrateError
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))
        try:
            atomic.write_text(Path({str(target)!r}), "x" * 5000)
        except MigrateError as error:
            print(error)
            sys.exit(1)
    """)
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO)
    assert completed.returncode == 1, completed.stderr
    assert "EFBIG" in completed.stdout and str(target) in completed.stdout
    assert list(tmp_path.iterdir()) == []


def test_a_step_whose_report_meets_a_full_disk_exits_1_with_the_file_and_the_cause(small_disk):
    workdir = small_disk / "work"
    shutil.copytree(ANALYZE_FIXTURES / "openai_tools", workdir / "original_mlflow_model")
    fill(small_disk)
    completed = run_migrate("analyze", "--workdir", str(workdir))
    assert completed.returncode == 1, completed.stderr
    assert "analyze.json" in completed.stderr and "ENOSPC" in completed.stderr
    assert "This is a bug" not in completed.stderr
    reports = workdir / "migration" / "reports"
    assert not reports.exists() or [path.name for path in reports.iterdir()] == []
