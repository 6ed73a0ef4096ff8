"""The chart in words: its text alternative, one or two sentences from what it is drawn from.

Discord shows it as the picture's description (alt text, read by screen readers) and the
features may put it in the message too. Built in the bot's process from the same ``Journey``
the worker draws, so the words and the picture agree; cheap (one pass over the marks).

    18 reflections (12 of them revisits) on all 6 points, from 12 Jan 2026 to 12 Jan 2027,
    none rated. Comfort rose from 2 to 4 on Less money, longer horizon; you lean yes since
    3 Jun 2026 (first: no).
"""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from cogs.core.charts.samples import Journey, Mark

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
LEANING_NAMES = {2: "yes", 1: "leaning yes", 0: "undecided", -1: "leaning no", -2: "no"}
# Where the member stands, as a phrase that reads before "since <day>".
STANDS = {
    2: "you say yes",
    1: "you lean yes",
    0: "you are undecided",
    -1: "you lean no",
    -2: "you say no",
}
MAX_CHARS = 1024  # Discord's limit on an attachment's description


def describe_journey(journey: Journey) -> str:
    """What the chart shows, in at most two sentences; "" when there is nothing to show."""
    if journey.empty:
        return ""
    tz = ZoneInfo(journey.zone)
    sentences = [_reflections(journey, tz)]
    details = [
        clause for clause in (_comfort(journey), _leaning(journey, tz)) if clause is not None
    ]
    if details:
        sentences.append(_capitalised("; ".join(details)) + ".")
    return " ".join(sentences)[:MAX_CHARS]


def _reflections(journey: Journey, tz: ZoneInfo) -> str:
    marks = journey.marks
    # The right edge ends the member's today: the day is the one of the instant before it.
    start, today = _day(journey.start, tz), _day(journey.until - timedelta(seconds=1), tz)
    first = min(
        [start, *(_day(m.at, tz) for m in marks), *(_day(s.at, tz) for s in journey.leanings)]
    )
    when = f"on {_date(first)}" if first >= today else f"from {_date(first)} to {_date(today)}"
    if not marks:
        decisions = len(journey.leanings)
        return f"No reflections yet; {decisions} {_plural(decisions, 'decision')} {when}."
    points = {m.slug for m in marks}
    known = {slug for slug, _ in journey.points}
    if known and points <= known:
        where = f"all {len(known)}" if points == known else f"{len(points)} of {len(known)}"
        where += " points"
    else:
        where = f"{len(points)} {_plural(len(points), 'point')}"
    revisits = len(marks) - len(points)
    text = f"{len(marks)} {_plural(len(marks), 'reflection')}"
    if revisits:
        text += f" ({revisits} of them {_plural(revisits, 'revisit')})"
    text += f" on {where}"
    rated = sum(1 for m in marks if m.comfort)
    if rated == len(marks):
        rating = "all rated" if rated > 1 else "rated"
    elif rated == 0:
        rating = "none rated" if len(marks) > 1 else "not rated"
    else:
        rating = f"{rated} rated"
    return f"{text}, {when}, {rating}."


def _comfort(journey: Journey) -> str | None:
    """The biggest change of comfort on one point (first rating to latest), else the latest."""
    titles = dict(journey.points)
    order = {slug: index for index, (slug, _) in enumerate(journey.points)}
    by_point: dict[str, list[Mark]] = {}
    for mark in sorted(journey.marks, key=lambda m: _aware(m.at)):
        if mark.comfort:
            by_point.setdefault(mark.slug, []).append(mark)
    if not by_point:
        return None
    twice = {slug: marks for slug, marks in by_point.items() if len(marks) > 1}
    if twice:
        slug = min(
            twice,
            key=lambda s: (
                -abs(_rating(twice[s][-1]) - _rating(twice[s][0])),
                order.get(s, len(order)),
                s,
            ),
        )
        first, latest = _rating(twice[slug][0]), _rating(twice[slug][-1])
        title = titles.get(slug, slug)
        if first == latest:
            return f"comfort held at {first} on {title}"
        moved = "rose" if latest > first else "fell"
        return f"comfort {moved} from {first} to {latest} on {title}"
    latest_mark = max((marks[-1] for marks in by_point.values()), key=lambda m: _aware(m.at))
    return f"comfort {_rating(latest_mark)} on {titles.get(latest_mark.slug, latest_mark.slug)}"


def _leaning(journey: Journey, tz: ZoneInfo) -> str | None:
    """Where the member stands now, since when, and where they began if elsewhere."""
    leanings = sorted(journey.leanings, key=lambda s: _aware(s.at))
    if not leanings:
        return None
    now = _level(leanings[-1].leaning)
    since = leanings[-1]
    for sample in reversed(leanings):
        if _level(sample.leaning) != now:
            break
        since = sample
    text = f"{STANDS[now]} since {_date(_day(since.at, tz))}"
    first = _level(leanings[0].leaning)
    if first != now:
        text += f" (first: {LEANING_NAMES[first]})"
    return text


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _day(at: datetime, tz: ZoneInfo) -> date:
    return _aware(at).astimezone(tz).date()


def _date(day: date) -> str:
    return f"{day.day} {MONTHS[day.month - 1]} {day.year}"


def _rating(mark: Mark) -> int:
    return min(5, max(1, mark.comfort or 0))


def _level(leaning: int) -> int:
    return min(2, max(-2, leaning))


def _plural(count: int, word: str) -> str:
    return word if count == 1 else word + "s"


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]
