"""Discord's global request limit, shared by every timed job and every process of the bot.

Each batch of sends reserves its slots in one database row (db.jobs.reserve_slots), so two
processes, or check-ins and weekly posts in one process, never add up to more than the limit.
"""

import asyncio
import time
from datetime import timedelta

from db import Database
from db.jobs import reserve_slots

PACE_KEY = "pace:discord-global"
# Below the limit, so the jitter of real requests never puts 51 into one second.
PACE_HEADROOM = 0.97
BACKOFF_FIRST = timedelta(minutes=1)
BACKOFF_MAX = timedelta(hours=1)


class Pacer:
    """Request start times at most `per_second` apart, from `start` on.

    Each caller takes the next time in the moment it asks, so requests stay evenly spaced
    even when callers arrive late: a late one starts now and the rest follow it, never a burst.
    """

    def __init__(self, start: float, per_second: float) -> None:
        self._next = start
        self._gap = 1 / per_second

    async def wait(self) -> None:
        at = max(self._next, time.time())
        self._next = at + self._gap
        await asyncio.sleep(max(0.0, at - time.time()))


def job_pace(requests_per_second: float) -> float:
    """Requests per second a timed job may send, a little under Discord's limit."""
    return requests_per_second * PACE_HEADROOM


async def reserve(database: Database, requests: int, *, per_second: float) -> Pacer:
    """A batch's share of Discord's global limit, agreed with every other process."""
    async with database.transaction() as session:
        start = await reserve_slots(
            session, PACE_KEY, requests, per_second=per_second, wall_now=time.time()
        )
    return Pacer(start, per_second)


def backoff(attempts: int) -> timedelta:
    """How long a job waits after a failed attempt: doubling from a minute, up to an hour."""
    return min(BACKOFF_FIRST * (1 << min(max(attempts - 1, 0), 16)), BACKOFF_MAX)
