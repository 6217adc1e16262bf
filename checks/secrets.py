"""The one secret scanner: one pattern table, run over the files git would commit, for every check.

A hit is reported once: under COD019 by the code check when it is in the migrated code (agent_server/), and
under RES113 by the bundle check anywhere else in the app (databricks.yml, app.yaml, README, config files).
The secret itself is never repeated in a message, only its first characters and length.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from scripts.gitignore import committed_files

CODE_FOLDER = "agent_server"
LARGEST_SCANNED = 2_000_000

# Credentials recognisable by their shape, wherever they appear.
SECRET_PATTERNS = [
    ("a Databricks personal access token", re.compile(r"\bdapi[0-9a-f]{32}(?:-\d+)?\b")),
    ("a Databricks OAuth secret", re.compile(r"\bdose[0-9a-f]{32}\b")),
    ("an OpenAI or Anthropic API key", re.compile(r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}")),
    ("a GitHub token", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b")),
    ("an AWS access key", re.compile(r"\bAKIA[0-9A-Z]{16}\b")),
    ("a private key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")),
    # postgresql://user:password@host — a password that is a placeholder (${VAR}, <pw>, {x}, *) is no secret.
    ("a password in a URL", re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@'\"]+:(?![$<{*])[^/\s@'\"]{3,}@")),
]
# `password: ...`, `API_KEY = "..."`: a key that names a secret, with a literal value.
SECRET_WORDS = r"password|passwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|credential"
KEY_VALUE = re.compile(
    rf"""^\s*-?\s*["']?(?P<key>[A-Za-z0-9_.-]*(?:{SECRET_WORDS})[A-Za-z0-9_.-]*)["']?\s*[:=]\s*(?P<value>.+?)\s*,?\s*$""",
    re.IGNORECASE)
# Keys that name where a secret lives rather than hold it (`TOKEN_HEADER`, `secret_scope`, `API_KEY_ENV`).
NAMES_A_PLACE = re.compile(r"(?:header|name|env|var|variable|path|file|url|scope|type|field|prefix|id)$", re.IGNORECASE)
KEY_VALUE_SUFFIXES = {".py", ".yml", ".yaml", ".toml", ".json", ".cfg", ".ini", ".conf", ".sh", ".txt", ".md"}
NOT_A_VALUE = re.compile(r"""^(?:\$\{|\{\{|<|os\.|getenv|environ|\[|\{|\(|None$|null$|~$|true$|false$|[-+]?\d+(?:\.\d+)?$)""",
                         re.IGNORECASE)
CONFIG_FILES = ("databricks.yml", "app.yaml")


@dataclass(frozen=True)
class SecretHit:
    relative: str  # inside the app folder, posix
    line: int | None
    what: str  # what was found, with the secret masked

    @property
    def in_code(self) -> bool:
        return self.relative.split("/", 1)[0] == CODE_FOLDER


def masked(secret: str) -> str:
    return f"{secret[:4]}… ({len(secret)} characters)"


def literal_value(value: str, python: bool) -> str | None:
    """The secret-looking literal in the right side of `key: value` / `key = value`, or None."""
    value = re.split(r"\s+#", value, maxsplit=1)[0].strip().rstrip(",").strip()
    quoted = len(value) >= 2 and value[0] == value[-1] and value[0] in "'\""
    if python and not quoted:
        return None  # code, not a literal: `token = get_token()`
    value = value[1:-1] if quoted else value
    if not value or NOT_A_VALUE.match(value) or len(value) < 6:
        return None
    return value


def line_hit(line: str, path: Path) -> str | None:
    for what, pattern in SECRET_PATTERNS:
        match = pattern.search(line)
        if match:
            return f"{what} ({masked(match.group(0))})"
    if path.suffix in KEY_VALUE_SUFFIXES and path.name != "uv.lock":
        match = KEY_VALUE.match(line)
        value = (match and not NAMES_A_PLACE.search(match.group("key"))
                 and literal_value(match.group("value"), path.suffix == ".py"))
        if value:
            return f"a value for {match.group('key')!r} ({masked(value)})"
    return None


def scan(app_dir: Path) -> Iterator[SecretHit]:
    """Every secret-looking value in the files of `app_dir` that git would commit."""
    for path in committed_files(app_dir):
        if path.stat().st_size > LARGEST_SCANNED:
            continue
        data = path.read_bytes()
        if b"\0" in data[:4096]:
            continue
        text = data.decode("utf-8", errors="replace")
        relative = path.relative_to(app_dir).as_posix()
        for number, line in enumerate(text.splitlines(), start=1):
            what = line_hit(line, path)
            if what:
                yield SecretHit(relative, number, what)
        if path.name in CONFIG_FILES:
            yield from env_value_hits(relative, text)


def env_value_hits(relative: str, text: str) -> Iterator[SecretHit]:
    """`env: [{name: API_TOKEN, value: ...}]` in databricks.yml or app.yaml: a literal secret in the config."""
    import yaml

    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError:
        return
    stack = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            name, value = node.get("name"), node.get("value")
            if (isinstance(name, str) and re.search(SECRET_WORDS, name, re.IGNORECASE) and isinstance(value, str)
                    and literal_value(value, python=False)):
                yield SecretHit(relative, None, f"a literal value for env {name!r} ({masked(value)})")
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
