"""The DT value rule workitem writes and searches share (UIDs and person names: `dicomsvc.dicom_values`)."""

from __future__ import annotations

import datetime as dt
import re

# DT (PS3.5 Table 6.2-1): YYYY[MM[DD[HH[MM[SS[.F{1,6}]]]]]][&ZZXX]; the offset is not kept.
_DT = re.compile(r"(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.(\d{1,6}))?(?:[+-]\d{4})?")
_DT_LOW = "00000101000000000000"
_DT_HIGH = "99991231235959999999"


def dt_bounds(value: str) -> tuple[str, str] | None:
    """The first and last instant a DT value denotes, as YYYYMMDDHHMMSS.FFFFFF (None if invalid).

    `20260102` is the whole day: its bounds are 20260102000000.000000 and 20260102235959.999999.
    """
    match = _DT.fullmatch(value.strip())
    if match is None:
        return None
    digits = "".join(part or "" for part in match.groups()[:6])
    fraction = match.group(7) or ""
    if fraction and len(digits) < 14:
        return None
    given = digits + fraction
    low, high = given + _DT_LOW[len(given) :], given + _DT_HIGH[len(given) :]
    if len(digits) < 8:  # a year or a month: it ends on the month's last day
        try:
            last = dt.date(int(low[:4]), 12 if len(digits) == 4 else int(low[4:6]), 28) + dt.timedelta(days=4)
        except ValueError:
            return None
        last = last.replace(day=1) - dt.timedelta(days=1)
        high = last.strftime("%Y%m%d") + high[8:]
    try:
        dt.datetime.strptime(low[:14], "%Y%m%d%H%M%S")
        dt.datetime.strptime(high[:14], "%Y%m%d%H%M%S")
    except ValueError:
        return None
    return f"{low[:14]}.{low[14:]}", f"{high[:14]}.{high[14:]}"

