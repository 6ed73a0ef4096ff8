"""The one interface to charts: a member's progress in, a PNG out.

/progress and the year-end check-in both call ``Charts.progress_chart``; neither knows how
samples are built, which labels and zone apply, or that workers draw them.
"""

from advice.content import Content
from advice.schedule import zone
from cogs.core.charts.pool import ChartRenderer
from cogs.core.charts.samples import ComfortSample, LeaningSample
from db.progress import ProgressData

CHART_FILENAME = "progress.png"


def chart_samples(data: ProgressData) -> tuple[list[ComfortSample], list[LeaningSample]]:
    comfort = [ComfortSample(m.point, m.created_at, m.comfort) for m in data.marks if m.comfort]
    leanings = [LeaningSample(s.created_at, int(s.leaning)) for s in data.stances]
    return comfort, leanings


class Charts(ChartRenderer):
    """The bot's chart workers, asked for charts of members' progress."""

    async def progress_chart(
        self, data: ProgressData, content: Content, *, member: int | None = None
    ) -> bytes:
        """The member's chart; `member` keeps it as their latest, so a repeat draws nothing."""
        comfort, leanings = chart_samples(data)
        labels = {point.slug: point.label for point in content.points}
        return await self.render(
            comfort, leanings, labels=labels, tz=zone(data.timezone), member=member
        )
