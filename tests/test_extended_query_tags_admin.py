"""Extended query tags in the admin: the list with the reindex's progress, the errors, and
enabling or disabling searching through the same service as PATCH."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.urls import reverse

from studies.eqt.models import ExtendedQueryTag, ExtendedQueryTagError
from tests.helpers import add_tags, dicom_bytes, reindex, search, stow, tag_entry

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice() -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("alice", "alice@example.org", "x"))
    return client


def test_the_list_shows_status_level_errors_and_the_reindex_progress(alice, client) -> None:  # noqa: ANN001
    stow(client, [dicom_bytes(BodyPartExamined="chest")], url="/v1/studies")
    reindex(add_tags(client, tag_entry("BodyPartExamined", "series")))
    add_tags(client, tag_entry("ProtocolName", "instance"))
    html = alice.get(reverse("admin:studies_extendedquerytag_changelist")).content.decode()
    assert "BodyPartExamined" in html and "ProtocolName" in html
    assert 'aria-valuenow="100"' in html and 'aria-valuenow="0"' in html  # done, and not started
    tag = ExtendedQueryTag.objects.get(path="00180015")
    assert f"?tag__id__exact={tag.pk}" in html
    errors = alice.get(reverse("admin:studies_extendedquerytagerror_changelist") + f"?tag__id__exact={tag.pk}")
    assert "Value contains invalid character." in errors.content.decode()
    error = ExtendedQueryTagError.objects.get()
    assert alice.get(reverse("admin:studies_extendedquerytagerror_change", args=[error.pk])).status_code == 200


def test_enabling_and_disabling_goes_through_the_service(alice, client) -> None:  # noqa: ANN001
    reindex(add_tags(client, tag_entry("BodyPartExamined", "series")))
    tag = ExtendedQueryTag.objects.get()
    url = reverse("admin:studies_extendedquerytag_changelist")
    alice.post(url, {"action": "disable_searching", "_selected_action": [tag.pk]})
    assert search(client, "series", {"BodyPartExamined": "X"}).content.decode() == (
        "Query is disabled on specified attribute 'BodyPartExamined'."
    )
    response = alice.post(reverse("admin:studies_extendedquerytag_change", args=[tag.pk]), {"query_status": "enabled"})
    assert response.status_code == 302
    assert ExtendedQueryTag.objects.get().query_status == "enabled"
    assert search(client, "series", {"BodyPartExamined": "X"}).status_code == 204
    assert alice.get(reverse("admin:studies_extendedquerytag_add")).status_code == 403


def test_administrators_view_tags_but_do_not_change_them(client) -> None:  # noqa: ANN001
    reindex(add_tags(client, tag_entry("BodyPartExamined", "series")))
    bob = User.objects.create_user("bob", "bob@example.org", "x", is_staff=True)
    bob.groups.add(Group.objects.get(name="DICOM administrators"))
    admin = Client()
    admin.force_login(bob)
    assert "BodyPartExamined" in admin.get(reverse("admin:studies_extendedquerytag_changelist")).content.decode()
    tag = ExtendedQueryTag.objects.get()
    admin.post(reverse("admin:studies_extendedquerytag_changelist"),
               {"action": "disable_searching", "_selected_action": [tag.pk]})
    assert ExtendedQueryTag.objects.get().query_status == "enabled"


def test_history_button_only_once_the_admin_changed_the_tag(alice, client) -> None:  # noqa: ANN001
    reindex(add_tags(client, tag_entry("BodyPartExamined", "series")))
    tag = ExtendedQueryTag.objects.get()
    page = reverse("admin:studies_extendedquerytag_change", args=[tag.pk])
    assert "historylink" not in alice.get(page).content.decode()  # added and indexed through the API
    alice.post(reverse("admin:studies_extendedquerytag_changelist"),
               {"action": "disable_searching", "_selected_action": [tag.pk]})
    assert "historylink" in alice.get(page).content.decode()
    history = alice.get(reverse("admin:studies_extendedquerytag_history", args=[tag.pk])).content.decode()
    assert "Searching disabled." in history
