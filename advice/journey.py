"""The year-long journey as pure functions of timestamps; callers pass `now` (timezone-aware)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from enum import StrEnum

from advice.content import Point

# Each point returns around 3, 6 and 12 months after the member first reflected on it.
REVISIT_AFTER: tuple[timedelta, ...] = (
    timedelta(days=91),
    timedelta(days=182),
    timedelta(days=365),
)
# A reflection this long before a round falls due still answers it, so someone who comes back to
# a point on their own a little early is not asked the same thing again two weeks later.
REVISIT_TOLERANCE = timedelta(days=14)
YEAR = timedelta(days=365)


class PromptKind(StrEnum):
    FIRST = "first"
    REVISIT = "revisit"


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (UTC), got naive {value.isoformat()}")
    return value


def prompt_kind(first_reflection_at: datetime | None, now: datetime) -> PromptKind:
    """FIRST until the point's first revisit round is (nearly) due, REVISIT from then on.

    A second reflection an hour after the first is still the first pass: the revisit prompt
    ("read what you wrote back then") only makes sense once some months have gone by.
    """
    if first_reflection_at is None:
        return PromptKind.FIRST
    first_round = _aware(first_reflection_at, "first_reflection_at") + REVISIT_AFTER[0]
    return (
        PromptKind.REVISIT
        if _aware(now, "now") >= first_round - REVISIT_TOLERANCE
        else PromptKind.FIRST
    )


def revisited_if_first_by(now: datetime) -> datetime:
    """The latest first reflection on a point that makes one written `now` a revisit:
    prompt_kind(first, now) is REVISIT exactly when first <= this (so SQL can decide it)."""
    return _aware(now, "now") - REVISIT_AFTER[0] + REVISIT_TOLERANCE


def prompts_for(
    point: Point, first_reflection_at: datetime | None, now: datetime
) -> tuple[PromptKind, list[str]]:
    """The prompts to show: the point's prompts in the first pass, its revisit prompt after."""
    kind = prompt_kind(first_reflection_at, now)
    if kind is PromptKind.FIRST:
        return kind, list(point.prompts)
    return kind, [point.revisit_prompt]


def revisit_schedule(first_reflection_at: datetime) -> tuple[datetime, ...]:
    """When each revisit round (1, 2, 3) of a point falls due."""
    _aware(first_reflection_at, "first_reflection_at")
    return tuple(first_reflection_at + delta for delta in REVISIT_AFTER)


def _answered(due_at: datetime, reflected_at: Sequence[datetime]) -> bool:
    return any(at >= due_at - REVISIT_TOLERANCE for at in reflected_at)


def revisits_due(
    first_reflection_at: datetime, reflected_at: Sequence[datetime], now: datetime
) -> list[int]:
    """Revisit rounds (1, 2, 3) that have fallen due with no reflection since (or just before)."""
    _aware(now, "now")
    for at in reflected_at:
        _aware(at, "reflected_at")
    return [
        round_
        for round_, due_at in enumerate(revisit_schedule(first_reflection_at), start=1)
        if now >= due_at and not _answered(due_at, reflected_at)
    ]


def next_revisit_at(
    first_reflection_at: datetime, reflected_at: Sequence[datetime]
) -> datetime | None:
    """When the next unanswered revisit round of a point falls due; None once all are answered."""
    for due_at in revisit_schedule(first_reflection_at):
        if not _answered(due_at, reflected_at):
            return due_at
    return None


def next_point(
    first_reflections: Mapping[str, datetime],
    all_reflections: Mapping[str, Sequence[datetime]],
    order: Sequence[str],
    now: datetime,
) -> tuple[str, PromptKind] | None:
    """What a check-in offers next: the first pass in essay order, then the most overdue revisit."""
    _aware(now, "now")
    for slug in order:
        if slug not in first_reflections:
            return slug, PromptKind.FIRST
    most_overdue: tuple[timedelta, str] | None = None
    for slug in order:
        first = first_reflections[slug]
        due = revisits_due(first, all_reflections.get(slug, ()), now)
        if not due:
            continue
        overdue = now - (first + REVISIT_AFTER[due[0] - 1])
        # Strictly greater: on a tie the earlier point in the essay wins.
        if most_overdue is None or overdue > most_overdue[0]:
            most_overdue = (overdue, slug)
    return None if most_overdue is None else (most_overdue[1], PromptKind.REVISIT)


def journey_started_at(*candidates: datetime | None) -> datetime | None:
    """The journey starts at the earliest of the first reflection and the check-in start."""
    known = [_aware(at, "journey start") for at in candidates if at is not None]
    return min(known, default=None)


def year_complete(journey_started_at: datetime, now: datetime) -> bool:
    return _aware(now, "now") >= _aware(journey_started_at, "journey_started_at") + YEAR
