"""`migrate code`: move the agent's code from `original_mlflow_model/` into the app's `agent_server/`.

Reads the download (never modifies it), finds the entry file from MLmodel, rewrites it into
`agent_server/agent.py` with `@invoke`/`@stream` handlers (extract mode, or wrapper mode when extraction
is unsafe; a ChatAgent, ChatModel or LangChain model is served through an adapter: `scripts/code_entry.py`),
copies `code/` as modules of `agent_server` and `artifacts/` into `agent_server/artifacts/`, and writes a config logged with `model_config=` (kept inside MLmodel) to `agent_server/model_config.yml`.
The new `agent_server/` is built in a staging folder and swapped in whole; files the user changed since an
earlier run are not overwritten without `--force`.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
from pathlib import Path

import libcst as cst
import yaml

from scripts.code_entry import (ADAPTED, ENTRY_PATH, MODEL_CONFIG_PATH, EntryModule, request_path_roots,
                                 served_methods, transform_entry)
from scripts.code_findings import step_findings
from scripts.core import atomic
from scripts.core.errors import MigrateError
from scripts.core.layout import ORIGINAL_DIR, MigrationLayout, find_app
from scripts.core.reports import StepReport, read_report
from scripts.model.blocking import BlockingCall, blocking_calls
from scripts.model.parsed_modules import parse_app_modules
from scripts.transform import patterns, per_request, user_credentials
from scripts.transform.module_rewrite import rewrite_module
from scripts.transform.modules import APP_PACKAGE, ARTIFACTS_DIR, CodeTree, ModelFiles, plan_code_tree
from scripts.transform.original import OriginalModel, read_analysis, read_original, read_python, syntax_error

STEP = "code"
MODES = ("sync", "async")
SYNC_BRIDGE = f"{APP_PACKAGE}/sync_bridge.py"
# Scaffold files this step writes only into an app scaffolded before they existed (never replaced, never stale).
LOOP_BRIDGE = f"{APP_PACKAGE}/loop_bridge.py"
SCAFFOLD_SHIPPED = (SYNC_BRIDGE, *(kind.ADAPTER.path for kind in ADAPTED.values()), LOOP_BRIDGE)
# Calls that start or nest an event loop; files without these words are not parsed again in sync mode.
LOOP_WORDS = (b"asyncio", b"run_until_complete", b"nest_asyncio")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mode", required=True, choices=MODES,
                        help="sync: keep the agent's sync code and run it in worker threads; async: write async "
                             "handlers and list the blocking calls to convert")
    parser.add_argument("--app", type=Path, help="the app folder (default: the one app folder in --workdir)")
    parser.add_argument("--force", action="store_true",
                        help="overwrite files of agent_server/ that were changed since they were written")


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


# ---------------------------------------------------------------------------------------------------- files


def planned_files(original: OriginalModel, tree: CodeTree, entry_code: str) -> tuple[dict[str, bytes], dict[str, str], list]:
    """Every file this step writes under the app (relative path → content), where each comes from, rewrites."""
    files: dict[str, bytes] = {ENTRY_PATH: entry_code.encode("utf-8")}
    sources = {ENTRY_PATH: original.entry.name}
    rewrites = []
    for source, target in tree.files.items():
        data = (original.root / source).read_bytes()
        if target.endswith(".py"):
            text = read_python(original.root / source, f"{ORIGINAL_DIR}/{source}")
            try:
                rewrite = rewrite_module(text, tree, original.artifact_keys, target, original.model_config is not None,
                                         ModelFiles(original.root, tree))  # patterns: issue 11
            except cst.ParserSyntaxError as error:
                raise syntax_error(error, f"{ORIGINAL_DIR}/{source}") from error
            rewrites.append((target, rewrite))
            data = rewrite.code.encode("utf-8")
        files[target] = data
        sources[target] = source
    if original.model_config is not None:
        header = ("# The model config logged with the agent (MLmodel flavors.python_function.config), written by\n"
                  "# `migrate code`: ModelConfig(...) in the agent reads this file in the app.\n")
        files[MODEL_CONFIG_PATH] = (header + yaml.safe_dump(original.model_config, sort_keys=False)).encode("utf-8")
        sources[MODEL_CONFIG_PATH] = "MLmodel"
    artifacts = original.root / ARTIFACTS_DIR
    if artifacts.is_dir():
        for path in sorted(artifacts.rglob("*")):
            if path.is_file():
                relative = path.relative_to(original.root).as_posix()
                files[f"{APP_PACKAGE}/{relative}"] = path.read_bytes()
                sources[f"{APP_PACKAGE}/{relative}"] = relative
    return files, sources, rewrites


def previously_written(layout: MigrationLayout) -> dict[str, str]:
    """Hashes of what earlier runs of this step (and the scaffold, for agent.py) wrote, by app path."""
    written = {}
    scaffold = read_report(layout, "scaffold")
    for entry in (scaffold or {}).get("payload", {}).get("files", []):
        if entry["path"] == ENTRY_PATH and entry.get("written_sha256"):
            written[ENTRY_PATH] = entry["written_sha256"]
    previous = read_report(layout, STEP)
    for entry in (previous or {}).get("payload", {}).get("files", []):
        written[entry["path"]] = entry["sha256"]
    return written


def changed_by_user(app_dir: Path, files: dict[str, bytes], written: dict[str, str]) -> list[str]:
    changed = []
    for relative, content in files.items():
        target = app_dir / relative
        if not target.is_file():
            continue
        current = sha256(target.read_bytes())
        if current != sha256(content) and written.get(relative) != current:
            changed.append(relative)
    return changed


def build_agent_server(app_dir: Path, files: dict[str, bytes], stale: set[str]) -> Path:
    """A staging copy of agent_server/ with this step's files in place; files of others are kept."""
    target = app_dir / APP_PACKAGE
    staged = atomic.staging_dir(target)
    try:
        if target.is_dir():
            shutil.copytree(target, staged, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
        for relative in stale:  # paths from the last report: resolved, and only ever inside agent_server/
            stale_file = (staged / Path(relative).relative_to(APP_PACKAGE)).resolve()
            if not stale_file.is_relative_to(staged.resolve()):
                raise MigrateError(f"the code report names {relative}, outside {APP_PACKAGE}/",
                                   "run `migrate code --force` after deleting migration/reports/code.json; "
                                   "reports are never edited by hand")
            stale_file.unlink(missing_ok=True)
        for relative, content in files.items():
            path = staged / Path(relative).relative_to(APP_PACKAGE)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    return staged


# ---------------------------------------------------------------------------------------------------- the step


def migrate_code(workdir: Path, app: Path | None, mode: str, force: bool) -> StepReport:
    layout = find_app(workdir, app)
    app_dir = layout.root
    report = StepReport(step=STEP, inputs={"mode": mode, "app": layout.relative(app_dir), "force": force},
                        layout=layout)
    original = read_original(layout)
    tree = plan_code_tree(original.root / "code")
    request_state = per_request.plan_request_state(read_analysis(layout)["state"])  # request state
    entry, entry_rewrite = transform_entry(original, tree, mode, request_state)
    files, sources, rewrites = planned_files(original, tree, entry.code)
    credential_sites = user_credentials.rewrite_app_files(files, APP_PACKAGE)  # user-identity
    name_sites = patterns.add_original_names(files, sources, tree, ENTRY_PATH, original.root)  # patterns: issue 11
    rewrites.insert(0, (ENTRY_PATH, entry_rewrite))
    add_shipped_helpers(app_dir, mode, entry, files, sources)
    refuse_user_changes(layout, files, force)
    found_blocking = write_agent_server(layout, files, mode, entry)
    report.findings = step_findings(app_dir, mode, entry, original, tree, rewrites, credential_sites, name_sites,
                                    found_blocking)
    report.payload = code_payload(mode, entry, original, tree, rewrites, found_blocking, files, sources)
    report.outputs = {"agent_server": layout.relative(app_dir / APP_PACKAGE)}
    return report


def add_shipped_helpers(app_dir: Path, mode: str, entry: EntryModule, files: dict[str, bytes], sources: dict[str, str]) -> None:
    """The scaffold's helper modules this agent's handlers call, for an app scaffolded before they existed."""
    shipped = [SYNC_BRIDGE] if mode == "sync" else []
    if mode == "sync" and entry.plan.native_async:
        shipped = [SYNC_BRIDGE, LOOP_BRIDGE]  # async-native agent: its coroutines on one background loop
    if entry.agent.mode in ADAPTED:  # served through an adapter, in worker threads in both modes
        shipped = [SYNC_BRIDGE, ADAPTED[entry.agent.mode].ADAPTER.path]
    for relative in shipped:
        if not (app_dir / relative).is_file():
            files[relative] = (Path(__file__).resolve().parent.parent / relative).read_bytes()
            sources[relative] = "scaffold"


def refuse_user_changes(layout: MigrationLayout, files: dict[str, bytes], force: bool) -> None:
    app_dir = layout.root
    changed = changed_by_user(app_dir, files, previously_written(layout))
    if changed and not force:
        raise MigrateError(f"{len(changed)} file(s) in {app_dir.name}/ changed since they were written: "
                           f"{', '.join(changed)}",
                           "keep your changes elsewhere, or pass --force to overwrite them", code="COD003")


def write_agent_server(layout: MigrationLayout, files: dict[str, bytes], mode: str,
                       entry: EntryModule) -> list[BlockingCall]:
    """Stage agent_server/, list the blocking calls its request path makes, and swap it in whole; the blocking
    calls found (in a sync app only those that start or nest an event loop: worker threads may block)."""
    app_dir = layout.root
    previous = read_report(layout, STEP) or {}
    stale = {entry_["path"] for entry_ in previous.get("payload", {}).get("files", [])
             if entry_["path"] not in files and entry_["path"] not in SCAFFOLD_SHIPPED}
    staged = build_agent_server(app_dir, files, stale)
    try:
        found_blocking = []
        if mode == "async" or any(word in content for content in files.values() for word in LOOP_WORDS):
            modules = parse_app_modules(staged, APP_PACKAGE, lazy=True)  # a large agent: only what is reached
            in_threads = mode == "sync" or entry.agent.mode in ADAPTED
            found_blocking = blocking_calls(modules, request_path_roots(entry, in_threads))
            if in_threads:
                found_blocking = [site for site in found_blocking if site.kind == "event-loop"]
        atomic.replace_dir(staged, app_dir / APP_PACKAGE)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    return found_blocking


def code_payload(mode: str, entry: EntryModule, original: OriginalModel, tree: CodeTree, rewrites: list,
                 found_blocking: list[BlockingCall], files: dict[str, bytes], sources: dict[str, str]) -> dict:
    agent = entry.agent
    return {
        "mode": mode,
        "transform": "not_converted" if entry.plan.refuse else agent.mode,
        "agent_class": agent.class_name,
        "interface": agent.interface,
        "entry_source": f"original_mlflow_model/{original.entry.name}",
        "entry_module": ENTRY_PATH,
        "wrapper_reason": agent.reasons[0] if agent.reasons else None,
        "handlers": {"invoke": entry.plan.invoke_name, "stream": entry.plan.stream_name},
        "served_methods": served_methods(entry.plan),
        "predict_calls_predict_stream": agent.predict_calls_stream,
        "state": agent.state,
        "request_state": entry.request_state.facts(),
        "functions": agent.functions,
        "renamed_modules": tree.renamed,
        "import_rewrites": [{"path": path, "from": old, "to": new}
                            for path, rewrite in rewrites for old, new in rewrite.imports],
        "artifact_references": [{"path": path, "line": site.line, "reference": site.reference,
                                 "target": f"{APP_PACKAGE}/{ARTIFACTS_DIR}/{site.target}" if site.target else None}
                                for path, rewrite in rewrites for site in rewrite.artifacts]
                               + [{"path": path, "line": site.line, "reference": site.reference,
                                   "target": MODEL_CONFIG_PATH}
                                  for path, rewrite in rewrites for site in rewrite.model_config],
        "blocking_calls": [{"path": site.path, "line": site.line, "call": site.call, "kind": site.kind,
                            "function": site.function, "fix": site.fix} for site in found_blocking],
        "files": [{"path": path, "source": sources[path], "sha256": sha256(content)}
                  for path, content in sorted(files.items())],
    }


def run(args: argparse.Namespace) -> StepReport:
    report = migrate_code(args.workdir, args.app, args.mode, args.force)
    payload = report.payload
    print(f"{payload['entry_source']} → {payload['entry_module']} ({payload['transform']} mode, "
          f"{payload['mode']} handlers)")
    print(f"  {len(payload['files'])} file(s) written under {report.outputs['agent_server']}/")
    return report
