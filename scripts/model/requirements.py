"""requirements.txt of the model, line by line, each with the package it names when it names one."""

from __future__ import annotations

from pathlib import Path

from packaging.utils import canonicalize_name

from scripts.model.requirement_lines import read_requirement_lines


def parse_requirements(text: str) -> list[dict]:
    """requirements.txt lines (comments and blanks dropped), each with the package it names when it names one."""
    entries = []
    for read in read_requirement_lines(text):
        entry = {"line": read.line, "kind": read.kind, "name": None, "specifier": "", "extras": [], "marker": None}
        if read.requirement is not None:
            requirement = read.requirement
            entry.update(name=canonicalize_name(requirement.name), specifier=str(requirement.specifier),
                         extras=sorted(requirement.extras),
                         marker=str(requirement.marker) if requirement.marker else None)
        entries.append(entry)
    return entries


def read_requirements(path: Path) -> list[dict] | None:
    return parse_requirements(path.read_text(encoding="utf-8")) if path.is_file() else None
