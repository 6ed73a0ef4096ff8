"""Check-in times as pure arithmetic on a member's local wall-clock rule.

A schedule is stored as a rule (cadence, weekday, hour, zone), never as a fixed UTC offset:
each due instant is computed from the local date and hour through zoneinfo, so a daylight-saving
change never moves a check-in off the member's hour. All instants in and out are aware UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# Nothing is ever delivered between 22:00 and 08:00 local time.
QUIET_FROM_HOUR = 22
QUIET_UNTIL_HOUR = 8
EARLIEST_HOUR = QUIET_UNTIL_HOUR
LATEST_HOUR = QUIET_FROM_HOUR - 1
DEFAULT_HOUR = 18
# A check-in delivered later than this after its due time says so.
LATE_AFTER = timedelta(hours=1)
# Never two check-ins within a day: after a late one, the next slot that soon is skipped.
MIN_GAP = timedelta(days=1)
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


class Cadence(StrEnum):
    WEEKLY = "weekly"
    FORTNIGHTLY = "fortnightly"
    MONTHLY = "monthly"

    @property
    def weeks(self) -> int:
        # "Monthly" is every four weeks, so it can keep its weekday (13 a year, not 12).
        return {"weekly": 1, "fortnightly": 2, "monthly": 4}[self.value]

    @property
    def phrase(self) -> str:
        return {
            "weekly": "every week",
            "fortnightly": "every two weeks",
            "monthly": "every four weeks",
        }[self.value]


def zone(name: str | None) -> tzinfo:
    """The member's zone; UTC when unset or no longer known to the zone database."""
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "Europe" is a directory
        return UTC


@dataclass(frozen=True)
class Rule:
    """When a member wants check-ins, in their own time."""

    cadence: Cadence
    weekday: int  # 0 = Monday
    hour: int  # local, EARLIEST_HOUR..LATEST_HOUR
    zone_name: str | None  # IANA name; None means UTC until the member sets one

    def __post_init__(self) -> None:
        if not 0 <= self.weekday <= 6:
            raise ValueError(f"weekday must be 0..6, got {self.weekday}")
        if not EARLIEST_HOUR <= self.hour <= LATEST_HOUR:
            raise ValueError(f"hour must be {EARLIEST_HOUR}..{LATEST_HOUR}, got {self.hour}")

    @property
    def tz(self) -> tzinfo:
        return zone(self.zone_name)

    def at(self, day: date) -> datetime:
        """The rule's hour on a local day, as a UTC instant."""
        return local_instant(day, self.hour, self.tz)

    def local_day(self, instant: datetime) -> date:
        return _aware(instant).astimezone(self.tz).date()

    def describe(self) -> str:
        return f"{self.cadence.phrase} on {WEEKDAYS[self.weekday]} at {self.hour:02d}:00"


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"expected an aware datetime, got naive {value.isoformat()}")
    return value


def local_instant(day: date, hour: int, tz: tzinfo) -> datetime:
    """`hour`:00 on local `day`, as UTC. (Check-in hours never fall in a DST gap or fold.)"""
    return datetime.combine(day, time(hour), tzinfo=tz).astimezone(UTC)


def first_occurrence(rule: Rule, now: datetime) -> datetime:
    """The next time the rule's weekday and hour come round that is still ahead, today included."""
    today = rule.local_day(now)
    candidate = today + timedelta(days=(rule.weekday - today.weekday()) % 7)
    instant = rule.at(candidate)
    return instant if instant > now else rule.at(candidate + timedelta(weeks=1))


def starting_weekday(
    hour: int, tz: tzinfo, now: datetime, *, last_delivered: datetime | None = None
) -> int:
    """The weekday of a plan started without one: today's when `hour` is still ahead today
    (local), else tomorrow's. The first check-in then comes within a day, not up to a week
    later, and the plan keeps that weekday after. Never within MIN_GAP of the last check-in
    delivered, if any (a member starting again the day one came gets the next day that
    allows). Check-in hours are never quiet hours, so the first is never held till morning.
    """
    earliest = _aware(now)
    if last_delivered is not None:
        earliest = max(earliest, _aware(last_delivered) + MIN_GAP - timedelta(microseconds=1))
    day = earliest.astimezone(tz).date()
    while local_instant(day, hour, tz) <= earliest:
        day += timedelta(days=1)
    return day.weekday()


def following(rule: Rule, previous: datetime, *, after: datetime) -> datetime:
    """The next slot of the cadence after `previous` that is later than `after`.

    Steps in local days, so every slot keeps the local hour across DST changes; after downtime
    the grid simply continues from now rather than replaying what was missed.
    """
    day = rule.local_day(previous)
    step = timedelta(weeks=rule.cadence.weeks)
    if day.weekday() != rule.weekday:  # the rule changed since `previous`: restart on its weekday
        return first_occurrence(rule, after)
    day += step
    while rule.at(day) <= after:
        day += step
    return rule.at(day)


def latest_slot(rule: Rule, previous: datetime, *, until: datetime) -> datetime:
    """The last slot of the cadence from `previous` on that is not after `until`: what an
    overdue check-in stands for after downtime (the most recent one missed)."""
    latest = previous
    while (upcoming := following(rule, latest, after=latest)) <= until:
        latest = upcoming
    return latest


def first_slot_from(rule: Rule, previous: datetime, *, not_before: datetime) -> datetime:
    """The first slot of the cadence (continuing from `previous`) at or after `not_before`."""
    return following(rule, previous, after=not_before - timedelta(microseconds=1))


def moved_to(
    rule: Rule, scheduled_at: datetime, old_zone: str | None, *, now: datetime
) -> datetime:
    """A scheduled check-in carried to the same local day and hour in the rule's (new) zone."""
    day = _aware(scheduled_at).astimezone(zone(old_zone)).date()
    step = timedelta(weeks=rule.cadence.weeks)
    while rule.at(day) <= now:
        day += step
    return rule.at(day)


def quiet(tz: tzinfo, instant: datetime) -> bool:
    hour = _aware(instant).astimezone(tz).hour
    return hour >= QUIET_FROM_HOUR or hour < QUIET_UNTIL_HOUR


def out_of_quiet_hours(tz: tzinfo, instant: datetime) -> datetime:
    """`instant`, or the next 08:00 local when it falls in quiet hours."""
    if not quiet(tz, instant):
        return instant
    local = _aware(instant).astimezone(tz)
    day = local.date() if local.hour < QUIET_UNTIL_HOUR else local.date() + timedelta(days=1)
    return local_instant(day, QUIET_UNTIL_HOUR, tz)


def snoozed_until(rule: Rule, now: datetime) -> datetime:
    """Snooze is one day: tomorrow at the member's usual hour."""
    return rule.at(rule.local_day(now) + timedelta(days=1))


def is_late(scheduled_at: datetime, delivered_at: datetime) -> bool:
    return _aware(delivered_at) - _aware(scheduled_at) > LATE_AFTER
