"""The UPS state machine: PS3.4 Table CC.1.1-2 as Microsoft's server applies it.

Each (event, current state) gives the next state, or a DICOM status code: an error (C3xx)
refuses the request, a warning (B304/B306) answers it without a change. As in Microsoft's
ProcedureStepStateExtensions, a claim, completion or cancellation by someone who is not the
owner (a transaction UID other than the workitem's) is C301 whatever the state.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from studies.workitems.models import ProcedureStepState as S


class Event(Enum):
    """A request to move a workitem."""

    CLAIM = S.IN_PROGRESS
    COMPLETE = S.COMPLETED
    CANCEL = S.CANCELED
    REQUEST_CANCEL = "request cancel"


@dataclass(frozen=True)
class Transition:
    state: S | None  # the next state; None when nothing changes
    code: str | None = None

    @property
    def is_error(self) -> bool:
        return self.code is not None and self.code.startswith("C")

    @property
    def is_warning(self) -> bool:
        return self.code is not None and self.code.startswith("B")


TABLE: dict[tuple[Event, S], Transition] = {
    (Event.CLAIM, S.SCHEDULED): Transition(S.IN_PROGRESS),
    (Event.CLAIM, S.IN_PROGRESS): Transition(None, "C302"),
    (Event.CLAIM, S.COMPLETED): Transition(None, "C300"),
    (Event.CLAIM, S.CANCELED): Transition(None, "C300"),
    (Event.COMPLETE, S.SCHEDULED): Transition(None, "C310"),
    (Event.COMPLETE, S.IN_PROGRESS): Transition(S.COMPLETED),
    (Event.COMPLETE, S.COMPLETED): Transition(None, "B306"),
    (Event.COMPLETE, S.CANCELED): Transition(None, "C300"),
    (Event.CANCEL, S.SCHEDULED): Transition(None, "C310"),
    (Event.CANCEL, S.IN_PROGRESS): Transition(S.CANCELED),
    (Event.CANCEL, S.COMPLETED): Transition(None, "C300"),
    (Event.CANCEL, S.CANCELED): Transition(None, "B304"),
    (Event.REQUEST_CANCEL, S.SCHEDULED): Transition(S.CANCELED),
    # Microsoft's server does not notify the performer of a cancellation request: refused.
    (Event.REQUEST_CANCEL, S.IN_PROGRESS): Transition(None, "C312"),
    (Event.REQUEST_CANCEL, S.COMPLETED): Transition(None, "C311"),
    (Event.REQUEST_CANCEL, S.CANCELED): Transition(None, "B304"),
}


def transition(*, event: Event, state: str, owner: bool = True) -> Transition:
    """The table's answer; `owner` is False when the request's transaction UID is not the workitem's."""
    if not owner and event is not Event.REQUEST_CANCEL:
        return Transition(None, "C301")
    return TABLE[(event, S(state))]
