"""The journey chart: a real PNG for every shape of journey, its axis and marks where they
belong, drawn in a font that ships with Pillow, and the words that describe it."""

import io
import random
import struct
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from PIL import Image, ImageFont

from advice.content import load_content
from cogs.core.charts import drawing
from cogs.core.charts.describe import describe_journey
from cogs.core.charts.drawing import JourneyLayout, axis_ticks, font, render_journey_chart
from cogs.core.charts.samples import Journey, LeaningSample, Mark

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
POINTS = [(point.slug, point.title) for point in load_content().points]
SLUGS = [slug for slug, _ in POINTS]
START = datetime(2026, 1, 12, 9, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[2]


def end_of_day(at: datetime, zone: str = "UTC") -> datetime:
    local = at.astimezone(ZoneInfo(zone)).date() + timedelta(days=1)
    return datetime(local.year, local.month, local.day, tzinfo=ZoneInfo(zone)).astimezone(UTC)


def journey(
    marks: list[Mark],
    leanings: list[LeaningSample] | None = None,
    *,
    days: int = 0,
    zone: str = "UTC",
    points: list[tuple[str, str]] = POINTS,
) -> Journey:
    return Journey(
        points=points,
        marks=marks,
        leanings=leanings or [],
        start=START,
        until=end_of_day(START + timedelta(days=days), zone),
        zone=zone,
    )


def one_unrated() -> Journey:
    return journey([Mark("purpose", START, None)])


def dm_year() -> Journey:
    """18 replies to DM check-ins (no ratings): the first pass, then revisits."""
    marks = [Mark(SLUGS[i % 6], START + timedelta(days=7 * i), None) for i in range(6)]
    marks += [Mark(SLUGS[i % 6], START + timedelta(days=90 + 22 * i), None) for i in range(12)]
    return journey(marks, days=365)


def dense_year(seed: int = 5) -> Journey:
    rng = random.Random(seed)
    marks = [
        Mark(rng.choice(SLUGS), START + timedelta(days=day, hours=rng.randrange(12)), comfort)
        for day in range(365)
        if (comfort := rng.choice([None, 1, 2, 3, 4, 5])) or rng.random() < 0.5
    ]
    days = sorted(rng.sample(range(365), 10))
    leanings = [
        LeaningSample(START + timedelta(days=day), leaning)
        for day, leaning in zip(days, [-2, -1, -1, 0, 0, 1, 0, 1, 2, 1], strict=True)
    ]
    return journey(marks, leanings, days=365, zone="America/New_York")


def five_years() -> Journey:
    rng = random.Random(9)
    span = 5 * 365
    marks = [
        Mark(rng.choice(SLUGS), START + timedelta(days=rng.randrange(span)), rng.randint(0, 5))
        for _ in range(1000)
    ]
    leanings = [
        LeaningSample(START + timedelta(days=rng.randrange(span)), rng.randint(-2, 2))
        for _ in range(50)
    ]
    return journey(marks, leanings, days=span, zone="Asia/Tokyo")


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from the IHDR chunk, after checking the PNG is framed correctly."""
    assert data[:8] == PNG_SIGNATURE
    length, kind = struct.unpack(">I4s", data[8:16])
    assert (length, kind) == (13, b"IHDR")
    width, height = struct.unpack(">II", data[16:24])
    assert data[-8:-4] == b"IEND", "truncated PNG"
    return width, height


def assert_chart(data: bytes) -> None:
    width, height = png_size(data)
    assert width == 800 and 300 <= height <= 800  # ~400 x 150-400 as Discord previews it
    assert len(data) < 100_000


@pytest.mark.parametrize("shape", [one_unrated, dm_year, dense_year, five_years])
def test_every_shape_of_journey_is_drawn(shape: object) -> None:
    assert callable(shape)
    assert_chart(render_journey_chart(shape()))


def test_one_decision_alone_is_drawn() -> None:
    assert_chart(render_journey_chart(journey([], [LeaningSample(START, 1)])))


def test_nothing_at_all_is_a_line_of_text() -> None:
    data = render_journey_chart(journey([]))
    width, height = png_size(data)
    assert width == 800 and height < 200


def test_the_same_journey_draws_the_same_bytes_in_any_order() -> None:
    ordered = dense_year()
    shuffled_marks, shuffled_leanings = list(ordered.marks), list(ordered.leanings)
    random.Random(1).shuffle(shuffled_marks)
    random.Random(2).shuffle(shuffled_leanings)
    shuffled = ordered._replace(marks=shuffled_marks, leanings=shuffled_leanings)
    assert render_journey_chart(shuffled) == render_journey_chart(ordered)


def test_the_picture_depends_on_what_it_shows() -> None:
    unrated = journey([Mark("purpose", START, None)])
    rated = journey([Mark("purpose", START, 4)])
    later = journey([Mark("purpose", START, None)], days=40)
    assert len({render_journey_chart(j) for j in (unrated, rated, later)}) == 3


def test_unrated_reflections_are_marks_on_their_points_row() -> None:
    """A year of DM replies is a year of marks, not 'nothing to chart'."""
    layout = JourneyLayout(dm_year())
    image = layout.draw()
    for row, (slug, _) in enumerate(layout.rows):
        y = round(layout.band_top(row) + drawing.BAND / 2)
        for mark in (m for m in dm_year().marks if m.slug == slug):
            x = round(layout.x(mark.at.timestamp()))
            across = [image.getpixel((x + dx, y)) for dx in range(-9, 10)]
            assert image.getpixel((x, y)) == drawing.BACKGROUND  # hollow: no rating
            assert min(sum(pixel) for pixel in across) < 300  # type: ignore[arg-type]


def test_rows_are_the_points_titles_in_the_essays_order() -> None:
    layout = JourneyLayout(one_unrated())
    assert [title for _, title in layout.rows] == [title for _, title in POINTS]
    odd = journey(
        [Mark("retired", START, 3), Mark("purpose", START, 2)],
        points=[("purpose", "Know why — and\nhow   long " + "x" * 60)],
    )
    rows = JourneyLayout(odd).rows
    assert [slug for slug, _ in rows] == ["purpose", "retired"]
    assert rows[0][1].startswith("Know why - and how long x") and rows[0][1].endswith("…")
    assert_chart(render_journey_chart(odd))


def test_the_axis_runs_from_the_journeys_start_to_the_end_of_today() -> None:
    year = JourneyLayout(dm_year())
    assert year.start == START.timestamp()
    assert year.end == end_of_day(START + timedelta(days=365)).timestamp()
    # Begun today: not an axis of one day, but weeks, today marked near the left.
    young = JourneyLayout(one_unrated())
    assert young.start == START.timestamp()
    assert young.end - young.start >= timedelta(days=28).total_seconds()
    assert young.x(young.today) < young.x0 + 0.1 * (young.x1 - young.x0)


def test_the_years_revisits_are_marked_3_6_and_12_months_after_the_start() -> None:
    zone = ZoneInfo("Europe/Berlin")
    layout = JourneyLayout(journey([Mark("purpose", START, 2)], days=400, zone="Europe/Berlin"))
    local = START.astimezone(zone)
    assert [(months, datetime.fromtimestamp(at, zone)) for months, at in layout.revisits] == [
        (3, local.replace(month=4)),  # across the change to summer time: the same local hour
        (6, local.replace(month=7)),
        (12, local.replace(year=2027)),
    ]
    assert [months for months, _ in JourneyLayout(one_unrated()).revisits] == []


def test_a_year_has_a_label_for_every_month() -> None:
    tz = ZoneInfo("America/New_York")
    start, end = START.timestamp(), end_of_day(START + timedelta(days=365)).timestamp()
    ticks = axis_ticks(start, end, tz, 640)
    assert [tick.label for tick in ticks] == [
        "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec", "Jan",
    ]  # fmt: skip
    assert [tick.year for tick in ticks if tick.year] == ["2026", "2027"]
    assert datetime.fromtimestamp(ticks[0].at, tz) == datetime(2026, 2, 1, tzinfo=tz)


@pytest.mark.parametrize(
    ("days", "labels"),
    [
        (28, ["19 Jan", "26 Jan", "2 Feb"]),  # weeks, from Mondays
        (5 * 365, ["Jul", "Jan", "Jul", "Jan"]),  # half years, for the first two
    ],
)
def test_labels_never_overlap(days: int, labels: list[str]) -> None:
    start = START.timestamp()
    end = start + timedelta(days=days).total_seconds()
    ticks = axis_ticks(start, end, UTC, 640)
    assert [tick.label for tick in ticks[: len(labels)]] == labels
    for a, b in pairwise(ticks):
        gap = (b.at - a.at) / (end - start) * 640
        assert gap >= font(drawing.SMALL_SIZE).getlength(max(a.label, b.label, key=len))


def test_clocks_that_disagree_still_draw() -> None:
    """Another process's clock may be ahead: data after "today", even a start after it."""
    ahead = journey([Mark("purpose", START + timedelta(days=3), 2)], [LeaningSample(START, 1)])
    assert_chart(render_journey_chart(ahead._replace(until=START - timedelta(days=2))))
    assert_chart(render_journey_chart(ahead._replace(until=START)))


@pytest.mark.parametrize("zone", ["America/Los_Angeles", "Asia/Kolkata", "Pacific/Chatham"])
def test_member_time_zone(zone: str) -> None:
    assert_chart(render_journey_chart(dense_year()._replace(zone=zone)))


def test_text_is_a_truetype_font_that_ships_with_pillow() -> None:
    face = font(20)
    assert isinstance(face, ImageFont.FreeTypeFont)
    assert face.getname() == ("Aileron", "Regular")


def test_readable_at_discords_preview_size() -> None:
    """Shown ~400 px wide, no text is smaller than 10 px, and comfort reads in greyscale."""
    shrink = 400 / drawing.WIDTH
    assert min(drawing.TITLE_SIZE, drawing.TEXT_SIZE, drawing.SMALL_SIZE) * shrink >= 10
    lightness = [0.299 * r + 0.587 * g + 0.114 * b for r, g, b in drawing.COMFORT]
    assert all(darker + 20 < lighter for darker, lighter in pairwise(lightness))


def test_the_png_is_a_small_palette_image() -> None:
    image = Image.open(io.BytesIO(render_journey_chart(five_years())))
    assert image.mode == "P"


def test_the_drawing_never_needs_matplotlib() -> None:
    code = (
        "import sys, cogs.core.charts.drawing as d, cogs.core.charts.worker as w; d.warm_up(); "
        "assert not any(m.split('.')[0] in ('matplotlib', 'numpy') for m in sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=120)


# --- the words -------------------------------------------------------------------------------


def test_words_for_one_unrated_reflection() -> None:
    assert describe_journey(one_unrated()) == (
        "1 reflection on 1 of 6 points, on 12 Jan 2026, not rated."
    )


def test_words_for_a_year_of_dm_replies() -> None:
    assert describe_journey(dm_year()) == (
        "18 reflections (12 of them revisits) on all 6 points, from 12 Jan 2026 to "
        "12 Jan 2027, none rated."
    )


def test_words_for_comfort_and_decisions() -> None:
    marks = [
        Mark("money", START, 2),
        Mark("purpose", START + timedelta(days=1), None),
        Mark("money", START + timedelta(days=100), 3),
        Mark("fame", START + timedelta(days=120), 5),
        Mark("money", START + timedelta(days=200), 4),
        Mark("fame", START + timedelta(days=220), 4),
    ]
    leanings = [
        LeaningSample(START + timedelta(days=2), -2),
        LeaningSample(START + timedelta(days=142), 1),
        LeaningSample(START + timedelta(days=300), 1),
    ]
    title = dict(POINTS)["money"]
    assert describe_journey(journey(marks, leanings, days=365)) == (
        "6 reflections (3 of them revisits) on 3 of 6 points, from 12 Jan 2026 to 12 Jan 2027, "
        f"5 rated. Comfort rose from 2 to 4 on {title}; you lean yes since 3 Jun 2026 "
        "(first: no)."
    )


def test_words_for_one_decision_alone() -> None:
    assert describe_journey(journey([], [LeaningSample(START, 0)], days=3)) == (
        "No reflections yet; 1 decision from 12 Jan 2026 to 15 Jan 2026. "
        "You are undecided since 12 Jan 2026."
    )


def test_no_words_for_nothing() -> None:
    assert describe_journey(journey([])) == ""


def test_words_fit_discords_alt_text() -> None:
    assert len(describe_journey(five_years())) <= 1024
