"""Benchmark /advice purpose end to end: the real bot against a bare discord.py bot.

Both bots talk real HTTP and websocket to the Discord emulator (``sandbox.Emulator``) on
127.0.0.1, with the emulator's OpenAPI spec validation on for both. For each bot it sends
``--count`` (2,000) ``/advice purpose`` slash commands at ``--concurrency`` (50) and measures
each one from just before ``Emulator.slash`` to when the bot's answer reaches the emulator.
Fifty interactions first warm each bot up and are not counted. After the warm-up,
``gc.freeze()`` moves both bots' start-up objects out of the collector's way alike.

The baseline is a bare ``discord.Client`` (guilds intent only) whose ``CommandTree`` has one
group ``advice`` with one subcommand ``purpose`` answering ``"ok"`` ephemerally: the same route
shape as Crossroads, so the emulator does the same work apart from the size of the payload.
Crossroads runs as in production apart from its Discord: ``CrossroadsBot`` with the shipped
content, a fresh cipher key, the system clock and a fresh, migrated SQLite file.

Each round runs both bots, one after the other, each against its own fresh emulator (discord.py
aims every client at one API base, so the two cannot be live at once); the order alternates
between rounds (bare first in odd rounds) to cancel drift. The report gives per-round and
pooled p50, p99, mean and throughput, and the Crossroads / bare ratios (goal: p99 ratio
<= 1.5). Everything, the emulator included, runs in this one process and event loop, so the
emulator's own work delays both bots: each row also shows the time the emulator spent
validating request bodies against the spec (more for Crossroads' embed and buttons than for
"ok") and the full garbage collections during the batch.

Memory is measured first, in start-ups without load: each bot's resident set (VmRSS) growth
from just before it (and, for Crossroads, its database) was created to on_ready.

Timings are only printed. The script exits non-zero if the emulator recorded any violation
(a request breaking Discord's spec or limits, a late or double answer), if spec validation was
off, or if an interaction went unanswered.

Run from the repository root:

    .venv/bin/python bench/interactions.py [--count 2000] [--concurrency 50] [--rounds 2]
        [--profile crossroads.prof]

``--profile`` writes cProfile statistics of the measured Crossroads batches (the emulator's
side included, since it shares the process) for ``python -m pstats``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import logging
import os
import platform
import resource
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bare_bot
import discord
from bare_bot import BareBot

from advice.clock import SystemClock
from advice.content import load_content
from cogs._bot import CrossroadsBot, SyncPolicy
from db import Database
from db.crypto import TextCipher, generate_key, parse_key
from db.migrate import upgrade
from sandbox import Emulator, Violation, point_discord_at

REPO = Path(__file__).resolve().parents[1]
COMMAND = "advice purpose"
WARMUP = 50
MEMBERS = 50  # interactions come round-robin from this many members of one guild
GOAL_P99_RATIO = 1.5
CROSSROADS = "crossroads"
BARE = "bare"


# --- the baseline ------------------------------------------------------------------------------


# --- one bot against its own emulator ------------------------------------------------------


@dataclass
class Session:
    """A running bot, its emulator and the small world the interactions come from."""

    kind: str
    emulator: Emulator
    bot: discord.Client
    runner: asyncio.Task[None]
    guild_id: int
    channel_id: int
    members: list[int]
    rss_before: int  # bytes, just before the bot (and its database) was created
    rss_ready: int  # bytes, once the bot is ready (on_ready fired)
    cleanup: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    @property
    def rss_growth(self) -> int:
        return self.rss_ready - self.rss_before


def rss_bytes() -> int:
    """Current resident set size (VmRSS); the peak from getrusage where /proc is missing."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return peak_rss_bytes()


def peak_rss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB elsewhere


async def start_session(kind: str, workdir: Path) -> Session:
    # Validates against ../shared/discord-api-spec/openapi.json. It keeps no request log and
    # forgets each interaction once timed: Discord's memory is not the bot's, but here the
    # emulator shares the bot's process, and a growing heap would lengthen every GC pause.
    emulator = Emulator(record_requests=False)
    await emulator.start()
    if not emulator.validating:
        await emulator.stop()
        raise SystemExit("the emulator's spec validation is off: the comparison would be unfair")
    point_discord_at(emulator.api_base, emulator.gateway_url)
    guild_id = emulator.add_guild("Bench Server")
    channel_id = emulator.add_text_channel(guild_id, "general")
    members = [emulator.add_user(f"member{n}") for n in range(MEMBERS)]
    for member in members:
        emulator.add_member(guild_id, member)

    cleanup: list[Callable[[], Awaitable[None]]] = []
    gc.collect()
    rss_before = rss_bytes()
    bot: discord.Client
    if kind == CROSSROADS:
        database = Database(f"sqlite+aiosqlite:///{workdir / 'crossroads.db'}")
        cleanup.append(database.dispose)
        await upgrade(database)
        bot = CrossroadsBot(
            database=database,
            content=load_content(),
            cipher=TextCipher(parse_key(generate_key())),
            clock=SystemClock(),
            sync=SyncPolicy.AUTO,
        )
    else:
        bot = BareBot()
    runner = asyncio.create_task(bot.start("bench-token"))
    ready = asyncio.create_task(emulator.wait_until_ready())
    await asyncio.wait({runner, ready}, return_when=asyncio.FIRST_COMPLETED)
    if runner.done():  # the bot died while starting: show why rather than a time-out
        ready.cancel()
        await emulator.stop()
        runner.result()
    await ready
    # discord.py fires on_ready only after its guild_ready_timeout (2 s) with no GUILD_CREATE:
    # wait for it, so the bot is fully started and no ready event lands after it is closed.
    await asyncio.wait_for(bot.wait_until_ready(), timeout=30)
    rss_ready = rss_bytes()
    return Session(
        kind, emulator, bot, runner, guild_id, channel_id, members, rss_before, rss_ready, cleanup
    )


async def stop_session(session: Session) -> None:
    await session.bot.close()
    await session.runner
    await session.emulator.stop()
    for step in session.cleanup:
        await step()


# --- the load --------------------------------------------------------------------------------


@dataclass
class Overheads:
    """Time a batch spent outside both bots that still delays every interaction (one loop)."""

    validation: float = 0.0  # seconds in the emulator's spec validation of request bodies
    full_gcs: list[float] = field(default_factory=list)  # seconds of each generation-2 collection


@contextmanager
def measure_overheads(emulator: Emulator) -> Iterator[Overheads]:
    """Time the emulator's spec validation and the full garbage collections while active."""
    overheads = Overheads()
    validator = emulator._validator  # private, but the emulator has no timing hook
    assert validator is not None
    validate = validator.validate

    def timed_validate(method: str, template: str, body: Any) -> list[tuple[str, str]]:
        started = time.perf_counter()
        try:
            return validate(method, template, body)
        finally:
            overheads.validation += time.perf_counter() - started

    gc_started = 0.0

    def on_gc(phase: str, info: dict[str, int]) -> None:
        nonlocal gc_started
        if phase == "start":
            gc_started = time.perf_counter()
        elif info["generation"] == 2:
            overheads.full_gcs.append(time.perf_counter() - gc_started)

    validator.validate = timed_validate  # type: ignore[method-assign]
    gc.callbacks.append(on_gc)
    try:
        yield overheads
    finally:
        gc.callbacks.remove(on_gc)
        del validator.validate  # back to the class's method


@dataclass
class Batch:
    latencies: list[float]  # seconds, one per interaction
    wall: float  # seconds for the whole batch
    overheads: Overheads


def check_answer(kind: str, message: dict[str, Any]) -> None:
    """Make sure the time measured is for the real answer, not an error reply."""
    if kind == BARE:
        ok = message.get("content") == "ok"
    else:
        embeds = message.get("embeds")
        ok = isinstance(embeds, list) and str(embeds[0].get("title", "")).startswith("1.")
    if not ok:
        raise SystemExit(f"{kind}: unexpected answer to /{COMMAND}: {message}")


async def run_batch(session: Session, count: int, concurrency: int, *, check: bool) -> Batch:
    """``count`` interactions, at most ``concurrency`` in flight, timed one by one."""
    emulator = session.emulator
    gate = asyncio.Semaphore(concurrency)
    latencies = [0.0] * count

    async def one(index: int) -> None:
        member = session.members[index % len(session.members)]
        async with gate:
            started = time.perf_counter()
            interaction = await emulator.slash(
                member, COMMAND, guild_id=session.guild_id, channel_id=session.channel_id
            )
            # Timed to the answer's arrival, not to copying it out for the check below.
            latencies[index] = await interaction.answered() - started
        if check:
            check_answer(session.kind, await interaction.message())
        emulator.discard(interaction)

    with measure_overheads(emulator) as overheads:
        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(count)))
        wall = time.perf_counter() - started
    return Batch(latencies, wall, overheads)


# --- statistics and the report -------------------------------------------------------------


def percentile(values: Sequence[float], fraction: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass
class Summary:
    p50: float  # ms
    p99: float  # ms
    mean: float  # ms
    throughput: float  # interactions/s
    validation: float  # ms of emulator spec validation per interaction
    validation_share: float  # of the batches' wall time
    full_gcs: int
    full_gc_max: float  # ms

    @classmethod
    def of(cls, batches: Sequence[Batch]) -> Summary:
        latencies = [s * 1000 for batch in batches for s in batch.latencies]
        wall = sum(batch.wall for batch in batches)
        validation = sum(batch.overheads.validation for batch in batches)
        full_gcs = [pause for batch in batches for pause in batch.overheads.full_gcs]
        return cls(
            p50=percentile(latencies, 0.50),
            p99=percentile(latencies, 0.99),
            mean=statistics.fmean(latencies),
            throughput=len(latencies) / wall,
            validation=validation * 1000 / len(latencies),
            validation_share=validation / wall,
            full_gcs=len(full_gcs),
            full_gc_max=max(full_gcs, default=0.0) * 1000,
        )

    def row(self, label: str) -> str:
        return (
            f"  {label:<11} p50 {self.p50:7.2f} ms  p99 {self.p99:7.2f} ms  "
            f"mean {self.mean:7.2f} ms  {self.throughput:6.1f} interactions/s\n"
            f"  {'':<11} in the loop: emulator spec validation {self.validation:4.2f} ms per "
            f"interaction ({self.validation_share:.0%} of the time), {self.full_gcs} full GCs "
            f"(longest {self.full_gc_max:.0f} ms)"
        )


def mib(size: int) -> str:
    return f"{size / 2**20:.1f} MiB"


def growth(size: int) -> str:
    return f"{size / 2**20:+.2f} MiB"


def machine_line() -> str:
    return (
        f"machine: {os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), "
        f"{platform.platform()}; Python {platform.python_version()}; "
        f"discord.py {discord.__version__}"
    )


# --- main --------------------------------------------------------------------------------------


async def process_rss(kind: str) -> int:
    """VmRSS of the bot in a process of its own, once it has answered one /advice purpose.

    Crossroads runs as an operator runs it (`python bot.py`, pointed at the emulator); the
    bare bot runs from this file (`--serve-bare`). Neither shares memory with the emulator.
    """
    emulator = Emulator(record_requests=False)
    await emulator.start()
    guild_id = emulator.add_guild("RSS Server")
    channel_id = emulator.add_text_channel(guild_id, "general")
    member = emulator.add_user("member")
    emulator.add_member(guild_id, member)
    root = emulator.api_base.removesuffix("/api/v10")
    script = [str(REPO / "bot.py")] if kind == CROSSROADS else [bare_bot.__file__, root]
    with tempfile.TemporaryDirectory(prefix="crossroads-rss-") as workdir:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "DISCORD_TOKEN": "bench-token",
            "DISCORD_EMULATOR_URL": root,
            "DATABASE_URL": f"sqlite+aiosqlite:///{workdir}/crossroads.db",
            "LOG_LEVEL": "WARNING",
        }
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            *script,
            cwd=workdir,
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            await emulator.wait_until_ready(timeout=60)
            interaction = await emulator.slash(
                member, COMMAND, guild_id=guild_id, channel_id=channel_id
            )
            await interaction.answered(timeout=30)
            status = Path(f"/proc/{process.pid}/status").read_text(encoding="ascii")  # noqa: ASYNC240
            rss = next(
                int(line.split()[1]) * 1024 for line in status.splitlines() if "VmRSS:" in line
            )
        finally:
            process.send_signal(signal.SIGTERM)
            await process.wait()
            await emulator.stop()
    return rss


async def measure_startup(kind: str) -> tuple[int, int]:
    """Start ``kind`` against a fresh emulator, with no load: (RSS growth, RSS at ready)."""
    with tempfile.TemporaryDirectory(prefix="crossroads-bench-") as workdir:
        session = await start_session(kind, Path(workdir))
        await stop_session(session)
    gc.collect()
    return session.rss_growth, session.rss_ready


async def bench(args: argparse.Namespace) -> int:
    began = time.perf_counter()
    print(machine_line())
    print(
        f"load: {args.count} x /{COMMAND} per bot per round at concurrency {args.concurrency}, "
        f"{WARMUP} warm-up interactions first (not counted), {args.rounds} round(s), "
        f"{MEMBERS} members"
    )
    print("note: the emulator runs in this same process and event loop as the bot")
    print("note: gc.freeze() after each bot's warm-up, for both bots\n")

    # Memory first, before any load has grown (and freed into) the heap. The bare bot goes first,
    # so it, not Crossroads, pays for what any discord.py bot initialises once per process.
    print("start-up memory (RSS growth from just before the bot is created to on_ready):")
    rss_imports = rss_bytes()
    bare_growth, _ = await measure_startup(BARE)
    crossroads_growth, crossroads_rss = await measure_startup(CROSSROADS)
    print(f"  process after imports:     {mib(rss_imports)}")
    print(f"  bare:                      {growth(bare_growth)}")
    print(
        f"  crossroads:                {growth(crossroads_growth)}  (database open + migration, "
        f"content, bot and cogs, login, command sync, gateway)"
    )
    print(f"  process at crossroads ready: {mib(crossroads_rss)} (emulator and bare bot included)")
    bare_alone, crossroads_alone = await process_rss(BARE), await process_rss(CROSSROADS)
    print("bot in its own process after start-up and one answer (VmRSS):")
    print(f"  bare discord.py bot:       {mib(bare_alone)}")
    print(
        f"  crossroads (python bot.py): {mib(crossroads_alone)}  "
        f"({crossroads_alone / bare_alone:.2f}x bare)\n"
    )

    batches: dict[str, list[Batch]] = {CROSSROADS: [], BARE: []}
    violations: dict[str, list[Violation]] = {CROSSROADS: [], BARE: []}
    validating: dict[str, set[bool]] = {CROSSROADS: set(), BARE: set()}
    profiler = cProfile.Profile() if args.profile else None

    for round_number in range(1, args.rounds + 1):
        order = (BARE, CROSSROADS) if round_number % 2 else (CROSSROADS, BARE)
        print(f"round {round_number} ({' then '.join(order)}):")
        for kind in order:
            with tempfile.TemporaryDirectory(prefix="crossroads-bench-") as workdir:
                session = await start_session(kind, Path(workdir))
                try:
                    validating[kind].add(session.emulator.validating)
                    await run_batch(session, WARMUP, args.concurrency, check=True)
                    # Start-up objects (imports, SQLAlchemy, the spec) never die; freezing them
                    # keeps full GCs from rescanning them mid-run, for both bots alike.
                    gc.freeze()
                    profiling = profiler if kind == CROSSROADS else None
                    if profiling is not None:
                        profiling.enable()
                    batch = await run_batch(session, args.count, args.concurrency, check=False)
                    if profiling is not None:
                        profiling.disable()
                    batches[kind].append(batch)
                    violations[kind].extend(session.emulator.violations)
                finally:
                    gc.unfreeze()
                    await stop_session(session)
            print(Summary.of([batch]).row(kind))
            gc.collect()
        print()

    pooled = {kind: Summary.of(batches[kind]) for kind in (CROSSROADS, BARE)}
    print(f"pooled over {args.rounds} round(s), {args.rounds * args.count} interactions each:")
    for kind in (CROSSROADS, BARE):
        print(pooled[kind].row(kind))
    p99_ratio = pooled[CROSSROADS].p99 / pooled[BARE].p99
    p50_ratio = pooled[CROSSROADS].p50 / pooled[BARE].p50
    per_round = ", ".join(
        f"{Summary.of([c]).p99 / Summary.of([b]).p99:.2f}"
        for c, b in zip(batches[CROSSROADS], batches[BARE], strict=True)
    )
    print(f"  p99 ratio crossroads/bare: {p99_ratio:.2f} (per round: {per_round})")
    print(f"  p50 ratio crossroads/bare: {p50_ratio:.2f}")
    met = "MET" if p99_ratio <= GOAL_P99_RATIO else "NOT MET"
    print(f"  goal p99 ratio <= {GOAL_P99_RATIO}: {met}")
    gc_bound = False
    for kind in (CROSSROADS, BARE):
        summary = pooled[kind]
        tail = summary.p99 - summary.p50
        gc_bound = gc_bound or summary.full_gc_max >= tail / 2
        print(
            f"  {kind} tail: p99 - p50 = {tail:.0f} ms, "
            f"longest full GC {summary.full_gc_max:.0f} ms"
        )
    if gc_bound:
        print(
            "  caution: a full GC stops the one loop (emulator too) with every in-flight "
            "interaction in it, so these p99s largely measure GC pauses; compare p50 too"
        )
    print(f"  process RSS now {mib(rss_bytes())}, peak {mib(peak_rss_bytes())}\n")

    failed = False
    for kind in (CROSSROADS, BARE):
        on = validating[kind] == {True}
        print(
            f"{kind}: spec validation {'ON' if on else 'OFF'}, "
            f"emulator violations {len(violations[kind])}"
        )
        for violation in violations[kind][:10]:
            print(f"  {violation}")
        failed = failed or not on or bool(violations[kind])
    if profiler is not None:
        profiler.dump_stats(args.profile)
        print(f"profile of the measured crossroads batches written to {args.profile}")
    print(f"total runtime: {time.perf_counter() - began:.1f} s")
    return 1 if failed else 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=2000, help="measured interactions per run")
    parser.add_argument("--concurrency", type=int, default=50, help="interactions in flight")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each bot (order alternates)")
    parser.add_argument("--profile", type=Path, help="write cProfile stats of crossroads here")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(asyncio.run(bench(args)))


if __name__ == "__main__":
    main()
