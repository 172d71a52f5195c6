"""Settings: typed readers fail loudly; docker-compose and .env.example name only real settings."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.core import checks

from dicomsvc.env import SettingError, database_from_url, env_bool, env_int, env_list

ROOT = Path(__file__).resolve().parent.parent
# Read by libraries rather than by our settings module (boto3; glibc's malloc at process start).
THIRD_PARTY = {
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "MALLOC_ARENA_MAX", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_",
}  # fmt: skip


def _settings_read_by_code() -> set[str]:
    names: set[str] = set()
    for path in ROOT.glob("**/*.py"):
        if ".venv" in path.parts or "tests" in path.parts:
            continue
        names |= set(re.findall(r'env_(?:str|int|bool|list|choice|origins|template)\(\s*"([A-Z0-9_]+)"', path.read_text()))
    return names


def test_compose_sets_only_settings_the_code_reads():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    known = _settings_read_by_code() | THIRD_PARTY
    for service in ("web", "worker"):
        environment = compose["services"][service]["environment"]
        assert environment, service
        unknown = set(environment) - known
        assert not unknown, f"{service} sets variables nothing reads: {sorted(unknown)}"


def test_env_example_lists_every_setting():
    listed = set(re.findall(r"^([A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert _settings_read_by_code() <= listed, sorted(_settings_read_by_code() - listed)
    assert listed <= _settings_read_by_code() | THIRD_PARTY, sorted(listed - _settings_read_by_code() - THIRD_PARTY)


def test_readers_fail_loudly(monkeypatch):
    monkeypatch.setenv("X_INT", "twelve")
    with pytest.raises(SettingError, match="X_INT"):
        env_int("X_INT", 1)
    monkeypatch.setenv("X_BOOL", "maybe")
    with pytest.raises(SettingError, match="X_BOOL"):
        env_bool("X_BOOL", False)
    monkeypatch.setenv("X_BOOL", "Yes")
    assert env_bool("X_BOOL", False) is True
    monkeypatch.setenv("X_LIST", "a, b,,c")
    assert env_list("X_LIST", []) == ["a", "b", "c"]
    with pytest.raises(SettingError, match="DATABASE_URL"):
        database_from_url("DATABASE_URL", "mysql://x/y")


def test_file_secrets(monkeypatch, tmp_path):
    secret = tmp_path / "port"
    secret.write_text("9001\n")
    monkeypatch.setenv("X_PORT_FILE", str(secret))
    assert env_int("X_PORT", 1) == 9001


def test_database_urls():
    sqlite = database_from_url("DATABASE_URL", "sqlite:////tmp/x.db")
    assert (sqlite["ENGINE"], sqlite["NAME"]) == ("django.db.backends.sqlite3", "/tmp/x.db")
    pg = database_from_url("DATABASE_URL", "postgres://u:p%40ss@db:6543/name")
    assert (pg["USER"], pg["PASSWORD"], pg["HOST"], pg["PORT"], pg["NAME"]) == ("u", "p@ss", "db", "6543", "name")


@pytest.mark.parametrize(("name", "value"), [("PORT", "http"), ("DICOM_ENABLE_DATA_PARTITIONS", "perhaps"),
                                             ("DICOM_STORAGE_BACKEND", "ftp"), ("DICOM_MAX_STOW_BYTES", "0"),
                                             ("DICOM_VIEWER_URL", "https://ohif.example/viewer?p={PatientID}")])
def test_bad_value_stops_startup_naming_the_variable(name, value, tmp_path):
    env = {**os.environ, name: value, "DICOM_DATA_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert name in result.stderr


@pytest.mark.django_db
def test_the_system_checks_of_the_database_find_nothing() -> None:
    # `make run` on SQLite printed models.W040 (the value indexes' INCLUDE columns) at start-up.
    messages = [message for message in checks.run_checks(databases=["default"]) if not message.is_silenced()]
    assert messages == []
