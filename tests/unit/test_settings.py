"""Settings read ``FLEETFLOW_*`` exactly as pydantic-settings' BaseSettings would (same values,
same validation errors), without importing it: the reference below is a BaseSettings with the
very fields of :class:`fleetflow.settings.Settings`."""

from __future__ import annotations

import copy
import subprocess
import sys

import pydantic
import pytest
from pydantic_settings import BaseSettings, SettingsConfigDict

from fleetflow.settings import ENV_PREFIX, Settings, env_name, environment_values, get_settings, reset_settings


def _reference() -> type[BaseSettings]:
    fields = Settings.model_fields
    namespace = {name: copy.copy(info) for name, info in fields.items()}
    namespace["__annotations__"] = {name: info.annotation for name, info in fields.items()}
    namespace["model_config"] = SettingsConfigDict(env_prefix="FLEETFLOW_", extra="ignore")
    namespace["__module__"] = __name__
    return type("Settings", (BaseSettings,), namespace)


Reference = _reference()

CASES = [
    {},
    {"FLEETFLOW_HOME": "/tmp/ff-home", "FLEETFLOW_DATABASE_URL": "postgresql+psycopg://u:p@h/db"},
    {"fleetflow_api_timeout": "12.5", "FLEETFLOW_API_KEY": "secret", "FLEETFLOW_TASK_RUN_LOG_LINES": "no"},
    {"FLEETFLOW_GROUP_COMMIT_WINDOW": "0", "FLEETFLOW_GROUP_COMMIT_MAX_RECORDS": "5", "FLEETFLOW_UNKNOWN": "x"},
    {"FLEETFLOW_ECS_EC2_VCPU_HOUR_PRICE": "0.04", "FLEETFLOW_RESULTS_DIR": "~/r", "FLEETFLOW_API_URL": ""},
    {"FLEETFLOW_USAGE_ENABLED": "1", "FLEETFLOW_PROCESS_WARM_RUNNERS": "3", "FLEETFLOW_LEASE_SECONDS": "2"},
]
BAD = [
    {"FLEETFLOW_API_TIMEOUT": "-1"},
    {"FLEETFLOW_API_TIMEOUT": "soon"},
    {"FLEETFLOW_GROUP_COMMIT_MAX_RECORDS": "0", "FLEETFLOW_TASK_RUN_LOG_LINES": "maybe"},
    {"FLEETFLOW_RUN_TOKEN_SWEEP_LIMIT": "1000", "FLEETFLOW_FARGATE_SPOT_DISCOUNT": "1"},
    {"FLEETFLOW_ECS_EC2_GB_HOUR_PRICE": ""},
]


def _set_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    import os

    for key in list(os.environ):
        if key.lower().startswith(ENV_PREFIX.lower()):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)


@pytest.mark.parametrize("env", CASES)
def test_values_are_those_pydantic_settings_reads(monkeypatch, env):
    _set_env(monkeypatch, env)
    ours, reference = Settings(), Reference()
    assert ours.model_dump() == reference.model_dump()
    assert ours.model_fields_set == reference.model_fields_set


@pytest.mark.parametrize("env", BAD)
def test_validation_errors_are_those_pydantic_settings_raises(monkeypatch, env):
    _set_env(monkeypatch, env)
    with pytest.raises(pydantic.ValidationError) as ours:
        Settings()
    with pytest.raises(pydantic.ValidationError) as reference:
        Reference()
    assert ours.value.errors(include_url=False) == reference.value.errors(include_url=False)
    assert ours.value.title == reference.value.title == "Settings"


def test_keyword_arguments_win_over_the_environment(monkeypatch):
    _set_env(monkeypatch, {"FLEETFLOW_API_TIMEOUT": "5", "FLEETFLOW_LOGGING_LEVEL": "DEBUG"})
    ours, reference = Settings(api_timeout=7), Reference(api_timeout=7)
    assert ours.model_dump() == reference.model_dump()
    assert ours.api_timeout == 7 and ours.logging_level == "DEBUG"


def test_every_setting_keeps_a_default_a_description_and_its_variable():
    for name, info in Settings.model_fields.items():
        assert info.description, name
        assert not info.is_required(), name
    assert env_name("group_commit_window") == "FLEETFLOW_GROUP_COMMIT_WINDOW"
    assert environment_values({"FLEETFLOW_HOME": "/h", "fleetflow_Lease_Seconds": "3", "FLEETFLOW_NOPE": "1", "HOME": "/x"}) == {
        "home": "/h", "lease_seconds": "3"}


def test_get_settings_rereads_the_environment_after_reset(monkeypatch):
    _set_env(monkeypatch, {"FLEETFLOW_LOGGING_LEVEL": "WARNING"})
    reset_settings()
    assert get_settings().logging_level == "WARNING"
    monkeypatch.setenv("FLEETFLOW_LOGGING_LEVEL", "ERROR")
    assert get_settings().logging_level == "WARNING"  # cached
    reset_settings()
    assert get_settings().logging_level == "ERROR"
    reset_settings()


def test_reading_settings_imports_no_pydantic_settings_dotenv_or_asyncio():
    code = ("import sys; from fleetflow.settings import get_settings; get_settings().resolved_database_url(); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pydantic_settings', 'dotenv', 'asyncio')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
