"""Every name the benchmarks take from the bot's framework (``cogs``), imported here and only
here: when cogs/ moves, this is the one file to follow it. (The chart's drawing, which loads
matplotlib, is imported by ``bench/journal.py`` alone, so other benchmarks stay light.)"""

from __future__ import annotations

from datetime import tzinfo

from advice.schedule import zone
from cogs.chat.fair_use import ANSWERS_PER_WINDOW, SLOW_DOWN
from cogs.core.charts.service import chart_samples
from cogs.core.conversation import Conversation
from cogs.core.text import clean_text
from cogs.journal import PER_PAGE
from db.progress import ProgressData


def member_zone(data: ProgressData) -> tzinfo:
    return zone(data.timezone)


__all__ = [
    "ANSWERS_PER_WINDOW",
    "PER_PAGE",
    "SLOW_DOWN",
    "Conversation",
    "chart_samples",
    "clean_text",
    "member_zone",
]
