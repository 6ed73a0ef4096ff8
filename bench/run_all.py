"""Every benchmark's quick form, one after the other, and one table of their goals.

Each benchmark runs in a process of its own, as it would from the command line, its output
kept in ``bench/results/run-<time>/<name>.txt``; each reports its goals with
``harness.goals.goal()`` and this script collects those lines into one table: the goal, the
figure measured in this run, met or not. Benchmarks run one at a time (they measure latency
on a shared machine); the quick forms are trimmed here to fit the whole run in under five
minutes on two cores (one round of each bot for the interactions and the conversation DMs;
check-ins' ceilings at the goals' 10,000 members and their paced runs at 500;
moderation's /stats part): a figure to watch, not a result to quote (the interactions'
p99 rest on 80 samples a kind and move by several tenths from run to run); run a benchmark
alone, in full, for that.

Run from the repository root:

    .venv/bin/python bench/run_all.py --quick
        [--postgres-url postgresql+asyncpg://postgres@127.0.0.1:5432/crossroads_bench]
        [--only interactions,memory]

PostgreSQL runs use the database ``--postgres-url`` names (made when missing), given as
BENCH_DATABASE_URL to the benchmarks that read it; those that take ``--postgres-url`` make and
drop a database of their own, named the same with ``_own`` after it. Exits 1 when a
benchmark failed or a goal was not met.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import asyncpg
from harness.database import DEFAULT_PG_URL, create_postgres_if_missing
from harness.goals import parse
from harness.machine import code_version, load_average, machine_line
from harness.paths import BENCH
from sqlalchemy.engine import make_url


@dataclass(frozen=True)
class Bench:
    name: str
    script: str
    args: tuple[str, ...]  # after --quick
    postgres_flag: bool = False  # takes --postgres-url (the others read BENCH_DATABASE_URL)
    quick: bool = True  # False: `args` say the quick form's sizes themselves


ONE_QUICK_ROUND = ("--rounds", "1", "--count", "80", "--warmup", "10")
# In the order run. The interactions get --quick's sizes in one round (--quick means two).
BENCHES = (
    Bench("interactions, SQLite", "interactions.py", ONE_QUICK_ROUND, quick=False),
    Bench(
        "interactions, PostgreSQL",
        "interactions.py",
        (*ONE_QUICK_ROUND, "--database", "postgresql"),
        quick=False,
    ),
    Bench("memory", "memory.py", ()),
    Bench("journal", "journal.py", ()),
    Bench(
        "checkins",
        "checkins.py",
        # The ceilings at the goals' size (10,000 members: about 90 s with the spec checks
        # after each run), and Discord's pace at --quick's.
        ("--members", "10000", "--paced-members", "500"),
        postgres_flag=True,
        quick=False,
    ),
    Bench("moderation", "moderation.py", ("--parts", "stats"), postgres_flag=True),
    Bench("charts", "charts.py", ()),
    # One round of --quick's sizes (--quick means two), as for the interactions.
    Bench(
        "chat",
        "chat.py",
        ("--rounds", "1", "--count", "200", "--members", "300", "--warmup", "20"),
        postgres_flag=True,
        quick=False,
    ),
    Bench("rotation", "rotation.py", ()),
)


@dataclass
class Outcome:
    bench: Bench
    code: int
    seconds: float
    goals: list[tuple[str, str, str, str]] = field(default_factory=list)


def run(bench: Bench, pg_url: str, results: Path) -> Outcome:
    quick = ("--quick",) if bench.quick else ()
    command = [sys.executable, str(BENCH / bench.script), *quick, *bench.args]
    url = make_url(pg_url)
    if bench.postgres_flag:  # dropped when it is done: never the shared one
        command += [
            "--postgres-url",
            url.set(database=f"{url.database}_own").render_as_string(hide_password=False),
        ]
    else:
        with contextlib.suppress(OSError, asyncpg.PostgresError):  # unreachable: it says so
            asyncio.run(create_postgres_if_missing(url))
    env = {**os.environ, "BENCH_DATABASE_URL": pg_url}
    log = results / f"{bench.name.replace(', ', '-').replace(' ', '-').lower()}.txt"
    print(f"{bench.name}: {' '.join(command[1:])}", flush=True)
    began = time.perf_counter()
    with open(log, "w", encoding="utf-8") as output:
        code = subprocess.run(
            command, cwd=BENCH.parent, env=env, stdout=output, stderr=subprocess.STDOUT
        ).returncode
    seconds = time.perf_counter() - began
    outcome = Outcome(bench, code, seconds)
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        found = parse(line)
        if found:
            outcome.goals.append(found)
    state = "ok" if code == 0 else f"FAILED (exit {code}; see {log})"
    print(f"  {state}, {seconds:.0f} s, {len(outcome.goals)} goals; {load_average()}", flush=True)
    return outcome


def table(outcomes: list[Outcome]) -> bool:
    """Print every goal; whether all benchmarks ran and every judged goal was met."""
    rows = [(o.bench.name, *goal) for o in outcomes for goal in o.goals]
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(HEADER)]
    widths[2] = min(widths[2], 60)
    line = "  ".join(f"{h:<{w}}" for h, w in zip(HEADER, widths, strict=True))
    print(f"\n{line}\n{'-' * len(line)}")
    for row in rows:
        cells = (row[0], row[1], row[2][:60], row[3], row[4])
        print("  ".join(f"{c:<{w}}" for c, w in zip(cells, widths, strict=True)).rstrip())
    failed = [o.bench.name for o in outcomes if o.code != 0]
    missed = [f"{r[0]}: {r[1]}" for r in rows if r[4] == "NOT MET"]
    met = sum(1 for r in rows if r[4] == "met")
    failures = ", ".join(failed) or "none"
    print(f"\n{met} goals met, {len(missed)} not met; benchmarks failed: {failures}")
    for name in missed:
        print(f"  not met: {name}")
    return not failed and not missed


HEADER = ("benchmark", "goal", "today", "target", "verdict")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the quick forms (the only mode)")
    parser.add_argument("--postgres-url", default=DEFAULT_PG_URL)
    parser.add_argument("--only", help="comma-separated names or scripts, e.g. memory,journal")
    args = parser.parse_args()
    if not args.quick:
        parser.error("only --quick is offered: run a benchmark alone for its full form")
    chosen = [
        bench
        for bench in BENCHES
        if (BENCH / bench.script).exists()
        and (
            not args.only
            or any(
                part.strip() in (bench.name, bench.script.removesuffix(".py"))
                for part in args.only.split(",")
            )
        )
    ]
    results = BENCH / "results" / f"run-{datetime.now():%Y%m%d-%H%M%S}"
    results.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    print(machine_line())
    print(code_version())
    outcomes = [run(bench, args.postgres_url, results) for bench in chosen]
    ok = table(outcomes)
    print(
        f"\n{load_average()}; total runtime {time.perf_counter() - began:.0f} s; logs in {results}"
    )
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
