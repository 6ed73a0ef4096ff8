"""Benchmark `python bot.py rotate-key`: rows re-sealed per second on SQLite and PostgreSQL,
and what a rotation costs the bot's own writes meanwhile.

Data: ``--rows`` reflections (50,000) of about a thousand members, each text of a realistic,
varied length (log-normal, median 300 characters, up to the form's 4,000; see
bench/harness/texts.py) and sealed on its own with its member's id bound, plus a decision for
every tenth (every other one with a reason), all under one key, loaded in bulk through the
migrations' schema.

Then, on each backend:

1. the bot's writes idle: ``add_reflection`` every 20 ms, as the running bot (restarted with
   DATA_KEY and DATA_KEY_PREVIOUS) would make them, each timed;
2. ``python bot.py rotate-key`` as an operator runs it, in its own process, with the same
   writes going on in this one: its rate (rows re-sealed / the seconds it reports, which
   leave out the interpreter's start-up), its wall time, and the writes' latency during it;
3. the start-up key check (``check_keys``) on the rotated table, and every row opened with
   the new key alone (exit 1 if one does not, or rotate-key failed: not a result).

Run from the repository root:

    .venv/bin/python bench/rotation.py [--quick] [--rows 50000] [--batch-size 500]
        [--backends sqlite,postgresql]

PostgreSQL comes from BENCH_DATABASE_URL (default
postgresql+asyncpg://postgres@127.0.0.1:5432/crossroads_bench), whose public schema is reset;
it is skipped, with a note, when unreachable. SQLite uses a temporary file.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import logging
import os
import random
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from harness import goals
from harness.database import DEFAULT_PG_URL, insert_rows, postgres_reachable, reset_postgres_schema
from harness.machine import code_version, load_average, machine_line
from harness.paths import REPO
from harness.processes import base_env
from harness.stats import Stats, print_header
from harness.texts import reflection_length, text_of_length
from sqlalchemy import select

from db import Database
from db.crypto import TextCipher, generate_key, key_id, parse_key
from db.database import parse_database_url
from db.journal import add_reflection
from db.migrate import upgrade
from db.models import Decision, Reflection, User
from db.rotation import check_keys

MEMBERS = 1_000
WRITE_EVERY_S = 0.02
IDLE_WRITES = 150
FIRST_USER_ID = 1_400_000_000_000_000_000
DONE = re.compile(r"done: ([\d,]+) rows re-sealed in ([\d.,]+) s")


@dataclass
class Result:
    backend: str
    rows: int = 0
    rotated: int = 0
    seconds: float = 0.0  # as rotate-key reports it
    wall: float = 0.0  # the whole command, interpreter start-up included
    idle: list[float] = field(default_factory=list)
    during: list[float] = field(default_factory=list)
    check_ms: float = 0.0
    problem: str | None = None

    @property
    def rate(self) -> float:
        return self.rotated / self.seconds if self.seconds else 0.0


def encoded(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).decode()


async def load(database: Database, cipher: TextCipher, rows: int, seed: int) -> int:
    """The reflections and decisions, sealed row by row; returns the sealed values in all."""
    rng = random.Random(seed)
    start = datetime.now(UTC) - timedelta(days=365)
    users = [{"id": FIRST_USER_ID + m, "created_at": start} for m in range(MEMBERS)]
    reflections, decisions = [], []
    for n in range(rows):
        owner = FIRST_USER_ID + rng.randrange(MEMBERS)
        at = start + timedelta(seconds=n * 600)
        body, kid = cipher.seal(text_of_length(rng, reflection_length(rng)), owner_id=owner)
        reflections.append(
            {"user_id": owner, "point": "purpose", "kind": "first", "body": body,
             "key_id": kid, "comfort": 3, "created_at": at}
        )  # fmt: skip
        if n % 10 == 0:
            reason = cipher.seal(text_of_length(rng, 120), owner_id=owner) if n % 20 else None
            decisions.append(
                {"user_id": owner, "leaning": 0, "reason": reason[0] if reason else None,
                 "key_id": reason[1] if reason else None, "created_at": at}
            )  # fmt: skip
    async with database.transaction() as session:
        await insert_rows(session, User, users)
        await insert_rows(session, Reflection, reflections, batch=5_000)
        await insert_rows(session, Decision, decisions, batch=5_000)
    return len(reflections) + sum(1 for d in decisions if d["reason"] is not None)


async def writes(
    database: Database, cipher: TextCipher, into: list[float], *, until: asyncio.Future[Any]
) -> None:
    """What the bot does meanwhile: a reflection saved every WRITE_EVERY_S, each timed."""
    n = 0
    while not until.done():
        started = time.perf_counter()
        async with database.transaction() as session:
            await add_reflection(
                session, cipher, user_id=FIRST_USER_ID + n % MEMBERS, point="money",
                text=f"written while rotating, {n}", comfort=2, submission_key=None,
                now=datetime.now(UTC),
            )  # fmt: skip
        into.append(time.perf_counter() - started)
        n += 1
        await asyncio.wait({until}, timeout=WRITE_EVERY_S)


async def bench(backend: str, url: str, args: argparse.Namespace) -> Result:
    result = Result(backend)
    old, new = parse_key(generate_key()), parse_key(generate_key())
    database = Database(url)
    try:
        await upgrade(database)
        started = time.perf_counter()
        result.rows = await load(database, TextCipher(old), args.rows, args.seed)
        loaded = time.perf_counter() - started
        print(f"{backend}: loaded {result.rows:,} sealed values in {loaded:.1f} s")
        bot = TextCipher(new, previous=[old])  # the bot, restarted with both keys

        idle_done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        idle = asyncio.create_task(writes(database, bot, result.idle, until=idle_done))
        await asyncio.sleep(IDLE_WRITES * WRITE_EVERY_S)
        idle_done.set_result(None)
        await idle

        env = base_env() | {
            "DATABASE_URL": url, "DATA_KEY": encoded(new), "DATA_KEY_PREVIOUS": encoded(old),
            "LOG_LEVEL": "WARNING",
        }  # fmt: skip
        started = time.perf_counter()
        process = await asyncio.create_subprocess_exec(
            sys.executable, str(REPO / "bot.py"), "rotate-key", "--batch-size",
            str(args.batch_size), env=env, cwd=REPO,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        finished = asyncio.ensure_future(process.communicate())
        await writes(database, bot, result.during, until=finished)
        out, err = finished.result()
        result.wall = time.perf_counter() - started
        report = out.decode()
        if process.returncode != 0 or not (done := DONE.search(report)):
            result.problem = (
                f"rotate-key exited {process.returncode}: {report}{err.decode()[-500:]}"
            )
            return result
        result.rotated = int(done[1].replace(",", ""))
        result.seconds = float(done[2].replace(",", ""))

        alone = TextCipher(new)
        async with database.read() as session:
            started = time.perf_counter()
            check = await check_keys(session, alone)
            result.check_ms = (time.perf_counter() - started) * 1000
            if not check.ok:
                result.problem = f"the start-up check fails with the new key alone: {check}"
            under_new = 0
            for model, column in ((Reflection, Reflection.body), (Decision, Decision.reason)):
                rows = await session.execute(
                    select(model.user_id, column, model.key_id).where(column.is_not(None))
                )
                for owner, sealed, kid in rows:
                    assert sealed is not None
                    alone.decrypt(sealed, owner_id=owner, key_id=kid)  # raises if not
                    under_new += kid == key_id(new)
        expected = result.rows + len(result.idle) + len(result.during)
        if under_new != expected:
            result.problem = f"{under_new:,} rows under the new key, {expected:,} expected"
    finally:
        await database.dispose()
    return result


def print_results(results: list[Result], batch_size: int) -> None:
    print(f"\nrotate-key, --batch-size {batch_size}; {load_average()}")
    header = (
        f"  {'backend':<12}{'rows':>9}{'seconds':>9}{'rows/s':>9}{'wall s':>8}"
        f"  {'writes idle p50/p99 ms':>23}  {'during p50/p99 ms':>18}  {'check ms':>8}"
    )
    print_header(header)
    for r in results:
        if r.problem:
            print(f"  {r.backend:<12}INVALID: {r.problem}")
            continue
        idle, during = Stats(r.idle), Stats(r.during)
        idle_ms, during_ms = (
            f"{idle.p50:.1f} / {idle.p99:.1f}",
            f"{during.p50:.1f} / {during.p99:.1f}",
        )
        print(
            f"  {r.backend:<12}{r.rotated:>9,}{r.seconds:>9.1f}{r.rate:>9,.0f}{r.wall:>8.1f}"
            f"  {idle_ms:>23}  {during_ms:>18}  {r.check_ms:>8.1f}"
        )
        goals.goal(f"rotate-key, {r.backend}: rows re-sealed a second", f"{r.rate:,.0f}")
        goals.goal(
            f"rotate-key, {r.backend}: the bot's writes meanwhile p99", f"{during.p99:.1f} ms"
        )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10,000 rows")
    parser.add_argument("--rows", type=int, default=50_000, help="reflections in all")
    parser.add_argument("--batch-size", type=int, default=500, help="rotate-key's")
    parser.add_argument("--backends", default="sqlite,postgresql", help="comma-separated")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.quick:
        args.rows = 10_000
    args.backends = [name.strip() for name in args.backends.split(",") if name.strip()]
    if unknown := set(args.backends) - {"sqlite", "postgresql"}:
        parser.error(f"unknown backends: {', '.join(sorted(unknown))}")
    return args


async def main() -> int:
    args = parse_args()
    print(machine_line())
    print(code_version())
    results = []
    with tempfile.TemporaryDirectory(prefix="crossroads-rotation-") as tmp:
        if "sqlite" in args.backends:
            url = f"sqlite+aiosqlite:///{Path(tmp) / 'rotation.db'}"
            results.append(await bench("SQLite", url, args))
        if "postgresql" in args.backends:
            raw = os.environ.get("BENCH_DATABASE_URL") or DEFAULT_PG_URL
            pg = parse_database_url(raw)
            if problem := await postgres_reachable(pg):
                print(f"PostgreSQL skipped: {problem}")
            else:
                await reset_postgres_schema(pg)
                results.append(await bench("PostgreSQL", raw, args))
    print_results(results, args.batch_size)
    return 1 if any(r.problem for r in results) else 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(asyncio.run(main()))
