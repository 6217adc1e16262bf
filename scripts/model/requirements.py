"""requirements.txt of the model, line by line, each with the package it names when it names one."""

from __future__ import annotations

from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name


def parse_requirements(text: str) -> list[dict]:
    """requirements.txt lines (comments and blanks dropped), each with the package it names when it names one."""
    entries = []
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        if not line:
            continue
        entry = {"line": line, "kind": "package", "name": None, "specifier": "", "extras": [], "marker": None}
        if line.startswith("-"):
            entry["kind"] = "option"  # -r, -c, --extra-index-url, -e ...
        elif "://" in line.split(";")[0] and " @ " not in line:
            entry["kind"] = "url"
        elif " @ " not in line and (line.startswith((".", "/")) or line.endswith((".whl", ".tar.gz", ".zip"))):
            entry["kind"] = "path"
        else:
            try:
                requirement = Requirement(line)
            except InvalidRequirement:
                entry["kind"] = "invalid"
            else:
                entry.update(name=canonicalize_name(requirement.name), specifier=str(requirement.specifier),
                             extras=sorted(requirement.extras),
                             marker=str(requirement.marker) if requirement.marker else None)
        entries.append(entry)
    return entries


def read_requirements(path: Path) -> list[dict] | None:
    return parse_requirements(path.read_text(encoding="utf-8")) if path.is_file() else None
