"""Real bot processes (`python bot.py`) on one PostgreSQL, for the several-process tests.

They run as operators run several processes: shards of one bot (SHARD_COUNT=2, SHARD_IDS=0
in one and 1 in the other), so only the first hears DMs, and both share the timed jobs.

Each process is told Discord's limit is PACE while the emulator enforces 50: processes that
share one pace through the database stay under it with room for a loaded machine, while
two pacing themselves alone (60 a second) would be refused.
"""

import asyncio
import signal
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from db import Database
from db.crypto import generate_key
from db.jobs import JobState
from db.models import LeasedJob
from sandbox import Emulator
from tests.conftest import TEST_DATABASE_URL
from tests.test_cli import ROOT, cli_env

LEASE_SECONDS = 5
PACE = 30  # the limit each process is told; the emulator enforces 50


def token_of(name: str) -> str:
    return f"two-process-test-{name}"


def assert_one_pace_shared(emulator: Emulator) -> None:
    """Both processes sent, in the same seconds, and together kept to the pace each was told
    (PACE a second): processes pacing themselves alone would add up to twice that. Whole
    seconds of the emulator's clock, with room for a stalled event loop's bunching."""
    first = emulator.messages_created_per_second(token_of("first"))
    second = emulator.messages_created_per_second(token_of("second"))
    together = set(first) & set(second)
    assert len(together) >= 2, (first, second)  # both at work at once, not one after the other
    busiest = max((first + second).values())
    assert busiest <= PACE * 1.4, (busiest, first, second)


async def start_bot(
    tmp_path: Path, emulator: Emulator, key: str, name: str, **settings: str
) -> asyncio.subprocess.Process:
    assert TEST_DATABASE_URL
    log = (tmp_path / f"{name}.log").open("wb")
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "bot.py"),
        cwd=tmp_path,
        env=cli_env(
            tmp_path,
            DISCORD_TOKEN=token_of(name),  # its own: the emulator tells the processes apart
            DISCORD_EMULATOR_URL=emulator.api_base.removesuffix("/api/v10"),
            DATABASE_URL=TEST_DATABASE_URL,
            DATA_KEY=key,
            JOB_LEASE_SECONDS=str(LEASE_SECONDS),
            DISCORD_RATE_LIMIT=str(PACE),
            LOG_LEVEL="INFO",
            **settings,
        ),
        stdout=log,
        stderr=log,
    )


async def wait_for(condition: Callable[[], bool], seconds: float) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.05)  # real processes, real time: nothing here can be moved


async def stop(*processes: asyncio.subprocess.Process) -> None:
    for process in processes:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()


def shard(shard_id: int) -> dict[str, str]:
    """The settings of one of two shard processes."""
    return {"SHARD_COUNT": "2", "SHARD_IDS": str(shard_id)}


def logs_of(tmp_path: Path) -> str:
    return "".join(p.read_text() for p in tmp_path.glob("*.log"))


async def count_jobs(url: str, model: type[LeasedJob], *where: Any) -> int:
    database = Database(url)
    try:
        async with database.read() as session:
            count = await session.scalar(select(func.count()).select_from(model).where(*where))
            return count or 0
    finally:
        await database.dispose()


async def due_left(url: str, model: type[LeasedJob]) -> int:
    """Jobs due by now and not yet recorded (the next ones are a week away)."""
    return await count_jobs(
        url, model, model.state == JobState.PENDING, model.due_at <= datetime.now(UTC)
    )


async def run_two_processes(
    tmp_path: Path,
    emulator: Emulator,
    model: type[LeasedJob],
    *,
    sent: Callable[[], int],
    total: int,
    kill_one: bool,
) -> None:
    """Two real bot processes on TEST_DATABASE_URL until all `total` due jobs are sent and
    recorded; then both are stopped.

    With `kill_one` the first runs alone until it is mid-batch (killing one of two live
    processes might kill the one that claimed nothing), is killed with SIGKILL, its claims
    left as they were, and the second starts and must take them over after their lease.
    Once every job is recorded done no process can claim one again, so nothing sent after
    that point would be a double the test has missed.
    """
    url = TEST_DATABASE_URL
    assert url
    key = generate_key()
    first = await start_bot(tmp_path, emulator, key, "first", **shard(0))
    second = None if kill_one else await start_bot(tmp_path, emulator, key, "second", **shard(1))
    try:
        await emulator.wait_until_ready(timeout=60, sessions=1 if kill_one else 2)
        if kill_one:
            await wait_for(lambda: sent() >= total // 4, 30)
            first.kill()
            await first.wait()
            assert sent() < total, "the batch finished before the kill; kill earlier"
            second = await start_bot(tmp_path, emulator, key, "second", **shard(1))
        await wait_for(lambda: sent() >= total, 60)
        deadline = asyncio.get_running_loop().time() + 30
        while await due_left(url, model):
            assert asyncio.get_running_loop().time() < deadline, "sent but never recorded"
            await asyncio.sleep(0.1)  # real processes, real time
    finally:
        await stop(*(p for p in (first, second) if p is not None))
    if kill_one:
        assert await count_jobs(url, model, model.attempts > 1), "nothing was taken over"
    logs = logs_of(tmp_path)
    assert "Traceback" not in logs, logs[-3000:]


async def assert_copies_only_after_a_takeover(
    emulator: Emulator, url: str, model: type[LeasedJob], channel_of: Callable[[Any], int]
) -> None:
    """Discord drops a copy that carries a nonce it has seen, so one message per job could
    hide a job sent twice. A copy is allowed only where it cannot be avoided: a process died
    after Discord took the message and before recording it, and whoever took the job over
    after its lease (attempts > 1) sent it again, once, with the same nonce. A copy of any
    other job means two processes claimed it: a double claim."""
    database = Database(url)
    try:
        async with database.read() as session:
            jobs = list(await session.scalars(select(model)))
    finally:
        await database.dispose()
    taken_over: dict[int, int] = {}  # channel -> its jobs taken over after a lease
    for job in jobs:
        channel = channel_of(job)
        taken_over[channel] = taken_over.get(channel, 0) + (1 if job.attempts > 1 else 0)
    for channel, allowed in taken_over.items():
        copies = emulator.deduplicated_nonces_in(channel)
        assert copies <= allowed, (channel, copies, allowed)
