"""Discord's global request limit, shared by every timed job and every process of the bot.

The slots are reserved in one database row (db.jobs.reserve_slots), about a second's worth at
a time while the requests go out, so two processes, or check-ins and weekly posts in one
process, never add up to more than the limit, and one that is busy claiming or preparing
leaves the others the whole of it meanwhile.
"""

import asyncio
import contextlib
import math
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta

from db import Database
from db.jobs import reserve_slots

PACE_KEY = "pace:discord-global"
# Below the limit, so the jitter of real requests never puts 51 into one second.
PACE_HEADROOM = 0.97
BACKOFF_FIRST = timedelta(minutes=1)
BACKOFF_MAX = timedelta(hours=1)
# How much of the shared pace a process reserves at once: a second's worth, the next one
# reserved while half of it is still to go, so no request waits on the database.
RESERVE_SECONDS = 1.0
# How late a process may still use its last reserved slots, in seconds. Used late by d, they
# overlap the next holder's by d * pace requests, which stays within the headroom's slack
# (3%) for d up to 0.03 s at any rate; a third of that keeps a margin for the jitter of real
# requests. At Discord's 50/s half a slot's gap is more (10.3 ms) and is kept: that rule
# gives 0 429s there. At a lifted limit slots are 0.1 ms apart, and half a gap would have
# every send that the event loop delays reserve afresh: a transaction per send.
LATE_SECONDS = 0.01

Reserve = Callable[[int], Awaitable[float]]


class Pacer:
    """Request start times at most `per_second` apart.

    Each caller takes the next time when the caller before it has gone, so requests stay
    evenly spaced even when the event loop runs late: a late one starts now and the rest
    follow it, never a burst.

    With `reserve`, only the times it reserved are used: it is asked for up to a second's worth
    of the requests announced with `expect` (never more, so nothing reserved goes unused), the
    next lot while half of the current one is still to go, so the lot is there before it is
    needed. Slots whose time passed unused (the event loop was busy) are reserved again, never
    used late in another process's time. A reservation that fails (StorageUnavailable) fails
    that wait and every later one.
    """

    def __init__(self, start: float, per_second: float, *, reserve: Reserve | None = None) -> None:
        self._next = start
        self._gap = 1 / per_second
        self._late = max(self._gap / 2, LATE_SECONDS)
        self._reserve = reserve
        self._left: float = math.inf if reserve is None else 0  # slots reserved, not used yet
        self._end = math.inf  # when the slots reserved run out
        self._chunk = max(1, int(per_second * RESERVE_SECONDS))
        self._owed = 0  # requests announced and not reserved yet
        self._ahead: asyncio.Task[tuple[float, int]] | None = None
        self._failed: BaseException | None = None
        self._lock = asyncio.Lock()

    def expect(self, requests: int) -> None:
        """Announce requests to come (what is reserved ahead for them)."""
        self._owed += requests

    async def wait(self) -> None:
        # The lock is held through the sleep: each caller's time is taken when the one before
        # it has gone, from the clock as it is then. Times handed out ahead to every caller of
        # a batch at once would, after the event loop stalled (a busy machine, a long
        # statement), all be past together and go out as one burst.
        async with self._lock:
            while True:
                arrived = time.time()
                # A caller a little late for the next time (a batch waiting on the last answer
                # of the one before) keeps it, as one woken a little late does.
                late_by = arrived - self._next
                at = self._next if 0 <= late_by < self._late else max(self._next, arrived)
                if self._left > 0 and at >= self._last_usable():
                    # Too late for what is left of our slots (the event loop was busy): those
                    # times are past, and later ones are another process's. Reserve afresh.
                    self._owed += int(self._left)
                    self._left = 0
                while self._left <= 0:
                    start, count = await self._next_slots()
                    at = max(start, time.time())
                    if at < start + (count - 1) * self._gap + self._late:
                        self._left, self._end = count, start + count * self._gap
                    else:  # reserved ahead, and its times passed before it was needed
                        self._owed += count
                if (
                    self._reserve is not None
                    and self._ahead is None
                    and self._owed > 0
                    and self._left - 1 <= self._chunk // 2
                ):
                    self._ahead = asyncio.create_task(self._take(min(self._chunk, self._owed)))
                await asyncio.sleep(max(0.0, at - time.time()))
                now = time.time()
                if now >= self._last_usable():
                    continue  # the event loop stalled past our last slot: reserve afresh
                if now - max(at, arrived) >= self._late:
                    # The event loop stalled: the times start again a gap from now. (The
                    # request before, let go on time, may have been held up too and go out
                    # with this one: two at once, then the pace, stays within the limit;
                    # putting this one back a gap would lose that gap at every stall.)
                    self._next = now + self._gap
                else:  # woken a little late (timers): the next keeps its time, or every
                    # such delay would be lost from the pace
                    self._next = at + self._gap
                self._left -= 1
                return

    def _last_usable(self) -> float:
        """The latest time our reserved slots may still be used (LATE_SECONDS)."""
        return self._end - self._gap + self._late

    async def close(self) -> None:
        """Settle a reservation still on its way (its slots go unused)."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            with contextlib.suppress(Exception):  # nothing waits on it any more
                await ahead

    async def _next_slots(self) -> tuple[float, int]:
        if self._failed is not None:
            raise self._failed
        ahead, self._ahead = self._ahead, None
        try:
            if ahead is not None:
                return await ahead
            return await self._take(max(1, min(self._chunk, self._owed)))
        except Exception as error:
            self._failed = error
            raise

    async def _take(self, count: int) -> tuple[float, int]:
        if self._reserve is None:  # unreachable: without it, every slot is ours
            raise RuntimeError("a pacer without reservations ran out of slots")
        self._owed = max(0, self._owed - count)
        return await self._reserve(count), count


def job_pace(requests_per_second: float) -> float:
    """Requests per second a timed job may send, a little under Discord's limit."""
    return requests_per_second * PACE_HEADROOM


async def reserve(database: Database, requests: int, *, per_second: float) -> Pacer:
    """A batch's share of Discord's global limit, agreed with every other process."""
    return Pacer(await _reserve(database, requests, per_second), per_second)


def shared_pacer(database: Database, *, per_second: float) -> Pacer:
    """A pacer that reserves its slots with every other process as the requests go out."""

    async def take(count: int) -> float:
        return await _reserve(database, count, per_second)

    return Pacer(0.0, per_second, reserve=take)


async def _reserve(database: Database, requests: int, per_second: float) -> float:
    async with database.transaction() as session:
        return await reserve_slots(
            session, PACE_KEY, requests, per_second=per_second, wall_now=time.time()
        )


def backoff(attempts: int) -> timedelta:
    """How long a job waits after a failed attempt: doubling from a minute, up to an hour."""
    return min(BACKOFF_FIRST * (1 << min(max(attempts - 1, 0), 16)), BACKOFF_MAX)
