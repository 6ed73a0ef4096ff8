"""The weekly "point of the week" a server can have: when it is due, and which point it shows.

Like check-ins, the time is a local wall-clock rule (weekday, hour, zone), so the post keeps
its hour across daylight-saving changes. Unlike check-ins it may be at any hour: a server's
channel has no quiet hours of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from advice.schedule import WEEKDAYS, local_instant, zone

DEFAULT_WEEKDAY = 0  # Monday
DEFAULT_HOUR = 17
DEFAULT_ZONE = "UTC"
# A post this late (the bot was down) is dropped: "point of the week" on the wrong day,
# or two in a row after a long outage, would be noise in the channel. A slot less late than
# this still goes out, also when the bot comes back after missing earlier ones.
MISSED_AFTER = timedelta(hours=12)
# At most one post a week, even when moderators move the day or hour after this week's went
# out: the next slot waits until at least this long after the last one posted.
MIN_GAP = timedelta(days=6)


@dataclass(frozen=True)
class WeeklyRule:
    weekday: int  # 0 = Monday
    hour: int  # 0..23, local
    zone_name: str

    def __post_init__(self) -> None:
        if not 0 <= self.weekday <= 6:
            raise ValueError(f"weekday must be 0..6, got {self.weekday}")
        if not 0 <= self.hour <= 23:
            raise ValueError(f"hour must be 0..23, got {self.hour}")

    def describe(self) -> str:
        return f"{WEEKDAYS[self.weekday]}s at {self.hour:02d}:00 ({self.zone_name})"


def next_post_at(
    rule: WeeklyRule, *, after: datetime, last_posted: datetime | None = None
) -> datetime:
    """The first time the rule's weekday and hour come round strictly after `after`, and at
    least MIN_GAP after the last post (its slot), if there was one."""
    if last_posted is not None:
        after = max(after, last_posted + MIN_GAP)
    tz = zone(rule.zone_name)
    today = after.astimezone(tz).date()
    day = today + timedelta(days=(rule.weekday - today.weekday()) % 7)
    while (instant := local_instant(day, rule.hour, tz)) <= after:
        day += timedelta(weeks=1)
    return instant


def missed(scheduled_at: datetime, now: datetime) -> bool:
    return now - scheduled_at > MISSED_AFTER


def catch_up_after(now: datetime) -> datetime:
    """Slots strictly after this instant are not missed at `now`: after an outage the next
    post is the most recent such slot (posted at once), or else the next one to come."""
    return now - MISSED_AFTER - timedelta(microseconds=1)


def point_of_the_week(slugs: list[str] | tuple[str, ...], posts_made: int) -> str:
    """The points in the essay's order, one a week, round and round."""
    return slugs[posts_made % len(slugs)]
