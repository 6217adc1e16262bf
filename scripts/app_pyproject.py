"""The app's pyproject.toml record of what `migrate setup` wrote into it, read by setup and its check alike.

Setup remembers, under `[tool.agent-migrate] setup-wrote`, the dependency line it wrote for each package: an
entry that differs from it (or is gone) is the user's edit, which setup keeps and the setup check accepts.
"""

from __future__ import annotations

from packaging.utils import canonicalize_name

TOOL_TABLE = "agent-migrate"
WRITTEN_KEY = "setup-wrote"


def written_by_setup(pyproject: dict) -> dict[str, str]:
    """The line setup last wrote for each package (by normalized name), as recorded in pyproject.toml."""
    tool = pyproject.get("tool")
    ours = tool.get(TOOL_TABLE) if isinstance(tool, dict) else None
    table = ours.get(WRITTEN_KEY) if isinstance(ours, dict) else None
    if not isinstance(table, dict):
        return {}
    return {canonicalize_name(name): line for name, line in table.items() if isinstance(line, str)}
