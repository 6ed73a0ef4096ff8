"""Charts render in a small pool of worker processes, never in the bot's process.

Drawing holds the GIL through long C calls (Pillow's FreeType text, fills, PNG encoding; with
matplotlib, rendered in threads, twenty concurrent /progress charts stalled the event loop for
56-108 ms at p99, bench/journal.py). In separate processes they cannot touch the loop at all,
and with one per CPU the bot may use, concurrent charts are drawn side by side rather than one
after another.

Workers are plain subprocesses running ``cogs.core.charts.worker`` (see there for what they
speak), not multiprocessing's: a spawned multiprocessing child re-imports the parent's
``__main__``, bot.py, and with it discord.py, SQLAlchemy and every cog, which more than doubled
a worker's memory. The latest chart per member is kept (``cache.py``), so a repeated
/progress costs no drawing at all.
"""

import asyncio
import contextlib
import logging
import os
import sys
from pathlib import Path

from advice.errors import UserFacingError
from cogs.core.charts import worker as chart_worker
from cogs.core.charts.cache import ChartCache, chart_key
from cogs.core.charts.samples import Journey
from cogs.core.charts.worker import FRAME, PNG, READY, TAKEN, encode_request

log = logging.getLogger(__name__)

RENDER_TIMEOUT_S = 30  # far above a real chart (~30 ms); only a hung worker gets here
START_TIMEOUT_S = 60  # a worker starts in ~0.2 s; far longer only on a starved machine
STOP_TIMEOUT_S = 5  # for the chart a worker may be drawing when the bot stops
MAX_WORKERS = 4  # ~20 MiB each; past four CPUs, charts are not what members wait on
CACHE_BYTES = 4 * 2**20  # a chart is 15-40 KiB: the latest of a hundred-odd members
WORKER_COMMAND = (sys.executable, "-m", chart_worker.__name__)
ROOT = Path(__file__).resolve().parents[3]  # where `cogs` imports from, for `-m`


class ChartUnavailable(UserFacingError):
    def __init__(self) -> None:
        super().__init__("Your chart couldn't be drawn just now. Please try `/progress` again.")


class ChartFailed(RuntimeError):
    """The chart code raised inside a worker: a bug to log with its traceback, not an outage."""


class WorkerLost(ConnectionError):
    """The worker was gone before it took the request: no fault of the chart asked for."""


def pool_size() -> int:
    """One worker per CPU this process may use (what Python 3.13's os.process_cpu_count()
    counts), at least one and at most MAX_WORKERS."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        usable = os.cpu_count() or 1
    return max(1, min(usable, MAX_WORKERS))


class ChartRenderer:
    """The bot's charts: a pool of workers, all started by ``start()`` or on first use; one
    that dies or hangs is replaced; all stop with the bot, and nothing starts again after that.
    With the member's id, their latest chart is served again for as long as what it was drawn
    from is unchanged."""

    def __init__(
        self,
        *,
        size: int | None = None,
        render_timeout_s: float = RENDER_TIMEOUT_S,
        cache_bytes: int = CACHE_BYTES,
    ) -> None:
        self.size = max(1, size or pool_size())
        self.render_timeout_s = render_timeout_s
        self.cache = ChartCache(cache_bytes)
        self.drawn = 0  # charts drawn by a worker, not served from the cache
        self.busy = 0  # renders holding a worker right now
        self._idle: asyncio.Queue[_Worker] = asyncio.Queue()
        self._workers: set[_Worker] = set()
        self._drawing: dict[bytes, asyncio.Future[bytes]] = {}  # by chart key
        self._reaping: set[asyncio.Task[None]] = set()
        self._started = False
        self._closed = False

    def worker_pids(self) -> list[int]:
        """Live workers' process ids: an operator's handle on their memory, and the tests'."""
        return sorted(
            w.process.pid
            for w in self._workers
            if w.process is not None and w.process.returncode is None
        )

    async def render(self, journey: Journey, *, member: int | None = None) -> bytes:
        """The PNG of ``journey``; with the member's id, kept as their latest chart."""
        if self._closed:
            raise ChartUnavailable()
        request = encode_request(journey)
        if member is None:
            return await self._draw(request)
        key = chart_key(request)
        png = self.cache.get(member, key)
        if png is None:
            png = await self._draw_once(key, request)
            self.cache.put(member, key, png)
        return png

    async def _draw_once(self, key: bytes, request: bytes) -> bytes:
        """One drawing per chart however many ask for it at once (a double-clicked /progress).
        Shielded: one asker giving up does not take the chart from the others."""
        drawing = self._drawing.get(key)
        if drawing is None:
            drawing = self._drawing[key] = asyncio.ensure_future(self._draw(request))

            def done(task: asyncio.Future[bytes]) -> None:
                del self._drawing[key]
                if not task.cancelled():
                    task.exception()  # retrieved: an error nobody still awaits is no leak

            drawing.add_done_callback(done)
        return await asyncio.shield(drawing)

    async def _draw(self, request: bytes) -> bytes:
        retry = True  # the member's one retry, for a worker that dies or hangs on their chart
        # Every worker found dead, each replacement, the retry: then a broken install (workers
        # that never start) is reported rather than tried for ever.
        for _ in range(2 * self.size + 2):
            worker = await self._checkout()
            self.busy += 1
            try:
                if not await self._sound(worker):
                    continue  # died idle or starting: replaced, and not the member's retry
                async with asyncio.timeout(self.render_timeout_s):
                    png = await worker.draw(request)
            except ChartFailed:
                self._idle.put_nowait(worker)  # it said what went wrong: it is still sound
                raise
            except WorkerLost as error:
                log.warning("chart worker %s was gone before a chart: %r", worker.pid, error)
                self._replace(worker)
                continue
            except (OSError, EOFError, TimeoutError) as error:
                log.warning("chart worker died or hung on a chart (retry: %s): %r", retry, error)
                self._replace(worker)
                if not retry:
                    break
                retry = False
                continue
            except BaseException:
                # Cancelled mid-chart: the worker's reply may still come, and would be read
                # as the answer to the next request.
                self._replace(worker)
                raise
            finally:
                self.busy -= 1
            self._idle.put_nowait(worker)
            self.drawn += 1
            return png
        raise ChartUnavailable()

    async def _sound(self, worker: "_Worker") -> bool:
        """Whether a checked-out worker can draw: started and still alive. One that is not
        is replaced here, before a request is spent on it."""
        try:
            await worker.ready()
        except (OSError, EOFError, TimeoutError) as error:
            log.warning("chart worker failed to start: %r", error)
        else:
            if worker.alive():
                return True
            log.warning("chart worker %s had died while idle", worker.pid)
        self._replace(worker)
        return False

    async def _checkout(self) -> "_Worker":
        if self._closed:
            raise ChartUnavailable()
        if not self._started:
            self.start()
        worker = await self._idle.get()
        if self._closed:
            self._idle.put_nowait(worker)  # for the next one waiting, who will find it closed too
            raise ChartUnavailable()
        return worker

    def start(self) -> None:
        """Start the workers now rather than on the first chart (call with a running loop)."""
        if self._started or self._closed:
            return
        self._started = True
        for _ in range(self.size):  # they load side by side
            self._idle.put_nowait(self._launch())

    def _launch(self) -> "_Worker":
        worker = _Worker()
        self._workers.add(worker)
        return worker

    def _replace(self, worker: "_Worker") -> None:
        worker.kill()
        self._workers.discard(worker)
        reaping = asyncio.create_task(worker.stop())
        self._reaping.add(reaping)
        reaping.add_done_callback(self._reaping.discard)
        # Once closed, the dead one goes back instead, so a render still waiting wakes up
        # (and finds the pool closed).
        self._idle.put_nowait(worker if self._closed else self._launch())

    async def close(self) -> None:
        self._closed = True
        workers, self._workers = self._workers, set()
        await asyncio.gather(*(worker.stop() for worker in workers), *self._reaping)
        self.cache.clear()


class _Worker:
    """One worker process; a render holds it alone, from its request to the reply."""

    def __init__(self) -> None:
        self.process: asyncio.subprocess.Process | None = None
        self._started = asyncio.create_task(self._start())
        # A worker that fails to start is reported by the render that uses it, or by none.
        self._started.add_done_callback(lambda task: task.cancelled() or task.exception())

    async def _start(self) -> asyncio.subprocess.Process:
        self.process = await asyncio.create_subprocess_exec(
            *WORKER_COMMAND,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=ROOT,
        )
        if await _read_frame(_pipes(self.process)[1]) != READY:
            raise ConnectionError("the chart worker did not start")
        log.debug("chart worker %d ready", self.process.pid)
        return self.process

    async def ready(self) -> None:
        """Wait until it has loaded Pillow (not part of a chart's time), or say why not."""
        await asyncio.wait({self._started}, timeout=START_TIMEOUT_S)
        if not self._started.done():
            raise TimeoutError("the chart worker did not start in time")
        if self._started.cancelled():
            raise ConnectionError("the chart worker was stopped")
        self._started.result()  # raises what stopped it from starting

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def alive(self) -> bool:
        """False once the process has ended, even before the event loop has heard of it (a
        dead child stays a zombie until reaped); only for a started worker."""
        process = self._started.result()
        if process.returncode is not None or _pipes(process)[1].at_eof():
            return False
        try:
            with open(f"/proc/{process.pid}/stat", "rb") as stat:
                state = stat.read().rsplit(b")", 1)[1].split()[0]
        except FileNotFoundError:
            return False  # reaped already
        except OSError:
            return True  # no /proc (not Linux): returncode is all there is to go by
        return state not in (b"Z", b"X")

    async def draw(self, request: bytes) -> bytes:
        stdin, stdout = _pipes(self._started.result())
        try:
            stdin.write(FRAME.pack(len(request)) + request)
            await stdin.drain()
            taken = await _read_frame(stdout)
        except (OSError, EOFError) as error:
            raise WorkerLost(repr(error)) from error
        if taken != TAKEN:
            raise ConnectionError(f"the chart worker answered {taken[:1]!r} to a request")
        reply = await _read_frame(stdout)
        if reply[:1] == PNG:
            return reply[1:]
        raise ChartFailed(reply[1:].decode(errors="replace"))

    def kill(self) -> None:
        """For a worker that died, hung, or may yet answer a request nobody awaits."""
        self._started.cancel()
        if self.process is not None and self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()

    async def stop(self) -> None:
        """End of input ends a worker once its current chart is sent; a lingering one is
        killed, and so is one still starting (it has nothing to finish)."""
        if not self._started.done():
            self.kill()
        await asyncio.wait({self._started})
        process = self.process
        if process is None:
            return
        _pipes(process)[0].close()
        try:
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
        except TimeoutError:
            self.kill()
            await process.wait()


def _pipes(
    process: asyncio.subprocess.Process,
) -> tuple[asyncio.StreamWriter, asyncio.StreamReader]:
    if process.stdin is None or process.stdout is None:
        raise ConnectionError("the chart worker has no pipes")  # never: both are PIPE
    return process.stdin, process.stdout


async def _read_frame(stdout: asyncio.StreamReader) -> bytes:
    (length,) = FRAME.unpack(await stdout.readexactly(FRAME.size))
    return await stdout.readexactly(length)
