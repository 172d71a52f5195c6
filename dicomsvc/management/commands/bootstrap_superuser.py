"""Create or update the superuser named by DJANGO_SUPERUSER_USERNAME (no-op when unset)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from dicomsvc.env import env_str


class Command(BaseCommand):
    help = "Create the superuser from DJANGO_SUPERUSER_USERNAME / _EMAIL / _PASSWORD when set."

    def handle(self, *args: Any, **options: Any) -> None:
        username = env_str("DJANGO_SUPERUSER_USERNAME", "")
        if not username:
            return
        password = env_str("DJANGO_SUPERUSER_PASSWORD", "")
        if not password:
            raise CommandError("DJANGO_SUPERUSER_USERNAME is set but DJANGO_SUPERUSER_PASSWORD is empty.")
        email = env_str("DJANGO_SUPERUSER_EMAIL", "")
        user_model = get_user_model()
        user, created = user_model.objects.get_or_create(username=username, defaults={"email": email})
        user.is_staff = True
        user.is_superuser = True
        if email:
            user.email = email
        user.set_password(password)
        user.save()
        self.stdout.write(f"superuser {username} {'created' if created else 'updated'}")
