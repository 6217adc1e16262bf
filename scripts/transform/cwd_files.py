"""Files read relative to the working directory (`open("system_prompt.txt")`, `Path("prompts/x.md")`).

In a notebook the working directory is the notebook's folder, so `open("config.yaml")` finds the file next to
it; the app's server runs in the app folder, where no such file is. When the model carries the file (in
`code/` or `artifacts/`), the path becomes the app's copy relative to the module (`Path(__file__).parent /
...`). When it does not, the app will not have the file either: an error site with the line. Paths under
`artifacts/` are the artifact rewriter's (module_rewrite.ArtifactPathRewriter); absolute paths are the container
rewriter's or the code check's (COD018).
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable

import libcst as cst

from scripts.transform.container_paths import ModelFileRewriter, PatternSite, literal_text, module_relative
from scripts.transform.modules import ARTIFACTS_DIR, dotted

# Calls whose first argument is a file read (pandas' readers too); `Path(...)` only counts when it is read.
READ_CALLS = {"open", "io.open", "codecs.open", "read_csv", "read_json", "read_parquet", "read_excel",
              "read_table", "pd.read_csv", "pd.read_json", "pd.read_parquet", "pandas.read_csv"}
PATH_CALLS = {"Path", "pathlib.Path", "PurePath", "pathlib.PurePath"}
PATH_READS = {"read_text", "read_bytes", "open"}
WRITE_MODES = set("wax")


def relative_file(value: str | None) -> bool:
    """A literal that names a file relative to the working directory (`prompts/x.md`, `config.yaml`)."""
    if not value or value.startswith(("/", "~", f"{ARTIFACTS_DIR}/", "./artifacts/")) or "://" in value:
        return False
    if "\n" in value or " " in value or "{" in value or value in (".", ".."):
        return False
    name = value.rstrip("/").rsplit("/", 1)[-1]
    return "." in name.strip(".")  # a file name with an extension: `config.yaml`, not a bare word


def model_candidates(value: str) -> list[str]:
    """Where the model could carry a file the notebook read as `value`: code_paths first, then artifacts."""
    relative = posixpath.normpath(value.removeprefix("./"))
    return [f"code/{relative}", f"{ARTIFACTS_DIR}/{relative}"]


def _mode(call: cst.Call) -> str:
    for number, arg in enumerate(call.args):
        if (arg.keyword and arg.keyword.value == "mode") or (arg.keyword is None and number == 1):
            return literal_text(arg.value) or "r"
    return "r"


class WorkingDirectoryFileRewriter(ModelFileRewriter):
    def __init__(self, locate: Callable[[str], str | None], depth: int, path_name: str):
        super().__init__(locate, depth, path_name)
        self._read_paths: set[int] = set()  # Path("x") calls that are read (`.read_text()`, `.open()`)

    def visit_Attribute(self, node):
        if node.attr.value in PATH_READS and isinstance(node.value, cst.Call):
            self._read_paths.add(id(node.value))

    def leave_Call(self, original_node, updated_node):
        name = dotted(updated_node.func) or ""
        is_read = name in READ_CALLS or name.rsplit(".", 1)[-1] in READ_CALLS - {"open"}
        is_path = name in PATH_CALLS
        if not (is_read or is_path) or not updated_node.args or updated_node.args[0].keyword is not None:
            return updated_node
        value = literal_text(updated_node.args[0].value)
        if not relative_file(value) or (is_read and WRITE_MODES & set(_mode(updated_node))):
            return updated_node
        target = next((found for found in map(self.locate, model_candidates(value)) if found is not None), None)
        line = self._line(original_node)
        if target is None:
            if is_read or id(original_node) in self._read_paths:
                self.sites.append(PatternSite(
                    "COD063", "error", line,
                    f"{value!r} is read relative to the working directory, and the model carries no such file "
                    f"(neither in code/ nor in artifacts/): the app will not have it",
                    f"add the file to agent_server/ and read it as `Path(__file__).parent / {value!r}`, or log it "
                    f"with the model (artifacts=...) and migrate again"))
            return updated_node
        self.sites.append(PatternSite(
            "COD062", "info", line,
            f"{value!r} was read relative to the working directory; it now points at agent_server/{target}",
            "nothing to do"))
        argument = updated_node.args[0].with_changes(value=module_relative(target, self.depth, self.path_name, True))
        return updated_node.with_changes(args=[argument, *updated_node.args[1:]])
