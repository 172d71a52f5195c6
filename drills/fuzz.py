"""Black-box fuzzing: mutated STOW bodies and hostile paths and query strings, through the server.

The invariants: no answer is a 5xx; an instance a STOW acknowledges is served back as sent;
whatever else a body held, it is refused, never half-stored (checked by `consistent`)."""

from __future__ import annotations

import struct
from collections import Counter

from drills.client import BOUNDARY, DICOM_JSON, STOW_TYPE, Client, instance, multipart, stored_sops
from drills.common import Drill, consistent

PARAMETERS = [
    "limit", "offset", "includefield", "StudyDate", "PatientName", "fuzzymatching", "quality", "00100020",
    "PatientID", "AccessionNumber", "StudyDescription", "Modality", "startTime", "ProcedureStepLabel",
]  # fmt: skip
# Searches whose path is valid, so the query itself is what gets judged.
SEARCHES = ["studies", "series", "instances", "workitems", "changefeed", "changefeed/latest", "extendedquerytags"]
NAMES = ["CT_small.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm", "JPEG2000.dcm", "SC_rgb_rle_2frame.dcm"]


def _nested(data: bytes, depth: int) -> bytes:
    """`data` (explicit VR little endian, with an empty ContentSequence) with that sequence nested `depth` deep."""
    empty = struct.pack("<HH", 0x0040, 0xA730) + b"SQ\x00\x00" + struct.pack("<L", 0)
    opening = empty[:8] + struct.pack("<LHHL", 0xFFFFFFFF, 0xFFFE, 0xE000, 0xFFFFFFFF)
    closing = struct.pack("<HHLHHL", 0xFFFE, 0xE00D, 0, 0xFFFE, 0xE0DD, 0)
    return data.replace(empty, opening * depth + closing * depth, 1)


def _mutated(drill: Drill, data: bytes) -> bytes:
    rng = drill.rng
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        if len(out) <= 140:
            break
        position = rng.randrange(128, len(out))
        kind = rng.choice(["flip", "insert", "delete", "cut", "ff"])
        if kind == "flip":
            out[position] ^= 1 << rng.randrange(8)
        elif kind == "insert":
            out[position:position] = rng.randbytes(rng.randint(1, 32))
        elif kind == "delete":
            del out[position : position + rng.randint(1, 64)]
        elif kind == "cut":
            del out[position:]
        else:
            out[position : position + 4] = b"\xff\xff\xff\xff"
    return bytes(out)


def _body(drill: Drill) -> tuple[bytes, str, list[tuple[tuple[str, str, str], bytes]]]:
    """A STOW body, its Content-Type, and the parts sent intact (these must be stored)."""
    rng = drill.rng
    intact: list[tuple[tuple[str, str, str], bytes]] = []
    parts = []
    for _ in range(rng.randint(1, 4)):
        roll = rng.random()
        if roll < 0.1:
            uids, data = instance(ContentSequence=[])
            parts.append(_nested(data, rng.choice([10, 64, 65, 200, 400, 600])))
        elif roll < 0.35:
            uids, data = instance(name=rng.choice(NAMES))
            parts.append(data)
            intact.append((uids, data))
        else:
            parts.append(_mutated(drill, instance(name=rng.choice(NAMES))[1]))
    body = multipart(parts)
    content_type = STOW_TYPE
    roll = rng.random()
    if roll < 0.1:
        body = body[: rng.randrange(len(body))]  # a cut body: 400, nothing stored
        intact = []
    elif roll < 0.15:
        content_type = rng.choice([f"multipart/related; boundary={BOUNDARY}x", "multipart/related", "text/plain",
                                   f'multipart/related; type="application/json"; boundary={BOUNDARY}'])  # fmt: skip
        intact = []
    elif roll < 0.2:
        header = rng.choice([b"", b"X: y\r\n", b"bad header\r\n"])
        body = body.replace(b"Content-Type: application/dicom\r\n", header, 1)
        intact = []
    return body, content_type, intact


def stow_bodies(drill: Drill) -> None:
    name = "fuzz-stow"
    count = drill.size(100, 1500)
    client = Client(drill.server.base)
    statuses: Counter[int] = Counter()
    server_errors = []
    stored_intact = 0
    for _ in range(count):
        body, content_type, intact = _body(drill)
        response = client.request("POST", "/v2/studies", body, Content_Type=content_type, Accept=DICOM_JSON)
        statuses[response.status] += 1
        if response.status >= 500:
            server_errors.append(response.body[:200])
            continue
        stored = stored_sops(response)
        for uids, data in intact:
            drill.check(
                name, uids[2] in stored, f"an intact part not stored: {response.status} {response.body[:200]!r}"
            )
            if uids[2] in stored:
                drill.acknowledge(uids, data)
                stored_intact += 1
    drill.check(name, not server_errors, f"{len(server_errors)} answers of 5xx, e.g. {server_errors[:2]}")
    consistent(drill, name)
    drill.report(name, bodies=count, intact_stored=stored_intact, **{str(k): v for k, v in sorted(statuses.items())})


def paths_and_queries(drill: Drill) -> None:
    """Path tricks in every UID position and random query strings: 4xx or an answer, never a 5xx.

    Only GETs: what a trick makes a DELETE address is not for the ledger to guess."""
    name = "fuzz-paths"
    rng = drill.rng
    client = drill.client
    known = [uids for uids, _data in list(drill.ledger.values())[:20]] or [instance()[0]]
    tricks = ["%00", "%2e%2e", "..", ".", "%2F", "%20", "%0A", "x" * 70, "1" * 4301, "1.2.3%00", "%ff", "-1", "0",
              "9" * 11, "1,1,", "%C2%B2", "%C0%AE", ";", "*", "1.2.3/../4"]  # fmt: skip
    statuses: Counter[int] = Counter()
    server_errors = []
    count = drill.size(200, 3000)
    for _ in range(count):
        study, series, sop = rng.choice(known)
        parts = ["v2", "studies", study, "series", series, "instances", sop]
        depth = rng.choice([3, 5, 7])
        parts = parts[:depth]
        tail = rng.choice(["", "/metadata", "/frames/1", "/rendered", "/frames/2/rendered", "/series", "/instances"])
        position = rng.randrange(2, len(parts))
        parts[position] = rng.choice([parts[position] + rng.choice(tricks), rng.choice(tricks)])
        query = ""
        if rng.random() < 0.4:
            query = "?" + "&".join(
                f"{rng.choice(PARAMETERS)}={rng.choice(tricks + ['10', 'true', '20200101-20210101', 'all', '*a*'])}"
                for _ in range(rng.randint(1, 3))
            )
        path = "/" + "/".join(parts) + tail + query
        if query and rng.random() < 0.5:
            path = f"/v2/{rng.choice(SEARCHES)}{query}"
        response = client.get(path, accept=rng.choice(["*/*", "application/dicom+json", "image/jpeg"]))
        statuses[response.status] += 1
        if response.status >= 500:
            server_errors.append(f"GET {path[:120]} -> {response.status}")
    drill.check(name, not server_errors, f"{len(server_errors)} answers of 5xx, e.g. {server_errors[:3]}")
    drill.report(name, requests=count, **{str(k): v for k, v in sorted(statuses.items())})
