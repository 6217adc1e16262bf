"""The download check: the source facts are whole, and the original, where present, is unchanged.

A reviewer of the app folder has only `migration/source/`: the copies of MLmodel, input example and
requirements must match the manifest's hashes. In the working directory the original itself is hashed
again, so any edit to `original_mlflow_model/` after the download shows.
"""

from __future__ import annotations

import json

from scripts.core.findings import Finding
from scripts.core.layout import SOURCE_MANIFEST, MigrationLayout
from scripts.source_facts import (COPIED_FILES, UnreadableManifest, file_sha256, hash_tree, manifest_digest,
                                  read_manifest)

REDOWNLOAD = "run `migrate download --force` in the working directory to download the original again"


def check_manifest(layout: MigrationLayout, manifest: dict, report: dict) -> list[Finding]:
    shown = layout.relative(layout.source / SOURCE_MANIFEST)
    findings = []
    if manifest_digest(manifest["files"]) != manifest["digest"]:
        findings.append(Finding("SRC002", "error", shown, "the manifest's file list does not match its digest",
                                REDOWNLOAD))
    if manifest["digest"] != report["payload"]["digest"] or manifest["model"]["uri"] != report["payload"]["model"]["uri"]:
        findings.append(Finding("SRC003", "error", shown,
                                "the manifest describes another download than the download report",
                                REDOWNLOAD))
    for name in COPIED_FILES:
        copy = layout.source / name
        expected = manifest["files"].get(name)
        if expected is None:
            continue
        if not copy.is_file():
            findings.append(Finding("SRC004", "error", layout.relative(copy),
                                    f"the copy of the original's {name} is missing", REDOWNLOAD))
        elif file_sha256(copy) != expected["sha256"]:
            findings.append(Finding("SRC005", "error", layout.relative(copy),
                                    f"the copy of the original's {name} differs from what was downloaded",
                                    f"{REDOWNLOAD}; source copies must not be edited"))
    return findings


def check_original(layout: MigrationLayout, manifest: dict) -> list[Finding]:
    """Every file of the original as downloaded: none changed, none missing, none added."""
    now = hash_tree(layout.original)
    then = manifest["files"]
    findings = []
    for path in sorted(then.keys() | now.keys()):
        shown = f"{layout.relative(layout.original)}/{path}"
        if path not in now:
            findings.append(Finding("SRC006", "error", shown, "a file of the downloaded model is missing",
                                    f"{REDOWNLOAD}; never edit original_mlflow_model/"))
        elif path not in then:
            findings.append(Finding("SRC007", "error", shown, "a file was added to the downloaded model",
                                    "move it out of original_mlflow_model/ (the original is never modified)"))
        elif now[path]["sha256"] != then[path]["sha256"]:
            findings.append(Finding("SRC008", "error", shown, "a file of the downloaded model was changed",
                                    f"{REDOWNLOAD}; make changes in the app folder, never in the original"))
    return findings


def check_download(layout: MigrationLayout) -> list[Finding]:
    report = json.loads(layout.report_path("download").read_text(encoding="utf-8"))
    try:
        manifest = read_manifest(layout)
    except UnreadableManifest as error:
        return [Finding("SRC009", "error", layout.relative(layout.source / SOURCE_MANIFEST), str(error),
                        f"{REDOWNLOAD} (it replaces the manifest); never edit or merge migration/source/ by hand")]
    if manifest is None:
        return [Finding("SRC001", "error", layout.relative(layout.source / SOURCE_MANIFEST),
                        "the source manifest is missing: nothing proves what the original was", REDOWNLOAD)]
    findings = check_manifest(layout, manifest, report)
    if layout.original.is_dir():
        findings.extend(check_original(layout, manifest))
    return findings
