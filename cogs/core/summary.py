"""A member's journey in words: the /progress embed, and the pieces the year's summary shares.

One renderer for both: each point shows what the member wrote first and latest (whole up to
a limit, else cut at a word), how often and how their comfort moved; the decisions show
where they stood and why. Whatever a member wrote, the result keeps to Discord's limits
(6,000 characters across a message's embeds, 1,024 a field): the longer texts give way first.
"""

from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime

import discord

from advice.content import Content, UnknownPoint
from advice.progress import (
    PointStory,
    Snapshot,
    consistency,
    coverage,
    decision_trend,
    excerpt,
    opening_words,
    point_stories,
)
from cogs.core.charts.service import CHART_FILENAME, Chart
from cogs.core.style import timestamp
from db.decisions import Stance
from db.progress import ProgressData

EMBED_TOTAL_MAX = 6000  # across every embed of one message
FIELD_MAX = 1024
FIELDS_MAX = 25
FOOTER_MAX = 2048
DESCRIPTION_MAX = 4096
QUOTE = "> "
# One excerpt, quote marks included. The most lets two, with their headers, fill a field;
# the least still says which reflection it was.
TEXT_MOST = 460
TEXT_LEAST = 60
POINT_FIELDS_MAX = 12  # the essay's six, and points since removed from it
REASON_WORDS = 90
DECISIONS_SHOWN = 10  # more: the first two and the latest eight, with a count between
CHART_WORDS = 600  # the chart in words under it; all of it is the image's alt text


def point_heading(content: Content, slug: str) -> str:
    try:
        return content.point(slug).heading
    except UnknownPoint:
        return slug  # a point removed from points.yaml: the entries are still the member's


def stories(content: Content, data: ProgressData, *, every_point: bool) -> list[PointStory]:
    """Each point in the essay's order (points since removed after): only those revisited,
    or with `every_point` each one written about (`data` read with every_point too)."""
    by_point: dict[str, list[tuple[datetime, int | None, str | None]]] = defaultdict(list)
    for mark in data.marks:
        by_point[mark.point].append((mark.created_at, mark.comfort, data.texts.get(mark.id)))
    order = [*content.slugs, *sorted(set(by_point) - set(content.slugs))]
    return point_stories(by_point, order, revisited_only=not every_point)[:POINT_FIELDS_MAX]


def point_field(content: Content, story: PointStory, limit: int) -> tuple[str, str]:
    """A field's name and value: the point, how often and how comfort moved; then the first
    and latest reflection, each at most `limit` characters."""
    name = point_heading(content, story.slug)
    if story.count > 1:
        name += f" · {story.count} reflections"
    if story.comfort:
        name += f" · comfort {story.comfort}"
    if story.latest is None:
        value = _snapshot("Once", story.first, limit)
    else:
        value = (
            _snapshot("First", story.first, limit) + "\n" + _snapshot("Latest", story.latest, limit)
        )
    return name[:256], value[:FIELD_MAX]


def _snapshot(label: str, snapshot: Snapshot, limit: int) -> str:
    rating = f" · {snapshot.comfort}/5" if snapshot.comfort else ""
    text = excerpt(snapshot.text, limit, quote=QUOTE) if snapshot.text.strip() else "> …"
    return f"**{label}**, {timestamp(snapshot.at)}{rating}\n{text}"


def decision_lines(stances: Sequence[Stance]) -> list[str]:
    """Each decision: its day, the leaning and the reason's opening; a long history keeps
    the first two and the latest, with how many are left out between."""
    lines = [
        f"{timestamp(s.created_at)} · **{s.leaning.label}**"
        + (f" · {opening_words(s.reason, REASON_WORDS)}" if s.reason else "")
        for s in stances
    ]
    if len(lines) <= DECISIONS_SHOWN:
        return lines
    left_out = len(lines) - DECISIONS_SHOWN
    return [*lines[:2], f"*… {left_out} more*", *lines[2 - DECISIONS_SHOWN :]]


def chart_words(chart: Chart) -> str:
    return opening_words(chart.description, CHART_WORDS)


def total_length(embeds: Sequence[discord.Embed]) -> int:
    return sum(len(embed) for embed in embeds)


def fit(build: Callable[[int], list[discord.Embed]]) -> list[discord.Embed]:
    """`build(limit)` with the longest excerpts that keep the message within Discord's total.

    Short texts are whole at any limit; only the longer ones are cut, all to the same length.
    """
    if total_length(embeds := build(TEXT_MOST)) <= EMBED_TOTAL_MAX:
        return embeds
    low, high = TEXT_LEAST, TEXT_MOST  # fits at `low` (else the least it is), not at `high`
    while high - low > 1:
        middle = (low + high) // 2
        if total_length(build(middle)) <= EMBED_TOTAL_MAX:
            low = middle
        else:
            high = middle
    return build(low)


def progress_embed(
    content: Content, data: ProgressData, *, now: datetime, chart: Chart | None = None
) -> discord.Embed:
    """Coverage, consistency, then-vs-now for each point revisited and the decision trend;
    with `chart`, the picture of the journey and, under it, what it shows in words (for
    those who cannot see it)."""
    covered = {mark.point for mark in data.marks}
    description = f"**Points reflected on:** {coverage(covered, content.slugs).bar()}"
    if data.journey_started_at and data.marks:
        share = consistency([m.created_at for m in data.marks], data.journey_started_at, now)
        description += (
            f"\n**Consistency:** you wrote in {share:.0%} of the weeks since you began "
            f"({timestamp(data.journey_started_at)}). No streaks to keep; come back when it "
            "helps."
        )
    revisited = stories(content, data, every_point=False)
    trend = decision_trend([(s.created_at, s.leaning) for s in data.stances])

    def build(limit: int) -> list[discord.Embed]:
        embed = discord.Embed(
            title="Your progress", description=description, colour=discord.Colour.blurple()
        )
        for story in revisited:
            name, value = point_field(content, story, limit)
            embed.add_field(name=name, value=value, inline=False)
        embed.add_field(
            name="Where you lean",
            value=trend[:FIELD_MAX] + "\nRecord today with `/decide`.",
            inline=False,
        )
        if chart is not None:
            embed.set_image(url=f"attachment://{CHART_FILENAME}")
            embed.set_footer(text=chart_words(chart))
        return [embed]

    return fit(build)[0]


def start_message(content: Content) -> str:
    first = content.points[0]
    return (
        "Nothing to chart yet: your progress starts with your first reflection. "
        f"Read the first point with `/advice {first.slug}` and press Reflect, "
        "or record where you stand today with `/decide`."
    )
