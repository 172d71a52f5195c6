"""What every export destination provides, and the two ways a copy can go wrong.

A copy reads a stored blob and writes the destination at the same time, so the two sides
raise different exceptions: a blob that cannot be read skips that instance (`SourceUnreadable`),
a destination that cannot be written fails the whole operation (`DestinationUnavailable`).
"""

from __future__ import annotations

from typing import IO, Any, Protocol


class DestinationUnavailable(Exception):
    """The destination cannot be written; the export stops and the operation fails."""


class SourceUnreadable(Exception):
    """A stored blob could not be read; only that instance is skipped."""


class SourceStream:
    """A blob stream whose read errors are marked as the source's, not the destination's."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream

    def read(self, size: int = -1) -> bytes:
        try:
            return self._stream.read(size)
        except Exception as exc:  # any storage backend error
            raise SourceUnreadable(str(exc) or exc.__class__.__name__) from exc


class Sink(Protocol):
    """One operation's folder at a destination: `results/...` files and `errors.log`."""

    error_href: str

    def prepare(self, *, resume: bool) -> None:
        """Create the folder and errors.log; a resumed run keeps the lines of the earlier one."""

    def write(self, *, name: str, stream: SourceStream) -> None:
        """Copy `stream` to `name` (relative to the folder); readers never see half a file."""

    def error_append(self, line: str) -> None: ...

    def flush(self) -> None:
        """Make appended error lines durable before progress is recorded."""


class Destination(Protocol):
    def parameters(self) -> dict[str, Any]: ...

    def open(self, *, folder: str) -> Sink: ...
