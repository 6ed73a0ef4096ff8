"""Benchmark the chart's drawing, old against new, each in its real worker process: time per
chart, the worker's memory after drawing, the PNG's size, how long a worker takes to start,
and twenty charts at once over a pool's worth of workers.

The old drawing is the chart package of ``--old`` (default: the last commit that drew with
matplotlib), taken out of git into a temporary directory and run from there as its worker
program (``python -m cogs.core.charts.worker``); the new one is this checkout's. Both are sent
the same members' data, each in the request format its worker reads (the old one charts only
rated reflections: it is sent those). Workers run one request at a time, as in the bot; a chart
is timed from its request written to its PNG read, as the bot's pool sees it.

1. Start: ``--starts`` workers started one after another, each timed from spawn to READY (what
   the first chart after the bot starts waits for), with the worker's memory once ready.
2. Drawing: per scenario (one unrated reflection; a year of 18 DM replies without ratings; a
   dense year of 300 rated reflections and 10 decisions; five years of 1,000 reflections and 50
   decisions), ``--charts`` charts after 3 untimed; the worker's resident memory (VmRSS) after
   each, its peak (VmHWM), and the PNG's size.
3. Twenty at once: ``--bursts`` bursts of 20 charts of different members over as many workers
   as the bot would start here (one per CPU, at most 4), each timed from the burst's start.
4. The libraries alone: a fresh interpreter's memory after importing what each drawing needs
   (matplotlib's figure and Agg canvas; Pillow's Image, ImageDraw, ImageFont): the floor
   under any chart drawn with it. Goal (issue 15): a worker <= 60 MiB after drawing.

Timings are only printed (medians, p99, ratios new/old).

Run from the repository root:

    .venv/bin/python bench/charts.py [--quick] [--old REV] [--charts 40] [--starts 5]
        [--bursts 5]

The old drawing needs matplotlib installed (``pip install matplotlib``): without it, or
without git, only the new one is measured, with a note.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import marshal
import os
import random
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from harness import goals
from harness.machine import code_version, load_average, machine_line
from harness.paths import REPO
from harness.processes import rss_bytes
from harness.stats import Stats, mib, percentile

from cogs.core.charts.pool import pool_size
from cogs.core.charts.samples import Journey, LeaningSample, Mark
from cogs.core.charts.worker import FRAME, encode_request

OLD_REV = "c9b1774"  # main before the journey chart: matplotlib, numpy
PACKAGE = ("cogs/__init__.py", "cogs/core/__init__.py", "cogs/core/charts")
READY, PNG, ERROR = b"R", b"P", b"E"
WARMUP = 3
BURST = 20
WORKER_GOAL_MIB = 60
START = datetime(2026, 1, 12, 9, 0, tzinfo=UTC)
POINTS = [
    ("purpose", "Know why you want it"),
    ("autonomy", "Who decides what you work on"),
    ("decades", "Science takes decades"),
    ("money", "Less money, longer horizon"),
    ("fame", "Fame is not the measure"),
    ("obscurity", "Out of the spotlight"),
]
LABELS = {  # the old chart's legend names
    "purpose": "Why you want it",
    "autonomy": "Who sets your work",
    "decades": "Science takes decades",
    "money": "Money and the long term",
    "fame": "Fame, likes and views",
    "obscurity": "Out of the spotlight",
}
LIBRARIES = {
    "matplotlib (Figure, Agg, dates)": (
        "import matplotlib.figure, matplotlib.backends.backend_agg, matplotlib.dates"
    ),
    "Pillow (Image, ImageDraw, ImageFont)": (
        "from PIL import Image, ImageDraw, ImageFont; ImageFont.load_default(size=20)"
    ),
}


# --- the members -------------------------------------------------------------------------------


def journey(
    marks: list[Mark], leanings: list[LeaningSample], days: int, zone: str = "UTC"
) -> Journey:
    until = START.replace(hour=0) + timedelta(days=days + 1)
    return Journey(POINTS, marks, leanings, START, until, zone)


def one_unrated(_: random.Random) -> Journey:
    return journey([Mark("purpose", START, None)], [], 0)


def dm_year(rng: random.Random) -> Journey:
    slugs = [slug for slug, _ in POINTS]
    marks = [Mark(slugs[i % 6], START + timedelta(days=7 * i), None) for i in range(6)]
    marks += [
        Mark(rng.choice(slugs), START + timedelta(days=90 + 22 * i, hours=rng.randrange(9)), None)
        for i in range(12)
    ]
    return journey(marks, [], 365, "Europe/Berlin")


def history(rng: random.Random, reflections: int, decisions: int, days: int) -> Journey:
    slugs = [slug for slug, _ in POINTS]
    minutes = days * 24 * 60
    marks = [
        Mark(
            rng.choice(slugs),
            START + timedelta(minutes=rng.randrange(minutes)),
            rng.randint(1, 5),
        )
        for _ in range(reflections)
    ]
    leanings = [
        LeaningSample(START + timedelta(minutes=rng.randrange(minutes)), rng.randint(-2, 2))
        for _ in range(decisions)
    ]
    return journey(marks, leanings, days, "America/New_York")


SCENARIOS: dict[str, Callable[[random.Random], Journey]] = {
    "one unrated reflection": one_unrated,
    "a year of 18 DM replies, unrated": dm_year,
    "dense year: 300 rated, 10 decisions": lambda rng: history(rng, 300, 10, 365),
    "five years: 1,000 rated, 50 decisions": lambda rng: history(rng, 1000, 50, 5 * 365),
}


def old_request(of: Journey) -> bytes:
    """The request the old worker reads: rated reflections only, legend labels, the zone."""
    return marshal.dumps(
        (
            [(m.slug, m.at.timestamp(), m.comfort) for m in of.marks if m.comfort],
            [(s.at.timestamp(), s.leaning) for s in of.leanings],
            LABELS,
            of.zone,
        ),
        2,
    )


# --- the drawings --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Drawing:
    name: str
    root: Path  # where `cogs` imports from
    encode: Callable[[Journey], bytes]
    env: dict[str, str] = field(default_factory=dict)


class Worker:
    """One worker process, driven as the bot's pool drives it."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, drawing: Drawing) -> tuple[Worker, float]:
        """A started worker, and the seconds from spawn to its READY."""
        started = time.perf_counter()
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "cogs.core.charts.worker",
            cwd=drawing.root,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env={**os.environ, **drawing.env},
        )
        worker = cls(process)
        if await worker._frame() != READY:
            raise SystemExit(f"{drawing.name}: the worker did not start")
        return worker, time.perf_counter() - started

    async def draw(self, request: bytes) -> bytes:
        assert self.process.stdin is not None
        self.process.stdin.write(FRAME.pack(len(request)) + request)
        await self.process.stdin.drain()
        while True:  # the new worker says TAKEN first; the old one does not
            reply = await self._frame()
            if reply[:1] == PNG:
                return reply[1:]
            if reply[:1] == ERROR:
                raise SystemExit(f"the chart failed:\n{reply[1:].decode(errors='replace')}")

    async def _frame(self) -> bytes:
        assert self.process.stdout is not None
        (length,) = FRAME.unpack(await self.process.stdout.readexactly(FRAME.size))
        return await self.process.stdout.readexactly(length)

    def memory(self) -> tuple[int, int]:
        """(VmRSS, VmHWM) in bytes."""
        return rss_bytes(self.process.pid) or 0, peak_bytes(self.process.pid)

    async def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), 10)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


def peak_bytes(pid: int) -> int:
    with contextlib.suppress(OSError), open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


@contextlib.asynccontextmanager
async def workers(drawing: Drawing, count: int) -> AsyncIterator[list[Worker]]:
    started = await asyncio.gather(*(Worker.start(drawing) for _ in range(count)))
    try:
        yield [worker for worker, _ in started]
    finally:
        await asyncio.gather(*(worker.stop() for worker, _ in started))


def old_drawing(rev: str, into: Path) -> Drawing | str:
    """The chart package at ``rev``, unpacked into ``into``; or why it cannot be measured."""
    try:
        archive = subprocess.run(
            ["git", "-C", str(REPO), "archive", "--format=tar", rev, *PACKAGE],
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as error:
        return f"git cannot give {rev}'s chart package ({error})"
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        if hasattr(tarfile, "data_filter"):  # Python 3.11.4+: no path outside `into`
            tar.extractall(into, filter="data")
        else:
            tar.extractall(into)  # only our own repository's files
    probe = subprocess.run(
        [sys.executable, "-c", "import matplotlib"], capture_output=True, check=False
    )
    if probe.returncode:
        return "matplotlib is not installed (pip install matplotlib to compare)"
    return Drawing(f"old ({rev})", into, old_request, {"OPENBLAS_NUM_THREADS": "1"})


# --- the measurements -----------------------------------------------------------------------------


@dataclass
class Result:
    starts: list[float] = field(default_factory=list)
    ready_rss: list[int] = field(default_factory=list)
    charts: dict[str, list[float]] = field(default_factory=dict)
    rss: dict[str, int] = field(default_factory=dict)  # the most after any chart of it
    peak: int = 0
    png: dict[str, int] = field(default_factory=dict)
    bursts: list[float] = field(default_factory=list)


async def measure(drawing: Drawing, args: argparse.Namespace) -> Result:
    result = Result()
    for _ in range(args.starts):
        worker, seconds = await Worker.start(drawing)
        result.starts.append(seconds)
        result.ready_rss.append(worker.memory()[0])
        await worker.stop()
    rng = random.Random(args.seed)
    async with workers(drawing, 1) as [worker]:
        for name, make in SCENARIOS.items():
            requests = [drawing.encode(make(rng)) for _ in range(WARMUP + args.charts)]
            times, most = [], 0
            for index, request in enumerate(requests):
                started = time.perf_counter()
                png = await worker.draw(request)
                if index >= WARMUP:
                    times.append(time.perf_counter() - started)
                    most = max(most, worker.memory()[0])
            result.charts[name], result.rss[name], result.png[name] = times, most, len(png)
        result.peak = worker.memory()[1]
    heavy = SCENARIOS["dense year: 300 rated, 10 decisions"]
    async with workers(drawing, pool_size()) as pool:
        idle: asyncio.Queue[Worker] = asyncio.Queue()
        for worker in pool:
            idle.put_nowait(worker)
        for _ in range(WARMUP):
            await pool[0].draw(drawing.encode(heavy(rng)))
        for _ in range(args.bursts):
            requests = [drawing.encode(heavy(rng)) for _ in range(BURST)]
            began = time.perf_counter()

            async def one(request: bytes, began: float = began) -> None:
                worker = await idle.get()
                try:
                    await worker.draw(request)
                finally:
                    idle.put_nowait(worker)
                result.bursts.append(time.perf_counter() - began)

            await asyncio.gather(*(one(request) for request in requests))
    return result


def library_floor(code: str) -> int | None:
    """A fresh interpreter's VmRSS after ``code``; None when it cannot run."""
    probe = (
        f"{code}\n"
        "import re; print(re.search(r'VmRSS:\\s+(\\d+)', open('/proc/self/status').read())[1])"
    )
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=False)
    return int(run.stdout.split()[-1]) * 1024 if run.returncode == 0 else None


# --- the report ----------------------------------------------------------------------------------


def charts_of(scenario: str) -> Callable[[Result], Sequence[float]]:
    return lambda result: result.charts[scenario]


def ratio(new: float, old: float | None) -> str:
    return f"{new / old:6.2f}x" if old else ""


def report(results: dict[str, Result], old: str | None) -> None:
    base = results.get(old) if old else None
    header = (
        f"  {'drawing':<16}{'what':<40}{'n':>4}{'p50 ms':>10}{'p99 ms':>10}{'x p50':>9}{'x p99':>9}"
    )
    print(f"\n1-3. time (x: new / old)\n{header}\n  {'-' * (len(header) - 2)}")
    rows: list[tuple[str, Callable[[Result], Sequence[float]]]] = [
        ("worker start, spawn to READY", lambda r: r.starts)
    ]
    rows += [(f"chart: {name}", charts_of(name)) for name in SCENARIOS]
    rows += [(f"{BURST} at once over {pool_size()} workers", lambda r: r.bursts)]
    for what, of in rows:
        for name, result in results.items():
            stats = Stats(of(result))
            line = f"  {name:<16}{what[:39]:<40}{stats.n:>4}{stats.p50:>10.1f}{stats.p99:>10.1f}"
            if base is not None and result is not base:
                old_stats = Stats(of(base))
                line += f"{ratio(stats.p50, old_stats.p50):>9}{ratio(stats.p99, old_stats.p99):>9}"
            print(line)

    header = f"  {'drawing':<16}{'what':<40}{'RSS MiB':>9}{'PNG KiB':>9}{'x RSS':>9}{'x PNG':>9}"
    print(f"\n2. memory and size (x: new / old)\n{header}\n  {'-' * (len(header) - 2)}")
    for what in ["ready, before any chart", *SCENARIOS]:
        for name, result in results.items():
            if what in SCENARIOS:
                rss, png = result.rss[what], result.png[what]
                old_rss = base.rss[what] if base else None
                old_png = base.png[what] if base else None
            else:
                rss, png = int(percentile(result.ready_rss, 0.5)), 0
                old_rss = int(percentile(base.ready_rss, 0.5)) if base else None
                old_png = None
            line = f"  {name:<16}{what[:39]:<40}{rss / 2**20:>9.1f}"
            line += f"{png / 1024:>9.1f}" if png else f"{'':>9}"
            if base is not None and result is not base:
                line += f"{ratio(rss, old_rss):>9}" + (f"{ratio(png, old_png):>9}" if png else "")
            print(line)
    for name, result in results.items():
        most = max(result.rss.values())
        met = "met" if most <= WORKER_GOAL_MIB * 2**20 else "NOT MET"
        goals.goal(
            f"chart worker after drawing, {name}",
            mib(most),
            f"<= {WORKER_GOAL_MIB} MiB",
            most <= WORKER_GOAL_MIB * 2**20,
        )
        print(
            f"  {name}: after drawing at most {mib(most)}, peak {mib(result.peak)} "
            f"(goal <= {WORKER_GOAL_MIB} MiB after drawing: {met})"
        )
    print("\n4. the libraries alone, in a fresh interpreter (the floor under any chart)")
    bare = library_floor("pass")
    print(f"  {'Python alone':<40}{mib(bare) if bare else 'n/a':>12}")
    for library, code in LIBRARIES.items():
        floor = library_floor(code)
        print(f"  {library:<40}{mib(floor) if floor else 'not installed':>12}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a run of a few seconds")
    parser.add_argument("--old", default=OLD_REV, help="the revision of the old drawing")
    parser.add_argument("--charts", type=int, default=40, help="timed charts per scenario")
    parser.add_argument("--starts", type=int, default=5, help="workers started, timed")
    parser.add_argument("--bursts", type=int, default=5, help=f"bursts of {BURST} charts")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.quick:
        args.charts, args.starts, args.bursts = 10, 2, 1
    return args


async def main() -> int:
    args = parse_args()
    began = time.perf_counter()
    print(machine_line())
    print(code_version())
    new = Drawing("new (this)", REPO, encode_request)
    results: dict[str, Result] = {}
    with tempfile.TemporaryDirectory(prefix="crossroads-charts-") as tmp:
        old = old_drawing(args.old, Path(tmp))
        if isinstance(old, str):
            print(f"old drawing skipped: {old}")
        else:
            # Taking turns would be fairer still; one after the other, each run is quieter.
            results[old.name] = await measure(old, args)
        results[new.name] = await measure(new, args)
        report(results, None if isinstance(old, str) else old.name)
    print(f"\n{load_average()}; total runtime {time.perf_counter() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
