"""Every name the benchmarks take from the bot's framework (``cogs``), imported here and only
here: when cogs/ moves, this is the one file to follow it. (The chart's drawing, which loads
Pillow, is imported by ``bench/journal.py`` and ``bench/charts.py`` alone, so other benchmarks
stay light.)"""

from __future__ import annotations

from cogs.chat.fair_use import ANSWERS_PER_WINDOW, SLOW_DOWN
from cogs.core.charts.service import journey_of
from cogs.core.conversation import Conversation
from cogs.core.text import clean_text
from cogs.journal import PER_PAGE

__all__ = [
    "ANSWERS_PER_WINDOW",
    "PER_PAGE",
    "SLOW_DOWN",
    "Conversation",
    "clean_text",
    "journey_of",
]
