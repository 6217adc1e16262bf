"""What git would commit of an app folder, by its .gitignore (matched by pathspec's GitIgnoreSpec, git's rules).

The one answer to "is .env ignored" and "which files would be committed and deployed", for setup (which adds
`.env`), the scaffold and setup checks, and the secret scan.
"""

from __future__ import annotations

from pathlib import Path

from pathspec import GitIgnoreSpec

ENV_FILE = ".env"
# Never committed whatever .gitignore says: git's own folder, environments, caches, the CLI's state.
ALWAYS_SKIPPED = frozenset({".git", ".venv", "node_modules", "__pycache__", ".databricks"})


def ignore_spec(app_dir: Path) -> GitIgnoreSpec:
    path = app_dir / ".gitignore"
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines() if path.is_file() else []
    return GitIgnoreSpec.from_lines(lines)


def is_ignored(app_dir: Path, relative: str) -> bool:
    return ignore_spec(app_dir).match_file(relative)


def env_is_ignored(app_dir: Path) -> bool:
    return is_ignored(app_dir, ENV_FILE)


def committed_files(app_dir: Path) -> list[Path]:
    """The files of the app folder git would commit (sorted), skipping ALWAYS_SKIPPED folders."""
    spec = ignore_spec(app_dir)
    found = []
    for path in sorted(app_dir.rglob("*")):
        relative = path.relative_to(app_dir).as_posix()
        if path.is_file() and not ALWAYS_SKIPPED & set(relative.split("/")) and not spec.match_file(relative):
            found.append(path)
    return found
