"""The model's code_paths modules, importable in the app under the names Model Serving gave them.

Model Serving puts `code/` on sys.path, so `code/toolbox/tools/weather.py` is `toolbox.tools.weather`. The app
copies it to `agent_server/toolbox/...`, and the code step rewrites the static imports; but names written as
strings are not imports: `importlib.import_module("toolbox.tools")`, a config naming
`toolbox.tools.weather.create_tool`, an entry point, a pickle. The generated `agent_server/original_names.py`
puts a finder first on `sys.meta_path` that answers an original name with the app's module object itself
(`import toolbox.tools` is `agent_server.toolbox.tools`), so every way of naming a module loads one copy:
never a second copy of the same code, and never an installed distribution of the same name instead (Model
Serving's code_paths shadowed installed packages the same way). The entry module imports it first.
"""

from __future__ import annotations

import libcst as cst
from packaging.utils import canonicalize_name

from scripts.transform.container_paths import PatternSite
from scripts.transform.modules import APP_PACKAGE

MODULE = "original_names"
PATH = f"{APP_PACKAGE}/{MODULE}.py"
IMPORT_LINE = f"import {APP_PACKAGE}.{MODULE}  # code_paths modules under their original names (migrate code)"

TEMPLATE = '''"""The model's code_paths modules under the names Model Serving gave them (written by `migrate code`).

Model Serving put the model's code/ folder on sys.path; the app keeps those modules in agent_server/. This
finder answers `import NAME` (and `importlib.import_module("NAME.sub")`, dotted names in config files,
pickles) with the app's module object itself, so one copy of each module is ever loaded. agent_server/agent.py
imports this module first.
"""

import importlib
import importlib.abc
import importlib.util
import sys

ORIGINAL_NAMES = {names}


class OriginalNames(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path=None, target=None):
        if fullname.partition(".")[0] in ORIGINAL_NAMES:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        head, _, rest = module.__name__.partition(".")
        app_name = ORIGINAL_NAMES[head] + ("." + rest if rest else "")
        # The import system returns what sys.modules holds under the name once this returns: the app's module.
        sys.modules[module.__name__] = importlib.import_module(app_name)


if not any(isinstance(finder, OriginalNames) for finder in sys.meta_path):
    sys.meta_path.insert(0, OriginalNames())
'''


def module_source(top_level: dict[str, str]) -> str:
    names = {old: f"{APP_PACKAGE}.{new}" for old, new in sorted(top_level.items())}
    body = "{\n" + "".join(f"    {old!r}: {new!r},\n" for old, new in names.items()) + "}"
    return TEMPLATE.replace("{names}", body)


def import_first(entry_code: str) -> str:
    """The entry module with `import agent_server.original_names` after its docstring and __future__ imports."""
    module = cst.parse_module(entry_code)
    position = 0
    for number, statement in enumerate(module.body):
        small = statement.body[0] if isinstance(statement, cst.SimpleStatementLine) and statement.body else None
        is_docstring = number == 0 and isinstance(small, cst.Expr) and isinstance(small.value, cst.SimpleString)
        is_future = isinstance(small, cst.ImportFrom) and getattr(small.module, "value", None) == "__future__"
        if not (is_docstring or is_future):
            break
        position = number + 1
    line = cst.parse_statement(IMPORT_LINE)
    return module.with_changes(body=[*module.body[:position], line, *module.body[position:]]).code


def name_sites(top_level: dict[str, str], requirements: list[dict] | None) -> list[PatternSite]:
    """What the app does with the original names, and each code_paths module that is also a requirement."""
    sites = [PatternSite(
        "COD068", "info", None,
        f"the code_paths module(s) {', '.join(sorted(top_level))} keep their original names in the app too "
        f"(agent_server/{MODULE}.py): imports by string, dotted names in config files and pickles load the "
        f"app's copy in agent_server/",
        "nothing to do")]
    required = {entry["name"]: entry for entry in requirements or [] if entry.get("name")}
    for name in sorted(top_level):
        entry = required.get(canonicalize_name(name))
        if entry is not None:
            sites.append(PatternSite(
                "COD070", "warning", None,
                f"code/{name} is also the requirement `{entry['line']}` of the model's requirements.txt: the app uses the copy from code/ only, as Model Serving did (code_paths come "
                f"first on sys.path), and never loads the installed one",
                f"keep one: delete `{entry['name']}` from the app's dependencies (pyproject.toml) if the copy is "
                f"the code you serve, or delete agent_server/{top_level[name]}/ and import the installed package"))
    return sites
