"""Where things live in a migration's working directory and in the app folder.

    <workdir>/original_mlflow_model/   the download, never modified
    <workdir>/migration/               reports and source facts before an app exists
    <workdir>/<app>/migration/         the same, carried into the app by the step that creates it
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ORIGINAL_DIR = "original_mlflow_model"
MIGRATION_DIR = "migration"
REPORTS_DIR = "reports"
SOURCE_DIR = "source"
SOURCE_MANIFEST = "manifest.json"
# What makes a folder an app folder rather than a working directory.
APP_MARKER = "agent_server"


@dataclass(frozen=True)
class MigrationLayout:
    """The folders of one migration, from the folder that holds (or will hold) `migration/`."""

    root: Path
    workdir: Path

    @classmethod
    def for_workdir(cls, workdir: Path) -> MigrationLayout:
        workdir = workdir.resolve()
        return cls(root=workdir, workdir=workdir)

    @classmethod
    def for_app(cls, app_dir: Path) -> MigrationLayout:
        app_dir = app_dir.resolve()
        return cls(root=app_dir, workdir=app_dir.parent)

    @classmethod
    def discover(cls, folder: Path) -> MigrationLayout:
        """The layout seen from `folder`: an app folder (it has `agent_server/`) or a working directory."""
        if (folder / APP_MARKER).is_dir():
            return cls.for_app(folder)
        return cls.for_workdir(folder)

    @property
    def is_app(self) -> bool:
        return self.root != self.workdir

    @property
    def original(self) -> Path:
        return self.workdir / ORIGINAL_DIR

    @property
    def migration(self) -> Path:
        return self.root / MIGRATION_DIR

    @property
    def reports(self) -> Path:
        return self.migration / REPORTS_DIR

    @property
    def source(self) -> Path:
        return self.migration / SOURCE_DIR

    def report_path(self, step: str) -> Path:
        return self.reports / f"{step}.json"

    def relative(self, path: Path) -> str:
        """A path as reports record it: relative to the working directory when it is inside it."""
        try:
            return path.resolve().relative_to(self.workdir).as_posix()
        except ValueError:
            return str(path)


def app_folders(workdir: Path) -> list[Path]:
    """The app folders `migrate scaffold` made in the working directory, by name."""
    if not workdir.is_dir():
        return []
    # Hidden folders are a step's staging or set-aside copies, never an app.
    return sorted(path for path in workdir.iterdir() if not path.name.startswith(".") and (path / APP_MARKER).is_dir())


def find_app(workdir: Path, app: Path | None = None) -> MigrationLayout:
    """The app folder a step works on: `--app` when given, else the one app folder in the working directory."""
    from scripts.core.errors import MigrateError

    if app is not None:
        if not (app / APP_MARKER).is_dir():
            raise MigrateError(f"{app} is not an app folder (it has no {APP_MARKER}/)",
                               "pass the folder `migrate scaffold` created, or run `migrate scaffold` first")
        return MigrationLayout.for_app(app)
    candidates = app_folders(workdir)
    if not candidates:
        raise MigrateError(f"no app folder in {workdir}",
                           "run `migrate scaffold --app-name NAME` first, or pass --app DIR")
    if len(candidates) > 1:
        names = ", ".join(path.name for path in candidates)
        raise MigrateError(f"several app folders in {workdir}: {names}", "say which one with --app DIR")
    return MigrationLayout.for_app(candidates[0])
