"""Fair use: at most ten answers a minute to one member, then one note, then quiet.

Kept in memory on purpose: it protects the bot's request budget from one member's burst, and
a restart forgetting a minute of it costs nothing.
"""

from collections import OrderedDict, deque
from datetime import datetime, timedelta
from enum import Enum

ANSWERS_PER_WINDOW = 10
WINDOW = timedelta(minutes=1)
TRACKED_MEMBERS = 10_000  # a bound on memory; the least recently heard go first

SLOW_DOWN = (
    "You're writing faster than I can think! I'll answer again in a minute; nothing you "
    "wrote meanwhile is kept."
)


class Turn(Enum):
    ANSWER = "answer"  # answer this message
    SLOW_DOWN = "slow down"  # answer with the note, once per window
    QUIET = "quiet"  # say nothing until the window passes


class FairUse:
    def __init__(self) -> None:
        self._answers: OrderedDict[int, deque[datetime]] = OrderedDict()
        self._warned: dict[int, datetime] = {}

    def turn(self, member: int, now: datetime) -> Turn:
        answers = self._answers.pop(member, deque())
        while answers and now - answers[0] >= WINDOW:
            answers.popleft()
        self._answers[member] = answers
        while len(self._answers) > TRACKED_MEMBERS:
            forgotten, _ = self._answers.popitem(last=False)
            self._warned.pop(forgotten, None)
        if len(answers) < ANSWERS_PER_WINDOW:
            answers.append(now)
            self._warned.pop(member, None)
            return Turn.ANSWER
        warned = self._warned.get(member)
        if warned is not None and now - warned < WINDOW:
            return Turn.QUIET
        self._warned[member] = now
        return Turn.SLOW_DOWN
