"""Reading and editing the app's `databricks.yml` without losing what the user wrote in it.

Round-trip YAML (ruamel.yaml) keeps comments, key order and quoting; a file that would not change is never
rewritten, so a second run of a step leaves it byte-identical. A file the user broke is one error with the
line, and nothing is written.
"""

from __future__ import annotations

import io
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from scripts.core import atomic
from scripts.core.errors import MigrateError

BUNDLE_FILE = "databricks.yml"


def round_trip_yaml() -> YAML:
    """The YAML dumper for databricks.yml: the scaffold's indentation, long lines left alone."""
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096
    return yaml


class BundleSyntaxError(Exception):
    """databricks.yml is not YAML; `line` is 1-based (None when the parser could not tell)."""

    def __init__(self, problem: str, line: int | None):
        super().__init__(problem)
        self.problem = problem
        self.line = line


def parse_bundle_text(text: str) -> CommentedMap:
    """The bundle as round-trip data; raises BundleSyntaxError with the line of the first problem."""
    try:
        data = round_trip_yaml().load(text)
    except MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        problem = " ".join(part for part in (error.context, error.problem) if part)
        if error.context_mark and mark and error.context_mark.line != mark.line:
            problem += f" (the construct that starts at line {error.context_mark.line + 1})"
        raise BundleSyntaxError(problem or str(error), mark.line + 1 if mark else None) from None
    except YAMLError as error:
        raise BundleSyntaxError(str(error), None) from None
    if not isinstance(data, CommentedMap):
        raise BundleSyntaxError("the file is not a YAML mapping (it should start with `bundle:`)", 1)
    return data


@dataclass
class Bundle:
    """databricks.yml of one app folder, loaded for editing."""

    path: Path
    text: str
    data: CommentedMap

    @classmethod
    def load(cls, app_dir: Path) -> Bundle:
        path = app_dir / BUNDLE_FILE
        if not path.is_file():
            raise MigrateError(f"{path} does not exist",
                               "run `migrate scaffold --app-name NAME --force` to restore the scaffold's databricks.yml")
        text = path.read_text(encoding="utf-8")
        try:
            data = parse_bundle_text(text)
        except BundleSyntaxError as error:
            where = f"line {error.line}" if error.line else "an unknown line"
            raise MigrateError(f"{path} is not valid YAML at {where}: {error.problem}",
                               f"fix {BUNDLE_FILE} at {where} (nothing was changed), then run the step again") from None
        return cls(path=path, text=text, data=data)

    # The one app this bundle deploys.
    def app_entry(self) -> tuple[str, CommentedMap]:
        key, app, problem = find_app_section(self.data)
        if problem:
            raise MigrateError(f"{self.path}: {problem}",
                               "keep exactly one app under `resources.apps` (as `migrate scaffold` wrote it)")
        return key, app

    def render(self) -> str:
        stream = io.StringIO()
        round_trip_yaml().dump(self.data, stream)
        return stream.getvalue()

    def save(self) -> bool:
        """Write the file if its content changed; True when it was written."""
        rendered = self.render()
        if rendered == self.text:
            return False
        # Reparse what we are about to write: a dump that does not load back is a bug, not a user's file.
        parse_bundle_text(rendered)
        atomic.write_text(self.path, rendered)
        self.text = rendered
        return True


def find_app_section(data: dict) -> tuple[str | None, dict | None, str | None]:
    """(key, app mapping, problem): the single app under `resources.apps`, or why there is not one."""
    resources = data.get("resources")
    apps = resources.get("apps") if isinstance(resources, dict) else None
    if not isinstance(apps, dict) or not apps:
        return None, None, "no app under `resources.apps`"
    if len(apps) > 1:
        return None, None, f"{len(apps)} apps under `resources.apps` ({', '.join(map(str, apps))}); expected one"
    key, app = next(iter(apps.items()))
    if not isinstance(app, dict):
        return str(key), None, f"`resources.apps.{key}` is not a mapping"
    return str(key), app, None


def _last_key_holder(node) -> tuple[object, object] | None:
    """The innermost (container, key or index) at the end of `node`, where ruamel keeps the comment or
    blank lines that follow the node in the file."""
    holder = None
    while isinstance(node, (CommentedMap, CommentedSeq)) and len(node):
        last = list(node.keys())[-1] if isinstance(node, CommentedMap) else len(node) - 1
        holder = (node, last)
        node = node[last]
    return holder


def pop_trailer(node):
    """Detach and return what follows the end of `node` in the file (blank lines before the next section,
    a trailing comment); None when nothing does."""
    holder = _last_key_holder(node)
    if holder is None:
        return None
    container, key = holder
    entry = container.ca.items.get(key)
    position = 2 if isinstance(container, CommentedMap) else 0
    if entry and len(entry) > position and entry[position] is not None:
        trailer, entry[position] = entry[position], None
        return trailer
    return None


def put_trailer(node, trailer) -> None:
    """Attach `trailer` (from `pop_trailer`) after the new end of `node`."""
    holder = _last_key_holder(node)
    if trailer is None or holder is None:
        return
    container, key = holder
    if isinstance(container, CommentedMap):
        container.ca.items.setdefault(key, [None, None, None, None])[2] = trailer
    else:
        container.ca.items.setdefault(key, [None, None])[0] = trailer


@contextmanager
def trailer_kept(node):
    """Edit `node` (append items, add keys) while what followed its end stays after its new end."""
    trailer = pop_trailer(node)
    try:
        yield node
    finally:
        put_trailer(node, trailer)


def set_experiment_default(bundle: Bundle, experiment_id: str) -> bool:
    """Put `experiment_id` as the default of the bundle variable `experiment_id`; True when it changed."""
    variables = bundle.data.get("variables")
    if not isinstance(variables, dict):
        variables = CommentedMap()
        bundle.data["variables"] = variables
    variable = variables.get("experiment_id")
    if not isinstance(variable, dict):
        variable = CommentedMap()
        variable["description"] = "Id of the MLflow experiment the app writes traces to."
        variables["experiment_id"] = variable
    if str(variable.get("default", "")) == experiment_id:
        return False
    variable["default"] = experiment_id
    return True


def plain(value):
    """ruamel containers as plain dicts and lists (for a JSON report, or a check's reading)."""
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value if isinstance(value, (bool, int, float)) or value is None else str(value)
