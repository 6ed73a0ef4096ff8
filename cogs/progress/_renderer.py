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
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import tzinfo

from cogs.progress._samples import ComfortSample, LeaningSample

log = logging.getLogger(__name__)


def _render(
    comfort: list[ComfortSample], leanings: list[LeaningSample], labels: dict[str, str], tz: tzinfo
) -> bytes:
    """Runs in the worker: matplotlib is imported there, never in the bot's process."""
    from cogs.progress._chart import render_progress_chart

    return render_progress_chart(comfort, leanings, labels=labels, tz=tz)


class ChartRenderer:
    """Owns the worker: started on first use, restarted if it dies, stopped with the cog."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None

    @property
    def executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # spawn, not fork: forking a process that runs threads (aiosqlite's) is unsafe.
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(max_workers=1, mp_context=context)
        return self._pool

    async def render(
        self,
        comfort: Sequence[ComfortSample],
        leanings: Sequence[LeaningSample],
        *,
        labels: Mapping[str, str],
        tz: tzinfo,
    ) -> bytes:
        loop = asyncio.get_running_loop()
        call = functools.partial(_render, list(comfort), list(leanings), dict(labels), tz)
        try:
            return await loop.run_in_executor(self.executor, call)
        except BrokenProcessPool:
            log.warning("the chart worker died; starting a new one")
            self._pool = None
            return await loop.run_in_executor(self.executor, call)

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)
