"""Check-in times: a local wall-clock rule turned into UTC instants (advice/schedule.py)."""

from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from advice.schedule import (
    Cadence,
    Rule,
    first_occurrence,
    first_slot_from,
    following,
    is_late,
    moved_to,
    out_of_quiet_hours,
    quiet,
    snoozed_until,
    starting_weekday,
    zone,
)

BERLIN = ZoneInfo("Europe/Berlin")
MONDAY = 0
SUNDAY = 6


def at(zone_name: str, year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    """A local wall-clock time, as UTC."""
    return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(zone_name)).astimezone(UTC)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def weekly(weekday: int = MONDAY, hour: int = 18, zone_name: str | None = "Europe/Berlin") -> Rule:
    return Rule(Cadence.WEEKLY, weekday, hour, zone_name)


# --- the rule itself ----------------------------------------------------------------------------


def test_monthly_is_every_four_weeks() -> None:
    assert [c.weeks for c in Cadence] == [1, 2, 4]
    assert Rule(Cadence.MONTHLY, 2, 9, None).describe() == "every four weeks on Wednesday at 09:00"


@pytest.mark.parametrize(("weekday", "hour"), [(0, 7), (0, 22), (0, 0), (0, 23), (7, 18), (-1, 18)])
def test_rule_rejects_quiet_hours_and_impossible_weekdays(weekday: int, hour: int) -> None:
    with pytest.raises(ValueError):
        Rule(Cadence.WEEKLY, weekday, hour, "Europe/Berlin")


def test_rule_accepts_the_edges_of_the_day() -> None:
    assert Rule(Cadence.WEEKLY, 0, 8, None).hour == 8
    assert Rule(Cadence.WEEKLY, 6, 21, None).weekday == 6


@pytest.mark.parametrize("name", [None, "", "Mars/Olympus_Mons", "Europe/Berlin\x00", "../etc"])
def test_an_unknown_zone_behaves_as_utc(name: str | None) -> None:
    rule = weekly(zone_name=name)
    assert rule.tz is UTC
    # Monday 2026-01-05 09:00 UTC: today 18:00 UTC is still ahead.
    assert first_occurrence(rule, utc(2026, 1, 5, 9)) == utc(2026, 1, 5, 18)


def test_a_zone_region_name_alone_behaves_as_utc() -> None:
    assert zone("Europe") is UTC


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError):
        first_occurrence(weekly(), datetime(2026, 1, 5, 9))
    with pytest.raises(ValueError):
        is_late(datetime(2026, 1, 5, 9), utc(2026, 1, 5, 9))


# --- first occurrence ---------------------------------------------------------------------------


def test_first_occurrence_includes_today_when_the_hour_is_still_ahead() -> None:
    monday_10 = at("Europe/Berlin", 2026, 1, 5, 10)
    assert first_occurrence(weekly(), monday_10) == utc(2026, 1, 5, 17)  # 18:00 CET


def test_first_occurrence_after_the_hour_is_next_week() -> None:
    monday_19 = at("Europe/Berlin", 2026, 1, 5, 19)
    assert first_occurrence(weekly(), monday_19) == utc(2026, 1, 12, 17)


def test_first_occurrence_exactly_at_the_hour_is_next_week() -> None:
    monday_18 = at("Europe/Berlin", 2026, 1, 5, 18)
    assert first_occurrence(weekly(), monday_18) == utc(2026, 1, 12, 17)


def test_first_occurrence_uses_the_local_day_not_the_utc_day() -> None:
    # Monday 00:30 in Tokyo is still Sunday in UTC; the local Monday counts.
    rule = weekly(hour=9, zone_name="Asia/Tokyo")
    now = at("Asia/Tokyo", 2026, 1, 5, 0, 30)
    assert now.weekday() == SUNDAY
    assert first_occurrence(rule, now) == utc(2026, 1, 5, 0)  # 09:00 JST


def test_first_occurrence_later_in_the_week() -> None:
    rule = weekly(weekday=4, hour=8)  # Friday 08:00
    assert first_occurrence(rule, at("Europe/Berlin", 2026, 1, 5, 10)) == utc(2026, 1, 9, 7)


# --- the weekday of a plan started without one ------------------------------------------------


@pytest.mark.parametrize(
    ("local_now", "first"),
    [
        ((2026, 1, 5, 10), (2026, 1, 5, 18)),  # Monday morning: today at 18:00
        ((2026, 1, 5, 17, 59), (2026, 1, 5, 18)),  # a minute before: still today
        ((2026, 1, 5, 18), (2026, 1, 6, 18)),  # at the hour: tomorrow
        ((2026, 1, 5, 20, 40), (2026, 1, 6, 18)),  # the evening: tomorrow, not next Monday
        ((2026, 1, 11, 23, 30), (2026, 1, 12, 18)),  # Sunday night: Monday
        ((2026, 1, 6, 0, 30), (2026, 1, 6, 18)),  # after midnight it is the new day's 18:00
    ],
)
def test_a_plan_without_a_weekday_starts_today_or_tomorrow(
    local_now: tuple[int, ...], first: tuple[int, ...]
) -> None:
    now = at("Europe/Berlin", *local_now)
    weekday = starting_weekday(18, BERLIN, now)
    rule = weekly(weekday=weekday)
    assert first_occurrence(rule, now) == at("Europe/Berlin", *first)
    # and keeps that weekday after
    assert following(rule, first_occurrence(rule, now), after=now) == at(
        "Europe/Berlin", *first
    ) + timedelta(weeks=1)


def test_starting_without_a_weekday_uses_the_local_day() -> None:
    tokyo = ZoneInfo("Asia/Tokyo")
    monday_0030 = at("Asia/Tokyo", 2026, 1, 5, 0, 30)  # still Sunday in UTC
    assert starting_weekday(9, tokyo, monday_0030) == MONDAY
    assert starting_weekday(9, UTC, utc(2026, 1, 5, 9)) == 1  # 09:00 UTC has come: Tuesday


def test_starting_again_the_day_one_came_waits_a_day() -> None:
    delivered = at("Europe/Berlin", 2026, 1, 5, 9)  # Monday's came at 09:00
    now = at("Europe/Berlin", 2026, 1, 5, 12)
    assert starting_weekday(20, BERLIN, now) == MONDAY  # today 20:00 would be ahead...
    assert starting_weekday(20, BERLIN, now, last_delivered=delivered) == 1  # ...but too soon
    assert starting_weekday(9, BERLIN, now, last_delivered=delivered) == 1  # a day exactly


# --- following across daylight-saving changes ---------------------------------------------------

# (zone, the Sunday the clocks change, UTC offset before, UTC offset after), all in 2026.
DST_CHANGES = [
    ("Europe/Berlin", date(2026, 3, 29), 1, 2),
    ("Europe/Berlin", date(2026, 10, 25), 2, 1),
    ("America/New_York", date(2026, 3, 8), -5, -4),
    ("America/New_York", date(2026, 11, 1), -4, -5),
    ("Australia/Sydney", date(2026, 4, 5), 11, 10),
    ("Australia/Sydney", date(2026, 10, 4), 10, 11),
]


@pytest.mark.parametrize("cadence", list(Cadence))
@pytest.mark.parametrize(("zone_name", "change", "before", "after"), DST_CHANGES)
def test_following_keeps_the_local_hour_across_a_dst_change(
    zone_name: str, change: date, before: int, after: int, cadence: Cadence
) -> None:
    rule = Rule(cadence, SUNDAY, 18, zone_name)
    earlier = change - timedelta(weeks=cadence.weeks)
    previous = datetime(
        earlier.year, earlier.month, earlier.day, 18, tzinfo=timezone(timedelta(hours=before))
    )
    expected = datetime(
        change.year, change.month, change.day, 18, tzinfo=timezone(timedelta(hours=after))
    )
    assert following(rule, previous, after=previous) == expected
    # And the slot after that is still 18:00 local, `weeks` later.
    later = change + timedelta(weeks=cadence.weeks)
    assert following(rule, expected, after=expected) == datetime(
        later.year, later.month, later.day, 18, tzinfo=timezone(timedelta(hours=after))
    )


@pytest.mark.parametrize(("zone_name", "change", "before", "after"), DST_CHANGES)
def test_a_year_of_weekly_slots_never_drifts(
    zone_name: str, change: date, before: int, after: int
) -> None:
    rule = Rule(Cadence.WEEKLY, MONDAY, 9, zone_name)
    slot = first_occurrence(rule, at(zone_name, 2026, 1, 1, 12))
    for _ in range(53):
        nxt = following(rule, slot, after=slot)
        local = nxt.astimezone(ZoneInfo(zone_name))
        assert (local.weekday(), local.hour, local.minute) == (MONDAY, 9, 0)
        assert local.date() - slot.astimezone(ZoneInfo(zone_name)).date() == timedelta(weeks=1)
        slot = nxt


@pytest.mark.parametrize(
    ("cadence", "expected"),
    [
        (Cadence.WEEKLY, utc(2026, 1, 26, 17)),
        (Cadence.FORTNIGHTLY, utc(2026, 2, 2, 17)),  # grid: Jan 5, 19, Feb 2
        (Cadence.MONTHLY, utc(2026, 2, 2, 17)),  # grid: Jan 5, Feb 2
    ],
)
def test_after_downtime_the_grid_continues_from_now_without_replay(
    cadence: Cadence, expected: datetime
) -> None:
    rule = Rule(cadence, MONDAY, 18, "Europe/Berlin")
    previous = utc(2026, 1, 5, 17)
    now = at("Europe/Berlin", 2026, 1, 21, 12)  # a Wednesday, weeks later
    assert following(rule, previous, after=now) == expected


def test_fortnightly_after_downtime_keeps_its_own_grid() -> None:
    rule = Rule(Cadence.FORTNIGHTLY, MONDAY, 18, "Europe/Berlin")
    # Jan 12 is a Monday but not on the Jan 5 / Jan 19 grid.
    assert following(rule, utc(2026, 1, 5, 17), after=utc(2026, 1, 10, 0)) == utc(2026, 1, 19, 17)


def test_following_is_strictly_after_and_first_slot_from_is_at_or_after() -> None:
    rule = weekly()
    previous, slot = utc(2026, 1, 5, 17), utc(2026, 1, 12, 17)
    assert following(rule, previous, after=slot) == utc(2026, 1, 19, 17)
    assert first_slot_from(rule, previous, not_before=slot) == slot
    assert first_slot_from(rule, previous, not_before=slot + timedelta(seconds=1)) == utc(
        2026, 1, 19, 17
    )


def test_following_an_off_grid_instant_restarts_on_the_rules_weekday() -> None:
    # A snoozed check-in lands on a Tuesday; the next one is back on the Monday grid.
    rule = weekly()
    tuesday = utc(2026, 1, 6, 17)
    assert following(rule, tuesday, after=tuesday) == utc(2026, 1, 12, 17)


# --- a new time zone ----------------------------------------------------------------------------


def test_moved_to_keeps_the_local_day_and_hour_in_the_new_zone() -> None:
    rule = weekly(zone_name="America/New_York")
    pending = utc(2026, 1, 12, 17)  # Monday 18:00 in Berlin
    moved = moved_to(rule, pending, "Europe/Berlin", now=utc(2026, 1, 6, 12))
    assert moved == utc(2026, 1, 12, 23)  # Monday 18:00 in New York (UTC-5)


def test_moved_to_from_unset_zone_treats_the_old_one_as_utc() -> None:
    rule = weekly(zone_name="Asia/Tokyo")
    moved = moved_to(rule, utc(2026, 1, 12, 18), None, now=utc(2026, 1, 6, 12))
    assert moved == utc(2026, 1, 12, 9)  # Monday 18:00 JST


def test_moved_to_a_slot_already_past_there_takes_the_next_one_on_the_grid() -> None:
    rule = Rule(Cadence.FORTNIGHTLY, MONDAY, 18, "Asia/Tokyo")
    pending = utc(2026, 1, 12, 17)  # Monday 18:00 Berlin, still ahead...
    now = utc(2026, 1, 12, 10)  # ...but Monday 18:00 in Tokyo (09:00 UTC) has passed
    assert moved_to(rule, pending, "Europe/Berlin", now=now) == utc(2026, 1, 26, 9)


def test_moved_to_across_dst_keeps_the_hour() -> None:
    rule = weekly(weekday=SUNDAY, zone_name="America/New_York")
    pending = utc(2026, 3, 8, 17)  # Sunday 18:00 in Berlin (still CET)
    moved = moved_to(rule, pending, "Europe/Berlin", now=utc(2026, 3, 1))
    assert moved == utc(2026, 3, 8, 22)  # 18:00 EDT, the day New York changed clocks


# --- quiet hours, snooze, lateness --------------------------------------------------------------


@pytest.mark.parametrize(
    ("hour", "minute", "is_quiet"),
    [(21, 59, False), (22, 0, True), (23, 30, True), (0, 0, True), (7, 59, True), (8, 0, False)],
)
def test_quiet_hours_are_22_to_08_local(hour: int, minute: int, is_quiet: bool) -> None:
    instant = at("Europe/Berlin", 2026, 1, 6, hour, minute)
    assert quiet(BERLIN, instant) is is_quiet


def test_late_evening_waits_for_next_morning() -> None:
    evening = at("Europe/Berlin", 2026, 1, 5, 23, 30)
    assert out_of_quiet_hours(BERLIN, evening) == utc(2026, 1, 6, 7)  # 08:00 CET next day


def test_small_hours_wait_for_the_same_morning() -> None:
    night = at("Europe/Berlin", 2026, 1, 6, 3)
    assert out_of_quiet_hours(BERLIN, night) == utc(2026, 1, 6, 7)


def test_outside_quiet_hours_nothing_moves() -> None:
    noon = at("Europe/Berlin", 2026, 1, 6, 12, 34)
    assert out_of_quiet_hours(BERLIN, noon) == noon


def test_quiet_hours_across_the_spring_change() -> None:
    evening = at("Europe/Berlin", 2026, 3, 28, 23, 30)
    assert out_of_quiet_hours(BERLIN, evening) == utc(2026, 3, 29, 6)  # 08:00 CEST


def test_snooze_is_tomorrow_at_the_rules_hour() -> None:
    now = at("Europe/Berlin", 2026, 1, 5, 19)
    assert snoozed_until(weekly(), now) == utc(2026, 1, 6, 17)


def test_snooze_counts_tomorrow_in_local_time() -> None:
    # 00:30 Tuesday in Berlin is still Monday in UTC: tomorrow is Wednesday.
    now = at("Europe/Berlin", 2026, 1, 6, 0, 30)
    assert now.date() == date(2026, 1, 5)
    assert snoozed_until(weekly(), now) == utc(2026, 1, 7, 17)


def test_late_means_more_than_an_hour() -> None:
    due = utc(2026, 1, 5, 17)
    assert not is_late(due, due)
    assert not is_late(due, due + timedelta(hours=1))
    assert is_late(due, due + timedelta(hours=1, seconds=1))
    assert is_late(due, due + timedelta(days=3))
