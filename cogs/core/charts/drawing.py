"""Draw a member's journey as one PNG, with Pillow alone.

One row per point (its title as in points.yaml): every reflection is a mark at its time, filled
with its comfort rating (viridis, 1 dark to 5 bright) or hollow when it has none (a reply to a
DM check-in), so the first pass, the revisits and the gaps show at a glance. Under the rows,
where the member leans (-2 no … 2 yes) as a step line over the same time axis. Dashed lines
mark the year's revisits (3, 6 and 12 months after the start); the axis runs from the
journey's start to the member's today, with its dates in their zone.

Sized for a phone: Discord shows the 800 px picture about 400 px wide, so no text is drawn
smaller than 20 px. Colours are colour-blind safe (viridis for comfort, Okabe-Ito blue for the
decision line), and comfort is never told by colour alone: a rating is a filled mark, no
rating a ring, and the words beside the picture (``describe.py``) say what it shows.

Why Pillow and not matplotlib (figures in bench/charts.py): a matplotlib worker holds 65 MiB
before it draws anything, takes a second to start and ~0.2 s a chart; this one starts in a
fraction of that and holds ~20 MiB. Text is drawn with a real TrueType font that ships inside
Pillow itself (Aileron Regular, ``ImageFont.load_default(size)``), so no system font is needed.
Marks are smooth (drawn once at four times the size, reduced, then pasted); the PNG is a
palette image, small and quick to encode. Same input, same bytes.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import lru_cache
from itertools import pairwise
from math import ceil
from typing import NamedTuple
from zoneinfo import ZoneInfo

from PIL import Image, ImageDraw, ImageFont

from cogs.core.charts.samples import REVISIT_MONTHS, Journey, LeaningSample, Mark

__all__ = [
    "NOTHING_PLACEHOLDER",
    "JourneyLayout",
    "Tick",
    "axis_ticks",
    "font",
    "render_journey_chart",
    "warm_up",
]

NOTHING_PLACEHOLDER = "Nothing to chart yet: reflect on a point or record where you lean."
NO_DECISION = "No decision yet: /decide records where you stand."

WIDTH = 800
MARGIN_LEFT, MARGIN_RIGHT = 16, 22
GUTTER = 124  # the decision levels' names; the rows' counts
LABEL_GAP = 14  # between those and the axis: a mark at the start is drawn on it
TITLE_TOP = 12
MARKERS_TOP = 58  # "3 mo", "6 mo", "today" above the rows
ROWS_TOP = 84
ROWS_HEIGHT = 324  # six rows of 54 px; more rows share it
BAND = 20  # a row's band, under its title
LEAN_HEADING_GAP = 12
LEAN_STEP = 28  # between two decision levels
AXIS_GAP = 10
BOTTOM = 10

TITLE_SIZE, TEXT_SIZE, SMALL_SIZE = 30, 22, 20

BACKGROUND = (255, 255, 255)
TEXT = (34, 34, 34)
QUIET = (89, 89, 89)
BAND_FILL = (234, 234, 234)
AHEAD_FILL = (243, 243, 243)
GRID = (214, 214, 214)
REVISIT = (110, 110, 110)
RING = (51, 51, 51)
OUTLINE = (34, 34, 34)
LEANING_COLOUR = (0, 114, 178)  # Okabe-Ito blue
# viridis at 0, 1/4, 1/2, 3/4, 1: comfort 1 (dark purple) to 5 (yellow), readable with the
# common colour-vision deficiencies and in greyscale (its lightness rises steadily).
COMFORT = ((68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37))

LEANINGS = ((2, "yes"), (1, "leaning yes"), (0, "undecided"), (-1, "leaning no"), (-2, "no"))
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
MIN_SPAN = timedelta(days=28)  # a journey begun today still gets weeks on its axis
TICK_GAP = 10  # at least between two date labels
MAX_TITLE = 44  # longer titles are cut, so a row keeps to one line
PNG_COLOURS = 128
# The characters the bundled font has (ASCII and a few more); others are shown as "?".
FONT_CHARS = frozenset(map(chr, range(32, 127))) | frozenset("©«°±´·»‘’“”…")
FONT_SUBSTITUTES = {"—": "-", "–": "-", "\u00a0": " "}


@lru_cache(maxsize=16)
def font(size: int) -> ImageFont.FreeTypeFont:
    """Aileron Regular at ``size`` px: a TrueType font bundled in Pillow (>= 10.1), the same on
    every machine whatever fonts it has installed."""
    loaded = ImageFont.load_default(size=size)
    if not isinstance(loaded, ImageFont.FreeTypeFont):  # a Pillow built without FreeType
        raise RuntimeError("the chart needs Pillow with FreeType, for its TrueType font")
    return loaded


def warm_up() -> None:
    """Draw one small chart, so what Pillow loads on first use is loaded."""
    at = datetime(2026, 1, 5, tzinfo=UTC)
    render_journey_chart(
        Journey(
            points=[("purpose", "Know why you want it")],
            marks=[Mark("purpose", at, 3), Mark("purpose", at + timedelta(days=9), None)],
            leanings=[LeaningSample(at, 1)],
            start=at,
            until=at + timedelta(days=40),
            zone="UTC",
        )
    )


def render_journey_chart(journey: Journey) -> bytes:
    """The PNG of ``journey``; with nothing to show, a line saying so."""
    if journey.empty:
        return _nothing()
    return _png(JourneyLayout(journey).draw())


class Tick(NamedTuple):
    at: float  # POSIX seconds
    label: str
    year: str | None  # under the label, where a year begins (and at the first tick)


class JourneyLayout:
    """One drawing: the layout worked out from the journey, then drawn on a canvas."""

    def __init__(self, journey: Journey) -> None:
        self.tz: tzinfo = ZoneInfo(journey.zone)
        self.marks = sorted(journey.marks, key=lambda m: (_seconds(m.at), m.slug))
        self.leanings = sorted(journey.leanings, key=lambda s: _seconds(s.at))
        times = [_seconds(m.at) for m in self.marks] + [_seconds(s.at) for s in self.leanings]
        self.start = min([_seconds(journey.start), *times])
        # (Never before the start, should the clock that set it lag the one that wrote.)
        self.today = max(_seconds(journey.until), self.start)
        self.end = max([self.today, self.start + MIN_SPAN.total_seconds(), *times])
        known = [slug for slug, _ in journey.points]
        titles = dict(journey.points)
        others = sorted({m.slug for m in self.marks} - set(known))
        self.rows = [(slug, _fit(titles.get(slug) or slug)) for slug in [*known, *others]]
        self.row_pitch = ROWS_HEIGHT / max(6, len(self.rows))
        self.x0, self.x1 = float(MARGIN_LEFT + GUTTER), float(WIDTH - MARGIN_RIGHT)
        self.rows_bottom = ROWS_TOP + self.row_pitch * len(self.rows)
        self.lean_heading = self.rows_bottom + LEAN_HEADING_GAP
        self.lean_top = self.lean_heading + TEXT_SIZE + 18
        self.lean_bottom = self.lean_top + 4 * LEAN_STEP
        self.axis_top = self.lean_bottom + AXIS_GAP
        self.height = round(self.axis_top + 2 * SMALL_SIZE + 8 + BOTTOM)
        self.ticks = axis_ticks(self.start, self.end, self.tz, self.x1 - self.x0)
        self.revisits = [
            (months, at)
            for months in REVISIT_MONTHS
            if self.start < (at := _months_after(journey.start, months, self.tz)) <= self.end
        ]

    def x(self, at: float) -> float:
        return self.x0 + (at - self.start) / (self.end - self.start) * (self.x1 - self.x0)

    def draw(self) -> Image.Image:
        canvas = _Canvas(WIDTH, self.height)
        self._frame(canvas)
        self._rows(canvas)
        self._leanings(canvas)
        self._axis(canvas)
        self._header(canvas)
        return canvas.image()

    def _frame(self, c: _Canvas) -> None:
        """What the data is drawn over: each row's band (the time still ahead paler), the
        grid, the revisit lines."""
        today = self.x(self.today)
        for row in range(len(self.rows)):
            top = self.band_top(row)
            c.rectangle(self.x0, top, today, top + BAND, fill=BAND_FILL)
            if today < self.x1:
                c.rectangle(today, top, self.x1, top + BAND, fill=AHEAD_FILL)
            for tick in self.ticks:
                c.line([(self.x(tick.at), top), (self.x(tick.at), top + BAND)], GRID, 1)
        if today < self.x1:
            c.rectangle(today, self.lean_top - 6, self.x1, self.lean_bottom, fill=AHEAD_FILL)
        for tick in self.ticks:
            x = self.x(tick.at)
            c.line([(x, self.lean_top - 6), (x, self.lean_bottom)], GRID, 1)
        for level, _ in LEANINGS:
            y = self._lean_y(level)
            c.line([(self.x0, y), (self.x1, y)], GRID, 1)
        for _, at in self.revisits:
            c.dashed_vertical(self.x(at), ROWS_TOP - 4, self.lean_bottom, REVISIT, 2)
        if today < self.x1:  # a young journey: its weeks ahead are on the axis too
            c.line([(today, ROWS_TOP - 4), (today, self.lean_bottom)], TEXT, 2)

    def _header(self, c: _Canvas) -> None:
        c.text((MARGIN_LEFT, TITLE_TOP), "Your journey", TITLE_SIZE, TEXT, anchor="lt")
        # The legend, right-aligned on the title's line: comfort 1..5, then no rating.
        r = 7.5
        y = TITLE_TOP + TITLE_SIZE / 2 + 2
        x: float = WIDTH - MARGIN_RIGHT
        x -= c.text_width("no rating", SMALL_SIZE)
        c.text((x, y), "no rating", SMALL_SIZE, QUIET, anchor="lm")
        x -= r + 6
        c.circle(x, y, _Disc(r, BACKGROUND, RING, 2.2))
        x -= r + 22
        for rating in range(5, 0, -1):
            c.text((x, y), str(rating), SMALL_SIZE, QUIET, anchor="rm")
            x -= c.text_width(str(rating), SMALL_SIZE) + 4 + r
            c.circle(x, y, _Disc(r, COMFORT[rating - 1], OUTLINE, 1.2))
            x -= r + 10
        c.text((x, y), "comfort", SMALL_SIZE, QUIET, anchor="rm")
        # Above the rows: when each revisit falls, and today (when it is not the right edge).
        labels: list[tuple[float, str]] = [(self.x(at), f"{m} mo") for m, at in self.revisits]
        today_x = self.x(self.today)
        today = "today" if today_x < self.x1 - 1 else None  # else it is the right edge
        placed: list[tuple[float, float]] = []
        if today is not None:
            half = c.text_width(today, SMALL_SIZE) / 2
            centre = min(today_x, self.x1 - half)
            placed.append((centre - half, centre + half))
            c.text((centre, MARKERS_TOP), today, SMALL_SIZE, TEXT, anchor="mt")
        for x_at, label in labels:
            half = c.text_width(label, SMALL_SIZE) / 2
            centre = min(max(x_at, self.x0 + half), self.x1 - half)
            span = (centre - half - 6, centre + half + 6)
            if any(span[0] < right and left < span[1] for left, right in placed):
                continue  # a few months apart on a long axis: the line alone says it
            placed.append(span)
            c.text((centre, MARKERS_TOP), label, SMALL_SIZE, REVISIT, anchor="mt")

    def band_top(self, row: int) -> float:
        return ROWS_TOP + row * self.row_pitch + self.row_pitch - BAND - 8

    def _rows(self, c: _Canvas) -> None:
        by_slug: dict[str, list[Mark]] = {}
        for mark in self.marks:
            by_slug.setdefault(mark.slug, []).append(mark)
        busiest = max((len(marks) for marks in by_slug.values()), default=1)
        radius = round(2 * min(8.5, max(3.5, 0.55 * (self.x1 - self.x0) / busiest))) / 2
        for row, (slug, title) in enumerate(self.rows):
            band = self.band_top(row)
            marks = by_slug.get(slug, [])
            colour = TEXT if marks else QUIET
            c.text((MARGIN_LEFT, band - 4), title, TEXT_SIZE, colour, anchor="ld", boxed=True)
            count = f"{len(marks)}x" if marks else "none"
            c.text((self.x0 - LABEL_GAP, band + BAND / 2), count, SMALL_SIZE, QUIET, anchor="rm")
            y = band + BAND / 2
            for mark in marks:
                x = self.x(_seconds(mark.at))
                if mark.comfort:
                    colour_of = COMFORT[min(5, max(1, mark.comfort)) - 1]
                    c.circle(x, y, _Disc(radius, colour_of, OUTLINE, 1.2))
                else:
                    c.circle(x, y, _Disc(radius, BACKGROUND, RING, 2.2))

    def _lean_y(self, leaning: int) -> float:
        return self.lean_top + (2 - leaning) * LEAN_STEP

    def _leanings(self, c: _Canvas) -> None:
        heading = (MARGIN_LEFT, self.lean_heading)
        c.text(heading, "Where you lean", TEXT_SIZE, TEXT, anchor="lt", boxed=True)
        for level, name in LEANINGS:
            at = (self.x0 - LABEL_GAP, self._lean_y(level))
            c.text(at, name, SMALL_SIZE, QUIET, anchor="rm")
        if not self.leanings:
            middle = (self.x0 + self.x1) / 2
            at = (middle, self._lean_y(1))
            c.text(at, NO_DECISION, SMALL_SIZE, QUIET, anchor="mm", boxed=True)
            return
        points: list[tuple[float, float]] = []
        for sample in self.leanings:
            x, y = self.x(_seconds(sample.at)), self._lean_y(_level(sample))
            if points:
                points.append((x, points[-1][1]))
            points.append((x, y))
        # A leaning holds until the next: the last is carried to today.
        points.append((max(points[-1][0], self.x(min(self.today, self.end))), points[-1][1]))
        c.line(points, LEANING_COLOUR, 3)
        for sample in self.leanings:
            x, y = self.x(_seconds(sample.at)), self._lean_y(_level(sample))
            c.circle(x, y, _Disc(5.0, LEANING_COLOUR, BACKGROUND, 1.5))

    def _axis(self, c: _Canvas) -> None:
        y = self.axis_top
        for tick in self.ticks:
            x = self.x(tick.at)
            c.line([(x, self.lean_bottom), (x, y - 2)], QUIET, 1)
            c.text((x, y), tick.label, SMALL_SIZE, TEXT, anchor="mt")
            if tick.year:
                c.text((x, y + SMALL_SIZE + 2), tick.year, SMALL_SIZE, QUIET, anchor="mt")


class _Canvas:
    """A picture drawn at its final size. Lines are all upright or level, so they need no
    smoothing; marks are pasted from circles drawn once at four times the size and reduced."""

    def __init__(self, width: int, height: int) -> None:
        self._image = Image.new("RGB", (width, height), BACKGROUND)
        self._draw = ImageDraw.Draw(self._image)

    def image(self) -> Image.Image:
        return self._image

    def rectangle(self, x0: float, y0: float, x1: float, y1: float, *, fill: _RGB) -> None:
        box = (round(x0), round(y0), round(x1) - 1, round(y1) - 1)
        if box[0] <= box[2] and box[1] <= box[3]:
            self._draw.rectangle(box, fill=fill)

    def line(self, points: Sequence[tuple[float, float]], colour: _RGB, width: int) -> None:
        self._draw.line([(round(x), round(y)) for x, y in points], fill=colour, width=width)

    def dashed_vertical(self, x: float, top: float, bottom: float, colour: _RGB, w: int) -> None:
        for y in _dashes(top, bottom, dash=6.0, gap=5.0):
            self.line([(x, y), (x, min(bottom, y + 5.0))], colour, w)

    def circle(self, x: float, y: float, disc: _Disc) -> None:
        sprite = _sprite(disc)
        half = sprite.width // 2
        self._image.paste(sprite, (round(x) - half, round(y) - half), sprite)

    def text(
        self,
        at: tuple[float, float],
        text: str,
        size: int,
        colour: _RGB,
        *,
        anchor: str,
        boxed: bool = False,
    ) -> None:
        """``boxed``: on the background's colour, over any line drawn under it."""
        face = font(size)
        if boxed:
            left, top, right, bottom = self._draw.textbbox(at, text, font=face, anchor=anchor)
            self._draw.rectangle((left - 3, top - 3, right + 3, bottom + 3), BACKGROUND)
        self._draw.text(at, text, fill=colour, font=face, anchor=anchor)

    def text_width(self, text: str, size: int) -> float:
        return _text_width(text, size)


_RGB = tuple[int, int, int]


class _Disc(NamedTuple):
    radius: float
    fill: _RGB
    outline: _RGB
    width: float  # of the outline


SPRITE_SCALE = 4


@lru_cache(maxsize=64)
def _sprite(disc: _Disc) -> Image.Image:
    """A smooth disc, to paste: drawn at SPRITE_SCALE times the size, then reduced."""
    size = 2 * ceil(disc.radius) + 1  # odd: its centre is a pixel's
    big = size * SPRITE_SCALE
    centre, r = big / 2, disc.radius * SPRITE_SCALE
    # Transparent in the outline's colour, so the reduced edge does not darken.
    image = Image.new("RGBA", (big, big), (*disc.outline, 0))
    ImageDraw.Draw(image).ellipse(
        (centre - r, centre - r, centre + r, centre + r),
        fill=(*disc.fill, 255),
        outline=(*disc.outline, 255),
        width=max(1, round(disc.width * SPRITE_SCALE)),
    )
    return image.reduce(SPRITE_SCALE)


@lru_cache(maxsize=512)
def _text_width(text: str, size: int) -> float:
    return font(size).getlength(text)


def _dashes(top: float, bottom: float, *, dash: float, gap: float) -> Iterator[float]:
    y = top
    while y < bottom:
        yield y
        y += dash + gap


def _nothing() -> bytes:
    canvas = _Canvas(WIDTH, 120)
    canvas.text((WIDTH / 2, 60), NOTHING_PLACEHOLDER, TEXT_SIZE, QUIET, anchor="mm")
    return _png(canvas.image())


def _png(image: Image.Image) -> bytes:
    # A palette of 128 colours: flat fills and anti-aliased edges on white lose nothing
    # visible, and the file is a fraction of a true-colour one, quicker to compress too.
    # No metadata chunks: same input, same bytes.
    palette = image.quantize(
        colors=PNG_COLOURS, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE
    )
    buffer = io.BytesIO()
    palette.save(buffer, format="PNG")
    return buffer.getvalue()


def _seconds(at: datetime) -> float:
    # Callers promise aware UTC; a naive value is read as UTC rather than crash.
    return (at if at.tzinfo is not None else at.replace(tzinfo=UTC)).timestamp()


def _level(sample: LeaningSample) -> int:
    return min(2, max(-2, sample.leaning))


def _fit(title: str) -> str:
    """A title as the font can draw it, on one line, cut when very long."""
    title = " ".join(title.split())
    title = "".join(ch if ch in FONT_CHARS else FONT_SUBSTITUTES.get(ch, "?") for ch in title)
    if len(title) > MAX_TITLE:
        title = title[: MAX_TITLE - 1].rstrip() + "…"
    return title


# --- the time axis ----------------------------------------------------------------------------


def _local_midnight(day: date, tz: tzinfo) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=tz).timestamp()


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    for last in (31, 30, 29, 28):  # the same day of the month, or the month's last
        try:
            return date(year, month + 1, min(day.day, last))
        except ValueError:
            continue
    raise AssertionError("unreachable")


def _months_after(start: datetime, months: int, tz: tzinfo) -> float:
    """The same local time, ``months`` calendar months later."""
    local = datetime.fromtimestamp(_seconds(start), tz)
    return datetime.combine(_add_months(local.date(), months), local.time(), tz).timestamp()


def _day_ticks(start: float, end: float, tz: tzinfo, every: int, monday: bool) -> list[date]:
    day = datetime.fromtimestamp(start, tz).date()
    if _local_midnight(day, tz) < start:
        day += timedelta(days=1)
    if monday:
        day += timedelta(days=-day.weekday() % 7)
    days = []
    while _local_midnight(day, tz) <= end:
        days.append(day)
        day += timedelta(days=every)
    return days


def _month_ticks(start: float, end: float, tz: tzinfo, every: int) -> list[date]:
    first = datetime.fromtimestamp(start, tz).date().replace(day=1)
    if _local_midnight(first, tz) < start:
        first = _add_months(first, 1)
    while (first.month - 1) % every:
        first = _add_months(first, 1)
    days = []
    while _local_midnight(first, tz) <= end:
        days.append(first)
        first = _add_months(first, every)
    return days


DAY_S = 86_400.0
UNIT_S = {"day": DAY_S, "week": 7 * DAY_S, "month": 30.44 * DAY_S, "year": 365.25 * DAY_S}
# Ever sparser ticks: (unit, how many), tried in turn until their labels fit side by side.
TICK_STEPS = (
    ("day", 1), ("day", 2), ("week", 1), ("week", 2),
    ("month", 1), ("month", 2), ("month", 3), ("month", 6),
    ("year", 1), ("year", 2), ("year", 5), ("year", 10),
)  # fmt: skip
NARROWEST_LABEL = 24.0  # px at SMALL_SIZE: no label ("Jun", "2026", "1 May") is narrower


def _make_ticks(unit: str, every: int, start: float, end: float, tz: tzinfo) -> list[Tick]:
    """Ticks at local midnights: days and weeks (from Mondays) labelled "12 Jan", months
    "Jan", both with the year under the first and under each new year's; years "2026"."""
    if unit in ("day", "week"):
        days = _day_ticks(start, end, tz, every * (7 if unit == "week" else 1), unit == "week")
    else:
        days = _month_ticks(start, end, tz, every * (12 if unit == "year" else 1))
    ticks = []
    for index, day in enumerate(days):
        if unit == "year":
            ticks.append(Tick(_local_midnight(day, tz), str(day.year), None))
            continue
        label = MONTHS[day.month - 1] if unit == "month" else f"{day.day} {MONTHS[day.month - 1]}"
        new_year = index == 0 or day.year != days[index - 1].year
        ticks.append(Tick(_local_midnight(day, tz), label, str(day.year) if new_year else None))
    return ticks


def axis_ticks(start: float, end: float, tz: tzinfo, width: float) -> list[Tick]:
    """The densest ticks whose labels fit side by side."""
    per_second = width / (end - start)
    sparsest: list[Tick] = []
    for unit, every in TICK_STEPS:
        step = every * UNIT_S[unit]
        if step * per_second < NARROWEST_LABEL + TICK_GAP:
            continue  # too dense whatever the labels: not worth making
        ticks = _make_ticks(unit, every, start, end, tz)
        if not ticks:
            continue
        widest = max(_text_width(t.label, SMALL_SIZE) for t in ticks)
        closest = min((b.at - a.at for a, b in pairwise(ticks)), default=end)
        if closest * per_second >= widest + TICK_GAP:
            return ticks
        sparsest = ticks
    return sparsest
