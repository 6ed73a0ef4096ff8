"""Real bot processes (`python bot.py`) on one PostgreSQL, for the several-process tests.

Each process is told Discord's limit is PACE while the emulator enforces 50: processes that
share one pace through the database stay under it with room for a loaded machine, while
two pacing themselves alone (60 a second) would be refused.
"""

import asyncio
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import func, select

from db import Database
from db.models import LeasedJob
from sandbox import Emulator
from tests.conftest import TEST_DATABASE_URL
from tests.test_cli import ROOT, cli_env

LEASE_SECONDS = 5
PACE = 30  # the limit each process is told; the emulator enforces 50


async def start_bot(
    tmp_path: Path, emulator: Emulator, key: str, name: str
) -> asyncio.subprocess.Process:
    assert TEST_DATABASE_URL
    log = (tmp_path / f"{name}.log").open("wb")
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "bot.py"),
        cwd=tmp_path,
        env=cli_env(
            tmp_path,
            DISCORD_TOKEN="two-process-test",
            DISCORD_EMULATOR_URL=emulator.api_base.removesuffix("/api/v10"),
            DATABASE_URL=TEST_DATABASE_URL,
            DATA_KEY=key,
            JOB_LEASE_SECONDS=str(LEASE_SECONDS),
            DISCORD_RATE_LIMIT=str(PACE),
            LOG_LEVEL="INFO",
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


def logs_of(tmp_path: Path) -> str:
    return "".join(p.read_text() for p in tmp_path.glob("*.log"))


async def taken_over(url: str, model: type[LeasedJob]) -> int:
    """Jobs claimed more than once: a dead process's claims that another took over."""
    database = Database(url)
    try:
        async with database.read() as session:
            count = await session.scalar(
                select(func.count()).select_from(model).where(model.attempts > 1)
            )
            return count or 0
    finally:
        await database.dispose()
