"""How the admin shows DICOM values: short UIDs with a copy control, names, sizes, links."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from pydicom.uid import UID

# Characters of a UID a list shows: the end, where UIDs of one device differ.
UID_TAIL = 12
EMPTY = "—"


def filesize(size: int | None) -> str:
    return EMPTY if size is None else filesizeformat(size)


def uid_name(uid: str) -> str:
    """A registered UID's name (SOP class, transfer syntax), else the UID itself."""
    name = UID(uid).name if uid else ""
    return name if name and name != uid else uid


def uid_with_name(uid: str) -> str:
    name = uid_name(uid)
    return f"{uid} ({name})" if name != uid else uid


def person_name(value: str) -> str:
    """A PN as people write it: `DOE^JOHN` as `DOE, JOHN`, other groups left out."""
    alphabetic = value.split("=")[0]
    family, _, given = alphabetic.partition("^")
    given = " ".join(part for part in given.split("^") if part)
    return f"{family}, {given}" if family and given else (family or given or value)


def date_text(value: dt.date | None) -> str:
    return value.isoformat() if value else EMPTY


def modalities_text(value: str) -> str:
    return ", ".join(value.split("\\")) if value else EMPTY


def short_uid(uid: str, url: str | None = None, *, tail: int = UID_TAIL) -> SafeString:
    """The end of a UID (the whole one in the tooltip), linked when `url`, with a copy button."""
    if not uid:
        return SafeString(EMPTY)
    text = uid if len(uid) <= tail + 1 else "…" + uid[-tail:]
    label = format_html('<a href="{}">{}</a>', url, text) if url else text
    return format_html(
        '<span class="uid-short" title="{}">{}<button type="button" class="copy-uid" data-uid="{}" '
        'title="Copy UID" aria-label="Copy UID">⧉</button></span>',
        uid, label, uid,
    )


def full_uid(uid: str, url: str | None = None) -> SafeString:
    """A whole UID (detail pages), linked when `url`, with a copy button."""
    label = format_html('<a href="{}">{}</a>', url, uid) if url else uid
    return format_html(
        '<span class="uid">{}</span> <button type="button" class="copy-uid" data-uid="{}" title="Copy UID" '
        'aria-label="Copy UID">⧉</button>',
        label, uid,
    )


def change_url(model: str, pk: int) -> str:
    return reverse(f"admin:studies_{model}_change", args=[pk])


def change_link(model: str, pk: int, text: str) -> SafeString:
    return format_html('<a href="{}">{}</a>', change_url(model, pk), text)


def list_url(model: str, query: str) -> str:
    return f"{reverse(f'admin:studies_{model}_changelist')}?{query}"


def list_link(model: str, query: str, text: str) -> SafeString:
    return format_html('<a href="{}">{}</a>', list_url(model, query), text)


def viewer_url(*, study: str, series: str = "", instance: str = "") -> str | None:
    """`DICOM_VIEWER_URL` filled in with the UIDs, or None when no viewer is configured."""
    template = settings.DICOM_VIEWER_URL
    if not template:
        return None
    return template.format(StudyInstanceUID=study, SeriesInstanceUID=series, SOPInstanceUID=instance)


def viewer_link(*, study: str, series: str = "", instance: str = "") -> SafeString:
    url = viewer_url(study=study, series=series, instance=instance)
    if url is None:
        return SafeString("")
    return format_html('<a class="button" href="{}" target="_blank" rel="noopener">Open in viewer</a>', url)
