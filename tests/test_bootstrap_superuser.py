"""`manage.py bootstrap_superuser` (run by `make run`): the superuser from DJANGO_SUPERUSER_*."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):  # noqa: ANN001
    for name in ("USERNAME", "EMAIL", "PASSWORD"):
        monkeypatch.delenv(f"DJANGO_SUPERUSER_{name}", raising=False)
        monkeypatch.delenv(f"DJANGO_SUPERUSER_{name}_FILE", raising=False)


def test_does_nothing_when_no_username_is_set():
    call_command("bootstrap_superuser")
    assert not User.objects.exists()


def test_creates_a_superuser_who_can_log_into_the_admin(monkeypatch, capsys):
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "root")
    monkeypatch.setenv("DJANGO_SUPERUSER_EMAIL", "root@example.org")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "s3cret-pass")
    call_command("bootstrap_superuser")
    assert "superuser root created" in capsys.readouterr().out
    user = User.objects.get()
    assert (user.username, user.email, user.is_staff, user.is_superuser) == ("root", "root@example.org", True, True)
    client = Client()
    response = client.post(reverse("admin:login"), {"username": "root", "password": "s3cret-pass", "next": "/admin/"})
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_running_again_updates_the_password_and_restores_rights(monkeypatch, capsys):
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "root")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "first-pass")
    call_command("bootstrap_superuser")
    User.objects.filter(username="root").update(is_superuser=False, is_staff=False)
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "second-pass")
    call_command("bootstrap_superuser")
    assert "superuser root updated" in capsys.readouterr().out
    user = User.objects.get()
    assert user.is_superuser and user.is_staff
    assert user.check_password("second-pass") and not user.check_password("first-pass")


def test_password_may_come_from_a_secret_file(monkeypatch, tmp_path):
    secret = tmp_path / "password"
    secret.write_text("from-a-file\n")
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "root")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD_FILE", str(secret))
    call_command("bootstrap_superuser")
    assert User.objects.get().check_password("from-a-file")


def test_a_username_without_password_is_refused(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "root")
    with pytest.raises(CommandError, match="DJANGO_SUPERUSER_PASSWORD is empty"):
        call_command("bootstrap_superuser")
    assert not User.objects.exists()
