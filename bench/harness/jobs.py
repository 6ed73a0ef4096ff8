"""Timed jobs (check-ins, weekly posts) delivered by real bots through the emulator in a
process of its own: starting the processes, waiting for every message, checking each one,
and the figures of a run (rate, CPU, gaps between messages, requests).

Nothing measured shares a process with the load: the emulator runs
bench/harness/emulator_server.py (or a benchmark's own mode of it), each bot is a real
``python bot.py`` (``DISCORD_EMULATOR_URL``, ``DATABASE_URL``, a fresh ``DATA_KEY``), and the
benchmark only seeds the database, starts the processes, waits, and reads counters.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import func, select
from sqlalchemy.engine import URL, make_url

from advice.content import Content
from db import Database
from db.models import LeasedJob
from harness.bots import CROSSROADS_SCRIPT, bot_env, profiled
from harness.database import drop_postgres, pg_transactions, reset_postgres
from harness.emulator_process import EmulatorProcess
from harness.machine import load_average
from harness.processes import Child, Children, alive, keep_logs, slug
from harness.stats import percentile

LIMIT = 50.0  # Discord's global limit, requests per second
LIFTED = 10_000.0  # DISCORD_RATE_LIMIT when the emulator has no limit
IDLE_LIMIT_S = 30.0  # no message for this long: the run is over
AFTER_ERROR_S = 20.0  # a run whose bot logged an ERROR has failed; stop it this much later


# --- a run ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Context:
    """What every run of a benchmark shares."""

    children: Children
    http: aiohttp.ClientSession
    content: Content
    t0: datetime  # when the benchmark began (jobs are due by then)


@dataclass(frozen=True)
class Setup:
    """Who delivers in a run: how many bots, on which database, at which rate limits."""

    name: str
    url: str  # the database's
    processes: int
    key: str  # DATA_KEY
    emulator_limit: float | None  # the emulator's global limit (None: unlimited)
    bot_limit: float | None  # the bots' DISCORD_RATE_LIMIT (None: their default)
    paced: bool  # at Discord's pace: the clock stops at the last message
    profile_dir: Path | None = None  # run the bots under cProfile, writing stats here

    @classmethod
    def of(
        cls,
        name: str,
        url: str,
        processes: int,
        key: str,
        *,
        paced: bool,
        profile_dir: Path | None = None,
    ) -> Setup:
        """Paced: the emulator at Discord's limit, the bots at their default; otherwise the
        emulator unlimited and the bots' limit lifted."""
        emulator_limit, bot_limit = (LIMIT, None) if paced else (None, LIFTED)
        return cls(name, url, processes, key, emulator_limit, bot_limit, paced, profile_dir)


async def fresh_database(pg: URL | None, workdir: Path, name: str) -> str:
    """A new database for a run: PostgreSQL's (dropped and made again) or a SQLite file."""
    if pg is None:
        return f"sqlite+aiosqlite:///{workdir / (slug(name) + '.db')}"
    await reset_postgres(pg)
    return pg.render_as_string(hide_password=False)


# --- what a run expects and found -------------------------------------------------------------


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

    def gap_cells(self) -> str:
        """The gaps between consecutive messages: p50, p99 and max, in ms."""
        gaps = self.gaps_ms
        return f"{statistics.median(gaps):>11.2f}{percentile(gaps, 0.99):>11.1f}{max(gaps):>11.0f}"


def verify_messages(
    report: dict[str, Any],
    expected: dict[int, Expect],
    result: Result,
    *,
    paced: bool,
    describe: Callable[[int], str] | None = None,
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
    if missed and describe is not None:
        kinds = Counter(describe(user_id) for user_id in missed)
        result.examples.append(
            "missing check-ins were for: "
            + "; ".join(f"{n} x {kind}" for kind, n in kinds.most_common(6))
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
    url: str, ids: dict[int, int], model: type[LeasedJob], within: float = 60.0
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
    times: list[float] = report["dm_times"]
    if len(times) < 2:
        return 0.0
    first, last = min(times), max(times)
    return emulator.child.cpu_between(first, last) / max(1e-9, last - first)


def save_report(workdir: Path, name: str, report: dict[str, Any]) -> None:
    """The emulator's report of a run, kept beside the logs (see --keep)."""
    (workdir / f"report-{slug(name)}.json").write_text(json.dumps(report), encoding="utf-8")


@dataclass
class Due:
    """The jobs a run must deliver, and how to check they were."""

    model: type[LeasedJob]  # check-ins or weekly posts
    ids: dict[int, int]  # member (or server) -> its job's id
    expected: dict[int, Expect]  # member -> the message they must get
    check: Callable[[], Awaitable[list[str]]]  # the database's problems after the run
    describe: Callable[[int], str] | None = None  # what a member with no message was due
    # Anything else wrong, from the result so far and the emulator's report.
    after: Callable[[Result, dict[str, Any]], list[str]] = lambda result, report: []


async def deliver(
    context: Context, emulator: EmulatorProcess, setup: Setup, count: int, due: Due
) -> Result:
    """A run's `count` jobs delivered by its bots, every message and the database checked;
    then the run's figures (see conclude_run). Stops the emulator."""
    children, result = context.children, Result(setup.name, count)
    bots, report, problems, recorded_at = await run_bots(
        children, emulator, result, setup, ids=due.ids, check=due.check, model=due.model
    )
    verify_messages(report, due.expected, result, paced=setup.paced, describe=due.describe)
    problems += due.after(result, report)
    return await conclude_run(
        children,
        emulator,
        bots,
        result,
        report,
        problems,
        recorded_at=recorded_at,
        paced=setup.paced,
    )


async def run_bots(
    children: Children,
    emulator: EmulatorProcess,
    result: Result,
    setup: Setup,
    *,
    ids: dict[int, int],
    check: Callable[[], Awaitable[list[str]]],
    model: type[LeasedJob],
) -> tuple[list[Child], dict[str, Any], list[str], float | None]:
    """One run's bots, from start to stop: `setup.processes` bots against the emulator until
    it has `result.count` messages and the database every job of `ids` done (`model`:
    check-ins or another timed job), then `check` of the database (a few times: the last
    writes may still be landing). Returns the bots, the emulator's report, the problems and
    when every job was recorded."""
    url = setup.url
    pg_url = None if url.startswith("sqlite") else make_url(url)
    transactions_before = await pg_transactions(pg_url) if pg_url else 0
    bots = spawn_bots(children, emulator, setup)
    within = 60 + result.count / (LIMIT * 0.9 if setup.paced else 50)
    stopped = await wait_delivered(emulator, bots, result.count, within)
    recorded_at = None if stopped else await wait_recorded(url, ids, model)
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


def spawn_bots(children: Children, emulator: EmulatorProcess, setup: Setup) -> list[Child]:
    """`setup.processes` real bots (python bot.py) against the emulator, sharing one
    database."""
    env = bot_env(emulator.root, setup.url, setup.key)
    if setup.bot_limit is not None:
        env["DISCORD_RATE_LIMIT"] = str(setup.bot_limit)
    bots = []
    for n in range(setup.processes):
        label = f"bot{n}-{setup.name}"
        profile = None if setup.profile_dir is None else setup.profile_dir / f"{slug(label)}.prof"
        bots.append(children.spawn(label, profiled([str(CROSSROADS_SCRIPT)], profile), env))
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
    await check_deferred(emulator, result.name)
    report: dict[str, Any] = await emulator.get("/report")
    save_report(children.workdir, result.name, report)
    return report


async def check_deferred(emulator: EmulatorProcess, name: str) -> None:
    """The request bodies whose spec check was deferred (off the clock), checked now: a bad
    one is a violation in the report, which fails the run."""
    checked = (await emulator.post("/check"))["checked"]
    if checked:
        print(f"  {name}: {checked:,} request bodies checked against the spec after the run")


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


def keep_run_files(workdir: Path, keep: Path | None, *, prefix: str) -> None:
    """Keep the bots' and the emulator's logs and reports out of `workdir` (in `keep`, or a
    new directory named with `prefix`) before it is removed."""
    keep = keep or Path(tempfile.mkdtemp(prefix=prefix))
    keep_logs(workdir, keep, (".log", ".json"))
    print(f"bot and emulator logs and the emulator's reports kept in {keep}")


@contextlib.asynccontextmanager
async def sampled(children: Children, *, drop: URL | None) -> AsyncIterator[Children]:
    """Children sampled while the runs last, all stopped after them whatever happens, and the
    PostgreSQL database ``drop`` (if any) dropped."""
    children.start_sampling()
    try:
        yield children
    finally:
        await children.stop_all()
        if drop is not None:
            await drop_postgres(drop)


async def guarded(children: Children, name: str, count: int, run: Awaitable[Result]) -> Result:
    """A run's result; a run that broke (a process, the network) is a failed result, and its
    processes are stopped so the next run starts clean."""
    try:
        return await run
    except (OSError, RuntimeError, TimeoutError, aiohttp.ClientError) as exc:
        result = Result(name, count, errors={"run": 1})
        result.examples.append(f"{type(exc).__name__}: {exc}")
        await children.stop_all()
        children.start_sampling()
        return result
