"""What a chart is drawn from: plain tuples, importable without matplotlib.

The bot builds these; only the chart worker process imports matplotlib (``drawing.py``).
"""

from datetime import datetime
from typing import NamedTuple


class ComfortSample(NamedTuple):
    """One reflection's "how well can you live with this?" rating for one point.

    Tuples, not dataclasses: a year of writing is a thousand of them per chart, built on the
    event loop and pickled to the chart worker.
    """

    slug: str  # point slug, e.g. "purpose"
    at: datetime  # aware UTC
    rating: int  # 1..5


class LeaningSample(NamedTuple):
    """Where the member leaned at one moment: -2 no … 2 yes."""

    at: datetime  # aware UTC
    leaning: int  # -2..2
