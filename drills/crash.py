"""Crash drills: SIGKILL of the web process during STOW, of the worker during bulk update and export."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from drills.client import DICOM_JSON, Client, instance, instance_path, single_part, stored_sops
from drills.common import STORED, Drill, consistent

UPDATE_NAME = {"00100010": {"vr": "PN", "Value": [{"Alphabetic": "Drill^Updated"}]}}


def _stow_clients(drill: Drill, stop: threading.Event, sent: list, acknowledged: list, errors: list) -> None:
    """Keep STOWing 1-4 instances per request, some of them large, until `stop`."""
    client = Client(drill.server.base, timeout=30)
    rng = drill.rng
    while not stop.is_set():
        study = None
        files = []
        for _ in range(rng.randint(1, 4)):
            pixels = rng.choice([0, 0, 0, 200_000, 2_000_000, rng.randint(5_000_000, 8_000_000)])
            uids, data = instance(study=study, pixels=pixels)
            study = uids[0]
            files.append((uids, data))
        sent.extend(files)
        try:
            response = client.stow([data for _uids, data in files])
        except OSError:
            errors.append(1)  # the web process died under the request: its outcome is unknown
            time.sleep(0.05)
            continue
        if response.status >= 500:
            errors.append(response.status)
        stored = stored_sops(response)
        acknowledged.extend(item for item in files if item[0][2] in stored)


def web_killed_during_stow(drill: Drill) -> None:
    """Rounds of concurrent STOWs with the web process SIGKILLed at a random moment, then restarted."""
    rounds = drill.size(2, 12)
    sent: list = []
    acknowledged: list = []
    errors: list = []
    restart_seconds = []
    for _ in range(rounds):
        stop = threading.Event()
        threads = [
            threading.Thread(target=_stow_clients, args=(drill, stop, sent, acknowledged, errors)) for _ in range(3)
        ]
        for thread in threads:
            thread.start()
        time.sleep(drill.rng.uniform(0.5, 2.5))
        drill.server.kill_web()
        stop.set()
        for thread in threads:
            thread.join()
        started = time.monotonic()
        drill.server.start_web()
        restart_seconds.append(time.monotonic() - started)
    for uids, data in acknowledged:
        drill.acknowledge(uids, data)
    server_errors = [status for status in errors if status != 1]
    drill.check("crash-web-stow", not server_errors, f"answers of 5xx: {server_errors}")
    consistent(drill, "crash-web-stow")
    drill.report(
        "crash-web-stow", kills=rounds, instances_sent=len(sent), acknowledged=len(acknowledged),
        requests_cut=len(errors) - len(server_errors), web_restart_s=round(max(restart_seconds), 1),
    )  # fmt: skip


def _stored_studies(drill: Drill, count: int, per_study: int, **values: Any) -> list[list[tuple[str, str, str]]]:
    """`count` studies of `per_study` instances (`values` set in each), one STOW a study: their UIDs."""
    client = drill.client
    studies = []
    for _ in range(count):
        study = None
        files = []
        for _ in range(per_study):
            uids, data = instance(study=study, **values)
            study = uids[0]
            files.append((uids, data))
        response = client.stow([data for _uids, data in files])
        drill.check("setup", response.status == 200, f"STOW of a drill study answered {response.status}")
        for uids, data in files:
            drill.acknowledge(uids, data)
        studies.append([uids for uids, _data in files])
    return studies


def _studies(drill: Drill, count: int, per_study: int) -> list[str]:
    return [instances[0][0] for instances in _stored_studies(drill, count, per_study)]


def _kill_worker(drill: Drill) -> str:
    """SIGKILL the worker's pool processes if it has any (the main process lives and forks new
    ones), else the worker itself, restarted at once as a supervisor would."""
    if drill.server.kill_pool_children():
        return "pool processes"
    drill.server.kill_worker()
    drill.server.start_worker()
    return "worker process"


def _updates_per_instance(feed: dict[str, list[str]], sops: list[str]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for sop in sops:
        number = feed.get(sop, []).count("update")
        counts[number] = counts.get(number, 0) + 1
    return counts


def worker_killed_during_update(drill: Drill, *, whole_worker: bool = False) -> None:
    """A bulk update of S studies x I instances; the worker killed once it is 20% through."""
    name = "crash-worker-update" + ("-restart" if whole_worker else "")
    count, per_study = drill.size(6, 20), drill.size(5, 10)
    studies = _studies(drill, count, per_study)
    sops = [sop for sop, (uids, _data) in drill.ledger.items() if uids[0] in studies]
    before = drill.server.audit()["feed"]
    client = drill.client
    response = client.post_json("/v2/studies/$bulkUpdate", {"studyInstanceUids": studies, "changeDataset": UPDATE_NAME})
    drill.check(name, response.status == 202, f"$bulkUpdate answered {response.status}: {response.body[:200]!r}")
    if response.status != 202:
        return
    operation_id = response.json()["id"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = client.operation_status(operation_id)
        if status["status"] != "notStarted" and (status.get("percentComplete") or 0) >= 20:
            break
        time.sleep(0.05)
    killed_at_percent = status.get("percentComplete")
    killed_at = time.monotonic()
    if whole_worker:
        drill.server.kill_worker()
        drill.server.start_worker()
        what = "worker process"
    else:
        what = _kill_worker(drill)
    body, _ = client.operation_wait(operation_id, timeout=180)
    took = time.monotonic() - killed_at
    lease = int(drill.server.env["DICOM_OPERATION_LEASE_SECONDS"])
    drill.check(name, body["status"] == "succeeded", f"operation ended {body['status']}: {body.get('results')}")
    results = body.get("results") or {}
    drill.check(
        name, results.get("instanceUpdated") == len(sops) and results.get("studyUpdated") == count,
        f"results {results}, expected {count} studies and {len(sops)} instances",
    )  # fmt: skip
    drill.check(name, took <= lease + 10, f"finished {took:.1f} s after the kill (lease {lease} s)")
    for sop in sops:
        drill.acknowledge(drill.ledger[sop][0], None)  # served as updated from now on
    audit = consistent(drill, name)
    after = {sop: audit["feed"].get(sop, []).count("update") - before.get(sop, []).count("update") for sop in sops}
    twice = [sop for sop, number in after.items() if number != 1]
    counts = _updates_per_instance(audit["feed"], twice)
    drill.check(name, not twice, f"{len(twice)} instances with other than one update entry: {counts}")
    named = client.get(f"/v2/studies?StudyInstanceUID={studies[0]}&includefield=00100010", accept=DICOM_JSON)
    drill.check(name, b"Drill^Updated" in named.body, "the updated name is not what QIDO shows")
    drill.report(
        name, studies=count, instances=len(sops), killed=what, at_percent=killed_at_percent,
        finished_after_kill_s=round(took, 1), lease_s=lease, instances_not_updated_once=len(twice),
    )  # fmt: skip


def worker_killed_during_export(drill: Drill) -> None:
    """An export of every study the drill stored; the worker killed right after it starts."""
    name = "crash-worker-export"
    visible = [tuple(uids) for uids in drill.server.audit()["created"]]
    studies = sorted({uids[0] for uids in visible})[: drill.size(20, 100)]
    expected = {uids[2]: uids for uids in visible if uids[0] in studies}
    target = Path(drill.server.env["DICOM_EXPORT_FILESYSTEM_ROOTS"]) / f"export-{int(time.time() * 1000)}"
    client = drill.client
    response = client.post_json("/v2/export", {
        "source": {"type": "identifiers", "settings": {"values": studies}},
        "destination": {"type": "filesystem", "settings": {"path": str(target)}},
    })  # fmt: skip
    drill.check(name, response.status == 202, f"export answered {response.status}: {response.body[:200]!r}")
    if response.status != 202:
        return
    operation_id = response.json()["id"]
    while client.operation_status(operation_id)["status"] == "notStarted":
        time.sleep(0.02)
    time.sleep(drill.rng.uniform(0.0, 0.3))
    finished_first = client.operation_status(operation_id)["status"] != "running"
    killed_at = time.monotonic()
    what = "nothing (already finished)" if finished_first else _kill_worker(drill)
    body, _ = client.operation_wait(operation_id, timeout=180)
    took = time.monotonic() - killed_at
    drill.check(name, body["status"] == "succeeded", f"export ended {body['status']}: {body.get('results')}")
    exported = body.get("results", {}).get("exported")
    drill.check(name, exported == len(expected), f"exported {exported}, expected {len(expected)}")
    files = {path.stem: path for path in (target / operation_id / "results").rglob("*.dcm")} if target.exists() else {}
    leftovers = [path for path in target.rglob(".*.part")] if target.exists() else []
    missing, extra = set(expected) - set(files), set(files) - set(expected)
    drill.check(name, not missing and not extra, f"{len(missing)} missing, {len(extra)} extra files")
    drill.check(name, not leftovers, f"{len(leftovers)} partial files left: {leftovers[:3]}")
    differing = 0
    for sop, path in files.items():
        if sop not in expected:
            continue
        sent = drill.ledger.get(sop, (None, None))[1]
        stored = sent if sent is not None else single_part(client.get(instance_path(expected[sop]), accept=STORED).body)
        differing += path.read_bytes() != stored
    drill.check(name, differing == 0, f"{differing} exported files differ from the stored ones")
    drill.report(name, instances=len(expected), killed=what, finished_after_kill_s=round(took, 1), files=len(files))


def _reindex_studies(drill: Drill, count: int, per_study: int, value: str) -> list[str]:
    """Studies whose every instance holds ConvolutionKernel `value`, stored before the tag exists."""
    studies = _stored_studies(drill, count, per_study, ConvolutionKernel=value)
    return [uids[2] for instances in studies for uids in instances]


def worker_killed_during_reindex(drill: Drill) -> None:
    """An extended query tag over every stored instance; the worker killed as soon as its reindex
    runs. It must end succeeded, and a search on the tag find each instance holding the value
    exactly once (none missing, none twice)."""
    name = "crash-worker-reindex"
    client = drill.client
    tag = "ConvolutionKernel"  # SH, instance level: not searchable before the tag is added
    value = f"DRILL{drill.rng.randrange(10**9)}"
    sops = _reindex_studies(drill, drill.size(4, 20), drill.size(5, 10), value)
    client.delete(f"/v2/extendedquerytags/{tag}")  # a previous run's tag on the same database
    response = client.post_json("/v2/extendedquerytags", [{"path": tag, "level": "instance"}])
    drill.check(name, response.status == 202, f"adding the tag answered {response.status}: {response.body[:200]!r}")
    if response.status != 202:
        return
    operation_id = response.json()["id"]
    # Killed as soon as it runs: a reindex over a few thousand rows is done in a second or two.
    deadline = time.monotonic() + 120
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = client.operation_status(operation_id)
        if status["status"] != "notStarted":
            break
        time.sleep(0.02)
    killed_at_percent = status.get("percentComplete")
    finished_first = status.get("status") not in ("notStarted", "running")
    killed_at = time.monotonic()
    what = "nothing (already finished)" if finished_first else _kill_worker(drill)
    body, _ = client.operation_wait(operation_id, timeout=180)
    took = time.monotonic() - killed_at
    lease = int(drill.server.env["DICOM_OPERATION_LEASE_SECONDS"])
    drill.check(name, body["status"] == "succeeded", f"reindex ended {body['status']}: {body.get('results')}")
    drill.check(name, finished_first or took <= lease + 30, f"finished {took:.1f} s after the kill (lease {lease} s)")
    state = client.get(f"/v2/extendedquerytags/{tag}", accept="application/json").json()
    ready = str(state.get("status")).lower() == "ready"
    drill.check(name, ready, f"the tag is {state.get('status')} after its reindex")
    found: list[str] = []
    offset = 0
    while True:
        page = client.get(f"/v2/instances?{tag}={value}&limit=200&offset={offset}", accept=DICOM_JSON)
        if page.status == 204:
            break
        drill.check(name, page.status == 200, f"search on the tag answered {page.status}: {page.body[:200]!r}")
        if page.status != 200:
            break
        rows = page.json()
        found += [row["00080018"]["Value"][0] for row in rows]
        if len(rows) < 200:
            break
        offset += 200
    twice = len(found) - len(set(found))
    missing = set(sops) - set(found)
    drill.check(name, not twice and not missing, f"{len(missing)} instances not found, {twice} found twice")
    client.delete(f"/v2/extendedquerytags/{tag}")
    consistent(drill, name)
    drill.report(
        name, instances=len(sops), killed=what, at_percent=killed_at_percent, finished_after_kill_s=round(took, 1),
        lease_s=lease, found=len(found), missing=len(missing), found_twice=twice,
    )  # fmt: skip
