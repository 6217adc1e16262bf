"""The one WorkspaceClient builder: bounded waits, and one error that names the host and the profile."""

from __future__ import annotations

import time

import pytest

from scripts import workspace
from scripts.core.errors import MigrateError


@pytest.fixture
def unreachable_profile(tmp_path, monkeypatch):
    config = tmp_path / "databrickscfg"
    config.write_text("[gone]\nhost = http://127.0.0.1:1\ntoken = not-a-token\n")
    for name in ("DATABRICKS_HOST", "DATABRICKS_TOKEN", "DATABRICKS_CONFIG_PROFILE", "DATABRICKS_AUTH_TYPE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(config))
    # Shorter bounds than a step's, so the test is quick; what is tested is that they bound the wait.
    monkeypatch.setattr(workspace, "RETRY_SECONDS", 3)
    monkeypatch.setattr(workspace, "HTTP_TIMEOUT_SECONDS", 2)
    return "gone"


@pytest.mark.e2e  # ~20 s of real retries against a closed port
def test_an_unreachable_workspace_is_one_bounded_error_naming_the_host(unreachable_profile):
    started = time.monotonic()
    with pytest.raises(MigrateError) as raised:
        client = workspace.workspace_client(unreachable_profile, code="SET012")
        with workspace.reaching(client, unreachable_profile, "read the current user", code="SET012"):
            client.current_user.me()
    assert time.monotonic() - started < 30
    error = raised.value
    assert error.code == "SET012" and "http://127.0.0.1:1" in error.message and "profile 'gone'" in error.message
    assert "--profile gone" in error.fix and "VPN" in error.fix


def test_a_missing_profile_is_the_same_kind_of_error(unreachable_profile):
    with pytest.raises(MigrateError) as raised:
        workspace.workspace_client("nowhere", code="SMK022")
    assert raised.value.code == "SMK022" and "profile 'nowhere'" in raised.value.message
