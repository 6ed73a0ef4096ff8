"""Benchmark the moderator features: /stats's query and the weekly post dispatch.

(1) /stats data: ``db.server_stats.server_stats(session, guild_id)`` as the cog calls it (one
    ``Database.read()`` each) for servers of ``--sizes`` members (50, 1,000 and 10,000; four,
    three and two servers of those sizes, each call the next server of its size), on SQLite and
    on PostgreSQL. The members are a pool of 2.5 x the largest size (the bot's other servers'
    members too); each server draws its own, so members belong to several servers. Each member
    wrote 0-12 reflections (most a few, some a dozen) over up to a year, through the six points
    in order and then revisiting, a line to a couple of pages long, encrypted with the bot's
    key; 45% made 1-6 /decide decisions, 30% have a check-in plan (active, paused or stopped).
    One member in 100 wrote through the project's functions (``add_reflection``,
    ``add_decision``, ``start_plan``, ``remember_member``); the rest are bulk-inserted into the
    models' tables (PostgreSQL: then VACUUM ANALYZE, as autovacuum would have run on a live
    database). Baseline, same run, same database: ``db.progress.progress_data`` for one
    member (what /progress reads), each call the next of 200 members who wrote something.
    ``--iterations`` rounds, each calling every case once in a shuffled order, one call at a
    time in this process (nothing else runs here meanwhile). Every answer is checked against
    the seeded data (members, each point's reflecting members, plans, latest leanings; for
    progress_data the member's marks and decisions): an exception or a wrong answer is an error.

(2) The weekly post dispatch when many servers fall due in the same minute (everyone keeps the
    default slot, Monday 17:00 UTC: the realistic worst case): ``--servers`` (2,000) servers
    with the weekly post on, all due two minutes ago, against real processes, with
    bench/checkins.py's machinery (imported from it): the Discord emulator in a process of its
    own (bench/_checkin_emulator.py's, given a server per member here: ``add_guild``, a #general
    and a posts channel with ``add_channel``, the member its moderator with ``add_member``) and
    each bot a real ``python bot.py``. Each server was set up through
    ``db.guild_settings.change`` (Setting.CHANNEL, then Setting.WEEKLY_POST, by its moderator)
    after 0-52 weeks of earlier posts (done rows; the rotation carries on from there, so the
    points posted differ), then its pending post was moved to the due minute. Half as many
    servers again are in the database only: a quarter with the post on at other times, a
    quarter with only a channel set; none of them may be posted.
    Baseline, measured the same way in the same run: DM check-in delivery (bench/checkins.py's
    members and run) of as many check-ins as there are servers.
    Runs: unthrottled (emulator unlimited, ``DISCORD_RATE_LIMIT=10000``) and at Discord's pace
    (emulator global limit 50/s, the bot's default ``DISCORD_RATE_LIMIT`` of 50), each on SQLite
    with one process and on PostgreSQL with two. Figures: jobs per second (from the first
    gateway session live until every job is recorded; paced: until the last message), its
    share of the limit, the bots' CPU seconds per 1,000 jobs, the 429s, requests per job, the
    gaps between consecutive messages (p50, p99, max), and weekly / check-ins ratios for the
    same configuration. Each run ends by checking that every server got exactly one post (in
    its channel, with its post's nonce, the rotation's point, the Reflect button) and nothing
    else was posted, that each post is recorded as done with its message, each server's
    rotation moved on by one and next week's post pending. Any miss, double, wrong post,
    non-2xx answer (429s aside in paced runs), spec violation, ERROR in a bot's log or bad exit
    is an error and marks the run FAILED (its figures are then only a diagnosis).

Timings are only printed (medians, p99, ratios against the baseline of the same run), never
asserted. The machine's load average is printed with each run.

Run from the repository root (full: about 7 minutes on 2 cores; ``--quick``: under 2):

    .venv/bin/python bench/moderation.py [--quick] [--parts stats,dispatch]
        [--sizes 50,1000,10000] [--iterations 150] [--servers 2000]
        [--runs sqlite,paced-sqlite,postgresql,paced-postgresql]
        [--postgres-url postgresql+asyncpg://postgres@127.0.0.1:5432/crossroads_bench]
        [--explain] [--keep DIR]

``--quick``: sizes 50, 200 and 1,000, 40 rounds, 300 servers (every run; ``--runs`` picks).
``--parts``: only the /stats measurement or only the dispatch. ``--explain`` prints the plans
of server_stats's queries for the smallest and the largest server on each backend (PostgreSQL:
EXPLAIN ANALYZE of the server's own plan and of the generic plan a prepared statement may
switch to). ``--keep`` keeps the bots' and the emulator's logs and reports (kept anyway when a
run fails). PostgreSQL uses only its own database (``crossroads_bench`` unless
``--postgres-url`` names another; never ``test``), dropped and created afresh for each use and
dropped at the end; it is skipped, with a note, when the server is unreachable.

``bench/moderation.py emulator --members N --first-id ID [--rate-limit R]`` is the emulator
process's own mode (this script starts it).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from checkins import (
    FIRST_USER_ID,
    LIFTED,
    LIMIT,
    SENTENCES,
    ZONES,
    Children,
    Expect,
    Result,
    build_members,
    conclude_run,
    drop_postgres,
    keep_logs,
    load_average,
    notes,
    percentile,
    postgres_reachable,
    print_machine,
    reset_postgres,
    run_bots,
    run_crossroads,
    slug,
    start_emulator,
    verdict,
    verify_messages,
)
from sqlalchemy import bindparam, event, func, insert, select, text, update
from sqlalchemy.engine import URL, make_url

from advice.content import Content, load_content
from advice.journey import prompt_kind
from advice.progress import Leaning
from advice.schedule import Cadence
from advice.stats import ServerStats
from advice.weekly import DEFAULT_HOUR, DEFAULT_WEEKDAY, DEFAULT_ZONE, WeeklyRule, next_post_at
from advice.weekly import point_of_the_week as rotation_point
from db import Database
from db.checkins import PlanStatus, start_plan
from db.crypto import TextCipher, generate_key, parse_key
from db.decisions import add_decision
from db.guild_settings import Setting, change
from db.journal import add_reflection
from db.migrate import upgrade
from db.models import (
    CheckinPlan,
    Decision,
    GuildMember,
    GuildSettings,
    Reflection,
    User,
    WeeklyPost,
)
from db.progress import progress_data
from db.server_stats import remember_member, server_stats
from sandbox import Emulator

HERE = Path(__file__).resolve()  # the emulator process runs this script
DEFAULT_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/crossroads_bench"
RUNS = ("sqlite", "paced-sqlite", "postgresql", "paced-postgresql")
PARTS = ("stats", "dispatch")

# (1) /stats
FIRST_WRITER_ID = 600_000_000_000_000_001  # Discord-snowflake sized, fixed
FIRST_STATS_GUILD_ID = 610_000_000_000_000_001
SERVERS_PER_SIZE = (4, 3, 2)  # smallest size first; the rest get the last number
POOL_FACTOR = 2.5  # members in all (the bot's other servers too), per member of the largest
BASELINE_MEMBERS = 200
VIA_FUNCTIONS_EVERY = 100  # one member in this many writes through the project's functions

# (2) the weekly post: server i is moderated by the emulator's member i (checkins'
# FIRST_USER_ID + i), whose report's messages are the bot's posts in that server
FIRST_GUILD_ID = 710_000_000_000_000_001
FIRST_POSTS_CHANNEL_ID = 720_000_000_000_000_001
FIRST_GENERAL_ID = 730_000_000_000_000_001
FIRST_OTHER_GUILD_ID = 740_000_000_000_000_001  # in the database only: not due
POSTS_CHANNELS = ("crossroads", "announcements", "career-talk", "weekly", "reflections")
DUE_AGO = timedelta(minutes=2)
SEED_BATCH = 100  # servers set up per transaction


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
    return " ".join(rng.choices(SENTENCES, k=count))


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


async def seed_stats(database: Database, cipher: TextCipher, data: StatsData, t0: datetime) -> None:
    await upgrade(database)
    users, reflections, decisions, plans, members = [], [], [], [], []
    joined: dict[int, datetime] = {}
    for w in data.writers:
        joined[w.user_id] = w.reflections[0][3] if w.reflections else w.started
        if w.via_functions:
            continue
        users.append(
            {
                "id": w.user_id,
                "timezone": w.zone,
                "created_at": w.started,
                "journey_started_at": w.started,
            }
        )
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
        for leaning, reason, at in w.decisions:
            decisions.append(
                {
                    "user_id": w.user_id,
                    "leaning": int(leaning),
                    "reason": cipher.encrypt(reason, owner_id=w.user_id) if reason else None,
                    "created_at": at,
                }
            )
        if w.plan is not None:
            plans.append(
                {
                    "user_id": w.user_id,
                    "cadence": Cadence.WEEKLY.value,
                    "weekday": w.user_id % 7,
                    "hour": 8 + w.user_id % 12,
                    "status": w.plan.value,
                    "year_started_at": w.started,
                    "paused_until": t0 + timedelta(days=20)
                    if w.plan is PlanStatus.PAUSED
                    else None,
                    "problem": None,
                    "notice_pending": False,
                    "last_delivered_at": None,
                    "created_at": w.started,
                    "updated_at": w.started,
                }
            )
    via = {w.user_id for w in data.writers if w.via_functions}
    for guild_id, user_ids in data.servers.items():
        members += [
            {"guild_id": guild_id, "user_id": u, "first_seen_at": joined[u]}
            for u in user_ids
            if u not in via
        ]
    async with database.transaction() as session:
        # The models' tables, in bulk (executemany): the ORM's unit of work would take longer
        # than the measurement itself.
        for model, rows in (
            (User, users),
            (Reflection, reflections),
            (Decision, decisions),
            (CheckinPlan, plans),
            (GuildMember, members),
        ):
            for start in range(0, len(rows), 20_000):
                await session.execute(insert(model.__table__), rows[start : start + 20_000])
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
    header = (
        f"  {'backend':<12}{'call':<44}{'calls':>6}{'errors':>7}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'max ms':>9}{'p50 x base':>11}{'p99 x base':>11}"
    )
    print(header)
    print("  " + "-" * (len(header) - 2))
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
            for example in case.examples:
                print(f"    error: {example}")


# --- (2) the weekly post: the emulator's process -----------------------------------------------


class ServersEmulator(Emulator):
    """bench/_checkin_emulator.py's emulator with a server per member: member i moderates
    server i, with a #general and the channel its weekly post goes to. The report's messages
    of member i (``dm_messages``) are the bot's in that channel followed by any in their DMs,
    so the helper's report shows each server's posts unchanged."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._posts_channel: dict[int, int] = {}

    def add_user(self, name: str, *, id: int | None = None) -> int:
        user_id = super().add_user(name, id=id)
        index = len(self._posts_channel)
        guild_id = self.add_guild(f"Server {index}", id=FIRST_GUILD_ID + index)
        self.add_channel(guild_id, "general", id=FIRST_GENERAL_ID + index)
        posts = POSTS_CHANNELS[index % len(POSTS_CHANNELS)]
        self._posts_channel[user_id] = self.add_channel(
            guild_id, posts, id=FIRST_POSTS_CHANNEL_ID + index
        )
        self.add_member(guild_id, user_id, manage_guild=True)
        return user_id

    def dm_messages(self, user_id: int) -> list[dict[str, Any]]:
        channel = self._posts_channel.get(user_id)
        mine = self.channel_messages(channel) if channel is not None else []
        return mine + super().dm_messages(user_id)


def emulator_process() -> None:
    """``bench/moderation.py emulator --members N --first-id ID [--rate-limit R]``."""
    import _checkin_emulator

    import sandbox

    sandbox.Emulator = ServersEmulator  # type: ignore[misc]  # what run_emulator imports
    _checkin_emulator.main()


# --- (2) the weekly post: the servers ----------------------------------------------------------


@dataclass
class Server:
    index: int
    moderator_id: int
    posts_made: int  # weekly posts before this one: the rotation's place
    configured_at: datetime

    @property
    def guild_id(self) -> int:
        return FIRST_GUILD_ID + self.index

    @property
    def channel_id(self) -> int:
        return FIRST_POSTS_CHANNEL_ID + self.index


def build_servers(count: int, t0: datetime) -> list[Server]:
    rng = random.Random(13)
    servers = []
    for index in range(count):
        made = rng.choice((0, 0, rng.randint(1, 8), rng.randint(1, 52)))
        configured = t0 - timedelta(weeks=made, days=rng.uniform(1, 6.5))
        servers.append(Server(index, FIRST_USER_ID + index, made, configured))
    return servers


async def seed_servers(
    url: str, servers: Sequence[Server], order: Sequence[str], t0: datetime
) -> dict[int, int]:
    """Set the servers up through db.guild_settings; returns each due server's post id."""
    database = Database(url)
    rule = WeeklyRule(DEFAULT_WEEKDAY, DEFAULT_HOUR, DEFAULT_ZONE)
    last_slot = next_post_at(rule, after=t0 - timedelta(weeks=1))
    due_at = t0.replace(second=0, microsecond=0) - DUE_AGO
    rng = random.Random(17)
    try:
        await upgrade(database)
        history = [
            {
                "guild_id": s.guild_id,
                "scheduled_at": last_slot - timedelta(weeks=week),
                "due_at": last_slot - timedelta(weeks=week),
                "state": "done",
                "attempts": 1,
                "point": rotation_point(list(order), s.posts_made - week),
                "channel_id": s.channel_id,
                "message_id": rng.getrandbits(62),
                "sent_at": last_slot
                - timedelta(weeks=week)
                + timedelta(seconds=rng.uniform(0, 60)),
            }
            for s in servers
            for week in range(1, s.posts_made + 1)
        ]
        async with database.transaction() as session:
            if history:
                await session.execute(insert(WeeklyPost.__table__), history)
        others = len(servers) // 4
        for start in range(0, len(servers), SEED_BATCH):
            async with database.transaction() as session:
                for s in servers[start : start + SEED_BATCH]:
                    await set_up(
                        session,
                        s.guild_id,
                        s.moderator_id,
                        s.channel_id,
                        s.configured_at,
                        weekly={},
                    )
        for start in range(0, 2 * others, SEED_BATCH):
            async with database.transaction() as session:
                for n in range(start, min(start + SEED_BATCH, 2 * others)):
                    # Not due during the run (or no weekly post at all): configured in the
                    # last hours for a weekday two to four days on (in any zone: never its
                    # today or yesterday), so the pending post is in the future.
                    weekly = {
                        "weekly_weekday": (t0.weekday() + 2 + n % 3) % 7,
                        "weekly_hour": n % 24,
                        "weekly_timezone": rng.choice([z for z in ZONES if z]),
                    }
                    await set_up(
                        session,
                        FIRST_OTHER_GUILD_ID + n,
                        FIRST_OTHER_GUILD_ID + 10_000_000 + n,
                        FIRST_POSTS_CHANNEL_ID + 10_000_000 + n,
                        t0 - timedelta(hours=rng.uniform(0.1, 10)),
                        weekly=weekly if n < others else None,
                    )
        async with database.transaction() as session:
            table = GuildSettings.__table__
            await session.execute(
                update(table)
                .where(table.c.guild_id == bindparam("b_guild"))
                .values(weekly_posts_made=bindparam("b_made")),
                [{"b_guild": s.guild_id, "b_made": s.posts_made} for s in servers],
            )
            due = [s.guild_id for s in servers]
            await session.execute(
                update(WeeklyPost)
                .where(WeeklyPost.guild_id.in_(due), WeeklyPost.state == "pending")
                .values(scheduled_at=due_at, due_at=due_at)
                .execution_options(synchronize_session=False)
            )
        if not database.is_sqlite:
            async with database.transaction() as session:
                await session.execute(text("ANALYZE"))
        async with database.read() as session:
            rows = await session.execute(
                select(WeeklyPost.guild_id, WeeklyPost.id).where(
                    WeeklyPost.state == "pending", WeeklyPost.due_at <= t0
                )
            )
            return {guild_id: post_id for guild_id, post_id in rows}
    finally:
        await database.dispose()


async def set_up(
    session: Any,
    guild_id: int,
    moderator_id: int,
    channel_id: int,
    at: datetime,
    *,
    weekly: dict[str, object] | None,
) -> None:
    """What a moderator does in /config: the channel, then (unless None) the weekly post
    with `weekly`'s time (empty: the default, Monday 17:00 UTC)."""
    await change(
        session,
        guild_id=guild_id,
        user_id=moderator_id,
        setting=Setting.CHANNEL,
        now=at,
        channel_id=channel_id,
    )
    if weekly is not None:
        await change(
            session,
            guild_id=guild_id,
            user_id=moderator_id,
            setting=Setting.WEEKLY_POST,
            now=at + timedelta(minutes=1),
            weekly_post_enabled=True,
            **weekly,
        )


async def check_servers(
    url: str, servers: Sequence[Server], ids: dict[int, int], content: Content, t0: datetime
) -> list[str]:
    """Each post done with its point and message, the rotation moved on by one, next week's
    post pending; nothing else posted."""
    order = list(content.slugs)
    database = Database(url)
    try:
        async with database.read() as session:
            posts = {
                row.guild_id: row
                for row in await session.execute(
                    select(
                        WeeklyPost.guild_id,
                        WeeklyPost.state,
                        WeeklyPost.point,
                        WeeklyPost.channel_id,
                        WeeklyPost.message_id,
                    ).where(WeeklyPost.id.in_(list(ids.values())))
                )
            }
            made = dict(
                (
                    await session.execute(
                        select(GuildSettings.guild_id, GuildSettings.weekly_posts_made)
                    )
                ).all()
            )
            pending = Counter(
                await session.scalars(
                    select(WeeklyPost.guild_id).where(
                        WeeklyPost.state == "pending", WeeklyPost.scheduled_at > t0
                    )
                )
            )
            others_posted = await session.scalar(
                select(func.count()).where(
                    WeeklyPost.guild_id >= FIRST_OTHER_GUILD_ID, WeeklyPost.state != "pending"
                )
            )
    finally:
        await database.dispose()
    not_done = wrong = rotation = no_next = 0
    for s in servers:
        row = posts.get(s.guild_id)
        if row is None or row.state != "done" or row.message_id is None:
            not_done += 1
        elif row.point != rotation_point(order, s.posts_made) or row.channel_id != s.channel_id:
            wrong += 1
        if made.get(s.guild_id) != s.posts_made + 1:
            rotation += 1
        if pending[s.guild_id] != 1:
            no_next += 1
    problems = []
    if len(ids) != len(servers):
        problems.append(f"{len(ids)} posts due after seeding, {len(servers)} servers")
    for count, what in (
        (not_done, "posts not recorded as done with a message id"),
        (wrong, "posts recorded with another point or channel"),
        (rotation, "servers whose rotation did not move on by exactly one"),
        (no_next, "servers without exactly one post pending for next week"),
        (others_posted, "posts of servers that were not due were settled"),
    ):
        if count:
            problems.append(f"{count} {what}")
    return problems


def post_expectations(
    servers: Sequence[Server], ids: dict[int, int], content: Content
) -> dict[int, Expect]:
    order = list(content.slugs)
    expected = {}
    for s in servers:
        point = content.point(rotation_point(order, s.posts_made))
        expected[s.moderator_id] = Expect(
            nonce=f"cr-wp-{ids.get(s.guild_id)}",
            title=f"Point of the week: {point.heading}"[:256],
            words=[f"• {point.prompts[0]}"],
            buttons=1,
        )
    return expected


async def run_weekly(
    children: Children,
    http: aiohttp.ClientSession,
    *,
    name: str,
    url: str,
    processes: int,
    servers: Sequence[Server],
    content: Content,
    key: str,
    t0: datetime,
    emulator_limit: float | None,
    bot_limit: float | None,
    paced: bool,
) -> Result:
    count = len(servers)
    result = Result(name, count)
    emulator = await start_emulator(children, http, count, emulator_limit, helper=HERE)
    seeded = time.perf_counter()
    ids = await seed_servers(url, servers, list(content.slugs), t0)
    print(
        f"  {name}: set up {count:,} servers (and {count // 2:,} others) in "
        f"{time.perf_counter() - seeded:.1f} s"
    )
    bots, report, problems, recorded_at = await run_bots(
        children,
        emulator,
        result,
        url=url,
        processes=processes,
        key=key,
        bot_limit=bot_limit,
        profile_dir=None,
        paced=paced,
        ids=ids,
        check=lambda: check_servers(url, servers, ids, content, t0),
        model=WeeklyPost,
    )
    verify_messages(report, post_expectations(servers, ids, content), result, paced=paced)
    if report["dm_created"] != count:
        problems.append(f"{report['dm_created']} messages created in all, {count} expected")
    return await conclude_run(
        children, emulator, bots, result, report, problems, recorded_at=recorded_at, paced=paced
    )


# --- (2) the report --------------------------------------------------------------------------


def dispatch_table(pairs: Sequence[tuple[str, Result | None, Result | None]]) -> None:
    header = (
        f"  {'configuration':<32}{'job':<13}{'jobs':>6}{'errors':>7}{'429s':>6}{'rate/s':>9}"
        f"{'x ci':>7}{'rate/limit':>11}{'CPU s/1000':>11}{'x ci':>7}{'gap p50 ms':>11}"
        f"{'gap p99 ms':>11}{'max gap ms':>11}{'req/job':>8}"
    )
    print(header)
    print("  " + "-" * (len(header) - 2))
    for config, base, weekly in pairs:
        for job, r in (("check-ins", base), ("weekly posts", weekly)):
            if r is None:
                continue
            if r.failed or not r.gaps_ms:
                print(f"  {config:<32}{job:<13}{r.count:>6,}{r.error_count:>7}  FAILED")
                continue
            ok = r is weekly and base is not None and not base.failed and base.gaps_ms
            rate_x = f"{r.rate / base.rate:>6.2f}x" if ok and base else f"{'':>7}"
            cpu_x = f"{r.cpu_per_1000 / base.cpu_per_1000:>6.2f}x" if ok and base else f"{'':>7}"
            share = f"{r.rate / LIMIT:>11.3f}" if "paced" in config else f"{'':>11}"
            print(
                f"  {config:<32}{job:<13}{r.count:>6,}{r.error_count:>7}{r.rate_limited:>6}"
                f"{r.rate:>9.1f}{rate_x}{share}{r.cpu_per_1000:>11.2f}{cpu_x}"
                f"{statistics.median(r.gaps_ms):>11.2f}{percentile(r.gaps_ms, 0.99):>11.1f}"
                f"{max(r.gaps_ms):>11.0f}{r.requests_per_checkin:>8.3f}"
            )
    print(
        "  notes ('DM' and 'check-in' there: the run's message and job, check-in or weekly post):"
    )
    for config, base, weekly in pairs:
        for job, r in (("check-ins", base), ("weekly posts", weekly)):
            if r is not None and not r.failed and r.gaps_ms:
                print(f"  {config}, {job}: {notes(r)}")


# --- main ------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="50/200/1,000 members, 40 rounds, 300 servers"
    )
    parser.add_argument("--parts", default=",".join(PARTS), help="stats, dispatch or both")
    parser.add_argument("--sizes", default="50,1000,10000", help="server sizes for /stats")
    parser.add_argument("--iterations", type=int, default=150, help="rounds of /stats calls")
    parser.add_argument("--servers", type=int, default=2_000, help="servers due at once")
    parser.add_argument("--runs", help=f"dispatch runs, comma-separated: {','.join(RUNS)}")
    parser.add_argument("--postgres-url", default=DEFAULT_PG_URL)
    parser.add_argument("--explain", action="store_true", help="print server_stats's plans")
    parser.add_argument("--keep", type=Path, help="keep logs and emulator reports here")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.iterations, args.servers = "50,200,1000", 40, 300
    args.runs = args.runs or ",".join(RUNS)
    args.sizes = sorted(int(size) for size in args.sizes.split(","))
    args.parts = [part.strip() for part in args.parts.split(",") if part.strip()]
    args.runs = [run.strip() for run in args.runs.split(",") if run.strip()]
    if unknown := (set(args.runs) - set(RUNS)) | (set(args.parts) - set(PARTS)):
        parser.error(f"unknown runs or parts: {', '.join(sorted(unknown))}")
    if args.sizes[0] < 1 or args.servers < 10 or args.iterations < 1:
        parser.error("--sizes must be positive, --servers at least 10, --iterations at least 1")
    url = make_url(args.postgres_url)
    if url.database in (None, "test", "postgres"):
        parser.error("--postgres-url must name the benchmark's own database (not test)")
    args.pg = url
    return args


async def run_stats_part(
    args: argparse.Namespace, workdir: Path, cipher: TextCipher, pg_problem: str | None
) -> None:
    data = build_stats_data(args.sizes, datetime.now(UTC), list(load_content().slugs))
    print("\n(1) /stats data: running")
    results = [
        (
            "SQLite",
            await bench_stats(
                "SQLite", f"sqlite+aiosqlite:///{workdir / 'stats.db'}", data, cipher, args
            ),
        )
    ]
    if not pg_problem:
        await reset_postgres(args.pg)
        results.append(
            ("PostgreSQL", await bench_stats("PostgreSQL", pg_render(args.pg), data, cipher, args))
        )
    print(
        f"\n(1) /stats data: server_stats per server size against progress_data for one member "
        f"(baseline), {args.iterations} interleaved rounds, one call at a time:"
    )
    stats_table(results)


def pg_render(url: URL) -> str:
    return url.render_as_string(hide_password=False)


async def run_dispatch_part(
    args: argparse.Namespace, children: Children, key: str, pg_problem: str | None
) -> list[Result]:
    content = load_content()
    t0 = datetime.now(UTC)
    servers = build_servers(args.servers, t0)
    members = build_members(args.servers, t0, content)
    print(
        f"\n(2) weekly posts: {len(servers):,} servers due at {DUE_AGO} ago "
        f"(rotation: {sum(1 for s in servers if s.posts_made == 0):,} first posts, up to "
        f"{max(s.posts_made for s in servers)} earlier; "
        f"{sum(s.posts_made for s in servers):,} earlier posts in all); baseline "
        f"{len(members):,} check-ins due (bench/checkins.py's members)"
    )
    plans = {
        "sqlite": ("SQLite 1 proc, lifted", 1, None, LIFTED, False),
        "paced-sqlite": ("SQLite 1 proc, paced 50/s", 1, LIMIT, None, True),
        "postgresql": ("PostgreSQL 2 procs, lifted", 2, None, LIFTED, False),
        "paced-postgresql": ("PostgreSQL 2 procs, paced 50/s", 2, LIMIT, None, True),
    }
    pairs: list[tuple[str, Result | None, Result | None]] = []
    everything: list[Result] = []
    async with aiohttp.ClientSession() as http:
        for run in args.runs:
            config, processes, emulator_limit, bot_limit, paced = plans[run]
            if "postgresql" in run and pg_problem:
                continue
            got: list[Result] = []
            for job in ("check-ins", "weekly posts"):
                name = f"{job}, {config}"
                if "postgresql" in run:
                    await reset_postgres(args.pg)
                    url = pg_render(args.pg)
                else:
                    url = f"sqlite+aiosqlite:///{children.workdir / (slug(name) + '.db')}"
                common: dict[str, Any] = {
                    "name": name,
                    "url": url,
                    "processes": processes,
                    "content": content,
                    "key": key,
                    "t0": t0,
                    "emulator_limit": emulator_limit,
                    "bot_limit": bot_limit,
                    "paced": paced,
                }
                try:
                    if job == "check-ins":
                        result = await run_crossroads(
                            children, http, members=members, profile_dir=None, **common
                        )
                    else:
                        result = await run_weekly(children, http, servers=servers, **common)
                except (OSError, RuntimeError, TimeoutError, aiohttp.ClientError) as exc:
                    result = Result(name, args.servers, errors={"run": 1})
                    result.examples.append(f"{type(exc).__name__}: {exc}")
                    await children.stop_all()
                    children.start_sampling()
                print(verdict(result))
                got.append(result)
            everything += got
            pairs.append((config, got[0], got[1]))
    print(
        f"\n(2) the weekly post dispatch, {len(servers):,} servers due at once, against DM "
        f"check-in delivery (baseline: x ci = weekly / check-ins of the same configuration):"
    )
    dispatch_table(pairs)
    return everything


async def bench(args: argparse.Namespace) -> int:
    began = time.perf_counter()
    print_machine()
    key = generate_key()
    cipher = TextCipher(parse_key(key))
    pg_problem = await postgres_reachable(args.pg)
    if pg_problem:
        print(f"PostgreSQL skipped: {args.pg.render_as_string()} unreachable: {pg_problem}")
    failed = False
    with tempfile.TemporaryDirectory(prefix="crossroads-moderation-") as tmp:
        workdir = Path(tmp)
        children = Children(workdir)
        children.start_sampling()
        try:
            if "stats" in args.parts:
                await run_stats_part(args, workdir, cipher, pg_problem)
            if "dispatch" in args.parts:
                results = await run_dispatch_part(args, children, key, pg_problem)
                failed = any(r.failed for r in results)
        finally:
            await children.stop_all()
            if not pg_problem:
                await drop_postgres(args.pg)
        if args.keep or failed:
            keep_logs(workdir, args.keep, prefix="crossroads-moderation-logs-")
    print(f"\ntotal runtime {time.perf_counter() - began:.0f} s; {load_average()}")
    return 1 if failed else 0


def main() -> None:
    if sys.argv[1:2] == ["emulator"]:
        emulator_process()
        return
    sys.exit(asyncio.run(bench(parse_args())))


if __name__ == "__main__":
    main()
