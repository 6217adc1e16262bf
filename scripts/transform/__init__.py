"""libcst transforms that move a Model Serving agent's code into the app's `agent_server` package.

- `modules`: where each copied file lands, imports between copied modules, artifact paths;
- `agent_class`: the agent class turned into module-level functions (or kept and wrapped);
- `handlers`: the generated `@invoke`/`@stream` functions for sync and async mode;
- `chat_agent`: a ChatAgent kept as written, served through `agent_server/chat_agent_adapter.py`;
- `blocking`: call sites that block an event loop, shared by the code step and the code check.

libcst keeps comments and formatting, so the migrated code still reads like the user's own.
"""
