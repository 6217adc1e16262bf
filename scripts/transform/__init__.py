"""libcst transforms that move a Model Serving agent's code into the app's `agent_server` package.

Where a new transform goes, by what it changes:
- where files land and the rewrites that keep them working there: `modules`, with the patterns of code
  written for Model Serving or a notebook hooked in through `patterns` (`container_paths`, `cwd_files`,
  `notebook`, `original_names`) and the user's identity (`user_credentials`);
- the agent class: `agent_class` (locate, then `agent_extract` into module functions or `agent_wrap` into
  one instance), `per_request` (an instance per request), `async_native`, `factory`, `pickled`;
- agents served through an adapter of `agent_server/` (ChatAgent, ChatModel, LangChain): `adapted`, with one
  declaration per kind in `chat_agent`, `chat_model`, `langchain`;
- the `@invoke`/`@stream` handlers: `handlers`; a large file: `entry_segments`.

Call sites that block an event loop are found in `scripts/model/blocking.py`, shared by the code step and the
code check.

libcst keeps comments and formatting, so the migrated code still reads like the user's own.
"""
