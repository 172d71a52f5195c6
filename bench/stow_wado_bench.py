"""STOW/WADO throughput and peak memory of our DICOMweb server next to Orthanc, on the same data.

Not a test: it prints numbers. `bench/run_bench.sh` starts both servers and runs it; to run it
by hand against servers you started yourself:

    python bench/stow_wado_bench.py --ours http://127.0.0.1:18700/v2 --ours-pid PID \
        --orthanc http://127.0.0.1:18701/dicom-web --orthanc-pid PID

Every figure is measured on both servers back to back (ours first, then Orthanc) with the
same pregenerated files: CT_small.dcm from pydicom, tiled up to a 512x512 matrix (a realistic
~0.5 MB CT slice) and given fresh UIDs. Request loops are bounded in count and in time.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import queue
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pydicom
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

BOUNDARY = "BENCHBOUNDARY7f3a9c"
STOW_TYPE = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'
ACCEPT_INSTANCE = "application/dicom; transfer-syntax=*"
ACCEPT_INSTANCE_MULTIPART = 'multipart/related; type="application/dicom"; transfer-syntax=*'
ACCEPT_STUDY = 'multipart/related; type="application/dicom"; transfer-syntax=*'
MULTIFRAME_SC = "1.2.840.10008.5.1.4.1.1.7.3"  # Multi-frame Grayscale Word Secondary Capture
MB = 1_000_000
READ_CHUNK = 1024 * 1024


# --- Data --------------------------------------------------------------------------------


@dataclass
class InstanceRef:
    study: str
    series: str
    sop: str
    size: int


@dataclass
class DataSet:
    root: Path
    stow1: list[tuple[Path, list[InstanceRef]]] = field(default_factory=list)
    stow20: list[tuple[Path, list[InstanceRef]]] = field(default_factory=list)
    warmup: list[tuple[Path, list[InstanceRef]]] = field(default_factory=list)
    big: Path | None = None
    big_instances: int = 0

    def instances(self) -> list[InstanceRef]:
        return [ref for _path, refs in self.stow1 + self.stow20 for ref in refs]

    def studies(self) -> list[str]:
        seen: dict[str, None] = {}
        for ref in self.instances():
            seen.setdefault(ref.study, None)
        return list(seen)


def _template(matrix: int) -> pydicom.Dataset:
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    if matrix != ds.Rows:
        reps = -(-matrix // ds.Rows)
        tiled = np.tile(ds.pixel_array, (reps, reps))[:matrix, :matrix]
        ds.PixelData = np.ascontiguousarray(tiled).astype(ds.pixel_array.dtype).tobytes()
        ds.Rows = ds.Columns = matrix
    return ds


def _instance_bytes(template: pydicom.Dataset, *, study: str, series: str, number: int) -> tuple[bytes, str]:
    ds = template.copy()
    sop = generate_uid()
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = series
    ds.SOPInstanceUID = sop
    ds.file_meta.MediaStorageSOPInstanceUID = sop
    ds.InstanceNumber = number
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue(), sop


def _write_multipart(path: Path, parts: list[bytes]) -> None:
    with open(path, "wb") as fh:
        for data in parts:
            fh.write(f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode())
            fh.write(data)
            fh.write(b"\r\n")
        fh.write(f"--{BOUNDARY}--".encode())


def _make_studies(
    template: pydicom.Dataset, root: Path, prefix: str, *, studies: int, per_study: int, per_request: int
) -> list[tuple[Path, list[InstanceRef]]]:
    """Bodies of `per_request` instances, in study order (a study's instances are consecutive)."""
    bodies: list[tuple[Path, list[InstanceRef]]] = []
    pending: list[tuple[bytes, InstanceRef]] = []
    for _s in range(studies):
        study, series = generate_uid(), generate_uid()
        for n in range(1, per_study + 1):
            data, sop = _instance_bytes(template, study=study, series=series, number=n)
            pending.append((data, InstanceRef(study, series, sop, len(data))))
            if len(pending) == per_request:
                path = root / f"{prefix}-{len(bodies):05d}.multipart"
                _write_multipart(path, [d for d, _ in pending])
                bodies.append((path, [r for _, r in pending]))
                pending = []
    assert not pending, "per_study must be a multiple of per_request"
    return bodies


def _make_big(root: Path, *, target_bytes: int, instances: int, matrix: int) -> Path:
    """One multipart body of `instances` multi-frame instances adding up to at least `target_bytes`."""
    base = _template(matrix)
    frame = base.PixelData
    frames = -(-target_bytes // (instances * len(frame)))
    path = root / "big.multipart"
    study, series = generate_uid(), generate_uid()
    with open(path, "wb") as fh:
        for n in range(1, instances + 1):
            ds = base.copy()
            ds.SOPClassUID = MULTIFRAME_SC
            ds.file_meta.MediaStorageSOPClassUID = MULTIFRAME_SC
            ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
            ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
            ds.InstanceNumber = n
            ds.NumberOfFrames = frames
            ds.PixelData = frame * frames
            fh.write(f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode())
            ds.save_as(fh, enforce_file_format=True)
            fh.write(b"\r\n")
            del ds
        fh.write(f"--{BOUNDARY}--".encode())
    return path


def data_generate(root: Path, args: argparse.Namespace) -> DataSet:
    template = _template(args.matrix)
    data = DataSet(root=root)
    data.warmup = _make_studies(template, root, "warm", studies=1, per_study=2 * args.clients, per_request=1)
    data.stow1 = _make_studies(
        template, root, "one", studies=args.stow1_instances // args.study_size, per_study=args.study_size, per_request=1
    )
    data.stow20 = _make_studies(
        template, root, "twenty", studies=args.stow20_requests * 20 // args.study_size,
        per_study=args.study_size, per_request=20,
    )
    if args.big_mb > 0:
        data.big = _make_big(root, target_bytes=args.big_mb * 1024 * 1024, instances=args.big_instances,
                             matrix=args.matrix)
        data.big_instances = args.big_instances
    return data


# --- HTTP clients ------------------------------------------------------------------------


# Headers sent with every request to a root (--ours-header: a bearer token when auth is on).
ROOT_HEADERS: dict[str, dict[str, str]] = {}


class Client:
    """One keep-alive connection to a DICOMweb root; reconnects when the server closes it."""

    def __init__(self, root: str, timeout: float) -> None:
        self.headers = ROOT_HEADERS.get(root, {})
        parts = urlsplit(root)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.prefix = parts.path.rstrip("/")
        self.timeout = timeout
        self.conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout, blocksize=READ_CHUNK)
        return self.conn

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def request(self, method: str, path: str, *, body=None, headers: dict[str, str]) -> tuple[int, int, bytes]:  # noqa: ANN001
        """(status, body bytes received, first 64 KB of the body); the rest is read and dropped."""
        conn = self._connection()
        try:
            conn.request(method, self.prefix + path, body=body, headers={**headers, **self.headers})
            resp = conn.getresponse()
            head = b""
            total = 0
            buffer = bytearray(READ_CHUNK)
            view = memoryview(buffer)
            while True:
                n = resp.readinto(view)
                if not n:
                    break
                if len(head) < 65536:
                    head += bytes(view[: min(n, 65536 - len(head))])
                total += n
            if resp.will_close:
                self.close()
            return resp.status, total, head
        except Exception:
            self.close()
            raise


@dataclass
class PhaseResult:
    label: str
    seconds: float
    done: int
    units: float  # instances stored, or bytes received
    errors: list[str]
    latencies: list[float]
    load: tuple[float, float]

    def latency_text(self) -> str:
        if not self.latencies:
            return "-"
        ordered = sorted(self.latencies)
        p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
        return f"p50 {statistics.median(ordered) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms"


Job = Callable[[Client], tuple[float, str | None]]  # -> (units, error or None)


def run_phase(
    label: str, root: str, jobs: list[Job], *, clients: int, deadline_s: float, timeout: float
) -> PhaseResult:
    """Run `jobs` on `clients` threads, each with its own connection; stop taking jobs at the deadline."""
    work: queue.Queue[Job] = queue.Queue()
    for job in jobs:
        work.put(job)
    lock = threading.Lock()
    units = 0.0
    done = 0
    errors: list[str] = []
    latencies: list[float] = []
    start = time.perf_counter()
    stop_at = start + deadline_s
    load_before = os.getloadavg()[0]

    def worker() -> None:
        nonlocal units, done
        client = Client(root, timeout)
        try:
            while time.perf_counter() < stop_at:
                try:
                    job = work.get_nowait()
                except queue.Empty:
                    return
                t0 = time.perf_counter()
                try:
                    got, error = job(client)
                except Exception as exc:  # a failed request is counted, not fatal
                    got, error = 0.0, f"{type(exc).__name__}: {exc}"
                elapsed = time.perf_counter() - t0
                with lock:
                    done += 1
                    latencies.append(elapsed)
                    if error:
                        errors.append(error)
                    else:
                        units += got
        finally:
            client.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - start
    if not work.empty():
        errors.append(f"deadline of {deadline_s:.0f}s reached with {work.qsize()} requests not sent")
    return PhaseResult(label, seconds, done, units, errors, latencies, (load_before, os.getloadavg()[0]))


def stow_job(path: Path, count: int) -> Job:
    def job(client: Client) -> tuple[float, str | None]:
        body = path.read_bytes()
        status, _n, head = client.request(
            "POST", "/studies", body=body,
            headers={"Content-Type": STOW_TYPE, "Accept": "application/dicom+json",
                     "Content-Length": str(len(body))},
        )
        if status != 200:
            return 0, f"STOW {status}: {head[:300]!r}"
        return count, None

    return job


def wado_job(path: str, accept: str, expect_min: int) -> Job:
    def job(client: Client) -> tuple[float, str | None]:
        status, n, head = client.request("GET", path, headers={"Accept": accept})
        if status != 200:
            return 0, f"GET {status}: {head[:300]!r}"
        if n < expect_min:
            return 0, f"GET {path}: {n} bytes, expected at least {expect_min}"
        return n, None

    return job


# --- Memory ------------------------------------------------------------------------------


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        ppid = int(stat[stat.rfind(b")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    return children


def process_tree(root: int) -> list[int]:
    children = _children_map()
    out, stack = [], [root]
    while stack:
        pid = stack.pop()
        out.append(pid)
        stack.extend(children.get(pid, []))
    return out


def rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class RssSampler(threading.Thread):
    """Peak RSS of a process tree (sum) and of its largest process, sampled every 20 ms."""

    def __init__(self, root: int) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.stopped = threading.Event()
        self.peak_tree = 0
        self.peak_process = 0
        self.pids = process_tree(root)

    def run(self) -> None:
        last_scan = time.monotonic()
        while not self.stopped.is_set():
            if time.monotonic() - last_scan > 1.0:
                self.pids = process_tree(self.root)
                last_scan = time.monotonic()
            sizes = [rss_bytes(pid) for pid in self.pids]
            self.peak_tree = max(self.peak_tree, sum(sizes))
            self.peak_process = max(self.peak_process, max(sizes, default=0))
            self.stopped.wait(0.02)


@dataclass
class BigResult:
    status: int
    seconds: float
    body_bytes: int
    base_tree: int
    base_process: int
    peak_tree: int
    peak_process: int
    processes: int
    error: str | None


def big_store(root: str, pid: int | None, path: Path, timeout: float) -> BigResult:
    size = path.stat().st_size
    base_tree = base_process = peak_tree = peak_process = processes = 0
    sampler = None
    if pid:
        pids = process_tree(pid)
        sizes = [rss_bytes(p) for p in pids]
        base_tree, base_process, processes = sum(sizes), max(sizes), len(pids)
        sampler = RssSampler(pid)
        sampler.start()
    client = Client(root, timeout)
    error = None
    status = 0
    t0 = time.perf_counter()
    try:
        with open(path, "rb") as fh:
            status, _n, head = client.request(
                "POST", "/studies", body=fh,
                headers={"Content-Type": STOW_TYPE, "Accept": "application/dicom+json", "Content-Length": str(size)},
            )
        if status != 200:
            error = f"STOW {status}: {head[:300]!r}"
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
    finally:
        client.close()
    seconds = time.perf_counter() - t0
    if sampler is not None:
        time.sleep(0.2)
        sampler.stopped.set()
        sampler.join()
        peak_tree, peak_process = sampler.peak_tree, sampler.peak_process
    return BigResult(status, seconds, size, base_tree, base_process, peak_tree, peak_process, processes, error)


# --- Driver ------------------------------------------------------------------------------


@dataclass
class Target:
    name: str
    root: str
    pid: int | None
    single_accept: str


def _check_single_accept(target: Target, ref: InstanceRef, timeout: float) -> None:
    """Orthanc's DICOMweb plugin may only answer multipart; fall back to that and say so."""
    client = Client(target.root, timeout)
    path = f"/studies/{ref.study}/series/{ref.series}/instances/{ref.sop}"
    try:
        status, n, _ = client.request("GET", path, headers={"Accept": ACCEPT_INSTANCE})
    finally:
        client.close()
    if status != 200 or n < ref.size:
        print(f"  note: {target.name} answered {status} ({n} bytes) to Accept: {ACCEPT_INSTANCE}; "
              f"its WADO instance figure uses Accept: {ACCEPT_INSTANCE_MULTIPART}")
        target.single_accept = ACCEPT_INSTANCE_MULTIPART


def _mb(n: int) -> str:
    return f"{n / 1024 / 1024:.0f} MiB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ours", required=True, help="our DICOMweb root, e.g. http://127.0.0.1:18700/v2")
    parser.add_argument("--orthanc", help="Orthanc's DICOMweb root, e.g. http://127.0.0.1:18701/dicom-web "
                        "(leave out to measure only ours, e.g. while profiling)")
    parser.add_argument("--ours-pid", type=int, help="root process of our server (gunicorn master), for RSS")
    parser.add_argument("--orthanc-pid", type=int, help="Orthanc's process id, for RSS")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--matrix", type=int, default=512, help="image rows/columns (CT_small is 128)")
    parser.add_argument("--study-size", type=int, default=40, help="instances per study")
    parser.add_argument("--stow1-instances", type=int, default=1600)
    parser.add_argument("--stow20-requests", type=int, default=96)
    parser.add_argument("--wado-instance-requests", type=int, default=6000)
    parser.add_argument("--wado-study-passes", type=int, default=5)
    parser.add_argument("--big-mb", type=int, default=1024, help="size of the one big STOW body (0: skip)")
    parser.add_argument("--big-instances", type=int, default=10)
    parser.add_argument("--phase-seconds", type=float, default=240, help="time cap of each phase")
    parser.add_argument("--workdir", help="where to generate data (default: a new temp dir, removed after)")
    parser.add_argument("--json", help="also write the results here as JSON")
    parser.add_argument("--ours-header", action="append", default=[], metavar="NAME: VALUE",
                        help="a header sent with every request to our server (repeatable)")
    args = parser.parse_args(argv)
    for header in args.ours_header:
        name, _, value = header.partition(":")
        ROOT_HEADERS.setdefault(args.ours, {})[name.strip()] = value.strip()
    if args.study_size % 20:
        parser.error("--study-size must be a multiple of 20")

    random.seed(7)
    workdir = Path(tempfile.mkdtemp(prefix="stow-wado-", dir=args.workdir))
    try:
        return _run(args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _settle() -> None:
    """Write back every dirty page before a measured run.

    Without it the server measured first pays for the writes made just before its run (the
    data generator's 3 GB; later, the previous run's files): both servers fsync, and on ext4
    (data=ordered) an fsync commits the journal, which first writes out the data of every
    file whose blocks that transaction allocated.
    """
    os.sync()


def _run(args: argparse.Namespace, workdir: Path) -> int:
    print(f"load average at start: {os.getloadavg()}", flush=True)
    t0 = time.perf_counter()
    data = data_generate(workdir, args)
    n1 = sum(len(refs) for _p, refs in data.stow1)
    n20 = sum(len(refs) for _p, refs in data.stow20)
    size = data.stow1[0][1][0].size
    print(f"generated {n1} + {n20} instances of {size} bytes and a {_mb(data.big.stat().st_size) if data.big else '-'}"
          f" body in {time.perf_counter() - t0:.0f}s under {workdir}", flush=True)

    targets = [Target("ours", args.ours, args.ours_pid, ACCEPT_INSTANCE)]
    if args.orthanc:
        targets.append(Target("orthanc", args.orthanc, args.orthanc_pid, ACCEPT_INSTANCE))
    timeout = 600.0
    rows: list[tuple[str, dict[str, float | None], str]] = []
    details: dict[str, dict[str, object]] = {}

    def phase(metric: str, unit_div: float, make_jobs: Callable[[Target], list[Job]]) -> None:
        values: dict[str, float | None] = {}
        for target in targets:
            _settle()
            result = run_phase(metric, target.root, make_jobs(target), clients=args.clients,
                               deadline_s=args.phase_seconds, timeout=timeout)
            value = result.units / unit_div / result.seconds if result.seconds else 0.0
            values[target.name] = value
            details.setdefault(metric, {})[target.name] = {
                "value": value, "seconds": result.seconds, "requests": result.done, "errors": result.errors[:5],
                "error_count": len(result.errors), "latency": result.latency_text(), "load": result.load,
            }
            print(f"  {metric:<38} {target.name:<8} {value:9.1f}  ({result.done} requests in {result.seconds:.1f}s, "
                  f"{result.latency_text()}, {len(result.errors)} errors, load {result.load[0]:.2f}->"
                  f"{result.load[1]:.2f})", flush=True)
            for error in result.errors[:3]:
                print(f"    error: {error}", flush=True)
        rows.append((metric, values, "higher is better"))

    for target in targets:  # warm-up: connections, worker imports, first queries (not measured)
        run_phase("warm-up", target.root, [stow_job(p, len(r)) for p, r in data.warmup], clients=args.clients,
                  deadline_s=60, timeout=timeout)

    phase(f"STOW inst/s (1/request, {args.clients} clients)", 1, lambda t: [stow_job(p, len(r)) for p, r in data.stow1])
    phase(f"STOW inst/s (20/request, {args.clients} clients)", 1,
          lambda t: [stow_job(p, len(r)) for p, r in data.stow20])

    instances = data.instances()
    for target in targets:
        _check_single_accept(target, instances[0], timeout)
    picks = [random.choice(instances) for _ in range(args.wado_instance_requests)]
    phase(f"WADO instance MB/s ({args.clients} clients)", MB, lambda t: [
        wado_job(f"/studies/{r.study}/series/{r.series}/instances/{r.sop}", t.single_accept, r.size) for r in picks
    ])
    study_sizes: dict[str, int] = {}
    for ref in instances:
        study_sizes[ref.study] = study_sizes.get(ref.study, 0) + ref.size
    studies = list(study_sizes) * args.wado_study_passes
    random.shuffle(studies)
    phase(f"WADO study MB/s ({args.clients} clients, {args.study_size} inst/study)", MB, lambda t: [
        wado_job(f"/studies/{s}", ACCEPT_STUDY, study_sizes[s]) for s in studies
    ])

    big: dict[str, BigResult] = {}
    if data.big is not None:
        for target in targets:
            _settle()
            result = big_store(target.root, target.pid, data.big, timeout)
            big[target.name] = result
            print(f"  1 GB STOW {target.name:<8} status {result.status} in {result.seconds:.1f}s; RSS tree "
                  f"{_mb(result.base_tree)} -> peak {_mb(result.peak_tree)} over {result.processes} processes, "
                  f"largest process {_mb(result.base_process)} -> peak {_mb(result.peak_process)}"
                  + (f"; error: {result.error}" if result.error else ""), flush=True)
        details["big"] = {name: vars(r) for name, r in big.items()}

    print()
    print(f"{'metric':<52} {'ours':>10} {'orthanc':>10} {'ours/orthanc':>13}")
    for metric, values, _ in rows:
        ours, theirs = values.get("ours"), values.get("orthanc")
        ratio = f"{ours / theirs:.2f}" if ours and theirs else "-"
        print(f"{metric:<52} {ours or 0:>10.1f} {theirs or 0:>10.1f} {ratio:>13}")
    if big:
        def col(name: str, attr: str) -> str:
            r = big.get(name)
            return "-" if r is None or not getattr(r, attr) else f"{getattr(r, attr) / 1024 / 1024:.0f}"

        for label, attr in [("peak RSS MiB, 1 GB STOW, largest process", "peak_process"),
                            ("peak RSS MiB, 1 GB STOW, whole process tree", "peak_tree")]:
            ours, theirs = big.get("ours"), big.get("orthanc")
            a, b = getattr(ours, attr, 0) if ours else 0, getattr(theirs, attr, 0) if theirs else 0
            ratio = f"{a / b:.2f}" if a and b else "-"
            print(f"{label + ' (lower is better)':<52} {col('ours', attr):>10} {col('orthanc', attr):>10} {ratio:>13}")
        secs = {name: f"{r.body_bytes / MB / r.seconds:.1f}" if r.status == 200 else f"failed {r.status}"
                for name, r in big.items()}
        print(f"{'1 GB STOW MB/s (one request)':<52} {secs.get('ours', '-'):>10} {secs.get('orthanc', '-'):>10}")
    print(f"\nload average at end: {os.getloadavg()}")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "details": details}, indent=2, default=str))
    failed = any(d.get("error_count") for m in details.values() if isinstance(m, dict)
                 for d in m.values() if isinstance(d, dict) and "error_count" in d)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
