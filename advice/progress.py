"""Progress summaries for `/progress` and the year-end DM, as pure functions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import IntEnum

WEEK = timedelta(days=7)


@dataclass(frozen=True)
class Coverage:
    done: int
    total: int

    @property
    def complete(self) -> bool:
        return self.done >= self.total

    def bar(self) -> str:
        """E.g. "▰▰▰▱▱▱ 3/6"."""
        return "▰" * self.done + "▱" * (self.total - self.done) + f" {self.done}/{self.total}"


def coverage(reflected_slugs: Iterable[str], all_slugs: Sequence[str]) -> Coverage:
    """How many of the points have at least one reflection; unknown slugs are ignored."""
    known = set(all_slugs)
    return Coverage(done=len(known.intersection(reflected_slugs)), total=len(known))


def consistency(
    reflection_times: Sequence[datetime], journey_started_at: datetime, now: datetime
) -> float:
    """Share of 7-day weeks since the journey start (current one included) with a reflection."""
    if now < journey_started_at:
        return 0.0
    weeks = (now - journey_started_at) // WEEK + 1
    active = {
        (at - journey_started_at) // WEEK
        for at in reflection_times
        if journey_started_at <= at <= now
    }
    return len(active) / weeks


@dataclass(frozen=True)
class Snapshot:
    at: datetime
    comfort: int | None
    opening: str


@dataclass(frozen=True)
class ThenVsNow:
    slug: str
    then: Snapshot
    now: Snapshot


def opening_words(text: str, limit: int = 60) -> str:
    """The first words of a text, whitespace collapsed, at most `limit` chars including "…"."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    collapsed = " ".join(text.split())
    if len(collapsed) <= limit:
        return collapsed
    head, rest = collapsed[: limit - 1], collapsed[limit - 1 :]
    # A word ends where the cut falls if a space follows, or punctuation and then a space.
    at_boundary = rest[0] == " " or (rest[0] in ",;:.!?" and rest[1:2] in ("", " "))
    # Otherwise drop the partial word, unless the text is one word longer than the limit.
    if not at_boundary and " " in head:
        head = head[: head.rindex(" ")]
    return head.rstrip(" ,;:-") + "…"


def _snapshot(at: datetime, comfort: int | None, text: str) -> Snapshot:
    return Snapshot(at=at, comfort=comfort, opening=opening_words(text))


def then_vs_now(
    reflections_by_point: Mapping[str, Sequence[tuple[datetime, int | None, str]]],
    order: Sequence[str] | None = None,
) -> list[ThenVsNow]:
    """First vs latest reflection of each point reflected on at least twice, in `order` if given."""
    slugs = list(reflections_by_point) if order is None else order
    pairs = []
    for slug in slugs:
        entries = sorted(reflections_by_point.get(slug, ()), key=lambda entry: entry[0])
        if len(entries) < 2:
            continue
        pairs.append(ThenVsNow(slug, then=_snapshot(*entries[0]), now=_snapshot(*entries[-1])))
    return pairs


class Leaning(IntEnum):
    # Declared in the order `/decide` offers them; the values make "more yes" compare greater.
    YES = 2
    LEANING_YES = 1
    UNDECIDED = 0
    LEANING_NO = -1
    NO = -2

    @property
    def label(self) -> str:
        return self.name.lower().replace("_", " ")

    @classmethod
    def from_label(cls, label: str) -> Leaning:
        """Parse "leaning yes", "Leaning_Yes" or "leaning-yes"; ValueError if it is none of them."""
        key = "_".join(label.replace("-", " ").replace("_", " ").split()).upper()
        try:
            return cls[key]
        except KeyError:
            choices = ", ".join(member.label for member in cls)
            raise ValueError(f"unknown leaning {label!r}; expected one of: {choices}") from None


def decision_trend(leanings: Sequence[tuple[datetime, Leaning]]) -> str:
    """One line: how the recorded leanings moved, e.g. "undecided → leaning yes (3 records)"."""
    if not leanings:
        return "no decision recorded yet"
    path: list[str] = []
    for _, leaning in sorted(leanings, key=lambda record: record[0]):
        if not path or path[-1] != leaning.label:
            path.append(leaning.label)
    # Keep the line short: where it started and the last two stances carry the story.
    if len(path) > 4:
        path = [path[0], "…", *path[-2:]]
    records = f"{len(leanings)} record{'s' if len(leanings) != 1 else ''}"
    return f"{' → '.join(path)} ({records})"
