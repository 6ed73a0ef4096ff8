"""Benchmark DM check-in delivery: thousands of members due at once, against real processes.

Nothing measured shares a process with the load: the Discord emulator runs in its own process
(``bench/harness/emulator_server.py``: spec validation on, the members and their DM channels
made there, counters read over a small control port), each bot is a real ``python bot.py``
(``DISCORD_TOKEN``, ``DISCORD_EMULATOR_URL``, ``DATABASE_URL``, a fresh ``DATA_KEY``), and
this script only seeds the database, starts the processes, waits, and reads counters.

The load: ``--members`` (10,000) members, each with an active plan, their DM channel already
stored (as after the welcome DM, so a check-in should cost one request) and one pending
check-in due at their local hour (see bench/harness/checkin_load.py: some 40 time zones,
three cadences, every stage of the year, some overdue by hours, a few snoozed points). (No
year-end summaries: they render a chart in a worker process, a different cost.)

Runs (each with a fresh emulator and a fresh database):

(a) the ceiling, rate limit lifted (emulator unlimited, ``DISCORD_RATE_LIMIT=10000``; its spec
    check of each body deferred to the end of the run, where a bad one still fails it, so the
    emulator's jsonschema cost, several times the bot's per check-in, is not what bounds it):
    check-ins per second and bot CPU seconds per 1,000 check-ins, on SQLite with one process
    and on PostgreSQL with two processes sharing it, against a bare discord.py process
    (``bench/bare_sender.py``) that logs in and sends the same number of plain DMs (with
    nonces) as fast as it can through the same emulator, 500 at a time (the bot's batch at
    this limit). The clock runs from the first gateway session going live (the bot's loop
    ticks on connect) until every check-in is recorded as sent (the bare sender: its last DM).
    CPU is the bots' own over that span, from /proc samples every 50 ms; the whole-life figure
    (start-up included) comes from wait4.
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
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from harness import goals
from harness.checkin_load import Member, build_members, run_checkins
from harness.database import DEFAULT_PG_URL, own_database, postgres_reachable
from harness.emulator_process import start_emulator
from harness.jobs import (
    LIFTED,
    LIMIT,
    Context,
    Expect,
    Result,
    Setup,
    check_deferred,
    emulator_busy,
    fill_requests,
    fill_timing,
    fresh_database,
    guarded,
    keep_run_files,
    notes,
    sampled,
    save_report,
    verdict,
    verify_messages,
    wait_delivered,
)
from harness.machine import code_version, load_average, machine_line
from harness.paths import BENCH
from harness.processes import Children, base_env
from harness.stats import print_header

from advice.content import Content, load_content
from db.crypto import generate_key

BARE_SENDER = BENCH / "bare_sender.py"
BARE_CONCURRENCY = 500  # the bot's batch size at LIFTED (cogs/_dispatch.py)
GOAL_RATE_SHARE = 0.95
GOAL_REQUESTS_PER_CHECKIN = 1.0
# Issue 17 at a lifted limit, judged with 10,000 members due at once: check-ins a second, by
# the processes of each run, and CPU per 1,000 check-ins against the bare bot of the same run.
GOAL_CEILING = {"sqlite": 500.0, "postgresql": 1000.0}
GOAL_CPU_X_BARE = 3.0
GOAL_MEMBERS = 10_000
RUNS = ("bare", "sqlite", "postgresql", "paced-postgresql", "paced-sqlite")


@dataclass(frozen=True)
class Plan:
    """One of the Crossroads runs: (a) the ceiling, rate limit lifted, or (b) paced."""

    run: str
    name: str
    processes: int
    paced: bool


PLANS = (
    Plan("sqlite", "(a) SQLite, 1 process", 1, paced=False),
    Plan("postgresql", "(a) PostgreSQL, 2 processes", 2, paced=False),
    Plan("paced-postgresql", "(b) PostgreSQL, 2 processes", 2, paced=True),
    Plan("paced-sqlite", "(b) SQLite, 1 process", 1, paced=True),
)


# --- the runs ------------------------------------------------------------------------------------


async def run_bare(context: Context, count: int) -> Result:
    children = context.children
    result = Result("bare discord.py (baseline)", count, checks_database=False)
    # As in the bot's ceiling runs: the spec check deferred, done before the report.
    emulator = await start_emulator(
        context.children, context.http, count, None, defer_validation=True
    )
    channels = await emulator.get("/channels")
    bare = children.spawn(
        "bare",
        [
            str(BARE_SENDER),
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
    await check_deferred(emulator, "bare")
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


@dataclass
class Results:
    ceiling: list[Result]
    pace: list[Result]
    baseline: Result | None = None

    @property
    def failed(self) -> bool:
        return any(r.failed for r in self.ceiling + self.pace)


async def run_all(
    args: argparse.Namespace,
    children: Children,
    members: list[Member],
    content: Content,
    t0: datetime,
    pg_problem: str | None,
) -> Results:
    """The bare baseline, then each Crossroads run asked for, each on a fresh database."""
    results = Results([], [])
    key = generate_key()
    async with aiohttp.ClientSession() as http:
        context = Context(children, http, content, t0)
        print("\nrunning (a), rate limit lifted:")
        if "bare" in args.runs:
            results.baseline = await run_bare(context, args.members)
            results.ceiling.append(results.baseline)
            print(verdict(results.baseline))
        for plan in PLANS:
            if plan.run not in args.runs or ("postgresql" in plan.run and pg_problem):
                continue
            who = members[: args.paced_members] if plan.paced else members
            if plan.paced and not results.pace:
                print(
                    f"\nrunning (b), emulator global limit {LIMIT:g}/s, bot default "
                    f"DISCORD_RATE_LIMIT ({LIMIT:g}), {len(who):,} members (a subset: "
                    f"{args.members:,} at {LIMIT:g}/s would take "
                    f"{args.members / LIMIT:.0f} s):"
                )
            pg = args.pg if "postgresql" in plan.run else None
            url = await fresh_database(pg, children.workdir, plan.name)
            setup = Setup.of(
                plan.name,
                url,
                plan.processes,
                key,
                paced=plan.paced,
                profile_dir=args.profile_bots,
            )
            result = await guarded(children, plan.name, len(who), run_checkins(context, setup, who))
            (results.pace if plan.paced else results.ceiling).append(result)
            print(verdict(result))
    return results


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


def failed_row(r: Result) -> str:
    return f"  {r.name:<30}{r.count:>10,}{r.error_count:>7}  FAILED"


def ceiling_table(results: Sequence[Result], baseline: Result | None) -> None:
    print_header(
        f"  {'run':<30}{'check-ins':>10}{'errors':>7}{'rate/s':>9}{'x bare':>8}"
        f"{'CPU s/1000':>11}{'x bare':>8}{'gap p50 ms':>11}{'gap p99 ms':>11}"
        f"{'max gap ms':>11}{'req/check-in':>13}"
    )
    for r in results:
        if r.failed:
            print(failed_row(r))
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
            f"{r.cpu_per_1000:>11.2f}{cpu_x}{r.gap_cells()}{r.requests_per_checkin:>13.4f}"
        )
    for r in results:
        if r.failed:
            continue
        print(f"  {r.name}: {notes(r)}")
    ceiling_goals(results, baseline)


def ceiling_goals(results: Sequence[Result], baseline: Result | None) -> None:
    """The ceiling and CPU goals, judged only at their size (fewer members: figures only)."""
    for r in results:
        if r.failed or r is baseline:
            continue
        judged = r.count >= GOAL_MEMBERS
        database = "postgresql" if "PostgreSQL" in r.name else "sqlite"
        least = GOAL_CEILING[database]
        size = f", {r.count:,} members" + ("" if judged else " (judged at 10,000)")
        goals.goal(
            f"check-ins, {r.name}: ceiling per second{size}",
            f"{r.rate:.0f}",
            f">= {least:g}",
            r.rate >= least if judged else None,
        )
        if baseline is None or baseline.failed:
            continue
        ratio = r.cpu_per_1000 / baseline.cpu_per_1000
        goals.goal(
            f"check-ins, {r.name}: CPU per 1,000 x bare{size}",
            f"{ratio:.2f}x",
            f"<= {GOAL_CPU_X_BARE:g}x",
            ratio <= GOAL_CPU_X_BARE if judged else None,
        )


def paced_table(results: Sequence[Result]) -> None:
    print_header(
        f"  {'run':<30}{'check-ins':>10}{'errors':>7}{'429s':>6}{'rate/s':>9}"
        f"{'rate/limit':>11}{'goal >=0.95':>12}{'busiest 1 s':>12}{'CPU s/1000':>11}"
        f"{'gap p50 ms':>11}{'gap p99 ms':>11}{'max gap ms':>11}{'req/check-in':>13}"
    )
    for r in results:
        if r.failed:
            print(failed_row(r))
            continue
        share = r.rate / LIMIT
        met = "MET" if share >= GOAL_RATE_SHARE else "NOT MET"
        goals.goal(
            f"check-ins paced, {r.name}: rate/limit",
            f"{share:.3f}",
            f">= {GOAL_RATE_SHARE:g}",
            share >= GOAL_RATE_SHARE,
        )
        print(
            f"  {r.name:<30}{r.count:>10,}{r.error_count:>7}{r.rate_limited:>6}{r.rate:>9.2f}"
            f"{share:>11.3f}{met:>12}{r.busiest_second:>12}{r.cpu_per_1000:>11.2f}"
            f"{r.gap_cells()}{r.requests_per_checkin:>13.4f}"
        )
    for r in results:
        if not r.failed:
            goal = "MET" if r.rate_limited == 0 else "NOT MET"
            print(f"  {r.name}: 429s goal 0: {goal}; {notes(r)}")
            goals.goal(f"check-ins, {r.name}: 429s", f"{r.rate_limited}", "0", r.rate_limited == 0)


def requests_summary(results: Sequence[Result]) -> None:
    print("\n(c) requests per check-in (goal 1: the DM channel is stored):")
    for r in results:
        if r.failed:
            print(f"  {r.name}: FAILED")
            continue
        met = "MET" if r.requests_per_checkin <= GOAL_REQUESTS_PER_CHECKIN else "NOT MET"
        goals.goal(
            f"check-ins, {r.name}: requests per check-in",
            f"{r.requests_per_checkin:.4f}",
            f"<= {GOAL_REQUESTS_PER_CHECKIN:g}",
            r.requests_per_checkin <= GOAL_REQUESTS_PER_CHECKIN,
        )
        others = ", ".join(f"{k} x{v}" for k, v in sorted(r.other_requests.items()))
        print(
            f"  {r.name}: {r.checkin_requests:,} requests for {r.sent:,} check-ins = "
            f"{r.requests_per_checkin:.4f} ({met}): {r.channel_opens} DM channels opened, "
            f"{r.retries_429} resent after a 429; once per run, not per check-in: "
            f"{others or 'none'}"
        )


def report(results: Results, args: argparse.Namespace) -> None:
    if results.ceiling:
        print(
            f"\n(a) the ceiling, rate limit lifted (emulator unlimited, DISCORD_RATE_LIMIT="
            f"{LIFTED:g}; every body checked against the spec after the run, not during it); "
            "ratios against the bare discord.py baseline of this run:"
        )
        ceiling_table(results.ceiling, results.baseline)
    if results.pace:
        print(
            f"\n(b) Discord's pace: emulator global limit {LIMIT:g}/s, bot DISCORD_RATE_LIMIT "
            f"default {LIMIT:g}; {args.paced_members:,} members (subset of {args.members:,})"
        )
        paced_table(results.pace)
    requests_summary([r for r in results.ceiling + results.pace if r is not results.baseline])


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
    args.pg = own_database(parser, args.postgres_url)
    return args


async def bench(args: argparse.Namespace) -> int:
    began = time.perf_counter()
    print(machine_line())
    print(code_version())
    print(
        "processes: the emulator (spec validation on; deferred to after the ceiling runs), each "
        "bot (python bot.py) and the bare sender run in processes of their own; this one only "
        "seeds, starts, waits and reads"
    )
    content = load_content()
    t0 = datetime.now(UTC)
    members = build_members(args.members, t0, content)
    print(f"load (a): {describe_load(members)}")
    if args.paced_members < args.members:
        paced = members[: args.paced_members]
        print(f"load (b): the first {args.paced_members:,} of them: {describe_load(paced)}")
    uses_pg = any("postgresql" in run for run in args.runs)
    pg_problem = await postgres_reachable(args.pg) if uses_pg else None
    if pg_problem:
        print(f"PostgreSQL runs skipped: {args.pg.render_as_string()} unreachable: {pg_problem}")
    with tempfile.TemporaryDirectory(prefix="crossroads-checkins-") as tmp:
        workdir = Path(tmp)
        drop = args.pg if uses_pg and not pg_problem else None
        async with sampled(Children(workdir), drop=drop) as children:
            results = await run_all(args, children, members, content, t0, pg_problem)
        if args.keep or results.failed:
            keep_run_files(workdir, args.keep, prefix="crossroads-checkins-logs-")
    report(results, args)
    print(f"\ntotal runtime {time.perf_counter() - began:.0f} s; {load_average()}")
    return 1 if results.failed else 0


def main() -> None:
    sys.exit(asyncio.run(bench(parse_args())))


if __name__ == "__main__":
    main()
