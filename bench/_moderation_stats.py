"""bench/moderation.py's part (1): /stats's query (``db.server_stats.server_stats``) for
servers of several sizes, against ``db.progress.progress_data`` for one member, on SQLite and
PostgreSQL; the data, the measurement and its table (see bench/moderation.py)."""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from harness import goals
from harness.database import insert_rows
from harness.jobs import fresh_database
from harness.machine import load_average
from harness.stats import percentile, print_header
from harness.texts import CHECKIN_SENTENCES, ZONES
from sqlalchemy import event

from advice.content import load_content
from advice.journey import prompt_kind
from advice.progress import Leaning
from advice.schedule import Cadence
from advice.stats import ServerStats
from db import Database
from db.checkins import PlanStatus, start_plan
from db.crypto import TextCipher
from db.decisions import add_decision
from db.journal import add_reflection
from db.migrate import upgrade
from db.models import CheckinPlan, Decision, GuildMember, Reflection, User
from db.progress import progress_data
from db.server_stats import remember_member, server_stats

# (1) /stats
FIRST_WRITER_ID = 600_000_000_000_000_001  # Discord-snowflake sized, fixed
FIRST_STATS_GUILD_ID = 610_000_000_000_000_001
SERVERS_PER_SIZE = (4, 3, 2)  # smallest size first; the rest get the last number
POOL_FACTOR = 2.5  # members in all (the bot's other servers too), per member of the largest
BASELINE_MEMBERS = 200
VIA_FUNCTIONS_EVERY = 100  # one member in this many writes through the project's functions


# --- (1) /stats: the data ------------------------------------------------------------------------


@dataclass
class Writer:
    user_id: int
    zone: str | None
    started: datetime
    reflections: list[tuple[str, str, int | None, datetime]] = field(default_factory=list)
    decisions: list[tuple[Leaning, str | None, datetime]] = field(default_factory=list)
    plan: PlanStatus | None = None
    via_functions: bool = False


@dataclass
class StatsData:
    writers: list[Writer]
    servers: dict[int, list[int]]  # guild id -> its members' user ids
    sizes: dict[int, int]  # guild id -> its size class

    def expected(self, guild_id: int) -> ServerStats:
        by_id = {w.user_id: w for w in self.writers}
        members = [by_id[user_id] for user_id in self.servers[guild_id]]
        reflected: Counter[str] = Counter()
        leanings: Counter[int] = Counter()
        for w in members:
            reflected.update({point for point, _, _, _ in w.reflections})
            if w.decisions:
                leanings[int(w.decisions[-1][0])] += 1
        return ServerStats(
            members=len(members),
            reflected=dict(reflected),
            checkins=sum(1 for w in members if w.plan in (PlanStatus.ACTIVE, PlanStatus.PAUSED)),
            leanings=dict(leanings),
        )


def writing(rng: random.Random) -> str:
    """A line, a paragraph, or (one in ten) a couple of pages."""
    roll = rng.random()
    count = rng.randint(1, 2) if roll < 0.5 else rng.randint(3, 8) if roll < 0.9 else 30
    return " ".join(rng.choices(CHECKIN_SENTENCES, k=count))


def build_stats_data(sizes: Sequence[int], t0: datetime, order: Sequence[str]) -> StatsData:
    rng = random.Random(11)
    writers: list[Writer] = []
    for index in range(int(max(sizes) * POOL_FACTOR)):
        started = t0 - timedelta(days=rng.uniform(1, 360))
        w = Writer(
            FIRST_WRITER_ID + index,
            rng.choice(ZONES),
            started,
            via_functions=index % VIA_FUNCTIONS_EVERY == 0,
        )
        count = min(12, int(rng.expovariate(1 / 4)))
        times = sorted(started + (t0 - started) * rng.random() for _ in range(count))
        for number, at in enumerate(times):
            point = order[number] if number < len(order) else rng.choice(order)
            w.reflections.append((point, writing(rng), rng.choice((1, 2, 3, 4, 5, None)), at))
        if rng.random() < 0.45:
            times = sorted(
                started + (t0 - started) * rng.random() for _ in range(rng.randint(1, 6))
            )
            for at in times:
                reason = writing(rng) if rng.random() < 0.6 else None
                w.decisions.append((rng.choice(list(Leaning)), reason, at))
        if rng.random() < 0.30:
            w.plan = rng.choices(
                (PlanStatus.ACTIVE, PlanStatus.PAUSED, PlanStatus.STOPPED), weights=(7, 1.5, 1.5)
            )[0]
        writers.append(w)
    servers: dict[int, list[int]] = {}
    size_of: dict[int, int] = {}
    for rank, size in enumerate(sorted(sizes)):
        for _ in range(SERVERS_PER_SIZE[min(rank, len(SERVERS_PER_SIZE) - 1)]):
            guild_id = FIRST_STATS_GUILD_ID + len(servers)
            servers[guild_id] = [w.user_id for w in rng.sample(writers, size)]
            size_of[guild_id] = size
    return StatsData(writers, servers, size_of)


def writer_rows(
    w: Writer, cipher: TextCipher, t0: datetime
) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """A member's user row, reflections, decisions and (none or one) check-in plan."""
    user = {
        "id": w.user_id,
        "timezone": w.zone,
        "created_at": w.started,
        "journey_started_at": w.started,
    }
    reflections = []
    first: dict[str, datetime] = {}
    for point, words, comfort, at in w.reflections:
        kind = prompt_kind(first.get(point), at)
        first.setdefault(point, at)
        reflections.append(
            {
                "user_id": w.user_id,
                "point": point,
                "kind": kind.value,
                "body": cipher.encrypt(words, owner_id=w.user_id),
                "comfort": comfort,
                "created_at": at,
            }
        )
    decisions = [
        {
            "user_id": w.user_id,
            "leaning": int(leaning),
            "reason": cipher.encrypt(reason, owner_id=w.user_id) if reason else None,
            "created_at": at,
        }
        for leaning, reason, at in w.decisions
    ]
    plans = []
    if w.plan is not None:
        plans.append(
            {
                "user_id": w.user_id,
                "cadence": Cadence.WEEKLY.value,
                "weekday": w.user_id % 7,
                "hour": 8 + w.user_id % 12,
                "status": w.plan.value,
                "year_started_at": w.started,
                "paused_until": t0 + timedelta(days=20) if w.plan is PlanStatus.PAUSED else None,
                "problem": None,
                "notice_pending": False,
                "last_delivered_at": None,
                "created_at": w.started,
                "updated_at": w.started,
            }
        )
    return user, reflections, decisions, plans


async def seed_stats(database: Database, cipher: TextCipher, data: StatsData, t0: datetime) -> None:
    await upgrade(database)
    users: list[dict[str, Any]] = []
    reflections: list[dict[str, Any]] = []
    decisions: list[dict[str, Any]] = []
    plans: list[dict[str, Any]] = []
    joined: dict[int, datetime] = {}
    for w in data.writers:
        joined[w.user_id] = w.reflections[0][3] if w.reflections else w.started
        if w.via_functions:
            continue
        user, written, decided, plan = writer_rows(w, cipher, t0)
        users.append(user)
        reflections += written
        decisions += decided
        plans += plan
    via = {w.user_id for w in data.writers if w.via_functions}
    members = [
        {"guild_id": guild_id, "user_id": u, "first_seen_at": joined[u]}
        for guild_id, user_ids in data.servers.items()
        for u in user_ids
        if u not in via
    ]
    async with database.transaction() as session:
        for model, rows in (
            (User, users),
            (Reflection, reflections),
            (Decision, decisions),
            (CheckinPlan, plans),
            (GuildMember, members),
        ):
            await insert_rows(session, model, rows, batch=20_000)
    await seed_via_functions(database, cipher, data, t0)
    if not database.is_sqlite:
        # What autovacuum leaves on a live database: statistics, and the visibility map that
        # lets the planner use index-only scans (ANALYZE alone leaves every page unvisited).
        async with database.engine.connect() as connection:
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.exec_driver_sql("VACUUM ANALYZE")


async def seed_via_functions(
    database: Database, cipher: TextCipher, data: StatsData, t0: datetime
) -> None:
    """One member in VIA_FUNCTIONS_EVERY writes through the project's own functions."""
    order = list(load_content().slugs)
    guilds_of: dict[int, list[int]] = {}
    for guild_id, user_ids in data.servers.items():
        for user_id in user_ids:
            guilds_of.setdefault(user_id, []).append(guild_id)
    for w in data.writers:
        if not w.via_functions:
            continue
        async with database.transaction() as session:
            for point, words, comfort, at in w.reflections:
                await add_reflection(
                    session,
                    cipher,
                    user_id=w.user_id,
                    point=point,
                    text=words,
                    comfort=comfort,
                    submission_key=None,
                    now=at,
                )
            for leaning, reason, at in w.decisions:
                await add_decision(
                    session, cipher, user_id=w.user_id, leaning=leaning, reason=reason, now=at
                )
            if w.plan is not None:
                plan, _ = await start_plan(
                    session,
                    user_id=w.user_id,
                    cadence=Cadence.WEEKLY,
                    weekday=w.user_id % 7,
                    hour=8 + w.user_id % 12,
                    order=order,
                    now=t0 - timedelta(days=3),
                )
                plan.status = w.plan.value  # paused or stopped later
            for guild_id in guilds_of.get(w.user_id, []):
                await remember_member(session, guild_id=guild_id, user_id=w.user_id, now=w.started)


# --- (1) /stats: the measurement -----------------------------------------------------------------


@dataclass
class Case:
    label: str
    call: Callable[[int], Awaitable[str | None]]  # a target -> a problem with its answer
    targets: list[int]
    times_ms: list[float] = field(default_factory=list)
    errors: int = 0
    examples: list[str] = field(default_factory=list)


def stats_cases(
    database: Database, cipher: TextCipher, data: StatsData, rng: random.Random
) -> list[Case]:
    expected = {guild_id: data.expected(guild_id) for guild_id in data.servers}
    by_id = {w.user_id: w for w in data.writers}

    async def stats(guild_id: int) -> str | None:
        async with database.read() as session:
            got = await server_stats(session, guild_id)
        return None if got == expected[guild_id] else f"server {guild_id}: {got} != expected"

    async def progress(user_id: int) -> str | None:
        async with database.read() as session:
            got = await progress_data(session, cipher, user_id=user_id)
        w = by_id[user_id]
        if len(got.marks) != len(w.reflections) or len(got.stances) != len(w.decisions):
            return f"member {user_id}: {len(got.marks)} marks, {len(got.stances)} stances"
        return None

    wrote = [w.user_id for w in data.writers if w.reflections or w.decisions]
    cases = [
        Case("progress_data, 1 member (baseline)", progress, rng.sample(wrote, BASELINE_MEMBERS))
    ]
    for size in sorted(set(data.sizes.values())):
        guilds = [g for g, s in data.sizes.items() if s == size]
        cases.append(Case(f"server_stats, {size:,} members ({len(guilds)} servers)", stats, guilds))
    return cases


async def measure_cases(cases: Sequence[Case], iterations: int, rng: random.Random) -> None:
    """Round after round, every case once in a shuffled order, each call its next target."""
    for case in cases:  # warm-up: the connection pool, SQLite's page cache, PostgreSQL's plans
        await case.call(case.targets[0])
    for round_ in range(iterations):
        for case in rng.sample(list(cases), len(cases)):
            target = case.targets[round_ % len(case.targets)]
            started = time.perf_counter()
            try:
                problem = await case.call(target)
            except Exception as exc:  # counted, not fatal: the rest still measure
                problem = f"{type(exc).__name__}: {exc}"
            case.times_ms.append((time.perf_counter() - started) * 1000)
            if problem:
                case.errors += 1
                if len(case.examples) < 2:
                    case.examples.append(problem[:300])


async def explain_stats(database: Database, guild_id: int) -> list[str]:
    """The plans of server_stats's statements for one server (their scans, joins and times).

    PostgreSQL also shows the generic plan: asyncpg prepares every statement, and from a
    prepared statement's sixth execution PostgreSQL may reuse one plan for every server,
    whatever its size (plan_cache_mode auto).
    """
    captured: list[tuple[str, Any]] = []

    def capture(
        _c: Any, _cur: Any, statement: str, parameters: Any, _ctx: Any, _many: bool
    ) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            captured.append((statement, parameters))

    event.listen(database.engine.sync_engine, "before_cursor_execute", capture)
    try:
        async with database.read() as session:
            await server_stats(session, guild_id)
    finally:
        event.remove(database.engine.sync_engine, "before_cursor_execute", capture)
    lines: list[str] = []

    def keep(plan: Sequence[Any], column: int) -> None:
        for row in plan:
            line = str(row[column])
            if database.is_sqlite or any(w in line for w in ("Scan", "Join", "Loop", "Time")):
                lines.append("        " + line)

    async with database.read() as session:
        connection = await session.connection()
        for number, (statement, parameters) in enumerate(captured, start=1):
            lines.append(f"    query {number}: {' '.join(statement.split())[:150]}")
            if database.is_sqlite:
                keep(
                    (
                        await connection.exec_driver_sql(
                            f"EXPLAIN QUERY PLAN {statement}", parameters
                        )
                    ).all(),
                    -1,
                )
                continue
            lines.append("      custom plan (this server's own):")
            analyze = "EXPLAIN (ANALYZE, COSTS OFF) "
            keep((await connection.exec_driver_sql(analyze + statement, parameters)).all(), 0)
            raw = (await connection.get_raw_connection()).driver_connection
            assert raw is not None
            values = ", ".join(
                str(v) if isinstance(v, int) else "'" + str(v).replace("'", "''") + "'"
                for v in parameters
            )
            await raw.execute("SET LOCAL plan_cache_mode = force_generic_plan")
            await raw.execute(f"PREPARE bench_stats_{number} AS {statement}")
            lines.append("      generic plan (one for every server):")
            keep(await raw.fetch(f"{analyze}EXECUTE bench_stats_{number}({values})"), 0)
            await raw.execute(f"DEALLOCATE bench_stats_{number}")
    return lines


async def bench_stats(
    label: str, url: str, data: StatsData, cipher: TextCipher, args: argparse.Namespace
) -> list[Case]:
    database = Database(url)
    try:
        began = time.perf_counter()
        await seed_stats(database, cipher, data, datetime.now(UTC))
        rows = sum(len(w.reflections) for w in data.writers)
        print(
            f"  {label}: seeded {len(data.writers):,} members, {rows:,} reflections, "
            f"{sum(len(m) for m in data.servers.values()):,} server memberships in "
            f"{time.perf_counter() - began:.1f} s"
        )
        cases = stats_cases(database, cipher, data, random.Random(5))
        began = time.perf_counter()
        await measure_cases(cases, args.iterations, random.Random(6))
        print(
            f"  {label}: {args.iterations} rounds in {time.perf_counter() - began:.1f} s; "
            f"{load_average()}"
        )
        if args.explain:
            for guild_id in (
                min(data.sizes, key=lambda g: data.sizes[g]),
                max(data.sizes, key=lambda g: data.sizes[g]),
            ):
                print(f"  {label}: plans of server_stats for a server of {data.sizes[guild_id]:,}:")
                print("\n".join(await explain_stats(database, guild_id)))
        return cases
    finally:
        await database.dispose()


def stats_table(results: Sequence[tuple[str, list[Case]]]) -> None:
    print_header(
        f"  {'backend':<12}{'call':<44}{'calls':>6}{'errors':>7}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'max ms':>9}{'p50 x base':>11}{'p99 x base':>11}"
    )
    for backend, cases in results:
        base = cases[0]
        base_p50, base_p99 = statistics.median(base.times_ms), percentile(base.times_ms, 0.99)
        for case in cases:
            p50, p99 = statistics.median(case.times_ms), percentile(case.times_ms, 0.99)
            ratios = "" if case is base else f"{p50 / base_p50:>10.1f}x{p99 / base_p99:>10.1f}x"
            print(
                f"  {backend:<12}{case.label:<44}{len(case.times_ms):>6}{case.errors:>7}"
                f"{p50:>9.2f}{p99:>9.2f}{max(case.times_ms):>9.1f}{ratios}"
            )
            goals.goal(f"{backend}: {case.label} p99", f"{p99:.2f} ms")
            for example in case.examples:
                print(f"    error: {example}")


async def run_stats_part(
    args: argparse.Namespace, workdir: Path, cipher: TextCipher, pg_problem: str | None
) -> None:
    data = build_stats_data(args.sizes, datetime.now(UTC), list(load_content().slugs))
    print("\n(1) /stats data: running")
    url = await fresh_database(None, workdir, "stats")
    results = [("SQLite", await bench_stats("SQLite", url, data, cipher, args))]
    if not pg_problem:
        url = await fresh_database(args.pg, workdir, "stats")
        results.append(("PostgreSQL", await bench_stats("PostgreSQL", url, data, cipher, args)))
    print(
        f"\n(1) /stats data: server_stats per server size against progress_data for one member "
        f"(baseline), {args.iterations} interleaved rounds, one call at a time:"
    )
    stats_table(results)
