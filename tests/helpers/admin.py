"""Admin console helpers: a logged-in staff client per persona, and a page's HTML."""

from __future__ import annotations

from django.contrib.auth.models import Group, User
from django.test import Client


def admin_login(username: str, *, staff: bool = True, superuser: bool = False, group: str | None = None) -> Client:
    """A client logged in as a new user (staff unless told), superuser or member of `group`."""
    user = User.objects.create_user(username, password="pw", is_staff=staff, is_superuser=superuser)
    if group:
        user.groups.add(Group.objects.get(name=group))
    client = Client()
    client.force_login(user)
    return client


def admin_page(client: Client, url: str) -> str:
    """The HTML of `url`, asserting it answered 200."""
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return response.content.decode()
