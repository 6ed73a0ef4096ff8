"""The one interface to charts: a member's progress in, a picture and its words out.

/progress and the year-end check-in both call ``Charts``; neither knows what a chart is drawn
from, which titles and zone apply, or that workers draw it.

    chart = await bot.charts.chart(data, content, member=member_id)  # None: nothing to show
    if chart is not None:
        files = [chart.file()]  # the PNG, with chart.description as its alt text
"""

import io
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

import discord

from advice.clock import Clock, SystemClock
from advice.content import Content
from advice.schedule import zone
from cogs.core.charts.describe import describe_journey
from cogs.core.charts.pool import RENDER_TIMEOUT_S, ChartRenderer
from cogs.core.charts.samples import Journey, LeaningSample, Mark
from db.progress import ProgressData

CHART_FILENAME = "progress.png"


@dataclass(frozen=True)
class Chart:
    """A member's chart: the PNG, and what it shows in a sentence or two."""

    png: bytes
    description: str

    def file(self) -> discord.File:
        """The attachment, described for screen readers (Discord's alt text)."""
        return discord.File(
            io.BytesIO(self.png), CHART_FILENAME, description=self.description or None
        )


def zone_name(tz: tzinfo) -> str:
    if isinstance(tz, ZoneInfo) and tz.key:
        return tz.key
    if tz.utcoffset(None) == timedelta(0):
        return "UTC"
    raise ValueError(f"a chart is read in an IANA zone, not {tz!r}")


def journey_of(data: ProgressData, content: Content, *, now: datetime) -> Journey:
    """What the member's chart shows: every reflection, rated or not, every decision, from the
    journey's start to the end of their today.

    The right edge is the end of the member's day, not this instant, so the chart (and its
    cache key) stays the same all day until they write again."""
    tz = zone(data.timezone)
    today = now.astimezone(tz).date()
    until = datetime.combine(today + timedelta(days=1), time(), tz).astimezone(UTC)
    marks = [Mark(m.point, m.created_at, m.comfort or None) for m in data.marks]
    leanings = [LeaningSample(s.created_at, int(s.leaning)) for s in data.stances]
    instants = [m.at for m in marks] + [s.at for s in leanings]
    start = data.journey_started_at or min(instants, default=now)
    return Journey(
        points=[(point.slug, point.title) for point in content.points],
        marks=marks,
        leanings=leanings,
        start=start,
        until=until,
        zone=zone_name(tz),
    )


class Charts(ChartRenderer):
    """The bot's chart workers, asked for charts of members' progress."""

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        size: int | None = None,
        render_timeout_s: float = RENDER_TIMEOUT_S,
    ) -> None:
        super().__init__(size=size, render_timeout_s=render_timeout_s)
        self.clock: Clock = clock or SystemClock()

    async def chart(
        self, data: ProgressData, content: Content, *, member: int | None = None
    ) -> Chart | None:
        """The member's chart, or None when there is nothing to chart. With `member`, it is
        kept as their latest, so a repeat draws nothing."""
        journey = journey_of(data, content, now=self.clock.now())
        if journey.empty:
            return None
        png = await self.render(journey, member=member)
        return Chart(png, describe_journey(journey))
