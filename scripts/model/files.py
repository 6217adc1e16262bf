"""The files of the model's `code/` folder (its code_paths): which are Python, which packages they form."""

from __future__ import annotations

from pathlib import Path

CODE_DIR = "code"


def code_files(root: Path) -> tuple[list[str], list[str]]:
    """Python files and other files under `root/code/`, as paths relative to `root`, sorted."""
    code = root / CODE_DIR
    if not code.is_dir():
        return [], []
    python, other = [], []
    for path in sorted(code.rglob("*")):
        if not path.is_file() or "__pycache__" in path.parts:
            continue
        (python if path.suffix == ".py" else other).append(path.relative_to(root).as_posix())
    return python, other


def packages_of(python_paths: list[str]) -> list[dict]:
    """The folders of code/ that hold Python files: regular packages (with `__init__.py`) or namespace ones."""
    folders: dict[str, bool] = {}
    for path in python_paths:
        parts = path.split("/")[1:-1]  # without `code/` and the file name
        for depth in range(1, len(parts) + 1):
            folder = "/".join(parts[:depth])
            folders.setdefault(folder, False)
        if parts and path.endswith("/__init__.py"):
            folders["/".join(parts)] = True
    return [{"path": f"{CODE_DIR}/{folder}", "module": folder.replace("/", "."), "has_init": has_init}
            for folder, has_init in sorted(folders.items())]
