"""Schedule arithmetic: parsing a schedule, and when a local date's post is due, DST included.

DST policy: a local time that does not exist on a date (it falls in a spring-forward gap) posts at
the first valid instant after the gap; an ambiguous one (repeated at fall-back) posts at its first
occurrence.
"""

from __future__ import annotations

import functools
import re
import zoneinfo
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
EVERY_DAY = 0b1111111
MON_FRI = 0b0011111
_TIME = re.compile(r"^([0-9]{1,2}):([0-9]{2})$")


class ScheduleError(ValueError):
    """A schedule value that cannot be used; the message says what was wrong and what would work."""


def parse_time(text: str) -> time:
    match = _TIME.match(text.strip())
    if match:
        hour, minute = int(match[1]), int(match[2])
        if hour < 24 and minute < 60:
            return time(hour, minute)
    raise ScheduleError(f"`{clip(text)}` is not a time of day: use 24-hour HH:MM, e.g. 09:30 or 17:00.")


@functools.cache
def _zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def parse_zone(text: str) -> ZoneInfo:
    name = text.strip()
    if name in _zone_names():
        return ZoneInfo(name)
    folded = {z.lower(): z for z in _zone_names()}
    hint = f" Did you mean `{folded[name.lower()]}`?" if name.lower() in folded else ""
    raise ScheduleError(
        f"`{clip(text)}` is not an IANA time zone.{hint} Use Area/City, e.g. Europe/Berlin or America/New_York."
    )


def parse_weekdays(text: str) -> int:
    """`daily`, `weekdays`/`mon-fri`, `weekends`, a range `tue-thu` or a list `mon,wed,fri`."""
    spec = text.strip().lower()
    named = {"daily": EVERY_DAY, "everyday": EVERY_DAY, "weekdays": MON_FRI, "weekends": 0b1100000}
    if spec in named:
        return named[spec]
    mask = 0
    for part in spec.split(","):
        part = part.strip()
        ends = part.split("-")
        if len(ends) > 2 or not all(end[:3] in WEEKDAY_NAMES and len(end) >= 3 for end in ends):
            raise ScheduleError(
                f"`{clip(text)}` is not a set of weekdays: use daily, mon-fri, weekends, or a list like mon,wed,fri."
            )
        first = WEEKDAY_NAMES.index(ends[0][:3])
        last = WEEKDAY_NAMES.index(ends[-1][:3])
        day = first
        while True:
            mask |= 1 << day
            if day == last:
                break
            day = (day + 1) % 7
    return mask


def format_weekdays(mask: int) -> str:
    if mask == EVERY_DAY:
        return "every day"
    if mask == MON_FRI:
        return "Mon–Fri"
    return ", ".join(name.title() for i, name in enumerate(WEEKDAY_NAMES) if mask & (1 << i))


def is_scheduled(mask: int, day: date) -> bool:
    return bool(mask & (1 << day.weekday()))


def due_instant(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The UTC instant at which `day`'s post at local time `at` is due in `zone`."""
    wall = datetime.combine(day, at)
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == wall:
        return first  # exists; fold=0 is the first occurrence when the time is ambiguous
    # In a gap, fold=1 reads the wall time with the offset from after the transition, which lands
    # before the gap; fold=0 lands after it. The transition lies between: find it to the second.
    low = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    low, high = min(low, first), max(low, first)
    after = high.astimezone(zone).utcoffset()
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(zone).utcoffset() == after:
            high = middle
        else:
            low = middle
    return high.replace(microsecond=0)


def latest_due(now: datetime, at: time, zone: ZoneInfo, weekdays: int, lateness: timedelta) -> tuple[date, datetime] | None:
    """The most recent scheduled (local date, due instant) at or before `now`, if not over `lateness` late."""
    today = now.astimezone(zone).date()
    # A gap can push a date's post into the next local day, so look one day ahead as well.
    day = today + timedelta(days=1)
    oldest = (now - lateness).astimezone(zone).date() - timedelta(days=1)
    while day >= oldest:
        if is_scheduled(weekdays, day):
            due = due_instant(day, at, zone)
            if due <= now:
                return (day, due) if now - due <= lateness else None
        day -= timedelta(days=1)
    return None


def next_due(now: datetime, at: time, zone: ZoneInfo, weekdays: int, after: date | None = None) -> tuple[date, datetime] | None:
    """The first scheduled (local date, due instant) after `now` (and after local date `after`, if given)."""
    day = now.astimezone(zone).date() - timedelta(days=1)
    for _ in range(9):
        if is_scheduled(weekdays, day) and (after is None or day > after):
            due = due_instant(day, at, zone)
            if due > now:
                return day, due
        day += timedelta(days=1)
    return None


def clip(text: str, limit: int = 60) -> str:
    text = " ".join(text.split()).replace("`", "'")
    return text if len(text) <= limit else text[: limit - 1] + "…"
