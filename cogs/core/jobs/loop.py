"""The loop that drives timed jobs (check-ins, weekly posts): tick, sleep, survive anything.

Not discord.ext.tasks: its loop stops on any exception it was not told to expect, and a
timed job must never stop for good because one tick failed. This one logs the failure and
ticks again; it can be woken early (the sandbox moves time), and each tick runs alone, so a
test's explicit tick and the loop's own never overlap within a process.

While the database is unavailable it says so once (not a traceback a tick), tries again every
few seconds rather than at its interval, so delivery resumes soon after the database returns,
and says when it is back.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime

from advice.clock import Clock
from db import StorageUnavailable

log = logging.getLogger(__name__)

HEARTBEAT_EVERY_TICKS = 40  # an "alive" line every ~10 minutes at the default 15 s
STORAGE_RETRY_SECONDS = 2.0  # while the database is unavailable, at most this between tries


class TimedLoop:
    def __init__(
        self,
        name: str,
        tick: Callable[[], Awaitable[int]],
        *,
        clock: Clock,
        every: float | None,
    ) -> None:
        self.name = name
        self._tick = tick
        self._clock = clock
        self._every = every
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self.last_tick_at: datetime | None = None  # the injected clock's time of the last tick
        self.last_success: float | None = None  # wall time (Unix) a tick last finished
        self.failures = 0  # ticks that raised, storage_failures of them for want of storage
        self.storage_failures = 0
        self._storage_lost_at: float | None = None  # monotonic, while storage is unavailable
        self.stopping = False  # a tick's work checks this between batches

    def start(self) -> None:
        """Tick now and every `every` seconds; with `every=None` only explicit ticks run."""
        if self._task is None and self._every is not None:
            self._task = asyncio.create_task(self._run(), name=f"loop:{self.name}")

    def wake(self) -> None:
        """Tick now rather than at the next interval."""
        self._wake.set()

    async def stop(self, grace: float = 3.0) -> None:
        """Let a tick in progress finish (up to `grace` seconds), then stop.

        A tick cut short has sent things it has not recorded yet; they would be taken over
        after their lease and, if that is past Discord's nonce window, sent twice.
        """
        self.stopping = True
        task, self._task = self._task, None
        if task is None:
            return
        if self._lock.locked():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle(), grace)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _idle(self) -> None:
        async with self._lock:
            pass

    async def tick(self) -> int:
        """Run one tick now (waiting for one in progress); how much work it did."""
        async with self._lock:
            self.last_tick_at = self._clock.now()
            done = await self._tick()
            self.last_success = time.time()
            return done

    async def _run(self) -> None:
        ticks = 0
        while True:
            self._wake.clear()  # before the tick: a wake during it means "tick again"
            wait = self._every
            try:
                done = await self.tick()
            except StorageUnavailable:
                self.failures += 1
                self.storage_failures += 1
                wait = min(wait or STORAGE_RETRY_SECONDS, STORAGE_RETRY_SECONDS)
                if self._storage_lost_at is None:
                    self._storage_lost_at = time.monotonic()
                    log.warning("%s: storage unavailable; trying again every %g s", self.name, wait)
            except Exception:
                self.failures += 1
                log.exception("%s: a tick failed; the loop carries on", self.name)
            else:
                if self._storage_lost_at is not None:
                    lost_for = time.monotonic() - self._storage_lost_at
                    self._storage_lost_at = None
                    log.info("%s: storage is back after %.1f s", self.name, lost_for)
                if done:
                    log.info("%s: tick at %s did %d", self.name, self.last_tick_at, done)
            ticks += 1
            if ticks % HEARTBEAT_EVERY_TICKS == 0:
                log.info("%s: alive; last tick at %s", self.name, self.last_tick_at)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)
