"""Every name the benchmarks take from the bot's framework (``cogs``), imported here and only
here: when cogs/ moves, this is the one file to follow it. (The chart's drawing, which loads
Pillow, is imported by ``bench/journal.py`` and ``bench/charts.py`` alone, so other benchmarks
stay light.)"""

from __future__ import annotations

from cogs.core.charts.service import journey_of
from cogs.journal import PER_PAGE

__all__ = ["PER_PAGE", "journey_of"]
