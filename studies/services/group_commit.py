"""Group commit: the commit steps of concurrent stores in one process share one transaction.

Why: a one-instance STOW pays for its commit transaction (nine statements, BEGIN, COMMIT and
its WAL flush, the study and series row locks) alone, and under load that was the largest
share of its cost; a request of twenty instances pays for it once. Here the threads of one
process that reach their commit step while another thread is committing queue up, and the
next thread to get the commit lock commits everything queued in one transaction, as a
multi-instance request would. Nobody waits for a batch to fill: a thread that finds no
commit running commits at once, alone.

The transaction is the store service's own (`studies.services.store._commit`), so what it
guarantees per instance is unchanged. Its failure is never shared between requests: when the
transaction of several requests fails, each request's items are committed again on their own,
and only a request whose own commit fails gets the failure (all its instances fail, and it
discards its own reservations, as the instances of one request always did).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass
class _Ticket(Generic[T]):
    items: Sequence[T]
    done: bool = False
    committed: set[int] = field(default_factory=set)
    failure: str | None = None


class CommitFailed(Exception):
    """The caller's items were not committed: their own commit failed (the message says why)."""


class GroupCommit(Generic[T]):
    """Runs `commit(items) -> ids committed` for the queued items of several threads at once."""

    def __init__(self, *, key: Callable[[T], int], max_items: int) -> None:
        self._key = key
        self._max_items = max_items
        self._queue_lock = threading.Lock()
        self._commit_lock = threading.Lock()
        self._pending: list[_Ticket[T]] = []

    def run(self, items: Sequence[T], commit: Callable[[list[T]], set[int]], *, alone: bool = False) -> set[int]:
        """The keys of `items` committed, once they are; CommitFailed when their commit failed.

        `alone`: commit these items by themselves in the calling thread, e.g. when the caller is
        inside a transaction of its own (its rows are visible only to its connection, and it may
        hold row locks another committer would wait for while it waited for the commit lock)."""
        ticket = _Ticket(items=items)
        if alone:
            self._commit([ticket], commit)
            return self._outcome(ticket)
        with self._queue_lock:
            self._pending.append(ticket)
        with self._commit_lock:
            # Whoever held the lock before may have committed this ticket with its own.
            while not ticket.done:
                self._commit(self._take(), commit)
        return self._outcome(ticket)

    @staticmethod
    def _outcome(ticket: _Ticket[T]) -> set[int]:
        if ticket.failure is not None:
            raise CommitFailed(ticket.failure)
        return ticket.committed

    def _take(self) -> list[_Ticket[T]]:
        """The oldest queued tickets, up to `max_items` items (at least one ticket)."""
        with self._queue_lock:
            taken, count = 0, 0
            for ticket in self._pending:
                if taken and count + len(ticket.items) > self._max_items:
                    break
                taken += 1
                count += len(ticket.items)
            batch, self._pending = self._pending[:taken], self._pending[taken:]
        return batch

    def _commit(self, batch: list[_Ticket[T]], commit: Callable[[list[T]], set[int]]) -> None:
        try:
            committed = commit([item for ticket in batch for item in ticket.items])
        except Exception as exc:
            if len(batch) > 1:
                logger.warning("committing %d stores together failed; committing each alone", len(batch), exc_info=True)
                self._commit_each(batch, commit)
                return
            logger.exception("committing a store failed")
            self._answer(batch, set(), str(exc) or type(exc).__name__)
        except BaseException:
            # Every ticket is answered even then, so no waiting thread spins.
            self._answer(batch, set(), "the commit was interrupted")
            raise
        else:
            self._answer(batch, committed, None)

    def _commit_each(self, batch: list[_Ticket[T]], commit: Callable[[list[T]], set[int]]) -> None:
        try:
            for ticket in batch:
                self._commit([ticket], commit)
        finally:
            self._answer([ticket for ticket in batch if not ticket.done], set(), "the commit was interrupted")

    def _answer(self, batch: list[_Ticket[T]], committed: set[int], failure: str | None) -> None:
        for ticket in batch:
            keys = {self._key(item) for item in ticket.items}
            ticket.committed = keys & committed
            ticket.failure = failure
            ticket.done = True
