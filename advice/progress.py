"""Progress summaries for `/progress` and the year-end DM, as pure functions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import IntEnum

from advice.schedule import zone

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
    """One reflection as a summary shows it."""

    at: datetime
    comfort: int | None
    text: str


@dataclass(frozen=True)
class PointStory:
    """A point's reflections as the summaries tell them: what was written first and latest,
    how often, and how comfort moved."""

    slug: str
    first: Snapshot
    latest: Snapshot | None  # None: written once
    count: int
    comfort: str | None  # e.g. "2 → 4"; one rating alone, e.g. "3"; None when none was rated


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


# A line cut shorter than this reads as noise: the excerpt ends at the line before instead.
SHORTEST_CUT = 12


def excerpt(text: str, limit: int, *, quote: str = "") -> str:
    """The text whole when it fits in `limit` characters, else cut at a word with "…".

    Its lines are kept (blank ones dropped, spaces collapsed), each starting with `quote`
    (e.g. "> "), which counts towards the limit."""
    if limit < len(quote) + 1:
        raise ValueError("limit must leave room for at least one character after the quote")
    lines = [" ".join(line.split()) for line in text.splitlines()]
    lines = [line for line in lines if line]
    kept: list[str] = []
    used = 0
    for index, line in enumerate(lines):
        room = limit - used - (1 if kept else 0) - len(quote)
        last = index == len(lines) - 1
        if len(line) <= (room if last else room - 1):  # room for a "…" after it, if cut later
            kept.append(quote + line)
            used += len(kept[-1]) + (1 if len(kept) > 1 else 0)
            continue
        if not kept or room >= SHORTEST_CUT:
            kept.append(quote + opening_words(line, max(1, room)))
        else:
            kept[-1] += "…"
        break
    return "\n".join(kept)


def comfort_path(ratings: Sequence[int | None]) -> str | None:
    """How comfort moved, oldest first, unrated entries left out: e.g. "2 → 3 → 4"; one
    rating alone ("3"); None when nothing was rated. A long path keeps its start and end."""
    path: list[int] = []
    for rating in ratings:
        if rating and (not path or path[-1] != rating):
            path.append(rating)
    if not path:
        return None
    shown = [str(rating) for rating in path]
    if len(shown) > 4:
        shown = [shown[0], "…", *shown[-2:]]
    return " → ".join(shown)


def point_stories(
    reflections_by_point: Mapping[str, Sequence[tuple[datetime, int | None, str | None]]],
    order: Sequence[str] | None = None,
    *,
    revisited_only: bool = False,
) -> list[PointStory]:
    """Each point's first and latest reflection, how many there were and how comfort moved,
    in `order` if given. A text is needed only for the first and latest (None elsewhere).
    With `revisited_only`, only points written about more than once."""
    slugs = list(reflections_by_point) if order is None else order
    stories = []
    for slug in slugs:
        entries = sorted(reflections_by_point.get(slug, ()), key=lambda entry: entry[0])
        if not entries or (revisited_only and len(entries) < 2):
            continue
        first, latest = (
            Snapshot(at, comfort, text or "") for at, comfort, text in (entries[0], entries[-1])
        )
        stories.append(
            PointStory(
                slug,
                first=first,
                latest=latest if len(entries) > 1 else None,
                count=len(entries),
                comfort=comfort_path([comfort for _, comfort, _ in entries]),
            )
        )
    return stories


MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def zone_label(zone_name: str | None) -> str:
    """The zone times are shown in: the member's, or UTC when they set none (or it is gone)."""
    return zone_name if zone_name and zone(zone_name) is not UTC else "UTC"


def local_date(at: datetime, zone_name: str | None) -> str:
    """E.g. "13 December 2026", the day it was in the member's zone."""
    local = at.astimezone(zone(zone_name))
    return f"{local.day} {MONTH_NAMES[local.month - 1]} {local.year}"


def local_time(at: datetime, zone_name: str | None, *, with_zone: bool = True) -> str:
    """E.g. "13 December 2026, 20:46 (Europe/Berlin)": the member's own wall clock."""
    local = at.astimezone(zone(zone_name))
    shown = f"{local_date(at, zone_name)}, {local:%H:%M}"
    return f"{shown} ({zone_label(zone_name)})" if with_zone else shown


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
