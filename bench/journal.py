"""Benchmark /journal and /progress for one member with a year of writing among many rows.

One member owns ``--member-rows`` real encrypted reflections (comfort-rated, spread over a
year across every point) and 50 decisions, scattered in time order among ``--rows``
reflections in all; the rest belong to filler members (100 rows each). The schema comes from
the Alembic migrations; rows are bulk-loaded (sqlite3 executemany, asyncpg COPY) and analyzed.
On SQLite and on PostgreSQL, through the real ``Database`` and query functions, it measures:

* the /journal list query (``list_page``: first page and a middle page, 5 per page) and the
  /progress data query (``progress_data``), against a ``SELECT 1`` round trip as the floor;
* the /progress chart (``render_progress_chart``) in the calling thread, against an empty
  chart;
* event-loop lag (a 10 ms ticker) while 20 /progress commands run at once (data query, embed
  on the loop, chart in the worker process as the cog does), against the idle ticker.

Goals: queries p99 <= 10 ms, chart p99 <= 300 ms, loop lag p99 <= 20 ms. Timings are only
printed (medians, p99 and ratios against a baseline from the same run), never asserted.

Run from the repository root:

    .venv/bin/python bench/journal.py [--rows 1000000] [--member-rows 1000]
        [--iterations 200] [--backends sqlite,postgresql]

PostgreSQL comes from BENCH_DATABASE_URL or TEST_DATABASE_URL (default
postgresql+asyncpg://postgres@127.0.0.1:5432/test) and is skipped, with a note, when it is
unreachable. The benchmark works in its own schema (``bench_journal``) and drops it at the
end; SQLite uses a temporary file.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import resource
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from sqlalchemy import event, text
from sqlalchemy.engine import URL

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from advice.content import Content, load_content
from advice.progress import Leaning
from cogs.progress._chart import render_progress_chart
from cogs.progress._cog import chart_samples, member_zone
from cogs.progress._render import progress_embed
from cogs.progress._renderer import ChartRenderer
from db import Database
from db.crypto import TextCipher, generate_key, parse_key
from db.database import parse_database_url
from db.journal import list_page
from db.migrate import upgrade
from db.progress import ProgressData, progress_data

T = TypeVar("T")

DEFAULT_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
PG_SCHEMA = "bench_journal"

MEMBER_ID = 900_000_000_000_000_001  # Discord-snowflake sized
MEMBER_TIMEZONE = "Europe/Berlin"
MEMBER_DECISIONS = 50
FILLER_FIRST_ID = 100_000_000_000_000_000
FILLER_ROWS_PER_USER = 100
FILLER_DECISIONS_PER_USER = 5
YEAR_START = datetime(2025, 1, 1, tzinfo=UTC)
YEAR = timedelta(days=365)

PER_PAGE = 5
WARMUP = 5
CHART_RUNS = 10
ALONE_RUNS = 5
CONCURRENT = 20
TICK_S = 0.010
IDLE_S = 1.0

QUERY_GOAL_MS = 10.0
CHART_GOAL_MS = 300.0
LAG_GOAL_MS = 20.0

REFLECTION_COLUMNS = ("user_id", "point", "kind", "body", "comfort", "created_at")
DECISION_COLUMNS = ("user_id", "leaning", "reason", "created_at")
USER_COLUMNS = ("id", "timezone", "created_at", "journey_started_at")

SENTENCES = (
    "I keep coming back to what a slower year would cost me.",
    "Talked it through with an old friend and felt lighter afterwards.",
    "The money question scares me less than it did in spring.",
    "Some days the quiet sounds like freedom, some days like giving up.",
    "I wrote down what I would regret at eighty and it was not the job.",
    "Still unsure, but the reasons sound more like mine than other people's now.",
    "Noticed I only want the title when I am tired.",
    "A good week: I did the work for its own sake and nobody saw it.",
)

Stamp = Callable[[datetime], object]


@dataclass(frozen=True)
class MemberEntry:
    point: str
    kind: str
    body: bytes
    comfort: int


@dataclass(frozen=True)
class MemberStance:
    leaning: int
    reason: bytes | None


@dataclass(frozen=True)
class Dataset:
    """Everything to load, encrypted once and streamed into each backend in time order."""

    rows: int
    member: list[MemberEntry]
    stances: list[MemberStance]
    filler_bodies: list[bytes]  # one ciphertext per filler member, reused for all their rows
    slugs: tuple[str, ...]

    def users(self, stamp: Stamp) -> Iterator[tuple[object, ...]]:
        started = stamp(YEAR_START)
        yield (MEMBER_ID, MEMBER_TIMEZONE, started, started)
        for index in range(len(self.filler_bodies)):
            yield (FILLER_FIRST_ID + index, None, started, started)

    def reflections(self, stamp: Stamp) -> Iterator[tuple[object, ...]]:
        """Round-robin over the filler members, the member's rows evenly among them."""
        step = YEAR / self.rows
        stride = self.rows // len(self.member)
        fillers = len(self.filler_bodies)
        for i in range(self.rows):
            at = stamp(YEAR_START + i * step)
            slot, offset = divmod(i, stride)
            if offset == stride // 2 and slot < len(self.member):
                entry = self.member[slot]
                yield (MEMBER_ID, entry.point, entry.kind, entry.body, entry.comfort, at)
                continue
            user, round_ = i % fillers, i // fillers
            kind = "first" if round_ < len(self.slugs) else "revisit"
            point = self.slugs[round_ % len(self.slugs)]
            body = self.filler_bodies[user]
            yield (FILLER_FIRST_ID + user, point, kind, body, 1 + i % 5, at)

    def decisions(self, stamp: Stamp) -> Iterator[tuple[object, ...]]:
        """Filler members' decisions, the member's evenly among them."""
        fillers = len(self.filler_bodies)
        total = fillers * FILLER_DECISIONS_PER_USER + len(self.stances)
        stride = total // len(self.stances)
        for i in range(total):
            at = stamp(YEAR_START + i * (YEAR / total))
            slot, offset = divmod(i, stride)
            if offset == 0 and slot < len(self.stances):
                stance = self.stances[slot]
                yield (MEMBER_ID, stance.leaning, stance.reason, at)
            else:
                yield (FILLER_FIRST_ID + i % fillers, int(Leaning.UNDECIDED), None, at)


def build_dataset(cipher: TextCipher, content: Content, rows: int, member_rows: int) -> Dataset:
    rng = random.Random(1)
    slugs = tuple(point.slug for point in content.points)
    comfort = dict.fromkeys(slugs, 3)
    seen: set[str] = set()
    member: list[MemberEntry] = []
    for index in range(member_rows):
        point = rng.choice(slugs)
        kind = "revisit" if point in seen else "first"
        seen.add(point)
        comfort[point] = max(1, min(5, comfort[point] + rng.choice((-1, 0, 0, 1))))
        words = " ".join(rng.sample(SENTENCES, k=rng.randint(2, 5)))
        body = cipher.encrypt(f"Entry {index}: {words}", owner_id=MEMBER_ID)
        member.append(MemberEntry(point, kind, body, comfort[point]))
    stances: list[MemberStance] = []
    leaning = 0
    for index in range(MEMBER_DECISIONS):
        leaning = max(-2, min(2, leaning + rng.choice((-1, 0, 1))))
        reason = cipher.encrypt(rng.choice(SENTENCES), owner_id=MEMBER_ID) if index % 2 else None
        stances.append(MemberStance(leaning, reason))
    fillers = max(1, (rows - member_rows) // FILLER_ROWS_PER_USER)
    filler_text = " ".join(SENTENCES[:4])
    filler_bodies = [
        cipher.encrypt(filler_text, owner_id=FILLER_FIRST_ID + index) for index in range(fillers)
    ]
    return Dataset(rows, member, stances, filler_bodies, slugs)


def _sqlite_stamp(at: datetime) -> str:
    # SQLAlchemy's SQLite DATETIME storage format (UTCDateTime stores naive UTC).
    return at.strftime("%Y-%m-%d %H:%M:%S.%f")


def _insert_sql(table: str, columns: Sequence[str]) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


def load_sqlite(path: Path, dataset: Dataset) -> None:
    """Bulk-load with the sqlite3 module: one transaction, no journal (a scratch file)."""
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode=OFF")
        connection.execute("PRAGMA synchronous=OFF")
        connection.execute("PRAGMA cache_size=-262144")  # 256 MB: the indexes stay in RAM
        connection.execute("BEGIN")
        connection.executemany(_insert_sql("users", USER_COLUMNS), dataset.users(_sqlite_stamp))
        connection.executemany(
            _insert_sql("reflections", REFLECTION_COLUMNS), dataset.reflections(_sqlite_stamp)
        )
        connection.executemany(
            _insert_sql("decisions", DECISION_COLUMNS), dataset.decisions(_sqlite_stamp)
        )
        connection.execute("COMMIT")
        connection.execute("ANALYZE")
    finally:
        connection.close()


async def load_postgresql(connection: asyncpg.Connection, dataset: Dataset) -> None:
    """Bulk-load with binary COPY on a raw asyncpg connection, in one transaction."""

    def same(at: datetime) -> datetime:
        return at

    async with connection.transaction():
        for table, columns, records in (
            ("users", USER_COLUMNS, dataset.users(same)),
            ("reflections", REFLECTION_COLUMNS, dataset.reflections(same)),
            ("decisions", DECISION_COLUMNS, dataset.decisions(same)),
        ):
            await connection.copy_records_to_table(
                table, records=records, columns=columns, schema_name=PG_SCHEMA
            )
    # VACUUM too, as autovacuum would have by now: it sets the visibility map that lets
    # PostgreSQL answer from an index alone (the page count, for one).
    await connection.execute("VACUUM (ANALYZE) users, reflections, decisions")


@dataclass(frozen=True)
class Row:
    """One line of the table: samples in ns, compared with a baseline from the same run."""

    name: str
    samples: Sequence[int]
    baseline: Row | None = None
    goal_ms: float | None = None  # on p99

    @property
    def p50(self) -> float:
        return statistics.median(self.samples) / 1e6

    @property
    def p99(self) -> float:
        if len(self.samples) < 2:
            return self.samples[0] / 1e6
        return statistics.quantiles(self.samples, n=100, method="inclusive")[98] / 1e6

    @property
    def met(self) -> bool | None:
        return None if self.goal_ms is None else self.p99 <= self.goal_ms


def print_table(title: str, rows: Sequence[Row]) -> None:
    header = (
        f"{'name':<34}{'n':>5}{'p50 ms':>9}{'p99 ms':>9}  {'baseline':<22}"
        f"{'base p50':>9}{'x p50':>8}{'base p99':>9}{'x p99':>8}  {'goal p99':<10}met?"
    )
    print(f"\n{title}\n{header}\n{'-' * len(header)}")
    for row in rows:
        line = f"{row.name:<34}{len(row.samples):>5}{row.p50:>9.2f}{row.p99:>9.2f}  "
        base = row.baseline
        if base is None:
            line += f"{'(baseline)':<22}{'':>9}{'':>8}{'':>9}{'':>8}  "
        else:
            line += (
                f"{base.name[:21]:<22}{base.p50:>9.2f}{row.p50 / base.p50:>7.1f}x"
                f"{base.p99:>9.2f}{row.p99 / base.p99:>7.1f}x  "
            )
        if row.goal_ms is not None:
            line += f"{f'<= {row.goal_ms:g} ms':<10}{'yes' if row.met else 'NO':<5}"
        print(line.rstrip())
    missed = [row for row in rows if row.met is False]
    verdict = "all goals met" if not missed else "missed: " + ", ".join(r.name for r in missed)
    print(verdict)


async def _timed_calls(op: Callable[[], Awaitable[object]], n: int) -> list[int]:
    for _ in range(WARMUP):
        await op()
    samples = []
    for _ in range(n):
        start = time.perf_counter_ns()
        await op()
        samples.append(time.perf_counter_ns() - start)
    return samples


def _timed_renders(render: Callable[[], bytes], n: int) -> list[int]:
    render()  # the first render loads fonts
    samples = []
    for _ in range(n):
        start = time.perf_counter_ns()
        render()
        samples.append(time.perf_counter_ns() - start)
    return samples


async def _lag_while(work: Awaitable[T]) -> tuple[T, list[int]]:
    """Run `work` beside a 10 ms ticker; return its result and each tick's lateness in ns."""
    lags: list[int] = []
    stop = asyncio.Event()

    async def tick() -> None:
        while not stop.is_set():
            expected = time.perf_counter_ns() + int(TICK_S * 1e9)
            await asyncio.sleep(TICK_S)
            lags.append(time.perf_counter_ns() - expected)

    ticker = asyncio.create_task(tick())
    try:
        result = await work
    finally:
        stop.set()
        await ticker
    return result, lags


async def measure(
    db: Database, cipher: TextCipher, content: Content, dataset: Dataset, iterations: int
) -> list[Row]:
    member_rows = len(dataset.member)
    labels = {point.slug: point.label for point in content.points}
    renderer = ChartRenderer()

    def render_here(data: ProgressData) -> bytes:
        comfort, leanings = chart_samples(data)
        return render_progress_chart(comfort, leanings, labels=labels, tz=member_zone(data))

    async with db.read() as session:
        first = await list_page(
            session, cipher, user_id=MEMBER_ID, point=None, page=0, per_page=PER_PAGE
        )
        data = await progress_data(session, cipher, user_id=MEMBER_ID)
    if first.total != member_rows or len(data.stances) != len(dataset.stances):
        raise SystemExit(f"load check failed: {first.total} entries, {len(data.stances)} stances")
    print(
        f"check: member has {first.total} entries ({first.count} pages), "
        f"{len(data.stances)} decisions, {len(data.texts)} texts decrypted for then-vs-now"
    )

    async def select_one() -> None:
        async with db.read() as session:
            await session.execute(text("SELECT 1"))

    def journal(page: int) -> Callable[[], Awaitable[None]]:
        async def op() -> None:
            async with db.read() as session:
                await list_page(
                    session, cipher, user_id=MEMBER_ID, point=None, page=page, per_page=PER_PAGE
                )

        return op

    async def progress() -> ProgressData:
        async with db.read() as session:
            return await progress_data(session, cipher, user_id=MEMBER_ID)

    async def progress_command() -> int:
        """The /progress cog minus Discord: data, embed on the loop, chart in the worker."""
        start = time.perf_counter_ns()
        data = await progress()
        progress_embed(content, data, now=datetime.now(UTC))
        comfort, leanings = chart_samples(data)
        await renderer.render(comfort, leanings, labels=labels, tz=member_zone(data))
        return time.perf_counter_ns() - start

    floor = Row("SELECT 1 round trip", await _timed_calls(select_one, iterations))
    middle = first.count // 2
    page_0 = Row(
        f"/journal page 0 ({PER_PAGE}/page)",
        await _timed_calls(journal(0), iterations),
        floor,
        QUERY_GOAL_MS,
    )
    page_mid = Row(
        f"/journal page {middle} of {first.count}",
        await _timed_calls(journal(middle), iterations),
        floor,
        QUERY_GOAL_MS,
    )
    query = Row(
        "/progress data query", await _timed_calls(progress, iterations), floor, QUERY_GOAL_MS
    )

    empty = ProgressData(None, None, [], {}, [])
    empty_chart = Row("empty chart", _timed_renders(lambda: render_here(empty), CHART_RUNS))
    chart = Row(
        f"chart ({member_rows} marks)",
        _timed_renders(lambda: render_here(data), CHART_RUNS),
        empty_chart,
        CHART_GOAL_MS,
    )

    await progress_command()  # start the chart worker, as the first /progress would
    alone = Row("/progress end to end alone", await _timed_calls(progress_command, ALONE_RUNS))
    _, idle_lags = await _lag_while(asyncio.sleep(IDLE_S))
    idle = Row("loop lag, idle ticker", idle_lags)
    latencies, busy_lags = await _lag_while(
        asyncio.gather(*(progress_command() for _ in range(CONCURRENT)))
    )
    busy = Row(f"loop lag, {CONCURRENT} x /progress", busy_lags, idle, LAG_GOAL_MS)
    burst = Row(f"/progress end to end, {CONCURRENT} at once", latencies, alone)
    await renderer.close()
    return [floor, page_0, page_mid, query, empty_chart, chart, idle, busy, alone, burst]


async def bench_sqlite(
    cipher: TextCipher, content: Content, dataset: Dataset, iterations: int
) -> None:
    with tempfile.TemporaryDirectory(prefix="crossroads-bench-") as tmp:
        path = Path(tmp) / "bench.db"
        db = Database(f"sqlite+aiosqlite:///{path}")
        try:
            await upgrade(db)
            await db.dispose()  # the loader wants the file to itself
            start = time.perf_counter()
            await asyncio.to_thread(load_sqlite, path, dataset)
            loaded = time.perf_counter() - start
            size_mb = path.stat().st_size / 1e6
            print(f"\nSQLite {sqlite3.sqlite_version}: loaded in {loaded:.1f} s ({size_mb:.0f} MB)")
            rows = await measure(db, cipher, content, dataset, iterations)
        finally:
            await db.dispose()
    print_table(f"SQLite — {_scale(dataset)}", rows)


def _use_schema(db: Database, schema: str) -> None:
    """Every pooled connection works in `schema` (set before SQLAlchemy inspects it)."""

    @event.listens_for(db.engine.sync_engine, "connect", insert=True)
    def _set_search_path(dbapi_connection: Any, _record: Any) -> None:
        autocommit = dbapi_connection.autocommit
        dbapi_connection.autocommit = True
        cursor = dbapi_connection.cursor()
        cursor.execute(f"SET SESSION search_path TO {schema}")
        cursor.close()
        dbapi_connection.autocommit = autocommit


async def bench_postgresql(
    url: URL, cipher: TextCipher, content: Content, dataset: Dataset, iterations: int
) -> None:
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        connection = await asyncpg.connect(
            dsn, timeout=5, server_settings={"search_path": PG_SCHEMA}
        )
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        shown = url.render_as_string(hide_password=True)
        print(f"\nPostgreSQL skipped: {shown} is unreachable ({type(exc).__name__}: {exc})")
        return
    try:
        await connection.execute(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE")
        await connection.execute(f"CREATE SCHEMA {PG_SCHEMA}")
        db = Database(url)
        _use_schema(db, PG_SCHEMA)
        try:
            await upgrade(db)
            start = time.perf_counter()
            await load_postgresql(connection, dataset)
            loaded = time.perf_counter() - start
            size_mb = await connection.fetchval("SELECT pg_total_relation_size('reflections')")
            version = await connection.fetchval("SHOW server_version")
            print(
                f"\nPostgreSQL {version}: loaded in {loaded:.1f} s "
                f"(reflections {size_mb / 1e6:.0f} MB with indexes)"
            )
            rows = await measure(db, cipher, content, dataset, iterations)
        finally:
            await db.dispose()
    finally:
        await connection.execute(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE")
        await connection.close()
    print_table(f"PostgreSQL — {_scale(dataset)}", rows)


def _scale(dataset: Dataset) -> str:
    return (
        f"{dataset.rows:,} reflections, member {len(dataset.member):,} of them "
        f"+ {len(dataset.stances)} decisions, {len(dataset.filler_bodies):,} filler members"
    )


def _load_average() -> str:
    # Other work on the machine shows up in the p99s; this says how much there was.
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min)"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="reflections in all")
    parser.add_argument("--member-rows", type=int, default=1_000, help="the member's share")
    parser.add_argument("--iterations", type=int, default=200, help="timed calls per query")
    parser.add_argument("--backends", default="sqlite,postgresql", help="comma-separated")
    args = parser.parse_args()
    args.backends = [name.strip() for name in args.backends.split(",") if name.strip()]
    if unknown := set(args.backends) - {"sqlite", "postgresql"}:
        parser.error(f"unknown backends: {', '.join(sorted(unknown))}")
    if not 0 < args.member_rows < args.rows:
        parser.error("--member-rows must be positive and less than --rows")
    if args.iterations < 2:
        parser.error("--iterations must be at least 2")
    return args


async def main() -> None:
    args = parse_args()
    started = time.perf_counter()
    print(
        f"machine: {len(os.sched_getaffinity(0))} CPUs (nproc), Python {platform.python_version()}"
        f", {platform.platform()}; {_load_average()}"
    )
    content = load_content()
    cipher = TextCipher(parse_key(generate_key()))
    prepared = time.perf_counter()
    dataset = build_dataset(cipher, content, args.rows, args.member_rows)
    print(f"data: {_scale(dataset)}; encrypted in {time.perf_counter() - prepared:.1f} s")

    if "sqlite" in args.backends:
        await bench_sqlite(cipher, content, dataset, args.iterations)
    if "postgresql" in args.backends:
        raw_url = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL")
        url = parse_database_url(raw_url or DEFAULT_PG_URL)
        await bench_postgresql(url, cipher, content, dataset, args.iterations)

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"\ntotal runtime {time.perf_counter() - started:.1f} s; peak RSS {peak_mb:.0f} MB; "
        f"{_load_average()}"
    )


if __name__ == "__main__":
    asyncio.run(main())
