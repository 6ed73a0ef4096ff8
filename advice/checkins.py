"""What a check-in carries: pure rules over what the member wrote and was offered this year.

The year's path: first every point once, in the essay's order; then each point returns around
3 and 6 months later (and 12, when that falls inside the year) with its revisit prompt; at the
year's end, a summary that asks for `/decide`. The 12-month round of most points lands after the
year's end, so the summary is where they meet their year: then-vs-now for every point at once.

A point counts as "touched" by a reflection *or* by a check-in that offered it. So a member who
lets a check-in pass is not asked the same thing again next week (that would be nagging): the
point returns with the next round, like every other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from advice.journey import YEAR, PromptKind, next_point, next_revisit_at

# A round that falls due within this much of a check-in slot is offered in that slot: a round
# due on a Monday at 19:00 should not wait a week because the member's slot is at 18:00, nor
# one due at 18:00:30 because the check-in that started it went out 30 seconds after its slot.
DUE_SLACK = timedelta(days=2)
# Plain-text replies this soon after a check-in are saved as its reflection.
REPLY_WINDOW = timedelta(hours=48)


class CheckinKind(StrEnum):
    POINT = "point"
    SUMMARY = "summary"


@dataclass(frozen=True)
class Offer:
    """One check-in's content: a point and which prompt, or the year's summary."""

    kind: CheckinKind
    point: str | None = None
    prompt: PromptKind | None = None


SUMMARY = Offer(CheckinKind.SUMMARY)


@dataclass(frozen=True)
class YearHistory:
    """Everything the rules need, limited to the current year."""

    started_at: datetime
    reflections: Mapping[str, Sequence[datetime]]  # point -> when reflected on, this year
    offers: Mapping[str, Sequence[datetime]]  # point -> when a check-in offered it, this year

    @property
    def ends_at(self) -> datetime:
        return self.started_at + YEAR

    def touches(self) -> dict[str, list[datetime]]:
        points = set(self.reflections) | set(self.offers)
        return {
            slug: sorted([*self.reflections.get(slug, ()), *self.offers.get(slug, ())])
            for slug in points
        }


def year_over(history: YearHistory, at: datetime) -> bool:
    return at >= history.ends_at


def offer_at(history: YearHistory, order: Sequence[str], at: datetime) -> Offer | None:
    """What a check-in at `at` should carry; None when nothing is due (then nothing is sent)."""
    if year_over(history, at):
        return SUMMARY
    touches = history.touches()
    firsts = {slug: times[0] for slug, times in touches.items()}
    chosen = next_point(firsts, touches, order, at + DUE_SLACK)
    if chosen is None:
        return None
    slug, _ = chosen
    prompt = PromptKind.REVISIT if history.reflections.get(slug) else PromptKind.FIRST
    return Offer(CheckinKind.POINT, slug, prompt)


def next_due(history: YearHistory, order: Sequence[str], after: datetime) -> datetime:
    """The earliest instant after `after` at which a check-in would have something to carry.

    Lets the scheduler skip empty weeks (between the first pass and the first revisits)
    instead of waking a member with nothing to ask.
    """
    touches = history.touches()
    if any(slug not in touches for slug in order):
        return after
    candidates = [history.ends_at]
    for slug in order:
        due = next_revisit_at(touches[slug][0], touches[slug])
        if due is not None:
            candidates.append(due - DUE_SLACK)
    return max(after, min(candidates))
