"""Benchmark /progress and /journal among a million reflections: the queries on SQLite and
PostgreSQL, and /progress end to end through the bot in its own process.

Data: ``--rows`` reflections (a million) from about ten thousand members whose journals are of
realistic, varied sizes (log-normal, median 60 entries, up to 600; some decisions each),
spread over a year and interleaved in time as real writing is, with realistic text lengths
(log-normal, median 300 characters). Each member's texts are encrypted with their id bound
(see bench/harness/journals.py). The schema comes from the Alembic migrations; rows are
bulk-loaded (sqlite3 executemany, asyncpg COPY) and analyzed.

1. Queries, through the real ``Database`` and query functions, on each backend, each iteration
   a different member (so no figure is one hot member's cache): the /progress data query
   (``progress_data``) for members across the spread of journal sizes and for the heaviest
   1%, and the /journal list query (``list_page``) at a page drawn at random among the
   member's pages; against a ``SELECT 1`` round trip, all taking turns in every iteration.
   Goal (issue 8): p99 <= 10 ms. Also the chart drawn in this process
   (``render_journey_chart``) for a heavy member against an empty chart (bench/charts.py
   compares the drawing with the old one, in its worker process).
2. End to end on the SQLite file: Crossroads (``python bot.py run``) and, as the baseline, the
   bare discord.py bot (``bench/bare_bot.py``, whose /progress answers a fixed 40 KB file)
   against the emulator, timed from the emulator's side: the first /progress after the bot is
   ready (whatever starting the chart workers still costs), /progress alone (members never
   charted before), ``--bursts`` of twenty /progress at once (other such members), and a
   repeated /progress (the burst members again, one at a time); and /advice purpose probes
   sent every 50 ms while the bursts run, against 40 such probes idle (what a burst costs
   everyone else). Goals: twenty at once p99 <= 1.5 s; a repeated one p99 <= 50 ms.

Every answer is checked; errors, non-2xx answers and emulator violations make the run invalid
(exit 1). Timings are only printed (medians, p99, ratios against a baseline from the same run).

Run from the repository root:

    .venv/bin/python bench/journal.py [--quick] [--rows 1000000] [--iterations 300]
        [--backends sqlite,postgresql] [--bursts 5] [--no-e2e]

PostgreSQL comes from BENCH_DATABASE_URL (default
postgresql+asyncpg://postgres@127.0.0.1:5432/crossroads_bench) and is skipped, with a note,
when it is unreachable; the benchmark works in its own schema (``bench_journal``) and drops it
at the end. SQLite uses a temporary file.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import math
import os
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from harness import goals
from harness.bot_names import PER_PAGE, journey_of
from harness.bots import BARE, CROSSROADS, BotProcess
from harness.database import DEFAULT_PG_URL, postgres_dsn
from harness.emulator import FIRST_USER_ID, BenchEmulator, Place, Problems, build_world
from harness.journals import Journals, Writer, load_postgresql, load_sqlite
from harness.machine import load_average, machine_line
from harness.operations import advice, progress, record, stop_session
from harness.stats import Stats
from harness.texts import journal_size
from sqlalchemy import event, text
from sqlalchemy.engine import URL

from advice.content import Content, load_content
from cogs.core.charts.drawing import render_journey_chart
from db import Database
from db.crypto import TextCipher, generate_key, parse_key
from db.database import parse_database_url
from db.journal import list_page
from db.migrate import upgrade
from db.progress import ProgressData, progress_data

PG_SCHEMA = "bench_journal"
QUERY_GOAL_MS = 10.0
CHART_GOAL_MS = 300.0
BURST_GOAL_MS = 1500.0
REPEAT_GOAL_MS = 50.0
BURST = 20
PROBE_EVERY_S = 0.05
IDLE_PROBES = 40
WARMUP = 5
CHART_RUNS = 10
E2E_GUILDS = 20


# --- the data --------------------------------------------------------------------------------


def make_writers(rows: int, seed: int) -> list[Writer]:
    """Members until ``rows`` reflections: journal sizes log-normal, median 60, up to 600."""
    rng = random.Random(seed)
    writers: list[Writer] = []
    total = 0
    while total < rows:
        entries = min(rows - total, journal_size(rng, median=60, largest=600))
        writers.append(
            Writer(
                user_id=FIRST_USER_ID + len(writers),
                entries=entries,
                decisions=rng.randint(0, 20),
                timezone=rng.choice((None, "Europe/Berlin", "America/New_York", "Asia/Tokyo")),
            )
        )
        total += entries
    return writers


@dataclass(frozen=True)
class Picks:
    """Who each iteration asks about: a different member each time."""

    spread: list[Writer]  # across the journal sizes
    heavy: list[Writer]  # the heaviest 1%

    @classmethod
    def of(cls, writers: Sequence[Writer], iterations: int, seed: int) -> Picks:
        rng = random.Random(seed)
        by_size = sorted(writers, key=lambda w: w.entries)
        heavy = by_size[-max(1, len(by_size) // 100) :]
        rng.shuffle(heavy)
        spread = rng.sample(list(writers), k=min(len(writers), iterations + WARMUP))
        return cls(spread, heavy)


# --- the table ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One line of the table: samples in seconds, compared with a baseline from the same run."""

    name: str
    stats: Stats
    baseline: Row | None = None
    goal_ms: float | None = None  # on p99

    @property
    def met(self) -> bool | None:
        return None if self.goal_ms is None else self.stats.p99 <= self.goal_ms


def print_table(title: str, rows: Sequence[Row]) -> None:
    header = (
        f"{'name':<44}{'n':>5}{'p50 ms':>10}{'p99 ms':>10}  {'baseline':<28}"
        f"{'x p50':>7}{'x p99':>7}  {'goal p99':<12}met?"
    )
    print(f"\n{title}\n{header}\n{'-' * len(header)}")
    for row in rows:
        s = row.stats
        line = f"{row.name:<44}{s.n:>5}{s.p50:>10.2f}{s.p99:>10.2f}  "
        base = row.baseline
        if base is None:
            line += f"{'(baseline)':<28}{'':>7}{'':>7}  "
        else:
            b = base.stats
            line += f"{base.name[:27]:<28}{s.p50 / b.p50:>6.1f}x{s.p99 / b.p99:>6.1f}x  "
        if row.goal_ms is not None:
            line += f"{f'<= {row.goal_ms:g} ms':<12}{'yes' if row.met else 'NO'}"
        print(line.rstrip())
    missed = [row.name for row in rows if row.met is False]
    print("all goals met" if not missed else "missed: " + ", ".join(missed))
    for row in rows:
        if row.goal_ms is not None:
            name, figure = f"{title.split(',')[0]}: {row.name} p99", f"{row.stats.p99:.1f} ms"
            goals.goal(name, figure, f"<= {row.goal_ms:g} ms", row.met)


# --- part 1: the queries --------------------------------------------------------------------


async def timed(ops: Sequence[Callable[[int], Awaitable[object]]], n: int) -> list[Stats]:
    """Each ``op(i)`` for i in range(WARMUP + n), the ops taking turns in every iteration (so
    other work on the machine falls on all of them alike, the floor included); the last n
    timed."""
    for i in range(WARMUP):
        for op in ops:
            await op(i)
    samples: list[list[float]] = [[] for _ in ops]
    for i in range(WARMUP, WARMUP + n):
        for op, into in zip(ops, samples, strict=True):
            started = time.perf_counter()
            await op(i)
            into.append(time.perf_counter() - started)
    return [Stats(each) for each in samples]


def timed_renders(render: Callable[[], bytes], n: int) -> Stats:
    render()  # the first render loads fonts
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        render()
        samples.append(time.perf_counter() - started)
    return Stats(samples)


async def check_loaded(db: Database, cipher: TextCipher, writers: Sequence[Writer]) -> None:
    """The loaded rows are what the bot reads: a wrong schema guess fails here, loudly."""
    for writer in (writers[0], max(writers, key=lambda w: w.entries)):
        async with db.read() as session:
            data = await progress_data(session, cipher, user_id=writer.user_id)
            first = await list_page(
                session, cipher, user_id=writer.user_id, point=None, page=0, per_page=PER_PAGE
            )
        if len(data.marks) != writer.entries or first.total != writer.entries:
            raise SystemExit(
                f"load check failed for member {writer.user_id}: {writer.entries} loaded, "
                f"progress_data sees {len(data.marks)}, list_page {first.total}"
            )
        if len(data.stances) != writer.decisions:
            raise SystemExit(
                f"load check failed: {len(data.stances)} of {writer.decisions} decisions"
            )


async def measure_queries(
    db: Database,
    cipher: TextCipher,
    content: Content,
    writers: Sequence[Writer],
    iterations: int,
    seed: int,
    *,
    chart: bool,
) -> list[Row]:
    await check_loaded(db, cipher, writers)
    # The million rows this process made and keeps for its checks stay out of the collector's
    # way (a bot's process holds none of them), as bench/interactions.py does for its load.
    gc.collect()
    gc.freeze()
    try:
        return await _measure_queries(db, cipher, content, writers, iterations, seed, chart=chart)
    finally:
        gc.unfreeze()


async def _measure_queries(
    db: Database,
    cipher: TextCipher,
    content: Content,
    writers: Sequence[Writer],
    iterations: int,
    seed: int,
    *,
    chart: bool,
) -> list[Row]:
    picks = Picks.of(writers, iterations, seed)
    rng = random.Random(seed)

    async def select_one(_: int) -> None:
        async with db.read() as session:
            await session.execute(text("SELECT 1"))

    def progress_of(members: list[Writer]) -> Callable[[int], Awaitable[ProgressData]]:
        async def op(index: int) -> ProgressData:
            async with db.read() as session:
                member = members[index % len(members)]
                return await progress_data(session, cipher, user_id=member.user_id)

        return op

    pages = [(w, rng.randrange(math.ceil(w.entries / PER_PAGE))) for w in picks.spread]

    async def journal_page(index: int) -> None:
        member, page = pages[index % len(pages)]
        async with db.read() as session:
            await list_page(
                session, cipher, user_id=member.user_id, point=None, page=page, per_page=PER_PAGE
            )

    spread_sizes = sorted(w.entries for w in picks.spread)
    select, spread, heavy, page = await timed(
        [select_one, progress_of(picks.spread), progress_of(picks.heavy), journal_page],
        iterations,
    )
    floor = Row("SELECT 1 round trip", select)
    median = spread_sizes[len(spread_sizes) // 2]
    rows = [
        floor,
        Row(f"/progress data, varied members (median {median})", spread, floor, QUERY_GOAL_MS),
        Row(
            f"/progress data, heaviest 1% ({min(w.entries for w in picks.heavy)}+ entries)",
            heavy,
            floor,
            QUERY_GOAL_MS,
        ),
        Row("/journal list, varied members and pages", page, floor, QUERY_GOAL_MS),
    ]
    if chart:
        heaviest = max(writers, key=lambda w: w.entries)
        data = await progress_of([heaviest])(0)
        now = datetime.now(UTC)

        def render(of: ProgressData) -> bytes:
            return render_journey_chart(journey_of(of, content, now=now))

        empty = Row(
            "chart, empty (in this process)",
            timed_renders(lambda: render(ProgressData(None, None, [], {}, [])), CHART_RUNS),
        )
        rows += [
            empty,
            Row(
                f"chart, {heaviest.entries} marks (in this process)",
                timed_renders(lambda: render(data), CHART_RUNS),
                empty,
                CHART_GOAL_MS,
            ),
        ]
    return rows


def _use_schema(db: Database, schema: str) -> None:
    """Every pooled connection works in ``schema`` (set before SQLAlchemy inspects it)."""

    @event.listens_for(db.engine.sync_engine, "connect", insert=True)
    def _set_search_path(dbapi_connection: Any, _record: Any) -> None:
        autocommit = dbapi_connection.autocommit
        dbapi_connection.autocommit = True
        cursor = dbapi_connection.cursor()
        cursor.execute(f"SET SESSION search_path TO {schema}")
        cursor.close()
        dbapi_connection.autocommit = autocommit


def print_loaded(backend: str, seconds: float, size: str) -> None:
    print(f"\n{backend}: loaded in {seconds:.1f} s ({size})")


@contextlib.asynccontextmanager
async def sqlite_loaded(path: Path, journals: Journals) -> AsyncIterator[Database]:
    """The journals in a new SQLite file, through the bot's ``Database``."""
    db = Database(f"sqlite+aiosqlite:///{path}")
    try:
        await upgrade(db)
        await db.dispose()  # the loader wants the file to itself
        started = time.perf_counter()
        await asyncio.to_thread(load_sqlite, path, journals)
        size_mb = await asyncio.to_thread(os.path.getsize, path) / 1e6
        loaded = time.perf_counter() - started
        print_loaded(f"SQLite {sqlite3.sqlite_version}", loaded, f"{size_mb:.0f} MB")
        yield db
    finally:
        await db.dispose()


@contextlib.asynccontextmanager
async def postgresql_loaded(url: URL, journals: Journals) -> AsyncIterator[Database | None]:
    """The journals in PG_SCHEMA (made afresh, dropped after), through the bot's
    ``Database``; None when the server is unreachable."""
    try:
        connection = await asyncpg.connect(
            postgres_dsn(url), timeout=5, server_settings={"search_path": PG_SCHEMA}
        )
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        shown = url.render_as_string(hide_password=True)
        print(f"\nPostgreSQL skipped: {shown} is unreachable ({type(exc).__name__}: {exc})")
        yield None
        return
    try:
        await connection.execute(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE")
        await connection.execute(f"CREATE SCHEMA {PG_SCHEMA}")
        db = Database(url)
        _use_schema(db, PG_SCHEMA)
        try:
            await upgrade(db)
            started = time.perf_counter()
            await load_postgresql(connection, journals, schema=PG_SCHEMA)
            loaded = time.perf_counter() - started
            size = await connection.fetchval("SELECT pg_total_relation_size('reflections')")
            version = await connection.fetchval("SHOW server_version")
            print_loaded(
                f"PostgreSQL {version}", loaded, f"reflections {size / 1e6:.0f} MB with indexes"
            )
            yield db
        finally:
            await db.dispose()
    finally:
        await connection.execute(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE")
        await connection.close()


async def queries(
    args: argparse.Namespace, path: Path, journals: Journals, cipher: TextCipher, content: Content
) -> None:
    """Part 1 on each backend asked for: the SQLite file is kept for part 2."""
    writers, iterations, seed = journals.writers, args.iterations, args.seed
    if "sqlite" in args.backends:
        async with sqlite_loaded(path, journals) as db:
            rows = await measure_queries(db, cipher, content, writers, iterations, seed, chart=True)
        print_table(f"SQLite, {journals.rows:,} reflections", rows)
    if "postgresql" in args.backends:
        url = parse_database_url(os.environ.get("BENCH_DATABASE_URL") or DEFAULT_PG_URL)
        async with postgresql_loaded(url, journals) as pg:
            if pg is None:
                return
            rows = await measure_queries(
                pg, cipher, content, writers, iterations, seed, chart=False
            )
        print_table(f"PostgreSQL, {journals.rows:,} reflections", rows)


# --- part 2: /progress end to end -----------------------------------------------------------


@dataclass
class EndToEnd:
    first: list[float] = field(default_factory=list)  # the first /progress after start
    alone: list[float] = field(default_factory=list)
    burst: list[float] = field(default_factory=list)
    repeated: list[float] = field(default_factory=list)
    idle_probe: list[float] = field(default_factory=list)
    busy_probe: list[float] = field(default_factory=list)
    problems: Problems = field(default_factory=Problems)


class Prober:
    """/advice purpose every PROBE_EVERY_S while something else runs, each time from the next
    member: what that something costs every other member."""

    def __init__(self, emulator: BenchEmulator, kind: str, members: list[Place]) -> None:
        self.emulator = emulator
        self.kind = kind
        self.members = members
        self.sent = 0

    async def during(self, work: Awaitable[Any], into: list[float], problems: Problems) -> None:
        """Probe until ``work`` ends (and its probes are answered)."""
        task = asyncio.ensure_future(work)
        running = []
        while not task.done():
            member = self.members[self.sent % len(self.members)]
            self.sent += 1
            probe = record(advice(self.emulator, self.kind, member), into, problems)
            running.append(asyncio.create_task(probe))
            await asyncio.wait({task}, timeout=PROBE_EVERY_S)
        await task
        await asyncio.gather(*running)


async def end_to_end(
    kind: str,
    path: Path,
    key: str,
    writers: Sequence[Writer],
    args: argparse.Namespace,
    workdir: Path,
) -> EndToEnd:
    """/progress alone, in bursts of twenty, repeated; /advice probes idle and during a burst."""
    result = EndToEnd()
    emulator = BenchEmulator()
    await emulator.start()
    places = build_world(emulator, guilds=E2E_GUILDS, members=len(writers))
    # Members with a year of writing: 50 to 300 entries, each used once per kind of run.
    chosen = [places[n] for n, w in enumerate(writers) if 50 <= w.entries <= 300]
    random.Random(args.seed).shuffle(chosen)
    probers = [places[n] for n, w in enumerate(writers) if w.entries < 50]
    needed = 3 + args.alone + args.bursts * BURST
    if len(chosen) < needed:
        raise SystemExit(f"only {len(chosen)} members with 50-300 entries; {needed} needed")
    warm, alone = chosen[:3], chosen[3 : 3 + args.alone]
    bursts = [chosen[3 + args.alone + b * BURST :][:BURST] for b in range(args.bursts)]
    bot = await BotProcess.start(
        kind,
        emulator,
        workdir,
        database_url=f"sqlite+aiosqlite:///{path}",
        data_key=key,
        label=f"e2e-{kind}",
    )
    problems = result.problems
    try:
        await bot.wait_ready(emulator, timeout=300)
        # The first chart after start: whatever the chart workers still need to start costs
        # this member. The others warm up what the first left cold.
        await record(progress(emulator, kind, warm[0]), result.first, problems)
        for place in warm[1:]:
            await record(progress(emulator, kind, place), [], problems)
        problems.absorb(emulator.take_problems())
        for place in alone:
            await record(progress(emulator, kind, place), result.alone, problems)
        prober = Prober(emulator, kind, probers)
        await prober.during(asyncio.sleep(IDLE_PROBES * PROBE_EVERY_S), result.idle_probe, problems)
        for burst in bursts:
            work = asyncio.gather(
                *(record(progress(emulator, kind, p), result.burst, problems) for p in burst)
            )
            await prober.during(work, result.busy_probe, problems)
        for burst in bursts:
            for place in burst[: max(1, args.repeats // len(bursts))]:
                await record(progress(emulator, kind, place), result.repeated, problems)
        problems.absorb(emulator.take_problems())
    finally:
        await stop_session(bot, emulator, problems)
    return result


def e2e_rows(crossroads: EndToEnd, bare: EndToEnd) -> list[Row]:
    """Crossroads against the bare bot for /progress; each bot's probes during the bursts
    against its own probes idle."""
    rows = []
    for name, of, goal in (
        ("/progress first after start (1 a run)", "first", None),
        ("/progress alone", "alone", None),
        (f"/progress, {BURST} at once", "burst", BURST_GOAL_MS),
        ("/progress repeated (same member)", "repeated", REPEAT_GOAL_MS),
    ):
        base = Row(f"bare: {name}", Stats(getattr(bare, of)))
        rows += [base, Row(f"crossroads: {name}", Stats(getattr(crossroads, of)), base, goal)]
    for kind, result in (("bare", bare), ("crossroads", crossroads)):
        idle = Row(f"{kind}: /advice probe, idle", Stats(result.idle_probe))
        rows += [idle, Row(f"{kind}: /advice probe, during bursts", Stats(result.busy_probe), idle)]
    return rows


# --- main --------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a run under two minutes")
    parser.add_argument("--rows", type=int, default=1_000_000, help="reflections in all")
    parser.add_argument("--iterations", type=int, default=300, help="timed calls per query")
    parser.add_argument("--backends", default="sqlite,postgresql", help="comma-separated")
    parser.add_argument("--bursts", type=int, default=5, help=f"bursts of {BURST} /progress")
    parser.add_argument("--alone", type=int, default=10, help="/progress one at a time")
    parser.add_argument("--repeats", type=int, default=40, help="repeated /progress")
    parser.add_argument("--no-e2e", dest="e2e", action="store_false", help="queries only")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.quick:
        args.rows, args.iterations, args.bursts, args.alone, args.repeats = 100_000, 100, 2, 5, 20
    args.backends = [name.strip() for name in args.backends.split(",") if name.strip()]
    if unknown := set(args.backends) - {"sqlite", "postgresql"}:
        parser.error(f"unknown backends: {', '.join(sorted(unknown))}")
    if args.e2e and "sqlite" not in args.backends:
        parser.error("the end-to-end part runs on the SQLite file: keep sqlite in --backends")
    return args


async def main() -> int:
    args = parse_args()
    began = time.perf_counter()
    print(machine_line())
    content = load_content()
    key = generate_key()
    cipher = TextCipher(parse_key(key))
    started = time.perf_counter()
    writers = make_writers(args.rows, args.seed)
    journals = Journals(cipher, writers, content.slugs, end=datetime.now(UTC), seed=args.seed)
    sizes = sorted(w.entries for w in writers)
    print(
        f"data: {journals.rows:,} reflections of {len(writers):,} members (entries per member: "
        f"median {sizes[len(sizes) // 2]}, p99 {sizes[len(sizes) * 99 // 100]}, max {sizes[-1]}), "
        f"{sum(w.decisions for w in writers):,} decisions; encrypted in "
        f"{time.perf_counter() - started:.1f} s"
    )
    problems = Problems()
    with tempfile.TemporaryDirectory(prefix="crossroads-journal-") as tmp:
        workdir = Path(tmp)
        path = workdir / "journal.db"
        await queries(args, path, journals, cipher, content)
        if args.e2e:
            print(f"\n/progress end to end on the SQLite file; {load_average()}")
            bare = await end_to_end(BARE, path, key, writers, args, workdir)
            crossroads = await end_to_end(CROSSROADS, path, key, writers, args, workdir)
            print_table("end to end, timed from the emulator", e2e_rows(crossroads, bare))
            problems.absorb(bare.problems)
            problems.absorb(crossroads.problems)
            print(f"problems: {problems.summary()}")
    print(f"\n{load_average()}; total runtime {time.perf_counter() - began:.0f} s")
    if problems.count:
        print("INVALID: a run with errors is not a result")
        return 1
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(asyncio.run(main()))
