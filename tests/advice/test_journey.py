from datetime import UTC, datetime, timedelta, timezone

import pytest

from advice.content import load_content
from advice.journey import (
    REVISIT_AFTER,
    REVISIT_TOLERANCE,
    YEAR,
    PromptKind,
    journey_started_at,
    next_point,
    next_revisit_at,
    prompt_kind,
    prompts_for,
    revisit_schedule,
    revisits_due,
    year_complete,
)

T0 = datetime(2025, 1, 10, 18, 30, tzinfo=UTC)
DAY = timedelta(days=1)
ORDER = ("purpose", "autonomy", "decades", "money", "fame", "obscurity")


def test_the_schedule_is_three_six_and_twelve_months() -> None:
    assert [delta.days for delta in REVISIT_AFTER] == [91, 182, 365]
    assert YEAR.days == 365
    assert revisit_schedule(T0) == (T0 + 91 * DAY, T0 + 182 * DAY, T0 + 365 * DAY)


# prompt kind and prompts


def test_prompt_kind() -> None:
    assert prompt_kind(None, T0) is PromptKind.FIRST
    # An hour later it is still the first pass: revisiting needs months in between.
    assert prompt_kind(T0, T0 + timedelta(hours=1)) is PromptKind.FIRST
    almost = T0 + REVISIT_AFTER[0] - REVISIT_TOLERANCE
    assert prompt_kind(T0, almost - timedelta(seconds=1)) is PromptKind.FIRST
    assert prompt_kind(T0, almost) is PromptKind.REVISIT
    assert prompt_kind(T0, T0 + timedelta(days=400)) is PromptKind.REVISIT
    assert str(PromptKind.REVISIT) == "revisit"


def test_prompts_for_first_time_are_the_point_prompts() -> None:
    point = load_content().point("money")
    kind, prompts = prompts_for(point, None, T0)
    assert kind is PromptKind.FIRST
    assert prompts == list(point.prompts)
    assert len(prompts) >= 2


def test_prompts_for_a_revisit_is_the_revisit_prompt_only() -> None:
    point = load_content().point("money")
    assert prompts_for(point, T0, T0 + REVISIT_AFTER[0]) == (
        PromptKind.REVISIT,
        [point.revisit_prompt],
    )


# revisits_due


def test_nothing_due_before_three_months() -> None:
    assert revisits_due(T0, [T0], T0 + 91 * DAY - timedelta(seconds=1)) == []


def test_round_one_due_exactly_at_91_days() -> None:
    assert revisits_due(T0, [T0], T0 + 91 * DAY) == [1]


def test_round_answered_by_a_reflection_after_it_fell_due() -> None:
    assert revisits_due(T0, [T0, T0 + 95 * DAY], T0 + 100 * DAY) == []


def test_early_revisit_inside_the_tolerance_counts() -> None:
    early = T0 + 91 * DAY - REVISIT_TOLERANCE
    assert revisits_due(T0, [T0, early], T0 + 91 * DAY) == []


def test_reflection_just_before_the_tolerance_does_not_count() -> None:
    too_early = T0 + 91 * DAY - REVISIT_TOLERANCE - timedelta(seconds=1)
    assert revisits_due(T0, [T0, too_early], T0 + 91 * DAY) == [1]


def test_the_first_reflection_never_answers_a_revisit() -> None:
    assert revisits_due(T0, [T0], T0 + 400 * DAY) == [1, 2, 3]


def test_rounds_after_downtime_are_all_listed_until_one_reflection_answers_them() -> None:
    now = T0 + 200 * DAY
    assert revisits_due(T0, [T0], now) == [1, 2]
    # One late reflection answers every round that was waiting: no backlog of repeats.
    assert revisits_due(T0, [T0, now], now) == []


def test_each_round_needs_its_own_reflection() -> None:
    answered_round_one = [T0, T0 + 92 * DAY]
    assert revisits_due(T0, answered_round_one, T0 + 182 * DAY) == [2]
    assert revisits_due(T0, answered_round_one, T0 + 365 * DAY) == [2, 3]


def test_reflections_in_any_order() -> None:
    assert revisits_due(T0, [T0 + 183 * DAY, T0], T0 + 190 * DAY) == []


def test_other_time_zones_compare_as_instants() -> None:
    tokyo = timezone(timedelta(hours=9))
    first = T0.astimezone(tokyo)
    assert revisits_due(first, [first], (T0 + 91 * DAY).astimezone(tokyo)) == [1]


def test_naive_datetimes_are_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        revisits_due(T0, [T0], datetime(2025, 6, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        revisits_due(datetime(2025, 1, 1), [], T0)


def test_next_revisit_at() -> None:
    assert next_revisit_at(T0, [T0]) == T0 + 91 * DAY
    assert next_revisit_at(T0, [T0, T0 + 91 * DAY]) == T0 + 182 * DAY
    assert next_revisit_at(T0, [T0, T0 + 365 * DAY]) is None


# next_point


def test_no_reflections_starts_with_the_first_point() -> None:
    assert next_point({}, {}, ORDER, T0) == ("purpose", PromptKind.FIRST)


def test_first_pass_follows_essay_order_not_reflection_order() -> None:
    firsts = {"purpose": T0, "decades": T0 + DAY}
    all_ = {slug: [at] for slug, at in firsts.items()}
    assert next_point(firsts, all_, ORDER, T0 + 2 * DAY) == ("autonomy", PromptKind.FIRST)


def test_first_pass_comes_before_a_due_revisit() -> None:
    firsts = {"purpose": T0}
    assert next_point(firsts, {"purpose": [T0]}, ORDER, T0 + 100 * DAY) == (
        "autonomy",
        PromptKind.FIRST,
    )


def test_nothing_due_after_the_first_pass() -> None:
    firsts = {slug: T0 + i * DAY for i, slug in enumerate(ORDER)}
    all_ = {slug: [at] for slug, at in firsts.items()}
    assert next_point(firsts, all_, ORDER, T0 + 30 * DAY) is None


def test_most_overdue_revisit_wins() -> None:
    firsts = {slug: T0 + i * 7 * DAY for i, slug in enumerate(ORDER)}
    all_ = {slug: [at] for slug, at in firsts.items()}
    # At day 120 purpose (due day 91) is more overdue than money (due day 112).
    now = T0 + 120 * DAY
    assert next_point(firsts, all_, ORDER, now) == ("purpose", PromptKind.REVISIT)
    all_["purpose"] = [T0, now]
    assert next_point(firsts, all_, ORDER, now) == ("autonomy", PromptKind.REVISIT)


def test_a_missed_earlier_round_counts_from_its_own_due_date() -> None:
    # autonomy missed round 1 (due day 91) and is more overdue than obscurity's round 2 (day 182).
    firsts = {slug: T0 for slug in ORDER}
    all_ = {slug: [T0, T0 + 91 * DAY] for slug in ORDER}
    all_["autonomy"] = [T0]
    assert next_point(firsts, all_, ORDER, T0 + 182 * DAY) == ("autonomy", PromptKind.REVISIT)


def test_ties_go_to_the_earlier_point_in_the_essay() -> None:
    firsts = {slug: T0 for slug in ORDER}
    all_ = {slug: [T0] for slug in ORDER}
    assert next_point(firsts, all_, ORDER, T0 + 91 * DAY) == ("purpose", PromptKind.REVISIT)
    assert next_point(firsts, all_, tuple(reversed(ORDER)), T0 + 91 * DAY) == (
        "obscurity",
        PromptKind.REVISIT,
    )


def test_points_outside_the_order_are_ignored() -> None:
    firsts = {"retired": T0, **{slug: T0 + 300 * DAY for slug in ORDER}}
    all_ = {slug: [at] for slug, at in firsts.items()}
    assert next_point(firsts, all_, ORDER, T0 + 301 * DAY) is None


def test_a_new_point_added_later_is_offered_first() -> None:
    firsts = {slug: T0 for slug in ORDER}
    all_ = {slug: [T0] for slug in ORDER}
    order = (*ORDER, "health")
    assert next_point(firsts, all_, order, T0 + 100 * DAY) == ("health", PromptKind.FIRST)


# the year


def test_journey_starts_at_the_earliest_known_moment() -> None:
    assert journey_started_at(None, None) is None
    assert journey_started_at(T0 + DAY, None) == T0 + DAY
    assert journey_started_at(T0 + DAY, T0) == T0


def test_year_complete_at_exactly_365_days() -> None:
    assert not year_complete(T0, T0 + 365 * DAY - timedelta(microseconds=1))
    assert year_complete(T0, T0 + 365 * DAY)
    assert year_complete(T0, T0 + 500 * DAY)


def test_revisited_if_first_by_is_prompt_kinds_rule() -> None:
    """The instant db.journal hands SQL to decide first pass or revisit in the INSERT itself."""
    from advice.journey import revisited_if_first_by

    now = datetime(2026, 6, 1, 12, tzinfo=UTC)
    edge = revisited_if_first_by(now)
    for first in (edge - timedelta(seconds=1), edge, edge + timedelta(seconds=1), now):
        expected = PromptKind.REVISIT if first <= edge else PromptKind.FIRST
        assert prompt_kind(first, now) is expected
