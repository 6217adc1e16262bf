"""The agent class of the entry module, turned into module-level code the `@invoke`/`@stream` handlers call.

Extract mode (the default when it is safe, `agent_extract`): the class becomes module state and functions.
Wrapper mode (`agent_wrap`), when extraction could change behaviour: the class stays as written and one
module-level instance serves every request. Why extraction is unsafe is decided in `agent_safety`; the
names the transform may take, in `agent_names`. This module is the one the code step imports.
"""

from __future__ import annotations

from scripts.transform.agent_extract import extract  # noqa: F401 (re-exported)
from scripts.transform.agent_module import RESPONSES_HELPERS, AgentModule  # noqa: F401
from scripts.transform.agent_names import all_names  # noqa: F401
from scripts.transform.agent_safety import SETUP_METHODS, NotExtractable  # noqa: F401
from scripts.transform.agent_wrap import wrap  # noqa: F401
from scripts.transform.location import AgentLocation, defines_method, locate_agent  # noqa: F401
