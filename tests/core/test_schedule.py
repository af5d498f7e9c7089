"""Schedule parsing and the DST policy, in the five zones DESIGN.md names."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.schedule import (
    EVERY_DAY,
    MON_FRI,
    ScheduleError,
    due_instant,
    format_weekdays,
    latest_due,
    next_due,
    parse_time,
    parse_weekdays,
    parse_zone,
)


@pytest.mark.parametrize("text", ["25:99", "24:00", "9", "09:60", "nine", "", "9:5", "-1:00", "09:00:00", "１０:００"])
def test_a_time_that_is_not_hh_mm_is_refused_with_its_own_text_in_the_message(text: str) -> None:
    with pytest.raises(ScheduleError, match="is not a time of day"):
        parse_time(text)


def test_valid_times_parse() -> None:
    assert parse_time("09:30") == time(9, 30)
    assert parse_time("7:05") == time(7, 5)
    assert parse_time("23:59") == time(23, 59)


@pytest.mark.parametrize("text", ["Mars/Olympus", "", "UTC+2", "../../etc/passwd", "Europe/" + "x" * 300, "\x00"])
def test_an_unknown_zone_is_refused_and_named(text: str) -> None:
    with pytest.raises(ScheduleError, match="is not an IANA time zone"):
        parse_zone(text)


def test_a_zone_in_the_wrong_case_gets_a_suggestion() -> None:
    with pytest.raises(ScheduleError, match="Did you mean `Europe/Berlin`"):
        parse_zone("europe/berlin")


@pytest.mark.parametrize(("text", "mask"), [
    ("daily", EVERY_DAY), ("mon-fri", MON_FRI), ("weekdays", MON_FRI), ("mon,wed,fri", 0b10101),
    ("sat-mon", 0b1100001), ("Tue", 0b10), ("weekends", 0b1100000),
])
def test_weekday_specs(text: str, mask: int) -> None:
    assert parse_weekdays(text) == mask


@pytest.mark.parametrize("text", ["funday", "mon-", "mon--fri", "mo", "", "mon,,fri", "mon-wed-fri"])
def test_bad_weekday_specs_are_refused(text: str) -> None:
    with pytest.raises(ScheduleError, match="is not a set of weekdays"):
        parse_weekdays(text)


def test_weekdays_read_naturally() -> None:
    assert format_weekdays(EVERY_DAY) == "every day"
    assert format_weekdays(MON_FRI) == "Mon–Fri"
    assert format_weekdays(0b10101) == "Mon, Wed, Fri"


def local(zone: str, when: datetime) -> datetime:
    return when.astimezone(ZoneInfo(zone)).replace(tzinfo=None)


@pytest.mark.parametrize(("zone", "day", "at", "expected_local", "expected_utc"), [
    # Spring forward: 02:30 does not exist; post at the end of the gap.
    ("America/New_York", date(2026, 3, 8), time(2, 30), datetime(2026, 3, 8, 3, 0), datetime(2026, 3, 8, 7, 0)),
    ("Europe/Berlin", date(2026, 3, 29), time(2, 15), datetime(2026, 3, 29, 3, 0), datetime(2026, 3, 29, 1, 0)),
    # Lord Howe moves only 30 minutes: 02:10 falls in the 02:00-02:30 gap.
    ("Australia/Lord_Howe", date(2026, 10, 4), time(2, 10), datetime(2026, 10, 4, 2, 30), datetime(2026, 10, 3, 15, 30)),
    # Apia skipped 30 December 2011 entirely: that date's post goes at the first instant after it.
    ("Pacific/Apia", date(2011, 12, 30), time(9, 0), datetime(2011, 12, 31, 0, 0), datetime(2011, 12, 30, 10, 0)),
    # Kolkata has no DST: a half-hour offset all year.
    ("Asia/Kolkata", date(2026, 3, 8), time(9, 0), datetime(2026, 3, 8, 9, 0), datetime(2026, 3, 8, 3, 30)),
])
def test_a_time_in_a_gap_posts_at_the_first_valid_instant_after_it(
    zone: str, day: date, at: time, expected_local: datetime, expected_utc: datetime,
) -> None:
    due = due_instant(day, at, ZoneInfo(zone))
    assert due == expected_utc.replace(tzinfo=UTC)
    assert local(zone, due) == expected_local


@pytest.mark.parametrize(("zone", "day", "at", "first_utc"), [
    # Fall back: 01:30 happens twice; post at the first (still on summer time).
    ("America/New_York", date(2026, 11, 1), time(1, 30), datetime(2026, 11, 1, 5, 30)),
    ("Europe/Berlin", date(2026, 10, 25), time(2, 30), datetime(2026, 10, 25, 0, 30)),
    ("Australia/Lord_Howe", date(2026, 4, 5), time(1, 45), datetime(2026, 4, 4, 14, 45)),
    # Apia still had DST in 2020: 03:30 on 5 April was repeated.
    ("Pacific/Apia", date(2020, 4, 5), time(3, 30), datetime(2020, 4, 4, 13, 30)),
])
def test_an_ambiguous_time_posts_at_its_first_occurrence(zone: str, day: date, at: time, first_utc: datetime) -> None:
    due = due_instant(day, at, ZoneInfo(zone))
    assert due == first_utc.replace(tzinfo=UTC)
    assert due.astimezone(ZoneInfo(zone)).fold == 0


@pytest.mark.parametrize("zone", ["America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "Asia/Kolkata", "Pacific/Apia"])
def test_every_day_of_a_year_gets_exactly_one_due_instant_at_or_after_the_wall_time(zone: str) -> None:
    tz = ZoneInfo(zone)
    day, seen = date(2026, 1, 1), set()
    while day.year == 2026:
        due = due_instant(day, time(2, 30), tz)
        assert due not in seen
        seen.add(due)
        wall = due.astimezone(tz).replace(tzinfo=None)
        assert wall >= datetime.combine(day, time(2, 30)) and wall - datetime.combine(day, time(2, 30)) <= timedelta(hours=1)
        day += timedelta(days=1)


def test_latest_due_is_found_within_the_lateness_window_and_not_after() -> None:
    zone = ZoneInfo("Europe/Berlin")
    due = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # 09:00 Berlin
    three_hours = timedelta(hours=3)
    assert latest_due(due - timedelta(seconds=1), time(9), zone, EVERY_DAY, three_hours) is None  # yesterday's is 24 h late
    assert latest_due(due, time(9), zone, EVERY_DAY, three_hours) == (date(2026, 3, 2), due)
    assert latest_due(due + timedelta(hours=2, minutes=59), time(9), zone, EVERY_DAY, three_hours) == (date(2026, 3, 2), due)
    assert latest_due(due + timedelta(hours=3, seconds=1), time(9), zone, EVERY_DAY, three_hours) is None


def test_a_day_off_the_schedule_is_never_due() -> None:
    sunday = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    assert latest_due(sunday, time(9), ZoneInfo("UTC"), MON_FRI, timedelta(hours=3)) is None


def test_next_due_skips_days_off_and_dates_already_taken() -> None:
    friday_evening = datetime(2026, 3, 6, 18, 0, tzinfo=UTC)
    assert next_due(friday_evening, time(9), ZoneInfo("UTC"), MON_FRI) == (date(2026, 3, 9), datetime(2026, 3, 9, 9, tzinfo=UTC))
    assert next_due(friday_evening, time(9), ZoneInfo("UTC"), MON_FRI, after=date(2026, 3, 9))[0] == date(2026, 3, 10)  # type: ignore[index]
