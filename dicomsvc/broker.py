"""The embedded broker: kombu's filesystem transport with messages that appear whole or not at all.

kombu's filesystem channel creates a message file under its final name and then writes it,
and its reader takes a file without the writer's lock. A reader that lists the folder in
between gets an empty or cut message, and a publisher killed in between (a worker or web
process SIGKILLed while enqueueing) leaves one behind. Either way the worker reading it stops
with "Unrecoverable error: JSONDecodeError" (celery/kombu#1551), and no task runs until it is
restarted by hand.

So a message is written under a name the reader skips and renamed into place once complete:
a rename within a folder is atomic, so the reader sees all of it or nothing. A file that still
cannot be read (one left by an older version, or by another tool) is logged and skipped: the
reader has already taken it off the queue, and the worker goes on with the next message.
Selected by `settings.CELERY_BROKER_TRANSPORT` when `CELERY_BROKER_URL` is `filesystem://`.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from pathlib import Path
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.json import dumps

logger = logging.getLogger(__name__)

# Written under this suffix, renamed to `<name>.<queue>.msg` when complete; the channel's
# reader, purge and size take only names whose part after the first dot is `<queue>.msg`.
PARTIAL_SUFFIX = ".partial"
# A partial file this old was left by a publisher that died while writing it.
STALE_PARTIAL_SECONDS = 60


class Channel(filesystem.Channel):
    # kombu's base channel calls the message `message`, its filesystem channel `payload`.
    def _put(self, queue: str, payload: Any, **kwargs: Any) -> None:  # type: ignore[override]
        """Write the message beside the queue under a partial name, then rename it into the queue.

        The name is the stock channel's, a millisecond clock first, so the reader's sorted
        listing still takes messages about in the order they were sent.
        """
        name = f"{int(round(time.monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        folder = Path(self.data_folder_out)
        partial = folder / f".{name}{PARTIAL_SUFFIX}"
        try:
            with open(partial, "xb") as file:
                file.write(dumps(payload).encode())  # type: ignore[no-untyped-call]
            os.replace(partial, folder / name)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise ChannelError(f"Cannot add a message to {folder}: {exc}") from exc

    def _get(self, queue: str, timeout: Any = None) -> Any:
        """The next message of `queue`, skipping any file that is not a whole message."""
        while True:
            try:
                return super()._get(queue)  # type: ignore[no-untyped-call]
            except ValueError as exc:  # JSONDecodeError: the file is already off the queue
                logger.error("broker: skipped an unreadable message file of queue %r (%s)", queue, exc)


class Transport(filesystem.Transport):
    Channel = Channel


def partials_remove(folder: str | Path, *, older_than: float = STALE_PARTIAL_SECONDS) -> int:
    """Remove partial message files of publishers that died while writing them; how many."""
    removed = 0
    cutoff = time.time() - older_than
    for path in Path(folder).glob(f".*{PARTIAL_SUFFIX}"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            continue  # renamed into the queue or removed meanwhile
    return removed
