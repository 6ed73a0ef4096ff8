"""Every name the benchmarks take from the bot's framework (``cogs``), imported here and only
here: when cogs/ moves, this is the one file to follow it."""

from __future__ import annotations

from cogs.journal import PER_PAGE
from cogs.progress._chart import render_progress_chart
from cogs.progress._cog import chart_samples, member_zone

__all__ = ["PER_PAGE", "chart_samples", "member_zone", "render_progress_chart"]
