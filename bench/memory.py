"""Benchmark the bot's memory: after start-up, and at scale under interactions from many members.

Every bot runs in its own process (see bench/harness/bots.py) and its resident set is read from
/proc/<pid>/status (VmRSS); this process runs the Discord emulator and the load.

1. Start-up with an empty world (no server): Crossroads (``python bot.py run``) restarted on
   its SQLite database (schema current, commands synced: its usual start-up; the first start
   on a new database is shown too) against the bare discord.py bot (``bench/bare_bot.py``),
   each once discord.py fired on_ready and a second later. Goal (issue 8): Crossroads
   <= 75 MiB. Both import ``sandbox.redirect`` to reach the emulator, which a production bot
   never does: the figure printed beside them is what that import costs.
2. At scale: 1,000 servers with 10 channels and 10 roles each, and 100,000 members, who are
   never sent to the bot (it asks for no member intent; GUILD_CREATE carries only its own
   member). Then ``--operations`` (10,000) from as many distinct members, a mix of
   /advice (any page), /reflect (form opened, then submitted), /journal list (members with a
   journal of realistic size; some turn a page) and a little /progress; ``--concurrency`` at a
   time. RSS after ready and every ``--sample-every`` (1,000) operations; the chart workers'
   (started by the first /progress) are reported apart (goal: <= 60 MiB each). Goal for the
   bot: <= 120 MiB, and flat after the first thousand operations (no growth per member: the
   samples' trend from there on at most 0.5 MiB per 1,000 operations).

Every answer is checked; wrong or missing answers, non-2xx answers to the bot and emulator
violations are counted, and any makes the run invalid (exit 1). Figures are only printed.

Run from the repository root:

    .venv/bin/python bench/memory.py [--quick] [--operations 10000] [--sample-every 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from harness.bot_names import PER_PAGE
from harness.bots import BARE, CROSSROADS, BotProcess
from harness.emulator import FIRST_USER_ID, BenchEmulator, Place, Problems, build_world
from harness.goals import goal
from harness.journals import Journals, Writer, load_sqlite
from harness.machine import load_average, machine_line
from harness.operations import (
    advice,
    closed_loop,
    forget_page,
    journal_list,
    journal_page,
    open_reflection,
    progress,
    stop_session,
    submit_reflection,
)
from harness.processes import keep_logs
from harness.stats import mib
from harness.texts import journal_size, reflection_length, text_of_length

from advice.content import load_content
from db import Database
from db.crypto import TextCipher, generate_key, parse_key
from db.migrate import upgrade

GUILDS, CHANNELS, ROLES, MEMBERS = 1_000, 10, 10, 100_000
STARTUP_GOAL_MIB = 75
SCALE_GOAL_MIB = 120
WORKER_GOAL_MIB = 60  # each chart worker (issue 8, item 2)
# Flat: from the first sample after 1,000 operations to the end, at most this much growth per
# 1,000 operations (half a KiB a member: no member's trace kept for good).
FLAT_MIB_PER_THOUSAND = 0.5
# Flat at scale (issue 17): after 30,000 interactions, within this much of after the first 1,000.
FLAT_INTERACTIONS, FLAT_WITHIN_MIB = 30_000, 2.0
# What the bot imports beyond discord.py, each measured in a fresh interpreter that already
# imported discord.py and what is listed before it (so each line is what it adds).
DEPENDENCIES = (
    "sqlalchemy",
    "sqlalchemy.orm",
    "sqlalchemy.ext.asyncio",
    "sqlalchemy.dialects.sqlite.aiosqlite",
    "yaml",
    "dotenv",
    "advice.content",
    "db.models",
    "db",
    "cogs.core.bot",
    "cogs.core.operator.startup",
    "bot",
)
# What only some processes load, measured after all of the above: with PostgreSQL, with
# METRICS_PORT, and AES-GCM's fallback where OpenSSL's libcrypto cannot be reached (db.aead).
ON_DEMAND = (
    ("sqlalchemy.dialects.postgresql.asyncpg", "PostgreSQL only"),
    ("cogs.core.prometheus", "METRICS_PORT only (Prometheus' client, aiohttp's server)"),
    ("cryptography.hazmat.primitives.ciphers.aead", "only without a usable libcrypto"),
)
SETTLE_S = 1.0  # after on_ready, for whatever the bot starts right after it
# The mix of operations: /advice, /reflect (open + submit), /journal list (+ a page for some),
# /progress; by share of operations.
MIX = {"advice": 0.45, "reflect": 0.30, "journal": 0.24, "progress": 0.01}


# --- start-up --------------------------------------------------------------------------------


async def startup_rss(kind: str, workdir: Path, key: str, label: str) -> int:
    """VmRSS of ``kind`` started against an emulator with no server, once ready. Crossroads
    keeps its database (``label``.db) from one start to the next."""
    emulator = BenchEmulator()
    await emulator.start()
    url = f"sqlite+aiosqlite:///{workdir / f'{label}.db'}"
    bot = await BotProcess.start(
        kind, emulator, workdir, database_url=url, data_key=key, label=f"{label}-{kind}"
    )
    try:
        await bot.wait_ready(emulator)
        await asyncio.sleep(SETTLE_S)
        return bot.rss()
    finally:
        await bot.stop()
        await emulator.stop()


def dependency_costs(names: tuple[str, ...]) -> list[tuple[str, int]]:
    """(module, VmRSS it adds) for `names`, imported in order after discord.py."""
    script = (
        "import importlib, sys\n"
        "import discord\n"
        "def rss():\n"
        "    for line in open('/proc/self/status'):\n"
        "        if line.startswith('VmRSS:'): return int(line.split()[1]) * 1024\n"
        "for name in sys.argv[1:]:\n"
        "    before = rss()\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except ImportError:\n"
        "        print(name, -1)\n"
        "        continue\n"
        "    print(name, rss() - before)\n"
    )
    repo = str(Path(__file__).resolve().parents[1])
    out = subprocess.run(
        [sys.executable, "-c", script, *names],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    return [(name, int(size)) for name, size in (line.split() for line in out.stdout.splitlines())]


def import_cost() -> tuple[int, int]:
    """VmRSS of a fresh interpreter after importing discord, then after also importing what
    bot.py imports to reach an emulator (sandbox.redirect)."""
    script = (
        "import discord\n"
        "def rss():\n"
        "    for line in open('/proc/self/status'):\n"
        "        if line.startswith('VmRSS:'): return int(line.split()[1]) * 1024\n"
        "before = rss()\n"
        "import sandbox.redirect\n"
        "print(before, rss())\n"
    )
    repo = str(Path(__file__).resolve().parents[1])
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=repo, capture_output=True, text=True, check=True
    )
    before, after = map(int, out.stdout.split())
    return before, after


# --- at scale --------------------------------------------------------------------------------


@dataclass
class Sample:
    operations: int
    interactions: int
    bot: int  # bytes
    helpers: list[tuple[int, str, int]]  # (pid, command line, bytes)
    elapsed: float


def plan_operations(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    kinds = list(MIX)
    return rng.choices(kinds, weights=[MIX[k] for k in kinds], k=count)


class Load:
    """The operations, one member each, in order; counts the interactions they sent."""

    def __init__(
        self,
        emulator: BenchEmulator,
        places: list[Place],
        kinds: list[str],
        entries: dict[int, int],
        slugs: tuple[str, ...],
        seed: int,
    ) -> None:
        self.emulator = emulator
        self.places = places
        self.kinds = kinds
        self.entries = entries
        self.pages = ("overview", *slugs)
        self.slugs = slugs
        self.rng = random.Random(seed)
        self.interactions = 0
        self.done: Counter[str] = Counter()

    async def run(self, index: int) -> float:
        place, kind = self.places[index], self.kinds[index]
        emulator, rng = self.emulator, self.rng
        if kind == "advice":
            self.interactions += 1
            latency = await advice(emulator, CROSSROADS, place, rng.choice(self.pages))
        elif kind == "reflect":
            self.interactions += 2
            form = await open_reflection(emulator, place, rng.choice(self.slugs))
            text = text_of_length(rng, reflection_length(rng))
            latency = await submit_reflection(emulator, CROSSROADS, form, text, rng.randint(1, 5))
        elif kind == "journal":
            self.interactions += 1
            latency, first = await journal_list(emulator, CROSSROADS, place)
            pages = -(-self.entries[place.user_id] // PER_PAGE)
            if pages > 1 and rng.random() < 0.5:
                self.interactions += 1
                await journal_page(emulator, CROSSROADS, first, rng.randrange(1, pages))
            forget_page(emulator, first)
        else:
            self.interactions += 1
            latency = await progress(emulator, CROSSROADS, place)
        self.done[kind] += 1
        return latency


def offset(
    operation: Callable[[int], Awaitable[float]], base: int
) -> Callable[[int], Awaitable[float]]:
    async def shifted(index: int) -> float:
        return await operation(base + index)

    return shifted


def sample(bot: BotProcess, load: Load, operations: int, started: float) -> Sample:
    bot.snapshot()
    return Sample(
        operations, load.interactions, bot.rss(), bot.helpers(), time.perf_counter() - started
    )


def print_sample(entry: Sample) -> None:
    helpers = ", ".join(f"{mib(size)} ({describe(command)})" for _, command, size in entry.helpers)
    print(
        f"  {entry.operations:>6,} operations {entry.interactions:>6,} interactions  "
        f"bot {mib(entry.bot):>10}   at {entry.elapsed:5.0f} s"
        + (f"   helpers: {helpers}" if helpers else "")
    )


def describe(command: str) -> str:
    if "chart_worker" in command:
        return "chart worker"
    if "resource_tracker" in command:
        return "resource tracker"
    return command[:40]


async def at_scale(
    args: argparse.Namespace, workdir: Path, key: str, slugs: tuple[str, ...]
) -> tuple[list[Sample], Problems]:
    kinds = plan_operations(args.operations, args.seed)
    rng = random.Random(args.seed)
    # Members with a journal: those who list it or ask for their progress, and as many others.
    order = list(range(MEMBERS))
    rng.shuffle(order)
    acting = order[: args.operations]
    readers = [acting[i] for i, kind in enumerate(kinds) if kind in ("journal", "progress")]
    others = order[args.operations : args.operations + len(readers)]
    writers = [
        Writer(
            user_id=FIRST_USER_ID + member,
            entries=journal_size(rng),
            decisions=rng.randint(0, 6),
            timezone=rng.choice((None, "Europe/Berlin", "America/New_York")),
        )
        for member in readers + others
    ]
    cipher = TextCipher(parse_key(key))
    path = workdir / "scale.db"
    database = Database(f"sqlite+aiosqlite:///{path}")
    await upgrade(database)
    await database.dispose()
    journals = Journals(cipher, writers, slugs, end=datetime.now(UTC), seed=args.seed)
    await asyncio.to_thread(load_sqlite, path, journals)
    print(
        f"database: SQLite, {len(writers):,} journals, {journals.rows:,} reflections "
        f"(journals of members who list or chart them, and of as many who do not)"
    )

    emulator = BenchEmulator()
    await emulator.start()
    started = time.perf_counter()
    places = build_world(
        emulator,
        guilds=GUILDS,
        members=MEMBERS,
        channels_per_guild=CHANNELS,
        roles_per_guild=ROLES,
    )
    print(
        f"world: {GUILDS:,} servers x {CHANNELS} channels x {ROLES} roles, {MEMBERS:,} members, "
        f"built in {time.perf_counter() - started:.1f} s"
    )
    bot = await BotProcess.start(
        CROSSROADS,
        emulator,
        workdir,
        database_url=f"sqlite+aiosqlite:///{path}",
        data_key=key,
        snapshots=args.trace,
    )
    problems = Problems()
    samples: list[Sample] = []
    try:
        started = time.perf_counter()
        await bot.wait_ready(emulator, timeout=600)
        print(f"ready in {time.perf_counter() - started:.1f} s; {load_average()}")
        await asyncio.sleep(SETTLE_S)
        entries = {w.user_id: w.entries for w in writers}
        load = Load(emulator, [places[m] for m in acting], kinds, entries, slugs, args.seed)
        gc.collect()
        gc.freeze()  # the world stays: keep the load generator's collector off it
        started = time.perf_counter()
        samples.append(sample(bot, load, 0, started))
        print_sample(samples[-1])
        for first in range(0, args.operations, args.sample_every):
            chunk = range(first, min(args.operations, first + args.sample_every))
            _, seen = await closed_loop(len(chunk), args.concurrency, offset(load.run, first))
            problems.absorb(seen)
            problems.absorb(emulator.take_problems())
            samples.append(sample(bot, load, chunk.stop, started))
            print_sample(samples[-1])
        print(f"  operations done: {dict(load.done)}; {load_average()}")
    finally:
        gc.unfreeze()
        await stop_session(bot, emulator, problems)
    return samples, problems


def report_scale(samples: list[Sample]) -> None:
    ready, last = samples[0], samples[-1]
    after_first = next((s for s in samples if s.operations >= 1000), last)
    growth = last.bot - after_first.bot
    # The trend of every sample from the first thousand on (two samples alone are noisy:
    # the collector and the allocator move RSS by a MiB either way).
    tail = [s for s in samples if s.operations >= after_first.operations]
    per_thousand = 0.0
    if len(tail) > 1:
        slope, _ = statistics.linear_regression(
            [s.operations for s in tail], [s.bot / 2**20 for s in tail]
        )
        per_thousand = slope * 1000
    flat = per_thousand <= FLAT_MIB_PER_THOUSAND
    peak = max(s.bot for s in samples)
    print(
        f"\nat scale: bot after ready {mib(ready.bot)}, after {last.operations:,} operations "
        f"{mib(last.bot)} (peak {mib(peak)}; goal <= {SCALE_GOAL_MIB} MiB: "
        f"{'met' if peak <= SCALE_GOAL_MIB * 2**20 else 'NOT MET'})"
    )
    print(
        f"  from {after_first.operations:,} to {last.operations:,} operations: "
        f"{growth / 2**20:+.1f} MiB; trend {per_thousand:+.2f} MiB per 1,000 operations "
        f"(flat means <= {FLAT_MIB_PER_THOUSAND:g}: {'flat' if flat else 'NOT FLAT'})"
    )
    base = next((s for s in samples if s.interactions >= 1000), last)
    grown = (last.bot - base.bot) / 2**20
    reached = last.interactions >= FLAT_INTERACTIONS
    verdict = (
        ("met" if grown <= FLAT_WITHIN_MIB else "NOT MET")
        if reached
        else f"run {FLAT_INTERACTIONS:,} interactions to judge"
    )
    goal(
        f"RSS at scale, {base.interactions:,} to {last.interactions:,} interactions",
        f"{grown:+.1f} MiB",
        f"<= {FLAT_WITHIN_MIB:g} MiB over {FLAT_INTERACTIONS:,}",
        grown <= FLAT_WITHIN_MIB if reached else None,
    )
    print(
        f"  from {base.interactions:,} to {last.interactions:,} interactions: {grown:+.1f} MiB "
        f"(goal: after {FLAT_INTERACTIONS:,}, within {FLAT_WITHIN_MIB:g} MiB of after 1,000: "
        f"{verdict})"
    )
    workers = [size for _, command, size in last.helpers if "chart_worker" in command]
    if workers:
        met = "met" if max(workers) <= WORKER_GOAL_MIB * 2**20 else "NOT MET"
        print(
            f"  chart workers (apart): {len(workers)}, {', '.join(mib(s) for s in workers)} "
            f"(total {mib(sum(workers))}; goal <= {WORKER_GOAL_MIB} MiB each: {met})"
        )


def report_growth(snapshots: Path, samples: list[Sample]) -> None:
    """What the bot's Python code holds more of at the last sample than after 1,000
    interactions, by the lines that allocated it (tracemalloc; native memory not seen)."""
    import tracemalloc

    files = sorted(snapshots.glob("*.snapshot"))
    if len(files) != len(samples):
        print(f"\ntracemalloc: {len(files)} snapshots for {len(samples)} samples; no comparison")
        return
    first = next((i for i, s in enumerate(samples) if s.interactions >= 1000), len(samples) - 1)
    old = tracemalloc.Snapshot.load(str(files[first]))
    new = tracemalloc.Snapshot.load(str(files[-1]))
    held = sum(stat.size for stat in new.statistics("filename"))
    print(
        f"\ntracemalloc, {samples[first].interactions:,} to {samples[-1].interactions:,} "
        f"interactions: Python objects {mib(held)} at the end; grew most:"
    )
    for stat in new.compare_to(old, "traceback")[:8]:
        if stat.size_diff <= 0:
            break
        print(f"  {stat.size_diff / 1024:+8.1f} KiB in {stat.count_diff:+,} blocks, from:")
        for line in stat.traceback.format(limit=-4):
            print(f"      {line}")


async def bench(args: argparse.Namespace) -> int:
    began = time.perf_counter()
    print(machine_line())
    key = generate_key()
    slugs = load_content().slugs
    with tempfile.TemporaryDirectory(prefix="crossroads-memory-") as tmp:
        workdir = Path(tmp)
        print("\nstart-up, no server (VmRSS once ready):")
        bare = await startup_rss(BARE, workdir, key, "startup")
        # The first start migrates a new database (Alembic loads only then) and syncs the
        # commands; every later start finds both current: that is the bot's usual start-up.
        first = await startup_rss(CROSSROADS, workdir, key, "startup")
        crossroads = await startup_rss(CROSSROADS, workdir, key, "startup")
        before, after = import_cost()
        met = "met" if crossroads <= STARTUP_GOAL_MIB * 2**20 else "NOT MET"
        print(f"  bare discord.py bot:              {mib(bare)}")
        print(
            f"  crossroads (bot.py run), restart: {mib(crossroads)}  ({crossroads / bare:.2f}x "
            f"bare, +{mib(crossroads - bare)}; goal <= {STARTUP_GOAL_MIB} MiB: {met})"
        )
        print(
            f"  crossroads, first start:          {mib(first)}  (a new database: migrated, "
            f"commands synced)"
        )
        for name, size in (("restart", crossroads), ("first start", first)):
            under = size <= STARTUP_GOAL_MIB * 2**20
            goal(f"RSS after start-up, {name}", mib(size), f"<= {STARTUP_GOAL_MIB} MiB", under)
        print(
            f"  both import sandbox.redirect (to reach the emulator), which a production bot "
            f"never imports: +{mib(after - before)} over discord.py alone ({mib(before)})"
        )
        print("  what each dependency adds, imported in this order after discord.py:")
        for name, size in dependency_costs(DEPENDENCIES):
            cost = "not installed" if size < 0 else f"{size / 2**20:+5.1f} MiB"
            print(f"    {name:<45} {cost}")
        print("  what only some processes load, imported after all of those:")
        on_demand = dependency_costs(DEPENDENCIES + tuple(name for name, _ in ON_DEMAND))
        for (name, when), (_, size) in zip(ON_DEMAND, on_demand[len(DEPENDENCIES) :], strict=True):
            cost = "not installed" if size < 0 else f"{size / 2**20:+5.1f} MiB"
            print(f"    {name:<45} {cost}  ({when})")
        print(f"\nat scale ({args.operations:,} operations, {args.concurrency} at a time):")
        samples, problems = await at_scale(args, workdir, key, slugs)
        if args.keep:
            keep_logs(workdir, args.keep)
    report_scale(samples)
    if args.trace:
        await asyncio.sleep(1)  # the last snapshot is being written
        report_growth(args.trace, samples)
    print(f"\nproblems: {problems.summary()}")
    print(f"{load_average()}; total runtime {time.perf_counter() - began:.0f} s")
    if problems.count:
        print("INVALID: a run with errors is not a result")
        return 1
    return 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a run under two minutes")
    parser.add_argument("--operations", type=int, default=10_000)
    parser.add_argument("--sample-every", type=int, default=1_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", type=Path, help="copy the bots' logs here")
    parser.add_argument(
        "--trace",
        type=Path,
        help="run the bot at scale with tracemalloc, a snapshot at each sample written here, "
        "and print what grew most from the sample after 1,000 interactions to the last",
    )
    args = parser.parse_args()
    if args.trace:
        args.trace = args.trace.resolve()
        args.trace.mkdir(parents=True, exist_ok=True)
    if args.quick:
        args.operations, args.sample_every = 1_500, 500
    return args


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(asyncio.run(bench(parse_args())))


if __name__ == "__main__":
    main()
