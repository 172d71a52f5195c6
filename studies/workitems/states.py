"""The UPS state machine: PS3.4 Table CC.1.1-2 as Microsoft's server applies it.

Each (event, current state) gives the next state, or a DICOM status code: an error (C3xx)
refuses the request, a warning (B304/B306) answers it without a change.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from studies.workitems.models import ProcedureStepState as S


class Event(Enum):
    """A request to move a workitem, the transaction UID already checked."""

    CLAIM = S.IN_PROGRESS
    COMPLETE = S.COMPLETED
    CANCEL = S.CANCELED
    REQUEST_CANCEL = "request cancel"


# PS3.4 Annex CC status meanings, the texts the messages carry.
STATUS_TEXT = {
    "C300": "The UPS may no longer be updated.",
    "C302": "The UPS is already IN PROGRESS.",
    "C310": "The UPS is not yet in the IN PROGRESS state.",
    "C311": "The UPS is already COMPLETED.",
    "C312": "The performer chooses not to cancel.",
    "B304": "The UPS is already in the requested state of CANCELED.",
    "B306": "The UPS is already in the requested state of COMPLETED.",
}


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


def transition(*, event: Event, state: str) -> Transition:
    return TABLE[(event, S(state))]
