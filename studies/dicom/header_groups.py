"""The decoded top-level groups the header reader replays (`studies.dicom.header`, `_GROUPS`)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(frozen=True, slots=True)
class Group:
    """A top-level group as decoded once: replayed whenever the same bytes come again.

    Everything here is immutable and shared by the headers it is replayed into. The group's
    DICOM JSON members are kept as (key, `orjson.Fragment`) pairs: a replay adds them to the
    header's own metadata object without parsing anything, and the fragments, serialised JSON
    text that `json_dumps` writes as it is, cannot be changed by any header holding them.
    """

    raw: bytes
    # What this group added to the DICOM JSON object; a dict only so that replaying it is one
    # C-level update, never handed out or changed.
    members: dict[str, orjson.Fragment]
    values: tuple[tuple[int, tuple[Any, ...]], ...]
    failures: tuple[tuple[int, str], ...]
    last_tag: int
    text: bool  # holds character-set text (the walker must not change encoding afterwards)


# A group's first tag and the walker's state: character set, implicit VR, validation, bulk threshold.
GroupKey = tuple[int, str, bool, bool, int]


class GroupCache:
    """Decoded top-level groups keyed by their first tag and the walker's state, matched on exact bytes.

    Why: the slices of a series repeat most of their header byte for byte (the patient, study and
    equipment groups, and the private groups that make up most of a CT header: 221 of CT_small's
    258 attributes). Walking, decoding and validating those attributes again was most of a
    one-instance STOW's header time; comparing a group's bytes with the ones decoded before is
    one C-level comparison. The output is a function of the bytes and the state in the key only,
    so a hit yields exactly what the walk would. Bounded by `MAX_BYTES` of cached encodings (the
    JSON text and values kept beside them are of the same order).
    """

    MAX_SPAN = 16 * 1024  # larger groups (e.g. CSA headers) are walked every time
    MAX_BYTES = 4 * 1024 * 1024
    PER_KEY = 4  # versions kept per key: a group that changes from slice to slice evicts itself

    def __init__(self) -> None:
        self.entries: dict[GroupKey, tuple[Group, ...]] = {}
        self.size = 0
        self.lock = threading.Lock()

    def add(self, key: GroupKey, group: Group) -> None:
        with self.lock:
            if self.size + len(group.raw) > self.MAX_BYTES:
                self.entries.clear()
                self.size = 0
            kept = self.entries.get(key, ())
            dropped = kept[self.PER_KEY - 1 :]
            self.entries[key] = (group, *kept[: self.PER_KEY - 1])
            self.size += len(group.raw) - sum(len(old.raw) for old in dropped)

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()
            self.size = 0
