"""The JSON of a change-feed entry, shared by the API and the admin export.

camelCase names in the order of Microsoft's ChangeFeedEntry, lowercase action and state,
nulls omitted. `metadata` is the live instance's stored DICOM JSON text, spliced in
verbatim rather than parsed and re-serialised.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from changefeed.selectors import AnnotatedEntry


def entry_json_text(entry: AnnotatedEntry, *, metadata: str | None = None) -> str:
    head = {
        "sequence": entry.sequence,
        "partitionName": entry.partition_name,
        "studyInstanceUid": entry.study_instance_uid,
        "seriesInstanceUid": entry.series_instance_uid,
        "sopInstanceUid": entry.sop_instance_uid,
        "action": entry.get_action_display(),
        # .NET writes a DateTimeOffset with its offset ("+00:00"), never as "Z".
        "timestamp": entry.timestamp.isoformat(),
        "state": entry.state,
    }
    text = json.dumps(head, ensure_ascii=False, separators=(",", ":"))
    if metadata is None:
        return text
    return f'{text[:-1]},"metadata":{metadata}}}'
