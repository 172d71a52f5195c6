"""The embedded broker (`dicomsvc.broker`): a message file is read whole or not at all.

kombu's stock filesystem channel stopped the worker for good on an empty or cut message file
("Unrecoverable error: JSONDecodeError"): one written by a publisher killed mid-write, or
read while it was being written. That a worker goes on past one is in test_worker_kill.py.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from kombu import Connection
from kombu.simple import SimpleQueue

from dicomsvc import broker

QUEUE = "drill"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "queue").mkdir()
    return tmp_path / "queue"


@pytest.fixture(scope="module")
def control(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One control folder (the exchange bindings) for the module: kombu keeps the bindings it has
    declared in state shared by every connection of a transport class, and writes them once."""
    return tmp_path_factory.mktemp("control")


@pytest.fixture
def queue(folder: Path, control: Path) -> Iterator[SimpleQueue]:
    options = {
        "data_folder_in": str(folder),
        "data_folder_out": str(folder),
        "processed_folder": str(folder.parent / "processed"),
        "control_folder": str(control),
    }
    with Connection(transport=broker.Transport, transport_options=options) as connection:
        simple = connection.SimpleQueue(QUEUE)
        yield simple
        simple.close()


def _messages(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if path.name.endswith(f".{QUEUE}.msg"))


def test_a_torn_message_file_is_skipped_and_the_next_message_delivered(folder: Path, queue: SimpleQueue, caplog):
    # Names that sort first: what a publisher killed after creating its file left behind.
    (folder / f"0_a_empty.{QUEUE}.msg").write_bytes(b"")
    (folder / f"0_b_cut.{QUEUE}.msg").write_bytes(b'{"body": "eyJ')
    queue.put({"n": 1})

    with caplog.at_level(logging.ERROR, logger="dicomsvc.broker"):
        message = queue.get(timeout=2)

    assert message.payload == {"n": 1}
    message.ack()
    assert _messages(folder) == []
    assert [record.getMessage().split(" (")[0] for record in caplog.records] == [
        f"broker: skipped an unreadable message file of queue '{QUEUE}'"
    ] * 2


def test_a_publisher_killed_before_its_rename_leaves_no_message_and_its_partial_file_is_cleared(
    folder: Path, queue: SimpleQueue, monkeypatch: pytest.MonkeyPatch
):
    def killed(*args: object) -> None:
        raise SystemExit("killed")  # not an OSError: nothing of the put's own clean-up runs

    monkeypatch.setattr(broker.os, "replace", killed)
    with pytest.raises(SystemExit):
        queue.put({"n": 1})
    monkeypatch.undo()

    assert _messages(folder) == []
    partials = [path.name for path in folder.iterdir()]
    assert len(partials) == 1 and partials[0].startswith(".") and partials[0].endswith(broker.PARTIAL_SUFFIX)
    with pytest.raises(queue.Empty):
        queue.get(timeout=0.2)

    assert broker.partials_remove(folder) == 0  # a fresh partial may be a publisher still writing
    assert broker.partials_remove(folder, older_than=0) == 1
    assert list(folder.iterdir()) == []
