"""The source facts: what a reviewer needs of the original model without having the original.

`migration/source/` holds a copy of MLmodel, input_example.json and requirements.txt, and `manifest.json`
with the sha256 and size of every file of `original_mlflow_model/`. The download step writes them; the
step that creates the app carries them in; checks compare both the copies and the original against them.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from scripts.core import atomic
from scripts.core.layout import SOURCE_MANIFEST, MigrationLayout

# The original's files a reviewer reads directly; everything else is known by its hash.
COPIED_FILES = ("MLmodel", "input_example.json", "requirements.txt", "python_env.yaml")
CHUNK = 1 << 20


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def hash_tree(folder: Path) -> dict[str, dict]:
    """`{relative posix path: {"sha256", "bytes"}}` for every file under `folder`, in sorted order."""
    return {
        path.relative_to(folder).as_posix(): {"sha256": file_sha256(path), "bytes": path.stat().st_size}
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def manifest_digest(files: dict[str, dict]) -> str:
    """One hash for the whole tree: equal exactly when every path and content is equal."""
    lines = "".join(f"{path}\0{entry['sha256']}\n" for path, entry in sorted(files.items()))
    return hashlib.sha256(lines.encode()).hexdigest()


def write_source_facts(layout: MigrationLayout, original: Path, model: dict) -> dict:
    """Copy the reviewer's files and write the manifest of `original` into `layout.source`; return it."""
    files = hash_tree(original)
    for name in COPIED_FILES:
        if (original / name).is_file():
            atomic.write_bytes(layout.source / name, (original / name).read_bytes())
    manifest = {"model": model, "digest": manifest_digest(files), "files": files}
    atomic.write_text(layout.source / SOURCE_MANIFEST, json.dumps(manifest, indent=2) + "\n")
    return manifest


class UnreadableManifest(Exception):
    """The manifest exists but is not one `migrate download` wrote: bad bytes, bad JSON or the wrong shape
    (a merge-conflict marker, a hand edit). Its message says which."""


def read_manifest(layout: MigrationLayout) -> dict | None:
    """The manifest of the download in place, None when there is none; `UnreadableManifest` when it is broken."""
    from scripts.core.schema_registry import validation_errors

    path = layout.source / SOURCE_MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UnreadableManifest(f"{layout.relative(path)} cannot be read: {error}") from error
    errors = validation_errors(manifest, "manifest")
    if errors:
        raise UnreadableManifest(f"{layout.relative(path)} is not a download manifest: {errors[0]}")
    return manifest
