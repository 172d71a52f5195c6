"""What every drill shares: the server and client, the ledger of acknowledged instances, the checks."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

from drills.client import Client, DrillFailure, instance_path, single_part
from drills.server import Server

# WADO of an instance as stored, in a multipart response (Microsoft's default framing).
STORED = 'multipart/related; type="application/dicom"; transfer-syntax=*'


@dataclass
class Drill:
    """One backend's run: its server, a client, what was acknowledged, figures and failures."""

    server: Server
    backend: str
    short: bool
    rng: random.Random
    # SOP Instance UID -> (UIDs, the bytes sent, or None once a bulk update changed them).
    ledger: dict[str, tuple[tuple[str, str, str], bytes | None]] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)
    # Instances already found served as the ledger says (checked again once the ledger changes).
    verified: set[str] = field(default_factory=set)
    figures: dict[str, dict[str, Any]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    last_report: float = field(default_factory=time.monotonic)

    @property
    def client(self) -> Client:
        return Client(self.server.base)

    def size(self, short: int, full: int) -> int:
        return short if self.short else full

    def fail(self, drill: str, message: str) -> None:
        self.failures.append(f"[{self.backend}] {drill}: {message}")
        print(f"  FAIL {drill}: {message}", flush=True)

    def check(self, drill: str, condition: bool, message: str) -> None:
        if not condition:
            self.fail(drill, message)

    def report(self, drill: str, **numbers: Any) -> None:
        now = time.monotonic()
        numbers["drill_s"] = round(now - self.last_report, 1)
        self.last_report = now
        self.figures[drill] = numbers
        print(f"  {drill}: " + ", ".join(f"{key}={value}" for key, value in numbers.items()), flush=True)

    def acknowledge(self, uids: tuple[str, str, str], data: bytes | None) -> None:
        self.ledger[uids[2]] = (uids, data)
        self.deleted.discard(uids[2])
        self.verified.discard(uids[2])


def consistent(drill: Drill, name: str, *, retrievable: bool = True) -> dict[str, Any]:
    """The invariants after a drill, once the server is quiet:

    - dicom_cleanup has nothing left to explain: no CREATING row, no pending version, no queued orphan;
    - every blob has a row and every visible row its blobs;
    - every acknowledged, not deleted instance is visible and served byte for byte as sent
      (as updated, when a bulk update changed it); every visible instance is served whole;
    - the change feed agrees: a visible instance's last entry is a create or an update, a
      deleted one's a delete.
    """
    time.sleep(1.1)  # the stale-CREATING age the drill server runs with (DICOM_STALE_CREATING_SECONDS=1)
    audit = drill.server.audit(cleanup=True)
    drill.check(name, not audit["creating"], f"{len(audit['creating'])} CREATING rows after cleanup")
    drill.check(name, audit["pending_versions"] == 0, f"{audit['pending_versions']} pending bulk-update versions")
    drill.check(name, audit["orphans_queued"] == 0, f"{audit['orphans_queued']} orphan blobs still queued")
    drill.check(name, not audit["blobs_without_row"], f"blobs without a row: {audit['blobs_without_row'][:5]}")
    drill.check(name, not audit["rows_without_blob"], f"rows without a blob: {audit['rows_without_blob'][:5]}")
    visible = set(audit["created_sops"])
    feed: dict[str, list[str]] = audit["feed"]
    lost = [sop for sop in drill.ledger if sop not in drill.deleted and sop not in visible]
    drill.check(name, not lost, f"{len(lost)} acknowledged instances lost, e.g. {lost[:3]}")
    for sop in visible:
        actions = feed.get(sop, [])
        if not actions or actions[-1] == "delete" or "create" not in actions:
            drill.fail(name, f"visible instance {sop} has feed entries {actions}")
            break
    for sop in drill.deleted - visible:
        if feed.get(sop) and feed[sop][-1] != "delete":
            drill.fail(name, f"deleted instance {sop} ends its feed with {feed[sop][-1]}")
            break
    half_visible: list[str] = []
    if retrievable:
        client = drill.client
        for sop, (uids, data) in list(drill.ledger.items()):
            if sop not in visible or sop in drill.verified:
                continue
            response = client.get(instance_path(uids), accept=STORED)
            if response.status != 200 or (data is not None and single_part(response.body) != data):
                half_visible.append(f"{sop}: {response.status}, {len(response.body)} bytes")
            else:
                drill.verified.add(sop)
        message = f"{len(half_visible)} visible instances not served as sent: {half_visible[:3]}"
        drill.check(name, not half_visible, message)
    return audit


def raise_if_failed(drill: Drill) -> None:
    if drill.failures:
        raise DrillFailure("\n".join(drill.failures))
