"""Race drills: identical STOWs at once; STOW, DELETE and bulk update on one study at once."""

from __future__ import annotations

import threading
import time
from collections import Counter

from drills.client import Client, failure_reasons, instance, stored_sops
from drills.common import Drill, consistent


def _post_same(drill: Drill, barrier: threading.Barrier, data: bytes, answers: list) -> None:
    client = Client(drill.server.base)
    barrier.wait()
    response = client.stow([data])
    answers.append((response.status, stored_sops(response), failure_reasons(response)))


def identical_stows(drill: Drill) -> None:
    """N clients STOW the same instance at once: exactly one stores it, the others get 45070/45071."""
    name = "race-identical-stow"
    rounds, clients = drill.size(5, 25), 8
    outcomes: Counter[str] = Counter()
    for _ in range(rounds):
        uids, data = instance()
        barrier = threading.Barrier(clients)
        answers: list[tuple[int, set[str], list[int]]] = []

        threads = [threading.Thread(target=_post_same, args=(drill, barrier, data, answers)) for _ in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        stored = [answer for answer in answers if uids[2] in answer[1]]
        refused = [reason for _status, _stored, reasons in answers for reason in reasons]
        drill.check(name, len(stored) == 1, f"{len(stored)} of {clients} identical STOWs stored the instance")
        drill.check(name, all(reason in (45070, 45071) for reason in refused), f"refusals {refused}")
        statuses = [status for status, _s, _r in answers]
        drill.check(name, all(status in (200, 409) for status in statuses), f"statuses {statuses}")
        outcomes.update(str(status) for status, _s, _r in answers)
        outcomes.update(f"reason {reason}" for reason in refused)
        drill.acknowledge(uids, data)
    audit = consistent(drill, name, retrievable=False)
    sops = [sop for sop in drill.ledger]
    creates = Counter(audit["feed"].get(sop, []).count("create") for sop in sops[-rounds:])
    drill.check(name, set(creates) == {1}, f"create entries per instance: {dict(creates)}")
    drill.report(name, rounds=rounds, clients=clients, **dict(sorted(outcomes.items())))


def stow_delete_update(drill: Drill) -> None:
    """STOWs into one study, DELETEs of its series and of the study, and bulk updates of it, at once."""
    name = "race-stow-delete-update"
    seconds = drill.size(5, 40)
    study = instance()[0][0]
    series = [instance(study=study)[0][1] for _ in range(3)]
    statuses: Counter[str] = Counter()
    server_errors: list[str] = []
    acknowledged: dict[str, tuple[tuple[str, str, str], bytes]] = {}
    stop = threading.Event()
    lock = threading.Lock()

    def record(kind: str, status: int, detail: bytes = b"") -> None:
        with lock:
            statuses[f"{kind} {status}"] += 1
            if status >= 500:
                server_errors.append(f"{kind} {status} {detail[:120]!r}")

    def stower() -> None:
        client = Client(drill.server.base)
        while not stop.is_set():
            files = [instance(study=study, series=drill.rng.choice(series)) for _ in range(drill.rng.randint(1, 3))]
            response = client.stow([data for _uids, data in files])
            record("stow", response.status, response.body)
            for reason in failure_reasons(response):
                statuses[f"stow reason {reason}"] += 1
            stored = stored_sops(response)
            with lock:
                acknowledged.update({uids[2]: (uids, data) for uids, data in files if uids[2] in stored})

    def deleter() -> None:
        client = Client(drill.server.base)
        while not stop.is_set():
            path = f"/v2/studies/{study}" + (f"/series/{drill.rng.choice(series)}" if drill.rng.random() < 0.7 else "")
            record("delete", client.delete(path).status)
            time.sleep(drill.rng.uniform(0.05, 0.3))

    def updater() -> None:
        client = Client(drill.server.base)
        while not stop.is_set():
            body = {"studyInstanceUids": [study], "changeDataset": {"00081030": {"vr": "LO", "Value": ["raced"]}}}
            record("update", client.post_json("/v2/studies/$bulkUpdate", body).status)
            time.sleep(drill.rng.uniform(0.2, 0.6))

    threads = [threading.Thread(target=target) for target in (stower, stower, deleter, updater)]
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    client = drill.client
    for operation in drill.server.audit()["operations"]:
        if operation["status"] in ("notStarted", "running"):
            client.operation_wait(operation["id"], timeout=120)
    # What survives is whatever the last DELETE left; every acknowledged instance is either
    # visible and whole, or gone with a delete entry as its last word in the feed.
    audit = drill.server.audit()
    visible = set(audit["created_sops"])
    for sop, (uids, data) in acknowledged.items():
        drill.acknowledge(uids, data)
        if sop not in visible:
            drill.deleted.add(sop)
        elif "update" in audit["feed"].get(sop, []):
            drill.acknowledge(uids, None)
    drill.check(name, not server_errors, f"{len(server_errors)} answers of 5xx, e.g. {server_errors[:2]}")
    consistent(drill, name)
    drill.report(name, seconds=seconds, acknowledged=len(acknowledged), **dict(sorted(statuses.items())))
