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
    bench/checkins.py's machinery (bench/harness/jobs.py): the Discord emulator in a process of
    its own (bench/harness/emulator_server.py's, given a server per member here: ``add_guild``,
    a #general and a posts channel with ``add_channel``, the member its moderator with
    ``add_member``) and each bot a real ``python bot.py``. Each server was set up through
    ``db.guild_settings.change`` (Setting.CHANNEL, then Setting.WEEKLY_POST, by its moderator)
    after 0-52 weeks of earlier posts (done rows; the rotation carries on from there, so the
    points posted differ), then its pending post was moved to the due minute. Half as many
    servers again are in the database only: a quarter with the post on at other times, a
    quarter with only a channel set; none of them may be posted.
    Baseline, measured the same way in the same run: DM check-in delivery (bench/checkins.py's
    members and run, bench/harness/checkin_load.py) of as many check-ins as there are servers.
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
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from _moderation_stats import run_stats_part
from harness.checkin_load import build_members, run_checkins
from harness.database import (
    DEFAULT_PG_URL,
    analyze,
    insert_rows,
    own_database,
    postgres_reachable,
    table_of,
)
from harness.emulator_process import FIRST_MEMBER_ID, start_emulator
from harness.jobs import (
    LIMIT,
    Context,
    Due,
    Expect,
    Result,
    Setup,
    deliver,
    fresh_database,
    guarded,
    keep_run_files,
    notes,
    sampled,
    verdict,
)
from harness.machine import code_version, load_average, machine_line
from harness.processes import Children
from harness.stats import print_header
from harness.texts import ZONES
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from advice.content import Content, load_content
from advice.weekly import DEFAULT_HOUR, DEFAULT_WEEKDAY, DEFAULT_ZONE, WeeklyRule, next_post_at
from advice.weekly import point_of_the_week as rotation_point
from db import Database
from db.crypto import TextCipher, generate_key, parse_key
from db.guild_settings import Setting, change
from db.migrate import upgrade
from db.models import (
    GuildSettings,
    WeeklyPost,
)
from sandbox.emulator import Emulator

HERE = Path(__file__).resolve()  # the emulator process runs this script
RUNS = ("sqlite", "paced-sqlite", "postgresql", "paced-postgresql")
PARTS = ("stats", "dispatch")


# (2) the weekly post: server i is moderated by the emulator's member i (FIRST_MEMBER_ID + i),
# whose report's messages are the bot's posts in that server
FIRST_GUILD_ID = 710_000_000_000_000_001
FIRST_POSTS_CHANNEL_ID = 720_000_000_000_000_001
FIRST_GENERAL_ID = 730_000_000_000_000_001
FIRST_OTHER_GUILD_ID = 740_000_000_000_000_001  # in the database only: not due
POSTS_CHANNELS = ("crossroads", "announcements", "career-talk", "weekly", "reflections")
DUE_AGO = timedelta(minutes=2)
SEED_BATCH = 100  # servers set up per transaction


# --- (2) the weekly post: the emulator's process -----------------------------------------------


class ServersEmulator(Emulator):
    """bench/harness/emulator_server.py's emulator with a server per member: member i moderates
    server i, with a #general and the channel its weekly post goes to. The report's messages
    of member i (``dm_messages``) are the bot's in that channel followed by any in their DMs,
    so the helper's report shows each server's posts unchanged."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._posts_channel: dict[int, int] = {}

    def add_user(self, name: str, *, id: int | None = None, bot: bool = False) -> int:
        user_id = super().add_user(name, id=id, bot=bot)
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
    from harness.emulator_server import serve

    serve(ServersEmulator)


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
        servers.append(Server(index, FIRST_MEMBER_ID + index, made, configured))
    return servers


def history_rows(
    servers: Sequence[Server], order: Sequence[str], last_slot: datetime, rng: random.Random
) -> list[dict[str, Any]]:
    """Each server's earlier weekly posts, done, the latest in the last slot."""
    return [
        {
            "guild_id": s.guild_id,
            "scheduled_at": last_slot - timedelta(weeks=week),
            "due_at": last_slot - timedelta(weeks=week),
            "state": "done",
            "attempts": 1,
            "point": rotation_point(list(order), s.posts_made - week),
            "channel_id": s.channel_id,
            "message_id": rng.getrandbits(62),
            "sent_at": last_slot - timedelta(weeks=week) + timedelta(seconds=rng.uniform(0, 60)),
        }
        for s in servers
        for week in range(1, s.posts_made + 1)
    ]


async def set_up_others(database: Database, count: int, t0: datetime, rng: random.Random) -> None:
    """``count`` servers with the weekly post on, not due during the run, and as many with
    only a channel: configured in the last hours for a weekday two to four days on (in any
    zone: never its today or yesterday), so the pending post is in the future."""
    for start in range(0, 2 * count, SEED_BATCH):
        async with database.transaction() as session:
            for n in range(start, min(start + SEED_BATCH, 2 * count)):
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
                    weekly=weekly if n < count else None,
                )


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
        history = history_rows(servers, order, last_slot, rng)
        async with database.transaction() as session:
            await insert_rows(session, WeeklyPost, history)
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
        await set_up_others(database, len(servers) // 4, t0, rng)
        async with database.transaction() as session:
            table = table_of(GuildSettings)
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
        await analyze(database)
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
    session: AsyncSession,
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


async def run_weekly(context: Context, setup: Setup, servers: Sequence[Server]) -> Result:
    """Every server's weekly post delivered in one run, and checked."""
    count, content, t0 = len(servers), context.content, context.t0
    emulator = await start_emulator(
        context.children, context.http, count, setup.emulator_limit, helper=HERE
    )
    seeded = time.perf_counter()
    ids = await seed_servers(setup.url, servers, list(content.slugs), t0)
    print(
        f"  {setup.name}: set up {count:,} servers (and {count // 2:,} others) in "
        f"{time.perf_counter() - seeded:.1f} s"
    )

    def all_created(_: Result, report: dict[str, Any]) -> list[str]:
        created = report["dm_created"]
        return [] if created == count else [f"{created} messages created in all, {count} expected"]

    return await deliver(
        context,
        emulator,
        setup,
        count,
        Due(
            WeeklyPost,
            ids,
            post_expectations(servers, ids, content),
            check=lambda: check_servers(setup.url, servers, ids, content, t0),
            after=all_created,
        ),
    )


# --- (2) the report --------------------------------------------------------------------------


def dispatch_table(pairs: Sequence[tuple[str, Result | None, Result | None]]) -> None:
    print_header(
        f"  {'configuration':<32}{'job':<13}{'jobs':>6}{'errors':>7}{'429s':>6}{'rate/s':>9}"
        f"{'x ci':>7}{'rate/limit':>11}{'CPU s/1000':>11}{'x ci':>7}{'gap p50 ms':>11}"
        f"{'gap p99 ms':>11}{'max gap ms':>11}{'req/job':>8}"
    )
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
                f"{r.gap_cells()}{r.requests_per_checkin:>8.3f}"
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
    args.pg = own_database(parser, args.postgres_url)
    return args


CONFIGURATIONS = {  # run -> configuration, processes, paced
    "sqlite": ("SQLite 1 proc, lifted", 1, False),
    "paced-sqlite": ("SQLite 1 proc, paced 50/s", 1, True),
    "postgresql": ("PostgreSQL 2 procs, lifted", 2, False),
    "paced-postgresql": ("PostgreSQL 2 procs, paced 50/s", 2, True),
}


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
    pairs: list[tuple[str, Result | None, Result | None]] = []
    async with aiohttp.ClientSession() as http:
        context = Context(children, http, content, t0)
        for run in args.runs:
            config, processes, paced = CONFIGURATIONS[run]
            if "postgresql" in run and pg_problem:
                continue
            got: list[Result] = []
            for job in ("check-ins", "weekly posts"):
                name = f"{job}, {config}"
                pg = args.pg if "postgresql" in run else None
                url = await fresh_database(pg, children.workdir, name)
                setup = Setup.of(name, url, processes, key, paced=paced)
                if job == "check-ins":
                    delivery = run_checkins(context, setup, members)
                else:
                    delivery = run_weekly(context, setup, servers)
                result = await guarded(children, name, args.servers, delivery)
                print(verdict(result))
                got.append(result)
            pairs.append((config, got[0], got[1]))
    print(
        f"\n(2) the weekly post dispatch, {len(servers):,} servers due at once, against DM "
        f"check-in delivery (baseline: x ci = weekly / check-ins of the same configuration):"
    )
    dispatch_table(pairs)
    return [r for _, base, weekly in pairs for r in (base, weekly) if r is not None]


async def bench(args: argparse.Namespace) -> int:
    began = time.perf_counter()
    print(machine_line())
    print(code_version())
    key = generate_key()
    cipher = TextCipher(parse_key(key))
    pg_problem = await postgres_reachable(args.pg)
    if pg_problem:
        print(f"PostgreSQL skipped: {args.pg.render_as_string()} unreachable: {pg_problem}")
    failed = False
    with tempfile.TemporaryDirectory(prefix="crossroads-moderation-") as tmp:
        workdir = Path(tmp)
        async with sampled(Children(workdir), drop=None if pg_problem else args.pg) as children:
            if "stats" in args.parts:
                await run_stats_part(args, workdir, cipher, pg_problem)
            if "dispatch" in args.parts:
                results = await run_dispatch_part(args, children, key, pg_problem)
                failed = any(r.failed for r in results)
        if args.keep or failed:
            keep_run_files(workdir, args.keep, prefix="crossroads-moderation-logs-")
    print(f"\ntotal runtime {time.perf_counter() - began:.0f} s; {load_average()}")
    return 1 if failed else 0


def main() -> None:
    if sys.argv[1:2] == ["emulator"]:
        emulator_process()
        return
    sys.exit(asyncio.run(bench(parse_args())))


if __name__ == "__main__":
    main()
