"""The one way the steps reach a Databricks workspace: a `WorkspaceClient` for a profile, with bounded waits.

databricks-sdk retries an unreachable host for up to 20 minutes by default and waits 60 s per request; a
step gives up after `RETRY_SECONDS` (issue 14: a wrong host took 10 minutes to end in a traceback). Every
failure to configure or reach the workspace is one `MigrateError` that names the host and the profile.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping

from scripts.core.errors import MigrateError

# Per request (connect and read), and in all for the SDK's retries of one call. Config() itself already
# calls the host (its /.well-known/databricks-config probe) with these bounds.
HTTP_TIMEOUT_SECONDS = 20
RETRY_SECONDS = 30


def where(profile: str | None, host: str | None = None) -> str:
    """How a message names the workspace: its host when known, and the profile it came from."""
    named = f"profile {profile!r}" if profile else "DATABRICKS_HOST / the DEFAULT profile"
    return f"{host} ({named})" if host else named


def login_fix(profile: str | None) -> str:
    name = profile or "DEFAULT"
    return (f"check the profile (`databricks auth login --profile {name}`, then pass --profile {name}), your VPN "
            "or network, and the host URL in ~/.databrickscfg or DATABRICKS_HOST")


def workspace_client(profile: str | None, *, code: str | None = None):
    """A WorkspaceClient for `profile` (None: the environment, else the DEFAULT profile), or a MigrateError."""
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.core import Config

    try:
        config = Config(profile=profile, http_timeout_seconds=HTTP_TIMEOUT_SECONDS,
                        retry_timeout_seconds=RETRY_SECONDS)
    except ValueError as error:  # the SDK's way of saying no credentials resolve, or two methods conflict
        raise MigrateError(f"no usable Databricks workspace configuration for {where(profile)}: {error}",
                           login_fix(profile), code=code) from None
    return WorkspaceClient(config=config)


@contextlib.contextmanager
def reaching(client, profile: str | None, doing: str, *, code: str | None = None) -> Iterator[None]:
    """Turn the SDK's and the network's failures inside the block into one MigrateError naming the host.

    Errors a caller handles itself (NotFound for a lookup) must be caught inside the block."""
    from databricks.sdk.errors import DatabricksError
    from requests.exceptions import RequestException

    try:
        yield
    except (DatabricksError, RequestException, TimeoutError, ValueError) as error:
        host = getattr(getattr(client, "config", None), "host", None)
        raise MigrateError(f"could not {doing} in the workspace at {where(profile, host)}: "
                           f"{type(error).__name__}: {error}", login_fix(profile), code=code) from None


def profile_host(profile: str | None, env: Mapping[str, str]) -> str | None:
    """The workspace host a client would use: DATABRICKS_HOST in `env`, else the host of `profile` (else
    DATABRICKS_CONFIG_PROFILE, else DEFAULT) in the config file; None when nothing resolves (the SDK says why
    when a step actually connects).

    Read from the file, not through `Config(profile=...)`: Config() also calls the host (its
    /.well-known/databricks-config probe), and a name lookup is not bounded by its timeouts: five lookups took
    43 s here with no network, for a value the file holds.
    """
    return profile_setting("host", profile, env)


def profile_setting(key: str, profile: str | None, env: Mapping[str, str]) -> str | None:
    """A setting as databricks-sdk resolves it: DATABRICKS_<KEY> in `env` first, else the profile's value."""
    if env.get(f"DATABRICKS_{key.upper()}"):
        return env[f"DATABRICKS_{key.upper()}"]
    import configparser
    from pathlib import Path

    config_file = Path(env.get("DATABRICKS_CONFIG_FILE") or Path.home() / ".databrickscfg").expanduser()
    profiles = configparser.ConfigParser(interpolation=None)
    try:
        profiles.read(config_file, encoding="utf-8")
    except configparser.Error:
        return None
    section = profile or env.get("DATABRICKS_CONFIG_PROFILE") or "DEFAULT"
    if section == "DEFAULT":
        return profiles.defaults().get(key)
    return profiles.get(section, key, fallback=None)
