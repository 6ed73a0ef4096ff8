"""The weekly post's timing and rotation, and what /stats may show (advice/weekly, advice/stats)."""

from datetime import UTC, datetime, timedelta

import pytest

from advice.stats import shown
from advice.weekly import (
    MISSED_AFTER,
    WeeklyRule,
    catch_up_after,
    missed,
    next_post_at,
    point_of_the_week,
)


def test_the_next_post_is_the_coming_weekday_and_hour_strictly_after_now() -> None:
    rule = WeeklyRule(0, 17, "UTC")  # Mondays 17:00
    monday_noon = datetime(2026, 11, 30, 12, tzinfo=UTC)
    assert next_post_at(rule, after=monday_noon) == datetime(2026, 11, 30, 17, tzinfo=UTC)
    at_the_hour = datetime(2026, 11, 30, 17, tzinfo=UTC)
    assert next_post_at(rule, after=at_the_hour) == datetime(2026, 12, 7, 17, tzinfo=UTC)


def test_the_hour_is_local_and_keeps_across_daylight_saving() -> None:
    rule = WeeklyRule(6, 9, "Europe/Berlin")  # Sundays 09:00 in Berlin
    before = next_post_at(rule, after=datetime(2026, 3, 22, 12, tzinfo=UTC))
    after = next_post_at(rule, after=before)
    assert before == datetime(2026, 3, 29, 7, tzinfo=UTC)  # CEST already (UTC+2)
    assert after == datetime(2026, 4, 5, 7, tzinfo=UTC)
    winter = next_post_at(rule, after=datetime(2026, 10, 20, tzinfo=UTC))
    assert winter == datetime(2026, 10, 25, 8, tzinfo=UTC)  # back to CET that morning


@pytest.mark.parametrize("weekday, hour", [(-1, 10), (7, 10), (0, -1), (0, 24)])
def test_a_rule_out_of_range_is_refused(weekday: int, hour: int) -> None:
    with pytest.raises(ValueError):
        WeeklyRule(weekday, hour, "UTC")


def test_a_post_half_a_day_late_is_missed() -> None:
    slot = datetime(2026, 11, 30, 17, tzinfo=UTC)
    assert not missed(slot, slot + timedelta(hours=11))
    assert missed(slot, slot + timedelta(hours=13))


def test_after_an_outage_the_most_recent_slot_not_missed_is_next() -> None:
    rule = WeeklyRule(0, 17, "UTC")
    slot = datetime(2026, 12, 7, 17, tzinfo=UTC)
    for late in (timedelta(hours=2, minutes=42), MISSED_AFTER):  # 12 hours is not missed yet
        assert not missed(slot, slot + late)
        assert next_post_at(rule, after=catch_up_after(slot + late)) == slot
    missed_by_more = slot + MISSED_AFTER + timedelta(seconds=1)
    assert missed(slot, missed_by_more)
    assert next_post_at(rule, after=catch_up_after(missed_by_more)) == slot + timedelta(weeks=1)


def test_points_rotate_in_order_and_wrap() -> None:
    slugs = ("a", "b", "c")
    assert [point_of_the_week(slugs, n) for n in range(7)] == list("abcabca")


@pytest.mark.parametrize(
    "count, text", [(0, "0"), (1, "fewer than 5"), (4, "fewer than 5"), (5, "5"), (120, "120")]
)
def test_counts_from_one_to_four_are_hidden(count: int, text: str) -> None:
    assert shown(count) == text
