"""What a chart is drawn from: plain tuples, importable without the drawing library.

The bot builds a ``Journey`` from a member's progress (``service.py``); only the chart worker
process draws it (``drawing.py``), and the bot describes it in words (``describe.py``) from the
same tuple, so the picture and its text alternative cannot disagree.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

# The year's revisits: each point returns around 3, 6 and 12 months after the journey began.
REVISIT_MONTHS = (3, 6, 12)


class Mark(NamedTuple):
    """One reflection: its point, when, and its comfort rating if it has one.

    Tuples, not dataclasses: a few years of writing is a thousand of them per chart, built on
    the event loop.
    """

    slug: str  # point slug, e.g. "purpose"
    at: datetime  # aware UTC
    comfort: int | None  # 1..5 ("how well can you live with this?"); None: not rated (a DM reply)


class LeaningSample(NamedTuple):
    """Where the member leaned at one moment: -2 no … 2 yes."""

    at: datetime  # aware UTC
    leaning: int  # -2..2


class Journey(NamedTuple):
    """Everything one chart shows. Marks and leanings need not be sorted."""

    points: Sequence[tuple[str, str]]  # (slug, title) of each point, in the essay's order
    marks: Sequence[Mark]
    leanings: Sequence[LeaningSample]
    start: datetime  # when the journey began: the left edge, and where revisits count from
    until: datetime  # the end of the member's today: the right edge (later if data is later)
    zone: str  # the member's IANA zone: days, months and "today" are theirs

    @property
    def empty(self) -> bool:
        return not self.marks and not self.leanings
