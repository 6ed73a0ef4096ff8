"""Benchmark /advice, /reflect and /journal end to end: Crossroads against a bare discord.py bot.

Each bot runs in a process of its own (Crossroads as ``python bot.py run``, the baseline as
``python bench/bare_bot.py``, see bench/harness/); this process runs the Discord emulator
(spec validation on) and the load, and times each interaction from just before the emulator
dispatches it to when the bot's final answer reaches the emulator. Measured, for each bot:

* ``/advice purpose``: no database;
* ``/reflect`` submit: the form (opened beforehand, untimed, as a member opens it and types)
  submitted with a text of realistic length (log-normal, median 300 characters) and a rating:
  a write and an encryption;
* ``/journal list``: the first page of a member's journal (1 to 400 entries, log-normal,
  median 12; realistic text lengths): a read and five decryptions;
* journal page: a later page of the same journal (Next, to a page drawn at random among the
  member's pages), the read at an offset.

Every interaction comes from a different member (``--guilds`` servers); interactions arrive at
``--rate`` a second (Poisson arrivals: the load does not slow down for a slow bot). Each
session starts a fresh emulator, a bot, and for Crossroads a fresh copy of one seeded
database; warm-up interactions of every kind come first and are not timed. Each round runs
both bots, one after the other, the order alternating between rounds (bare first in odd
rounds) and so does the order of the commands.

The emulator checks every request body against Discord's spec after each batch, not as it
arrives (``--validate-inline`` for that): the check costs the emulator up to ~25 ms for a
journal page's embed, which would otherwise be timed as the bot's. Each batch also shows the
CPU each process spent per interaction (the bot's from /proc), which other work on a shared
machine does not inflate as it does latencies.

Every answer is checked (the real answer, private); wrong or missing answers, non-2xx answers
to the bot's requests and emulator violations (deferred checks included) are counted. A batch
with any is not a result: it is printed as INVALID and the script exits 1. Goals (issue 8):
/advice ratio <= 1.3 at p50 and p99; /reflect and /journal p99 <= 2x the bare bot. Timings
are only printed.

Run from the repository root:

    .venv/bin/python bench/interactions.py [--quick] [--rounds 4] [--count 300] [--rate 20]
        [--database sqlite|postgresql] [--keep DIR] [--profile DIR]

PostgreSQL comes from BENCH_DATABASE_URL (default
postgresql+asyncpg://postgres@127.0.0.1:5432/crossroads_bench); its public schema is reset.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import math
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from harness.bot_names import PER_PAGE
from harness.bots import BARE, CROSSROADS, BotProcess
from harness.database import DEFAULT_PG_URL, postgres_dsn, reset_postgres_schema
from harness.emulator import FIRST_USER_ID, BenchEmulator, Place, Problems, build_world
from harness.goals import goal
from harness.journals import Journals, Writer, load_postgresql, load_sqlite
from harness.machine import load_average, machine_line
from harness.operations import (
    JournalPage,
    OpenForm,
    advice,
    closed_loop,
    forget_page,
    journal_list,
    journal_page,
    open_loop,
    open_reflection,
    stop_session,
    submit_reflection,
)
from harness.processes import cpu_seconds, keep_logs
from harness.stats import Stats
from harness.texts import journal_size, reflection_length, text_of_length

from advice.content import load_content
from db import Database
from db.crypto import TextCipher, generate_key, parse_key
from db.database import parse_database_url
from db.migrate import upgrade

ADVICE, REFLECT, JOURNAL, PAGE = (
    "/advice purpose",
    "/reflect submit",
    "/journal list",
    "journal page",
)
OPERATIONS = (ADVICE, REFLECT, JOURNAL, PAGE)
GOALS = {  # operation -> (goal on the p50 ratio, goal on the p99 ratio)
    ADVICE: (1.3, 1.3),
    REFLECT: (None, 2.0),
    JOURNAL: (None, 2.0),
    PAGE: (None, 2.0),
}
GUILDS = 20


def split_pools(
    places: list[Place], count: int, warmup: int
) -> tuple[dict[str, list[Place]], dict[str, list[Place]]]:
    cursor = 0

    def take(n: int) -> list[Place]:
        nonlocal cursor
        taken = places[cursor : cursor + n]
        cursor += n
        return taken

    # The journal pools come first: the database has journals for exactly those ids.
    measured = {JOURNAL: take(count)}
    warm = {JOURNAL: take(warmup)}
    for name in (ADVICE, REFLECT):
        measured[name] = take(count)
        warm[name] = take(warmup)
    return measured, warm


@dataclass(frozen=True)
class Costs:
    """CPU ms per interaction of a batch: what the machine did besides waiting."""

    bot: float  # the bot's process
    bench: float  # this process: emulator and load generator
    validation: float  # wall ms of the emulator's spec checks, when they run inline

    def cells(self) -> str:
        inline = f" (inline spec checks {self.validation:.2f} ms)" if self.validation else ""
        return (
            f"CPU/interaction: bot {self.bot:5.2f} ms, emulator+load {self.bench:5.2f} ms{inline}"
        )


@dataclass
class Session:
    kind: str
    round: int
    latencies: dict[str, list[float]] = field(default_factory=dict)
    problems: dict[str, Problems] = field(default_factory=dict)
    costs: dict[str, Costs] = field(default_factory=dict)
    setup: Problems = field(default_factory=Problems)  # warm-up, forms opened, the bot's log


@dataclass
class Plan:
    count: int
    warmup: int
    rate: float
    members: int
    writers: list[Writer]
    slugs: tuple[str, ...]
    seed: int
    validate_inline: bool
    profile: Path | None


def make_plan(args: argparse.Namespace, slugs: tuple[str, ...]) -> Plan:
    rng = random.Random(args.seed)
    members = 3 * (args.count + args.warmup)
    # Journals for the journal pools (the first count + warmup members, see split_pools).
    writers = [
        Writer(
            user_id=FIRST_USER_ID + index,
            entries=journal_size(rng),
            decisions=rng.randint(0, 6),
            timezone=rng.choice((None, "Europe/Berlin", "America/New_York", "Asia/Kolkata")),
        )
        for index in range(args.count + args.warmup)
    ]
    return Plan(
        args.count,
        args.warmup,
        args.rate,
        members,
        writers,
        slugs,
        args.seed,
        args.validate_inline,
        args.profile,
    )


# --- the database -------------------------------------------------------------------------------


@dataclass
class Storage:
    """Where Crossroads keeps its data in this run, seeded once."""

    backend: str
    template: Path | None = None  # SQLite: copied fresh for each session
    pg_url: str | None = None

    async def session_url(self, workdir: Path, label: str) -> str:
        if self.template is not None:
            path = workdir / f"{label}.db"
            shutil.copyfile(self.template, path)
            return f"sqlite+aiosqlite:///{path}"
        assert self.pg_url is not None
        # A fresh emulator knows no commands: forget the synced hash, so the bot syncs.
        connection = await asyncpg.connect(postgres_dsn(parse_database_url(self.pg_url)))
        try:
            await connection.execute("DELETE FROM app_state WHERE key LIKE 'commands:%'")
        finally:
            await connection.close()
        return self.pg_url


async def seed_storage(backend: str, workdir: Path, journals: Journals) -> Storage:
    started = time.perf_counter()
    if backend == "sqlite":
        path = workdir / "template.db"
        database = Database(f"sqlite+aiosqlite:///{path}")
        await upgrade(database)
        await database.dispose()
        await asyncio.to_thread(load_sqlite, path, journals)
        storage = Storage(backend, template=path)
    else:
        raw = os.environ.get("BENCH_DATABASE_URL") or DEFAULT_PG_URL
        url = parse_database_url(raw)
        await reset_postgres_schema(url)
        database = Database(url)
        await upgrade(database)
        await database.dispose()
        connection = await asyncpg.connect(postgres_dsn(url))
        try:
            await load_postgresql(connection, journals)
        finally:
            await connection.close()
        storage = Storage(backend, pg_url=raw)
    print(
        f"database: {backend}, {len(journals.writers):,} journals, {journals.rows:,} reflections "
        f"loaded in {time.perf_counter() - started:.1f} s"
    )
    return storage


# --- one session: a bot, its emulator, the load ---------------------------------------------


async def run_session(
    kind: str,
    round_number: int,
    plan: Plan,
    storage: Storage,
    workdir: Path,
    key: str,
) -> Session:
    session = Session(kind, round_number)
    emulator = BenchEmulator(defer_validation=not plan.validate_inline)
    await emulator.start()
    if not emulator.validating:
        raise SystemExit("the emulator's spec validation is off: the comparison would be unfair")
    bot: BotProcess | None = None
    try:
        places = build_world(emulator, guilds=GUILDS, members=plan.members)
        measured, warm = split_pools(places, plan.count, plan.warmup)
        label = f"{kind}-round{round_number}"
        url = await storage.session_url(workdir, label) if kind == CROSSROADS else None
        profile = plan.profile / f"{label}.prof" if plan.profile else None
        bot = await BotProcess.start(
            kind, emulator, workdir, database_url=url, data_key=key, label=label, profile=profile
        )
        await bot.wait_ready(emulator)
        entries = {w.user_id: w.entries for w in plan.writers}
        rng = random.Random(plan.seed * 31 + round_number)

        # Warm-up: every kind of interaction, untimed (first uses compile and import things).
        await warm_up(emulator, kind, warm, entries, plan.slugs, rng, session.setup)
        session.setup.absorb(emulator.take_problems())
        gc.collect()
        gc.freeze()  # the load generator's start-up objects stay out of the collector's way

        order = [ADVICE, REFLECT, JOURNAL] if round_number % 2 else [JOURNAL, REFLECT, ADVICE]
        for name in order:
            if name == ADVICE:
                await measure(
                    session, emulator, bot, ADVICE, plan, adviser(emulator, kind, measured[ADVICE])
                )
            elif name == REFLECT:
                forms = await open_forms(emulator, measured[REFLECT], plan.slugs, session.setup)
                session.setup.absorb(emulator.take_problems())
                await measure(
                    session, emulator, bot, REFLECT, plan, submitter(emulator, kind, forms, rng)
                )
            else:
                firsts: list[JournalPage | None] = [None] * len(measured[JOURNAL])
                await measure(
                    session,
                    emulator,
                    bot,
                    JOURNAL,
                    plan,
                    lister(emulator, kind, measured[JOURNAL], firsts),
                )
                turns = [
                    (first, rng.randrange(1, pages(entries[first.place.user_id])))
                    for first in firsts
                    if first is not None and pages(entries[first.place.user_id]) > 1
                ]
                rng.shuffle(turns)
                await measure(
                    session,
                    emulator,
                    bot,
                    PAGE,
                    plan,
                    turner(emulator, kind, turns),
                    count=len(turns),
                )
                for first in firsts:
                    if first is not None:
                        forget_page(emulator, first)
    finally:
        gc.unfreeze()
        await stop_session(bot, emulator, session.setup)
    return session


def pages(entries: int) -> int:
    return math.ceil(entries / PER_PAGE)


Operation = Callable[[int], Awaitable[float]]


def adviser(emulator: BenchEmulator, kind: str, members: list[Place]) -> Operation:
    async def one(index: int) -> float:
        return await advice(emulator, kind, members[index])

    return one


def submitter(
    emulator: BenchEmulator, kind: str, forms: list[OpenForm | None], rng: random.Random
) -> Operation:
    texts = [text_of_length(rng, reflection_length(rng)) for _ in forms]
    ratings = [None if rng.random() < 0.1 else rng.randint(1, 5) for _ in forms]

    async def one(index: int) -> float:
        form = forms[index]
        if form is None:
            raise RuntimeError("its form never opened")
        return await submit_reflection(emulator, kind, form, texts[index], ratings[index])

    return one


def lister(
    emulator: BenchEmulator, kind: str, members: list[Place], firsts: list[JournalPage | None]
) -> Operation:
    async def one(index: int) -> float:
        latency, firsts[index] = await journal_list(emulator, kind, members[index])
        return latency

    return one


def turner(emulator: BenchEmulator, kind: str, turns: list[tuple[JournalPage, int]]) -> Operation:
    async def one(index: int) -> float:
        first, page = turns[index]
        return await journal_page(emulator, kind, first, page)

    return one


async def open_forms(
    emulator: BenchEmulator, members: list[Place], slugs: tuple[str, ...], problems: Problems
) -> list[OpenForm | None]:
    """Each member opens the form (untimed); None where it did not open (an error)."""
    forms: list[OpenForm | None] = [None] * len(members)

    async def one(index: int) -> float:
        forms[index] = await open_reflection(emulator, members[index], slugs[index % len(slugs)])
        return 0.0

    _, opened = await closed_loop(len(members), 8, one)
    problems.absorb(opened)
    return forms


async def warm_up(
    emulator: BenchEmulator,
    kind: str,
    warm: dict[str, list[Place]],
    entries: dict[int, int],
    slugs: tuple[str, ...],
    rng: random.Random,
    problems: Problems,
) -> None:
    n = len(warm[ADVICE])
    for operation in (
        adviser(emulator, kind, warm[ADVICE]),
        submitter(emulator, kind, await open_forms(emulator, warm[REFLECT], slugs, problems), rng),
    ):
        _, seen = await closed_loop(n, 4, operation)
        problems.absorb(seen)
    firsts: list[JournalPage | None] = [None] * n
    _, seen = await closed_loop(n, 4, lister(emulator, kind, warm[JOURNAL], firsts))
    problems.absorb(seen)
    turns = [
        (first, pages(entries[first.place.user_id]) - 1)
        for first in firsts
        if first is not None and pages(entries[first.place.user_id]) > 1
    ]
    _, seen = await closed_loop(len(turns), 4, turner(emulator, kind, turns))
    problems.absorb(seen)
    for first in firsts:
        if first is not None:
            forget_page(emulator, first)


async def measure(
    session: Session,
    emulator: BenchEmulator,
    bot: BotProcess,
    name: str,
    plan: Plan,
    operation: Operation,
    *,
    count: int | None = None,
) -> None:
    session.setup.absorb(emulator.take_problems())  # whatever came before is not this batch's
    count = plan.count if count is None else count
    bot_cpu, bench_cpu, validation = (
        cpu_seconds(bot.pid),
        time.process_time(),
        emulator.validation_seconds,
    )
    latencies, problems = await open_loop(
        count, plan.rate, operation, seed=plan.seed + session.round
    )
    per = 1000 / max(1, count)
    session.costs[name] = Costs(
        (cpu_seconds(bot.pid) - bot_cpu) * per,
        (time.process_time() - bench_cpu) * per,
        (emulator.validation_seconds - validation) * per,
    )
    problems.absorb(emulator.take_problems())  # runs the deferred checks: not in the costs
    session.latencies[name] = latencies
    session.problems[name] = problems


# --- the report ------------------------------------------------------------------------------


def print_session(session: Session) -> None:
    print(f"  {session.kind}:")
    for name in OPERATIONS:
        if name not in session.latencies:
            continue
        stats = Stats(session.latencies[name])
        problems = session.problems[name]
        flag = "" if not problems.count else f"   INVALID: {problems.summary()}"
        line = stats.cells() if stats.n else "no answers"
        print(f"    {name:<17} {line}   {session.costs[name].cells()}{flag}")
    if session.setup.count:
        print(f"    INVALID set-up (warm-up, forms, bot log): {session.setup.summary()}")


def pooled(sessions: list[Session], kind: str, name: str) -> Stats:
    return Stats(
        [s for session in sessions if session.kind == kind for s in session.latencies.get(name, [])]
    )


def verdict(value: float, goal: float | None) -> str:
    if goal is None:
        return ""
    return f"(goal <= {goal:g}: {'met' if value <= goal else 'NOT MET'})"


def report(sessions: list[Session], rounds: int, backend: str) -> bool:
    """The pooled table; whether every batch was valid."""
    print(f"\npooled over {rounds} round(s):")
    header = f"{'bare p50':>9} {'p99':>8}   {'crossroads p50':>14} {'p99':>8}   ratio p50, p99"
    print(f"  {'':<17} {header}")
    for name in OPERATIONS:
        bare, crossroads = pooled(sessions, BARE, name), pooled(sessions, CROSSROADS, name)
        if not bare.n or not crossroads.n:
            print(f"  {name:<17} (no answers)")
            continue
        p50_ratio, p99_ratio = crossroads.p50 / bare.p50, crossroads.p99 / bare.p99
        p50_goal, p99_goal = GOALS[name]
        print(
            f"  {name:<17} {bare.p50:7.2f}ms {bare.p99:6.2f}ms   {crossroads.p50:12.2f}ms "
            f"{crossroads.p99:6.2f}ms   {p50_ratio:.2f} {verdict(p50_ratio, p50_goal)}, "
            f"{p99_ratio:.2f} {verdict(p99_ratio, p99_goal)}"
        )
        per_round = []
        for round_number in range(1, rounds + 1):
            pair = {
                s.kind: Stats(s.latencies.get(name, []))
                for s in sessions
                if s.round == round_number
            }
            if all(pair.get(k) and pair[k].n for k in (BARE, CROSSROADS)):
                ours, base = pair[CROSSROADS], pair[BARE]
                per_round.append(f"{ours.p50 / base.p50:.2f}/{ours.p99 / base.p99:.2f}")
        print(f"  {'':<17} per round (p50/p99 ratio): {', '.join(per_round)}")
        for at, ratio, goal_ratio, ms, bare_ms in (
            ("p50", p50_ratio, p50_goal, crossroads.p50, bare.p50),
            ("p99", p99_ratio, p99_goal, crossroads.p99, bare.p99),
        ):
            if goal_ratio is not None:
                goal(
                    f"{name} {at}, {backend}",
                    f"{ratio:.2f}x bare ({ms:.1f} vs {bare_ms:.1f} ms)",
                    f"<= {goal_ratio:g}x",
                    ratio <= goal_ratio,
                )
    total = Problems()
    for session in sessions:
        total.absorb(session.setup)
        for problems in session.problems.values():
            total.absorb(problems)
    print(f"\nproblems over every measured and set-up interaction: {total.summary()}")
    return total.count == 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a run under two minutes")
    parser.add_argument("--rounds", type=int, default=4, help="runs of each bot (order alternates)")
    parser.add_argument("--count", type=int, default=300, help="measured interactions per kind")
    parser.add_argument("--rate", type=float, default=20.0, help="interactions arriving a second")
    parser.add_argument("--warmup", type=int, default=30, help="untimed interactions per kind")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--validate-inline",
        action="store_true",
        help="check bodies against the spec as they arrive (timed with the answers), "
        "not after each batch",
    )
    parser.add_argument("--keep", type=Path, help="copy the bots' logs here")
    parser.add_argument(
        "--profile",
        type=Path,
        help="run each bot under cProfile, writing <bot>-round<n>.prof here (slows them)",
    )
    args = parser.parse_args()
    if args.profile:
        args.profile = args.profile.resolve()  # the bots run in a directory of their own
        args.profile.mkdir(parents=True, exist_ok=True)
    if args.quick:
        args.rounds, args.count, args.warmup = 2, 80, 10
    return args


async def bench(args: argparse.Namespace) -> int:
    began = time.perf_counter()
    print(machine_line())
    content = load_content()
    slugs = content.slugs
    plan = make_plan(args, slugs)
    print(
        f"load: per bot and round, {args.count} of each of {', '.join(OPERATIONS[:3])} and up to "
        f"{args.count} journal pages, arriving at {args.rate:g}/s (Poisson), each from a "
        f"different member of {GUILDS} servers; {args.warmup} untimed warm-ups of each first; "
        f"{args.rounds} round(s)"
    )
    key = generate_key()
    cipher = TextCipher(parse_key(key))
    with tempfile.TemporaryDirectory(prefix="crossroads-bench-") as tmp:
        workdir = Path(tmp)
        journals = Journals(cipher, plan.writers, slugs, end=datetime.now(UTC), seed=args.seed)
        storage = await seed_storage(args.database, workdir, journals)
        sessions: list[Session] = []
        for round_number in range(1, args.rounds + 1):
            order = (BARE, CROSSROADS) if round_number % 2 else (CROSSROADS, BARE)
            print(f"\nround {round_number} ({' then '.join(order)}); {load_average()}")
            for kind in order:
                session = await run_session(kind, round_number, plan, storage, workdir, key)
                print_session(session)
                sessions.append(session)
        if args.keep:
            keep_logs(workdir, args.keep)
    valid = report(sessions, args.rounds, args.database)
    print(f"{load_average()}; total runtime {time.perf_counter() - began:.0f} s")
    if not valid:
        print("INVALID: a batch with errors is not a result")
    return 0 if valid else 1


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(asyncio.run(bench(parse_args())))


if __name__ == "__main__":
    main()
