"""The one reader of requirements.txt lines, shared by analyze (what the agent needs) and setup (what the app
installs), so both steps agree on what each line is and say the same true thing about the lines they cannot use.

It follows pip's file format where a model's requirements.txt uses it: `#` comments (at the start or after
whitespace), `\\` line continuations, per-requirement options (`--hash` is dropped: hashes serve pip's
hash-checking mode, and uv.lock records its own), bare URLs (`git+https://…#egg=name`, wheel and sdist links),
`-e`, `-r`/`-c` and index options. A line is a package when a name and a requirement can be made of it.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import InvalidSdistFilename, InvalidWheelFilename, parse_sdist_filename, parse_wheel_filename

COMMENT = re.compile(r"(^|\s+)#.*$")
EGG = re.compile(r"[#&]egg=([A-Za-z0-9][A-Za-z0-9._-]*)")
# Options pip accepts after a requirement on the same line; none changes which package is installed.
PER_REQUIREMENT_OPTIONS = ("--hash", "--global-option", "--config-settings", "-C")
INCLUDES = {"-r": "requirements", "--requirement": "requirements", "-c": "constraints", "--constraint": "constraints"}
INDEX_OPTIONS = ("-i", "--index-url", "--extra-index-url", "-f", "--find-links", "--no-index", "--trusted-host")


@dataclass(frozen=True)
class RequirementLine:
    """One logical line of requirements.txt: what it is, the requirement made of it, and why not when none."""

    line: str  # as written, the comment removed and continuations joined
    number: int  # where it starts in the file, from 1
    kind: str  # package | url | path | option | invalid
    requirement: Requirement | None = None
    reason: str | None = None  # for a line with no requirement: why, in words that are true for it
    note: str | None = None  # for a package line: what of the line was left out (hashes, editable)


def logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, text) per logical line: comments removed, `\\`-continued lines joined."""
    joined: list[tuple[int, str]] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if not pending:
            start = number
        if raw.endswith("\\"):
            pending += raw[:-1] + " "
            continue
        line = COMMENT.sub("", pending + raw).strip()
        pending = ""
        if line:
            joined.append((start, line))
    if pending and COMMENT.sub("", pending).strip():
        joined.append((start, COMMENT.sub("", pending).strip()))
    return joined


def read_requirement_lines(text: str) -> list[RequirementLine]:
    return [classify(line, number) for number, line in logical_lines(text)]


def split_options(line: str) -> tuple[str, list[str]]:
    """The requirement part of a line and the per-requirement options after it (`--hash=…`, `--hash …`)."""
    positions = [match.start() for option in PER_REQUIREMENT_OPTIONS
                 for match in re.finditer(rf"(?:^|\s){re.escape(option)}(?:[=\s]|$)", line)]
    if not positions:
        return line, []
    cut = min(positions)
    return line[:cut].strip(), line[cut:].split()


def classify(line: str, number: int) -> RequirementLine:
    if line.startswith("-e ") or line.startswith("--editable"):
        return editable(line, number)
    if line.startswith("-"):
        return option(line, number)
    written, options = split_options(line)
    note = None
    if options:
        dropped = sorted({item.split("=", 1)[0] for item in options if item.startswith("-")})
        note = (f"{', '.join(dropped)} left out: hashes serve pip's hash-checking mode and uv.lock records its own"
                if dropped == ["--hash"] else f"{', '.join(dropped)} left out: pip build options have no "
                                              "pyproject.toml equivalent")
    if "://" in written.split(";")[0] and " @ " not in written and not written.startswith(("file:", "./", "/")):
        return direct_reference(line, written, number, note)
    if " @ " not in written and (written.startswith((".", "/", "file:")) or
                                 written.endswith((".whl", ".tar.gz", ".zip"))):
        return RequirementLine(line, number, "path", reason="a path on the machine the model was logged on: the "
                               "app cannot install from it; publish the package or copy its code into the app")
    try:
        return RequirementLine(line, number, "package", Requirement(written), note=note)
    except InvalidRequirement as error:
        return RequirementLine(line, number, "invalid", reason=f"not a requirement pip or uv can read: {error}")


def direct_reference(line: str, url: str, number: int, note: str | None) -> RequirementLine:
    """A bare URL: `NAME @ URL` when the name is in the link (`#egg=`, a wheel or sdist file name)."""
    name = package_name_in(url)
    if name is None:
        return RequirementLine(line, number, "url", reason="a direct reference without a package name: "
                               "pyproject.toml needs `NAME @ URL`; add it to the app's dependencies with the "
                               "package's name (or add `#egg=NAME` to the line)")
    base, _, fragment = url.partition("#")
    kept = "&".join(part for part in fragment.split("&") if part and not part.startswith("egg="))
    target = f"{base}#{kept}" if kept else base
    try:
        return RequirementLine(line, number, "package", Requirement(f"{name} @ {target}"), note=note)
    except InvalidRequirement as error:
        return RequirementLine(line, number, "invalid", reason=f"a URL pip or uv cannot read: {error}")


def package_name_in(url: str) -> str | None:
    egg = EGG.search(url)
    if egg:
        return egg.group(1)
    filename = url.split("#", 1)[0].split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    try:
        return str(parse_wheel_filename(filename)[0])
    except InvalidWheelFilename:
        pass
    try:
        return str(parse_sdist_filename(filename)[0])
    except InvalidSdistFilename:
        return None


def editable(line: str, number: int) -> RequirementLine:
    """`-e URL#egg=NAME` installs NAME from the URL (not editable in an app); `-e ./path` cannot be carried."""
    target = line.split(None, 1)[1].strip() if " " in line else line.partition("=")[2].strip()
    if "://" in target:
        found = direct_reference(line, target, number, "installed from its URL, not as an editable checkout")
        return found
    return RequirementLine(line, number, "path", reason="an editable install of a local folder: the app cannot "
                           "install from it; publish the package or copy its code into the app")


def option(line: str, number: int) -> RequirementLine:
    try:
        words = shlex.split(line)
    except ValueError:
        words = line.split()
    name = words[0].split("=", 1)[0]
    argument = words[0].partition("=")[2] or (words[1] if len(words) > 1 else "")
    if name in INCLUDES:
        reason = (f"pulls in the {INCLUDES[name]} file {argument}, which the model does not carry: add what it "
                  "lists to the app's pyproject.toml by hand")
    elif name in INDEX_OPTIONS:
        reason = ("a package index option: uv reads indexes from `[[tool.uv.index]]` in pyproject.toml; add the "
                  "index there if the agent's packages come from it")
    else:
        reason = "a pip install option: it has no pyproject.toml equivalent and is left out"
    return RequirementLine(line, number, "option", reason=reason)
