"""The app's `resources` and `user_api_scopes` in databricks.yml, as the resources step edits them.

Entries are found by what they grant (`identity`), not by name, so a resource the user renamed or added by
hand is recognised; new entries get readable, unique names. The ruamel containers keep the user's comments.
"""

from __future__ import annotations

import re

from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from scripts.model.app_resources import (EXPERIMENT_RESOURCE, MAPPINGS, RESOURCE_NAME_MAX, SourceResource, identity,
                                         resource_kind)


def readable_name(label: str, target: str) -> str:
    """`label-<last part of the target's name>`, as a valid resource name."""
    last = re.split(r"[./]", target)[-1]
    slug = re.sub(r"[^a-z0-9]+", "-", f"{label}-{last}".lower()).strip("-")
    return slug[:RESOURCE_NAME_MAX].rstrip("-") or label


def unique_name(base: str, taken: set[str]) -> str:
    name, counter = base, 2
    while name in taken:
        suffix = f"-{counter}"
        name = base[:RESOURCE_NAME_MAX - len(suffix)].rstrip("-") + suffix
        counter += 1
    return name


def base_name(source: SourceResource, kind: str) -> str:
    if source.type in ("sql_warehouse", "genie_space"):
        return MAPPINGS[source.type].label  # their names are opaque ids
    if kind == "postgres":
        return readable_name("postgres", source.name.split("/")[1])
    return readable_name(MAPPINGS[source.type].label, source.name)


def block_map(pairs: list[tuple[str, object]]) -> CommentedMap:
    mapping = CommentedMap()
    for key, value in pairs:
        mapping[key] = value
    return mapping


class AppResources:
    """The app section's `resources` list (created when missing), indexed by what each entry grants."""

    def __init__(self, app: CommentedMap):
        entries = app.get("resources")
        if not isinstance(entries, list):
            entries = CommentedSeq()
            app["resources"] = entries
        self.entries = entries
        self.by_identity: dict = {}
        for entry in entries:
            if isinstance(entry, dict) and (kind := resource_kind(entry)):
                self.by_identity.setdefault(identity(kind, entry.get(kind)), entry)
        self.taken = {str(entry.get("name")) for entry in entries if isinstance(entry, dict)}

    def ensure_experiment(self) -> bool:
        """The app's `experiment` resource (MLFLOW_EXPERIMENT_ID reads it): re-added if it was removed."""
        if any(isinstance(entry, dict) and resource_kind(entry) == "experiment" for entry in self.entries):
            return False
        self.entries.insert(0, block_map([("name", EXPERIMENT_RESOURCE), ("experiment", block_map(
            [("experiment_id", "${var.experiment_id}"), ("permission", "CAN_MANAGE")]))]))
        return True

    def granting(self, kind: str, spec: dict) -> dict | None:
        """The entry that grants what (kind, spec) grants, whatever its name and permission."""
        return self.by_identity.get(identity(kind, spec))

    def add(self, source: SourceResource, kind: str, spec: dict) -> str:
        """Append an entry for `source` under a readable name no other entry has; return the name."""
        name = unique_name(base_name(source, kind), self.taken)
        self.taken.add(name)
        self.entries.append(block_map([("name", name), (kind, block_map(list(spec.items())))]))
        self.by_identity[identity(kind, spec)] = self.entries[-1]
        return name


def add_user_scopes(app: CommentedMap, scopes: list[str]) -> list[str]:
    """Add missing scopes to the app's `user_api_scopes` (the user's own entries stay); return what was added."""
    if not scopes:
        return []
    current = app.get("user_api_scopes")
    if not isinstance(current, list):
        current = CommentedSeq()
        app["user_api_scopes"] = current
    added = [scope for scope in scopes if scope not in current]
    current.extend(added)
    return added


SERVER_SCRIPT = "start-server"


def set_server_workers(app: CommentedMap, workers: int) -> None:
    """`start-server --workers N` in the app's command, keeping the rest of it. A count of 1 is written too, so
    a later `migrate resources` keeps the choice instead of applying its default."""
    config = app.setdefault("config", CommentedMap())
    command = [str(part) for part in (config.get("command") or ["uv", "run", SERVER_SCRIPT])]
    if "--workers" in command:
        at = command.index("--workers")
        del command[at:at + 2]
    command = [part for part in command if not part.startswith("--workers=")]
    command += ["--workers", str(workers)]
    flow = CommentedSeq(DoubleQuotedScalarString(part) for part in command)
    flow.fa.set_flow_style()  # as the scaffold writes it: command: ["uv", "run", "start-server"]
    config["command"] = flow
