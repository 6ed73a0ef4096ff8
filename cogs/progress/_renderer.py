"""Charts render in one worker process, never in the bot's process.

matplotlib, FreeType and PIL hold the GIL through long C calls; rendered in threads, twenty
concurrent /progress charts stalled the event loop for 56-108 ms at p99 (bench/journal.py).
In a separate process they cannot touch the loop at all. One worker is enough: a chart takes
about 0.1 s, and a queue of them costs members seconds, never the bot its heartbeat.
"""

import asyncio
import functools
import logging
import multiprocessing
import signal
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import tzinfo

from advice.errors import UserFacingError
from cogs.progress._samples import ComfortSample, LeaningSample

log = logging.getLogger(__name__)

RENDER_TIMEOUT_S = 30  # far above a real chart (~0.2 s); only a hung worker gets here


class ChartUnavailable(UserFacingError):
    def __init__(self) -> None:
        super().__init__("Your chart couldn't be drawn just now. Please try `/progress` again.")


def _ignore_interrupts() -> None:
    """Worker start-up: Ctrl-C is the bot's to handle; the bot stops its worker itself."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _render(
    comfort: list[ComfortSample], leanings: list[LeaningSample], labels: dict[str, str], tz: tzinfo
) -> bytes:
    """Runs in the worker: matplotlib is imported there, never in the bot's process."""
    from cogs.progress._chart import render_progress_chart

    return render_progress_chart(comfort, leanings, labels=labels, tz=tz)


class ChartRenderer:
    """Owns the worker: started on first use, replaced if it dies or hangs, stopped with the
    cog (and never restarted after that)."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._closed = False

    @property
    def executor(self) -> ProcessPoolExecutor:
        if self._closed:
            raise ChartUnavailable()
        if self._pool is None:
            # spawn, not fork: forking a process that runs threads (aiosqlite's) is unsafe.
            self._pool = ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_ignore_interrupts,
            )
        return self._pool

    async def render(
        self,
        comfort: Sequence[ComfortSample],
        leanings: Sequence[LeaningSample],
        *,
        labels: Mapping[str, str],
        tz: tzinfo,
    ) -> bytes:
        call = functools.partial(_render, list(comfort), list(leanings), dict(labels), tz)
        for attempt in (1, 2):
            pool = self.executor
            try:
                return await asyncio.wait_for(
                    asyncio.get_running_loop().run_in_executor(pool, call), RENDER_TIMEOUT_S
                )
            except (BrokenProcessPool, TimeoutError):
                log.warning("the chart worker died or hung (attempt %d); replacing it", attempt)
                self._discard(pool)
        raise ChartUnavailable()

    def _discard(self, pool: ProcessPoolExecutor) -> None:
        # Only the pool that failed: a concurrent render may already have made a new one.
        if self._pool is pool:
            self._pool = None
        # A hung worker ignores shutdown, and exit would wait for it: kill it (its render is
        # lost anyway). The executor has no public handle on its processes before 3.14.
        workers = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for worker in workers:
            worker.kill()

    async def close(self) -> None:
        self._closed = True
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)
