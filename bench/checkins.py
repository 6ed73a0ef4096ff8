"""Benchmark DM check-in delivery: thousands of members due at once, against real processes.

Nothing measured shares a process with the load: the Discord emulator runs in its own process
(``bench/_checkin_emulator.py emulator``: spec validation on, the members and their DM channels
made there, counters read over a small control port), each bot is a real ``python bot.py``
(``DISCORD_TOKEN=bench``, ``DISCORD_EMULATOR_URL``, ``DATABASE_URL``, a fresh ``DATA_KEY``), and
this script only seeds the database, starts the processes, waits, and reads counters.

The load: ``--members`` (10,000) members, each with an active plan, their DM channel already
stored (as after the welcome DM, so a check-in should cost one request) and one pending
check-in due at their local hour. They differ as real members do: some 40 time zones (those
where it is 08:00-21:59 now, or the quiet hours would hold the check-in), weekly, fortnightly
and monthly cadences, and every stage of the year: new (first point next), part-way through
the first pass (some points reflected on, some only offered), and months in with a revisit due,
where the DM shows what they wrote then and most recently. About one in ten is overdue by hours
(the bot was down), so the DM says it is late; a few carry a snoozed point. Reflections are
encrypted with the bot's key; one member in 100 writes through ``db.journal.add_reflection``,
the rest are bulk-inserted into the models' tables. (No year-end summaries: they render a chart
in a worker process, a different cost.)

Runs (each with a fresh emulator and a fresh database):

(a) the ceiling, rate limit lifted (emulator unlimited, ``DISCORD_RATE_LIMIT=10000``):
    check-ins per second and bot CPU seconds per 1,000 check-ins, on SQLite with one process
    and on PostgreSQL with two processes sharing it, against a bare discord.py process that
    logs in and sends the same number of plain DMs (with nonces) as fast as it can through the
    same emulator, 500 at a time (the bot's batch at this limit). The clock runs from the first
    gateway session going live (the bot's loop ticks on connect) until every check-in is
    recorded as sent (the bare sender: its last DM). CPU is the bots' own over that span, from
    /proc samples every 50 ms; the whole-life figure (start-up included) comes from wait4.
(b) Discord's pace: the emulator's global limit at 50 requests per second (the bot's default
    ``DISCORD_RATE_LIMIT=50``), on ``--paced-members`` (2,000: 10,000 would take 200 s): the
    achieved rate (check-ins from connect to the last DM) / the limit (goal >= 0.95) and the
    429s received (goal 0), on PostgreSQL with two processes (the pace is shared through the
    database) and on SQLite with one.
(c) requests per check-in (goal 1: the DM channel is stored), in every run, with DM channels
    opened and resends after a 429 named.

Every run ends by checking that every due check-in was delivered exactly once: one bot message
per member, carrying the check-in's nonce, no nonce seen twice, no enforced-nonce resend, the
content the member's history calls for (point, first or revisit prompt, their earlier words,
the late marker, four buttons), and in the database each check-in done with its point and
prompt and the member's next one scheduled. Any error (a non-2xx answer other than a paced
run's 429s, a spec or limit violation, a missing, extra or wrong check-in, one sent but not
recorded, an ERROR in a bot's log, a bot that exited badly, a run that stalled) marks the run
FAILED, and its figures are printed only as a diagnosis, not as results. A run whose bot logged
an ERROR is stopped 20 s later; one with no DM for 30 s is over.

Medians and p99 are of the gaps between consecutive check-in DMs as the emulator received them
(p99 and the maximum show stalls, e.g. between batches), and of the DMs in each one-second bin.
The machine's load average is printed with each run: other work on it shows in every figure but
the requests.

Run from the repository root (about 7 minutes; ``--quick`` about 1.5):

    .venv/bin/python bench/checkins.py [--members 10000] [--paced-members 2000] [--quick]
        [--runs bare,sqlite,postgresql,paced-postgresql,paced-sqlite]
        [--postgres-url postgresql+asyncpg://postgres@127.0.0.1:5432/crossroads_bench]
        [--keep DIR] [--profile-bots DIR]

``--keep`` keeps the bots' and the emulator's logs and the emulator's reports (they are kept
anyway when a run fails); ``--profile-bots`` runs each bot under cProfile.

PostgreSQL runs use their own database (``crossroads_bench`` unless ``--postgres-url`` names
another; never ``test``), dropped and created afresh for each run and dropped at the end; they
are skipped, with a note, when the server is unreachable.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import itertools
import json
import os
import platform
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import asyncpg
import discord
from sqlalchemy import func, insert, select, text
from sqlalchemy.engine import URL, make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from advice.checkins import CheckinKind, Offer, YearHistory, offer_at
from advice.content import Content, load_content
from advice.journey import REVISIT_AFTER, PromptKind, prompt_kind
from advice.schedule import LATE_AFTER, Cadence, local_instant
from db import Database
from db.crypto import TextCipher, generate_key, parse_key
from db.journal import add_reflection
from db.migrate import upgrade
from db.models import Checkin, CheckinPlan, LeasedJob, Reflection, User

REPO = Path(__file__).resolve().parents[1]
HELPER = REPO / "bench" / "_checkin_emulator.py"
DEFAULT_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/crossroads_bench"

FIRST_USER_ID = 800_000_000_000_000_001  # Discord-snowflake sized, fixed
BOT_TOKEN = "bench"
LIMIT = 50.0  # Discord's global limit, requests per second
LIFTED = 10_000.0  # DISCORD_RATE_LIMIT when the emulator has no limit
BARE_CONCURRENCY = 500  # the bot's batch size at LIFTED (cogs/_dispatch.py)
GOAL_RATE_SHARE = 0.95
GOAL_REQUESTS_PER_CHECKIN = 1.0
SAMPLE_EVERY_S = 0.05
IDLE_LIMIT_S = 30.0  # no DM for this long: the run is over
NONCE_WINDOW = timedelta(minutes=5)  # how long the emulator (like Discord) matches a nonce
AFTER_ERROR_S = 20.0  # a run whose bot logged an ERROR has failed; stop it this much later
DELIVERY_MARGIN = timedelta(minutes=20)  # a check-in is delivered within this of seeding
ADD_REFLECTION_EVERY = 100  # one member in this many writes through db.journal.add_reflection
RUNS = ("bare", "sqlite", "postgresql", "paced-postgresql", "paced-sqlite")

# Where members live. Only those where it is daytime now get members (quiet hours 22-08).
ZONES: tuple[str | None, ...] = (
    None,  # never set a zone: UTC
    "Pacific/Honolulu",
    "America/Anchorage",
    "America/Los_Angeles",
    "America/Denver",
    "America/Mexico_City",
    "America/Chicago",
    "America/Bogota",
    "America/New_York",
    "America/Halifax",
    "America/St_Johns",
    "America/Sao_Paulo",
    "Atlantic/Azores",
    "Europe/London",
    "Africa/Lagos",
    "Europe/Berlin",
    "Europe/Paris",
    "Europe/Warsaw",
    "Africa/Cairo",
    "Europe/Helsinki",
    "Africa/Nairobi",
    "Europe/Istanbul",
    "Europe/Moscow",
    "Asia/Tehran",
    "Asia/Dubai",
    "Asia/Kabul",
    "Asia/Karachi",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Asia/Dhaka",
    "Asia/Yangon",
    "Asia/Bangkok",
    "Asia/Jakarta",
    "Asia/Shanghai",
    "Asia/Singapore",
    "Australia/Perth",
    "Asia/Tokyo",
    "Asia/Seoul",
    "Australia/Darwin",
    "Australia/Adelaide",
    "Australia/Sydney",
    "Pacific/Noumea",
    "Pacific/Auckland",
)
SENTENCES = (
    "I keep coming back to what a slower year would cost me.",
    "Talked it through with an old friend and felt lighter afterwards.",
    "The money question scares me less than it did in spring.",
    "Some days the quiet sounds like freedom, some days like giving up.",
    "I wrote down what I would regret at eighty and it was not the job.",
    "Still unsure, but the reasons sound more like mine than other people's now.",
    "Noticed I only want the title when I am tired.",
    "A good week: I did the work for its own sake and nobody saw it.",
    "My advisor's career looks less like freedom up close than it did from far away.",
    "If nobody ever cited me, would I still open the notebook on Saturday?",
)


# --- the members -------------------------------------------------------------------------------


@dataclass
class Written:
    point: str
    at: datetime
    text: str
    comfort: int | None


@dataclass
class Member:
    user_id: int
    zone: str | None
    cadence: Cadence
    weekday: int
    hour: int
    year_started_at: datetime
    scheduled_at: datetime  # the pending check-in's slot (and due time)
    stage: str  # new, first-pass, revisit
    reflections: list[Written] = field(default_factory=list)
    offers: list[tuple[str, datetime]] = field(default_factory=list)  # earlier check-ins sent
    snoozed: str | None = None  # the pending check-in carries this point (a snooze)
    via_add_reflection: bool = False
    offer: Offer | None = None  # what the pending check-in must carry
    late: bool | None = None  # must be marked late (None: it depends on the second it goes)

    def history(self) -> YearHistory:
        reflections: dict[str, list[datetime]] = {}
        offers: dict[str, list[datetime]] = {}
        for written in self.reflections:
            if written.at >= self.year_started_at:
                reflections.setdefault(written.point, []).append(written.at)
        for point, at in self.offers:
            if at >= self.year_started_at:
                offers.setdefault(point, []).append(at)
        return YearHistory(self.year_started_at, reflections, offers)

    def earlier_words(self) -> list[str]:
        """What the revisit DM must show: the first and the latest entry on its point."""
        assert self.offer is not None
        if self.offer.prompt is not PromptKind.REVISIT:
            return []
        mine = sorted(
            (w for w in self.reflections if w.point == self.offer.point), key=lambda w: w.at
        )
        if not mine:
            return []
        return [mine[0].text] if len(mine) == 1 else [mine[0].text, mine[-1].text]


def _slot(zone: str | None, t0: datetime, hours_ago: int) -> datetime | None:
    """The member's local hh:00 `hours_ago` hours before now, if a check-in could be there and
    still be deliverable (out of quiet hours) while this benchmark runs."""
    tz = ZoneInfo(zone) if zone else UTC
    local = (t0 - timedelta(minutes=1) - timedelta(hours=hours_ago)).astimezone(tz)
    if not 8 <= local.hour <= 21:
        return None
    for at in (t0 - timedelta(minutes=1), t0 + DELIVERY_MARGIN):  # now and while this runs
        if not 8 <= at.astimezone(tz).hour < 22:
            return None
    return local_instant(local.date(), local.hour, tz)


def _text(rng: random.Random, index: int, point: str, round_: int) -> str:
    words = " ".join(rng.sample(SENTENCES, k=rng.randint(1, 4)))
    body = f"[{index}:{point}:{round_}] {words}"
    if rng.random() < 0.05:  # a long one: the DM shows its first 900 characters
        body += " " + " ".join(rng.choices(SENTENCES, k=20))
    return body


def build_members(count: int, t0: datetime, content: Content, seed: int = 7) -> list[Member]:
    rng = random.Random(seed)
    order = list(content.slugs)
    members: list[Member] = []
    while len(members) < count:
        index = len(members)
        member = _member(rng, index, t0, order)
        if member is None:
            continue
        history = member.history()
        offer = offer_at(history, order, t0)
        if (
            offer is None
            or offer.kind is not CheckinKind.POINT
            or offer_at(history, order, t0 + DELIVERY_MARGIN) != offer
        ):
            continue  # nothing due (the scheduler would have skipped this slot), or unstable
        if member.snoozed is not None:
            reflected = bool(history.reflections.get(member.snoozed))
            offer = Offer(
                CheckinKind.POINT,
                member.snoozed,
                PromptKind.REVISIT if reflected else PromptKind.FIRST,
            )
        member.offer = offer
        overdue = t0 - member.scheduled_at
        if overdue > LATE_AFTER:
            member.late = True
        elif overdue + DELIVERY_MARGIN <= LATE_AFTER:
            member.late = False
        members.append(member)
    return members


def _member(rng: random.Random, index: int, t0: datetime, order: list[str]) -> Member | None:
    zone = rng.choice(ZONES)
    late = rng.random() < 0.20
    scheduled = _slot(zone, t0, rng.randint(2, 10) if late else 0)
    if scheduled is None:
        return None
    tz = ZoneInfo(zone) if zone else UTC
    local = scheduled.astimezone(tz)
    cadence = rng.choices(list(Cadence), weights=(5, 3, 2))[0]
    step = timedelta(weeks=cadence.weeks)
    roll = rng.random()
    stage = "new" if roll < 0.15 else "first-pass" if roll < 0.50 else "revisit"
    user_id = FIRST_USER_ID + index
    if stage == "new":
        year = scheduled - timedelta(days=rng.uniform(0.5, 6.5))
        touched = 0
    elif stage == "first-pass":
        touched = rng.randint(1, 5)
        year = scheduled - touched * step - timedelta(days=rng.uniform(0.5, 3))
    else:
        # Pick the revisit round that falls due now, and place the year around it.
        point, round_ = rng.randrange(len(order)), rng.choice((1, 1, 2))
        first_touch = t0 - rng.uniform(0.0, 0.9) * step - REVISIT_AFTER[round_ - 1]
        year = first_touch - point * step - timedelta(hours=rng.uniform(0, 30))
        touched = len(order)
    if year + timedelta(days=365) <= t0 + DELIVERY_MARGIN:
        return None  # the year would be over: a summary, not a check-in
    member = Member(
        user_id=user_id,
        zone=zone,
        cadence=cadence,
        weekday=local.weekday(),
        hour=local.hour,
        year_started_at=year,
        scheduled_at=scheduled,
        stage=stage,
        via_add_reflection=index % ADD_REFLECTION_EVERY == 0,
    )
    horizon = t0 - timedelta(hours=2)
    for number, point in enumerate(order[:touched]):
        at = year + number * step + timedelta(minutes=rng.uniform(0, 90))
        if at >= horizon:
            break
        _touch(rng, member, index, point, at, 0, horizon)
        if stage != "revisit":
            continue
        for round_, after in enumerate(REVISIT_AFTER, start=1):
            due = at + after
            # Rounds due before the member's last slot were offered then (and often answered);
            # one due since is what the pending check-in is for.
            if due > t0 - step:
                break
            _touch(rng, member, index, point, due, round_, horizon)
    if member.offers and rng.random() < 0.06:
        # Snoozed yesterday: the pending check-in brings that point back.
        point = member.offers[-1][0]
        member.snoozed = point
        member.offers.append((point, scheduled - timedelta(days=1)))
    return member


def _touch(
    rng: random.Random,
    member: Member,
    index: int,
    point: str,
    at: datetime,
    round_: int,
    horizon: datetime,
) -> None:
    """A check-in offered `point` at `at` and/or the member reflected on it soon after."""
    offered = rng.random() < 0.85
    reflected = rng.random() < (0.8 if round_ == 0 else 0.6)
    if not offered and not reflected:
        offered = True
    if offered:
        member.offers.append((point, at))
    if reflected:
        written_at = min(at + timedelta(hours=rng.uniform(0.2, 40)), horizon)
        comfort = rng.choice((1, 2, 3, 3, 4, 4, 5, None))
        member.reflections.append(
            Written(point, written_at, _text(rng, index, point, round_), comfort)
        )


# --- the database ------------------------------------------------------------------------------


def pg_admin_dsn(url: URL) -> str:
    return url.set(drivername="postgresql", database="postgres").render_as_string(
        hide_password=False
    )


async def reset_postgres(url: URL) -> None:
    """Drop and create the benchmark's own database (never `test`)."""
    connection = await asyncpg.connect(pg_admin_dsn(url), timeout=5)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')
        await connection.execute(f'CREATE DATABASE "{url.database}"')
    finally:
        await connection.close()


async def drop_postgres(url: URL) -> None:
    connection = await asyncpg.connect(pg_admin_dsn(url), timeout=5)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')
    finally:
        await connection.close()


async def pg_transactions(url: URL) -> int:
    """Transactions committed or rolled back in the benchmark's database so far."""
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(dsn, timeout=5)
    try:
        await connection.execute("SELECT pg_stat_clear_snapshot()")
        return int(
            await connection.fetchval(
                "SELECT xact_commit + xact_rollback FROM pg_stat_database "
                "WHERE datname = current_database()"
            )
        )
    finally:
        await connection.close()


async def postgres_reachable(url: URL) -> str | None:
    try:
        connection = await asyncpg.connect(pg_admin_dsn(url), timeout=5)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        return f"{type(exc).__name__}: {exc}"
    await connection.close()
    return None


async def seed(
    url: str, cipher: TextCipher, members: Sequence[Member], channels: dict[str, int], t0: datetime
) -> dict[int, int]:
    """Load the members; returns each member's pending check-in id."""
    database = Database(url)
    try:
        await upgrade(database)
        users, plans, sent, pending, reflections = [], [], [], [], []
        for m in members:
            created = m.year_started_at - timedelta(days=1)
            users.append(
                {
                    "id": m.user_id,
                    "timezone": m.zone,
                    "created_at": created,
                    "journey_started_at": m.year_started_at,
                    "dm_channel_id": channels[str(m.user_id)],
                }
            )
            plans.append(
                {
                    "user_id": m.user_id,
                    "cadence": m.cadence.value,
                    "weekday": m.weekday,
                    "hour": m.hour,
                    "status": "active",
                    "year_started_at": m.year_started_at,
                    "paused_until": None,
                    "problem": None,
                    "notice_pending": False,
                    "last_delivered_at": max((at for _, at in m.offers), default=None),
                    "created_at": m.year_started_at,
                    "updated_at": m.year_started_at,
                }
            )
            for point, at in sorted(m.offers, key=lambda offer: offer[1]):
                sent.append(
                    {
                        "user_id": m.user_id,
                        "kind": CheckinKind.POINT.value,
                        "point": point,
                        "prompt": None,
                        "scheduled_at": at,
                        "due_at": at,
                        "sent_at": at,
                        "message_id": random.getrandbits(62),
                        "state": "done",
                        "attempts": 1,
                        "late": False,
                    }
                )
            pending.append(
                {
                    "user_id": m.user_id,
                    "kind": CheckinKind.POINT.value,
                    "point": m.snoozed,
                    "prompt": None,
                    "scheduled_at": m.scheduled_at,
                    "due_at": m.scheduled_at,
                    "state": "pending",
                    "attempts": 0,
                    "late": False,
                }
            )
            if m.via_add_reflection:
                continue
            first: dict[str, datetime] = {}
            for w in sorted(m.reflections, key=lambda w: w.at):
                kind = prompt_kind(first.get(w.point), w.at)
                first.setdefault(w.point, w.at)
                reflections.append(
                    {
                        "user_id": m.user_id,
                        "point": w.point,
                        "kind": kind.value,
                        "body": cipher.encrypt(w.text, owner_id=m.user_id),
                        "comfort": w.comfort,
                        "created_at": w.at,
                    }
                )
        async with database.transaction() as session:
            # The models' tables, in bulk (executemany): the ORM's unit of work would take
            # longer than the benchmark itself.
            await session.execute(insert(User.__table__), users)
            await session.execute(insert(CheckinPlan.__table__), plans)
            if sent:
                await session.execute(insert(Checkin.__table__), sent)
            if reflections:
                await session.execute(insert(Reflection.__table__), reflections)
            await session.execute(insert(Checkin.__table__), pending)
        for m in members:  # one member in 25 writes through the project's own function
            if not m.via_add_reflection or not m.reflections:
                continue
            async with database.transaction() as session:
                for w in sorted(m.reflections, key=lambda w: w.at):
                    await add_reflection(
                        session,
                        cipher,
                        user_id=m.user_id,
                        point=w.point,
                        text=w.text,
                        comfort=w.comfort,
                        submission_key=None,
                        now=w.at,
                    )
        if not database.is_sqlite:
            async with database.transaction() as session:
                await session.execute(text("ANALYZE"))
        async with database.read() as session:
            rows = await session.execute(
                select(Checkin.user_id, Checkin.id).where(Checkin.state == "pending")
            )
            return {user_id: checkin_id for user_id, checkin_id in rows}
    finally:
        await database.dispose()


async def check_database(
    url: str, members: Sequence[Member], ids: dict[int, int]
) -> tuple[list[str], dict[int, datetime | None]]:
    """Every seeded check-in done, with its message, and the member's next one scheduled.
    Also returns the check-ins not done, each with when it may be claimed again."""
    problems: list[str] = []
    undone: dict[int, datetime | None] = {}
    database = Database(url)
    try:
        async with database.read() as session:
            rows = (
                await session.execute(
                    select(
                        Checkin.id,
                        Checkin.user_id,
                        Checkin.state,
                        Checkin.message_id,
                        Checkin.late,
                        Checkin.point,
                        Checkin.prompt,
                        Checkin.lease_until,
                    ).where(Checkin.id.in_(list(ids.values())))
                )
            ).all()
            following = Counter(
                (
                    await session.scalars(
                        select(Checkin.user_id).where(
                            Checkin.state == "pending", Checkin.due_at > datetime.now(UTC)
                        )
                    )
                ).all()
            )
    finally:
        await database.dispose()
    by_user = {m.user_id: m for m in members}
    not_done = wrong = 0
    for checkin_id, user_id, state, message_id, _late, point, prompt, lease in rows:
        offer = by_user[user_id].offer
        assert offer is not None
        if state != "done" or message_id is None:
            not_done += 1
            undone[checkin_id] = lease
        elif point != offer.point or prompt != (offer.prompt and offer.prompt.value):
            wrong += 1
    if len(rows) != len(ids):
        problems.append(f"{len(ids) - len(rows)} seeded check-ins missing from the database")
    if not_done:
        problems.append(f"{not_done} check-ins not recorded as done with a message id")
    if wrong:
        problems.append(f"{wrong} check-ins recorded with another point or prompt")
    no_next = sum(1 for m in members if following[m.user_id] != 1)
    if no_next:
        problems.append(f"{no_next} members without exactly one future check-in scheduled")
    return problems, undone


# --- processes -----------------------------------------------------------------------------


def slug(label: str) -> str:
    """A file name for a run's or a process's label."""
    return re.sub(r"[^A-Za-z0-9]+", "-", label).strip("-")


def proc_cpu(pid: int, task: int | None = None) -> float | None:
    """User + system CPU seconds of one process (or one of its threads) so far."""
    path = f"/proc/{pid}/stat" if task is None else f"/proc/{pid}/task/{task}/stat"
    try:
        with open(path, encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main_thread_share(pid: int) -> float | None:
    """The share of a live process's CPU so far spent in its main (event-loop) thread."""
    total, main = proc_cpu(pid), proc_cpu(pid, pid)
    return None if not total or main is None else main / total


def alive(pid: int) -> bool:
    """Still running (a zombie is not), without reaping it: wait4 must get its rusage."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None
    except ChildProcessError:
        return False


@dataclass
class Child:
    label: str
    popen: subprocess.Popen[bytes]
    log: Path
    samples: list[tuple[float, float]] = field(default_factory=list)  # (wall time, CPU s)
    rusage_cpu: float | None = None  # whole life, from wait4 after it exited
    main_thread: float | None = None  # share of its CPU in the event-loop thread, at the end
    exit_code: int | None = None
    _log_offset: int = 0

    def logged_error(self) -> bool:
        """Whether an ERROR line appeared in its log since the last call."""
        try:
            with open(self.log, "rb") as log:
                log.seek(self._log_offset)
                chunk = log.read()
        except OSError:
            return False
        # Only whole lines: a line still being written is read next time.
        end = chunk.rfind(b"\n") + 1
        self._log_offset += end
        return b" ERROR " in chunk[:end]

    def cpu_at(self, when: float) -> float:
        """CPU seconds used by `when` (wall time), interpolated between samples."""
        if not self.samples:
            return 0.0
        index = bisect.bisect_left(self.samples, (when, -1.0))
        if index == 0:
            return self.samples[0][1]
        if index == len(self.samples):
            return self.samples[-1][1]
        (t0, c0), (t1, c1) = self.samples[index - 1], self.samples[index]
        return c0 + (c1 - c0) * (when - t0) / max(1e-9, t1 - t0)

    def cpu_between(self, start: float, end: float) -> float:
        return self.cpu_at(end) - self.cpu_at(start)

    def log_lines(self, *needles: str) -> list[str]:
        try:
            lines = self.log.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return []
        return [line for line in lines if any(needle in line for needle in needles)]


class Children:
    """Every subprocess this script started; all are stopped at the end, whatever happens."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.children: list[Child] = []
        self._sampler: asyncio.Task[None] | None = None

    def spawn(
        self, label: str, args: list[str], env: dict[str, str], *, stdout: int | None = None
    ) -> Child:
        log = self.workdir / f"{slug(label)}.log"
        with open(log, "wb") as errors:
            popen = subprocess.Popen(
                [sys.executable, *args],
                cwd=self.workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=stdout if stdout is not None else errors,
                stderr=errors,
            )
        child = Child(label, popen, log)
        self.children.append(child)
        return child

    def start_sampling(self) -> None:
        async def sample() -> None:
            while True:
                now = time.time()
                for child in self.children:
                    if child.exit_code is None:
                        cpu = proc_cpu(child.popen.pid)
                        if cpu is not None:
                            child.samples.append((now, cpu))
                await asyncio.sleep(SAMPLE_EVERY_S)

        self._sampler = asyncio.create_task(sample())

    async def stop(self, child: Child, *, grace: float = 15.0, signal_first: bool = True) -> None:
        """SIGTERM (unless it is ending by itself), SIGKILL after `grace`; reaped with wait4,
        which also says how much CPU it used in its whole life."""
        if child.exit_code is not None:
            return
        if signal_first:
            child.main_thread = main_thread_share(child.popen.pid)
        waiter = asyncio.create_task(asyncio.to_thread(os.wait4, child.popen.pid, 0))
        if signal_first:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.popen.pid, signal.SIGTERM)
        done, _ = await asyncio.wait({waiter}, timeout=grace)
        if not done:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.popen.pid, signal.SIGKILL)
        _, status, usage = await waiter
        child.exit_code = os.waitstatus_to_exitcode(status)
        child.popen.returncode = child.exit_code  # reaped here, not by Popen
        child.rusage_cpu = usage.ru_utime + usage.ru_stime
        if child.popen.stdout is not None:
            child.popen.stdout.close()

    async def stop_all(self) -> None:
        if self._sampler is not None:
            self._sampler.cancel()
            self._sampler = None
        await asyncio.gather(*(self.stop(c) for c in self.children), return_exceptions=True)
        for child in self.children:  # whatever happened above: nothing outlives the benchmark
            if child.exit_code is None and alive(child.popen.pid):
                child.popen.kill()
                child.popen.wait()


def base_env() -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", ""), "PYTHONUNBUFFERED": "1"}


@dataclass
class EmulatorProcess:
    child: Child
    root: str
    control: str
    http: aiohttp.ClientSession

    async def get(self, route: str, **params: str) -> Any:
        timeout = aiohttp.ClientTimeout(total=120)
        async with self.http.get(f"{self.control}{route}", params=params, timeout=timeout) as r:
            r.raise_for_status()
            return await r.json()


async def start_emulator(
    children: Children,
    http: aiohttp.ClientSession,
    members: int,
    rate_limit: float | None,
    *,
    helper: Path = HELPER,
) -> EmulatorProcess:
    """`helper`: a script whose ``emulator`` mode takes the same arguments and prints the same
    first line (bench/moderation.py's adds a server per member)."""
    args = [str(helper), "emulator", "--members", str(members), "--first-id", str(FIRST_USER_ID)]
    if rate_limit is not None:
        args += ["--rate-limit", str(rate_limit)]
    child = children.spawn("emulator", args, base_env(), stdout=subprocess.PIPE)
    assert child.popen.stdout is not None
    line = await asyncio.wait_for(asyncio.to_thread(child.popen.stdout.readline), 120)
    if not line:
        raise SystemExit(f"the emulator did not start; see {child.log}")
    address = json.loads(line)
    return EmulatorProcess(child, address["root"], address["control"], http)


# --- one run -------------------------------------------------------------------------------


@dataclass
class Expect:
    nonce: str
    title: str | None = None
    content: str | None = None
    late: bool | None = None
    words: list[str] = field(default_factory=list)
    buttons: int = 0


@dataclass
class Result:
    name: str
    count: int  # check-ins due
    checks_database: bool = True
    errors: dict[str, int] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)
    sent: int = 0  # DMs the emulator created
    span: float = 0.0  # s from the first bot's connect to the end (see fill_timing)
    rate: float = 0.0  # check-ins per second over the span
    dm_rate: float = 0.0  # DMs per second from the first to the last
    record_tail: float | None = None  # s from the last DM to every check-in recorded
    cpu_window: float = 0.0  # bot CPU s between first and last DM (all its processes)
    cpu_life: float | None = None  # bot CPU s over its whole life (wait4)
    emulator_busy: float = 0.0  # the emulator's CPU share of one core in the window
    gaps_ms: list[float] = field(default_factory=list)
    per_second: list[int] = field(default_factory=list)
    to_first_dm: float = 0.0  # s from the first connect to the first DM
    checkin_requests: int = 0  # every request for a check-in: sends, retries, DM opens
    channel_opens: int = 0
    retries_429: int = 0
    db_transactions: int | None = None  # PostgreSQL: by the bots, from start to stop
    main_thread: float | None = None  # bots' CPU share in the event-loop thread (the rest:
    # aiosqlite's or discord.py's threads)
    other_requests: dict[str, int] = field(default_factory=dict)
    rate_limited: int = 0
    busiest_second: int = 0
    warnings: int = 0
    load: str = ""

    @property
    def failed(self) -> bool:
        return any(self.errors.values())

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def cpu_per_1000(self) -> float:
        return self.cpu_window * 1000 / max(1, self.sent)

    @property
    def requests_per_checkin(self) -> float:
        return self.checkin_requests / max(1, self.sent)


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def verify_messages(
    report: dict[str, Any],
    expected: dict[int, Expect],
    result: Result,
    *,
    paced: bool,
    members: Sequence[Member] = (),
) -> None:
    """One message per member, with the right nonce and content; no nonce twice."""
    missing = extra = wrong_nonce = wrong_content = 0
    missed: list[int] = []
    nonces: Counter[str] = Counter()
    for user_id, expect in expected.items():
        messages = report["messages"].get(str(user_id), [])
        for message in messages:
            nonces[str(message.get("nonce"))] += 1
        if not messages:
            missing += 1
            missed.append(user_id)
            continue
        extra += len(messages) - 1
        message = messages[0]
        if message.get("nonce") != expect.nonce:
            wrong_nonce += 1
            continue
        problem = content_problem(message, expect)
        if problem:
            wrong_content += 1
            if len(result.examples) < 3:
                result.examples.append(f"member {user_id}: {problem}")
    duplicates = sum(n - 1 for n in nonces.values() if n > 1)
    non_2xx = report["non_2xx"] - (report["rate_limited"] if paced else 0)
    result.errors.update(
        {
            "non-2xx answers": non_2xx,
            "violations": report["violations"],
            "missing check-ins": missing,
            "extra DMs": extra,
            "duplicate nonces": duplicates,
            "enforced-nonce resends": report["nonce_duplicates"],
            "wrong nonce": wrong_nonce,
            "wrong content": wrong_content,
        }
    )
    result.examples += report.get("violation_samples", [])[:3]
    if missed and members:
        by_id = {m.user_id: m for m in members}
        kinds = Counter(describe_member(by_id[user_id]) for user_id in missed)
        result.examples.append(
            "missing check-ins were for: "
            + "; ".join(f"{n} x {kind}" for kind, n in kinds.most_common(6))
        )


def describe_member(m: Member) -> str:
    assert m.offer is not None and m.offer.prompt is not None
    overdue = (datetime.now(UTC) - m.scheduled_at).total_seconds() / 3600
    return (
        f"{m.stage} {m.offer.prompt.value} {m.offer.point}"
        f"{' snoozed' if m.snoozed else ''}, {m.zone or 'UTC'}, due {overdue:.1f} h ago"
    )


def content_problem(message: dict[str, Any], expect: Expect) -> str | None:
    if expect.content is not None:
        return None if message["content"] == expect.content[:200] else "content differs"
    if message["title"] != expect.title:
        return f"title {message['title']!r}, expected {expect.title!r}"
    if expect.late is not None and message["late"] != expect.late:
        return f"late marker {message['late']}, expected {expect.late}"
    fields = message["fields"]
    if len(fields) != len(expect.words):
        return f"{len(fields)} earlier entries shown, expected {len(expect.words)}"
    for shown, words in zip(fields, expect.words, strict=True):
        if words[:60] not in shown:
            return f"earlier entry {shown[:80]!r} is not {words[:60]!r}"
    if message["buttons"] != expect.buttons:
        return f"{message['buttons']} buttons, expected {expect.buttons}"
    return None


def expectations(
    members: Sequence[Member], ids: dict[int, int], content: Content
) -> dict[int, Expect]:
    expected: dict[int, Expect] = {}
    for m in members:
        offer = m.offer
        assert offer is not None and offer.point is not None
        heading = content.point(offer.point).heading
        title = ("Check-in" if offer.prompt is PromptKind.FIRST else "Revisit") + f" · {heading}"
        expected[m.user_id] = Expect(
            nonce=f"cr-ci-{ids[m.user_id]}",
            title=title[:256],
            late=m.late,
            words=m.earlier_words(),
            buttons=4,
        )
    return expected


async def wait_delivered(
    emulator: EmulatorProcess, bots: Sequence[Child], count: int, within: float
) -> str | None:
    """Until the emulator has `count` DMs; otherwise why not: a bot died, time ran out,
    nothing was sent for IDLE_LIMIT_S (the rest were put off, e.g. to a retry much later), or
    a bot logged an ERROR (the run has failed; it goes on AFTER_ERROR_S to show how)."""
    started = last_change = time.monotonic()
    sent = -1
    failed_at: float | None = None
    while time.monotonic() < started + within:
        counters = await emulator.get("/counters")
        if counters["dm_created"] >= count:
            return None
        if failed_at is None and any(bot.logged_error() for bot in bots):
            failed_at = time.monotonic()
        if failed_at is not None and time.monotonic() - failed_at > AFTER_ERROR_S:
            return (
                f"stopped {AFTER_ERROR_S:.0f} s after the first ERROR in a bot's log, "
                f"{counters['dm_created']:,} of {count:,} DMs sent"
            )
        if counters["dm_created"] != sent:
            sent, last_change = counters["dm_created"], time.monotonic()
        elif time.monotonic() - last_change > IDLE_LIMIT_S:
            return f"gave up: no DM for {IDLE_LIMIT_S:.0f} s, {sent:,} of {count:,} sent"
        for bot in bots:
            if not alive(bot.popen.pid):
                return f"{bot.label} exited early, {counters['dm_created']:,} DMs sent"
        await asyncio.sleep(0.25)
    counters = await emulator.get("/counters")
    return f"timed out: {counters['dm_created']:,} of {count:,} DMs sent in {within:.0f} s"


def fill_timing(
    result: Result,
    report: dict[str, Any],
    bots: Sequence[Child],
    *,
    recorded_at: float | None,
    paced: bool,
) -> None:
    """The run's clock starts when the first bot's gateway session is live (its loop ticks on
    connect) and stops at the last DM (paced: the request rate Discord sees) or once every
    check-in is recorded as sent (the ceiling: the whole job). CPU is the bots' own over the
    same span, up to the moment everything was recorded."""
    times = sorted(report["dm_times"])
    n = result.sent = len(times)
    result.busiest_second = report["busiest_second"]
    result.rate_limited = report["rate_limited"]
    if n < 10 or not report["live_at"]:
        return
    start = min(report["live_at"].values())
    first, last = times[0], times[-1]
    end = last if paced or recorded_at is None else recorded_at
    result.span = end - start
    result.rate = n / result.span
    result.dm_rate = (n - 1) / (last - first)
    result.cpu_window = sum(bot.cpu_between(start, recorded_at or last) for bot in bots)
    result.gaps_ms = [(b - a) * 1000 for a, b in itertools.pairwise(times)]
    bins = Counter(int(at - first) for at in times)
    result.per_second = [bins.get(second, 0) for second in range(int(last - first) + 1)]
    result.to_first_dm = first - start
    result.record_tail = (recorded_at - last) if recorded_at else None


async def wait_recorded(
    url: str, ids: dict[int, int], within: float = 60.0, *, model: type[LeasedJob] = Checkin
) -> float | None:
    """When every seeded check-in (or other job) is recorded as done (None: not within
    `within` s)."""
    low, high = min(ids.values()), max(ids.values())
    database = Database(url)
    deadline = time.monotonic() + within
    query = select(func.count()).where(model.id.between(low, high), model.state == "done")
    try:
        while time.monotonic() < deadline:
            async with database.read() as session:
                if (await session.scalar(query) or 0) >= len(ids):
                    return time.time()
            await asyncio.sleep(0.1)
    finally:
        await database.dispose()
    return None


def fill_requests(result: Result, report: dict[str, Any]) -> None:
    for route, count in report["routes"].items():
        if route.startswith(("POST /channels/{id}/messages", "POST /users/@me/channels")):
            result.checkin_requests += count
            if route.startswith("POST /users/@me/channels"):
                result.channel_opens += count
            elif route.endswith("-> 429"):
                result.retries_429 += count
        else:
            result.other_requests[route] = count


def emulator_busy(emulator: EmulatorProcess, report: dict[str, Any]) -> float:
    """The emulator's CPU share of one core from the first to the last DM."""
    times = report["dm_times"]
    if len(times) < 2:
        return 0.0
    first, last = min(times), max(times)
    return emulator.child.cpu_between(first, last) / max(1e-9, last - first)


def save_report(workdir: Path, name: str, report: dict[str, Any]) -> None:
    """The emulator's report of a run, kept beside the logs (see --keep)."""
    (workdir / f"report-{slug(name)}.json").write_text(json.dumps(report), encoding="utf-8")


def code_version() -> str:
    """Which code was measured: the commit, and whether the bot's files differ from it."""
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--", "bot.py", "cogs", "db"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split("\n")
    except (OSError, subprocess.CalledProcessError):
        return "code: not a git checkout"
    changed = [line[3:] for line in dirty if line.strip()]
    return f"code: {head}" + (f" + uncommitted {', '.join(changed)}" if changed else "")


def load_average() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min)"


async def run_bare(children: Children, http: aiohttp.ClientSession, count: int) -> Result:
    result = Result("bare discord.py (baseline)", count, checks_database=False)
    emulator = await start_emulator(children, http, count, None)
    channels = await emulator.get("/channels")
    bare = children.spawn(
        "bare",
        [
            str(HELPER),
            "bare-sender",
            "--root",
            emulator.root,
            "--control",
            emulator.control,
            "--concurrency",
            str(BARE_CONCURRENCY),
        ],
        base_env(),
    )
    stopped = await wait_delivered(emulator, [bare], count, within=600)
    # It exits once all are sent.
    await children.stop(bare, grace=5 if stopped else 60, signal_first=bool(stopped))
    report = await emulator.get("/report")
    save_report(children.workdir, "bare", report)
    expected = {
        int(user_id): Expect(nonce=f"bare-{i}", content=f"Check-in {i}: how is it going?")
        for i, user_id in enumerate(channels)
    }
    verify_messages(report, expected, result, paced=False)
    result.errors["exit code"] = int(bare.exit_code != 0)
    result.errors["incomplete"] = int(stopped is not None)
    if stopped:
        result.examples.insert(0, stopped)
    fill_timing(result, report, [bare], recorded_at=None, paced=False)
    result.cpu_life = bare.rusage_cpu
    fill_requests(result, report)
    result.emulator_busy = emulator_busy(emulator, report)
    result.load = load_average()
    await children.stop(emulator.child)
    return result


async def run_crossroads(
    children: Children,
    http: aiohttp.ClientSession,
    *,
    name: str,
    url: str,
    processes: int,
    members: Sequence[Member],
    content: Content,
    key: str,
    t0: datetime,
    emulator_limit: float | None,
    bot_limit: float | None,
    paced: bool,
    profile_dir: Path | None,
) -> Result:
    count = len(members)
    result = Result(name, count)
    emulator = await start_emulator(children, http, count, emulator_limit)
    channels = await emulator.get("/channels")
    seeded = time.perf_counter()
    ids = await seed(url, TextCipher(parse_key(key)), members, channels, t0)
    print(f"  {name}: seeded {count:,} members in {time.perf_counter() - seeded:.1f} s")
    undone: dict[int, datetime | None] = {}

    async def check() -> list[str]:
        problems, found = await check_database(url, members, ids)
        undone.clear()
        undone.update(found)
        return problems

    bots, report, problems, recorded_at = await run_bots(
        children,
        emulator,
        result,
        url=url,
        processes=processes,
        key=key,
        bot_limit=bot_limit,
        profile_dir=profile_dir,
        paced=paced,
        ids=ids,
        check=check,
    )
    expected = expectations(members, ids, content)
    verify_messages(report, expected, result, paced=paced, members=members)
    if undone:
        # Sent (the emulator has the nonce) but not recorded: whoever claims it again sends
        # it again, and after Discord's nonce window (minutes) that is a second DM.
        sent_nonces = {
            message.get("nonce") for mine in report["messages"].values() for message in mine
        }
        orphans = [cid for cid in undone if f"cr-ci-{cid}" in sent_nonces]
        result.errors["sent but not recorded"] = len(orphans)
        if orphans:
            now = datetime.now(UTC)
            leases = [undone[cid] for cid in orphans]
            later = [lease for lease in leases if lease is not None and lease - now > NONCE_WINDOW]
            problems.append(
                f"{len(orphans)} check-ins were sent but still pending when the run ended: "
                f"claimed again, they are sent again with the same nonce; {len(later)} of them "
                f"only after {NONCE_WINDOW.seconds // 60} min, when Discord no longer matches "
                "the nonce (a second DM)"
            )
    return await conclude_run(
        children, emulator, bots, result, report, problems, recorded_at=recorded_at, paced=paced
    )


async def run_bots(
    children: Children,
    emulator: EmulatorProcess,
    result: Result,
    *,
    url: str,
    processes: int,
    key: str,
    bot_limit: float | None,
    profile_dir: Path | None,
    paced: bool,
    ids: dict[int, int],
    check: Callable[[], Awaitable[list[str]]],
    model: type[LeasedJob] = Checkin,
) -> tuple[list[Child], dict[str, Any], list[str], float | None]:
    """One run's bots, from start to stop: `processes` bots against the emulator until it has
    `result.count` messages and the database every job of `ids` done (`model`: check-ins or
    another timed job), then `check` of the database (a few times: the last writes may still
    be landing). Returns the bots, the emulator's report, the problems and when every job was
    recorded."""
    pg_url = None if url.startswith("sqlite") else make_url(url)
    transactions_before = await pg_transactions(pg_url) if pg_url else 0
    bots = spawn_bots(
        children,
        emulator,
        name=result.name,
        url=url,
        processes=processes,
        key=key,
        bot_limit=bot_limit,
        profile_dir=profile_dir,
    )
    within = 60 + result.count / (LIMIT * 0.9 if paced else 50)
    stopped = await wait_delivered(emulator, bots, result.count, within)
    recorded_at = None if stopped else await wait_recorded(url, ids, model=model)
    for _ in range(1 if stopped else 10):
        problems = await check()
        if not problems:
            break
        await asyncio.sleep(0.5)
    if stopped:
        problems.insert(0, stopped)
    report = await stop_bots(
        children, emulator, bots, result, problems, pg_url=pg_url, transactions=transactions_before
    )
    return bots, report, problems, recorded_at


def spawn_bots(
    children: Children,
    emulator: EmulatorProcess,
    *,
    name: str,
    url: str,
    processes: int,
    key: str,
    bot_limit: float | None,
    profile_dir: Path | None,
) -> list[Child]:
    """`processes` real bots (python bot.py) against the emulator, sharing one database."""
    env = {
        **base_env(),
        "DISCORD_TOKEN": BOT_TOKEN,
        "DISCORD_EMULATOR_URL": emulator.root,
        "DATABASE_URL": url,
        "DATA_KEY": key,
        "LOG_LEVEL": "INFO",
    }
    if bot_limit is not None:
        env["DISCORD_RATE_LIMIT"] = str(bot_limit)
    bots = []
    for n in range(processes):
        label = f"bot{n}-{name}"
        args = [str(REPO / "bot.py")]
        if profile_dir is not None:
            prof = profile_dir / f"{slug(label)}.prof"
            args = ["-m", "cProfile", "-o", str(prof), *args]
        bots.append(children.spawn(label, args, env))
    return bots


async def stop_bots(
    children: Children,
    emulator: EmulatorProcess,
    bots: Sequence[Child],
    result: Result,
    problems: list[str],
    *,
    pg_url: URL | None,
    transactions: int,
) -> dict[str, Any]:
    """Stop the bots (after checking their sessions were all live) and return the emulator's
    report of the run; PostgreSQL's transactions since `transactions` go into `result`."""
    counters = await emulator.get("/counters")
    if counters["sessions"] < len(bots):
        problems.append(f"only {counters['sessions']} of {len(bots)} gateway sessions live")
    for bot in bots:
        await children.stop(bot)
    if pg_url:
        await asyncio.sleep(0.6)  # backends report their statistics at most every 500 ms
        result.db_transactions = await pg_transactions(pg_url) - transactions
    report: dict[str, Any] = await emulator.get("/report")
    save_report(children.workdir, result.name, report)
    return report


async def conclude_run(
    children: Children,
    emulator: EmulatorProcess,
    bots: Sequence[Child],
    result: Result,
    report: dict[str, Any],
    problems: list[str],
    *,
    recorded_at: float | None,
    paced: bool,
) -> Result:
    """The errors every bot run counts (its problems, its bots' logs and exit codes), its
    timing, CPU and requests; stops the emulator."""
    result.errors["run or database problems"] = len(problems)
    result.examples += problems
    errors = [line for bot in bots for line in bot.log_lines(" ERROR ", "Traceback")]
    result.errors["bot log errors"] = len(errors)
    result.examples += errors[:3]
    result.errors["bot exit codes"] = sum(1 for bot in bots if bot.exit_code != 0)
    # discord.py's heartbeat thread records a send after the emulator's instant ACK has
    # arrived, and then reports the whole heartbeat interval as latency: not the bot's doing.
    result.warnings = sum(
        1
        for bot in bots
        for line in bot.log_lines(" WARNING ")
        if "Can't keep up" not in line or "41.3s behind" not in line
    )
    fill_timing(result, report, bots, recorded_at=recorded_at, paced=paced)
    shares = [bot.main_thread for bot in bots if bot.main_thread is not None]
    result.main_thread = statistics.fmean(shares) if shares else None
    lives = [bot.rusage_cpu for bot in bots]
    result.cpu_life = None if None in lives else sum(c for c in lives if c is not None)
    fill_requests(result, report)
    result.emulator_busy = emulator_busy(emulator, report)
    result.load = load_average()
    await children.stop(emulator.child)
    return result


# --- the report ------------------------------------------------------------------------------


def describe_load(members: Sequence[Member]) -> str:
    stages = Counter(m.stage for m in members)
    prompts = Counter(m.offer.prompt.value for m in members if m.offer and m.offer.prompt)
    zones = len({m.zone for m in members})
    cadences = Counter(m.cadence.value for m in members)
    with_words = sum(1 for m in members if m.earlier_words())
    reflections = sum(len(m.reflections) for m in members)
    late = sum(1 for m in members if m.late)
    return (
        f"{len(members):,} members in {zones} time zones; cadences "
        + ", ".join(f"{k} {v:,}" for k, v in sorted(cadences.items()))
        + "; stages "
        + ", ".join(f"{k} {v:,}" for k, v in sorted(stages.items()))
        + f"; {reflections:,} earlier reflections "
        f"({sum(len(m.reflections) for m in members if m.via_add_reflection):,} via "
        f"add_reflection), {sum(len(m.offers) for m in members):,} earlier check-ins; due now: "
        + ", ".join(f"{k} prompt {v:,}" for k, v in sorted(prompts.items()))
        + f" ({with_words:,} revisits show earlier words), {late:,} overdue by hours (late), "
        f"{sum(1 for m in members if m.snoozed):,} snoozed points"
    )


def verdict(result: Result) -> str:
    if not result.failed:
        return (
            f"  check {result.name}: all {result.count:,} delivered exactly once (one message "
            f"per nonce, 0 duplicates, 0 resends), content "
            + ("and database as expected" if result.checks_database else "as expected")
        )
    errors = ", ".join(f"{k} {v}" for k, v in result.errors.items() if v)
    lines = [f"  check {result.name}: FAILED ({errors}); its figures are not results"]
    if result.gaps_ms:
        lines.append(
            f"    (for diagnosis only: {result.sent:,} DMs sent at {result.rate:.1f}/s, "
            f"bot CPU {result.cpu_per_1000:.2f} s per 1,000, max gap between DMs "
            f"{max(result.gaps_ms):.0f} ms, {result.rate_limited} 429s)"
        )
    lines += [f"    {example[:240]}" for example in result.examples[:6]]
    return "\n".join(lines)


def ceiling_table(results: Sequence[Result], baseline: Result | None) -> None:
    header = (
        f"  {'run':<30}{'check-ins':>10}{'errors':>7}{'rate/s':>9}{'x bare':>8}"
        f"{'CPU s/1000':>11}{'x bare':>8}{'gap p50 ms':>11}{'gap p99 ms':>11}"
        f"{'max gap ms':>11}{'req/check-in':>13}"
    )
    print(header)
    print("  " + "-" * (len(header) - 2))
    for r in results:
        if r.failed:
            print(f"  {r.name:<30}{r.count:>10,}{r.error_count:>7}  FAILED")
            continue
        base_ok = baseline is not None and not baseline.failed and baseline is not r
        rate_x = f"{r.rate / baseline.rate:>7.2f}x" if base_ok and baseline else f"{'':>8}"
        cpu_x = (
            f"{r.cpu_per_1000 / baseline.cpu_per_1000:>7.2f}x"
            if base_ok and baseline
            else f"{'':>8}"
        )
        print(
            f"  {r.name:<30}{r.count:>10,}{r.error_count:>7}{r.rate:>9.1f}{rate_x}"
            f"{r.cpu_per_1000:>11.2f}{cpu_x}{statistics.median(r.gaps_ms):>11.2f}"
            f"{percentile(r.gaps_ms, 0.99):>11.1f}{max(r.gaps_ms):>11.0f}"
            f"{r.requests_per_checkin:>13.4f}"
        )
    for r in results:
        if r.failed:
            continue
        print(f"  {r.name}: {notes(r)}")


def notes(r: Result) -> str:
    life = f"{r.cpu_life:.1f} s" if r.cpu_life is not None else "n/a"
    tail = f", all recorded {r.record_tail:.1f} s after the last" if r.record_tail else ""
    transactions = (
        f"{r.db_transactions / max(1, r.sent):.1f} PostgreSQL transactions per check-in; "
        if r.db_transactions is not None
        else ""
    )
    return (
        f"{r.span:.1f} s from connect; first DM {r.to_first_dm:.1f} s after connect{tail}; "
        f"DMs per second first to last {r.dm_rate:.1f}, per 1-s bin p50 "
        f"{statistics.median(r.per_second):.0f} p1 "
        f"{percentile(r.per_second[:-1] or r.per_second, 0.01):.0f}; {transactions}"
        f"whole-life CPU {life} (start-up, shutdown)"
        + (f", {r.main_thread:.0%} in the event loop's thread" if r.main_thread else "")
        + f"; emulator busy {r.emulator_busy:.0%} of a "
        f"core; {r.warnings} bot log warnings; {r.load}"
    )


def paced_table(results: Sequence[Result]) -> None:
    header = (
        f"  {'run':<30}{'check-ins':>10}{'errors':>7}{'429s':>6}{'rate/s':>9}"
        f"{'rate/limit':>11}{'goal >=0.95':>12}{'busiest 1 s':>12}{'CPU s/1000':>11}"
        f"{'gap p50 ms':>11}{'gap p99 ms':>11}{'max gap ms':>11}{'req/check-in':>13}"
    )
    print(header)
    print("  " + "-" * (len(header) - 2))
    for r in results:
        if r.failed:
            print(f"  {r.name:<30}{r.count:>10,}{r.error_count:>7}  FAILED")
            continue
        share = r.rate / LIMIT
        met = "MET" if share >= GOAL_RATE_SHARE else "NOT MET"
        print(
            f"  {r.name:<30}{r.count:>10,}{r.error_count:>7}{r.rate_limited:>6}{r.rate:>9.2f}"
            f"{share:>11.3f}{met:>12}{r.busiest_second:>12}{r.cpu_per_1000:>11.2f}"
            f"{statistics.median(r.gaps_ms):>11.2f}{percentile(r.gaps_ms, 0.99):>11.1f}"
            f"{max(r.gaps_ms):>11.0f}{r.requests_per_checkin:>13.4f}"
        )
    for r in results:
        if not r.failed:
            goal = "MET" if r.rate_limited == 0 else "NOT MET"
            print(f"  {r.name}: 429s goal 0: {goal}; {notes(r)}")


def requests_summary(results: Sequence[Result]) -> None:
    print("\n(c) requests per check-in (goal 1: the DM channel is stored):")
    for r in results:
        if r.failed:
            print(f"  {r.name}: FAILED")
            continue
        met = "MET" if r.requests_per_checkin <= GOAL_REQUESTS_PER_CHECKIN else "NOT MET"
        others = ", ".join(f"{k} x{v}" for k, v in sorted(r.other_requests.items()))
        print(
            f"  {r.name}: {r.checkin_requests:,} requests for {r.sent:,} check-ins = "
            f"{r.requests_per_checkin:.4f} ({met}): {r.channel_opens} DM channels opened, "
            f"{r.retries_429} resent after a 429; once per run, not per check-in: "
            f"{others or 'none'}"
        )


# --- main ----------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=10_000, help="members due in (a)")
    parser.add_argument("--paced-members", type=int, default=2_000, help="members due in (b)")
    parser.add_argument("--quick", action="store_true", help="1,000 and 500 members")
    parser.add_argument("--runs", default=",".join(RUNS), help="comma-separated subset")
    parser.add_argument("--postgres-url", default=DEFAULT_PG_URL)
    parser.add_argument("--keep", type=Path, help="keep logs and emulator reports here")
    parser.add_argument(
        "--profile-bots", type=Path, help="run the bots under cProfile, writing stats here"
    )
    args = parser.parse_args()
    if args.quick:
        args.members, args.paced_members = 1_000, 500
    args.paced_members = min(args.paced_members, args.members)
    args.runs = [run.strip() for run in args.runs.split(",") if run.strip()]
    if unknown := set(args.runs) - set(RUNS):
        parser.error(f"unknown runs: {', '.join(sorted(unknown))}")
    if args.members < 10:
        parser.error("--members must be at least 10")
    url = make_url(args.postgres_url)
    if url.database in (None, "test", "postgres"):
        parser.error("--postgres-url must name the benchmark's own database (not test)")
    args.pg = url
    return args


def print_machine() -> None:
    """What ran the benchmark, and which code it measured."""
    print(
        f"machine: {len(os.sched_getaffinity(0))} CPUs (nproc), Python "
        f"{platform.python_version()}, discord.py {discord.__version__}, "
        f"{platform.platform()}; {load_average()}"
    )
    print(code_version())


def keep_logs(workdir: Path, keep: Path | None, *, prefix: str) -> None:
    """Move the bots' and the emulator's logs and reports out of `workdir` (to `keep`, or a
    new directory named with `prefix`) before it is removed."""
    keep = keep or Path(tempfile.mkdtemp(prefix=prefix))
    keep.mkdir(parents=True, exist_ok=True)
    for name in os.listdir(workdir):
        if name.endswith((".log", ".json")):
            shutil.move(workdir / name, keep / name)
    print(f"bot and emulator logs and the emulator's reports kept in {keep}")


async def bench(args: argparse.Namespace) -> int:
    began = time.perf_counter()
    print_machine()
    print(
        "processes: the emulator (spec validation on), each bot (python bot.py) and the bare "
        "sender run in processes of their own; this one only seeds, starts, waits and reads"
    )
    content = load_content()
    t0 = datetime.now(UTC)
    members = build_members(args.members, t0, content)
    paced = members[: args.paced_members]
    print(f"load (a): {describe_load(members)}")
    if args.paced_members < args.members:
        print(f"load (b): the first {args.paced_members:,} of them: {describe_load(paced)}")
    key = generate_key()
    pg_problem = None
    if any("postgresql" in run for run in args.runs):
        pg_problem = await postgres_reachable(args.pg)
        if pg_problem:
            print(
                f"PostgreSQL runs skipped: {args.pg.render_as_string()} unreachable: {pg_problem}"
            )
    pg_url = args.pg.render_as_string(hide_password=False)

    ceiling: list[Result] = []
    pace: list[Result] = []
    baseline: Result | None = None
    exit_code = 0
    with tempfile.TemporaryDirectory(prefix="crossroads-checkins-") as tmp:
        workdir = Path(tmp)
        children = Children(workdir)
        children.start_sampling()
        try:
            async with aiohttp.ClientSession() as http:
                print("\nrunning (a), rate limit lifted:")
                if "bare" in args.runs:
                    baseline = await run_bare(children, http, args.members)
                    ceiling.append(baseline)
                    print(verdict(baseline))
                plans = [
                    ("sqlite", "(a) SQLite, 1 process", 1, members, None, LIFTED, False),
                    ("postgresql", "(a) PostgreSQL, 2 processes", 2, members, None, LIFTED, False),
                    (
                        "paced-postgresql",
                        "(b) PostgreSQL, 2 processes",
                        2,
                        paced,
                        LIMIT,
                        None,
                        True,
                    ),
                    ("paced-sqlite", "(b) SQLite, 1 process", 1, paced, LIMIT, None, True),
                ]
                for run, name, processes, who, emulator_limit, bot_limit, is_paced in plans:
                    if run not in args.runs:
                        continue
                    if "postgresql" in run and pg_problem:
                        continue
                    if is_paced and not pace:
                        print(
                            f"\nrunning (b), emulator global limit {LIMIT:g}/s, bot default "
                            f"DISCORD_RATE_LIMIT ({LIMIT:g}), {len(who):,} members (a subset: "
                            f"{args.members:,} at {LIMIT:g}/s would take "
                            f"{args.members / LIMIT:.0f} s):"
                        )
                    if "postgresql" in run:
                        await reset_postgres(args.pg)
                        url = pg_url
                    else:
                        url = f"sqlite+aiosqlite:///{workdir / (run + '.db')}"
                    try:
                        result = await run_crossroads(
                            children,
                            http,
                            name=name,
                            url=url,
                            processes=processes,
                            members=who,
                            content=content,
                            key=key,
                            t0=t0,
                            emulator_limit=emulator_limit,
                            bot_limit=bot_limit,
                            paced=is_paced,
                            profile_dir=args.profile_bots,
                        )
                    except (OSError, RuntimeError, TimeoutError, aiohttp.ClientError) as exc:
                        result = Result(name, len(who), errors={"run": 1})
                        result.examples.append(f"{type(exc).__name__}: {exc}")
                        await children.stop_all()
                        children = Children(workdir)
                        children.start_sampling()
                    (pace if is_paced else ceiling).append(result)
                    print(verdict(result))
        finally:
            await children.stop_all()
            if any("postgresql" in run for run in args.runs) and not pg_problem:
                await drop_postgres(args.pg)
        if args.keep or any(r.failed for r in ceiling + pace):
            keep_logs(workdir, args.keep, prefix="crossroads-checkins-logs-")

    if ceiling:
        print(
            f"\n(a) the ceiling, rate limit lifted (emulator unlimited, DISCORD_RATE_LIMIT="
            f"{LIFTED:g}); ratios against the bare discord.py baseline of this run:"
        )
        ceiling_table(ceiling, baseline)
    if pace:
        print(
            f"\n(b) Discord's pace: emulator global limit {LIMIT:g}/s, bot DISCORD_RATE_LIMIT "
            f"default {LIMIT:g}; {args.paced_members:,} members (subset of {args.members:,})"
        )
        paced_table(pace)
    requests_summary([r for r in ceiling + pace if r is not baseline])
    if any(r.failed for r in ceiling + pace):
        exit_code = 1
    print(f"\ntotal runtime {time.perf_counter() - began:.0f} s; {load_average()}")
    return exit_code


def main() -> None:
    sys.exit(asyncio.run(bench(parse_args())))


if __name__ == "__main__":
    main()
