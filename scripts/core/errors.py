"""The one error type users can hit: what went wrong, and what to do about it.

The CLI prints it in one place (`scripts.cli`) and exits 1; anything else that escapes a step is a bug
and keeps its traceback.
"""


class MigrateError(Exception):
    """An expected failure: a bad input, an unreachable workspace, a refused overwrite."""

    def __init__(self, message: str, fix: str, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.fix = fix
        self.code = code

    def __str__(self) -> str:
        prefix = f"[{self.code}] " if self.code else ""
        return f"{prefix}{self.message}\n  fix: {self.fix}"
