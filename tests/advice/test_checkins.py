"""What a check-in carries over the year (advice/checkins.py), in the real content's order."""

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

import pytest

from advice.checkins import (
    DUE_SLACK,
    SUMMARY,
    CheckinKind,
    Offer,
    YearHistory,
    next_due,
    offer_at,
    year_over,
)
from advice.content import load_content
from advice.journey import REVISIT_AFTER, YEAR, PromptKind

ORDER: tuple[str, ...] = tuple(load_content().slugs)
T0 = datetime(2026, 1, 5, 17, tzinfo=UTC)  # a Monday, 18:00 in Berlin
WEEK = timedelta(weeks=1)
DAY = timedelta(days=1)
ROUND_1 = REVISIT_AFTER[0]


def history(
    *,
    offers: Mapping[str, Sequence[datetime]] | None = None,
    reflections: Mapping[str, Sequence[datetime]] | None = None,
    started_at: datetime = T0,
) -> YearHistory:
    return YearHistory(started_at, reflections or {}, offers or {})


def first(slug: str) -> Offer:
    return Offer(CheckinKind.POINT, slug, PromptKind.FIRST)


def revisit(slug: str) -> Offer:
    return Offer(CheckinKind.POINT, slug, PromptKind.REVISIT)


def weekly_first_pass() -> dict[str, list[datetime]]:
    """Each point offered once, a week apart, in the essay's order (none answered)."""
    return {slug: [T0 + i * WEEK] for i, slug in enumerate(ORDER)}


def test_the_content_has_six_points_in_the_essays_order() -> None:
    assert ORDER == ("purpose", "autonomy", "decades", "money", "fame", "obscurity")
    # At least a day (the design's promise), and well under a week, so a weekly slot never
    # takes a round that the following slot would meet on time.
    assert DAY <= DUE_SLACK < WEEK


def test_with_nothing_touched_the_first_point_comes_first() -> None:
    assert offer_at(history(), ORDER, T0) == first(ORDER[0])


def test_the_first_pass_follows_the_essays_order() -> None:
    offers: dict[str, list[datetime]] = {}
    carried = []
    for week in range(len(ORDER)):
        now = T0 + week * WEEK
        offer = offer_at(history(offers=offers), ORDER, now)
        assert offer is not None
        carried.append(offer)
        assert offer.point is not None
        offers[offer.point] = [now]
    assert carried == [first(slug) for slug in ORDER]
    # The first pass is done and no round is due yet: nothing to send.
    assert offer_at(history(offers=offers), ORDER, T0 + 6 * WEEK) is None


def test_a_point_reflected_on_by_itself_is_skipped_in_the_first_pass() -> None:
    done = history(reflections={ORDER[0]: [T0 - DAY], ORDER[1]: [T0 - DAY]})
    assert offer_at(done, ORDER, T0) == first(ORDER[2])


def test_a_point_let_pass_is_not_asked_again_next_week() -> None:
    offered = history(offers={ORDER[0]: [T0]})
    assert offer_at(offered, ORDER, T0 + WEEK) == first(ORDER[1])


def test_a_point_let_pass_returns_with_its_three_month_round() -> None:
    passed = history(offers=weekly_first_pass())
    due = T0 + ROUND_1
    # Not before its round (within DUE_SLACK)...
    assert offer_at(passed, ORDER, due - DUE_SLACK - timedelta(seconds=1)) is None
    # ...then it is back, still with its first prompt: the member never wrote on it.
    assert offer_at(passed, ORDER, due - DUE_SLACK) == first(ORDER[0])
    assert offer_at(passed, ORDER, due) == first(ORDER[0])


def test_a_round_is_not_repeated_once_offered() -> None:
    offers = weekly_first_pass()
    offers[ORDER[0]].append(T0 + ROUND_1)
    # A week later the next round due is the second point's, not the first one's again.
    assert offer_at(history(offers=offers), ORDER, T0 + ROUND_1 + WEEK) == first(ORDER[1])
    assert offer_at(history(offers=offers), ORDER, T0 + ROUND_1 + 6 * DAY - DUE_SLACK) is None


def test_revisits_come_most_overdue_first_with_revisit_only_where_reflected() -> None:
    offers = {slug: [T0 + 7 * WEEK] for slug in ORDER}  # all touched late...
    offers[ORDER[0]] = [T0 + WEEK]  # ...the first point a bit earlier
    offers[ORDER[3]] = [T0]  # ...the fourth point earliest: its round is the most overdue
    reflections = {ORDER[0]: [T0 + WEEK + timedelta(hours=1)]}
    now = T0 + ROUND_1 + 8 * WEEK
    h = history(offers=offers, reflections=reflections)
    assert offer_at(h, ORDER, now) == first(ORDER[3])  # let pass: its first prompt
    offers[ORDER[3]].append(now)
    h = history(offers=offers, reflections=reflections)
    assert offer_at(h, ORDER, now + WEEK) == revisit(ORDER[0])  # reflected on: revisit
    offers[ORDER[0]].append(now + WEEK)
    h = history(offers=offers, reflections=reflections)
    assert offer_at(h, ORDER, now + 2 * WEEK) == first(ORDER[1])  # ties: the essay's order


def test_a_due_round_within_a_day_of_the_slot_is_offered_in_that_slot() -> None:
    touched = history(offers={slug: [T0] for slug in ORDER})
    due = T0 + ROUND_1
    # Slot at 18:00, round due at 19:00 the same day: offered now, not a week later.
    assert offer_at(touched, ORDER, due - timedelta(hours=1)) == first(ORDER[0])
    # Round due just under a day after the slot: still this slot.
    assert offer_at(touched, ORDER, due - DAY + timedelta(minutes=1)) == first(ORDER[0])
    # Up to DUE_SLACK after the slot, still this slot; beyond it, not yet.
    assert offer_at(touched, ORDER, due - DUE_SLACK) == first(ORDER[0])
    assert offer_at(touched, ORDER, due - DUE_SLACK - timedelta(minutes=1)) is None


def test_touches_merge_reflections_and_offers_in_time_order() -> None:
    h = history(offers={"purpose": [T0 + DAY]}, reflections={"purpose": [T0], "money": [T0]})
    assert h.touches() == {"purpose": [T0, T0 + DAY], "money": [T0]}


# --- the year's end -----------------------------------------------------------------------------


def test_at_the_years_end_the_summary_is_offered() -> None:
    h = history(offers=weekly_first_pass())
    assert h.ends_at == T0 + YEAR == T0 + timedelta(days=365)
    assert not year_over(h, h.ends_at - timedelta(seconds=1))
    assert offer_at(h, ORDER, h.ends_at - timedelta(seconds=1)) != SUMMARY
    assert offer_at(h, ORDER, h.ends_at) == SUMMARY
    assert offer_at(h, ORDER, h.ends_at + 30 * DAY) == SUMMARY
    # Even a year with nothing in it ends in the summary.
    assert offer_at(history(), ORDER, T0 + YEAR) == SUMMARY


# --- next_due -----------------------------------------------------------------------------------


def test_next_due_is_now_while_the_first_pass_is_unfinished() -> None:
    offers = weekly_first_pass()
    del offers[ORDER[-1]]
    after = T0 + 5 * WEEK
    assert next_due(history(offers=offers), ORDER, after) == after
    assert next_due(history(), ORDER, T0) == T0


def test_next_due_skips_the_empty_weeks_before_the_first_round() -> None:
    h = history(offers=weekly_first_pass())
    after = T0 + 6 * WEEK
    assert offer_at(h, ORDER, after) is None
    wanted = next_due(h, ORDER, after)
    assert wanted == T0 + ROUND_1 - DUE_SLACK
    assert offer_at(h, ORDER, wanted) == first(ORDER[0])
    assert offer_at(h, ORDER, wanted - timedelta(seconds=1)) is None


def test_next_due_after_the_first_rounds_is_the_second_round() -> None:
    offers = weekly_first_pass()
    for i, slug in enumerate(ORDER):
        offers[slug].append(T0 + ROUND_1 + i * WEEK)
    h = history(offers=offers)
    after = T0 + ROUND_1 + 6 * WEEK
    assert offer_at(h, ORDER, after) is None
    assert next_due(h, ORDER, after) == T0 + REVISIT_AFTER[1] - DUE_SLACK


def test_next_due_stops_at_the_years_end() -> None:
    # The journey began ten months before the points were touched: the year ends first.
    started = T0 - timedelta(days=300)
    h = history(offers={slug: [T0] for slug in ORDER}, started_at=started)
    assert next_due(h, ORDER, T0 + DAY) == started + YEAR
    assert offer_at(h, ORDER, started + YEAR) == SUMMARY


def test_next_due_is_never_before_after() -> None:
    h = history(offers={slug: [T0] for slug in ORDER})
    late = T0 + ROUND_1 + 3 * WEEK
    assert next_due(h, ORDER, late) == late


@pytest.mark.parametrize("week", range(6, 13))
def test_no_slot_between_first_pass_and_first_round_has_anything_to_carry(week: int) -> None:
    h = history(offers=weekly_first_pass())
    assert offer_at(h, ORDER, T0 + week * WEEK) is None
