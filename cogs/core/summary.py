"""The /progress embed: coverage, consistency, then-vs-now and the decision trend."""

from collections import defaultdict
from datetime import datetime

import discord

from advice.content import Content
from advice.progress import consistency, coverage, decision_trend, then_vs_now
from cogs.core.charts.service import CHART_FILENAME, Chart
from db.journal import Mark
from db.progress import ProgressData

FIELD_MAX = 1024
FOOTER_MAX = 2048


def _day(at: datetime) -> str:
    return f"<t:{int(at.timestamp())}:d>"


def _rating(value: int | None) -> str:
    return f"{value}/5" if value else "no rating"


def progress_embed(
    content: Content, data: ProgressData, *, now: datetime, chart: Chart | None = None
) -> discord.Embed:
    """Coverage, consistency, then-vs-now and the decision trend; with `chart`, the picture
    of the journey and, under it, what it shows in words (for those who cannot see it)."""
    covered = {mark.point for mark in data.marks}
    embed = discord.Embed(title="Your progress", colour=discord.Colour.blurple())
    embed.description = f"**Points reflected on:** {coverage(covered, content.slugs).bar()}"
    if data.journey_started_at and data.marks:
        share = consistency([m.created_at for m in data.marks], data.journey_started_at, now)
        embed.description += (
            f"\n**Consistency:** you wrote in {share:.0%} of the weeks since you began "
            f"({_day(data.journey_started_at)}). No streaks to keep; come back when it helps."
        )
    by_point: dict[str, list[Mark]] = defaultdict(list)
    for mark in data.marks:
        by_point[mark.point].append(mark)
    history = {
        slug: [(m.created_at, m.comfort, data.texts[m.id]) for m in ms if m.id in data.texts]
        for slug, ms in by_point.items()
    }
    titles = {point.slug: point.title for point in content.points}
    for pair in then_vs_now(history, order=[*content.slugs, *sorted(set(history) - set(titles))]):
        value = (
            f"**Then** ({_day(pair.then.at)}, {_rating(pair.then.comfort)}): {pair.then.opening}\n"
            f"**Now** ({_day(pair.now.at)}, {_rating(pair.now.comfort)}): {pair.now.opening}"
        )
        name = f"Then vs now · {titles.get(pair.slug, pair.slug)}"
        if len(embed.fields) < 20:
            embed.add_field(name=name[:256], value=value[:FIELD_MAX], inline=False)
    trend = decision_trend([(s.created_at, s.leaning) for s in data.stances])
    embed.add_field(
        name="Where you lean",
        value=trend[:FIELD_MAX] + "\nRecord today with `/decide`.",
        inline=False,
    )
    if chart is not None:
        embed.set_image(url=f"attachment://{CHART_FILENAME}")
        embed.set_footer(text=chart.description[:FOOTER_MAX])
    return embed


def start_message(content: Content) -> str:
    first = content.points[0]
    return (
        "Nothing to chart yet: your progress starts with your first reflection. "
        f"Read the first point with `/advice {first.slug}` and press Reflect, "
        "or record where you stand today with `/decide`."
    )
