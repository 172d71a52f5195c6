"""The STOW-RS response dataset (PS3.18 §10.5.3), with the attributes Microsoft's server adds."""

from __future__ import annotations

from typing import Any

from studies.services.stow import StowOutcome, StowResult


def _us(value: int) -> dict[str, Any]:
    return {"vr": "US", "Value": [value]}


def _ui(value: str | None) -> dict[str, Any]:
    return {"vr": "UI", "Value": [value]} if value else {"vr": "UI"}


def _failed_attributes(comments: list[str]) -> dict[str, Any]:
    items = [{"00000902": {"vr": "LO", "Value": [comment]}} for comment in comments]
    return {"vr": "SQ", "Value": items} if items else {"vr": "SQ"}


def stow_response_dataset(result: StowResult, *, base_url: str, study_uid: str | None) -> dict[str, Any]:
    referenced: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    for outcome in result.outcomes:
        if outcome.stored:
            referenced.append(_referenced_item(outcome, base_url=base_url, v2=result.api_version >= 2))
        else:
            failed.append(_failed_item(outcome))
    dataset: dict[str, Any] = {}
    if study_uid is not None and referenced:
        dataset["00081190"] = {"vr": "UR", "Value": [f"{base_url}/studies/{study_uid}"]}
    if failed:
        dataset["00081198"] = {"vr": "SQ", "Value": failed}
    if referenced:
        dataset["00081199"] = {"vr": "SQ", "Value": referenced}
    return dataset


def _referenced_item(outcome: StowOutcome, *, base_url: str, v2: bool) -> dict[str, Any]:
    url = (
        f"{base_url}/studies/{outcome.study_instance_uid}/series/{outcome.series_instance_uid}"
        f"/instances/{outcome.sop_instance_uid}"
    )
    item: dict[str, Any] = {
        "00081150": _ui(outcome.sop_class_uid),
        "00081155": _ui(outcome.sop_instance_uid),
        "00081190": {"vr": "UR", "Value": [url]},
    }
    if outcome.warning_reason is not None:
        item["00081196"] = _us(outcome.warning_reason)
    if v2:
        item["00741048"] = _failed_attributes(outcome.comments)
    return item


def _failed_item(outcome: StowOutcome) -> dict[str, Any]:
    item: dict[str, Any] = {}
    if outcome.sop_class_uid:
        item["00081150"] = _ui(outcome.sop_class_uid)
    if outcome.sop_instance_uid:
        item["00081155"] = _ui(outcome.sop_instance_uid)
    item["00081197"] = _us(outcome.failure_reason or 272)
    if outcome.comments:
        item["00741048"] = _failed_attributes(outcome.comments)
    return item
